//! What a [`Channel`] is fed ([`Input`]) and how a peer message finds its channel
//! ([`message_channel_id`]).

use bitcoin::{OutPoint, ScriptBuf, Transaction, Txid};

use super::Confirmation;
#[cfg(doc)]
use super::{Action, Channel, ChannelConfig};
use crate::wire::{ChannelId, Message};

/// The channel id a message names, for routing it to a [`Channel`] (see
/// [`Channel::is_for`]): the temporary id for `open_channel`, `accept_channel` and
/// `funding_created`, the final id otherwise. `None` for messages about no channel (`init`,
/// `ping`, gossip). For `error`/`warning`, [`ChannelId::ALL`] means every channel.
pub fn message_channel_id(msg: &Message) -> Option<ChannelId> {
    Some(match msg {
        Message::OpenChannel(m) => m.temporary_channel_id,
        Message::AcceptChannel(m) => m.temporary_channel_id,
        Message::FundingCreated(m) => m.temporary_channel_id,
        Message::FundingSigned(m) => m.channel_id,
        Message::ChannelReady(m) => m.channel_id,
        Message::ChannelReestablish(m) => m.channel_id,
        Message::TxAbort(m) => m.channel_id,
        Message::Error(m) => m.channel_id,
        Message::Warning(m) => m.channel_id,
        Message::Shutdown(m) => m.channel_id,
        Message::ClosingSigned(m) => m.channel_id,
        Message::AnnouncementSignatures(m) => m.channel_id,
        Message::UpdateAddHtlc(m) => m.channel_id,
        Message::UpdateFulfillHtlc(m) => m.channel_id,
        Message::UpdateFailHtlc(m) => m.channel_id,
        Message::UpdateFailMalformedHtlc(m) => m.channel_id,
        Message::CommitmentSigned(m) => m.channel_id,
        Message::RevokeAndAck(m) => m.channel_id,
        Message::UpdateFee(m) => m.channel_id,
        Message::Init(_)
        | Message::Ping(_)
        | Message::Pong(_)
        | Message::ChannelAnnouncement(_)
        | Message::ChannelUpdate(_)
        | Message::Unknown { .. } => return None,
    })
}

/// An input to [`Channel::handle`].
// Inputs are moved straight into `handle`; boxing the message would only cost an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A message from the peer routed to this channel (by temporary or final channel id).
    Message(Message),
    /// The wallet's answer to [`Action::NeedFundingTx`]: a signed, unbroadcast transaction
    /// with one output paying the requested amount to the requested script.
    FundingTxBuilt {
        /// The transaction.
        tx: Transaction,
    },
    /// The wallet could not build the funding transaction.
    FundingTxFailed {
        /// Why.
        reason: String,
    },
    /// The funding transaction was seen in a block of the best chain.
    FundingConfirmed {
        /// The mined transaction.
        tx: Transaction,
        /// Where.
        confirmation: Confirmation,
        /// The current tip height.
        tip_height: u32,
    },
    /// The block holding the funding transaction left the best chain.
    FundingReorged,
    /// An input of the funding transaction was spent by another transaction that confirmed.
    FundingDoubleSpent {
        /// The conflicting transaction.
        spending_txid: Txid,
    },
    /// The funding *output* was spent (a commitment or a close, in a block or the mempool):
    /// the channel is closed on chain. It fails without broadcasting and keeps the spend
    /// (`spent.rs`).
    FundingSpent {
        /// The transaction spending the funding output.
        spending_tx: Transaction,
        /// Where it confirmed, `None` while in the mempool.
        confirmation_height: Option<u32>,
    },
    /// A new best block.
    NewBlock {
        /// Its height.
        height: u32,
    },
    /// The connection to the peer was lost.
    PeerDisconnected,
    /// The connection to the peer is back (after `init`): send our `channel_reestablish`.
    PeerReconnected,
    /// Funder of a ready channel: move the commitment feerate to `feerate_per_kw` (sends
    /// `update_fee` and signs a new commitment). The driver decides when with the fee policy
    /// (`fee_policy.rs`); a fundee, or a channel that is not ready, ignores it.
    SetFeerate {
        /// The new commitment feerate.
        feerate_per_kw: u32,
    },
    /// The driver's clock, in seconds (any monotonic origin). A transient open that stays in one
    /// state for [`ChannelConfig::open_timeout_secs`] of ticks — the peer connected but silent —
    /// is failed. A ready channel with a commitment update in flight that makes no progress
    /// for [`ChannelConfig::update_timeout_secs`] asks for a reconnection
    /// ([`Action::ReconnectPeer`]); other durable channels ignore it (their timeouts count
    /// blocks).
    Tick {
        /// The current time in seconds.
        now_secs: u64,
    },
    /// The user's cooperative close: send `shutdown` (once no update is in flight) paying us
    /// to `script` — the user's address, or `None` for the context's destination
    /// ([`super::Context::with_destination`], a fresh wallet address). The driver first asks
    /// [`Channel::close_refusal`] so that a bad script is refused before anything is stored.
    Close {
        /// Where our share goes; `None` for the context's destination.
        script: Option<ScriptBuf>,
    },
    /// The user's force close: persist the decision with our latest signed commitment,
    /// broadcast it, then send `error`.
    ForceClose,
    /// A spend of the funding output reported earlier is gone (reorg or replacement).
    FundingUnspent,
    /// A watched output of a closing channel ([`super::WatchRequest::Output`]) was spent, in a
    /// block or the mempool (reported again when its confirmation changes).
    OutputSpent {
        /// The output.
        outpoint: OutPoint,
        /// The spending transaction.
        spending_tx: Transaction,
        /// Where it confirmed, `None` while in the mempool.
        confirmation_height: Option<u32>,
    },
    /// A spend of a watched output reported earlier is gone (reorg or replacement).
    OutputUnspent {
        /// The output.
        outpoint: OutPoint,
    },
    /// The driver's answer to [`Action::BumpCommitment`]: the signed CPFP child of our
    /// commitment (its wallet coins locked), echoing the request's feerate and height.
    CpfpBuilt {
        /// The child.
        child: Transaction,
        /// The package feerate it was built for.
        feerate_per_kw: u32,
        /// The request's height.
        height: u32,
    },
}
