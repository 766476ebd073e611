//! `channel_reestablish` (BOLT 2 message retransmission).

use bitcoin::secp256k1::PublicKey;
use bitcoin::Txid;

use super::types::ChannelId;

/// A funding txid with a retransmission bit field, as carried by the `next_funding` and
/// `my_current_funding_locked` TLVs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FundingRetransmit {
    /// The funding (or splice) transaction id, internal byte order.
    pub txid: Txid,
    /// `retransmit_flags` (bit 0: `commitment_signed` for `next_funding`,
    /// `announcement_signatures` for `my_current_funding_locked`).
    pub retransmit_flags: u8,
}

crate::wire_message! {
    struct FundingRetransmit {
        txid: Txid,
        retransmit_flags: u8,
    }
}

/// `channel_reestablish` ([BOLT 2: Message Retransmission](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#message-retransmission)).
///
/// The data-loss-protect fields (`your_last_per_commitment_secret`,
/// `my_current_per_commitment_point`) are mandatory in the current spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelReestablish {
    /// The channel.
    pub channel_id: ChannelId,
    /// The commitment number of the next `commitment_signed` the sender expects.
    pub next_commitment_number: u64,
    /// The commitment number of the next `revoke_and_ack` the sender expects.
    pub next_revocation_number: u64,
    /// The last per-commitment secret received from the peer (zeros if none).
    pub your_last_per_commitment_secret: [u8; 32],
    /// The sender's current per-commitment point.
    pub my_current_per_commitment_point: PublicKey,
    /// TLV 1 `next_funding`: an interactive funding (or splice) in progress.
    pub next_funding: Option<FundingRetransmit>,
    /// TLV 5 `my_current_funding_locked`: the latest funding the sender has locked.
    pub my_current_funding_locked: Option<FundingRetransmit>,
}

crate::wire_message! {
    ChannelReestablish = 136 "channel_reestablish" {
        channel_id: ChannelId,
        next_commitment_number: u64,
        next_revocation_number: u64,
        your_last_per_commitment_secret: [u8; 32],
        my_current_per_commitment_point: PublicKey,
    }
    tlvs {
        1 => next_funding: option FundingRetransmit,
        5 => my_current_funding_locked: option FundingRetransmit,
    }
}
