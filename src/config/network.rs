//! Where the server listens and whom it believes: the bind address, the trusted proxies, the
//! browser origins and Host names allowed, the metrics listener, and whether plain HTTP may
//! leave the machine.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use super::ConfigError;
use crate::security::origin::{self, HostRule};

/// `--bind`.
pub fn bind(value: &str) -> Result<SocketAddr, ConfigError> {
    value
        .parse()
        .map_err(|_| ConfigError::BadBind(value.to_owned()))
}

/// Collects the values that parse, and an error for each that does not. An empty entry (an
/// empty environment variable) means "none".
fn each<T>(
    values: &[String],
    parse: impl Fn(&str) -> Result<T, ConfigError>,
) -> Result<Vec<T>, Vec<ConfigError>> {
    let (mut ok, mut errors) = (Vec::new(), Vec::new());
    for value in values.iter().filter(|v| !v.trim().is_empty()) {
        match parse(value) {
            Ok(v) => ok.push(v),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(ok)
    } else {
        Err(errors)
    }
}

/// `--trusted-proxy`: addresses or CIDR ranges.
pub fn trusted_proxies(values: &[String]) -> Result<Vec<IpNet>, Vec<ConfigError>> {
    each(values, |p| {
        p.parse::<IpNet>()
            .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| ConfigError::BadCidr(p.to_owned()))
    })
}

/// `--allow-origin`, normalised.
pub fn origins(values: &[String]) -> Result<Vec<String>, Vec<ConfigError>> {
    each(values, |o| {
        origin::normalise_origin(o).ok_or_else(|| ConfigError::BadOrigin(o.to_owned()))
    })
}

/// `--allow-host` / `--allow-any-host`; on a loopback bind, the loopback names by default. A
/// non-loopback bind must name its hosts (DNS rebinding).
pub fn hosts(values: &[String], any: bool, bind: SocketAddr) -> Result<HostRule, Vec<ConfigError>> {
    if any {
        return Ok(HostRule::Any);
    }
    let list = each(values, |h| {
        let h = h.trim().to_ascii_lowercase();
        if h.contains(['/', '@', ' ', '?', '#']) {
            Err(ConfigError::BadHost(h))
        } else {
            Ok(h)
        }
    })?;
    if !list.is_empty() {
        Ok(HostRule::List(list))
    } else if bind.ip().is_loopback() {
        Ok(HostRule::List(
            origin::LOOPBACK_HOSTS.map(String::from).to_vec(),
        ))
    } else {
        Err(vec![ConfigError::HostsRequired(bind)])
    }
}

/// `--metrics-bind`: off loopback only with `--allow-public-metrics` (`/metrics` has no key).
pub fn metrics_bind(
    value: Option<&str>,
    allow_public: bool,
) -> Result<Option<SocketAddr>, Vec<ConfigError>> {
    let Some(value) = value.filter(|m| !m.trim().is_empty()) else {
        return Ok(None);
    };
    let addr = value
        .parse::<SocketAddr>()
        .map_err(|_| vec![ConfigError::BadMetricsBind(value.to_owned())])?;
    if !addr.ip().is_loopback() && !allow_public {
        return Err(vec![ConfigError::PublicMetrics(addr)]);
    }
    Ok(Some(addr))
}

/// Plain HTTP off loopback only with `--allow-plaintext`: keys would cross the network.
pub fn transport_security(
    bind: SocketAddr,
    tls: bool,
    allow_plaintext: bool,
) -> Result<(), Vec<ConfigError>> {
    if !bind.ip().is_loopback() && !tls && !allow_plaintext {
        return Err(vec![ConfigError::Plaintext(bind)]);
    }
    Ok(())
}
