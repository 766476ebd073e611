//! The soak's per-wallet ledger (issue 17 §5: "each wallet's on-chain + channel + claimable +
//! fees paid adds up to what it was funded with, to the satoshi"), from the chain alone.
//!
//! After the heal nothing is in a channel and nothing is claimable (`settled`), so for each
//! wallet `i`:
//!
//! ```text
//! FUNDED + pushes received + anchors it spent
//!     = on-chain_i + fees paid by i + pushes given + anchors of its channels' commitments
//! ```
//!
//! Why: a funding tx takes `CHANNEL` + its fee from the funder's coins; the channel's closing
//! transaction (cooperative or a commitment) splits `CHANNEL` less its fee (BOLT 3: the
//! funder pays it) and less the two 330-sat anchors of a commitment (the funder pays them too)
//! into the fundee's share, which must be exactly the push since no payment is ever made
//! (checked below, per channel), and the funder's, which is the rest; a commitment's outputs
//! reach a wallet through a sweep whose fee its receiver pays; a CPFP child adds an anchor's
//! 330 sat and the wallet coins that pay its fee. Summed over a wallet's transactions that is
//! the equation above; the push is the soak's constant, not read from the chain, so a share
//! paid to the wrong side, a sweep into the wrong wallet or an output left behind breaks it.
//!
//! Who pays each fee is read from the chain: a transaction with wallet inputs is that wallet's
//! (a funding tx when it creates a non-wallet output, else a CPFP child or another wallet
//! spend); one spending a funding output is the channel's funder's (the funding tx's wallet
//! inputs name it); anything else (a sweep) is the wallet its outputs pay.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bitcoin::{OutPoint, ScriptBuf, Transaction, Txid};
use tern_devnet::Devnet;
use tern_harness::procs::is_commitment;

use super::{ANCHOR_SAT, CHANNEL, FUNDED, NODES, PUSH_SAT};

/// Fees a wallet paid, by kind of transaction.
#[derive(Debug, Default, Clone)]
pub struct Fees {
    pub funding: u64,
    /// Commitments of channels it funded.
    pub commitment: u64,
    /// Cooperative closes of channels it funded.
    pub close: u64,
    /// Anchor CPFP children it added coins to.
    pub cpfp: u64,
    /// Sweeps of commitment outputs into it.
    pub sweep: u64,
    /// Other spends of its coins (the soak makes none).
    pub other: u64,
}

impl Fees {
    fn total(&self) -> u64 {
        self.funding + self.commitment + self.close + self.cpfp + self.sweep + self.other
    }
}

/// One wallet's ledger.
#[derive(Debug, Default, Clone)]
pub struct Entry {
    pub name: String,
    pub funded: u64,
    /// Channels it funded / accepted whose funding confirmed.
    pub opened: u64,
    pub accepted: u64,
    pub pushes_received: u64,
    pub pushes_given: u64,
    /// Anchor outputs it spent (CPFP), and those of its channels' confirmed commitments.
    pub anchors_spent: u64,
    pub anchors_paid: u64,
    pub fees: Fees,
    /// The chain's coins at its scripts.
    pub on_chain: u64,
}

impl Entry {
    fn sides(&self) -> (u64, u64) {
        (
            self.funded + self.pushes_received + self.anchors_spent,
            self.on_chain + self.fees.total() + self.pushes_given + self.anchors_paid,
        )
    }

    pub fn balanced(&self) -> bool {
        let (a, b) = self.sides();
        a == b
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b) = self.sides();
        let x = &self.fees;
        write!(
            f,
            "{}: funded {} + pushes received {} ({} accepted) + anchors spent {} = {a}; \
             on-chain {} + fees {} (funding {}, commitment {}, close {}, cpfp {}, sweep {}, \
             other {}) + pushes given {} ({} opened) + anchors paid {} = {b}",
            self.name,
            self.funded,
            self.pushes_received,
            self.accepted,
            self.anchors_spent,
            self.on_chain,
            x.total(),
            x.funding,
            x.commitment,
            x.close,
            x.cpfp,
            x.sweep,
            x.other,
            self.pushes_given,
            self.opened,
            self.anchors_paid,
        )
    }
}

/// A transaction's input, from the output it spends.
struct Input {
    outpoint: OutPoint,
    value: u64,
    /// The wallet whose script it paid.
    wallet: Option<usize>,
    /// Whether it is a commitment's anchor.
    anchor: bool,
}

/// Which of [`Fees`] a transaction's fee is.
enum Slot {
    Funding,
    Commitment,
    Close,
    Cpfp,
    Sweep,
    Other,
}

/// What a transaction is, from its inputs.
enum Kind {
    /// Spends the wallet's coins.
    Wallet(usize),
    /// Spends a funding output (of the channel of that funding outpoint).
    Closing(OutPoint),
    /// Neither: a sweep.
    Sweep,
}

/// The ledger of every wallet, from `txs` (every confirmed transaction descending from the
/// faucet's payments), the wallets' scripts and the chain's coins at them; `Err` names every
/// wallet whose ledger does not balance (with each term) or a channel whose shares are wrong.
pub fn ledger(
    devnet: &Devnet,
    txs: &BTreeSet<Txid>,
    names: &[String],
    scripts: &[BTreeSet<ScriptBuf>],
    on_chain: &[u64],
) -> Result<Vec<Entry>, String> {
    let tx_of = |txid: &Txid| -> Result<Transaction, String> {
        devnet
            .transaction(txid)
            .ok_or_else(|| format!("{txid} unknown"))
    };
    let owner = |script: &ScriptBuf| scripts.iter().position(|s| s.contains(script));
    let all: BTreeMap<Txid, Transaction> = txs
        .iter()
        .map(|t| tx_of(t).map(|tx| (*t, tx)))
        .collect::<Result<_, _>>()?;
    let mut entries: Vec<Entry> = (0..NODES)
        .map(|i| Entry {
            name: names[i].clone(),
            funded: FUNDED,
            on_chain: on_chain[i],
            ..Entry::default()
        })
        .collect();

    let mut inputs: BTreeMap<Txid, Vec<Input>> = BTreeMap::new();
    for (txid, tx) in &all {
        let mut v = Vec::new();
        for input in &tx.input {
            let op = input.previous_output;
            let prev = match all.get(&op.txid) {
                Some(p) => p.clone(),
                None => tx_of(&op.txid)?,
            };
            let out = prev
                .output
                .get(op.vout as usize)
                .ok_or_else(|| format!("no output {op}"))?;
            let value = out.value.to_sat();
            v.push(Input {
                outpoint: op,
                value,
                wallet: owner(&out.script_pubkey),
                anchor: value == ANCHOR_SAT && is_commitment(&prev),
            });
        }
        inputs.insert(*txid, v);
    }
    let wallet_of = |txid: &Txid| -> Result<Option<usize>, String> {
        let owners: BTreeSet<usize> = inputs[txid].iter().filter_map(|i| i.wallet).collect();
        match owners.len() {
            0 => Ok(None),
            1 => Ok(owners.into_iter().next()),
            _ => Err(format!("{txid} spends coins of wallets {owners:?}")),
        }
    };

    // The funding outputs: the non-wallet outputs of a wallet's transactions, by funder.
    let mut funder: BTreeMap<OutPoint, usize> = BTreeMap::new();
    for (txid, tx) in &all {
        if let Some(w) = wallet_of(txid)? {
            for (vout, out) in tx.output.iter().enumerate() {
                if owner(&out.script_pubkey).is_none() {
                    if out.value.to_sat() != CHANNEL {
                        return Err(format!(
                            "{txid}:{vout} of {}'s coins pays {} outside the wallets, not a {CHANNEL}-sat channel",
                            names[w], out.value
                        ));
                    }
                    funder.insert(OutPoint::new(*txid, vout as u32), w);
                }
            }
        }
    }

    // Each transaction's payer, its fee attributed to it.
    let mut payer: BTreeMap<Txid, usize> = BTreeMap::new();
    let mut closing: BTreeMap<OutPoint, Txid> = BTreeMap::new();
    for (txid, tx) in &all {
        let ins = &inputs[txid];
        let paid_in: u64 = ins.iter().map(|i| i.value).sum();
        let paid_out: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
        let fee = paid_in
            .checked_sub(paid_out)
            .ok_or_else(|| format!("{txid} creates coins"))?;
        let anchors_in = ins.iter().filter(|i| i.anchor).count() as u64 * ANCHOR_SAT;
        let channel = ins
            .iter()
            .map(|i| i.outpoint)
            .find(|op| funder.contains_key(op));
        let kind = match (wallet_of(txid)?, channel) {
            (Some(_), Some(c)) => return Err(format!("{txid} spends wallet coins and {c}")),
            (Some(w), None) => Kind::Wallet(w),
            (None, Some(c)) if ins.len() == 1 => Kind::Closing(c),
            (None, Some(c)) => return Err(format!("{txid} spends {c} and more")),
            (None, None) => Kind::Sweep,
        };
        let (who, slot) = match kind {
            Kind::Wallet(w) => {
                let funds = tx.output.iter().any(|o| owner(&o.script_pubkey).is_none());
                let slot = if funds {
                    Slot::Funding
                } else if anchors_in > 0 {
                    Slot::Cpfp
                } else {
                    Slot::Other
                };
                (w, slot)
            }
            Kind::Closing(c) => {
                let f = funder[&c];
                closing.insert(c, *txid);
                if is_commitment(tx) {
                    let anchors = tx
                        .output
                        .iter()
                        .filter(|o| o.value.to_sat() == ANCHOR_SAT)
                        .count() as u64;
                    entries[f].anchors_paid += anchors * ANCHOR_SAT;
                    (f, Slot::Commitment)
                } else {
                    (f, Slot::Close)
                }
            }
            Kind::Sweep => {
                let owners: BTreeSet<Option<usize>> =
                    tx.output.iter().map(|o| owner(&o.script_pubkey)).collect();
                match owners.into_iter().collect::<Vec<_>>()[..] {
                    [Some(w)] => (w, Slot::Sweep),
                    ref other => return Err(format!("sweep {txid} pays wallets {other:?}")),
                }
            }
        };
        let fees = &mut entries[who].fees;
        *match slot {
            Slot::Funding => &mut fees.funding,
            Slot::Commitment => &mut fees.commitment,
            Slot::Close => &mut fees.close,
            Slot::Cpfp => &mut fees.cpfp,
            Slot::Sweep => &mut fees.sweep,
            Slot::Other => &mut fees.other,
        } += fee;
        entries[who].anchors_spent += anchors_in;
        payer.insert(*txid, who);
    }

    // Every channel whose funding confirmed: its closing transaction pays the fundee exactly
    // the push (no payment was ever made) and nobody but the two sides.
    for (c, f) in &funder {
        let g = (f + 1) % NODES;
        let k = closing
            .get(c)
            .ok_or_else(|| format!("funding {c} of {} never closed", names[*f]))?;
        let tx = &all[k];
        let mut share: BTreeMap<usize, u64> = BTreeMap::new();
        for (vout, out) in tx.output.iter().enumerate() {
            let value = out.value.to_sat();
            if value == ANCHOR_SAT && is_commitment(tx) {
                continue;
            }
            let to = match owner(&out.script_pubkey) {
                Some(w) => w,
                None => {
                    let op = OutPoint::new(*k, vout as u32);
                    let spender = devnet
                        .chain()
                        .outspend(&op)
                        .ok_or_else(|| format!("{op} of channel {c} unspent"))?;
                    *payer
                        .get(&spender.txid)
                        .ok_or_else(|| format!("{op} spent by {} unknown", spender.txid))?
                }
            };
            *share.entry(to).or_default() += value;
        }
        if share.keys().any(|w| w != f && *w != g) || share.get(&g) != Some(&PUSH_SAT) {
            return Err(format!(
                "channel {c} ({} funded, {} accepted a {PUSH_SAT}-sat push): its {} {k} pays {:?}",
                names[*f],
                names[g],
                if is_commitment(tx) {
                    "commitment"
                } else {
                    "close"
                },
                share
                    .iter()
                    .map(|(w, v)| format!("{} {v}", names[*w]))
                    .collect::<Vec<_>>()
            ));
        }
        entries[*f].opened += 1;
        entries[*f].pushes_given += PUSH_SAT;
        entries[g].accepted += 1;
        entries[g].pushes_received += PUSH_SAT;
    }

    let broken: Vec<String> = entries
        .iter()
        .filter(|e| !e.balanced())
        .map(|e| e.to_string())
        .collect();
    if !broken.is_empty() {
        return Err(format!("ledger broken: {}", broken.join(" | ")));
    }
    Ok(entries)
}
