//! `tern`: the desktop harness (devnet, daemon, CLI, demo). See `tern --help`.

use std::process::ExitCode;
use std::time::Duration;

use tern_harness::cli::{self, Command};
use tern_harness::secrets::{self, SecretError};
use tern_harness::{control, daemon, demo, wake};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("tern: {msg}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Command::Init {
            data_dir,
            words_stdin,
            network,
        } => init(&data_dir, words_stdin, network),
        Command::Client { data_dir, request } => {
            match control::call(&data_dir, &request, Duration::from_secs(120)) {
                Ok(v) => {
                    println!("{v}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("tern: {e}");
                    ExitCode::from(e.exit_code())
                }
            }
        }
        Command::Demo { keep } => match demo::run(keep) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tern demo: FAILED: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Devnet(config) => {
            runtime().map_or(ExitCode::FAILURE, |rt| rt.block_on(run_devnet(config)))
        }
        Command::Wake(cmd) => {
            runtime().map_or(ExitCode::FAILURE, |rt| match rt.block_on(wake::run(cmd)) {
                Ok((report, failed)) => {
                    println!("{report}");
                    if failed {
                        ExitCode::FAILURE
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(e) => {
                    eprintln!("tern wake: {e}");
                    ExitCode::FAILURE
                }
            })
        }
        Command::Daemon(options) => runtime().map_or(ExitCode::FAILURE, |rt| {
            match rt.block_on(daemon::run(options)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tern daemon: {e}");
                    ExitCode::FAILURE
                }
            }
        }),
    }
}

/// `tern init`: exit 2 for bad words, 1 when the data dir is refused.
fn init(data_dir: &std::path::Path, words_stdin: bool, network: bitcoin::Network) -> ExitCode {
    let mut words = String::new();
    if words_stdin {
        use std::io::Read;
        if let Err(e) = std::io::stdin().read_to_string(&mut words) {
            eprintln!("tern init: cannot read the words from stdin: {e}");
            return ExitCode::from(2);
        }
    }
    let given = words_stdin.then_some(words.as_str());
    match secrets::init(data_dir, given, network) {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e @ SecretError::BadWords(_)) => {
            eprintln!("tern init: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("tern init: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Runtime::new() {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("tern: cannot start the async runtime: {e}");
            None
        }
    }
}

async fn run_devnet(config: tern_devnet::DevnetConfig) -> ExitCode {
    let devnet = match tern_devnet::Devnet::start_with(config).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tern devnet: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The handler is in place before the first line is printed: a driver that reads it and
    // sends SIGINT at once must not kill the process by the default action.
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = match signal(SignalKind::interrupt()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tern devnet: cannot handle SIGINT: {e}");
            devnet.shutdown();
            return ExitCode::FAILURE;
        }
    };
    let (height, hash) = devnet.tip();
    println!("tern devnet: Esplora API at {}", devnet.base_url());
    println!("  tip {height} {hash}");
    println!("  faucet {}", devnet.faucet_address());
    println!(
        "  control: POST {}/devnet/mine {{\"blocks\": 1}}",
        devnet.base_url()
    );
    println!("  Ctrl-C stops");
    interrupt.recv().await;
    devnet.shutdown();
    ExitCode::SUCCESS
}
