//! `tern`'s command line, parsed with clap (derive): `tern --help` and `tern <command> --help`
//! describe every command and flag; a bad argument is one line naming the problem (the CLI
//! exits 2), never the whole usage.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use bitcoin::Network;
use clap::error::{ContextKind, ErrorKind};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use tern_core::node::InboundPolicy;

use crate::control::{self, Request};
use crate::daemon::DaemonOptions;

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
    /// `tern init`: a new node's data dir from BIP39 words.
    Init {
        /// The new node's data dir.
        data_dir: PathBuf,
        /// Read the words from stdin (else generate them).
        words_stdin: bool,
        /// The network of the first address shown.
        network: Network,
    },
    /// A control request to the daemon at `data_dir`.
    Client {
        /// The daemon's data dir.
        data_dir: PathBuf,
        /// The request.
        request: Request,
    },
    /// `tern wake`: one background wake of the node at the data dir.
    Wake(crate::wake::WakeCommand),
    /// `--help`, `help` or `--version`: this text goes to stdout (exit 0).
    Help(String),
}

/// The usage line of each command (its `--help` and its errors show it).
mod usage {
    pub const DEMO: &str = "tern demo [--keep]";
    pub const DEVNET: &str = "tern devnet [--port 3002] [--host 127.0.0.1] [--data-dir D]";
    pub const DAEMON: &str = "tern daemon --data-dir D --network regtest|signet|testnet|bitcoin \
                              --esplora URL [--esplora-fallback URL]... [--listen HOST:PORT] [--inbound accept|reject|manual] \
                              [--sync-interval-ms N] [--fee-max-age-ms N] [--dev-faults RULES] [--dev-halt-after ACTION]";
    pub const INIT: &str = "tern init --data-dir D [--words-stdin] [--network regtest]";
    pub const WAKE: &str = "tern wake --data-dir D [--deadline-ms N] [--network N --esplora URL]";
    pub const INFO: &str = "tern --data-dir D info";
    pub const NEW_ADDRESS: &str = "tern --data-dir D new-address";
    pub const BALANCE: &str = "tern --data-dir D balance";
    pub const CHANNELS: &str = "tern --data-dir D channels";
    pub const PEERS: &str = "tern --data-dir D peers";
    pub const SYNC: &str = "tern --data-dir D sync";
    pub const STOP: &str = "tern --data-dir D stop";
    pub const CONNECT: &str = "tern --data-dir D connect <node id>@<host:port>";
    pub const OPEN: &str = "tern --data-dir D open <node id>@<host:port> <amount_sat> \
                            [--push-msat N] [--public]";
    pub const EVENTS: &str = "tern --data-dir D events [--ack]";
    pub const SEND: &str = "tern --data-dir D send <address> <sat|all> [--feerate-sat-vb N]";
    pub const CLOSE: &str = "tern --data-dir D close <channel_id> [--address A]";
    pub const FORCE_CLOSE: &str = "tern --data-dir D force-close <channel_id>";
}

/// Tern's desktop harness: a regtest devnet, node daemons, and the CLI that talks to them.
///
/// `tern --data-dir D <command>` sends one request to the daemon at D over D/tern.sock and
/// prints one JSON object.
#[derive(Debug, Parser)]
#[command(
    name = "tern",
    version,
    after_help = "exit codes: 0 ok, 1 node error, 2 usage or bad input, 3 no daemon running at D"
)]
struct Cli {
    /// The node's directory: its secret (D/mnemonic or D/seed), database, control socket
    /// D/tern.sock and log D/tern.log. For `devnet`: where the chain is kept.
    #[arg(long, global = true, value_name = "D")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// The kill-and-resume demo: a devnet and two daemons; the phone is SIGKILLed three times
    /// mid-open and the channel still ends ready.
    #[command(override_usage = usage::DEMO)]
    Demo {
        /// Keep the demo's temporary directory (data dirs and logs) afterwards.
        #[arg(long)]
        keep: bool,
    },
    /// An in-process regtest chain serving the Esplora HTTP API (and /devnet/ controls).
    #[command(override_usage = usage::DEVNET)]
    Devnet {
        /// TCP port to listen on.
        #[arg(long, default_value_t = 3002, value_parser = port)]
        port: u16,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1", value_parser = host)]
        host: IpAddr,
    },
    /// Run one node: the secret from D/mnemonic (see `init`) or D/seed (created once), a
    /// background chain sync, and the control socket D/tern.sock.
    #[command(override_usage = usage::DAEMON)]
    Daemon(DaemonArgs),
    /// Create a node in D from BIP39 words: 24 new words (printed once: write them down), or
    /// yours with --words-stdin; they are kept in D/mnemonic (mode 0600). The on-chain wallet is
    /// the standard BIP84 one of the words. Refuses a D that already holds a node.
    #[command(override_usage = usage::INIT)]
    Init {
        /// Read the words (12 to 24 of BIP39's English list) from standard input instead of
        /// generating 24.
        #[arg(long)]
        words_stdin: bool,
        /// The network of the first receive address shown (the words fit every network).
        #[arg(long, default_value = "regtest", value_parser = parse_network)]
        network: Network,
    },
    /// One background wake of the node at D (no daemon may run there): lock, sync once, dial
    /// only the peers a channel needs, wait until quiet or the deadline, stop; prints the
    /// report (outcome, events, pending channels, costs) as JSON. SIGINT/SIGTERM cancel it.
    #[command(override_usage = usage::WAKE)]
    Wake {
        /// The whole wake ends within N milliseconds.
        #[arg(long, value_name = "N", default_value_t = 25_000, value_parser = deadline_ms)]
        deadline_ms: u64,
        /// The network (default: the one the daemon last ran with, from D/node.json).
        #[arg(long, value_parser = parse_network)]
        network: Option<Network>,
        /// The Esplora server (default: the daemon's, from D/node.json).
        #[arg(long, value_name = "URL", value_parser = esplora_url)]
        esplora: Option<String>,
    },
    /// Node id, listen address, network, tip, sync status, halted.
    #[command(override_usage = usage::INFO)]
    Info,
    /// A new on-chain receive address.
    #[command(override_usage = usage::NEW_ADDRESS)]
    NewAddress,
    /// On-chain balances (confirmed, unconfirmed, locked for opens) and channel balances.
    #[command(override_usage = usage::BALANCE)]
    Balance,
    /// Every channel, with its status in words.
    #[command(override_usage = usage::CHANNELS)]
    Channels,
    /// Connected peers.
    #[command(override_usage = usage::PEERS)]
    Peers,
    /// One chain sync now.
    #[command(override_usage = usage::SYNC)]
    Sync,
    /// Stop the daemon.
    #[command(override_usage = usage::STOP)]
    Stop,
    /// Connect to a peer (and keep reconnecting to it).
    #[command(override_usage = usage::CONNECT)]
    Connect {
        /// The peer: node id (66 hex digits) @ host:port.
        #[arg(value_name = "NODE_ID@HOST:PORT", value_parser = peer)]
        peer: String,
    },
    /// Open a channel to a peer, funded from the on-chain wallet.
    #[command(override_usage = usage::OPEN)]
    Open {
        /// The peer: node id (66 hex digits) @ host:port.
        #[arg(value_name = "NODE_ID@HOST:PORT", value_parser = peer)]
        peer: String,
        /// The channel's size in satoshis.
        #[arg(value_parser = amount_sat, allow_negative_numbers = true)]
        amount_sat: u64,
        /// Give the peer this much of the channel at open, in millisatoshis.
        #[arg(long, value_name = "N", default_value_t = 0, value_parser = push_msat)]
        push_msat: u64,
        /// Announce the channel to the network.
        #[arg(long)]
        public: bool,
    },
    /// Pending events (ChannelPending, ChannelReady, ChannelOpenFailed, ...).
    #[command(override_usage = usage::EVENTS)]
    Events {
        /// Mark the listed events handled (they are not listed again).
        #[arg(long)]
        ack: bool,
    },
    /// Close a channel cooperatively: `shutdown`, the closing fee negotiated, the agreed
    /// transaction broadcast. Our share goes to --address, or to a fresh wallet address.
    /// `channels` shows the progress, `events` ChannelClosing then ChannelClosed.
    #[command(override_usage = usage::CLOSE)]
    Close {
        /// The channel id (64 hex digits, as `channels` shows it).
        #[arg(value_name = "CHANNEL_ID", value_parser = channel_id)]
        channel_id: String,
        /// Where our share goes: an address of the daemon's network (segwit; taproot only if
        /// the peer supports option_shutdown_anysegwit).
        #[arg(long, value_name = "A")]
        address: Option<String>,
    },
    /// Force-close a channel: broadcast our latest commitment; our balance comes back to the
    /// wallet after the peer's to_self_delay (`channels` and `balance` show when).
    #[command(override_usage = usage::FORCE_CLOSE)]
    ForceClose {
        /// The channel id (64 hex digits, as `channels` shows it).
        #[arg(value_name = "CHANNEL_ID", value_parser = channel_id)]
        channel_id: String,
    },
    /// Pay on chain from the wallet; prints {"txid": ...}. Coins locked for opens in progress
    /// are never spent.
    #[command(override_usage = usage::SEND)]
    Send {
        /// The recipient: an address of the daemon's network.
        address: String,
        /// Satoshis to pay (the fee comes on top), or `all`: every spendable coin, less the fee.
        #[arg(value_name = "SAT|all", value_parser = send_amount, allow_negative_numbers = true)]
        amount: SendArg,
        /// Feerate in sat/vB, 1 to 1000 (default: the node's estimate for ~6 blocks).
        #[arg(long, value_name = "N", value_parser = feerate)]
        feerate_sat_vb: Option<u64>,
    },
}

/// `tern daemon`'s flags.
#[derive(Debug, Args)]
struct DaemonArgs {
    /// The Bitcoin network: regtest, signet, testnet or bitcoin (mainnet).
    #[arg(long, value_parser = parse_network)]
    network: Network,
    /// The Esplora server's base URL (http or https), e.g. http://127.0.0.1:3002.
    #[arg(long, value_name = "URL", value_parser = esplora_url)]
    esplora: String,
    /// Another Esplora server, asked when the one asked fails or lies (repeat for more; in
    /// order).
    #[arg(long = "esplora-fallback", value_name = "URL", value_parser = esplora_url)]
    esplora_fallback: Vec<String>,
    /// Accept peers on HOST:PORT (port 0 picks a free one; `info` shows it).
    #[arg(long, value_name = "HOST:PORT", value_parser = listen_addr)]
    listen: Option<String>,
    /// Channels peers open to us: accept them, reject them, or manual (an event asks).
    #[arg(long, value_enum, default_value_t = Inbound::Accept)]
    inbound: Inbound,
    /// Sync the chain every N milliseconds (default 1000 on regtest, 30000 elsewhere).
    #[arg(long, value_name = "N", value_parser = sync_interval_ms)]
    sync_interval_ms: Option<u64>,
    /// Fetch the fee estimates again when older than N milliseconds (default 600000: ten
    /// minutes; 0: at every use).
    #[arg(long, value_name = "N")]
    fee_max_age_ms: Option<u64>,
    /// Test hook: Core Lightning-style dev-disconnect rules, comma separated, e.g.
    /// '$channel_ready,-funding_created'.
    #[arg(long, value_name = "RULES", value_parser = dev_faults)]
    dev_faults: Option<String>,
    /// Test hook: halt the node right after this channel action (persist, broadcast, watch,
    /// emit, send:<message>); the socket stays up and `info` says "halted": true.
    #[arg(long, value_name = "ACTION")]
    dev_halt_after: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Inbound {
    /// Accept every valid open (an LSP).
    Accept,
    /// Refuse every open.
    Reject,
    /// Ask the app through an OpenChannelRequest event.
    Manual,
}

/// `tern send`'s amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendArg {
    Sat(u64),
    All,
}

fn port(s: &str) -> Result<u16, String> {
    s.parse()
        .map_err(|_| format!("--port {s:?} is not a port number (0-65535)"))
}

fn host(s: &str) -> Result<IpAddr, String> {
    s.parse()
        .map_err(|_| format!("--host {s:?} is not an IP address"))
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

fn esplora_url(s: &str) -> Result<String, String> {
    if s.starts_with("http://") || s.starts_with("https://") {
        Ok(s.to_string())
    } else {
        Err(format!("--esplora {s:?} is not an http(s) URL"))
    }
}

fn listen_addr(s: &str) -> Result<String, String> {
    if s.contains(':') {
        Ok(s.to_string())
    } else {
        Err(format!("--listen {s:?} is not host:port"))
    }
}

fn sync_interval_ms(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(ms),
        _ => Err(format!(
            "--sync-interval-ms {s:?} is not a positive whole number of milliseconds"
        )),
    }
}

fn dev_faults(s: &str) -> Result<String, String> {
    // Checked here so a typo is a usage error, not a daemon that dies later.
    tern_core::net::faults::FaultPlan::parse(s.split([',', ' ']).filter(|r| !r.is_empty()))
        .map_err(|e| format!("--dev-faults: {e}"))?;
    Ok(s.to_string())
}

fn peer(s: &str) -> Result<String, String> {
    control::parse_peer(s)?;
    Ok(s.to_string())
}

fn channel_id(s: &str) -> Result<String, String> {
    s.parse::<tern_core::proto::wire::ChannelId>()
        .map(|id| id.to_string())
        .map_err(|_| format!("{s:?} is not a channel id (64 hex digits)"))
}

fn amount_sat(s: &str) -> Result<u64, String> {
    let sat: u64 = s
        .parse()
        .map_err(|_| format!("amount {s:?} is not a whole number of satoshis"))?;
    if sat == 0 {
        return Err("amount must be positive".into());
    }
    Ok(sat)
}

fn push_msat(s: &str) -> Result<u64, String> {
    s.parse()
        .map_err(|_| format!("--push-msat {s:?} is not a whole number of msat"))
}

fn send_amount(s: &str) -> Result<SendArg, String> {
    if s == "all" {
        return Ok(SendArg::All);
    }
    amount_sat(s)
        .map(SendArg::Sat)
        .map_err(|e| format!("{e} (or all)"))
}

fn feerate(s: &str) -> Result<u64, String> {
    let max = tern_core::wallet::MAX_SEND_FEERATE.to_sat_per_vb_floor();
    match s.parse::<u64>() {
        Ok(v) if (1..=max).contains(&v) => Ok(v),
        _ => Err(format!(
            "--feerate-sat-vb {s:?} is not a whole number of sat/vB from 1 to {max}"
        )),
    }
}

/// `--deadline-ms`: 100 ms to 10 minutes.
fn deadline_ms(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if (100..=600_000).contains(&n) => Ok(n),
        _ => Err(format!(
            "--deadline-ms {s:?} is not a whole number of milliseconds from 100 to 600000"
        )),
    }
}

/// Parses `args` (without the program name). Errors are usage errors (exit 2), one line.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let argv = std::iter::once("tern".to_string()).chain(args.iter().cloned());
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            return Ok(Command::Help(e.render().to_string()))
        }
        Err(e) => return Err(one_line(&e, args)),
    };
    let data_dir = cli.data_dir;
    let need_dir = |command: &str| {
        data_dir
            .clone()
            .ok_or_else(|| format!("{command}: --data-dir D is required"))
    };
    let client = |command: &str, request: Request| {
        Ok(Command::Client {
            data_dir: need_dir(command)?,
            request,
        })
    };
    match cli.command {
        Cmd::Demo { keep } => match data_dir {
            Some(_) => Err("demo: takes no --data-dir (it makes its own temporary one)".into()),
            None => Ok(Command::Demo { keep }),
        },
        Cmd::Devnet { port, host } => Ok(Command::Devnet(tern_devnet::DevnetConfig {
            listen: SocketAddr::new(host, port),
            data_dir,
            ..tern_devnet::DevnetConfig::default()
        })),
        Cmd::Daemon(a) => Ok(Command::Daemon(daemon_options(need_dir("daemon")?, a))),
        Cmd::Init {
            words_stdin,
            network,
        } => Ok(Command::Init {
            data_dir: need_dir("init")?,
            words_stdin,
            network,
        }),
        Cmd::Wake {
            deadline_ms,
            network,
            esplora,
        } => Ok(Command::Wake(crate::wake::WakeCommand {
            data_dir: need_dir("wake")?,
            deadline: Duration::from_millis(deadline_ms),
            network,
            esplora,
        })),
        Cmd::Info => client("info", Request::Info),
        Cmd::NewAddress => client("new-address", Request::NewAddress),
        Cmd::Balance => client("balance", Request::Balance),
        Cmd::Channels => client("channels", Request::Channels),
        Cmd::Peers => client("peers", Request::Peers),
        Cmd::Sync => client("sync", Request::Sync),
        Cmd::Stop => client("stop", Request::Stop),
        Cmd::Events { ack } => client("events", Request::Events { ack }),
        Cmd::Connect { peer } => client("connect", Request::Connect { peer }),
        Cmd::Close {
            channel_id,
            address,
        } => client(
            "close",
            Request::Close {
                channel_id,
                address,
            },
        ),
        Cmd::ForceClose { channel_id } => client("force-close", Request::ForceClose { channel_id }),
        Cmd::Open {
            peer,
            amount_sat,
            push_msat,
            public,
        } => {
            if push_msat > amount_sat.saturating_mul(1000) {
                return Err(format!(
                    "open: --push-msat {push_msat} exceeds the channel's {amount_sat} sat"
                ));
            }
            client(
                "open",
                Request::Open {
                    peer,
                    amount_sat,
                    push_msat,
                    public,
                },
            )
        }
        Cmd::Send {
            address,
            amount,
            feerate_sat_vb,
        } => client(
            "send",
            Request::Send {
                address,
                amount_sat: match amount {
                    SendArg::Sat(sat) => Some(sat),
                    SendArg::All => None,
                },
                all: amount == SendArg::All,
                feerate_sat_vb,
            },
        ),
    }
}

fn daemon_options(data_dir: PathBuf, a: DaemonArgs) -> DaemonOptions {
    let sync_interval = match (a.sync_interval_ms, a.network) {
        (Some(ms), _) => Duration::from_millis(ms),
        (None, Network::Regtest) => Duration::from_secs(1),
        (None, _) => Duration::from_secs(30),
    };
    DaemonOptions {
        data_dir,
        network: a.network,
        esplora: a.esplora,
        esplora_fallbacks: a.esplora_fallback,
        listen: a.listen,
        dev_faults: a.dev_faults,
        dev_halt_after: a.dev_halt_after,
        inbound: match a.inbound {
            Inbound::Accept => InboundPolicy::AcceptAll,
            Inbound::Reject => InboundPolicy::RejectAll,
            Inbound::Manual => InboundPolicy::Manual,
        },
        sync_interval,
        fee_max_age: a.fee_max_age_ms.map(Duration::from_millis),
    }
}

/// The subcommand `args` name, if any (skipping `--data-dir D`).
fn subcommand_of(args: &[String]) -> Option<String> {
    let cli = Cli::command();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--data-dir" {
            it.next();
        } else if a.starts_with('-') {
            continue;
        } else {
            return cli.find_subcommand(a).map(|c| c.get_name().to_string());
        }
    }
    None
}

fn usage_of(command: &str) -> Option<&'static str> {
    Some(match command {
        "demo" => usage::DEMO,
        "devnet" => usage::DEVNET,
        "daemon" => usage::DAEMON,
        "init" => usage::INIT,
        "wake" => usage::WAKE,
        "connect" => usage::CONNECT,
        "open" => usage::OPEN,
        "events" => usage::EVENTS,
        "send" => usage::SEND,
        "close" => usage::CLOSE,
        "force-close" => usage::FORCE_CLOSE,
        _ => return None,
    })
}

/// Whether `command` takes no arguments at all (only the global --data-dir).
fn takes_no_arguments(command: &str) -> bool {
    Cli::command().find_subcommand(command).is_some_and(|c| {
        c.get_arguments()
            .all(|a| a.is_global_set() || a.get_id() == "help")
    })
}

/// One line for a clap error: the command, the problem, and the command's usage when the
/// problem is its shape.
fn one_line(err: &clap::Error, args: &[String]) -> String {
    let context = |kind| err.get(kind).map(ToString::to_string).unwrap_or_default();
    let command = subcommand_of(args);
    let name = command.as_deref().unwrap_or("");
    let prefix = command
        .as_deref()
        .map_or(String::new(), |c| format!("{c}: "));
    let with_usage = |problem: String| match usage_of(name) {
        Some(u) => format!("{prefix}{problem} (usage: {u})"),
        None => format!("{prefix}{problem}"),
    };
    let line = match err.kind() {
        ErrorKind::InvalidSubcommand => format!(
            "unknown command {:?} (tern --help lists them)",
            context(ContextKind::InvalidSubcommand)
        ),
        ErrorKind::UnknownArgument if takes_no_arguments(name) => format!(
            "{name} takes no arguments, got {:?}",
            context(ContextKind::InvalidArg)
        ),
        ErrorKind::UnknownArgument => with_usage(format!(
            "unexpected argument {:?}",
            context(ContextKind::InvalidArg)
        )),
        ErrorKind::MissingRequiredArgument => {
            with_usage(format!("expected {}", context(ContextKind::InvalidArg)))
        }
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            "no command given (tern --help lists them)".to_string()
        }
        ErrorKind::ValueValidation => match std::error::Error::source(err) {
            Some(source) => format!("{prefix}{source}"),
            None => first_line(err),
        },
        ErrorKind::InvalidValue => format!(
            "{prefix}{} {:?}: expected {}",
            context(ContextKind::InvalidArg),
            context(ContextKind::InvalidValue),
            context(ContextKind::ValidValue)
        ),
        _ => format!("{prefix}{}", first_line(err)),
    };
    // One line, whatever a message held.
    line.lines().collect::<Vec<_>>().join(" ")
}

fn first_line(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let line = rendered.lines().next().unwrap_or("invalid arguments");
    line.trim_start_matches("error: ").to_string()
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
    fn close_and_force_close() {
        let id = "ab".repeat(32);
        let request = |s: &str| match parse(&args(&format!("--data-dir d {s}"))) {
            Ok(Command::Client { request, .. }) => Ok(request),
            Ok(other) => panic!("not a request: {other:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(
            request(&format!("close {id}")),
            Ok(Request::Close {
                channel_id: id.clone(),
                address: None
            })
        );
        assert_eq!(
            request(&format!("close {id} --address bcrt1qxyz")),
            Ok(Request::Close {
                channel_id: id.clone(),
                address: Some("bcrt1qxyz".into())
            })
        );
        assert_eq!(
            request(&format!("force-close {id}")),
            Ok(Request::ForceClose {
                channel_id: id.clone()
            })
        );
        let bad = request("close xyz").expect_err("not an id");
        assert!(bad.contains("not a channel id"), "{bad}");
        assert!(!bad.contains('\n'), "one line: {bad}");
        assert!(request("force-close").is_err(), "no id");
        assert!(request(&format!("force-close {id} extra")).is_err());
    }

    #[test]
    fn send_and_init() {
        let send = |s: &str| match parse(&args(&format!("--data-dir d send {s}"))) {
            Ok(Command::Client { request, .. }) => Ok(request),
            Ok(other) => panic!("not a request: {other:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(
            send("bcrt1qxyz 5000 --feerate-sat-vb 3"),
            Ok(Request::Send {
                address: "bcrt1qxyz".into(),
                amount_sat: Some(5000),
                all: false,
                feerate_sat_vb: Some(3)
            })
        );
        assert_eq!(
            send("bcrt1qxyz all"),
            Ok(Request::Send {
                address: "bcrt1qxyz".into(),
                amount_sat: None,
                all: true,
                feerate_sat_vb: None
            })
        );
        for bad in [
            "a 0",
            "a -3",
            "a some",
            "a 1 --feerate-sat-vb 0",
            "a 1 --feerate-sat-vb 1001",
        ] {
            let e = send(bad).expect_err(bad);
            assert!(e.starts_with("send: "), "{bad}: {e}");
        }
        let Ok(Command::Init {
            data_dir,
            words_stdin,
            network,
        }) = parse(&args("init --data-dir n --words-stdin --network bitcoin"))
        else {
            panic!("init")
        };
        assert_eq!(
            (data_dir, words_stdin, network),
            (PathBuf::from("n"), true, Network::Bitcoin)
        );
        assert!(matches!(
            parse(&args("init --data-dir n")),
            Ok(Command::Init {
                network: Network::Regtest,
                words_stdin: false,
                ..
            })
        ));
        assert!(parse(&args("init")).is_err(), "no data dir");
    }

    #[test]
    fn errors_are_one_line_naming_the_problem() {
        let err = |s: &str| parse(&args(s)).expect_err(s);
        let cases = [
            (
                "--data-dir d open 02aa@h:1 1000",
                "open: node id \"02aa\" is not a public key (66 hex digits)",
            ),
            (
                "--data-dir d frobnicate",
                "unknown command \"frobnicate\" (tern --help lists them)",
            ),
            (
                "--data-dir d info extra",
                "info takes no arguments, got \"extra\"",
            ),
            (
                "--data-dir d events --all",
                "events: unexpected argument \"--all\" (usage: tern --data-dir D events [--ack])",
            ),
            (
                "daemon --data-dir d --network regtest",
                "daemon: expected --esplora <URL>",
            ),
            ("", "no command given (tern --help lists them)"),
            (
                "daemon --data-dir d --network regtest --esplora http://x --inbound maybe",
                "daemon: --inbound <INBOUND> \"maybe\": expected accept, reject, manual",
            ),
        ];
        for (input, want) in cases {
            let e = err(input);
            assert!(e.starts_with(want), "{input}: {e}");
            assert!(!e.contains('\n'), "{input}: {e:?}");
        }
        let help = |s: &str| match parse(&args(s)) {
            Ok(Command::Help(text)) => text,
            other => panic!("{s}: {other:?}"),
        };
        assert!(help("--help").contains("daemon"));
        assert!(help("open --help").contains("--push-msat"));
        assert!(help("help send").contains("--feerate-sat-vb"));
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
        assert_eq!(o.sync_interval, Duration::from_secs(1));
        assert_eq!(o.inbound, InboundPolicy::AcceptAll);
        assert!(parse(&args("daemon --data-dir d --network regtest")).is_err());
        assert!(parse(&args(
            "daemon --data-dir d --network moon --esplora http://x"
        ))
        .is_err());
        assert!(parse(&args(
            "daemon --data-dir d --network regtest --esplora http://x --dev-faults ?nope"
        ))
        .is_err());
        assert!(parse(&args("daemon --network regtest --esplora http://x")).is_err());
        assert!(parse(&args(
            "daemon --data-dir d --network regtest --esplora http://x --sync-interval-ms 0"
        ))
        .is_err());
        let Command::Daemon(o) = parse(&args(
            "daemon --data-dir d --network signet --esplora https://x --inbound manual \
             --listen 0.0.0.0:9735 --esplora-fallback https://y --esplora-fallback http://z/",
        ))
        .expect("parses") else {
            panic!("not daemon")
        };
        assert_eq!(o.sync_interval, Duration::from_secs(30));
        assert_eq!(o.inbound, InboundPolicy::Manual);
        assert_eq!(o.listen.as_deref(), Some("0.0.0.0:9735"));
        assert_eq!(o.esplora_fallbacks, ["https://y", "http://z/"]);
        assert!(parse(&args(
            "daemon --data-dir d --network regtest --esplora http://x --esplora-fallback ftp://y"
        ))
        .is_err());
    }
}
