//! Helpers shared by the devnet's integration tests: a key that can receive and sign.
#![allow(dead_code)]

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{Message, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{
    absolute, transaction, Address, Amount, CompressedPublicKey, Network, OutPoint, ScriptBuf,
    Sequence, Transaction, TxIn, TxOut, Witness,
};
use tern_devnet::Devnet;

/// A P2WPKH key derived from a label.
pub struct Key {
    pub secret: SecretKey,
    pub public: CompressedPublicKey,
}

impl Key {
    pub fn new(label: &str) -> Key {
        let secret = SecretKey::from_slice(sha256::Hash::hash(label.as_bytes()).as_byte_array())
            .expect("valid key");
        let public = CompressedPublicKey(secret.public_key(&Secp256k1::new()));
        Key { secret, public }
    }

    pub fn address(&self) -> Address {
        Address::p2wpkh(&self.public, Network::Regtest)
    }

    pub fn script(&self) -> ScriptBuf {
        self.address().script_pubkey()
    }

    /// A P2WSH script `<delay> CSV DROP <pubkey> CHECKSIG`.
    pub fn csv_script(&self, delay: u16) -> ScriptBuf {
        bitcoin::script::Builder::new()
            .push_int(i64::from(delay))
            .push_opcode(bitcoin::opcodes::all::OP_CSV)
            .push_opcode(bitcoin::opcodes::all::OP_DROP)
            .push_key(&bitcoin::PublicKey::new(self.public.0))
            .push_opcode(bitcoin::opcodes::all::OP_CHECKSIG)
            .into_script()
    }
}

/// A coin we can spend.
#[derive(Clone, Debug)]
pub struct Coin {
    pub outpoint: OutPoint,
    pub txout: TxOut,
}

/// Gets `amount` from the faucet to `key` and mines it.
pub fn fund(devnet: &Devnet, key: &Key, amount: Amount) -> Coin {
    let txid = devnet.faucet(&key.address(), amount).expect("faucet pays");
    devnet.mine(1);
    coin_of(devnet, txid, &key.script())
}

/// Finds the output of `txid` paying `script` (through the devnet's own API).
pub fn coin_of(devnet: &Devnet, txid: bitcoin::Txid, script: &ScriptBuf) -> Coin {
    let tx = devnet.transaction(&txid).expect("known transaction");
    let vout = tx
        .output
        .iter()
        .position(|o| &o.script_pubkey == script)
        .expect("pays the script");
    Coin {
        outpoint: OutPoint::new(txid, vout as u32),
        txout: tx.output[vout].clone(),
    }
}

/// A v2 transaction spending `coins` (all P2WPKH of `key`) to `outputs`, signed by `signer`.
pub fn spend(
    coins: &[Coin],
    outputs: Vec<TxOut>,
    sequence: Sequence,
    signer: &Key,
    key: &Key,
) -> Transaction {
    let mut tx = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: coins
            .iter()
            .map(|c| TxIn {
                previous_output: c.outpoint,
                script_sig: ScriptBuf::new(),
                sequence,
                witness: Witness::new(),
            })
            .collect(),
        output: outputs,
    };
    sign_p2wpkh(&mut tx, coins, signer, key);
    tx
}

/// Signs every input as P2WPKH of `key` with `signer`'s secret (a different signer = bad sig).
pub fn sign_p2wpkh(tx: &mut Transaction, coins: &[Coin], signer: &Key, key: &Key) {
    let secp = Secp256k1::new();
    let mut witnesses = Vec::new();
    {
        let mut cache = SighashCache::new(&*tx);
        for (i, c) in coins.iter().enumerate() {
            let sighash = cache
                .p2wpkh_signature_hash(i, &key.script(), c.txout.value, EcdsaSighashType::All)
                .expect("sighash");
            let sig = secp.sign_ecdsa(&Message::from(sighash), &signer.secret);
            witnesses.push(Witness::p2wpkh(
                &bitcoin::ecdsa::Signature::sighash_all(sig),
                &key.public.0,
            ));
        }
    }
    for (input, w) in tx.input.iter_mut().zip(witnesses) {
        input.witness = w;
    }
}

/// Signs input `index` spending a P2WSH `witness_script` that ends in `<key> CHECKSIG`.
pub fn sign_p2wsh(
    tx: &mut Transaction,
    index: usize,
    witness_script: &ScriptBuf,
    value: Amount,
    key: &Key,
) {
    let secp = Secp256k1::new();
    let sighash = SighashCache::new(&*tx)
        .p2wsh_signature_hash(index, witness_script, value, EcdsaSighashType::All)
        .expect("sighash");
    let sig = secp.sign_ecdsa(&Message::from(sighash), &key.secret);
    let sig = bitcoin::ecdsa::Signature::sighash_all(sig);
    let mut w = Witness::new();
    w.push(sig.to_vec());
    w.push(witness_script.as_bytes());
    tx.input[index].witness = w;
}

pub fn out(script: ScriptBuf, sat: u64) -> TxOut {
    TxOut {
        value: Amount::from_sat(sat),
        script_pubkey: script,
    }
}

/// The coinbase txid of the tip block, read over the Esplora API.
pub async fn tip_coinbase_txid(devnet: &Devnet) -> bitcoin::Txid {
    reqwest::get(format!(
        "{}/block/{}/txid/0",
        devnet.base_url(),
        devnet.tip().1
    ))
    .await
    .expect("get")
    .text()
    .await
    .expect("text")
    .parse()
    .expect("txid")
}
