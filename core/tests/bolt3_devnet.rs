//! The BOLT 3 builders' transactions are consensus-valid: on the devnet (libbitcoinconsensus
//! script checks, BIP68 relative locktimes) a 2-of-2 funding output is spent by a signed
//! commitment transaction, whose HTLC outputs are spent by HTLC-timeout / HTLC-success
//! transactions, whose `to_local` output is swept only after `to_self_delay` blocks (rejected at
//! tip h + csv - 2, accepted at h + csv - 1), and whose `to_remote` output is swept by the other
//! party (with anchors only once the commitment has 1 confirmation). A revoked `to_local` is
//! taken at once; an unconfirmed sweep is replaced by a fee bump (BIP125) and the old one
//! evicted; an anchor commitment at 253 sat/kw is lifted by a CPFP child spending our anchor and
//! a wallet coin to a target package feerate.

// This binary's TRACE log file, for the log-secret check (see common/trace.rs).
#[path = "common/trace.rs"]
mod trace;

use bdk_wallet::rusqlite::Connection;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use bitcoin::FeeRate;
use bitcoin::{Address, Amount, Network, OutPoint, ScriptBuf, Transaction};
use tern_core::chain::{sync, ChainState, EsploraConfig, EsploraSource, SyncPlanner};
use tern_core::proto::bolt3::{
    build_closing_tx, build_commitment_tx, funding_script_pubkey, obscure_factor,
    p2wpkh_script_pubkey, ChannelType, ClosingTxParams, CommitmentKeys, CommitmentParams,
    CommitmentTx, FundingInput, Htlc, HtlcDirection, HtlcSigner, HtlcTxKind, SweepTx,
};
use tern_core::proto::bolt3::{AnchorSpend, OutputKind};
use tern_core::proto::keys::{KeysManager, INITIAL_COMMITMENT_NUMBER};
use tern_core::wallet::OnchainWallet;
use tern_devnet::{Devnet, TxState};

const TO_SELF_DELAY: u16 = 20;
const FEERATE_PER_KW: u32 = 1000;
const FUNDING_SAT: u64 = 1_000_000;
const PREIMAGE: [u8; 32] = [7u8; 32];

/// Fetches a transaction through the devnet's Esplora API (`GET /tx/:txid/hex`).
async fn fetch_tx(dn: &Devnet, txid: &bitcoin::Txid) -> Transaction {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(dn.addr())
        .await
        .expect("connect");
    let request = format!("GET /tx/{txid}/hex HTTP/1.0\r\nHost: {}\r\n\r\n", dn.addr());
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("http response");
    assert!(head.contains(" 200 "), "GET /tx/{txid}/hex: {head}");
    let raw = <Vec<u8> as bitcoin::hex::FromHex>::from_hex(body.trim()).expect("hex");
    bitcoin::consensus::encode::deserialize(&raw).expect("transaction")
}

fn confirmed(dn: &Devnet, tx: &Transaction) -> bool {
    matches!(dn.tx_state(&tx.compute_txid()), TxState::Confirmed { .. })
}

struct Channel {
    commitment: CommitmentTx,
    point: PublicKey,
    alice: tern_core::proto::keys::ChannelKeys,
    bob: tern_core::proto::keys::ChannelKeys,
}

/// Funds a 2-of-2 between Alice (opener) and Bob and builds Alice's first commitment.
async fn open_channel(dn: &Devnet, channel_type: ChannelType, htlc_cltv: u32) -> Channel {
    open_channel_at(dn, channel_type, htlc_cltv, FEERATE_PER_KW).await
}

/// [`open_channel`] with a commitment at `feerate_per_kw`.
async fn open_channel_at(
    dn: &Devnet,
    channel_type: ChannelType,
    htlc_cltv: u32,
    feerate_per_kw: u32,
) -> Channel {
    let secp = Secp256k1::new();
    let alice = KeysManager::new(&[0xa1; 32], Network::Regtest)
        .expect("keys")
        .channel_keys(0)
        .expect("channel keys");
    let bob = KeysManager::new(&[0xb0; 32], Network::Regtest)
        .expect("keys")
        .channel_keys(0)
        .expect("channel keys");
    let (alice_pub, bob_pub) = (alice.public_keys(&secp), bob.public_keys(&secp));

    let spk = funding_script_pubkey(&alice_pub.funding_pubkey, &bob_pub.funding_pubkey);
    let address = Address::from_script(&spk, Network::Regtest).expect("address");
    let funding_txid = dn
        .faucet(&address, Amount::from_sat(FUNDING_SAT))
        .expect("faucet");
    dn.mine(1);
    let funding_tx = fetch_tx(dn, &funding_txid).await;
    let vout = funding_tx
        .output
        .iter()
        .position(|o| o.script_pubkey == spk)
        .expect("funding output") as u32;

    let point = alice
        .per_commitment_point(&secp, INITIAL_COMMITMENT_NUMBER)
        .expect("point");
    let keys = CommitmentKeys::derive(&secp, &point, &alice_pub, &bob_pub).expect("keys");
    let htlcs = [
        Htlc {
            direction: HtlcDirection::Offered,
            amount_msat: 50_000_000,
            payment_hash: sha256::Hash::hash(&[9u8; 32]),
            cltv_expiry: htlc_cltv,
        },
        Htlc {
            direction: HtlcDirection::Received,
            amount_msat: 40_000_000,
            payment_hash: sha256::Hash::hash(&PREIMAGE),
            cltv_expiry: htlc_cltv + 100,
        },
    ];
    let commitment = build_commitment_tx(&CommitmentParams {
        funding: FundingInput {
            outpoint: OutPoint {
                txid: funding_txid,
                vout,
            },
            amount: Amount::from_sat(FUNDING_SAT),
            local_funding_pubkey: alice_pub.funding_pubkey,
            remote_funding_pubkey: bob_pub.funding_pubkey,
        },
        commitment_number: 0,
        obscure_factor: obscure_factor(&alice_pub.payment_basepoint, &bob_pub.payment_basepoint),
        to_self_delay: TO_SELF_DELAY,
        dust_limit: Amount::from_sat(546),
        feerate_per_kw,
        local_is_funder: true,
        to_local_msat: 600_000_000 - 90_000_000,
        to_remote_msat: 400_000_000,
        htlcs: &htlcs,
        keys: &keys,
        channel_type,
    })
    .expect("commitment");
    assert_eq!(
        commitment.outputs.len(),
        if channel_type.anchors { 6 } else { 4 }
    );
    Channel {
        commitment,
        point,
        alice,
        bob,
    }
}

/// Broadcasts Alice's commitment, signed by both funding keys, and mines it.
fn broadcast_commitment(dn: &Devnet, ch: &Channel) -> Transaction {
    let signed = broadcast_commitment_unconfirmed(dn, ch);
    dn.mine(1);
    assert!(confirmed(dn, &signed));
    signed
}

/// Broadcasts Alice's commitment, signed by both funding keys, leaving it in the mempool.
fn broadcast_commitment_unconfirmed(dn: &Devnet, ch: &Channel) -> Transaction {
    let secp = Secp256k1::new();
    let c = &ch.commitment;
    let alice_sig = c.sign(&secp, &ch.alice.funding_key).expect("sign");
    let bob_sig = c.sign(&secp, &ch.bob.funding_key).expect("sign");
    c.verify(&secp, &bob_sig, &c.funding.remote_funding_pubkey)
        .expect("bob's signature verifies");
    // A commitment with a wrong signature is rejected by script validation.
    let forged = c.finalize(&alice_sig, &alice_sig);
    assert!(dn.broadcast(&forged).is_err(), "forged commitment accepted");
    let signed = c.finalize(&alice_sig, &bob_sig);
    dn.broadcast(&signed)
        .unwrap_or_else(|e| panic!("commitment rejected: {e}"));
    assert_eq!(dn.tx_state(&signed.compute_txid()), TxState::Mempool);
    signed
}

/// Spends both HTLC outputs with second-stage transactions (non-anchor channels: anchor
/// channels' zero-fee HTLC transactions need a fee input added, which is the wallet's job).
fn spend_htlcs(dn: &Devnet, ch: &Channel) {
    assert!(!ch.commitment.channel_type.anchors);
    let secp = Secp256k1::new();
    let alice_htlc_key: SecretKey = ch.alice.htlc_key(&secp, &ch.point).expect("key");
    let bob_htlc_key: SecretKey = ch.bob.htlc_key(&secp, &ch.point).expect("key");
    assert_eq!(
        PublicKey::from_secret_key(&secp, &bob_htlc_key),
        ch.commitment.keys.remote_htlc_pubkey
    );
    let htlc_txs = ch.commitment.htlc_txs();
    assert_eq!(htlc_txs.len(), 2);
    let mut spent = Vec::new();
    for htx in &htlc_txs {
        let bob_sig = htx
            .sign(&secp, HtlcSigner::Remote, &bob_htlc_key)
            .expect("sign");
        let alice_sig = htx
            .sign(&secp, HtlcSigner::Local, &alice_htlc_key)
            .expect("sign");
        let tx = match htx.kind {
            HtlcTxKind::Success => {
                // Without the right preimage the script fails.
                let wrong = htx
                    .finalize(&alice_sig, &bob_sig, Some(&[8u8; 32]))
                    .expect("finalize");
                assert!(dn.broadcast(&wrong).is_err(), "wrong preimage accepted");
                htx.finalize(&alice_sig, &bob_sig, Some(&PREIMAGE))
                    .expect("finalize")
            }
            HtlcTxKind::Timeout => htx.finalize(&alice_sig, &bob_sig, None).expect("finalize"),
        };
        dn.broadcast(&tx)
            .unwrap_or_else(|e| panic!("{:?} tx rejected: {e}", htx.kind));
        spent.push(tx);
    }
    dn.mine(1);
    for tx in &spent {
        assert!(confirmed(dn, tx));
    }
}

/// Sweeps `to_local` (rejected before the CSV delay, accepted at it) and `to_remote`.
fn sweep_outputs(dn: &Devnet, ch: &Channel, destination: ScriptBuf) {
    let secp = Secp256k1::new();
    // The commitment has 1 confirmation now (plus 1 if HTLC txs were mined after it).
    let to_local = SweepTx::from_commitment_to_local(&ch.commitment, destination.clone(), 1000)
        .expect("sweep")
        .expect("has to_local");
    let delayed_key = ch.alice.delayed_payment_key(&secp, &ch.point).expect("key");
    let sweep = to_local.sign(&secp, &delayed_key).expect("sign");
    // Bob's key cannot sign Alice's delayed output.
    assert!(to_local.sign(&secp, &ch.bob.payment_base_secret).is_err());

    let to_remote = SweepTx::from_commitment_to_remote(&ch.commitment, destination, 1000)
        .expect("sweep")
        .expect("has to_remote");
    let remote_sweep = to_remote
        .sign(&secp, &ch.bob.payment_base_secret)
        .expect("sign");
    // With anchors to_remote is CSV 1: the commitment is already confirmed, so it may be spent.
    dn.broadcast(&remote_sweep)
        .unwrap_or_else(|e| panic!("to_remote sweep rejected: {e}"));

    let commit_txid = ch.commitment.tx.compute_txid();
    let TxState::Confirmed { height, .. } = dn.tx_state(&commit_txid) else {
        panic!("commitment not confirmed");
    };
    // The sweep can enter block `height + TO_SELF_DELAY`, i.e. be accepted once the tip is
    // `height + TO_SELF_DELAY - 1`.
    let (tip, _) = dn.tip();
    let ready = height + u32::from(TO_SELF_DELAY) - 1;
    assert!(tip < ready);
    dn.mine(ready - 1 - tip);
    // One block early: tip = h + csv - 2.
    assert_eq!(dn.tip().0, height + u32::from(TO_SELF_DELAY) - 2);
    let err = dn
        .broadcast(&sweep)
        .expect_err("to_local sweep accepted before the CSV delay");
    assert!(
        err.contains("non-BIP68-final"),
        "unexpected rejection: {err}"
    );
    dn.mine(1);
    assert_eq!(dn.tip().0, ready);
    dn.broadcast(&sweep)
        .unwrap_or_else(|e| panic!("to_local sweep rejected after the CSV delay: {e}"));
    dn.mine(1);
    assert!(confirmed(dn, &sweep));
    assert!(confirmed(dn, &remote_sweep));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_remote_key_commitment_htlcs_and_sweeps_are_consensus_valid() {
    let dn = Devnet::start().await.expect("devnet");
    let (tip, _) = dn.tip();
    let ch = open_channel(&dn, ChannelType::STATIC_REMOTE_KEY, tip).await;
    broadcast_commitment(&dn, &ch);
    spend_htlcs(&dn, &ch);
    sweep_outputs(&dn, &ch, dn.faucet_address().script_pubkey());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anchors_commitment_and_sweeps_are_consensus_valid() {
    let dn = Devnet::start().await.expect("devnet");
    let (tip, _) = dn.tip();
    let ch = open_channel(&dn, ChannelType::ANCHORS, tip).await;
    broadcast_commitment(&dn, &ch);
    sweep_outputs(&dn, &ch, dn.faucet_address().script_pubkey());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_close_is_consensus_valid() {
    let dn = Devnet::start().await.expect("devnet");
    let (tip, _) = dn.tip();
    let ch = open_channel(&dn, ChannelType::STATIC_REMOTE_KEY, tip).await;
    let secp = Secp256k1::new();
    let funding = ch.commitment.funding;
    let close = build_closing_tx(&ClosingTxParams {
        funding,
        to_local_msat: 600_000_000,
        to_remote_msat: 400_000_000,
        local_script: p2wpkh_script_pubkey(&PublicKey::from_secret_key(
            &secp,
            &ch.alice.payment_base_secret,
        )),
        remote_script: p2wpkh_script_pubkey(&PublicKey::from_secret_key(
            &secp,
            &ch.bob.payment_base_secret,
        )),
        fee: Amount::from_sat(1_000),
        local_is_funder: true,
        dust_limit: Amount::from_sat(546),
    })
    .expect("closing tx");
    let alice_sig = close.sign(&secp, &ch.alice.funding_key).expect("sign");
    let bob_sig = close.sign(&secp, &ch.bob.funding_key).expect("sign");
    close
        .verify(&secp, &bob_sig, &funding.remote_funding_pubkey)
        .expect("verify");
    let signed = close.finalize(&alice_sig, &bob_sig);
    dn.broadcast(&signed)
        .unwrap_or_else(|e| panic!("closing tx rejected: {e}"));
    dn.mine(1);
    assert!(confirmed(&dn, &signed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_to_local_is_claimed_at_once_with_the_revocation_key() {
    let dn = Devnet::start().await.expect("devnet");
    let (tip, _) = dn.tip();
    let ch = open_channel(&dn, ChannelType::STATIC_REMOTE_KEY, tip).await;
    // Alice revokes this commitment (reveals its secret), then broadcasts it anyway.
    let secp = Secp256k1::new();
    let revealed =
        SecretKey::from_slice(&ch.alice.per_commitment_secret(INITIAL_COMMITMENT_NUMBER))
            .expect("secret");
    broadcast_commitment(&dn, &ch);
    let penalty = SweepTx::from_commitment_revoked_to_local(
        &ch.commitment,
        dn.faucet_address().script_pubkey(),
        1000,
    )
    .expect("penalty")
    .expect("has to_local");
    // Alice's delayed key cannot take the revocation branch.
    let delayed_key = ch.alice.delayed_payment_key(&secp, &ch.point).expect("key");
    assert!(penalty.sign(&secp, &delayed_key).is_err());
    let revocation_key = ch.bob.revocation_key(&secp, &revealed).expect("key");
    let tx = penalty.sign(&secp, &revocation_key).expect("sign");
    dn.broadcast(&tx)
        .unwrap_or_else(|e| panic!("penalty rejected: {e}"));
    dn.mine(1);
    assert!(confirmed(&dn, &tx));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anchors_to_remote_sweep_waits_for_one_confirmation() {
    let dn = Devnet::start().await.expect("devnet");
    let (tip, _) = dn.tip();
    let ch = open_channel(&dn, ChannelType::ANCHORS, tip).await;
    let secp = Secp256k1::new();
    let commitment = broadcast_commitment_unconfirmed(&dn, &ch);
    let to_remote = SweepTx::from_commitment_to_remote(
        &ch.commitment,
        dn.faucet_address().script_pubkey(),
        FEERATE_PER_KW,
    )
    .expect("sweep")
    .expect("has to_remote");
    assert_eq!(to_remote.tx.input[0].sequence.0, 1);
    let sweep = to_remote
        .sign(&secp, &ch.bob.payment_base_secret)
        .expect("sign");
    // The commitment is unconfirmed: `1 OP_CHECKSEQUENCEVERIFY` is not satisfied yet.
    let err = dn
        .broadcast(&sweep)
        .expect_err("anchors to_remote sweep accepted before the commitment confirmed");
    assert!(
        err.contains("non-BIP68-final"),
        "unexpected rejection: {err}"
    );
    dn.mine(1);
    assert!(confirmed(&dn, &commitment));
    dn.broadcast(&sweep)
        .unwrap_or_else(|e| panic!("anchors to_remote sweep rejected after 1 confirmation: {e}"));
    dn.mine(1);
    assert!(confirmed(&dn, &sweep));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfirmed_sweeps_are_replaced_by_fee_bumps() {
    let dn = Devnet::start().await.expect("devnet");
    let (tip, _) = dn.tip();
    let ch = open_channel(&dn, ChannelType::STATIC_REMOTE_KEY, tip).await;
    let secp = Secp256k1::new();
    broadcast_commitment(&dn, &ch);
    let destination = dn.faucet_address().script_pubkey();

    // to_remote (P2WPKH, nSequence 0xfffffffd) at the 253 sat/kw floor, then bumped.
    let to_remote = SweepTx::from_commitment_to_remote(&ch.commitment, destination.clone(), 253)
        .expect("sweep")
        .expect("has to_remote");
    let first = to_remote
        .sign(&secp, &ch.bob.payment_base_secret)
        .expect("sign");
    dn.broadcast(&first)
        .unwrap_or_else(|e| panic!("to_remote sweep at 253 sat/kw rejected: {e}"));
    // A few satoshis more are not enough for BIP125 rule 4 (the incremental relay fee).
    let weak = to_remote.at_feerate(300).expect("rebuild");
    assert!(weak.fee() > to_remote.fee());
    assert!(weak.fee() < to_remote.replacement(253).expect("replacement").fee());
    let err = dn
        .broadcast(&weak.sign(&secp, &ch.bob.payment_base_secret).expect("sign"))
        .expect_err("a replacement without the incremental relay fee accepted");
    assert!(err.contains("BIP125 rule 4"), "unexpected rejection: {err}");
    let bumped = to_remote.replacement(253).expect("replacement");
    let second = bumped
        .sign(&secp, &ch.bob.payment_base_secret)
        .expect("sign");
    dn.broadcast(&second)
        .unwrap_or_else(|e| panic!("to_remote replacement rejected: {e}"));
    assert_eq!(dn.tx_state(&first.compute_txid()), TxState::Unknown);
    assert_eq!(dn.tx_state(&second.compute_txid()), TxState::Mempool);
    dn.mine(1);
    assert!(confirmed(&dn, &second));

    // to_local (nSequence = the CSV delay) once it matures, then bumped to 2000 sat/kw.
    let commit_txid = ch.commitment.tx.compute_txid();
    let TxState::Confirmed { height, .. } = dn.tx_state(&commit_txid) else {
        panic!("commitment not confirmed");
    };
    let ready = height + u32::from(TO_SELF_DELAY) - 1;
    dn.mine(ready - dn.tip().0);
    let to_local = SweepTx::from_commitment_to_local(&ch.commitment, destination, 253)
        .expect("sweep")
        .expect("has to_local");
    let delayed_key = ch.alice.delayed_payment_key(&secp, &ch.point).expect("key");
    let first = to_local.sign(&secp, &delayed_key).expect("sign");
    dn.broadcast(&first)
        .unwrap_or_else(|e| panic!("to_local sweep rejected: {e}"));
    let bumped = to_local.replacement(2000).expect("replacement");
    assert_eq!(bumped.fee(), to_local.fee_for(2000));
    let second = bumped.sign(&secp, &delayed_key).expect("sign");
    dn.broadcast(&second)
        .unwrap_or_else(|e| panic!("to_local replacement rejected: {e}"));
    assert_eq!(dn.tx_state(&first.compute_txid()), TxState::Unknown);
    dn.mine(1);
    assert!(confirmed(&dn, &second));
    assert_eq!(dn.tx_state(&first.compute_txid()), TxState::Unknown);
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// One wallet sync against the devnet, as the node does it.
async fn sync_wallet(dn: &Devnet, state: &ChainState, wallet: &mut OnchainWallet) -> ChainState {
    let source = EsploraSource::new(&EsploraConfig::new(dn.base_url())).expect("client");
    let out = sync(
        &source,
        SyncPlanner::new(state.clone(), wallet.scripts_to_query()),
        None,
    )
    .await
    .expect("sync");
    wallet
        .apply_sync(&out.scripts, &out.events, out.state.tip, now())
        .expect("apply");
    out.state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anchor_cpfp_lifts_a_253_sat_per_kw_commitment_to_the_target_package_feerate() {
    let dn = Devnet::start().await.expect("devnet");
    let keys = KeysManager::new(&[0x77; 32], Network::Regtest).expect("keys");
    let (mut wallet, _) = OnchainWallet::open(
        Connection::open_in_memory().expect("db"),
        &keys.wallet_descriptors(),
        Network::Regtest,
    )
    .expect("wallet");
    let coin = Amount::from_sat(100_000);
    dn.faucet(&wallet.new_address().expect("address"), coin)
        .expect("faucet");
    dn.mine(1);
    let state = sync_wallet(&dn, &ChainState::default(), &mut wallet).await;
    assert_eq!(wallet.balances(&[]).confirmed, coin);

    let (tip, _) = dn.tip();
    let ch = open_channel_at(&dn, ChannelType::ANCHORS, tip, 253).await;
    let secp = Secp256k1::new();
    let parent = broadcast_commitment_unconfirmed(&dn, &ch);
    let parent_fee = ch.commitment.fee;
    let alice_funding = PublicKey::from_secret_key(&secp, &ch.alice.funding_key);
    let anchor = AnchorSpend::find(&ch.commitment, &alice_funding).expect("our anchor");
    assert_eq!(
        ch.commitment.output_index(OutputKind::LocalAnchor),
        Some(anchor.outpoint.vout)
    );
    // Bob's key cannot sign for Alice's anchor.
    let target = FeeRate::from_sat_per_kwu(2_000);
    assert!(wallet
        .build_anchor_cpfp(
            &parent,
            parent_fee,
            &anchor,
            &ch.bob.funding_key,
            target,
            &[]
        )
        .is_err());
    let child = wallet
        .build_anchor_cpfp(
            &parent,
            parent_fee,
            &anchor,
            &ch.alice.funding_key,
            target,
            &[],
        )
        .expect("cpfp child");
    assert_eq!(child.input.len(), 2, "the anchor and the wallet coin");
    assert!(child
        .input
        .iter()
        .any(|i| i.previous_output == anchor.outpoint));
    let child_fee =
        (coin + Amount::from_sat(330)) - child.output.iter().map(|o| o.value).sum::<Amount>();
    let package_fee = parent_fee + child_fee;
    let package_weight = parent.weight().to_wu() + child.weight().to_wu();
    // At least the target, and not more than 8 weight units' worth (a signature a byte
    // shorter than the round before) plus rounding above it.
    assert!(
        package_fee.to_sat() * 1000 >= 2_000 * package_weight,
        "package {package_fee} for {package_weight} WU"
    );
    assert!(
        package_fee.to_sat() <= (2_000 * (package_weight + 8)).div_ceil(1000) + 1,
        "package {package_fee} for {package_weight} WU overpays"
    );
    // The parent alone is below the target, the child carries it.
    assert!(parent_fee.to_sat() * 1000 < 300 * parent.weight().to_wu());
    dn.broadcast(&child)
        .unwrap_or_else(|e| panic!("cpfp child rejected: {e}"));
    wallet.record_broadcast(&child, now()).expect("record");
    dn.mine(1);
    assert!(confirmed(&dn, &parent));
    assert!(confirmed(&dn, &child));
    sync_wallet(&dn, &state, &mut wallet).await;
    assert_eq!(
        wallet.balances(&[]).confirmed,
        coin + Amount::from_sat(330) - child_fee
    );
}
