//! Identifier types of BOLT 1/2/7: `channel_id` and `short_channel_id`
//! (`chain_hash` is [`bitcoin::constants::ChainHash`]), and the [`ChannelKeys`] a side
//! announces when a channel opens.

use std::fmt;

use bitcoin::secp256k1::PublicKey;

use super::codec::Reader;
use super::error::DecodeError;
use super::field::WireField;

/// A `channel_id` (BOLT 2 [Definition of `channel_id`](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#definition-of-channel_id)),
/// also used for `temporary_channel_id`. All zeros in `error`/`warning` means "all channels".
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ChannelId(pub [u8; 32]);

impl ChannelId {
    /// The all-zero id, meaning "every channel" (or "no channel") in `error` and `warning`.
    pub const ALL: ChannelId = ChannelId([0u8; 32]);

    /// The v1 `channel_id`: the funding txid (in wire byte order) XOR the funding output
    /// index in its last two bytes, big-endian.
    pub fn v1_from_funding(funding_txid: &bitcoin::Txid, output_index: u16) -> Self {
        use bitcoin::hashes::Hash;
        let mut id = funding_txid.to_byte_array();
        let idx = output_index.to_be_bytes();
        id[30] ^= idx[0];
        id[31] ^= idx[1];
        ChannelId(id)
    }
}

impl fmt::Debug for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChannelId({self})")
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A [`ChannelId`] text that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("channel id {0:?} is not 64 hex digits")]
pub struct ParseChannelIdError(pub String);

impl std::str::FromStr for ChannelId {
    type Err = ParseChannelIdError;

    /// Parses the 64 hex digits [`ChannelId`]'s `Display` writes.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        use bitcoin::hex::FromHex;
        <[u8; 32]>::from_hex(text)
            .map(ChannelId)
            .map_err(|_| ParseChannelIdError(text.to_string()))
    }
}

/// A `short_channel_id` (BOLT 7): block height (3 bytes), transaction index (3 bytes) and
/// output index (2 bytes), big-endian in one `u64`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ShortChannelId(pub u64);

impl ShortChannelId {
    /// Builds an id, or `None` when a part overflows its width (24/24/16 bits).
    pub fn new(block: u32, tx_index: u32, output: u16) -> Option<Self> {
        if block >= 1 << 24 || tx_index >= 1 << 24 {
            return None;
        }
        Some(ShortChannelId(
            (u64::from(block) << 40) | (u64::from(tx_index) << 16) | u64::from(output),
        ))
    }

    /// The block height.
    pub fn block(&self) -> u32 {
        (self.0 >> 40) as u32
    }

    /// The transaction's index in its block.
    pub fn tx_index(&self) -> u32 {
        ((self.0 >> 16) & 0xff_ffff) as u32
    }

    /// The output index.
    pub fn output(&self) -> u16 {
        (self.0 & 0xffff) as u16
    }
}

impl fmt::Debug for ShortChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShortChannelId({self})")
    }
}

impl fmt::Display for ShortChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.block(), self.tx_index(), self.output())
    }
}

/// The basepoints and first per-commitment point a side sends in `open_channel` and
/// `accept_channel`.
///
/// Its one encoding (six compressed points in this order, 198 bytes) is also how the channel
/// record stores each side's keys: [`ChannelKeys::encode`] / [`ChannelKeys::decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelKeys {
    /// `funding_pubkey`.
    pub funding_pubkey: PublicKey,
    /// `revocation_basepoint`.
    pub revocation_basepoint: PublicKey,
    /// `payment_basepoint`.
    pub payment_basepoint: PublicKey,
    /// `delayed_payment_basepoint`.
    pub delayed_payment_basepoint: PublicKey,
    /// `htlc_basepoint`.
    pub htlc_basepoint: PublicKey,
    /// `first_per_commitment_point`.
    pub first_per_commitment_point: PublicKey,
}

crate::wire_message! {
    struct ChannelKeys {
        funding_pubkey: PublicKey,
        revocation_basepoint: PublicKey,
        payment_basepoint: PublicKey,
        delayed_payment_basepoint: PublicKey,
        htlc_basepoint: PublicKey,
        first_per_commitment_point: PublicKey,
    }
}

impl ChannelKeys {
    /// The encoded length: six compressed points.
    pub const LEN: usize = 6 * 33;

    /// Appends the six points, in wire order.
    pub fn encode(&self, out: &mut Vec<u8>) {
        <ChannelKeys as WireField>::write(self, out);
    }

    /// Reads the six points, in wire order; errors name the point that is short or invalid.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        <ChannelKeys as WireField>::read(r, "channel keys")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scid_parts() {
        let scid = ShortChannelId::new(0, 0, 550).expect("fits");
        assert_eq!(scid.0, 0x226);
        let scid = ShortChannelId::new(700_000, 1234, 7).expect("fits");
        assert_eq!(
            (scid.block(), scid.tx_index(), scid.output()),
            (700_000, 1234, 7)
        );
        assert_eq!(scid.to_string(), "700000x1234x7");
        assert!(ShortChannelId::new(1 << 24, 0, 0).is_none());
    }
}
