//! POST /tx acceptance: each Bitcoin Core rule rejects what it must, with a clear reason, and
//! accepts what is valid. Everything goes through HTTP, as a client would see it.

mod common;

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::{absolute, Amount, OutPoint, Sequence, Transaction, TxIn, Witness};
use common::{fund, out, sign_p2wpkh, sign_p2wsh, spend, Key};
use tern_devnet::{Devnet, TxState};

/// POSTs a transaction; returns (status, body).
async fn post(devnet: &Devnet, tx: &Transaction) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(format!("{}/tx", devnet.base_url()))
        .body(serialize_hex(tx))
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

#[tokio::test]
async fn valid_spend_is_accepted_and_duplicates_answer_the_txid() {
    let devnet = Devnet::start().await.expect("devnet");
    let alice = Key::new("alice");
    let bob = Key::new("bob");
    let coin = fund(&devnet, &alice, Amount::from_sat(100_000));
    let tx = spend(
        &[coin],
        vec![out(bob.script(), 99_000)],
        Sequence::MAX,
        &alice,
        &alice,
    );
    let (status, body) = post(&devnet, &tx).await;
    assert_eq!(
        (status, body.as_str()),
        (200, tx.compute_txid().to_string().as_str())
    );
    // Already known: 200 with the txid again, nothing changes.
    let (status, body) = post(&devnet, &tx).await;
    assert_eq!((status, body), (200, tx.compute_txid().to_string()));
    devnet.mine(1);
    assert!(matches!(
        devnet.tx_state(&tx.compute_txid()),
        TxState::Confirmed { .. }
    ));
    let (status, body) = post(&devnet, &tx).await;
    assert_eq!((status, body), (200, tx.compute_txid().to_string()));
}

#[tokio::test]
async fn bad_signature_is_rejected() {
    let devnet = Devnet::start().await.expect("devnet");
    let alice = Key::new("alice");
    let mallory = Key::new("mallory");
    let coin = fund(&devnet, &alice, Amount::from_sat(100_000));
    // Signed by the wrong key, but claiming alice's pubkey.
    let tx = spend(
        &[coin],
        vec![out(mallory.script(), 99_000)],
        Sequence::MAX,
        &mallory,
        &alice,
    );
    let (status, body) = post(&devnet, &tx).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("mandatory-script-verify-flag-failed"),
        "{body}"
    );
    assert!(body.contains("input 0"), "{body}");
    assert_eq!(devnet.tx_state(&tx.compute_txid()), TxState::Unknown);
}

#[tokio::test]
async fn csv_spend_is_rejected_until_the_delay_has_passed() {
    let devnet = Devnet::start().await.expect("devnet");
    let alice = Key::new("alice");
    let delay = 5u16;
    let witness_script = alice.csv_script(delay);
    let p2wsh = bitcoin::ScriptBuf::new_p2wsh(&witness_script.wscript_hash());
    let address = bitcoin::Address::from_script(&p2wsh, bitcoin::Network::Regtest).expect("addr");
    let txid = devnet
        .faucet(&address, Amount::from_sat(50_000))
        .expect("faucet");
    devnet.mine(1);
    let coin = common::coin_of(&devnet, txid, &p2wsh);
    let spend_with = |sequence: u32| {
        let mut tx = Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: coin.outpoint,
                script_sig: bitcoin::ScriptBuf::new(),
                sequence: Sequence(sequence),
                witness: Witness::new(),
            }],
            output: vec![out(alice.script(), 49_000)],
        };
        sign_p2wsh(&mut tx, 0, &witness_script, coin.txout.value, &alice);
        tx
    };
    // The coin has 1 confirmation; the sequence asks for 5: BIP68 says not yet.
    let (status, body) = post(&devnet, &spend_with(u32::from(delay))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("non-BIP68-final"), "{body}");
    // A sequence below the script's CSV fails the script itself.
    let (status, body) = post(&devnet, &spend_with(1)).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("mandatory-script-verify-flag-failed"),
        "{body}"
    );
    // After 4 more blocks the coin is 5 deep at the next block: accepted.
    devnet.mine(3);
    let (status, body) = post(&devnet, &spend_with(u32::from(delay))).await;
    assert_eq!(status, 400, "one block early must still fail: {body}");
    devnet.mine(1);
    let (status, body) = post(&devnet, &spend_with(u32::from(delay))).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn double_spend_without_rbf_signal_is_rejected_and_bip125_replaces() {
    let devnet = Devnet::start().await.expect("devnet");
    let alice = Key::new("alice");
    let bob = Key::new("bob");
    let carol = Key::new("carol");
    let coins = [
        fund(&devnet, &alice, Amount::from_sat(100_000)),
        fund(&devnet, &alice, Amount::from_sat(100_000)),
    ];
    // Non-signalling original: a conflicting spend is refused, whatever its fee.
    let first = spend(
        &coins[..1],
        vec![out(bob.script(), 99_000)],
        Sequence::MAX,
        &alice,
        &alice,
    );
    assert_eq!(post(&devnet, &first).await.0, 200);
    let rival = spend(
        &coins[..1],
        vec![out(carol.script(), 90_000)],
        Sequence::MAX,
        &alice,
        &alice,
    );
    let (status, body) = post(&devnet, &rival).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("txn-mempool-conflict"), "{body}");
    assert!(body.contains(&first.compute_txid().to_string()), "{body}");
    assert_eq!(devnet.tx_state(&first.compute_txid()), TxState::Mempool);

    // Signalling original: a replacement paying too little is refused, one paying more wins.
    let rbf = Sequence::ENABLE_RBF_NO_LOCKTIME;
    let original = spend(
        &coins[1..],
        vec![out(bob.script(), 99_000)],
        rbf,
        &alice,
        &alice,
    );
    assert_eq!(post(&devnet, &original).await.0, 200);
    let cheap = spend(
        &coins[1..],
        vec![out(carol.script(), 99_000)],
        rbf,
        &alice,
        &alice,
    );
    let (status, body) = post(&devnet, &cheap).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("insufficient fee"), "{body}");
    let barely = spend(
        &coins[1..],
        vec![out(carol.script(), 98_950)],
        rbf,
        &alice,
        &alice,
    );
    let (status, body) = post(&devnet, &barely).await;
    assert_eq!(
        status, 400,
        "rule 4 needs the incremental relay fee on top: {body}"
    );
    let better = spend(
        &coins[1..],
        vec![out(carol.script(), 98_000)],
        rbf,
        &alice,
        &alice,
    );
    assert_eq!(post(&devnet, &better).await.0, 200);
    assert_eq!(devnet.tx_state(&original.compute_txid()), TxState::Unknown);
    devnet.mine(1);
    assert!(matches!(
        devnet.tx_state(&better.compute_txid()),
        TxState::Confirmed { .. }
    ));
    assert!(matches!(
        devnet.tx_state(&first.compute_txid()),
        TxState::Confirmed { .. }
    ));
}

#[tokio::test]
async fn inflating_and_missing_input_transactions_are_rejected() {
    let devnet = Devnet::start().await.expect("devnet");
    let alice = Key::new("alice");
    let coin = fund(&devnet, &alice, Amount::from_sat(100_000));
    let inflating = spend(
        std::slice::from_ref(&coin),
        vec![out(alice.script(), 100_001)],
        Sequence::MAX,
        &alice,
        &alice,
    );
    let (status, body) = post(&devnet, &inflating).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("bad-txns-in-belowout"), "{body}");
    assert!(body.contains("100001") && body.contains("100000"), "{body}");

    let mut ghost = coin.clone();
    ghost.outpoint = OutPoint::new(coin.outpoint.txid, 7);
    let missing = spend(
        &[ghost],
        vec![out(alice.script(), 1_000)],
        Sequence::MAX,
        &alice,
        &alice,
    );
    let (status, body) = post(&devnet, &missing).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("bad-txns-inputs-missingorspent"), "{body}");

    // Spent by a confirmed transaction: named in the reason.
    let ok = spend(
        std::slice::from_ref(&coin),
        vec![out(alice.script(), 99_000)],
        Sequence::MAX,
        &alice,
        &alice,
    );
    assert_eq!(post(&devnet, &ok).await.0, 200);
    devnet.mine(1);
    let again = spend(
        &[coin],
        vec![out(alice.script(), 98_000)],
        Sequence::MAX,
        &alice,
        &alice,
    );
    let (status, body) = post(&devnet, &again).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(&ok.compute_txid().to_string()), "{body}");

    let (status, body) = {
        let resp = reqwest::Client::new()
            .post(format!("{}/tx", devnet.base_url()))
            .body("zz")
            .send()
            .await
            .expect("request");
        (resp.status().as_u16(), resp.text().await.expect("body"))
    };
    assert_eq!(status, 400);
    assert!(body.contains("decode"), "{body}");
}

#[tokio::test]
async fn coinbase_maturity_absolute_locktime_dust_and_min_fee() {
    let devnet = Devnet::start().await.expect("devnet");
    let alice = Key::new("alice");
    // Coinbase maturity: 100 confirmations.
    devnet.mine_to(1, &alice.address());
    let (height, _) = devnet.tip();
    let cb_txid = common::tip_coinbase_txid(&devnet).await;
    let cb = common::coin_of(&devnet, cb_txid, &alice.script());
    let early = spend(
        std::slice::from_ref(&cb),
        vec![out(alice.script(), 100_000)],
        Sequence::MAX,
        &alice,
        &alice,
    );
    let (status, body) = post(&devnet, &early).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("premature-spend-of-coinbase"), "{body}");
    devnet.mine(98);
    assert_eq!(
        post(&devnet, &early).await.0,
        400,
        "99 confirmations at the next block"
    );
    devnet.mine(1);
    assert_eq!(devnet.tip().0, height + 99);
    assert_eq!(
        post(&devnet, &early).await.0,
        200,
        "100 confirmations at the next block"
    );

    // Absolute locktime: final only when locktime < next block height.
    let coin = fund(&devnet, &alice, Amount::from_sat(100_000));
    let next = devnet.tip().0 + 1;
    let mut locked = spend(
        std::slice::from_ref(&coin),
        vec![out(alice.script(), 99_000)],
        Sequence::ENABLE_LOCKTIME_NO_RBF,
        &alice,
        &alice,
    );
    locked.lock_time = absolute::LockTime::from_height(next).expect("height");
    sign_p2wpkh(&mut locked, std::slice::from_ref(&coin), &alice, &alice);
    let (status, body) = post(&devnet, &locked).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("non-final"), "{body}");
    devnet.mine(1);
    assert_eq!(post(&devnet, &locked).await.0, 200);

    // Dust and the minimum relay fee.
    let coin = fund(&devnet, &alice, Amount::from_sat(100_000));
    let dusty = spend(
        std::slice::from_ref(&coin),
        vec![out(alice.script(), 99_000), out(alice.script(), 100)],
        Sequence::MAX,
        &alice,
        &alice,
    );
    let (status, body) = post(&devnet, &dusty).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("dust"), "{body}");
    let free = spend(
        &[coin],
        vec![out(alice.script(), 99_990)],
        Sequence::MAX,
        &alice,
        &alice,
    );
    let (status, body) = post(&devnet, &free).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("min relay fee"), "{body}");
}
