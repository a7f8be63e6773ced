//! `--redis-url`, `--fleet-size`, `--redis-fallback` and `MCP_REDIS_PASSWORD`: whether this
//! instance is one of a fleet (see [`crate::fleet`] for why the first needs the other two).

use super::{Cli, ConfigError};
use crate::fleet::FleetOptions;

/// The fleet options, if `--redis-url` is given; every problem is reported.
pub fn options(
    cli: &Cli,
    password: Option<String>,
) -> Result<Option<FleetOptions>, Vec<ConfigError>> {
    let Some(url) = cli.redis_url.as_deref().filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let mut errors = Vec::new();
    // The scheme only: the rest of the URL may carry a password and is never repeated.
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        errors.push(ConfigError::RedisUrl);
    }
    if cli.state_secret_file.is_none() {
        errors.push(ConfigError::FleetNeeds("--state-secret-file"));
    }
    let size = match cli.fleet_size {
        None => {
            errors.push(ConfigError::FleetNeeds("--fleet-size"));
            0
        }
        Some(n @ 1..=1000) => n,
        Some(_) => {
            errors.push(ConfigError::FleetSize);
            0
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Some(FleetOptions {
        url: url.to_owned(),
        password: password.filter(|p| !p.is_empty()),
        fallback: cli.redis_fallback,
        size,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_cli as cli;

    #[test]
    fn without_a_redis_url_there_is_no_fleet() {
        assert!(
            options(&cli(&[]), Some("pw".into()))
                .expect("valid")
                .is_none()
        );
    }

    #[test]
    fn a_redis_url_needs_the_shared_secret_and_the_fleet_size_both_reported() {
        let errors = options(&cli(&["--redis-url", "redis://:hunter2@127.0.0.1/"]), None)
            .expect_err("incomplete");
        assert_eq!(
            errors,
            vec![
                ConfigError::FleetNeeds("--state-secret-file"),
                ConfigError::FleetNeeds("--fleet-size")
            ]
        );
        let shown: String = errors.iter().map(ToString::to_string).collect();
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn a_url_of_another_scheme_is_refused_without_repeating_it() {
        let errors = options(
            &cli(&[
                "--redis-url",
                "http://user:hunter2@example/",
                "--state-secret-file",
                "/s",
                "--fleet-size",
                "0",
            ]),
            None,
        )
        .expect_err("refused");
        assert_eq!(errors, vec![ConfigError::RedisUrl, ConfigError::FleetSize]);
        assert!(!errors[0].to_string().contains("hunter2"));
    }

    #[test]
    fn the_password_from_the_environment_is_taken_and_never_shown() {
        let fleet = options(
            &cli(&[
                "--redis-url",
                "rediss://redis.internal:6380/0",
                "--state-secret-file",
                "/s",
                "--fleet-size",
                "3",
                "--redis-fallback",
                "deny",
            ]),
            Some("s3cret".into()),
        )
        .expect("valid")
        .expect("a fleet");
        assert_eq!(fleet.size, 3);
        assert_eq!(fleet.password.as_deref(), Some("s3cret"));
        assert_eq!(fleet.fallback, crate::fleet::Fallback::Deny);
        assert!(!format!("{fleet:?}").contains("s3cret"));
        assert!(!format!("{fleet:?}").contains("redis.internal"));
    }
}
