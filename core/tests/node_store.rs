//! The node and its data dir: one node per dir (the lock), `stop` releasing everything, and a
//! failed write never leaving a channel in memory ahead of disk (injected persist failures at
//! each durable point of an open, in both roles). Needs the `dev-disconnect` feature.
#![cfg(feature = "dev-disconnect")]

mod common;

use std::path::{Path, PathBuf};

use bitcoin::{Amount, Network};
use tern_core::node::{Builder, Node, NodeError, OpenChannelParams, StoreFaults};
use tern_core::proto::channel::ChannelState;
use tern_devnet::Devnet;

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tern-node-store-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn node(dir: &Path, devnet: &Devnet, seed: u8) -> Builder {
    Builder::new(Network::Regtest, dir, &devnet.base_url()).seed([seed; 32])
}

/// The file descriptors of this process open on files whose name starts with `tern.sqlite`
/// in `dir` (the database, its WAL and shared-memory files).
#[cfg(target_os = "linux")]
fn open_db_files(dir: &Path) -> Vec<PathBuf> {
    let db = dir.join("tern.sqlite");
    std::fs::read_dir("/proc/self/fd")
        .expect("fds")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with(&*db.to_string_lossy()))
        .collect()
}

#[tokio::test]
async fn a_second_node_on_the_same_dir_is_refused_until_the_first_stops() {
    let dir = temp_dir("lock");
    let devnet = Devnet::start().await.expect("devnet");
    let first = node(&dir, &devnet, 1).start().await.expect("first node");
    first.new_address().await.expect("the first node works");

    // Another Node in this process (an app and its extension would be two processes; the
    // lock is per open file, so it is the same case): refused at once, seed or not.
    for seed in [1, 2] {
        let second = node(&dir, &devnet, seed).start().await;
        match second {
            Err(NodeError::AlreadyRunning { data_dir }) => assert_eq!(data_dir, dir),
            other => panic!("second node on the dir: {other:?}"),
        }
    }
    // The refused start touched nothing: the first node still works.
    first.new_address().await.expect("still works");

    first.stop().await;
    #[cfg(target_os = "linux")]
    assert_eq!(
        open_db_files(&dir),
        Vec::<PathBuf>::new(),
        "stop closed both SQLite connections"
    );
    // Right after stop returns, another node opens the dir and sees the same node id.
    let again = node(&dir, &devnet, 1)
        .start()
        .await
        .expect("reopens at once");
    assert_eq!(again.node_id(), first.node_id());
    assert!(matches!(first.new_address().await, Err(NodeError::Stopped)));
    again.stop().await;
}

#[tokio::test]
async fn stop_wakes_every_event_waiter_and_later_calls_say_stopped() {
    let dir = temp_dir("stop");
    let devnet = Devnet::start().await.expect("devnet");
    let n = node(&dir, &devnet, 3).start().await.expect("node");
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let n = n.clone();
            tokio::spawn(async move { n.wait_next_event().await })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    n.stop().await;
    for w in waiters {
        let result = tokio::time::timeout(std::time::Duration::from_secs(5), w)
            .await
            .expect("woken")
            .expect("joined");
        assert!(matches!(result, Err(NodeError::Stopped)), "{result:?}");
    }
    assert!(matches!(n.list_balances().await, Err(NodeError::Stopped)));
    assert!(matches!(
        n.pending_events(10).await,
        Err(NodeError::Stopped)
    ));
    assert!(matches!(n.sync(None).await, Err(NodeError::Stopped)));
    // A second stop is harmless.
    n.stop().await;
}

/// A corrupt keys counter must fail the open, never restart at index 0 (which would reuse the
/// first channel's keys).
#[tokio::test]
async fn a_corrupt_channel_keys_counter_is_an_error_not_zero() {
    let dir = temp_dir("keys-counter");
    let devnet = Devnet::start().await.expect("devnet");
    // Written from a plain thread, as the node would (the test checks no commit runs on an
    // async thread).
    let db = dir.join("tern.sqlite");
    std::fs::create_dir_all(&dir).expect("dir");
    std::thread::spawn(move || {
        let mut store = tern_core::store::Store::open(db).expect("store");
        store
            .put_meta("next_channel_keys_index", &[1, 2, 3])
            .expect("corrupt it");
    })
    .join()
    .expect("written");
    let lsp_dir = temp_dir("keys-counter-lsp");
    let lsp = node(&lsp_dir, &devnet, 4)
        .listen("127.0.0.1:0")
        .start()
        .await
        .expect("lsp");
    let phone = node(&dir, &devnet, 5).start().await.expect("phone");
    common::node::fund(&devnet, &phone, 500_000).await;
    let addr = lsp.listen_addr().expect("listening").to_string();
    let result = phone
        .open_channel(OpenChannelParams::new(
            lsp.node_id(),
            addr,
            Amount::from_sat(100_000),
        ))
        .await;
    match result {
        Err(NodeError::Storage(e)) => {
            assert!(e.to_string().contains("next_channel_keys_index"), "{e}")
        }
        other => panic!("open with a corrupt keys counter: {other:?}"),
    }
    assert!(lsp.list_channels().await.is_empty());
    phone.stop().await;
    lsp.stop().await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Funder,
    Fundee,
}

/// How the open must end when `side`'s `k`-th channel persist fails.
async fn persist_fails(side: Side, k: u32, storage_gone: bool) {
    persist_fails_as(side, k, storage_gone, false).await;
}

/// [`persist_fails`], the failure a full disk (`disk_full`) or another refused write.
async fn persist_fails_as(side: Side, k: u32, storage_gone: bool, disk_full: bool) {
    let tag = format!("{side:?}-{k}-{storage_gone}-{disk_full}");
    let dir = temp_dir(&tag);
    let devnet = Devnet::start().await.expect("devnet");
    let faults = |s: Side| {
        if s == side {
            StoreFaults {
                fail_persists: vec![k],
                storage_gone,
                disk_full,
            }
        } else {
            StoreFaults::default()
        }
    };
    let lsp = node(&dir.join("lsp"), &devnet, 1)
        .listen("127.0.0.1:0")
        .channel_config(|c| c.open_timeout_secs = 4)
        .dev_store_faults(faults(Side::Fundee))
        .start()
        .await
        .expect("lsp");
    let phone = node(&dir.join("phone"), &devnet, 2)
        .channel_config(|c| c.open_timeout_secs = 4)
        .dev_store_faults(faults(Side::Funder))
        .start()
        .await
        .expect("phone");
    common::node::fund(&devnet, &phone, 1_000_000).await;
    lsp.sync(None).await.expect("sync");
    let addr = lsp.listen_addr().expect("listening").to_string();
    phone
        .open_channel(OpenChannelParams::new(
            lsp.node_id(),
            addr,
            Amount::from_sat(200_000),
        ))
        .await
        .expect("open");
    let victim: &Node = if side == Side::Funder { &phone } else { &lsp };
    let end = if storage_gone {
        // The victim halts: mine and sync until it has (its calls then say Stopped).
        for _ in 0..60 {
            if victim.is_stopped() {
                break;
            }
            devnet.mine(1);
            let _ = phone.sync(None).await;
            let _ = lsp.sync(None).await;
            tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        }
        common::node::OpenEnd::default()
    } else {
        common::node::drive_open(&devnet, &phone, &lsp, 80).await
    };
    assert_eq!(
        victim.dev_injected_store_failures(),
        1,
        "{tag}: the persist failed once"
    );
    if !storage_gone {
        assert!(!victim.is_stopped(), "{tag}: a refused write does not halt");
    }
    if storage_gone {
        // The storage is gone: the victim halted rather than go on from a state it could not
        // write. A new node on the same dir (the app restarted) finishes the open.
        assert!(victim.is_stopped(), "{tag}: halted");
        // The halt releases the dir in the background: a restart may wait for it briefly.
        let mut restarted = None;
        for _ in 0..50 {
            let attempt = if side == Side::Funder {
                node(&dir.join("phone"), &devnet, 2).start().await
            } else {
                node(&dir.join("lsp"), &devnet, 1)
                    .listen(lsp.listen_addr().expect("addr").to_string())
                    .start()
                    .await
            };
            match attempt {
                Ok(n) => {
                    restarted = Some(n);
                    break;
                }
                Err(NodeError::AlreadyRunning { .. }) => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await
                }
                Err(e) => panic!("{tag}: restart: {e}"),
            }
        }
        let restarted = restarted.expect("restarts on the same dir");
        let (funder, fundee) = if side == Side::Funder {
            (&restarted, &lsp)
        } else {
            (&phone, &restarted)
        };
        let end = common::node::drive_open(&devnet, funder, fundee, 80).await;
        check_ready(&tag, &end, funder, fundee).await;
        restarted.stop().await;
    } else if k == 1 {
        // The first persist is the durable point itself: nothing was committed, the open
        // fails on the funder with its coins back.
        assert!(end.failed.is_some(), "{tag}: the open failed: {end:?}");
        let b = phone.list_balances().await.expect("balances");
        assert_eq!(b.locked, Amount::ZERO, "{tag}: no coin stays locked");
        assert_eq!(
            (b.confirmed + b.unconfirmed).to_sat(),
            1_000_000,
            "{tag}: every coin back"
        );
        if side == Side::Fundee {
            assert!(
                lsp.list_channels().await.is_empty(),
                "{tag}: fundee forgot it"
            );
        }
    } else {
        // A later mark: the peer was disconnected, the channel resumed from the stored state
        // on reconnection, and the open ends ready on both sides.
        check_ready(&tag, &end, &phone, &lsp).await;
    }
    let _ = end;
    common::node::check_durability(&phone, "phone");
    common::node::check_durability(&lsp, "lsp");
    phone.stop().await;
    lsp.stop().await;
}

async fn check_ready(tag: &str, end: &common::node::OpenEnd, funder: &Node, fundee: &Node) {
    assert!(end.failed.is_none(), "{tag}: failed: {end:?}");
    for n in [funder, fundee] {
        let channels = n.list_channels().await;
        assert!(
            channels.len() == 1 && channels[0].state == ChannelState::Ready,
            "{tag}: {channels:?}"
        );
    }
}

#[tokio::test]
async fn funder_persist_1_fails() {
    persist_fails(Side::Funder, 1, false).await;
}

#[tokio::test]
async fn funder_persist_2_fails() {
    persist_fails(Side::Funder, 2, false).await;
}

#[tokio::test]
async fn funder_persist_3_fails() {
    persist_fails(Side::Funder, 3, false).await;
}

#[tokio::test]
async fn fundee_persist_1_fails() {
    persist_fails(Side::Fundee, 1, false).await;
}

#[tokio::test]
async fn fundee_persist_2_fails() {
    persist_fails(Side::Fundee, 2, false).await;
}

#[tokio::test]
async fn fundee_persist_3_fails() {
    persist_fails(Side::Fundee, 3, false).await;
}

/// A full disk at a later mark of the open (the funder's `funding_signed` persist, the
/// fundee's `channel_ready` one): memory goes back to what the store holds (the durability
/// check), the peer is disconnected rather than the node halted, and once the next write
/// finds space the open ends ready on both sides.
#[tokio::test]
async fn funder_disk_full_at_persist_2_keeps_memory_and_the_node_goes_on() {
    persist_fails_as(Side::Funder, 2, false, true).await;
}

#[tokio::test]
async fn fundee_disk_full_at_persist_3_keeps_memory_and_the_node_goes_on() {
    persist_fails_as(Side::Fundee, 3, false, true).await;
}

#[tokio::test]
async fn funder_storage_gone_at_persist_2_halts_and_a_restart_finishes() {
    persist_fails(Side::Funder, 2, true).await;
}

#[tokio::test]
async fn fundee_storage_gone_at_persist_2_halts_and_a_restart_finishes() {
    persist_fails(Side::Fundee, 2, true).await;
}

/// An app that cancels `open_channel` (a coroutine scope ending) while the node is still
/// connecting leaves no intent pending holding its funds: the open runs to its end in the node.
#[tokio::test]
async fn a_cancelled_open_channel_call_still_ends_its_intent() {
    let dir = temp_dir("cancelled-open");
    let devnet = Devnet::start().await.expect("devnet");
    let phone = node(&dir, &devnet, 6)
        .connect_timeout(std::time::Duration::from_secs(2))
        .start()
        .await
        .expect("phone");
    common::node::fund(&devnet, &phone, 500_000).await;
    let nobody = bitcoin::secp256k1::PublicKey::from_secret_key(
        &bitcoin::secp256k1::Secp256k1::new(),
        &bitcoin::secp256k1::SecretKey::from_slice(&[62; 32]).expect("key"),
    );
    // Port 1 on loopback: nothing listens; the call is dropped while the node waits.
    let call = phone.open_channel(OpenChannelParams::new(
        nobody,
        "127.0.0.1:1",
        Amount::from_sat(100_000),
    ));
    let cancelled = tokio::time::timeout(std::time::Duration::from_millis(200), call).await;
    assert!(cancelled.is_err(), "still connecting when cancelled");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let pending = phone.dev_open_intents_in_progress().await.expect("intents");
        if pending.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cancelled open's intent stays in progress: {pending:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Its funds are free again: the whole wallet can fund another open's check.
    let b = phone.list_balances().await.expect("balances");
    assert_eq!(b.locked, Amount::ZERO);
    phone.stop().await;
}
