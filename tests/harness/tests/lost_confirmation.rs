//! Regression test for a loss the process-level kill test found: a sync persists the chain
//! watcher's state ("funding confirmed") before the confirmation reaches the channel, so a
//! process killed in between restarts with a watcher that never reports the confirmation again
//! and a channel stuck at 0 confirmations. The moment is microseconds wide, so this test builds
//! that on-disk state directly: the acceptor is SIGKILLed while awaiting confirmations, a block
//! confirms the funding, and the acceptor's persisted watcher state is advanced to "confirmed
//! at that block" (what the lost sync would have written) before it restarts. The channel must
//! still become ready on both sides.

// This binary's TRACE log file, for the log-secret check (core/tests/common/trace.rs).
#[path = "../../../core/tests/common/trace.rs"]
mod trace;

use std::io::{Read, Write};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use bitcoin::{Address, Amount};
use serde_json::{json, Value};
use tern_devnet::{Devnet, TxState};
use tern_harness::control::Request;
use tern_harness::demo::{funding_txid, only_channel};
use tern_harness::procs::{self, str_of, u64_of, DaemonProc};

const BIN: &str = env!("CARGO_BIN_EXE_tern");

fn http_get_json(base: &str, path: &str) -> Value {
    let host = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    let body = answer.split_once("\r\n\r\n").expect("http body").1;
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// Rewrites the daemon's persisted chain state as the lost sync would have left it.
fn advance_watcher(db: &Path, txid: &str, height: u32, hash: &str, time: u64) {
    let conn = rusqlite::Connection::open(db).expect("open db");
    let raw: Vec<u8> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'chain_state'",
            [],
            |r| r.get(0),
        )
        .expect("chain state");
    let (version, body) = raw.split_first().expect("versioned record");
    let mut state: Value = serde_json::from_slice(body).expect("json");
    let shown = state.to_string();
    let watch = state["txs"]
        .get_mut(txid)
        .unwrap_or_else(|| panic!("the funding {txid} is not watched: {shown}"));
    assert_eq!(watch["state"], "Unconfirmed", "{watch}");
    watch["state"] = json!({ "Confirmed": {
        "height": height, "block_hash": hash, "block_time": time } });
    state["tip"] = json!({ "height": height, "hash": hash });
    let mut out = vec![*version];
    out.extend(serde_json::to_vec(&state).expect("json"));
    let n = conn
        .execute(
            "UPDATE meta SET value = ?1 WHERE key = 'chain_state'",
            [out],
        )
        .expect("update");
    assert_eq!(n, 1);
}

#[test]
fn a_confirmation_persisted_by_the_watcher_but_not_the_channel_is_not_lost() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let devnet = rt.block_on(Devnet::start()).expect("devnet");
    let url = devnet.base_url();
    let dir = procs::temp_dir("tern-lost-conf");
    let bin = Path::new(BIN);
    let t = Duration::from_secs(20);
    let mut acceptor = DaemonProc::new(bin, "acceptor", &dir.join("acceptor"), &url);
    let mut opener = DaemonProc::new(bin, "opener", &dir.join("opener"), &url);
    let info = acceptor
        .start(&["--listen", "127.0.0.1:0"], t)
        .expect("acceptor");
    let listen = str_of(&info, "listen").to_string();
    let peer = format!("{}@{listen}", str_of(&info, "node_id"));
    opener.start(&[], t).expect("opener");
    let address = opener.must(&Request::NewAddress).expect("address");
    let address = Address::from_str(str_of(&address, "address"))
        .expect("valid")
        .assume_checked();
    devnet
        .faucet(&address, Amount::from_sat(500_000))
        .expect("faucet");
    devnet.mine(1);
    opener
        .wait_for(t, "funded", |o| {
            let _ = o.call(&Request::Sync);
            Ok(u64_of(&o.must(&Request::Balance)?, "onchain_confirmed_sat") == 500_000)
        })
        .expect("funded");
    opener
        .must(&Request::Open {
            peer,
            amount_sat: 200_000,
            push_msat: 0,
            public: false,
        })
        .expect("open");
    acceptor
        .wait_for(t, "awaiting confirmations", |a| {
            Ok(only_channel(a).is_ok_and(|c| c["state"] == "AwaitingConfirmations"))
        })
        .expect("durable on the acceptor");
    let txid = funding_txid(&only_channel(&acceptor).expect("channel")).expect("txid");
    opener
        .wait_for(t, "broadcast", |_| {
            Ok(devnet.tx_state(&txid) == TxState::Mempool)
        })
        .expect("broadcast");

    acceptor.kill();
    devnet.mine(1);
    let TxState::Confirmed { height, block_hash } = devnet.tx_state(&txid) else {
        panic!("the funding is not confirmed")
    };
    let block = http_get_json(&url, &format!("/block/{block_hash}"));
    let time = block["timestamp"].as_u64().expect("block timestamp");
    advance_watcher(
        &dir.join("acceptor").join("tern.sqlite"),
        &txid.to_string(),
        height,
        &block_hash.to_string(),
        time,
    );

    acceptor
        .start(&["--listen", &listen], t)
        .expect("acceptor restarts");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = [&opener, &acceptor].iter().all(|d| {
            let _ = d.call(&Request::Sync);
            only_channel(d).is_ok_and(|c| c["state"] == "Ready")
        });
        if ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready: opener {:?}; acceptor {:?}",
            opener.channels(),
            acceptor.channels()
        );
        devnet.mine(1);
        std::thread::sleep(Duration::from_millis(300));
    }
    opener.stop(Duration::from_secs(5));
    acceptor.stop(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&dir);
}
