//! The node seed against published vectors: BIP84's test mnemonic gives BIP84's addresses
//! through Tern's wallet descriptors (as BDK reads them), so a BIP39 wallet restoring the same
//! words sees the same coins; a raw 32-byte seed keeps the keys it always had.

// This binary's TRACE log file, for the log-secret check (see common/trace.rs).
#[path = "common/trace.rs"]
mod trace;

use bdk_wallet::{KeychainKind, Wallet};
use bitcoin::Network;
use tern_core::proto::keys::{KeysManager, Mnemonic, NodeSeed};

/// BIP84's test vector (bip-0084.mediawiki, "Test vectors").
const BIP84_WORDS: &str = "abandon abandon abandon abandon abandon abandon abandon abandon \
                           abandon abandon abandon about";

fn addresses(seed: &NodeSeed, network: Network) -> (Vec<String>, String) {
    let keys = KeysManager::from_seed(seed, network).expect("keys");
    let d = keys.wallet_descriptors();
    let mut wallet = Wallet::create(d.external, d.internal)
        .network(network)
        .create_wallet_no_persist()
        .expect("descriptors");
    let receive = (0..2)
        .map(|_| {
            wallet
                .reveal_next_address(KeychainKind::External)
                .address
                .to_string()
        })
        .collect();
    let change = wallet
        .reveal_next_address(KeychainKind::Internal)
        .address
        .to_string();
    (receive, change)
}

#[test]
fn bip84_vector_from_the_bip39_words() {
    let seed = NodeSeed::from_words(BIP84_WORDS, None).expect("words");
    let (receive, change) = addresses(&seed, Network::Bitcoin);
    // m/84'/0'/0'/0/0, m/84'/0'/0'/0/1 and m/84'/0'/0'/1/0.
    assert_eq!(
        receive,
        [
            "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu",
            "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"
        ]
    );
    assert_eq!(change, "bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el");
    // The same words with a passphrase are another wallet.
    let other = NodeSeed::from_words(BIP84_WORDS, Some("TREZOR")).expect("words");
    assert_ne!(addresses(&other, Network::Bitcoin).0, receive);
    // Test networks use coin type 1 (BIP84 on testnet/regtest): not the mainnet keys.
    let (test, _) = addresses(&seed, Network::Regtest);
    assert!(test[0].starts_with("bcrt1q"), "{test:?}");
}

#[test]
fn generated_words_round_trip_to_the_same_keys() {
    let entropy = [0x5au8; 32];
    let words = Mnemonic::from_entropy(&entropy)
        .expect("entropy")
        .to_words();
    assert_eq!(words.split(' ').count(), 24);
    let a = KeysManager::from_seed(
        &NodeSeed::from_words(&words, None).expect("words"),
        Network::Regtest,
    )
    .expect("keys");
    let b = KeysManager::from_seed(
        &NodeSeed::from_words(&words.to_uppercase(), Some("")).expect("words"),
        Network::Regtest,
    )
    .expect("keys");
    assert_eq!(a.node_id().expect("id"), b.node_id().expect("id"));
}

#[test]
fn a_raw_seed_keeps_its_keys() {
    let raw = [1u8; 32];
    let old = KeysManager::new(&raw, Network::Regtest).expect("keys");
    let new = KeysManager::from_seed(&NodeSeed::Raw(raw), Network::Regtest).expect("keys");
    assert_eq!(old.node_id().expect("id"), new.node_id().expect("id"));
    assert_eq!(old.wallet_descriptors(), new.wallet_descriptors());
    // Pinned: the node id a `D/seed` of [1; 32] has always had (BIP32 master of the 32 bytes,
    // m/0'; read from a `tern daemon` built before NodeSeed existed). A change here would give
    // every existing node a new identity.
    assert_eq!(
        new.node_id().expect("id").to_string(),
        RAW_ONES_NODE_ID,
        "raw seeds must keep their node id"
    );
}

const RAW_ONES_NODE_ID: &str = "0355f8d2238a322d16b602bd0ceaad5b01019fb055971eaadcc9b29226a4da6c23";
