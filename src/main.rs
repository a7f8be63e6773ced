//! The binary: parse the command line, validate it into a `Config`, start logging, serve.
//! Bad flags or configuration exit with 64 (`EX_USAGE`) and one line per problem on stderr.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use secure_mcp_server::config::{Cli, Command, Config, ConfigErrors, startup};
use secure_mcp_server::observability::logging;
use secure_mcp_server::security::key_policy::report;
use secure_mcp_server::{check, gateway, keys, server};

const EX_USAGE: u8 = 64;
/// Threads for blocking file work at most.
const BLOCKING_THREADS: usize = 8;

/// What the first words of the command line ask for: the server, a gateway, or pinning a
/// gateway's upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Server,
    Gateway,
    Pin,
}

/// Takes `gateway` (and `gateway pin`) off the front of the arguments, so the server's flags
/// read the same in both modes: `secure-mcp-server gateway [FLAGS] -- COMMAND [ARGS...]`.
fn mode_of(mut args: Vec<std::ffi::OsString>) -> (Mode, Vec<std::ffi::OsString>) {
    if args.get(1).is_some_and(|a| a == "gateway") {
        args.remove(1);
        if args.get(1).is_some_and(|a| a == "pin") {
            args.remove(1);
            return (Mode::Pin, args);
        }
        return (Mode::Gateway, args);
    }
    (Mode::Server, args)
}

fn main() -> ExitCode {
    let (mode, args) = mode_of(std::env::args_os().collect());
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(EX_USAGE);
        }
    };

    match cli.command {
        Some(Command::Check(args)) => {
            return match tokio::runtime::Runtime::new() {
                Ok(rt) if rt.block_on(check::run(args)) => ExitCode::SUCCESS,
                _ => ExitCode::FAILURE,
            };
        }
        Some(Command::Policy(command)) => {
            return match report::run(&command) {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(problems) => {
                    for p in problems {
                        eprintln!("secure-mcp-server: {p}");
                    }
                    ExitCode::FAILURE
                }
            };
        }
        None => {}
    }

    let given = !cli.upstream.is_empty() || cli.upstreams_file.is_some();
    let gateway = match (mode, given) {
        (Mode::Server, false) => None,
        (Mode::Server, true) => {
            eprintln!(
                "secure-mcp-server: a command after `--` (or --upstreams-file) is for \
                 `secure-mcp-server gateway`"
            );
            return ExitCode::from(EX_USAGE);
        }
        (_, false) => {
            eprintln!(
                "secure-mcp-server: the gateway needs the upstream server's command after `--`, \
                 or --upstreams-file"
            );
            return ExitCode::from(EX_USAGE);
        }
        (_, true) => match gateway_options(&cli) {
            Ok(options) => Some(options),
            Err(e) => {
                eprintln!("secure-mcp-server: {e}");
                return ExitCode::from(EX_USAGE);
            }
        },
    };
    if mode == Mode::Pin {
        return pin(gateway, cli.pin_file.as_deref());
    }

    if cli.generate_key {
        return match keys::generated_key_text() {
            Ok(text) => {
                // A closed pipe (`| head -n 1`) is not an error worth a panic.
                let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("secure-mcp-server: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match Config::from_cli_with(cli, |name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(errors) => return refuse(&errors),
    };
    // A generated key is shown once, on the terminal. Under a service manager stderr goes to a
    // journal that others may read, so there the server refuses to start instead.
    if config.keys.generated && !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!(
            "secure-mcp-server: no API key is configured and stderr is not a terminal to show a \
             generated one on; make a key with `secure-mcp-server --generate-key` and pass it with \
             --api-key, MCP_API_KEY, --env-keys or --keys-file"
        );
        return ExitCode::from(EX_USAGE);
    }

    logging::init(config.log_format);
    // File tools run on the blocking pool; a small pool bounds the threads (and their memory)
    // a burst of file reads can create, instead of tokio's default of 512.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("secure-mcp-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // What the configuration names is opened once, here, before logging starts and before the
    // server binds: a missing directory or a bad certificate is a configuration error.
    // (Inside the runtime: the fleet's Redis connection belongs to it.)
    let opened = match runtime.block_on(async { startup::open(&config) }) {
        Ok(opened) => opened,
        Err(errors) => return refuse(&errors),
    };
    let bind = config.bind;
    let served = runtime.block_on(async {
        let listener = server::bind(&config).await?;
        if config.keys.generated
            && let Some((_, key)) = config.keys.keys.first()
        {
            print_first_run_key(key, listener.local_addr()?);
        }
        let Some(options) = gateway else {
            return server::run(&config, opened, listener, server::shutdown_signal()).await;
        };
        let (mcp, pools) = match gateway::build(&options).await {
            Ok(built) => built,
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        };
        let _sweepers: Vec<_> = pools
            .iter()
            .map(|pool| {
                secure_mcp_server::upkeep::every(pool, std::time::Duration::from_secs(10), |p| {
                    p.sweep(tokio::time::Instant::now());
                })
            })
            .collect();
        let served = server::run_serving(
            &config,
            opened,
            listener,
            server::shutdown_signal(),
            |state| state.with_gateway(mcp, pools.clone()),
        )
        .await;
        for pool in &pools {
            pool.stop_all();
        }
        served
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("secure-mcp-server: cannot serve on {bind}: {e}");
            ExitCode::from(EX_USAGE)
        }
    }
}

/// The gateway's upstreams and bounds, from the command line.
fn gateway_options(cli: &Cli) -> Result<gateway::GatewayOptions, gateway::GatewayError> {
    let lookup = |name: &str| std::env::var(name).ok();
    let upstreams = match (&cli.upstreams_file, cli.upstream.is_empty()) {
        (Some(_), false) => {
            return Err(gateway::GatewayError::Upstreams(
                "give either --upstreams-file or a command after `--`, not both".into(),
            ));
        }
        (Some(path), true) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| gateway::GatewayError::Upstreams(e.to_string()))?;
            gateway::upstreams_from(&text, &cli.upstream_env, lookup)?
        }
        (None, _) => vec![(
            "upstream".to_owned(),
            gateway::Spawn {
                argv: cli.upstream.clone(),
                env: gateway::child_env(&cli.upstream_env, lookup),
            },
        )],
    };
    Ok(gateway::GatewayOptions {
        upstreams,
        limits: gateway::PoolLimits {
            max_processes: cli.max_upstreams.max(1),
            idle: std::time::Duration::from_secs(cli.upstream_idle_secs.max(1)),
            max_per_key: cli.max_upstreams_per_key.max(1),
            per_session: cli.upstream_scope
                == secure_mcp_server::config::cli::UpstreamScope::Session,
        },
        pin_file: cli.pin_file.clone(),
    })
}

/// `gateway pin --pin-file PATH -- COMMAND`: writes the upstream's tool digests.
fn pin(options: Option<gateway::GatewayOptions>, path: Option<&std::path::Path>) -> ExitCode {
    let (Some(options), Some(path)) = (options, path) else {
        eprintln!(
            "secure-mcp-server: gateway pin needs --pin-file PATH and the command after `--`"
        );
        return ExitCode::from(EX_USAGE);
    };
    let Ok(runtime) = tokio::runtime::Runtime::new() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(gateway::pin(&options, path)) {
        Ok(pins) => {
            for (tool, digest) in pins {
                println!("{tool} {digest}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("secure-mcp-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints every configuration error, one line each, and exits with 64.
fn refuse(errors: &ConfigErrors) -> ExitCode {
    for e in errors.iter() {
        eprintln!("secure-mcp-server: {e}");
    }
    ExitCode::from(EX_USAGE)
}

/// The one time a generated key is shown: on the terminal, never through the logger.
fn print_first_run_key(key: &str, addr: std::net::SocketAddr) {
    eprintln!(
        "No API key was configured, so this run accepts one generated key:\n\n    {key}\n\n\
         Try it:\n    curl -s http://{addr}/mcp -H 'Authorization: Bearer {key}' \
         -H 'Content-Type: application/json' -H 'MCP-Protocol-Version: 2026-07-28' \
         -H 'Mcp-Method: server/discover' -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server/discover\",\
         \"params\":{{\"_meta\":{{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\",\
         \"io.modelcontextprotocol/clientCapabilities\":{{}}}}}}}}'\n"
    );
}
