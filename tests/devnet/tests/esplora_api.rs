//! Every Esplora endpoint, driven by the real `esplora-client` AsyncClient (and raw HTTP where
//! the shape itself matters: plain text without newline, 404s).

mod common;

use bitcoin::hashes::Hash;
use bitcoin::{Amount, Sequence};
use common::{fund, out, spend, Key};
use esplora_client::{AsyncClient, Builder};
use tern_devnet::Devnet;

fn client(devnet: &Devnet) -> AsyncClient {
    AsyncClient::from_builder(Builder::new(&devnet.base_url()).max_retries(0)).expect("client")
}

async fn get(devnet: &Devnet, path: &str) -> (u16, String) {
    let resp = reqwest::get(format!("{}{path}", devnet.base_url()))
        .await
        .expect("get");
    (resp.status().as_u16(), resp.text().await.expect("text"))
}

#[tokio::test]
async fn chain_endpoints() {
    let devnet = Devnet::start().await.expect("devnet");
    let c = client(&devnet);
    let (height, tip) = devnet.tip();
    assert_eq!(c.get_tip_hash().await.expect("tip"), tip);
    assert_eq!(c.get_height().await.expect("height"), height);
    // Plain text, no trailing newline.
    assert_eq!(
        get(&devnet, "/blocks/tip/hash").await,
        (200, tip.to_string())
    );
    assert_eq!(
        get(&devnet, "/blocks/tip/height").await,
        (200, height.to_string())
    );
    assert_eq!(c.get_block_hash(height).await.expect("hash"), tip);
    assert_eq!(
        get(&devnet, &format!("/block-height/{}", height + 1))
            .await
            .0,
        404
    );

    let header = c.get_header_by_hash(&tip).await.expect("header");
    assert_eq!(header.block_hash(), tip);
    header.validate_pow(header.target()).expect("regtest pow");
    let block = c.get_block_by_hash(&tip).await.expect("raw").expect("some");
    assert_eq!(block.block_hash(), tip);
    assert!(block.check_merkle_root());
    assert_eq!(
        block.bip34_block_height().expect("bip34"),
        u64::from(height)
    );
    let status = c.get_block_status(&tip).await.expect("status");
    assert!(status.in_best_chain);
    assert_eq!(status.height, Some(height));
    assert_eq!(status.next_best, None);
    let parent_status = c
        .get_block_status(&header.prev_blockhash)
        .await
        .expect("status");
    assert_eq!(parent_status.next_best, Some(tip));

    let info = c.get_block_info(&tip).await.expect("info");
    assert_eq!((info.id, info.height, info.tx_count), (tip, height, 1));
    assert_eq!(info.previousblockhash, Some(header.prev_blockhash));
    assert_eq!(info.merkle_root, header.merkle_root);
    let infos = c.get_block_infos(None).await.expect("infos");
    assert_eq!(infos.len(), 10);
    assert_eq!(infos[0].id, tip);
    assert_eq!(infos[9].height, height - 9);
    // Deprecated in esplora-client, but still what bdk_esplora calls: keep it served.
    #[allow(deprecated)]
    let summaries = c.get_blocks(Some(5)).await.expect("blocks");
    assert_eq!(
        summaries.iter().map(|b| b.time.height).collect::<Vec<_>>(),
        vec![5, 4, 3, 2, 1, 0]
    );
    assert_eq!(summaries.last().expect("genesis").previousblockhash, None);

    let txids = c.get_block_txids(&tip).await.expect("txids");
    assert_eq!(txids, vec![block.txdata[0].compute_txid()]);
    assert_eq!(
        c.get_txid_at_block_index(&tip, 0).await.expect("txid"),
        Some(txids[0])
    );
    assert_eq!(
        c.get_txid_at_block_index(&tip, 1).await.expect("none"),
        None
    );
    let txs = c.get_block_txs(&tip, None).await.expect("txs");
    assert_eq!(txs.len(), 1);
    assert!(txs[0].vin[0].is_coinbase);

    let unknown = bitcoin::BlockHash::all_zeros();
    assert_eq!(c.get_block_by_hash(&unknown).await.expect("opt"), None);
    assert!(
        c.get_block_status(&unknown).await.is_err(),
        "404 is an error for status"
    );
    assert_eq!(get(&devnet, "/block/nothex/status").await.0, 400);

    let fees = c.get_fee_estimates().await.expect("fees");
    assert!(fees.get(&1).copied().unwrap_or(0.0) >= fees.get(&144).copied().unwrap_or(f64::MAX));
}

#[tokio::test]
async fn transaction_endpoints() {
    let devnet = Devnet::start().await.expect("devnet");
    let c = client(&devnet);
    let alice = Key::new("alice");
    let bob = Key::new("bob");
    let coin = fund(&devnet, &alice, Amount::from_sat(200_000));
    let tx = spend(
        std::slice::from_ref(&coin),
        vec![out(bob.script(), 150_000), out(alice.script(), 49_000)],
        Sequence::MAX,
        &alice,
        &alice,
    );
    let txid = tx.compute_txid();

    // Unknown before broadcast.
    assert_eq!(c.get_tx(&txid).await.expect("opt"), None);
    assert_eq!(c.get_tx_info(&txid).await.expect("opt"), None);
    assert!(!c.get_tx_status(&txid).await.expect("status").confirmed);
    assert_eq!(c.get_output_status(&txid, 0).await.expect("opt"), None);
    assert_eq!(c.get_merkle_proof(&txid).await.expect("opt"), None);
    assert_eq!(c.get_merkle_block(&txid).await.expect("opt"), None);

    c.broadcast(&tx).await.expect("broadcast");
    assert_eq!(c.get_tx(&txid).await.expect("get"), Some(tx.clone()));
    assert_eq!(
        get(&devnet, &format!("/tx/{txid}/hex")).await,
        (200, bitcoin::consensus::encode::serialize_hex(&tx))
    );
    let info = c.get_tx_info(&txid).await.expect("info").expect("some");
    assert_eq!(info.fee, 1_000);
    assert_eq!(info.to_tx(), tx);
    assert_eq!(
        info.vin[0].prevout.as_ref().map(|p| p.value),
        Some(coin.txout.value.to_sat())
    );
    assert!(!info.status.confirmed);
    assert_eq!(c.get_mempool_txids().await.expect("txids"), vec![txid]);
    let stats = c.get_mempool_stats().await.expect("mempool");
    assert_eq!((stats.count, stats.total_fee), (1, 1_000));
    assert_eq!(
        c.get_mempool_recent_txs().await.expect("recent")[0].txid,
        txid
    );
    // The funding coin shows as spent by the mempool tx.
    let spent = c
        .get_output_status(&coin.outpoint.txid, u64::from(coin.outpoint.vout))
        .await
        .expect("os")
        .expect("some");
    assert!(spent.spent);
    assert_eq!((spent.txid, spent.vin), (Some(txid), Some(0)));
    assert!(!spent.status.expect("status").confirmed);

    let hash = devnet.mine(1)[0];
    let status = c.get_tx_status(&txid).await.expect("status");
    assert!(status.confirmed);
    assert_eq!(status.block_hash, Some(hash));
    assert!(status.block_time.is_some());
    let info = c.get_tx_info(&txid).await.expect("info").expect("some");
    assert!(
        info.confirmation_time().is_some(),
        "BDK needs height, hash and time"
    );

    let proof = c
        .get_merkle_proof(&txid)
        .await
        .expect("proof")
        .expect("some");
    assert_eq!(proof.block_height, devnet.tip().0);
    let header = c.get_header_by_hash(&hash).await.expect("header");
    let mut acc = txid.to_raw_hash().to_byte_array();
    let mut pos = proof.pos;
    for sibling in &proof.merkle {
        let s = sibling.to_raw_hash().to_byte_array();
        let data = if pos % 2 == 0 {
            [acc, s].concat()
        } else {
            [s, acc].concat()
        };
        acc = bitcoin::hashes::sha256d::Hash::hash(&data).to_byte_array();
        pos /= 2;
    }
    assert_eq!(acc, header.merkle_root.to_byte_array());
    let mb = c.get_merkle_block(&txid).await.expect("mb").expect("some");
    let (mut matches, mut indexes) = (vec![], vec![]);
    let root = mb
        .txn
        .extract_matches(&mut matches, &mut indexes)
        .expect("valid partial tree");
    assert_eq!((root, matches), (header.merkle_root, vec![txid]));

    let outspends = c.get_tx_outspends(&txid).await.expect("outspends");
    assert_eq!(outspends.len(), 2);
    assert!(outspends.iter().all(|o| !o.spent));
    assert_eq!(
        get(&devnet, &format!("/tx/{txid}/outspend/0")).await,
        (200, r#"{"spent":false}"#.into())
    );
    assert_eq!(get(&devnet, &format!("/tx/{txid}/outspend/2")).await.0, 404);
    let spent = c
        .get_output_status(&coin.outpoint.txid, u64::from(coin.outpoint.vout))
        .await
        .expect("os")
        .expect("some");
    assert!(spent.status.expect("status").confirmed);
}

#[tokio::test]
async fn script_and_address_endpoints_paginate_like_esplora() {
    let devnet = Devnet::start().await.expect("devnet");
    let c = client(&devnet);
    let alice = Key::new("alice");
    // 30 confirmed payments plus 2 in the mempool.
    for _ in 0..30 {
        devnet
            .faucet(&alice.address(), Amount::from_sat(10_000))
            .expect("faucet");
    }
    devnet.mine(1);
    for _ in 0..2 {
        devnet
            .faucet(&alice.address(), Amount::from_sat(10_000))
            .expect("faucet");
    }
    let script = alice.script();
    let first = c.scripthash_txs(&script, None).await.expect("txs");
    assert_eq!(first.len(), 2 + 25, "mempool first, then 25 confirmed");
    assert!(!first[0].status.confirmed && !first[1].status.confirmed);
    assert!(first[2..].iter().all(|t| t.status.confirmed));
    let last_seen = first.last().expect("some").txid;
    let next = c
        .scripthash_txs(&script, Some(last_seen))
        .await
        .expect("chain page");
    assert_eq!(next.len(), 5);
    let mut all: Vec<_> = first[2..].iter().chain(&next).map(|t| t.txid).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 30);
    assert_eq!(
        c.get_mempool_scripthash_txs(&script)
            .await
            .expect("mempool")
            .len(),
        2
    );
    let stats = c.get_scripthash_stats(&script).await.expect("stats");
    assert_eq!(
        (stats.chain_stats.tx_count, stats.chain_stats.funded_txo_sum),
        (30, 300_000)
    );
    assert_eq!(stats.mempool_stats.funded_txo_count, 2);
    let address = alice.address();
    let astats = c.get_address_stats(&address).await.expect("address stats");
    assert_eq!(astats.chain_stats, stats.chain_stats);
    assert_eq!(
        c.get_address_txs(&address, None).await.expect("txs").len(),
        27
    );
    assert_eq!(
        c.get_mempool_address_txs(&address)
            .await
            .expect("txs")
            .len(),
        2
    );
    let utxos = c.get_scripthash_utxos(&script).await.expect("utxo");
    assert_eq!(utxos.len(), 32);
    assert_eq!(utxos.iter().filter(|u| !u.status.confirmed).count(), 2);
    assert_eq!(c.get_address_utxos(&address).await.expect("utxo").len(), 32);
    // A script never seen: empty, not an error.
    assert!(c
        .scripthash_txs(&Key::new("nobody").script(), None)
        .await
        .expect("txs")
        .is_empty());
    // A mainnet address is refused with a clear message.
    let (status, body) = get(
        &devnet,
        "/address/bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq/txs",
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("regtest"), "{body}");
}
