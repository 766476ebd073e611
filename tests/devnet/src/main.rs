//! `tern-devnet`: serve a regtest chain over the Esplora API on a laptop.
//!
//! ```text
//! tern-devnet [--port 3002] [--host 127.0.0.1] [--data-dir DIR] [--initial-blocks 110]
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use tern_devnet::{Devnet, DevnetConfig};

const USAGE: &str = "usage: tern-devnet [--port 3002] [--host 127.0.0.1] [--data-dir DIR] \
                     [--initial-blocks N]";

fn parse_args() -> Result<DevnetConfig, String> {
    let mut config = DevnetConfig::default();
    let mut host: IpAddr = [127, 0, 0, 1].into();
    let mut port: u16 = 3002;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--port" => {
                port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--host" => {
                host = value("--host")?
                    .parse()
                    .map_err(|e| format!("--host: {e}"))?
            }
            "--data-dir" => config.data_dir = Some(PathBuf::from(value("--data-dir")?)),
            "--initial-blocks" => {
                config.initial_blocks = value("--initial-blocks")?
                    .parse()
                    .map_err(|e| format!("--initial-blocks: {e}"))?
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    config.listen = SocketAddr::new(host, port);
    Ok(config)
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = match parse_args() {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let devnet = match Devnet::start_with(config).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tern-devnet: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (height, hash) = devnet.tip();
    println!("tern-devnet: Esplora API at {}", devnet.base_url());
    println!("  tip {height} {hash}");
    println!("  faucet {}", devnet.faucet_address());
    println!(
        "  control: POST {}/devnet/mine {{\"blocks\": 1}}",
        devnet.base_url()
    );
    println!(
        "  posted: GET {}/devnet/posted (what came through POST /tx)",
        devnet.base_url()
    );
    if tokio::signal::ctrl_c().await.is_err() {
        eprintln!("tern-devnet: cannot wait for ctrl-c; exiting");
    }
    devnet.shutdown();
    ExitCode::SUCCESS
}
