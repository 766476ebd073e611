//! What the node API takes and returns (besides events and errors).

use bitcoin::secp256k1::PublicKey;
use bitcoin::{Amount, OutPoint};

use crate::proto::channel::{ChannelState, ClaimStatus, Claimable, ClosingStatus};
use crate::proto::wire::ChannelId;

/// A channel as the app sees it (names follow ldk-node's `ChannelDetails` where the meaning is
/// the same).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelDetails {
    /// Final channel id once known, else the temporary id.
    pub channel_id: ChannelId,
    /// The id used before the funding was known.
    pub temporary_channel_id: ChannelId,
    /// The peer.
    pub counterparty_node_id: PublicKey,
    /// The state machine's state.
    pub state: ChannelState,
    /// The state in words, e.g. "awaiting confirmations 2/3".
    pub status: String,
    /// Whether we funded it.
    pub is_outbound: bool,
    /// Channel size.
    pub channel_value: Amount,
    /// Our balance in the channel.
    pub balance_msat: u64,
    /// The funding outpoint once known.
    pub funding_txo: Option<OutPoint>,
    /// Confirmations of the funding at the synced tip.
    pub confirmations: u32,
    /// Confirmations required (`minimum_depth`), once known.
    pub confirmations_required: Option<u32>,
    /// Whether it is announced to the network.
    pub is_announced: bool,
    /// Whether the `channel_announcement` is built and verified (announced channels, after 6
    /// confirmations and both halves of the proof).
    pub announcement_ready: bool,
    /// Whether the channel is an `option_anchors` one (anchor outputs, zero-fee HTLC
    /// transactions) rather than plain `option_static_remotekey`.
    pub anchors: bool,
    /// The number of our current commitment (0 = the first).
    pub commitment_number: u64,
    /// The feerate of our current commitment, in sat per 1000 weight units.
    pub commitment_feerate_per_kw: u32,
    /// Whether a commitment update is in flight (it needs the peer connected to finish).
    pub update_pending: bool,
    /// How far the channel's close is (`None`: not closing); [`ChannelDetails::status`] puts
    /// it in words.
    pub closing: Option<ClosingStatus>,
    /// What the close still gives back to us on chain, and when (empty unless closing).
    pub claimable: Vec<Claimable>,
    /// Whether our commitment's fee can be raised (CPFP through our anchor) if we must
    /// force-close; [`ChannelDetails::fee_bump_words`] says it in words.
    pub fee_bump: FeeBump,
    /// [`ChannelDetails::fee_bump`] in words: "fee fixed at 2500 sat/kw: ...", "fee can be
    /// bumped: ...", "fee cannot be bumped: no on-chain coin ...".
    pub fee_bump_words: String,
}

/// Whether our commitment's fee can be raised after a force close (`node/reserve.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeeBump {
    /// No anchors: the fee is the one both sides signed, at this feerate.
    Fixed {
        /// The commitment's feerate, sat per 1000 weight units.
        feerate_per_kw: u32,
    },
    /// Anchors, and the wallet has a coin: a force close is CPFP'd through our anchor.
    Bumpable,
    /// Anchors, but no wallet coin to CPFP with.
    NoCoin,
}

/// What [`super::Node::open_channel`] opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenChannelParams {
    /// The peer.
    pub node_id: PublicKey,
    /// Where it listens (`host:port`); remembered to reconnect.
    pub address: String,
    /// Channel size (we fund all of it).
    pub channel_value: Amount,
    /// What we give the peer at open.
    pub push_msat: u64,
    /// Announce the channel to the network (public channel).
    pub announce: bool,
}

impl OpenChannelParams {
    /// A private channel of `channel_value` to `node_id` at `address`, nothing pushed.
    pub fn new(node_id: PublicKey, address: impl Into<String>, channel_value: Amount) -> Self {
        OpenChannelParams {
            node_id,
            address: address.into(),
            channel_value,
            push_msat: 0,
            announce: false,
        }
    }

    /// Gives the peer `push_msat` at open.
    pub fn push_msat(mut self, push_msat: u64) -> Self {
        self.push_msat = push_msat;
        self
    }

    /// Announces the channel (public).
    pub fn announce(mut self, announce: bool) -> Self {
        self.announce = announce;
        self
    }
}

/// What one [`super::Node::sync`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncSummary {
    /// The synced tip height.
    pub tip_height: Option<u32>,
    /// Requests made.
    pub requests: usize,
    /// Chain events found.
    pub events: usize,
}

/// An amount a closing channel gives back to us on chain, and when (like ldk-node's
/// lightning balances): from [`super::Node::claimable_balances`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClaimableBalance {
    /// The channel.
    pub channel_id: ChannelId,
    /// The peer.
    pub counterparty_node_id: PublicKey,
    /// The amount, before the sweep's fee.
    pub amount: Amount,
    /// Where it stands (timelocked until a height, being swept, awaiting confirmations).
    pub status: ClaimStatus,
}

/// What a node has cost since it started ([`super::Node::counters`]; a wake reports the same
/// figures for itself in [`super::WakeCosts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Requests to the chain source (Esplora): syncs, broadcasts, fee estimates, checks.
    pub requests: u64,
    /// SQLite write transactions committed: the store's and the wallet's connections.
    pub commits: u64,
    /// Estimated fsyncs of those commits (the store's estimate, checked against `strace`:
    /// [`crate::store::StoreStats::fsyncs`], plus one per wallet commit); the checkpoint
    /// SQLite runs when the last connection closes is not counted.
    pub fsyncs: u64,
    /// Outbound dials started (TCP connect + handshake), redials included.
    pub dials: u64,
    /// Response body bytes received from the chain source (Esplora), retries included.
    pub http_bytes: u64,
    /// Acquisitions of the node's in-memory locks, process-wide (every node of the process
    /// counts here: [`super::lock_stats`]).
    pub lock_acquisitions: u64,
    /// Of those, the acquisitions that had to wait for another holder (process-wide): a small
    /// fraction under parallel peers is what says no lock is global.
    pub lock_waits: u64,
}
