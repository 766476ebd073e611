//! The watched chain state: the last synced tip and every watch's last known state. A plain
//! value, serialised as a versioned record by its owner.

use std::collections::BTreeMap;

use bitcoin::{BlockHash, OutPoint, Txid};
use serde::{Deserialize, Serialize};

use super::Spend;

/// Record version of [`ChainState`] encodings.
pub const CHAIN_STATE_VERSION: u8 = 1;

/// A block by height and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRef {
    /// Height.
    pub height: u32,
    /// Hash.
    pub hash: BlockHash,
}

/// Where a transaction confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// Block height.
    pub height: u32,
    /// Block hash.
    pub block_hash: BlockHash,
    /// Block time (unix seconds).
    pub block_time: u64,
}

/// Last known state of a watched transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxWatchState {
    /// In the mempool (or not yet seen).
    Unconfirmed,
    /// Confirmed, with a checked merkle proof.
    Confirmed(Confirmation),
    /// The server no longer knows it (dropped, or replaced).
    Gone,
    /// One of its inputs was spent by another transaction.
    DoubleSpent {
        /// The conflicting transaction.
        by: Txid,
    },
}

/// A transaction we wait on (a funding transaction, a wallet transaction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxWatch {
    /// Inputs of the transaction when we know them (to tell a double spend from a drop).
    pub inputs: Vec<OutPoint>,
    /// Last known state.
    pub state: TxWatchState,
}

/// The longest a watched outpoint goes unchecked, in blocks: 36 blocks, about six hours.
///
/// A funding outpoint is checked every `to_self_delay / 4` blocks (the delay we impose on the
/// peer's `to_local`, i.e. our time to punish a revoked commitment: a spend is seen with at
/// least ¾ of it left), but never less often than this, whatever `to_self_delay` is: a
/// channel the peer closed must be noticed within hours, not days, even when nothing can be
/// stolen (the app must stop offering it and its `to_remote` is ours to sweep, and HTLC
/// deadlines, counted in tens of blocks, will be shorter than any `to_self_delay`). 36 is
/// what the default `to_self_delay` of 144 gives, so the cap only shortens larger delays
/// (2016, the largest we accept, would give 504 blocks: three and a half days).
pub const MAX_OUTPOINT_INTERVAL: u32 = 36;

/// An outpoint whose spend we must see (a channel's funding outpoint), checked on a schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutpointWatch {
    /// Checked at least once every `interval` blocks (`to_self_delay / 4`, at most
    /// [`MAX_OUTPOINT_INTERVAL`]; a larger stored value is capped when the schedule is read).
    pub interval: u32,
    /// Check at the next sync whatever the schedule (peer disconnected unexpectedly or sent an
    /// error).
    pub check_now: bool,
    /// The spend, once seen.
    pub spend: Option<Spend>,
    /// A spend forgotten by [`ChainState::report_spend_again`] and not re-checked yet: if the
    /// re-check finds the output unspent, that spend left the chain while it was forgotten,
    /// and it is reported as gone ([`ChainEvent::OutpointUnspent`](super::ChainEvent)) like
    /// any spend that leaves (a consumer that took it, e.g. a channel closing on the peer's
    /// commitment, must learn it is gone). Absent in records written before it (and whenever
    /// `None`, so they re-encode to the same bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forgotten: Option<Spend>,
}

impl OutpointWatch {
    /// The check interval for a channel whose peer's `to_self_delay` (the one we impose) is
    /// `to_self_delay`: `to_self_delay / 4` blocks, within `1..=MAX_OUTPOINT_INTERVAL`.
    pub fn interval_for(to_self_delay: u16) -> u32 {
        (u32::from(to_self_delay) / 4).clamp(1, MAX_OUTPOINT_INTERVAL)
    }

    /// Offset of this outpoint in the schedule, so checks of many channels spread over blocks.
    pub fn stagger(outpoint: &OutPoint, interval: u32) -> u32 {
        let bytes = bitcoin::hashes::Hash::as_byte_array(&outpoint.txid);
        let seed = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) ^ outpoint.vout;
        seed % interval.max(1)
    }

    /// Whether a check is due for some height in `(from, to]`.
    pub fn due(outpoint: &OutPoint, interval: u32, from: u32, to: u32) -> bool {
        let interval = interval.clamp(1, MAX_OUTPOINT_INTERVAL);
        if to.saturating_sub(from) >= interval {
            return true;
        }
        let stagger = Self::stagger(outpoint, interval);
        (from.saturating_add(1)..=to).any(|h| (h + stagger).is_multiple_of(interval))
    }
}

/// Everything the chain watcher knows; persisted after each sync that changed it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainState {
    /// Last synced tip.
    pub tip: Option<BlockRef>,
    /// Watched transactions.
    pub txs: BTreeMap<Txid, TxWatch>,
    /// Watched outpoints.
    pub outpoints: BTreeMap<OutPoint, OutpointWatch>,
}

impl ChainState {
    /// Versioned encoding: a version byte, then JSON.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![CHAIN_STATE_VERSION];
        // Serialising plain data into a Vec cannot fail.
        out.extend(serde_json::to_vec(self).expect("chain state serialises"));
        out
    }

    /// Decodes [`ChainState::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Result<Self, ChainStateDecodeError> {
        match bytes.split_first() {
            Some((&CHAIN_STATE_VERSION, rest)) => {
                serde_json::from_slice(rest).map_err(|e| ChainStateDecodeError::Json(e.to_string()))
            }
            Some((v, _)) => Err(ChainStateDecodeError::UnknownVersion(*v)),
            None => Err(ChainStateDecodeError::Empty),
        }
    }

    /// Starts watching a transaction (no-op if already watched).
    pub fn watch_tx(&mut self, txid: Txid, inputs: Vec<OutPoint>) {
        self.txs.entry(txid).or_insert(TxWatch {
            inputs,
            state: TxWatchState::Unconfirmed,
        });
    }

    /// Stops watching a transaction.
    pub fn unwatch_tx(&mut self, txid: &Txid) {
        self.txs.remove(txid);
    }

    /// Starts watching an outpoint's spend, checked every `to_self_delay / 4` blocks (at most
    /// [`MAX_OUTPOINT_INTERVAL`]), and at the next sync. No-op if already watched.
    pub fn watch_outpoint(&mut self, outpoint: OutPoint, to_self_delay: u16) {
        let interval = OutpointWatch::interval_for(to_self_delay);
        self.outpoints.entry(outpoint).or_insert(OutpointWatch {
            interval,
            check_now: true,
            spend: None,
            forgotten: None,
        });
    }

    /// Starts watching an output of a closing channel: on the same schedule, but not checked
    /// at the next sync (nobody but us spends it before its timelock; the driver checks it at
    /// once when it broadcasts the spend, [`ChainState::check_outpoint_now`]). No-op if
    /// already watched.
    pub fn watch_output(&mut self, outpoint: OutPoint, to_self_delay: u16) {
        let interval = OutpointWatch::interval_for(to_self_delay);
        self.outpoints.entry(outpoint).or_insert(OutpointWatch {
            interval,
            check_now: false,
            spend: None,
            forgotten: None,
        });
    }

    /// Forgets the spend seen of a watched outpoint and checks it at the next sync, which
    /// reports it again (its consumer missed it: a kill between the watcher's persist and the
    /// channel's, a failed fetch of the spending transaction). The spend is kept aside
    /// ([`OutpointWatch::forgotten`]) until that check answers: if the output is then unspent
    /// (the spend left the mempool meanwhile), the check reports it unspent, so a consumer
    /// that had taken the spend is never left waiting on a transaction that is gone.
    pub fn report_spend_again(&mut self, outpoint: &OutPoint) {
        if let Some(w) = self.outpoints.get_mut(outpoint) {
            if let Some(spend) = w.spend.take() {
                w.forgotten = Some(spend);
                w.check_now = true;
            }
        }
    }

    /// Stops watching an outpoint.
    pub fn unwatch_outpoint(&mut self, outpoint: &OutPoint) {
        self.outpoints.remove(outpoint);
    }

    /// Checks an outpoint at the next sync, whatever its schedule.
    pub fn check_outpoint_now(&mut self, outpoint: &OutPoint) {
        if let Some(w) = self.outpoints.get_mut(outpoint) {
            w.check_now = true;
        }
    }

    /// Takes a sync's result into a state that may have gained or lost watches while the sync
    /// ran (the sync started from an older copy): watches added meanwhile are kept, removed
    /// ones stay removed, the others take the synced state.
    pub fn absorb(&mut self, synced: ChainState) {
        self.tip = synced.tip;
        for (txid, w) in synced.txs {
            if let Some(current) = self.txs.get_mut(&txid) {
                current.state = w.state;
            }
        }
        for (op, w) in synced.outpoints {
            if let Some(current) = self.outpoints.get_mut(&op) {
                current.spend = w.spend;
                current.check_now = w.check_now;
                current.forgotten = w.forgotten;
            }
        }
    }

    /// Confirmations of a watched transaction at the synced tip (0 when unconfirmed).
    pub fn depth(&self, txid: &Txid) -> u32 {
        match (self.txs.get(txid).map(|w| w.state), self.tip) {
            (Some(TxWatchState::Confirmed(c)), Some(tip)) if tip.height >= c.height => {
                tip.height - c.height + 1
            }
            _ => 0,
        }
    }
}

/// Why a stored chain state could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainStateDecodeError {
    /// The record is empty.
    #[error("chain state: empty record")]
    Empty,
    /// Written by a newer version of Tern.
    #[error("chain state: unknown record version {0}")]
    UnknownVersion(u8),
    /// The JSON body does not parse.
    #[error("chain state: {0}")]
    Json(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_chain_states_say_why_in_a_type() {
        assert_eq!(ChainState::decode(&[]), Err(ChainStateDecodeError::Empty));
        assert_eq!(
            ChainState::decode(b"\x09{}"),
            Err(ChainStateDecodeError::UnknownVersion(9))
        );
        assert!(matches!(
            ChainState::decode(b"\x01not json"),
            Err(ChainStateDecodeError::Json(_))
        ));
        let state = ChainState::default();
        assert_eq!(ChainState::decode(&state.encode()), Ok(state));
    }
    use bitcoin::hashes::Hash;

    #[test]
    fn record_round_trips_and_rejects_unknown_versions() {
        let mut s = ChainState {
            tip: Some(BlockRef {
                height: 7,
                hash: BlockHash::all_zeros(),
            }),
            ..ChainState::default()
        };
        s.watch_tx(Txid::all_zeros(), vec![OutPoint::null()]);
        s.watch_outpoint(OutPoint::null(), 144);
        let bytes = s.encode();
        assert_eq!(ChainState::decode(&bytes), Ok(s));
        let mut bad = bytes.clone();
        bad[0] = 9;
        assert!(ChainState::decode(&bad).is_err());
    }

    #[test]
    fn schedule_checks_every_interval_and_staggers() {
        let interval = 36;
        let ops: Vec<OutPoint> = (0..10u8)
            .map(|i| OutPoint::new(Txid::from_byte_array([i.wrapping_mul(37); 32]), 0))
            .collect();
        // Block by block, each outpoint is due exactly once per interval...
        for op in &ops {
            let due = (100..100 + interval).filter(|h| OutpointWatch::due(op, interval, *h, h + 1));
            assert_eq!(due.count(), 1);
        }
        // ...and a jump of a whole interval makes everything due.
        assert!(ops
            .iter()
            .all(|op| OutpointWatch::due(op, interval, 100, 100 + interval)));
        // Staggered: not all on the same block.
        let offsets: std::collections::BTreeSet<u32> = ops
            .iter()
            .map(|op| OutpointWatch::stagger(op, interval))
            .collect();
        assert!(offsets.len() > 5);
    }
}
