//! `Node::send_onchain` against the devnet: an exact payment and a sweep reach the recipient
//! to the satoshi at the feerate asked (or the estimate), the balances follow; wrong network,
//! dust, too much and absurd feerates are refused with what was wrong; a refused broadcast
//! gives the coins back; coins locked by an open in progress are never spent.

use bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoin::{Address, Amount, CompressedPublicKey, FeeRate, Network, Transaction, Txid};
use tern_core::node::{Builder, Node, NodeError, SendAmount};
use tern_devnet::{Devnet, FaultKind, FaultRule, TxState};

mod common;

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tern-send-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A regtest address nobody in the test spends from.
fn recipient(key: u8) -> Address {
    let secp = Secp256k1::new();
    let sk = SecretKey::from_slice(&[key; 32]).expect("key");
    let pk = CompressedPublicKey(bitcoin::secp256k1::PublicKey::from_secret_key(&secp, &sk));
    Address::p2wpkh(&pk, Network::Regtest)
}

async fn fund(devnet: &Devnet, node: &Node, sats: &[u64]) {
    for sat in sats {
        let address = node.new_address().await.expect("address");
        devnet
            .faucet(&address, Amount::from_sat(*sat))
            .expect("faucet");
    }
    devnet.mine(1);
    node.sync(None).await.expect("sync");
}

/// The devnet's copy of a sent transaction and its fee.
fn sent(devnet: &Devnet, txid: &Txid) -> (Transaction, u64) {
    assert_eq!(devnet.tx_state(txid), TxState::Mempool, "broadcast");
    let tx = devnet.transaction(txid).expect("known to the devnet");
    let inputs: u64 = tx
        .input
        .iter()
        .map(|i| {
            let prev = devnet.transaction(&i.previous_output.txid).expect("parent");
            prev.output[i.previous_output.vout as usize].value.to_sat()
        })
        .sum();
    let outputs: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
    (tx, inputs - outputs)
}

/// The fee pays `sat_per_vb` for the transaction's weight: at least rate × weight / 4 (rounded
/// up, as BDK does), and at most one vbyte more per input (BDK sizes signatures at their
/// maximum, 73 bytes).
fn assert_fee_rate(tx: &Transaction, fee: u64, sat_per_vb: u64) {
    let weight = tx.weight().to_wu();
    let least = (sat_per_vb * weight).div_ceil(4);
    let most = least + sat_per_vb * tx.input.len() as u64;
    assert!(
        (least..=most).contains(&fee),
        "fee {fee} for {weight} WU at {sat_per_vb} sat/vB: expected {least}..={most}"
    );
}

fn paid_to(tx: &Transaction, to: &Address) -> u64 {
    tx.output
        .iter()
        .filter(|o| o.script_pubkey == to.script_pubkey())
        .map(|o| o.value.to_sat())
        .sum()
}

#[tokio::test]
async fn send_an_amount_then_everything() {
    let devnet = Devnet::start().await.expect("devnet");
    let words = "legal winner thank year wave sausage worth useful legal winner thank yellow";
    let node = Builder::new(Network::Regtest, dir("exact"), &devnet.base_url())
        .mnemonic(words, None)
        .expect("words")
        .start()
        .await
        .expect("node");
    fund(&devnet, &node, &[300_000, 200_000]).await;
    let to = recipient(9);

    let txid = node
        .send_onchain(
            &to.to_string(),
            SendAmount::Exact(Amount::from_sat(120_000)),
            Some(FeeRate::from_sat_per_vb(3).expect("rate")),
        )
        .await
        .expect("send");
    let (tx, fee) = sent(&devnet, &txid);
    assert_eq!(
        paid_to(&tx, &to),
        120_000,
        "the recipient gets exactly the amount"
    );
    assert_fee_rate(&tx, fee, 3);
    let b = node.list_balances().await.expect("balances");
    assert_eq!(b.locked.to_sat(), 0);
    assert_eq!(
        b.confirmed.to_sat() + b.unconfirmed.to_sat(),
        500_000 - 120_000 - fee,
        "the send is in the balances at once: {b:?}"
    );
    devnet.mine(1);
    node.sync(None).await.expect("sync");
    assert!(matches!(devnet.tx_state(&txid), TxState::Confirmed { .. }));
    let b = node.list_balances().await.expect("balances");
    assert_eq!(
        (b.confirmed.to_sat(), b.unconfirmed.to_sat()),
        (500_000 - 120_000 - fee, 0)
    );

    // Everything, at the default feerate: the devnet's estimate for 6 blocks, 10 sat/vB.
    let left = b.confirmed.to_sat();
    let txid = node
        .send_onchain(&to.to_string(), SendAmount::All, None)
        .await
        .expect("sweep");
    let (tx, fee) = sent(&devnet, &txid);
    assert_eq!(tx.output.len(), 1, "no change: {tx:?}");
    assert_eq!(paid_to(&tx, &to), left - fee);
    assert_fee_rate(&tx, fee, 10);
    devnet.mine(1);
    node.sync(None).await.expect("sync");
    assert_eq!(
        node.list_balances().await.expect("balances"),
        Default::default()
    );
    let err = node
        .send_onchain(&to.to_string(), SendAmount::All, None)
        .await
        .expect_err("nothing left");
    assert!(
        matches!(
            err,
            NodeError::InsufficientFunds {
                available: Amount::ZERO,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn refusals_name_what_was_wrong_and_spend_nothing() {
    let devnet = Devnet::start().await.expect("devnet");
    let node = Builder::new(Network::Regtest, dir("refuse"), &devnet.base_url())
        .seed([21; 32])
        .start()
        .await
        .expect("node");
    fund(&devnet, &node, &[100_000]).await;
    let to = recipient(9).to_string();
    let sat = |s| SendAmount::Exact(Amount::from_sat(s));
    let before = node.list_balances().await.expect("balances");

    // BIP84's mainnet address.
    let err = node
        .send_onchain(
            "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu",
            sat(1000),
            None,
        )
        .await
        .expect_err("mainnet");
    assert!(
        matches!(&err, NodeError::InvalidInput { field: "address", reason }
            if reason.contains("is for bitcoin") && reason.contains("on regtest")),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("is for bitcoin, this wallet is on regtest"),
        "{err}"
    );
    let err = node
        .send_onchain(
            "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx",
            sat(1000),
            None,
        )
        .await
        .expect_err("testnet");
    assert!(
        err.to_string().contains("is for testnet or signet"),
        "{err}"
    );
    let err = node
        .send_onchain("not-an-address", sat(1000), None)
        .await
        .expect_err("garbage");
    assert!(
        matches!(
            err,
            NodeError::InvalidInput {
                field: "address",
                ..
            }
        ),
        "{err:?}"
    );

    // P2WPKH's dust limit is 294 sat.
    let err = node
        .send_onchain(&to, sat(293), None)
        .await
        .expect_err("dust");
    assert!(
        matches!(
            &err,
            NodeError::InvalidInput { field: "amount", reason }
                if reason == "293 sat is below the dust limit of 294 sat for this address"
        ),
        "{err:?}"
    );

    let err = node
        .send_onchain(&to, sat(100_000), None)
        .await
        .expect_err("the fee does not fit");
    match err {
        NodeError::InsufficientFunds {
            needed, available, ..
        } => {
            assert_eq!(available.to_sat(), 100_000);
            assert!(needed.to_sat() > 100_000, "{needed}");
        }
        other => panic!("{other:?}"),
    }

    for sat_per_vb in [1001, 0] {
        let rate = FeeRate::from_sat_per_vb(sat_per_vb).expect("rate");
        let err = node
            .send_onchain(&to, sat(1000), Some(rate))
            .await
            .expect_err("absurd feerate");
        assert!(
            matches!(
                err,
                NodeError::InvalidInput {
                    field: "fee_rate",
                    ..
                }
            ),
            "{sat_per_vb}: {err:?}"
        );
    }
    assert_eq!(
        node.list_balances().await.expect("balances"),
        before,
        "nothing spent"
    );

    // A broadcast the server refuses (HTTP 400) is forgotten: the coins are back.
    devnet.add_fault(FaultRule {
        path: "/tx".into(),
        method: Some("POST".into()),
        kind: FaultKind::Status(400),
        count: 1,
        port: None,
    });
    let err = node
        .send_onchain(&to, sat(10_000), None)
        .await
        .expect_err("refused");
    assert!(matches!(err, NodeError::Chain(_)), "{err:?}");
    assert_eq!(
        node.list_balances().await.expect("balances"),
        before,
        "coins back"
    );
    let txid = node
        .send_onchain(&to, sat(10_000), None)
        .await
        .expect("the same send goes through now");
    assert_eq!(paid_to(&sent(&devnet, &txid).0, &recipient(9)), 10_000);
}

/// An open holds its coins (locked when its funding was built) while the fundee stays silent:
/// a send of everything spends only the other coins, and a larger send is short by the locked
/// amount.
#[cfg(feature = "dev-disconnect")]
#[tokio::test]
async fn coins_locked_by_an_open_are_never_spent() {
    use std::time::Duration;
    use tern_core::net::faults::FaultPlan;
    use tern_core::node::OpenChannelParams;
    let devnet = Devnet::start().await.expect("devnet");
    let d = dir("locked");
    let lsp = Builder::new(Network::Regtest, d.join("lsp"), &devnet.base_url())
        .seed([31; 32])
        .listen("127.0.0.1:0")
        .dev_faults(FaultPlan::parse(["$funding_signed"]).expect("rule"))
        .start()
        .await
        .expect("lsp");
    let phone = Builder::new(Network::Regtest, d.join("phone"), &devnet.base_url())
        .seed([32; 32])
        .channel_config(|c| c.open_timeout_secs = 600)
        .start()
        .await
        .expect("phone");
    fund(&devnet, &phone, &[500_000]).await;
    lsp.sync(None).await.expect("sync");
    let addr = lsp.listen_addr().expect("listening").to_string();
    phone
        .open_channel(
            OpenChannelParams::new(lsp.node_id(), addr.clone(), Amount::from_sat(200_000))
                .push_msat(0)
                .announce(false),
        )
        .await
        .expect("open");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while phone
        .list_balances()
        .await
        .expect("balances")
        .locked
        .to_sat()
        == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the funding never locked its coin"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        phone
            .list_balances()
            .await
            .expect("balances")
            .locked
            .to_sat(),
        500_000
    );

    // Another coin arrives while the open waits for funding_signed.
    fund(&devnet, &phone, &[80_000]).await;
    let to = recipient(7);
    let err = phone
        .send_onchain(
            &to.to_string(),
            SendAmount::Exact(Amount::from_sat(100_000)),
            None,
        )
        .await
        .expect_err("the locked coin is not spendable");
    assert!(
        matches!(
            err,
            NodeError::InsufficientFunds { available, .. } if available.to_sat() == 80_000
        ),
        "{err:?}"
    );
    let txid = phone
        .send_onchain(&to.to_string(), SendAmount::All, None)
        .await
        .expect("sweep the unlocked coin");
    let (tx, fee) = sent(&devnet, &txid);
    assert_eq!(tx.input.len(), 1);
    let spent = tx.input[0].previous_output;
    let parent = devnet.transaction(&spent.txid).expect("parent");
    assert_eq!(parent.output[spent.vout as usize].value.to_sat(), 80_000);
    assert_eq!(paid_to(&tx, &to), 80_000 - fee);
    let b = phone.list_balances().await.expect("balances");
    assert_eq!(
        b.locked.to_sat(),
        500_000,
        "the open still holds its coin: {b:?}"
    );
    assert_eq!(b.confirmed.to_sat() + b.unconfirmed.to_sat(), 0, "{b:?}");
    assert!(
        phone
            .list_channels()
            .await
            .iter()
            .all(|c| c.funding_txo.is_none()
                || devnet.tx_state(&c.funding_txo.expect("txo").txid) == TxState::Unknown),
        "the silent fundee never let the funding out"
    );
    common::node::check_durability(&phone, "phone");
}
