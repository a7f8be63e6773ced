//! [`every`]: background upkeep (sweeping idle entries) that lives as long as what it keeps.

use std::sync::{Arc, Weak};
use std::time::Duration;

/// Runs `work` on `target` every `period` (the first time at once) until `target` is dropped.
pub fn every<T: Send + Sync + 'static>(
    target: &Arc<T>,
    period: Duration,
    work: impl Fn(&T) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let target: Weak<T> = Arc::downgrade(target);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period);
        loop {
            ticker.tick().await;
            match target.upgrade() {
                Some(t) => work(&t),
                None => break,
            }
        }
    })
}
