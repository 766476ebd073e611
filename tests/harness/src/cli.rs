//! `tern`'s command line, parsed by hand (no clap: a small build).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use bitcoin::Network;
use tern_core::node::InboundPolicy;

use crate::control::{self, Request};
use crate::daemon::DaemonOptions;

/// The usage text.
pub const USAGE: &str = "\
usage:
  tern demo [--keep]                      the kill-and-resume demo (devnet + two daemons)
  tern devnet [--port 3002] [--host 127.0.0.1] [--data-dir D]
  tern daemon --data-dir D --network regtest|signet|testnet|bitcoin --esplora URL
              [--listen 127.0.0.1:9735] [--inbound accept|reject|manual]
              [--sync-interval-ms N] [--dev-faults RULES] [--dev-halt-after ACTION]
  tern --data-dir D <command>             talk to the daemon at D (one JSON object out)
commands:
  info | new-address | balance | channels | peers | sync | stop
  connect <node id>@<host:port>
  open <node id>@<host:port> <amount_sat> [--push-msat N] [--public]
  events [--ack]
exit codes: 0 ok, 1 node error, 2 usage or bad input, 3 no daemon running at D";

/// What to run.
#[derive(Debug, Clone)]
pub enum Command {
    /// `tern demo`.
    Demo {
        /// Keep the temp dir.
        keep: bool,
    },
    /// `tern devnet`.
    Devnet(tern_devnet::DevnetConfig),
    /// `tern daemon`.
    Daemon(DaemonOptions),
    /// A control request to the daemon at `data_dir`.
    Client {
        /// The daemon's data dir.
        data_dir: PathBuf,
        /// The request.
        request: Request,
    },
    /// `--help`.
    Help,
}

/// Parses `args` (without the program name). Errors are usage errors (exit 2).
pub fn parse(args: &[String]) -> Result<Command, String> {
    match args.first().map(String::as_str) {
        None => Err("no command given".into()),
        Some("-h" | "--help" | "help") => Ok(Command::Help),
        Some("demo") => parse_demo(&args[1..]),
        Some("devnet") => parse_devnet(&args[1..]),
        Some("daemon") => parse_daemon(&args[1..]).map(Command::Daemon),
        Some(_) => parse_client(args),
    }
}

fn value<'a>(args: &mut impl Iterator<Item = &'a String>, flag: &str) -> Result<String, String> {
    args.next()
        .cloned()
        .ok_or_else(|| format!("{flag} needs a value"))
}

fn parse_demo(args: &[String]) -> Result<Command, String> {
    let mut keep = false;
    for a in args {
        match a.as_str() {
            "--keep" => keep = true,
            other => return Err(format!("demo: unknown argument {other:?}")),
        }
    }
    Ok(Command::Demo { keep })
}

fn parse_devnet(args: &[String]) -> Result<Command, String> {
    let mut config = tern_devnet::DevnetConfig::default();
    let mut host: IpAddr = [127, 0, 0, 1].into();
    let mut port: u16 = 3002;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--port" => {
                port = value(&mut it, arg)?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--host" => {
                host = value(&mut it, arg)?
                    .parse()
                    .map_err(|e| format!("--host: {e}"))?
            }
            "--data-dir" => config.data_dir = Some(PathBuf::from(value(&mut it, arg)?)),
            other => return Err(format!("devnet: unknown argument {other:?}")),
        }
    }
    config.listen = SocketAddr::new(host, port);
    Ok(Command::Devnet(config))
}

/// Parses a network name.
pub fn parse_network(s: &str) -> Result<Network, String> {
    match s {
        "regtest" => Ok(Network::Regtest),
        "signet" => Ok(Network::Signet),
        "testnet" => Ok(Network::Testnet),
        "bitcoin" | "mainnet" => Ok(Network::Bitcoin),
        other => Err(format!(
            "unknown network {other:?} (regtest, signet, testnet or bitcoin)"
        )),
    }
}

fn parse_daemon(args: &[String]) -> Result<DaemonOptions, String> {
    let (mut data_dir, mut network, mut esplora) = (None, None, None);
    let mut options = DaemonOptions {
        data_dir: PathBuf::new(),
        network: Network::Regtest,
        esplora: String::new(),
        listen: None,
        dev_faults: None,
        dev_halt_after: None,
        inbound: InboundPolicy::AcceptAll,
        sync_interval: Duration::from_secs(1),
    };
    let mut sync_ms = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--data-dir" => data_dir = Some(PathBuf::from(value(&mut it, arg)?)),
            "--network" => network = Some(parse_network(&value(&mut it, arg)?)?),
            "--esplora" => esplora = Some(value(&mut it, arg)?),
            "--listen" => {
                let l = value(&mut it, arg)?;
                if !l.contains(':') {
                    return Err(format!("--listen {l:?} is not host:port"));
                }
                options.listen = Some(l);
            }
            "--inbound" => {
                options.inbound = match value(&mut it, arg)?.as_str() {
                    "accept" => InboundPolicy::AcceptAll,
                    "reject" => InboundPolicy::RejectAll,
                    "manual" => InboundPolicy::Manual,
                    other => {
                        return Err(format!(
                            "--inbound {other:?}: expected accept, reject or manual"
                        ))
                    }
                }
            }
            "--sync-interval-ms" => {
                let ms: u64 = value(&mut it, arg)?
                    .parse()
                    .map_err(|e| format!("--sync-interval-ms: {e}"))?;
                if ms == 0 {
                    return Err("--sync-interval-ms must be positive".into());
                }
                sync_ms = Some(ms);
            }
            "--dev-faults" => {
                let rules = value(&mut it, arg)?;
                // Checked here so a typo is a usage error, not a daemon that dies later.
                tern_core::net::faults::FaultPlan::parse(
                    rules.split([',', ' ']).filter(|r| !r.is_empty()),
                )
                .map_err(|e| format!("--dev-faults: {e}"))?;
                options.dev_faults = Some(rules);
            }
            "--dev-halt-after" => options.dev_halt_after = Some(value(&mut it, arg)?),
            other => return Err(format!("daemon: unknown argument {other:?}")),
        }
    }
    options.data_dir = data_dir.ok_or("daemon: --data-dir D is required")?;
    options.network = network.ok_or("daemon: --network is required")?;
    options.esplora = esplora.ok_or("daemon: --esplora URL is required")?;
    if !(options.esplora.starts_with("http://") || options.esplora.starts_with("https://")) {
        return Err(format!(
            "--esplora {:?} is not an http(s) URL",
            options.esplora
        ));
    }
    options.sync_interval = match (sync_ms, options.network) {
        (Some(ms), _) => Duration::from_millis(ms),
        (None, Network::Regtest) => Duration::from_secs(1),
        (None, _) => Duration::from_secs(30),
    };
    Ok(options)
}

fn parse_client(args: &[String]) -> Result<Command, String> {
    let mut data_dir = None;
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--data-dir" {
            data_dir = Some(PathBuf::from(value(&mut it, arg)?));
        } else {
            rest.push(arg.clone());
        }
    }
    let (command, rest) = rest.split_first().ok_or("no command given")?;
    let data_dir = data_dir.ok_or_else(|| format!("{command}: --data-dir D is required"))?;
    let no_args = |req: Request| {
        if rest.is_empty() {
            Ok(req)
        } else {
            Err(format!("{command} takes no arguments, got {rest:?}"))
        }
    };
    let request = match command.as_str() {
        "info" => no_args(Request::Info)?,
        "new-address" => no_args(Request::NewAddress)?,
        "balance" => no_args(Request::Balance)?,
        "channels" => no_args(Request::Channels)?,
        "peers" => no_args(Request::Peers)?,
        "sync" => no_args(Request::Sync)?,
        "stop" => no_args(Request::Stop)?,
        "events" => match rest {
            [] => Request::Events { ack: false },
            [a] if a == "--ack" => Request::Events { ack: true },
            _ => return Err(format!("events: expected [--ack], got {rest:?}")),
        },
        "connect" => match rest {
            [peer] => {
                control::parse_peer(peer)?;
                Request::Connect { peer: peer.clone() }
            }
            _ => return Err("connect: expected <node id>@<host:port>".into()),
        },
        "open" => parse_open(rest)?,
        other => return Err(format!("unknown command {other:?}")),
    };
    Ok(Command::Client { data_dir, request })
}

fn parse_open(rest: &[String]) -> Result<Request, String> {
    let mut positional = Vec::new();
    let (mut push_msat, mut public) = (0u64, false);
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--push-msat" => {
                let v = value(&mut it, arg)?;
                push_msat = v
                    .parse()
                    .map_err(|_| format!("--push-msat {v:?} is not a whole number of msat"))?;
            }
            "--public" => public = true,
            a if a.starts_with("--") => return Err(format!("open: unknown flag {a:?}")),
            _ => positional.push(arg),
        }
    }
    let [peer, amount] = positional.as_slice() else {
        return Err("open: expected <node id>@<host:port> <amount_sat>".into());
    };
    control::parse_peer(peer)?;
    let amount_sat: u64 = amount
        .parse()
        .map_err(|_| format!("amount {amount:?} is not a whole number of satoshis"))?;
    if amount_sat == 0 {
        return Err("amount must be positive".into());
    }
    if push_msat > amount_sat.saturating_mul(1000) {
        return Err(format!(
            "--push-msat {push_msat} exceeds the channel's {amount_sat} sat"
        ));
    }
    Ok(Request::Open {
        peer: peer.to_string(),
        amount_sat,
        push_msat,
        public,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    const ID: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

    #[test]
    fn client_commands() {
        let c = parse(&args(&format!(
            "--data-dir d open {ID}@127.0.0.1:9735 1000 --push-msat 5 --public"
        )))
        .expect("parses");
        let Command::Client { data_dir, request } = c else {
            panic!("not a client command")
        };
        assert_eq!(data_dir, PathBuf::from("d"));
        assert_eq!(
            request,
            Request::Open {
                peer: format!("{ID}@127.0.0.1:9735"),
                amount_sat: 1000,
                push_msat: 5,
                public: true
            }
        );
        assert!(
            parse(&args("info --data-dir d")).is_ok(),
            "flag after command"
        );
        assert!(parse(&args("--data-dir d open x@1.2.3.4:5 1000")).is_err());
        assert!(parse(&args(&format!("--data-dir d open {ID}@h:1 -5"))).is_err());
        assert!(parse(&args(&format!("--data-dir d open {ID}@h:1 0"))).is_err());
        assert!(parse(&args(&format!(
            "--data-dir d open {ID}@h:1 1 --push-msat 1001"
        )))
        .is_err());
        assert!(parse(&args("--data-dir d info extra")).is_err());
        assert!(parse(&args("--data-dir d frobnicate")).is_err());
        assert!(parse(&args("info")).is_err(), "no data dir");
    }

    #[test]
    fn daemon_options() {
        let Command::Daemon(o) = parse(&args(
            "daemon --data-dir d --network regtest --esplora http://x --dev-faults $channel_ready",
        ))
        .expect("parses") else {
            panic!("not daemon")
        };
        assert_eq!(o.network, Network::Regtest);
        assert_eq!(o.dev_faults.as_deref(), Some("$channel_ready"));
        assert!(parse(&args("daemon --data-dir d --network regtest")).is_err());
        assert!(parse(&args(
            "daemon --data-dir d --network moon --esplora http://x"
        ))
        .is_err());
        assert!(parse(&args(
            "daemon --data-dir d --network regtest --esplora http://x --dev-faults ?nope"
        ))
        .is_err());
    }
}
