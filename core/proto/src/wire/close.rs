//! Channel close messages of BOLT 2: `shutdown` and `closing_signed`.

use bitcoin::secp256k1::ecdsa::Signature;

use super::field::U16Bytes;
use super::types::ChannelId;

/// `shutdown` ([BOLT 2: Closing Initiation: `shutdown`](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#closing-initiation-shutdown)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shutdown {
    /// The channel to close.
    pub channel_id: ChannelId,
    /// Where the sender wants to be paid (at most 65535 bytes are sent).
    pub scriptpubkey: Vec<u8>,
}

crate::wire_message! {
    Shutdown = 38 "shutdown" {
        channel_id: ChannelId,
        scriptpubkey: U16Bytes,
    }
    tlvs {}
}

/// The `fee_range` TLV of `closing_signed`: the fees the sender accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeRange {
    /// Lowest acceptable fee.
    pub min_fee_satoshis: u64,
    /// Highest acceptable fee.
    pub max_fee_satoshis: u64,
}

crate::wire_message! {
    struct FeeRange {
        min_fee_satoshis: u64,
        max_fee_satoshis: u64,
    }
}

/// `closing_signed` ([BOLT 2: Closing Negotiation: `closing_signed`](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#legacy-closing-negotiation-closing_signed)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosingSigned {
    /// The channel being closed.
    pub channel_id: ChannelId,
    /// The proposed closing fee.
    pub fee_satoshis: u64,
    /// The sender's signature on the closing transaction with that fee.
    pub signature: Signature,
    /// TLV 1 `fee_range`.
    pub fee_range: Option<FeeRange>,
}

crate::wire_message! {
    ClosingSigned = 39 "closing_signed" {
        channel_id: ChannelId,
        fee_satoshis: u64,
        signature: Signature,
    }
    tlvs {
        1 => fee_range: option FeeRange,
    }
}
