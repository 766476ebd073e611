//! The faucet: a P2WPKH key that receives the coinbases of blocks mined without an address and
//! pays whoever asks, through the same acceptance path as any other transaction.

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{All, Message, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{
    absolute, transaction, Address, Amount, CompressedPublicKey, Network, OutPoint, ScriptBuf,
    Sequence, Transaction, TxIn, TxOut, Txid, Witness,
};

use crate::chain::{ChainState, COINBASE_MATURITY};
use crate::mempool::Policy;

/// Fee rate of faucet payments, sat/vB.
const FAUCET_SAT_PER_VB: u64 = 2;

/// The devnet's own wallet.
#[derive(Debug)]
pub struct Faucet {
    secp: Secp256k1<All>,
    key: SecretKey,
    pubkey: CompressedPublicKey,
    /// Where mined coinbases go by default.
    pub script: ScriptBuf,
}

impl Faucet {
    /// The faucet key is fixed (derived from a public label): a devnet holds no real value.
    pub fn new() -> Self {
        let secp = Secp256k1::new();
        let key = SecretKey::from_slice(sha256::Hash::hash(b"tern-devnet faucet").as_byte_array())
            .expect("a sha256 output is a valid secret key with overwhelming probability");
        let pubkey = CompressedPublicKey(key.public_key(&secp));
        let script = ScriptBuf::new_p2wpkh(&pubkey.wpubkey_hash());
        Faucet {
            secp,
            key,
            pubkey,
            script,
        }
    }

    /// The faucet's regtest address.
    pub fn address(&self) -> Address {
        Address::p2wpkh(&self.pubkey, Network::Regtest)
    }

    /// Coins the faucet can spend now: mature confirmed ones not spent in the mempool, then its
    /// unconfirmed change.
    fn spendable(&self, chain: &ChainState) -> Vec<(OutPoint, TxOut)> {
        let next_height = chain.tip_height() + 1;
        let mut coins: Vec<(OutPoint, TxOut, u32)> = chain
            .utxos
            .iter()
            .filter(|(op, c)| {
                c.txout.script_pubkey == self.script
                    && !chain.mempool.spends.contains_key(op)
                    && (!c.is_coinbase || next_height - c.height >= COINBASE_MATURITY)
            })
            .map(|(op, c)| (*op, c.txout.clone(), c.height))
            .collect();
        // Oldest first, deterministic.
        coins.sort_by_key(|(op, _, h)| (*h, op.txid, op.vout));
        for txid in &chain.mempool.order {
            if let Some(entry) = chain.mempool.entries.get(txid) {
                for (vout, out) in entry.tx.output.iter().enumerate() {
                    let op = OutPoint::new(*txid, vout as u32);
                    if out.script_pubkey == self.script && !chain.mempool.spends.contains_key(&op) {
                        coins.push((op, out.clone(), next_height));
                    }
                }
            }
        }
        coins.into_iter().map(|(op, out, _)| (op, out)).collect()
    }

    /// Spendable balance.
    pub fn balance(&self, chain: &ChainState) -> Amount {
        self.spendable(chain).iter().map(|(_, o)| o.value).sum()
    }

    /// Pays `amount` to `script`; the transaction goes through normal acceptance.
    pub fn pay(
        &self,
        chain: &mut ChainState,
        policy: &Policy,
        script: ScriptBuf,
        amount: Amount,
    ) -> Result<Txid, String> {
        let mut chosen = Vec::new();
        let mut total = Amount::ZERO;
        let mut fee = Amount::ZERO;
        for coin in self.spendable(chain) {
            total += coin.1.value;
            chosen.push(coin);
            // 11 vB overhead + 68 vB per P2WPKH input + ~43 vB per output (two outputs).
            fee = Amount::from_sat((11 + 68 * chosen.len() as u64 + 86) * FAUCET_SAT_PER_VB);
            if total >= amount + fee {
                break;
            }
        }
        if total < amount + fee {
            return Err(format!(
                "the faucet holds {} sat of spendable coins, not enough for {} sat; mine more \
                 blocks (coinbases mature after 100)",
                total.to_sat(),
                amount.to_sat()
            ));
        }
        let mut output = vec![TxOut {
            value: amount,
            script_pubkey: script,
        }];
        let change = total - amount - fee;
        if change > self.script.minimal_non_dust() {
            output.push(TxOut {
                value: change,
                script_pubkey: self.script.clone(),
            });
        }
        let mut tx = Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: chosen
                .iter()
                .map(|(op, _)| TxIn {
                    previous_output: *op,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                    witness: Witness::new(),
                })
                .collect(),
            output,
        };
        let mut witnesses = Vec::with_capacity(chosen.len());
        {
            let mut cache = SighashCache::new(&tx);
            for (i, (_, prev)) in chosen.iter().enumerate() {
                let sighash = cache
                    .p2wpkh_signature_hash(i, &self.script, prev.value, EcdsaSighashType::All)
                    .map_err(|e| format!("faucet could not sign: {e}"))?;
                let sig = self.secp.sign_ecdsa(&Message::from(sighash), &self.key);
                let sig = bitcoin::ecdsa::Signature::sighash_all(sig);
                witnesses.push(Witness::p2wpkh(&sig, &self.pubkey.0));
            }
        }
        for (input, witness) in tx.input.iter_mut().zip(witnesses) {
            input.witness = witness;
        }
        chain.accept(tx, policy)
    }
}

impl Default for Faucet {
    fn default() -> Self {
        Self::new()
    }
}
