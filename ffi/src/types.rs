//! The records and enums the bindings see, mirrored from tern-core's types (so tern-core does
//! not depend on uniffi). Ids, keys and txids are hex strings, amounts satoshis (or
//! millisatoshis where the name says so), durations native.

use std::time::Duration;

use tern_core::node as core;
use tern_core::proto::channel as proto;

use crate::error::TernError;

/// The Bitcoin network a node runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Network {
    Bitcoin,
    Testnet,
    Signet,
    Regtest,
}

impl From<Network> for bitcoin::Network {
    fn from(n: Network) -> Self {
        match n {
            Network::Bitcoin => bitcoin::Network::Bitcoin,
            Network::Testnet => bitcoin::Network::Testnet,
            Network::Signet => bitcoin::Network::Signet,
            Network::Regtest => bitcoin::Network::Regtest,
        }
    }
}

/// What the node does with a peer's `open_channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum InboundPolicy {
    /// Accept every valid one (an LSP).
    AcceptAll,
    /// Refuse every one.
    RejectAll,
    /// Ask the app: an `OpenChannelRequest` event, answered by `accept_channel` or
    /// `reject_channel`.
    Manual,
}

impl From<InboundPolicy> for core::InboundPolicy {
    fn from(p: InboundPolicy) -> Self {
        match p {
            InboundPolicy::AcceptAll => core::InboundPolicy::AcceptAll,
            InboundPolicy::RejectAll => core::InboundPolicy::RejectAll,
            InboundPolicy::Manual => core::InboundPolicy::Manual,
        }
    }
}

/// How to start a node ([`crate::default_config`] fills in the defaults).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NodeConfig {
    pub network: Network,
    /// Where the node keeps its database (created if missing).
    pub data_dir: String,
    /// The Esplora server's base URL.
    pub esplora_url: String,
    /// More Esplora servers, asked in this order when the one asked fails (unreachable, 429,
    /// 5xx, a garbage or oversized answer) or lies (empty: one server).
    pub esplora_fallback_urls: Vec<String>,
    /// Accept peers on this `host:port` (`None`: no listener, as on a phone).
    pub listen: Option<String>,
    /// Sync in the background this often (`None`: only when `sync` is called).
    pub sync_interval: Option<Duration>,
    /// How long `open_channel` waits for the connection to the peer.
    pub connect_timeout: Duration,
    pub inbound_policy: InboundPolicy,
    /// Worker threads of the node's own runtime (1–2 on phones; at least 1).
    pub runtime_threads: u32,
    /// On-chain satoshis kept per anchor channel to CPFP its force close (0: none).
    pub anchor_reserve_per_channel_sat: u64,
}

/// A transaction output's reference.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OutPoint {
    pub txid: String,
    pub vout: u32,
}

impl From<bitcoin::OutPoint> for OutPoint {
    fn from(o: bitcoin::OutPoint) -> Self {
        OutPoint {
            txid: o.txid.to_string(),
            vout: o.vout,
        }
    }
}

/// A channel's state (the state machine's phase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ChannelState {
    OutboundAwaitingAccept,
    AwaitingFundingTx,
    AwaitingFundingSigned,
    InboundAwaitingFundingCreated,
    AwaitingConfirmations,
    AwaitingChannelReady,
    Ready,
    ShuttingDown,
    Negotiating,
    Failed,
    FailedUnfunded,
    Aborted,
    Closing,
    Closed,
}

impl From<proto::ChannelState> for ChannelState {
    fn from(s: proto::ChannelState) -> Self {
        use proto::ChannelState as S;
        match s {
            S::OutboundAwaitingAccept => ChannelState::OutboundAwaitingAccept,
            S::AwaitingFundingTx => ChannelState::AwaitingFundingTx,
            S::AwaitingFundingSigned => ChannelState::AwaitingFundingSigned,
            S::InboundAwaitingFundingCreated => ChannelState::InboundAwaitingFundingCreated,
            S::AwaitingConfirmations => ChannelState::AwaitingConfirmations,
            S::AwaitingChannelReady => ChannelState::AwaitingChannelReady,
            S::Ready => ChannelState::Ready,
            S::ShuttingDown => ChannelState::ShuttingDown,
            S::Negotiating => ChannelState::Negotiating,
            S::Failed => ChannelState::Failed,
            S::FailedUnfunded => ChannelState::FailedUnfunded,
            S::Aborted => ChannelState::Aborted,
            S::Closing => ChannelState::Closing,
            S::Closed => ChannelState::Closed,
        }
    }
}

/// How a channel closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CloseKind {
    /// Cooperative, we sent the first `shutdown`.
    CooperativeLocal,
    /// Cooperative, the peer sent the first `shutdown`.
    CooperativeRemote,
    /// We broadcast our commitment.
    LocalForce,
    /// The peer broadcast its current commitment.
    RemoteForce,
    /// The peer broadcast a commitment newer than ours (we lost data).
    RemoteFuture,
    /// The peer broadcast a revoked commitment (we took everything).
    Revoked,
    /// A spend we cannot place.
    Unknown,
}

impl From<core::CloseKind> for CloseKind {
    fn from(k: core::CloseKind) -> Self {
        match k {
            core::CloseKind::CooperativeLocal => CloseKind::CooperativeLocal,
            core::CloseKind::CooperativeRemote => CloseKind::CooperativeRemote,
            core::CloseKind::LocalForce => CloseKind::LocalForce,
            core::CloseKind::RemoteForce => CloseKind::RemoteForce,
            core::CloseKind::RemoteFuture => CloseKind::RemoteFuture,
            core::CloseKind::Revoked => CloseKind::Revoked,
            _ => CloseKind::Unknown,
        }
    }
}

impl From<proto::CloseKind> for CloseKind {
    fn from(k: proto::CloseKind) -> Self {
        core::CloseKind::from(k).into()
    }
}

/// How far a channel's close is.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ClosingStatus {
    /// Our `shutdown` waits until no update is in flight (or the peer reconnects).
    ShutdownPending,
    /// `shutdown`s under way.
    ShuttingDown,
    /// Negotiating the closing fee.
    Negotiating { awaiting_peer: bool },
    /// Resolving on chain.
    OnChain {
        kind: CloseKind,
        confirmed_at: Option<u32>,
        done_at: Option<u32>,
    },
    /// Every output resolved at 6 confirmations.
    Closed { kind: CloseKind },
}

impl From<proto::ClosingStatus> for ClosingStatus {
    fn from(s: proto::ClosingStatus) -> Self {
        use proto::ClosingStatus as S;
        match s {
            S::ShutdownPending => ClosingStatus::ShutdownPending,
            S::ShuttingDown => ClosingStatus::ShuttingDown,
            S::Negotiating { awaiting_peer } => ClosingStatus::Negotiating { awaiting_peer },
            S::OnChain {
                kind,
                confirmed_at,
                done_at,
            } => ClosingStatus::OnChain {
                kind: kind.into(),
                confirmed_at,
                done_at,
            },
            S::Closed { kind } => ClosingStatus::Closed { kind: kind.into() },
        }
    }
}

/// Where an amount a close gives back stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ClaimStatus {
    /// Paid to the wallet by the closing transaction; resolved once 6 deep.
    AwaitingConfirmations { confirmed_at: Option<u32> },
    /// CSV-locked: spendable from `height` on.
    Timelocked { height: u32 },
    /// A sweep is broadcast, not yet 6 deep.
    Sweeping { confirmed_at: Option<u32> },
    /// Worth less than the fee to sweep it: recorded, never swept.
    Uneconomical,
}

impl From<proto::ClaimStatus> for ClaimStatus {
    fn from(s: proto::ClaimStatus) -> Self {
        use proto::ClaimStatus as S;
        match s {
            S::AwaitingConfirmations { confirmed_at } => {
                ClaimStatus::AwaitingConfirmations { confirmed_at }
            }
            S::Timelocked { height } => ClaimStatus::Timelocked { height },
            S::Sweeping { confirmed_at } => ClaimStatus::Sweeping { confirmed_at },
            S::Uneconomical => ClaimStatus::Uneconomical,
        }
    }
}

/// An amount a closing channel gives back on chain.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Claimable {
    pub amount_sat: u64,
    pub status: ClaimStatus,
}

/// Whether our commitment's fee can be raised after a force close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum FeeBump {
    /// No anchors: the fee both sides signed, at this feerate.
    Fixed { feerate_per_kw: u32 },
    /// Anchors, and the wallet has a coin: a force close is CPFP'd through our anchor.
    Bumpable,
    /// Anchors, but no wallet coin to CPFP with.
    NoCoin,
}

impl From<core::FeeBump> for FeeBump {
    fn from(f: core::FeeBump) -> Self {
        match f {
            core::FeeBump::Fixed { feerate_per_kw } => FeeBump::Fixed { feerate_per_kw },
            core::FeeBump::Bumpable => FeeBump::Bumpable,
            core::FeeBump::NoCoin => FeeBump::NoCoin,
        }
    }
}

/// A channel as the app sees it (names as ldk-node's where the meaning is the same).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChannelDetails {
    pub channel_id: String,
    pub temporary_channel_id: String,
    pub counterparty_node_id: String,
    pub state: ChannelState,
    /// The state in words.
    pub status: String,
    pub is_outbound: bool,
    pub channel_value_sat: u64,
    pub balance_msat: u64,
    pub funding_txo: Option<OutPoint>,
    pub confirmations: u32,
    pub confirmations_required: Option<u32>,
    pub is_announced: bool,
    pub announcement_ready: bool,
    pub anchors: bool,
    pub commitment_number: u64,
    pub commitment_feerate_per_kw: u32,
    pub update_pending: bool,
    pub closing: Option<ClosingStatus>,
    pub claimable: Vec<Claimable>,
    pub fee_bump: FeeBump,
    /// `fee_bump` in words.
    pub fee_bump_words: String,
}

impl From<core::ChannelDetails> for ChannelDetails {
    fn from(c: core::ChannelDetails) -> Self {
        ChannelDetails {
            channel_id: c.channel_id.to_string(),
            temporary_channel_id: c.temporary_channel_id.to_string(),
            counterparty_node_id: c.counterparty_node_id.to_string(),
            state: c.state.into(),
            status: c.status,
            is_outbound: c.is_outbound,
            channel_value_sat: c.channel_value.to_sat(),
            balance_msat: c.balance_msat,
            funding_txo: c.funding_txo.map(Into::into),
            confirmations: c.confirmations,
            confirmations_required: c.confirmations_required,
            is_announced: c.is_announced,
            announcement_ready: c.announcement_ready,
            anchors: c.anchors,
            commitment_number: c.commitment_number,
            commitment_feerate_per_kw: c.commitment_feerate_per_kw,
            update_pending: c.update_pending,
            closing: c.closing.map(Into::into),
            claimable: c
                .claimable
                .into_iter()
                .map(|x| Claimable {
                    amount_sat: x.amount_sat,
                    status: x.status.into(),
                })
                .collect(),
            fee_bump: c.fee_bump.into(),
            fee_bump_words: c.fee_bump_words,
        }
    }
}

/// On-chain balances.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Balances {
    /// Confirmed and spendable (locked coins excluded).
    pub confirmed_sat: u64,
    /// Unconfirmed: our own change and incoming payments.
    pub unconfirmed_sat: u64,
    /// Coins locked for channel opens in progress.
    pub locked_sat: u64,
    /// Kept back to CPFP the force close of anchor channels (a part of `confirmed_sat`).
    pub anchor_reserve_sat: u64,
    /// `confirmed_sat` less the anchor reserve.
    pub spendable_after_reserve_sat: u64,
}

impl From<core::Balances> for Balances {
    fn from(b: core::Balances) -> Self {
        Balances {
            confirmed_sat: b.confirmed.to_sat(),
            unconfirmed_sat: b.unconfirmed.to_sat(),
            locked_sat: b.locked.to_sat(),
            anchor_reserve_sat: b.anchor_reserve.to_sat(),
            spendable_after_reserve_sat: b.spendable_after_reserve().to_sat(),
        }
    }
}

/// An amount a closing channel gives back to the wallet, and when.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ClaimableBalance {
    pub channel_id: String,
    pub counterparty_node_id: String,
    pub amount_sat: u64,
    pub status: ClaimStatus,
}

impl From<core::ClaimableBalance> for ClaimableBalance {
    fn from(c: core::ClaimableBalance) -> Self {
        ClaimableBalance {
            channel_id: c.channel_id.to_string(),
            counterparty_node_id: c.counterparty_node_id.to_string(),
            amount_sat: c.amount.to_sat(),
            status: c.status.into(),
        }
    }
}

/// What one `sync` did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncSummary {
    pub tip_height: Option<u32>,
    /// Esplora requests made.
    pub requests: u64,
    /// Chain events found.
    pub events: u64,
}

impl From<core::SyncSummary> for SyncSummary {
    fn from(s: core::SyncSummary) -> Self {
        SyncSummary {
            tip_height: s.tip_height,
            requests: s.requests as u64,
            events: s.events as u64,
        }
    }
}

/// What happened (the node's persisted event queue).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Event {
    ChannelPending {
        channel_id: String,
        temporary_channel_id: String,
        counterparty_node_id: String,
        funding_txo: OutPoint,
    },
    ChannelReady {
        channel_id: String,
        counterparty_node_id: String,
    },
    ChannelOpenFailed {
        temporary_channel_id: Option<String>,
        channel_id: Option<String>,
        counterparty_node_id: String,
        reason: String,
    },
    ChannelFailed {
        channel_id: String,
        counterparty_node_id: String,
        reason: String,
    },
    ChannelClosing {
        channel_id: String,
        counterparty_node_id: String,
        kind: CloseKind,
        reason: String,
    },
    ChannelClosed {
        channel_id: String,
        counterparty_node_id: String,
        kind: CloseKind,
        claimed_sat: u64,
        closing_txid: String,
    },
    OpenChannelRequest {
        temporary_channel_id: String,
        counterparty_node_id: String,
        channel_value_sat: u64,
        push_msat: u64,
    },
    PeerConnected {
        node_id: String,
    },
    PeerDisconnected {
        node_id: String,
        reason: String,
    },
    /// An event this version of the bindings does not mirror yet (never expected: each new
    /// core event gets its variant here; the test of every golden event fixture checks it).
    Other {
        description: String,
    },
}

impl From<core::Event> for Event {
    fn from(e: core::Event) -> Self {
        use core::Event as E;
        match e {
            E::ChannelPending {
                channel_id,
                temporary_channel_id,
                counterparty_node_id,
                funding_txo,
            } => Event::ChannelPending {
                channel_id: channel_id.to_string(),
                temporary_channel_id: temporary_channel_id.to_string(),
                counterparty_node_id: counterparty_node_id.to_string(),
                funding_txo: funding_txo.into(),
            },
            E::ChannelReady {
                channel_id,
                counterparty_node_id,
            } => Event::ChannelReady {
                channel_id: channel_id.to_string(),
                counterparty_node_id: counterparty_node_id.to_string(),
            },
            E::ChannelOpenFailed {
                temporary_channel_id,
                channel_id,
                counterparty_node_id,
                reason,
            } => Event::ChannelOpenFailed {
                temporary_channel_id: temporary_channel_id.map(|i| i.to_string()),
                channel_id: channel_id.map(|i| i.to_string()),
                counterparty_node_id: counterparty_node_id.to_string(),
                reason,
            },
            E::ChannelFailed {
                channel_id,
                counterparty_node_id,
                reason,
            } => Event::ChannelFailed {
                channel_id: channel_id.to_string(),
                counterparty_node_id: counterparty_node_id.to_string(),
                reason,
            },
            E::ChannelClosing {
                channel_id,
                counterparty_node_id,
                kind,
                reason,
            } => Event::ChannelClosing {
                channel_id: channel_id.to_string(),
                counterparty_node_id: counterparty_node_id.to_string(),
                kind: kind.into(),
                reason,
            },
            E::ChannelClosed {
                channel_id,
                counterparty_node_id,
                kind,
                claimed,
                closing_txid,
            } => Event::ChannelClosed {
                channel_id: channel_id.to_string(),
                counterparty_node_id: counterparty_node_id.to_string(),
                kind: kind.into(),
                claimed_sat: claimed.to_sat(),
                closing_txid: closing_txid.to_string(),
            },
            E::OpenChannelRequest {
                temporary_channel_id,
                counterparty_node_id,
                channel_value,
                push_msat,
            } => Event::OpenChannelRequest {
                temporary_channel_id: temporary_channel_id.to_string(),
                counterparty_node_id: counterparty_node_id.to_string(),
                channel_value_sat: channel_value.to_sat(),
                push_msat,
            },
            E::PeerConnected { node_id } => Event::PeerConnected {
                node_id: node_id.to_string(),
            },
            E::PeerDisconnected { node_id, reason } => Event::PeerDisconnected {
                node_id: node_id.to_string(),
                reason,
            },
            other => Event::Other {
                description: format!("{other:?}"),
            },
        }
    }
}

/// An event with its sequence number: pass `seq` to `event_handled` once the app has handled
/// it (until then it is delivered again, also after a restart).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PendingEvent {
    pub seq: u64,
    pub event: Event,
}

impl From<(u64, core::Event)> for PendingEvent {
    fn from((seq, event): (u64, core::Event)) -> Self {
        PendingEvent {
            seq,
            event: event.into(),
        }
    }
}

/// Parses a node id (33-byte compressed public key, hex).
pub(crate) fn node_id(text: &str) -> Result<bitcoin::secp256k1::PublicKey, TernError> {
    text.parse()
        .map_err(|e| TernError::invalid("node_id", format!("{text:?}: {e}")))
}

/// Parses a channel id (64 hex digits).
pub(crate) fn channel_id(text: &str) -> Result<tern_core::proto::wire::ChannelId, TernError> {
    text.parse()
        .map_err(|e| TernError::invalid("channel_id", format!("{text:?}: {e}")))
}

/// What a node has cost since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct Counters {
    /// Requests to the Esplora server.
    pub http_requests: u64,
    /// SQLite commits (the store's and the wallet's).
    pub commits: u64,
    /// Estimated fsyncs of those commits.
    pub fsyncs: u64,
    /// Outbound dials.
    pub dials: u64,
    /// Response body bytes from the Esplora server.
    pub http_bytes: u64,
    /// Acquisitions of the node's in-memory locks (process-wide).
    pub lock_acquisitions: u64,
    /// Of those, the ones that waited for another holder (process-wide).
    pub lock_waits: u64,
}

impl From<core::Counters> for Counters {
    fn from(c: core::Counters) -> Self {
        Counters {
            http_requests: c.requests,
            commits: c.commits,
            fsyncs: c.fsyncs,
            dials: c.dials,
            http_bytes: c.http_bytes,
            lock_acquisitions: c.lock_acquisitions,
            lock_waits: c.lock_waits,
        }
    }
}
