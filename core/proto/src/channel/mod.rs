//! The channel state machine: BOLT 2 v1 establishment in both roles, the chain reactions of an
//! opening channel and its `channel_reestablish` logic.
//!
//! See [BOLT 2: Channel Establishment v1](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#channel-establishment-v1)
//! and [Message Retransmission](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#message-retransmission).
//!
//! Pure code: a [`Channel`] takes inputs ([`Input`]: a peer message, the wallet's funding
//! transaction, a chain event, a new block height, a (re)connection) and returns [`Action`]s,
//! in the order the driver must perform them. It never performs I/O, reads no clock and draws
//! no randomness. Secrets are not stored in the channel: transitions that sign receive a
//! [`Context`] built from the channel's keys (re-derived from the seed and
//! [`Channel::keys_index`]).
//!
//! Durable points (BOLT 2): the fundee commits before sending `funding_signed`; the funder
//! commits after receiving `funding_signed` and before broadcasting. Before them the channel is
//! transient and a failure emits [`Action::FailOpen`]. Later marks (confirmation, channel_ready
//! sent, channel_ready received) are committed as they happen, always before the send that
//! depends on them. [`DurabilityChecker`] verifies that contract on any action sequence.
//!
//! Phases, one file each: `open` (funder), `accept` (fundee), `commitment` (the first
//! commitment transactions), `ready` (chain events, `channel_ready`, watchdog, reorgs),
//! `reestablish`, `unfunded` (a fundee failed before its funding was seen), `record` (the
//! versioned persisted form) and `fields` (its flat field set, checked into a phase on
//! reading), `validate` (the peer's parameters), `action` (actions, events, the durability
//! checker), `effects` (the commits, watches, broadcasts and failures every phase builds). `phase` holds one type per phase of the channel's life ([`Channel`] is the shared
//! parameters plus the phase; [`ChannelState`] is a view of it).
//!
//! # States
//!
//! ```text
//! funder:  OutboundAwaitingAccept --accept_channel--> AwaitingFundingTx --FundingTxBuilt-->
//!          AwaitingFundingSigned --funding_signed--> AwaitingConfirmations  [Commit, Broadcast]
//! fundee:  (open_channel) InboundAwaitingFundingCreated --funding_created-->
//!          AwaitingConfirmations  [Commit, then Send(funding_signed)]
//! both:    AwaitingConfirmations --depth >= minimum_depth--> AwaitingChannelReady
//!          [Commit(ready sent), Send(channel_ready)] --peer's channel_ready--> Ready
//!          (or straight to Ready if the peer's came first); reorg → AwaitingConfirmations;
//!          double-spend, funding output spent, peer error, bad reestablish, fundee timeout
//!          → Failed.
//! fundee:  peer error or refused reestablish before the funding was seen → FailedUnfunded
//!          [Commit, no commitment]; --funding confirms--> AwaitingConfirmations;
//!          --2016 blocks after created_height--> Failed.
//! transient failure (any of the first four states) → Aborted  [FailOpen]
//! ```
//!
//! # Driver contract
//!
//! Starting: [`Channel::new_outbound`] for a user's open (temporary id and key index chosen by
//! the caller), [`Channel::new_inbound`] for a received `open_channel` (route messages with
//! [`message_channel_id`] / [`Channel::is_for`]). After a restart, rebuild each channel with
//! [`ChannelRecord::decode`] and perform [`Channel::resume_actions`]. Feed every event with
//! [`Channel::handle`] and perform the returned actions in order, stopping at a failed
//! [`Action::Commit`] (retry the input later: nothing after it may happen):
//!
//! | action | the driver |
//! |---|---|
//! | `Commit(commit)` | in one durable (fsync) transaction: stores `commit.record.encode()` under the peer and temporary id (replacing the previous one), queues `commit.events`, sets the open intent's status to `commit.open` (if it holds an intent for the channel) and releases `commit.release` — exactly that, nothing inferred from the state |
//! | `Send(msg)` | sends to the peer; drops it if the peer is not connected or its `channel_reestablish` has not arrived yet |
//! | `NeedFundingTx{..}` | has the wallet build, sign and lock (not broadcast) the funding, answers `FundingTxBuilt` / `FundingTxFailed` |
//! | `Broadcast{tx, kind}` | broadcasts (idempotent; also the funding's rebroadcasts on new blocks and at start; a `Commitment` is our unilateral close) |
//! | `Watch(WatchRequest::Funding{..})` | registers the outpoint with the chain source; reports `FundingConfirmed`, `FundingReorged`, `FundingDoubleSpent`, `FundingSpent` |
//! | `Emit(event)` | queues an event no commit carries for the app (persisted queue) |
//! | `Disconnect{..}` | closes the connection to the peer; with `DisconnectScope::UnlessShared` only if no other channel or open with the peer is alive |
//! | `ReconnectPeer{..}` | watchdog: logs the reason, disconnects and reconnects the peer |
//! | `FailOpen(fail)` | forgets the transient channel (nothing was persisted); in one transaction unlocks the open's coins and those of `fail.funding_txid` (dropped from the wallet), marks the open failed and queues `fail.events` |
//!
//! Public channels: give the [`Context`] the node key ([`Context::with_node_key`]); once a
//! persisted record has [`Channel::channel_announcement`], hand it to the gossip layer.
//!
//! The driver also feeds [`Input::NewBlock`] on every new tip (watchdog, rebroadcast, fundee
//! timeout), [`Input::PeerDisconnected`] / [`Input::PeerReconnected`] for each channel of the
//! peer, and every message naming the channel.

mod accept;
mod action;
mod announce;
mod classify;
mod close_types;
mod commitment;
mod commitments;
mod config;
mod effects;
mod fee_policy;
mod fields;
mod input;
mod negotiate;
mod open;
mod phase;
mod ready;
mod record;
mod reestablish;
mod resolve;
mod resolve_chain;
mod resolve_cpfp;
mod resolve_record;
mod resolve_sweep;
mod shutdown;
mod spent;
mod unfunded;
mod update;
mod validate;

#[cfg(test)]
mod tests;

use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::{All, PublicKey, Secp256k1, SecretKey};
use bitcoin::{Amount, BlockHash, OutPoint, ScriptBuf, Transaction};

use crate::bolt3::funding_script_pubkey;
use crate::keys::{ChannelKeys as ChannelSecrets, KeysError, INITIAL_COMMITMENT_NUMBER};
use crate::wire::{ChannelAnnouncement, ChannelId, ChannelKeys, Features, Message, ShortChannelId};
use phase::{ChannelParams, OpenStep, Phase};

pub use action::{
    check_action_order, Action, BroadcastKind, ChannelEvent, Commit, DisconnectScope,
    DurabilityChecker, FailOpen, OpenProgress, OrderViolation, Release, WatchRequest,
};
pub use announce::ANNOUNCEMENT_DEPTH;
pub use classify::SpendKind;
pub use close_types::{ClaimStatus, Claimable, CloseKind, ClosingStatus, Initiator};
pub use config::{
    ChannelConfig, InboundParams, OutboundParams, DEFAULT_DUST_LIMIT_SAT, DEFAULT_TO_SELF_DELAY,
    FUNDEE_FUNDING_TIMEOUT_BLOCKS, LARGE_CHANNEL_THRESHOLD_SAT, MAX_ACCEPTED_HTLCS,
    MIN_DUST_LIMIT_SAT, MIN_FEERATE_PER_KW, WATCHDOG_EXTRA_BLOCKS,
};
pub(crate) use effects::broadcast_funding;
pub use fee_policy::{check_peer_feerate, funder_feerate, FeeEstimates};
pub use input::{message_channel_id, Input};
pub use record::{ChannelRecord, RecordError, RECORD_VERSION};
pub use resolve_cpfp::{CpfpRequest, RBF_STEP_PER_KW};
pub use validate::ValidationError;

/// Errors of the channel layer that are not a peer's fault (those become `error` messages).
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The open command is invalid (amount out of bounds, push above funding, ...).
    #[error("invalid open command: {0}")]
    InvalidCommand(ValidationError),
    /// A received `open_channel` is refused; `actions` tell the peer (an `error` naming the
    /// field, then a disconnect).
    #[error("open_channel refused: {error}")]
    Rejected {
        /// What is wrong.
        error: ValidationError,
        /// What to do about it.
        actions: Vec<Action>,
    },
    /// Key derivation failed.
    #[error("key derivation failed: {0}")]
    Keys(#[from] KeysError),
}

/// Which side of the open we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// We sent `open_channel` and fund the channel.
    Funder,
    /// We received `open_channel`.
    Fundee,
}

/// Where a channel is in its establishment.
///
/// The first four states are transient (never persisted by the protocol: a disconnect forgets
/// them), as is [`ChannelState::Aborted`]; from [`ChannelState::AwaitingConfirmations`] on the
/// channel is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelState {
    /// Funder: `open_channel` sent, waiting for `accept_channel`.
    OutboundAwaitingAccept,
    /// Funder: `accept_channel` validated; waiting for the wallet's funding transaction
    /// ([`Action::NeedFundingTx`] → [`Input::FundingTxBuilt`]).
    AwaitingFundingTx,
    /// Funder: `funding_created` sent, waiting for `funding_signed`.
    AwaitingFundingSigned,
    /// Fundee: `accept_channel` sent, waiting for `funding_created`.
    InboundAwaitingFundingCreated,
    /// Both: the channel is durable; the funding is not yet at `minimum_depth` (the peer's
    /// `channel_ready` may already have arrived).
    AwaitingConfirmations,
    /// Both: the funding reached `minimum_depth` and our `channel_ready` was sent; waiting for
    /// the peer's.
    AwaitingChannelReady,
    /// Both sides sent `channel_ready`: normal operation may begin.
    Ready,
    /// A cooperative close began: our `shutdown` is stored (sent once no update is in flight)
    /// or the peer's arrived (ours follows once no update is in flight).
    ShuttingDown,
    /// Both `shutdown`s exchanged: negotiating the closing fee (`closing_signed`), or agreed
    /// and broadcasting the closing transaction until the funding is spent.
    Negotiating,
    /// The channel failed after becoming durable (funding double-spent, peer error, ...).
    /// Terminal; the record stays so that the app can show what happened.
    Failed,
    /// Fundee only: the channel failed — the funder dropped the open (LDK's placeholder
    /// `channel_reestablish` for a channel it does not know), sent an `error`, or sent a
    /// `channel_reestablish` we refuse — before its funding was ever seen on chain. Nothing
    /// was committed: there is no commitment to broadcast (it would spend a transaction that
    /// does not exist) and no funds of ours at stake. The funding stays watched until
    /// `created_height` + [`FUNDEE_FUNDING_TIMEOUT_BLOCKS`] (BOLT 2), because a funder may
    /// still broadcast it, perhaps with `push_msat` for us: if it confirms the channel is
    /// tracked again ([`ChannelState::AwaitingConfirmations`], `ChannelPending` again) and
    /// follows the rules of every confirmed channel — a peer that still does not know it
    /// then gets our commitment, which is valid now. At the timeout it becomes
    /// [`ChannelState::Failed`]. See `unfunded.rs`.
    FailedUnfunded,
    /// A transient open failed ([`Action::FailOpen`] was emitted): the driver forgets the
    /// channel. Terminal; every input is ignored.
    Aborted,
    /// The funding is spent, or our commitment / the agreed closing transaction is being
    /// broadcast: the close is resolving on chain (classification, sweeps, penalties; see
    /// `resolve.rs` and [`Channel::closing_status`]).
    Closing,
    /// Every output of the close is resolved at 6 confirmations. A reorg that unconfirms one
    /// brings the channel back to [`ChannelState::Closing`].
    Closed,
}

impl ChannelState {
    /// Whether a channel in this state must be remembered (BOLT 2's durable points passed).
    pub fn is_durable(self) -> bool {
        !matches!(
            self,
            ChannelState::OutboundAwaitingAccept
                | ChannelState::AwaitingFundingTx
                | ChannelState::AwaitingFundingSigned
                | ChannelState::InboundAwaitingFundingCreated
                | ChannelState::Aborted
        )
    }

    pub(crate) fn to_u8(self) -> u8 {
        match self {
            ChannelState::OutboundAwaitingAccept => 0,
            ChannelState::AwaitingFundingTx => 1,
            ChannelState::AwaitingFundingSigned => 2,
            ChannelState::InboundAwaitingFundingCreated => 3,
            ChannelState::AwaitingConfirmations => 4,
            ChannelState::AwaitingChannelReady => 5,
            ChannelState::Ready => 6,
            // On disk a FailedUnfunded record is a Failed one plus record field 55 (what
            // builds before it read, and did, minus the broadcast of an invalid commitment).
            ChannelState::Failed | ChannelState::FailedUnfunded => 7,
            ChannelState::Aborted => 8,
            ChannelState::ShuttingDown => 9,
            ChannelState::Negotiating => 10,
            // 9 and 10: ShuttingDown and Negotiating (the cooperative close).
            ChannelState::Closing => 11,
            ChannelState::Closed => 12,
        }
    }

    pub(crate) fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => ChannelState::OutboundAwaitingAccept,
            1 => ChannelState::AwaitingFundingTx,
            2 => ChannelState::AwaitingFundingSigned,
            3 => ChannelState::InboundAwaitingFundingCreated,
            4 => ChannelState::AwaitingConfirmations,
            5 => ChannelState::AwaitingChannelReady,
            6 => ChannelState::Ready,
            7 => ChannelState::Failed,
            8 => ChannelState::Aborted,
            9 => ChannelState::ShuttingDown,
            10 => ChannelState::Negotiating,
            11 => ChannelState::Closing,
            12 => ChannelState::Closed,
            _ => return None,
        })
    }
}

/// One side's channel parameters, as sent in `open_channel` / `accept_channel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideParams {
    /// `dust_limit_satoshis`: applies to this side's commitment.
    pub dust_limit_sat: u64,
    /// `max_htlc_value_in_flight_msat`: cap on HTLCs offered *to* this side.
    pub max_htlc_value_in_flight_msat: u64,
    /// `channel_reserve_satoshis`: the reserve the *other* side must keep.
    pub channel_reserve_sat: u64,
    /// `htlc_minimum_msat`: smallest HTLC this side accepts.
    pub htlc_minimum_msat: u64,
    /// `to_self_delay`: the delay imposed on the *other* side's outputs.
    pub to_self_delay: u16,
    /// `max_accepted_htlcs`.
    pub max_accepted_htlcs: u16,
    /// Basepoints, funding pubkey and first per-commitment point.
    pub keys: ChannelKeys,
    /// `upfront_shutdown_script`, if sent.
    pub upfront_shutdown_script: Option<Vec<u8>>,
}

/// Where the channel's funding output is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundingInfo {
    /// The funding outpoint.
    pub outpoint: OutPoint,
    /// The funding transaction: the funder's own, or the mined one once confirmed.
    pub tx: Option<Transaction>,
}

/// Where the funding transaction was mined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirmation {
    /// Height of the block holding it.
    pub block_height: u32,
    /// That block's hash.
    pub block_hash: BlockHash,
    /// The transaction's index in the block.
    pub tx_index: u32,
}

/// What every transition may need besides the channel itself: a secp256k1 context, the
/// channel's secrets (the driver derives them with
/// `KeysManager::channel_keys(channel.keys_index())`; they are never stored in the channel)
/// and the node's [`ChannelConfig`].
#[derive(Clone, Copy)]
pub struct Context<'a> {
    secp: &'a Secp256k1<All>,
    keys: &'a ChannelSecrets,
    config: &'a ChannelConfig,
    node_key: Option<&'a SecretKey>,
    destination: Option<&'a ScriptBuf>,
    their_features: Option<&'a Features>,
    fee_estimates: Option<&'a FeeEstimates>,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", self.config)
            .finish_non_exhaustive()
    }
}

impl<'a> Context<'a> {
    /// A context over one channel's `keys`.
    pub fn new(
        secp: &'a Secp256k1<All>,
        keys: &'a ChannelSecrets,
        config: &'a ChannelConfig,
    ) -> Self {
        Context {
            secp,
            keys,
            config,
            node_key: None,
            destination: None,
            their_features: None,
            fee_estimates: None,
        }
    }

    /// Adds the wallet script our coins go to when a close needs one the user did not give:
    /// our `shutdown` answering the peer's, a sweep. The driver hands out a wallet address
    /// (persisted, so wallet sync sees payments to it); without one, such a close or sweep
    /// waits.
    pub fn with_destination(mut self, script: &'a ScriptBuf) -> Self {
        self.destination = Some(script);
        self
    }

    /// Adds the driver's fee estimates: the feerates of sweeps (the 144-block estimate) and
    /// penalties (the commitment, ~2-block, estimate) of a closing channel. Without them a
    /// sweep pays the channel's commitment feerate.
    pub fn with_fee_estimates(mut self, estimates: &'a FeeEstimates) -> Self {
        self.fee_estimates = Some(estimates);
        self
    }

    /// Adds the features the peer sent in `init` on the current connection (which shutdown
    /// scripts it accepts: `option_shutdown_anysegwit`).
    pub fn with_their_features(mut self, features: &'a Features) -> Self {
        self.their_features = Some(features);
        self
    }

    /// Adds the node's secret key, needed to sign `announcement_signatures` for public
    /// channels (private channels never use it).
    pub fn with_node_key(mut self, node_key: &'a SecretKey) -> Self {
        self.node_key = Some(node_key);
        self
    }

    /// Our per-commitment point for commitment number `n` (0 = the first).
    pub(crate) fn point(&self, n: u64) -> Result<PublicKey, KeysError> {
        self.keys
            .per_commitment_point(self.secp, INITIAL_COMMITMENT_NUMBER - n)
    }

    /// Our per-commitment secret for commitment number `n`.
    pub(crate) fn secret(&self, n: u64) -> [u8; 32] {
        self.keys
            .per_commitment_secret(INITIAL_COMMITMENT_NUMBER - n)
    }

    /// The keys we announce (basepoints, funding pubkey, first per-commitment point).
    pub(crate) fn announced_keys(&self) -> Result<ChannelKeys, KeysError> {
        let pk = self.keys.public_keys(self.secp);
        Ok(ChannelKeys {
            funding_pubkey: pk.funding_pubkey,
            revocation_basepoint: pk.revocation_basepoint,
            payment_basepoint: pk.payment_basepoint,
            delayed_payment_basepoint: pk.delayed_payment_basepoint,
            htlc_basepoint: pk.htlc_basepoint,
            first_per_commitment_point: self.point(0)?,
        })
    }
}

/// A channel being opened (or open) with one peer, in either role: the parameters every phase
/// shares and the phase it is in (see `phase.rs`). Plain data: clone it, compare it, persist it
/// through [`ChannelRecord`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    params: ChannelParams,
    phase: Phase,
}

impl Channel {
    pub(crate) fn from_parts(params: ChannelParams, phase: Phase) -> Self {
        Channel { params, phase }
    }

    pub(crate) fn params(&self) -> &ChannelParams {
        &self.params
    }

    pub(crate) fn phase(&self) -> &Phase {
        &self.phase
    }

    /// Which side we are.
    pub fn role(&self) -> Role {
        self.params.role
    }

    /// The current state (a view of the phase).
    pub fn state(&self) -> ChannelState {
        self.phase.state()
    }

    /// The peer.
    pub fn counterparty_node_id(&self) -> PublicKey {
        self.params.counterparty_node_id
    }

    /// The temporary channel id used until `funding_created`.
    pub fn temporary_channel_id(&self) -> ChannelId {
        self.params.temporary_channel_id
    }

    /// The final channel id, once the funding outpoint is known.
    pub fn channel_id(&self) -> Option<ChannelId> {
        self.phase.funding().map(|f| {
            let index = u16::try_from(f.outpoint.vout).unwrap_or(u16::MAX);
            ChannelId::v1_from_funding(&f.outpoint.txid, index)
        })
    }

    /// The id the peer knows the channel by now: the final id if known, else the temporary.
    pub fn current_id(&self) -> ChannelId {
        self.channel_id()
            .unwrap_or(self.params.temporary_channel_id)
    }

    /// Whether a message naming `id` belongs to this channel (its temporary or final id).
    pub fn is_for(&self, id: &ChannelId) -> bool {
        *id == self.params.temporary_channel_id || Some(*id) == self.channel_id()
    }

    /// The index of the channel's keys (see [`crate::keys::KeysManager::channel_keys`]).
    pub fn keys_index(&self) -> u32 {
        self.params.keys_index
    }

    /// The channel's size.
    pub fn funding_sat(&self) -> u64 {
        self.params.funding_sat
    }

    /// The chain height when the channel was created (the fundee's funding timeout counts
    /// from it).
    pub fn created_height(&self) -> u32 {
        self.params.created_height
    }

    /// The amount pushed to the fundee.
    pub fn push_msat(&self) -> u64 {
        self.params.push_msat
    }

    /// Our balance in msat (before fees).
    pub fn our_balance_msat(&self) -> u64 {
        let p = &self.params;
        match p.role {
            Role::Funder => (p.funding_sat * 1000).saturating_sub(p.push_msat),
            Role::Fundee => p.push_msat,
        }
    }

    /// Whether the channel is to be announced.
    pub fn is_public(&self) -> bool {
        self.params.announce
    }

    /// Confirmations required before `channel_ready` (known once `accept_channel` is
    /// exchanged; at least 1).
    pub fn minimum_depth(&self) -> Option<u32> {
        self.phase.negotiated().map(|n| n.minimum_depth)
    }

    /// Our parameters.
    pub fn our_params(&self) -> &SideParams {
        &self.params.ours
    }

    /// The peer's parameters, once known.
    pub fn their_params(&self) -> Option<&SideParams> {
        self.phase.negotiated().map(|n| &n.theirs)
    }

    /// The funding outpoint and transaction, once known.
    pub fn funding(&self) -> Option<&FundingInfo> {
        self.phase.funding()
    }

    /// The peer's signature of our first commitment, once the channel is durable.
    pub fn their_commitment_signature(&self) -> Option<Signature> {
        self.phase.established().map(|e| e.their_commitment_sig)
    }

    /// Where the funding was mined, if it is in the best chain.
    pub fn confirmation(&self) -> Option<Confirmation> {
        self.phase.established().and_then(|e| e.confirmation)
    }

    /// The real short channel id, once the funding is mined.
    pub fn short_channel_id(&self) -> Option<ShortChannelId> {
        let conf = self.confirmation()?;
        let vout = u16::try_from(self.funding()?.outpoint.vout).ok()?;
        ShortChannelId::new(conf.block_height, conf.tx_index, vout)
    }

    /// Confirmations of the funding at tip `tip_height` (0 when unconfirmed).
    pub fn confirmations(&self, tip_height: u32) -> u32 {
        self.confirmation().map_or(0, |c| {
            tip_height
                .checked_sub(c.block_height)
                .map_or(0, |d| d.saturating_add(1))
        })
    }

    /// Whether our `channel_ready` was sent (persisted mark).
    pub fn channel_ready_sent(&self) -> bool {
        self.phase
            .established()
            .is_some_and(|e| e.channel_ready_sent)
    }

    /// Whether the peer's `channel_ready` arrived (persisted mark).
    pub fn channel_ready_received(&self) -> bool {
        self.phase
            .established()
            .is_some_and(|e| e.their_second_point.is_some())
    }

    /// Public channels: the verified `channel_announcement`, once both halves are in.
    pub fn channel_announcement(&self) -> Option<&ChannelAnnouncement> {
        self.phase
            .established()
            .and_then(|e| e.announcement.built.as_ref())
    }

    /// Public channels: whether our `announcement_signatures` was sent.
    pub fn announcement_signatures_sent(&self) -> bool {
        self.phase
            .established()
            .is_some_and(|e| e.announcement.sigs_sent)
    }

    /// Public channels: whether the peer's `announcement_signatures` arrived.
    pub fn announcement_signatures_received(&self) -> bool {
        self.phase
            .established()
            .is_some_and(|e| e.announcement.theirs.is_some())
    }

    /// Whether the channel failed ([`ChannelState::Failed`] or
    /// [`ChannelState::FailedUnfunded`]).
    pub fn is_failed(&self) -> bool {
        matches!(self.phase, Phase::Failed(_))
    }

    /// Why the channel failed (or its open was aborted, or it is closing: the force close's
    /// reason, the spend that closed it).
    pub fn failure_reason(&self) -> Option<&str> {
        match &self.phase {
            Phase::Failed(f) => Some(&f.reason),
            Phase::Aborted(a) => Some(&a.reason),
            Phase::Closing(c) | Phase::Closed(c) => Some(&c.reason),
            Phase::Opening(_) | Phase::Funded(_) => None,
        }
    }

    /// The funding output's script (P2WSH 2-of-2), once both funding keys are known.
    pub fn funding_script_pubkey(&self) -> Option<ScriptBuf> {
        let theirs = self.their_params()?;
        Some(funding_script_pubkey(
            &self.params.ours.keys.funding_pubkey,
            &theirs.keys.funding_pubkey,
        ))
    }

    /// The funding amount.
    pub fn funding_amount(&self) -> Amount {
        Amount::from_sat(self.params.funding_sat)
    }

    /// The number of our current commitment (0 = the first), the one we would broadcast.
    pub fn commitment_number(&self) -> u64 {
        self.local_commit().map_or(0, |c| c.number)
    }

    /// The commitment format negotiated at open (`option_anchors` or not).
    pub fn channel_type(&self) -> crate::bolt3::ChannelType {
        self.params.channel_type
    }

    /// The feerate of our current commitment, in sat per 1000 weight units.
    pub fn commitment_feerate_per_kw(&self) -> u32 {
        self.local_commit()
            .map_or(self.params.commitment_feerate_per_kw, |c| {
                c.spec.feerate_per_kw
            })
    }

    /// Whether a commitment update is in flight: proposed, signed or not yet revoked by one
    /// side. The peer must be connected for it to finish.
    pub fn update_pending(&self) -> bool {
        self.commitments().is_some_and(|c| c.pending())
    }

    /// The durable snapshot of this channel.
    pub fn to_record(&self) -> ChannelRecord {
        ChannelRecord::new(self.clone())
    }

    /// Rebuilds a channel from its record.
    pub fn from_record(record: ChannelRecord) -> Channel {
        record.into_channel()
    }

    /// Feeds one input; returns the actions to perform, in order.
    pub fn handle(&mut self, input: Input, ctx: &Context<'_>) -> Vec<Action> {
        if matches!(self.phase, Phase::Aborted(_)) {
            return Vec::new();
        }
        if matches!(self.phase, Phase::Closing(_) | Phase::Closed(_)) {
            return self.handle_closing(input, ctx);
        }
        match input {
            Input::Message(msg) => self.on_message(msg, ctx),
            Input::FundingTxBuilt { tx } => self.on_funding_tx(tx, ctx),
            Input::FundingTxFailed { reason } => self.on_funding_tx_failed(&reason),
            Input::FundingConfirmed {
                tx,
                confirmation,
                tip_height,
            } => self.on_funding_confirmed(tx, confirmation, tip_height, ctx),
            Input::FundingReorged => self.on_funding_reorged(),
            Input::FundingDoubleSpent { spending_txid } => {
                self.on_funding_double_spent(spending_txid)
            }
            Input::FundingSpent {
                spending_tx,
                confirmation_height,
            } => self.on_funding_spent(spending_tx, confirmation_height, ctx),
            Input::NewBlock { height } => self.on_new_block(height, ctx),
            Input::PeerDisconnected => self.on_disconnected(),
            Input::PeerReconnected => self.on_reconnected(),
            Input::Tick { now_secs } if matches!(self.phase, Phase::Funded(_)) => {
                let timeout = ctx.config.update_timeout_secs;
                let mut actions = self.on_update_tick(now_secs, timeout);
                actions.extend(self.on_close_tick(now_secs, timeout));
                actions
            }
            Input::Tick { now_secs } => self.on_tick(now_secs, ctx.config.open_timeout_secs),
            Input::SetFeerate { feerate_per_kw } => self.on_set_feerate(feerate_per_kw, ctx),
            Input::ForceClose => self.on_force_close(ctx),
            Input::Close { script } => self.on_close(script, ctx),
            // Only a closing channel watches outputs or reacts to a spend going away.
            Input::FundingUnspent
            | Input::OutputSpent { .. }
            | Input::OutputUnspent { .. }
            | Input::CpfpBuilt { .. } => Vec::new(),
        }
    }

    /// Whether the driver should feed [`Input::Tick`]s to this channel (a transient open, or
    /// a commitment update in flight: its watchdog).
    pub fn needs_ticks(&self) -> bool {
        matches!(self.phase, Phase::Opening(_))
            || self.update_pending()
            || self.close_waits_for_peer()
    }

    /// Whether this channel still needs the connection to its peer: an open in progress, or a
    /// durable channel that has not failed. The driver keeps a connection that one of them
    /// needs when another channel asks for [`DisconnectScope::UnlessShared`].
    pub fn uses_connection(&self) -> bool {
        !matches!(
            self.state(),
            ChannelState::Aborted
                | ChannelState::Failed
                | ChannelState::Closing
                | ChannelState::Closed
        )
    }

    fn on_tick(&mut self, now: u64, timeout_secs: u64) -> Vec<Action> {
        let Phase::Opening(opening) = &mut self.phase else {
            return Vec::new();
        };
        let Some(since) = opening.waiting_since else {
            opening.waiting_since = Some(now);
            return Vec::new();
        };
        if now.saturating_sub(since) < timeout_secs {
            return Vec::new();
        }
        let awaited = match opening.step {
            OpenStep::OutboundAwaitingAccept => "accept_channel",
            OpenStep::AwaitingFundingSigned { .. } => "funding_signed",
            OpenStep::InboundAwaitingFundingCreated(_) => "funding_created",
            OpenStep::AwaitingFundingTx(_) => "the funding transaction",
        };
        let reason = format!("timed out: no {awaited} within {timeout_secs} s");
        self.fail_transient(reason, true)
    }

    /// Dispatches a peer message.
    pub fn on_message(&mut self, msg: Message, ctx: &Context<'_>) -> Vec<Action> {
        if matches!(self.phase, Phase::Aborted(_)) {
            return Vec::new();
        }
        if matches!(self.phase, Phase::Closing(_) | Phase::Closed(_)) {
            return self.on_closing_message(&msg);
        }
        match msg {
            Message::AcceptChannel(m) => self.on_accept_channel(&m, ctx),
            Message::FundingCreated(m) => self.on_funding_created(&m, ctx),
            Message::FundingSigned(m) => self.on_funding_signed(&m, ctx),
            Message::ChannelReady(m) => self.on_channel_ready(&m),
            Message::ChannelReestablish(m) => self.on_channel_reestablish(&m, ctx),
            Message::AnnouncementSignatures(m) => self.on_announcement_signatures(&m, ctx),
            Message::UpdateFee(m) => self.on_update_fee(&m, ctx),
            // The end of an update may let a waiting shutdown (ours or our reply) go out.
            Message::CommitmentSigned(m) => {
                let mut actions = self.on_commitment_signed(&m, ctx);
                actions.extend(self.shutdown_progress(ctx));
                actions
            }
            Message::RevokeAndAck(m) => {
                let mut actions = self.on_revoke_and_ack(&m, ctx);
                actions.extend(self.shutdown_progress(ctx));
                actions
            }
            Message::Shutdown(m) => self.on_shutdown(&m, ctx),
            Message::ClosingSigned(m) => self.on_closing_signed(&m, ctx),
            Message::UpdateAddHtlc(_)
            | Message::UpdateFulfillHtlc(_)
            | Message::UpdateFailHtlc(_)
            | Message::UpdateFailMalformedHtlc(_) => {
                let name = msg.name();
                self.on_htlc_update(name, ctx)
            }
            Message::Error(m) if m.channel_id == ChannelId::ALL || self.is_for(&m.channel_id) => {
                self.on_error(&m, ctx)
            }
            Message::Warning(w) => {
                tracing::warn!(channel = %self.current_id(), warning = %w.printable(), "peer warning");
                Vec::new()
            }
            other => {
                tracing::debug!(channel = %self.current_id(), msg = other.name(), state = ?self.state(), "ignoring unexpected message");
                Vec::new()
            }
        }
    }

    /// The actions to perform after a restart, before any input: re-arm the funding watch and,
    /// for an unconfirmed funder channel, rebroadcast the funding transaction. A closing (or
    /// closed) channel re-arms its funding and output watches and rebroadcasts what is still
    /// unconfirmed (`resolve.rs`).
    pub fn resume_actions(&self) -> Vec<Action> {
        if matches!(self.phase, Phase::Closing(_) | Phase::Closed(_)) {
            return self.resume_closing();
        }
        let mut actions = Vec::new();
        if self.state() == ChannelState::Failed && self.confirmation().is_some() {
            // A channel that failed without closing (it fell behind: our commitment is
            // revoked) waits for the peer's commitment: its to_remote is ours (`resolve.rs`).
            return self.watch_action().into_iter().collect();
        }
        if !self.state().is_durable() || self.state() == ChannelState::Failed {
            return actions;
        }
        if let Some(watch) = self.watch_action() {
            actions.push(watch);
        }
        if let Some(tx) = self.rebroadcast_tx() {
            actions.push(broadcast_funding(tx));
        }
        actions
    }
}
