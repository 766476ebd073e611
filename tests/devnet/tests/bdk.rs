//! BDK (bdk_wallet + bdk_esplora) against the devnet: full scan, faucet funds, a payment the
//! devnet validates and mines, and the wallet seeing it confirmed after a sync.

use bdk_esplora::EsploraAsyncExt;
use bdk_wallet::{KeychainKind, SignOptions, Wallet};
use bitcoin::bip32::Xpriv;
use bitcoin::{Amount, FeeRate, Network};
use esplora_client::{AsyncClient, Builder};
use tern_devnet::{Devnet, TxState};

fn wallet(seed: u8) -> Wallet {
    let xprv = Xpriv::new_master(Network::Regtest, &[seed; 32]).expect("master key");
    Wallet::create(
        format!("wpkh({xprv}/84'/1'/0'/0/*)"),
        format!("wpkh({xprv}/84'/1'/0'/1/*)"),
    )
    .network(Network::Regtest)
    .create_wallet_no_persist()
    .expect("wallet")
}

#[tokio::test]
async fn bdk_full_scan_payment_and_sync() {
    let devnet = Devnet::start().await.expect("devnet");
    let client: AsyncClient =
        AsyncClient::from_builder(Builder::new(&devnet.base_url())).expect("client");
    let mut alice = wallet(1);
    let mut bob = wallet(2);

    // Fund the 3rd address so the full scan must walk the keychain to find it.
    let addresses: Vec<_> = (0..3)
        .map(|_| alice.reveal_next_address(KeychainKind::External))
        .collect();
    let funding = devnet
        .faucet(&addresses[2].address, Amount::from_sat(1_000_000))
        .expect("faucet");
    devnet.mine(1);

    let mut fresh = wallet(1);
    let scan = client
        .full_scan(fresh.start_full_scan().build(), 20, 4)
        .await
        .expect("full scan");
    fresh.apply_update(scan).expect("apply");
    assert_eq!(fresh.balance().confirmed, Amount::from_sat(1_000_000));
    assert_eq!(fresh.latest_checkpoint().height(), devnet.tip().0);
    let scan = client
        .full_scan(alice.start_full_scan().build(), 20, 4)
        .await
        .expect("full scan");
    alice.apply_update(scan).expect("apply");
    assert!(alice
        .get_tx(funding)
        .expect("known")
        .chain_position
        .is_confirmed());

    // Pay bob; the devnet validates BDK's signatures and mines the payment.
    let bob_address = bob.reveal_next_address(KeychainKind::External).address;
    let mut builder = alice.build_tx();
    builder
        .add_recipient(bob_address.script_pubkey(), Amount::from_sat(400_000))
        .fee_rate(FeeRate::from_sat_per_vb(2).expect("rate"));
    let mut psbt = builder.finish().expect("psbt");
    assert!(alice.sign(&mut psbt, SignOptions::default()).expect("sign"));
    let tx = psbt.extract_tx().expect("tx");
    client
        .broadcast(&tx)
        .await
        .expect("devnet accepts BDK's transaction");
    let txid = tx.compute_txid();
    assert_eq!(devnet.tx_state(&txid), TxState::Mempool);

    let sync = client
        .sync(bob.start_sync_with_revealed_spks().build(), 4)
        .await
        .expect("sync");
    bob.apply_update(sync).expect("apply");
    assert_eq!(bob.balance().untrusted_pending, Amount::from_sat(400_000));

    devnet.mine(1);
    for w in [&mut alice, &mut bob] {
        let sync = client
            .sync(w.start_sync_with_revealed_spks().build(), 4)
            .await
            .expect("sync");
        w.apply_update(sync).expect("apply");
        assert!(w.get_tx(txid).expect("known").chain_position.is_confirmed());
    }
    assert_eq!(bob.balance().confirmed, Amount::from_sat(400_000));
    let fee = alice.calculate_fee(&tx).expect("fee");
    assert_eq!(alice.balance().confirmed, Amount::from_sat(600_000) - fee);
}
