use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::*;
use crate::error::ToolError;
use crate::mcp::events::ChangeHub;
use crate::security::key_policy::KeyRules;
use crate::security::principal::{KeyId, Principal};
use crate::tools::output::{ToolFuture, ToolOutput};

fn all() -> KeyRules {
    KeyRules::unrestricted()
}

fn alice() -> Principal {
    KeyId::for_digest("alice", &[1; 32]).into()
}

fn bob() -> Principal {
    KeyId::for_digest("bob", &[2; 32]).into()
}

type Events = Arc<Mutex<Vec<(&'static str, String)>>>;

fn store_with(limits: TaskLimits) -> (Arc<TaskStore>, Events) {
    let events: Events = Arc::default();
    let seen = events.clone();
    let audit: TaskAudit = Arc::new(move |e: &TaskEvent| {
        seen.lock()
            .expect("events")
            .push((e.event, format!("{}/{}", e.principal, e.tool)));
    });
    let store = TaskStore::new(limits, ChangeHub::new(), Some(audit));
    (Arc::new(store), events)
}

fn store() -> Arc<TaskStore> {
    store_with(TaskLimits::default()).0
}

async fn run(
    store: &Arc<TaskStore>,
    caller: &Principal,
    support: TaskSupport,
    future: ToolFuture,
) -> Launched {
    launch(store, support, caller, "tool", move |_, _| future).await
}

fn sleeping(secs: u64, text: &'static str) -> ToolFuture {
    Box::pin(async move {
        tokio::time::sleep(Duration::from_secs(secs)).await;
        Ok(ToolOutput::text(text))
    })
}

fn task_id(launched: &Launched) -> String {
    match launched {
        Launched::Task(created) => {
            assert_eq!(created["resultType"], "task");
            created["taskId"].as_str().expect("taskId").to_owned()
        }
        Launched::Now(outcome) => panic!("expected a task, got {outcome:?}"),
    }
}

async fn until_terminal(store: &TaskStore, id: &str, caller: &Principal) -> Map<String, Value> {
    for _ in 0..1000 {
        let task = store.get(id, caller, &all()).expect("visible");
        if ["completed", "failed", "cancelled"].contains(&task["status"].as_str().unwrap_or("")) {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the task never ended")
}

#[tokio::test(start_paused = true)]
async fn a_task_is_unknown_to_every_other_principal_including_a_key_replaced_under_its_id() {
    let store = store();
    let launched = run(&store, &alice(), TaskSupport::Optional, sleeping(5, "done")).await;
    let id = task_id(&launched);
    assert!(store.get(&id, &alice(), &all()).is_some());
    let replaced: Principal = KeyId::for_digest("alice", &[9; 32]).into();
    for other in [bob(), replaced] {
        assert_eq!(store.get(&id, &other, &all()), None, "{other}");
        assert_eq!(store.update(&id, &other, &all(), &Map::new()), None);
        assert_eq!(store.cancel(&id, &other, &all()), None);
    }
    assert_eq!(
        store.get(&id, &alice(), &all()).expect("still there")["status"],
        "working",
        "another principal's cancel changed nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn ids_are_144_random_bits_and_never_repeat() {
    let store = store_with(TaskLimits {
        max_running: 10_000,
        max_kept: 10_000,
        ..TaskLimits::default()
    })
    .0;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..2_000 {
        let launched = run(&store, &alice(), TaskSupport::Required, sleeping(0, "x")).await;
        let id = task_id(&launched);
        let bytes = URL_SAFE_NO_PAD.decode(&id).expect("base64url");
        assert_eq!(bytes.len(), 18);
        assert!(seen.insert(id), "an id repeated");
    }
}

#[tokio::test(start_paused = true)]
async fn an_optional_tool_that_finishes_within_the_grace_period_answers_at_once() {
    let (store, events) = store_with(TaskLimits::default());
    let quick: ToolFuture = Box::pin(async { Ok(ToolOutput::text("quick")) });
    match run(&store, &alice(), TaskSupport::Optional, quick).await {
        Launched::Now(Ok(out)) => assert_eq!(out, ToolOutput::text("quick")),
        other => panic!("{other:?}"),
    }
    assert!(store.is_empty(), "no record is left behind");
    assert!(
        events.lock().expect("events").is_empty(),
        "no task, no event"
    );
    let required = run(&store, &alice(), TaskSupport::Required, sleeping(0, "r")).await;
    let id = task_id(&required);
    let task = store.get(&id, &alice(), &all()).expect("task");
    assert_eq!(task["status"], "completed");
    assert_eq!(task["result"]["content"][0]["text"], "r");
}

#[tokio::test(start_paused = true)]
async fn cancelling_drops_the_work_and_fires_its_token_and_a_finished_task_stays_as_it_is() {
    let (store, events) = store_with(TaskLimits::default());
    let dropped = Arc::new(AtomicBool::new(false));
    let token_seen: Arc<Mutex<Option<tokio_util::sync::CancellationToken>>> = Arc::default();
    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let flag = Flag(dropped.clone());
    let keep = token_seen.clone();
    let launched = launch(
        &store,
        TaskSupport::Optional,
        &alice(),
        "slow",
        move |_, token| {
            *keep.lock().expect("token") = Some(token);
            Box::pin(async move {
                let _flag = flag;
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(ToolOutput::text("never"))
            })
        },
    )
    .await;
    let id = task_id(&launched);
    assert_eq!(store.cancel(&id, &alice(), &all()), Some(()));
    tokio::task::yield_now().await;
    assert!(
        dropped.load(Ordering::SeqCst),
        "the tool's future was dropped"
    );
    let token = token_seen
        .lock()
        .expect("token")
        .clone()
        .expect("token given");
    assert!(token.is_cancelled(), "blocking work sees the token fire");
    let task = store.get(&id, &alice(), &all()).expect("task");
    assert_eq!(task["status"], "cancelled");
    assert_eq!(store.cancel(&id, &alice(), &all()), Some(()), "idempotent");
    let finished = run(&store, &alice(), TaskSupport::Required, sleeping(1, "ok")).await;
    let done = task_id(&finished);
    until_terminal(&store, &done, &alice()).await;
    store.cancel(&done, &alice(), &all());
    assert_eq!(
        store.get(&done, &alice(), &all()).expect("task")["status"],
        "completed"
    );
    let events = events.lock().expect("events").clone();
    assert_eq!(
        events,
        [
            ("created", "alice/slow".to_owned()),
            ("cancelled", "alice/slow".to_owned()),
            ("created", "alice/tool".to_owned()),
            ("completed", "alice/tool".to_owned()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn results_vanish_at_the_ttl_and_unfinished_work_is_stopped() {
    let (store, events) = store_with(TaskLimits {
        ttl: Duration::from_secs(60),
        ..TaskLimits::default()
    });
    let done = task_id(&run(&store, &alice(), TaskSupport::Required, sleeping(1, "r")).await);
    let slow = task_id(&run(&store, &alice(), TaskSupport::Required, sleeping(3600, "r")).await);
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert_eq!(
        store.get(&done, &alice(), &all()).expect("kept")["status"],
        "completed"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        store.get(&done, &alice(), &all()),
        None,
        "gone at createdAt + ttlMs"
    );
    store.sweep(tokio::time::Instant::now());
    assert_eq!(store.get(&slow, &alice(), &all()), None);
    assert!(store.is_empty());
    let expired = events
        .lock()
        .expect("events")
        .iter()
        .filter(|(e, _)| *e == "expired")
        .count();
    assert_eq!(expired, 2);
    let again = run(&store, &alice(), TaskSupport::Required, sleeping(1, "r")).await;
    task_id(&again);
}

#[tokio::test(start_paused = true)]
async fn unfinished_tasks_per_principal_are_capped_and_finished_ones_make_room() {
    let store = store_with(TaskLimits {
        max_running: 2,
        max_kept: 3,
        ..TaskLimits::default()
    })
    .0;
    let a = task_id(&run(&store, &alice(), TaskSupport::Required, sleeping(3600, "a")).await);
    task_id(&run(&store, &alice(), TaskSupport::Required, sleeping(3600, "b")).await);
    match run(&store, &alice(), TaskSupport::Required, sleeping(1, "c")).await {
        Launched::Now(Err(ToolError::Failed(message))) => assert!(message.contains("unfinished")),
        other => panic!("the third running task must be refused: {other:?}"),
    }
    task_id(&run(&store, &bob(), TaskSupport::Required, sleeping(3600, "b")).await);
    store.cancel(&a, &alice(), &all());
    let c = task_id(&run(&store, &alice(), TaskSupport::Required, sleeping(0, "c")).await);
    assert_eq!(
        store.get(&c, &alice(), &all()).expect("c")["status"],
        "completed"
    );
    // Three kept (a cancelled, b running, c done): the next evicts the oldest finished, a.
    task_id(&run(&store, &alice(), TaskSupport::Required, sleeping(0, "d")).await);
    assert_eq!(store.get(&a, &alice(), &all()), None);
    assert!(store.get(&c, &alice(), &all()).is_some());
}

#[tokio::test(start_paused = true)]
async fn result_bytes_per_principal_are_capped() {
    let store = store_with(TaskLimits {
        max_result_bytes: 4_000,
        ..TaskLimits::default()
    })
    .0;
    let big =
        |n: usize| -> ToolFuture { Box::pin(async move { Ok(ToolOutput::text("x".repeat(n))) }) };
    let first = task_id(&run(&store, &alice(), TaskSupport::Required, big(1_500)).await);
    let second = task_id(&run(&store, &alice(), TaskSupport::Required, big(1_500)).await);
    let third = task_id(&run(&store, &alice(), TaskSupport::Required, big(1_500)).await);
    assert_eq!(
        store.get(&first, &alice(), &all()),
        None,
        "the oldest result made room"
    );
    assert!(store.get(&second, &alice(), &all()).is_some());
    assert!(store.get(&third, &alice(), &all()).is_some());
    let huge = task_id(&run(&store, &alice(), TaskSupport::Required, big(5_000)).await);
    let task = store.get(&huge, &alice(), &all()).expect("task");
    assert_eq!(task["status"], "failed");
    assert_eq!(task["error"]["code"], -32603);
    assert!(task.get("result").is_none());
    assert!(
        store.get(&third, &alice(), &all()).is_some(),
        "a result that can never fit evicts nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn questions_are_answered_one_by_one_and_unknown_answers_are_ignored() {
    let (store, events) = store_with(TaskLimits::default());
    let launched = launch(&store, TaskSupport::Optional, &alice(), "ask", |task, _| {
        Box::pin(async move {
            let (a, b) = tokio::join!(
                task.ask("elicitation/create", json!({ "message": "a?" })),
                task.ask("elicitation/create", json!({ "message": "b?" })),
            );
            Ok(ToolOutput::text(format!("{}{}", a?["v"], b?["v"])))
        })
    })
    .await;
    let id = task_id(&launched);
    let task = store.get(&id, &alice(), &all()).expect("task");
    assert_eq!(task["status"], "input_required");
    let keys: Vec<String> = task["inputRequests"]
        .as_object()
        .expect("map")
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys.len(), 2);
    let answers = |k: &str, v: Value| -> Map<String, Value> {
        [(k.to_owned(), json!({ "v": v }))].into_iter().collect()
    };
    store
        .update(&id, &alice(), &all(), &answers("never-asked", json!(0)))
        .expect("ack");
    store
        .update(&id, &alice(), &all(), &answers(&keys[0], json!(1)))
        .expect("ack");
    let task = store.get(&id, &alice(), &all()).expect("task");
    assert_eq!(task["status"], "input_required");
    let open: Vec<&String> = task["inputRequests"]
        .as_object()
        .expect("map")
        .keys()
        .collect();
    assert_eq!(open, [&keys[1]], "the answered key is gone");
    store
        .update(&id, &alice(), &all(), &answers(&keys[0], json!(7)))
        .expect("ignored");
    store
        .update(&id, &alice(), &all(), &answers(&keys[1], json!(2)))
        .expect("ack");
    let task = until_terminal(&store, &id, &alice()).await;
    assert_eq!(task["result"]["content"][0]["text"], "12");
    let events: Vec<&str> = events.lock().expect("events").iter().map(|e| e.0).collect();
    assert_eq!(events, ["created", "input_requested", "completed"]);
}

#[tokio::test(start_paused = true)]
async fn result_bytes_in_all_are_capped() {
    let store = store_with(TaskLimits {
        max_result_bytes: 4_000,
        max_total_result_bytes: 5_000,
        ..TaskLimits::default()
    })
    .0;
    let big = || -> ToolFuture { Box::pin(async { Ok(ToolOutput::text("x".repeat(3_000))) }) };
    let first = task_id(&run(&store, &alice(), TaskSupport::Required, big()).await);
    assert_eq!(
        store.get(&first, &alice(), &all()).expect("a")["status"],
        "completed"
    );
    let second = task_id(&run(&store, &bob(), TaskSupport::Required, big()).await);
    let task = store.get(&second, &bob(), &all()).expect("b");
    assert_eq!(
        task["status"], "failed",
        "another principal's results fill the server"
    );
    assert!(
        store.get(&first, &alice(), &all()).is_some(),
        "never evicts another's result"
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_of_a_tool_the_callers_policy_no_longer_allows_is_unknown() {
    let store = store();
    let id = task_id(&run(&store, &alice(), TaskSupport::Required, sleeping(0, "r")).await);
    let narrowed = KeyRules {
        tools: Some(vec![glob::Pattern::new("other_*").expect("glob")]),
        ..KeyRules::unrestricted()
    };
    assert_eq!(store.get(&id, &alice(), &narrowed), None);
    assert_eq!(store.cancel(&id, &alice(), &narrowed), None);
    assert!(store.get(&id, &alice(), &all()).is_some());
}
