//! Whole nodes on the in-memory chain and network (`node_memory.rs`, `node_updates.rs`): building
//! them, waiting for events and states on the paused clock, mining, and a standard open.

use std::time::Duration;

use bitcoin::{Amount, Network};
use tern_core::net::faults::FaultPlan;
use tern_core::net::MemoryNet;
use tern_core::node::{Builder, Event, Node, OpenChannelParams};
use tern_devnet::{DevChain, TxState};

use super::chain::DevnetSource;
use super::node::{check_durability, fund};

pub fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tern-memory-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Where the LSP listens on the in-memory network (the same address across its restarts).
pub const LSP_ADDR: &str = "127.0.0.1:9735";

/// A node on `chain` and `net`: no Esplora (the URL is never dialled), no TCP.
pub async fn node(
    chain: &DevChain,
    net: &MemoryNet,
    data: &std::path::Path,
    seed: u8,
    listen: bool,
) -> Node {
    node_with(chain, net, data, seed, listen, |b| b).await
}

/// [`node`], its builder adjusted by `adjust` first.
pub async fn node_with(
    chain: &DevChain,
    net: &MemoryNet,
    data: &std::path::Path,
    seed: u8,
    listen: bool,
    adjust: impl FnOnce(Builder) -> Builder,
) -> Node {
    let mut b = adjust(builder(chain, net, data, seed));
    if listen {
        b = b.listen(LSP_ADDR);
    }
    b.start().await.expect("node starts")
}

/// The builder of [`node`], not listening (a wake's: `Builder::wake`).
pub fn builder(chain: &DevChain, net: &MemoryNet, data: &std::path::Path, seed: u8) -> Builder {
    Builder::new(Network::Regtest, data, "http://no-esplora.invalid")
        .seed([seed; 32])
        .chain_source(DevnetSource::new(chain.clone()))
        .dev_memory_net(net.clone())
        .dev_hold_clock_during_store_jobs()
}

/// Waits for an event matching `want`, marking everything seen as handled. The 20 s are on
/// the paused clock: they pass only if nothing at all is left to do before them.
pub async fn wait_for(node: &Node, what: &str, want: impl Fn(&Event) -> bool) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Ok(next) = tokio::time::timeout(left, node.wait_next_event()).await else {
            panic!(
                "timed out waiting for {what}; channels: {:?}",
                node.list_channels().await
            )
        };
        let (seq, event) = next.expect("event");
        node.event_handled(seq).await.expect("handled");
        check_durability(node, "node");
        if want(&event) {
            return event;
        }
        if let Event::ChannelOpenFailed { reason, .. } = &event {
            panic!("open failed while waiting for {what}: {reason}");
        }
    }
}

/// [`wait_for`] on each node in turn.
pub async fn wait_both(nodes: &[&Node], what: &str, want: impl Fn(&Event) -> bool) {
    for n in nodes {
        wait_for(n, what, &want).await;
    }
}

/// Waits until `done` holds, checking each time the nodes have nothing left to run (a 1 ms
/// step of the paused clock passes only then: no real time is spent), for at most 10 s of
/// that clock.
pub async fn settle<F: std::future::Future<Output = bool>>(what: &str, done: impl Fn() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Whether both nodes' only channel is at commitment `number` with `feerate`.
pub async fn at(a: &Node, b: &Node, feerate: u32, number: u64) -> bool {
    for n in [a, b] {
        let c = &n.list_channels().await[0];
        if (c.commitment_number, c.commitment_feerate_per_kw) != (number, feerate) {
            return false;
        }
    }
    true
}

/// Mines `blocks` blocks, syncing every node after each. Every funding the nodes list is in
/// the mempool or a block first: `ChannelPending` is queued with the durable state, just
/// before the funder broadcasts, and the broadcast is one chain call away.
pub async fn mine_until(chain: &DevChain, nodes: &[&Node], blocks: u32) {
    for n in nodes {
        for c in n.list_channels().await {
            if let Some(o) = c.funding_txo {
                settle("the funding broadcast", || async {
                    chain.tx_state(&o.txid) != TxState::Unknown
                })
                .await;
            }
        }
    }
    for _ in 0..blocks {
        chain.mine(1);
        for n in nodes {
            n.sync(None).await.expect("sync");
            check_durability(n, "node");
        }
    }
}

/// Opens a 250 000 sat channel pushing 10 000 sat from a funded phone to the LSP, and checks
/// what `node_devnet::two_nodes_open_a_channel_to_ready` checks over HTTP.
pub async fn open_to_ready(chain: &DevChain, phone: &Node, lsp: &Node) {
    lsp.sync(None).await.expect("sync");
    fund(chain, phone, 1_000_000).await;
    let addr = lsp.listen_addr().expect("listening").to_string();
    assert_eq!(addr, LSP_ADDR);

    let temp = phone
        .open_channel(
            OpenChannelParams::new(lsp.node_id(), addr, Amount::from_sat(250_000))
                .push_msat(10_000_000)
                .announce(false),
        )
        .await
        .expect("open");
    assert_eq!(temp.to_string().len(), 64);
    let pending = wait_for(phone, "phone ChannelPending", |e| {
        matches!(e, Event::ChannelPending { .. })
    })
    .await;
    wait_for(lsp, "lsp ChannelPending", |e| {
        matches!(e, Event::ChannelPending { .. })
    })
    .await;
    let Event::ChannelPending { funding_txo, .. } = pending else {
        unreachable!()
    };
    settle("the funding broadcast", || async {
        chain.tx_state(&funding_txo.txid) != TxState::Unknown
    })
    .await;
    assert_eq!(
        chain.tx_state(&funding_txo.txid),
        TxState::Mempool,
        "funding broadcast"
    );
    // The funding spent the wallet's coin: only the unconfirmed change is left.
    let b = phone.list_balances().await.expect("balances");
    assert_eq!(b.confirmed.to_sat(), 0, "{b:?}");
    assert!(
        (740_000..750_000).contains(&b.unconfirmed.to_sat()),
        "{b:?}"
    );

    mine_until(chain, &[phone, lsp], 3).await;
    wait_both(&[phone, lsp], "ChannelReady", |e| {
        matches!(e, Event::ChannelReady { .. })
    })
    .await;
    let ch = &phone.list_channels().await[0];
    assert_eq!(ch.status, "ready");
    assert_eq!(ch.channel_value.to_sat(), 250_000);
    assert_eq!(ch.balance_msat, 250_000_000 - 10_000_000);
    assert_eq!(lsp.list_channels().await[0].balance_msat, 10_000_000);
    // Wallet + channel add up: what left the wallet is the channel plus the funding fee.
    let b = phone.list_balances().await.expect("balances");
    assert_eq!(b.locked.to_sat(), 0, "locks released once ready");
    assert!(
        b.confirmed.to_sat() + 250_000 < 1_000_000 && b.confirmed.to_sat() + 250_000 > 990_000,
        "{b:?}"
    );
}

/// Fee estimates with `two_blocks` sat/vB for the commitment's target; for the funding's
/// (6 blocks) the node's fallback when it never fetched (5 sat/vB), 2 sat/vB for 144 blocks and
/// 1 sat/vB for 1008.
pub fn estimates(two_blocks: f64) -> std::collections::BTreeMap<u16, f64> {
    std::collections::BTreeMap::from([
        (1, two_blocks + 5.0),
        (2, two_blocks),
        (6, 5.0),
        (144, 2.0),
        (1008, 1.0),
    ])
}

/// A cell of the fault matrices (`node_updates.rs`, `node_close_faults.rs`): one
/// `dev-disconnect` rule on one message, armed on the funder's (the phone's) connection or on
/// the fundee's (the LSP's).
pub struct FaultCase {
    pub rule: String,
    pub on_funder: bool,
    /// The plans to start the phone and the LSP with (one of them empty).
    pub phone: FaultPlan,
    pub lsp: FaultPlan,
    /// Shares the armed plan: `armed.remaining()` is 0 once the rule fired.
    pub armed: FaultPlan,
}

impl FaultCase {
    /// "`<rule>` on the funder|fundee", for messages.
    pub fn what(&self) -> String {
        let side = if self.on_funder { "funder" } else { "fundee" };
        format!("{} on the {side}", self.rule)
    }
}

/// Every rule (`-` close before sending, `+` after sending, `$` drop and keep the connection,
/// `<` close after receiving) on each of `messages`, on either side: eight cases a message.
pub fn fault_cases(messages: &[&str]) -> Vec<FaultCase> {
    let mut cases = Vec::new();
    for msg in messages {
        for action in ["-", "+", "$", "<"] {
            for on_funder in [true, false] {
                let rule = format!("{action}{msg}");
                let plan = FaultPlan::parse([rule.as_str()]).expect("rule");
                let armed = plan.clone();
                let (phone, lsp) = if on_funder {
                    (plan, FaultPlan::default())
                } else {
                    (FaultPlan::default(), plan)
                };
                cases.push(FaultCase {
                    rule,
                    on_funder,
                    phone,
                    lsp,
                    armed,
                });
            }
        }
    }
    cases
}

/// Waits until `victim`, started with `dev_halt_after(action)`, has performed `action` and
/// halted (within 60 s of the paused clock).
pub async fn until_halted(victim: &Node, action: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !victim.is_stopped() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{action}: the node never performed it"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
