//! Request budget of Tern's chain + wallet sync, measured against an in-process devnet.
//!
//! ```text
//! cargo run --release -p tern-core --example sync_budget
//! ```
//!
//! Prints one line per case, `<case>: requests=N bytes=M` (response body bytes, as counted by
//! the devnet), for comparison with ldk-node:
//! - `fresh-no-change`: a new process with a wallet of 100 txs, one address handed out and 10
//!   ready channels, nothing changed since the last sync.
//! - `new-block-10-channels`: one new block, 10 ready channels (the worst block of one
//!   `to_self_delay / 4` interval; details on stderr).
//! - `new-block-100-history`: one new block, a wallet with 100 historical txs and one address
//!   handed out.

use bdk_wallet::rusqlite::Connection;
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use bitcoin::{Amount, Network, OutPoint};
use tern_core::chain::{sync, ChainState, EsploraConfig, EsploraSource, SyncPlanner};
use tern_core::proto::bolt3::funding_script_pubkey;
use tern_core::proto::keys::KeysManager;
use tern_core::wallet::OnchainWallet;
use tern_devnet::Devnet;

fn pubkey(i: u8) -> PublicKey {
    PublicKey::from_secret_key(
        &Secp256k1::new(),
        &SecretKey::from_slice(&[i; 32]).expect("key"),
    )
}

async fn sync_once(
    src: &EsploraSource,
    state: ChainState,
    wallet: Option<&mut OnchainWallet>,
) -> ChainState {
    let scripts = wallet
        .as_ref()
        .map(|w| w.scripts_to_query())
        .unwrap_or_default();
    let out = sync(src, SyncPlanner::new(state, scripts), None)
        .await
        .expect("sync");
    if let Some(w) = wallet {
        w.apply_sync(&out.scripts, &out.events, out.state.tip, 0)
            .expect("apply");
    }
    out.state
}

fn line(devnet: &Devnet, case: &str) {
    let c = devnet.requests();
    println!("{case}: requests={} bytes={}", c.total, c.bytes);
}

#[tokio::main]
async fn main() {
    let devnet = Devnet::start().await.expect("devnet");
    let src = EsploraSource::new(&EsploraConfig::new(devnet.base_url())).expect("client");
    let keys = KeysManager::new(&[9; 32], Network::Regtest).expect("keys");
    let (mut wallet, _) = OnchainWallet::open(
        Connection::open_in_memory().expect("db"),
        &keys.wallet_descriptors(),
        Network::Regtest,
    )
    .expect("wallet");
    for _ in 0..100 {
        let a = wallet.new_address().expect("address");
        devnet.faucet(&a, Amount::from_sat(20_000)).expect("faucet");
    }
    let mut channels = ChainState::default();
    for i in 0..10u8 {
        let script = funding_script_pubkey(&pubkey(10 + i), &pubkey(20 + i));
        let a = bitcoin::Address::from_script(&script, Network::Regtest).expect("address");
        let txid = devnet
            .faucet(&a, Amount::from_sat(200_000))
            .expect("faucet");
        channels.watch_outpoint(OutPoint::new(txid, 0), 144);
    }
    devnet.mine(1);
    let mut both = channels.clone();
    both = sync_once(&src, both, Some(&mut wallet)).await;
    wallet.new_address().expect("address");
    channels = sync_once(&src, channels, None).await;

    // fresh-no-change: a new client (fresh process), the saved state, nothing changed.
    let fresh = EsploraSource::new(&EsploraConfig::new(devnet.base_url())).expect("client");
    devnet.reset_requests();
    sync_once(
        &fresh,
        ChainState::decode(&both.encode()).expect("decode"),
        Some(&mut wallet),
    )
    .await;
    line(&devnet, "fresh-no-change");

    // new-block-10-channels: every block of one interval; report the worst.
    let (mut worst, mut worst_bytes, mut total) = (0, 0, 0);
    let interval = 144 / 4;
    for _ in 0..interval {
        devnet.mine(1);
        devnet.reset_requests();
        channels = sync_once(&src, channels, None).await;
        let c = devnet.requests();
        total += c.total;
        if c.total > worst {
            (worst, worst_bytes) = (c.total, c.bytes);
        }
    }
    println!("new-block-10-channels: requests={worst} bytes={worst_bytes}");
    eprintln!(
        "  (worst block of {interval}; {total} requests over the {interval} blocks, each channel \
         checked once)"
    );

    // new-block-100-history: the wallet alone.
    let mut wallet_only = ChainState {
        tip: both.tip,
        ..ChainState::default()
    };
    wallet_only = sync_once(&src, wallet_only, Some(&mut wallet)).await;
    devnet.mine(1);
    devnet.reset_requests();
    sync_once(&src, wallet_only, Some(&mut wallet)).await;
    line(&devnet, "new-block-100-history");
}
