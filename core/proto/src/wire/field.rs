//! [`WireField`]: how one field's value is written and read, the vocabulary of the
//! [`wire_message!`](crate::wire_message) field lists.
//!
//! A codec is a type: most value types are their own codec (`u64`, `PublicKey`,
//! [`ChannelId`], …), and where one value type has several wire forms a marker type names the
//! form ([`U16Bytes`] for `u16`-length-prefixed bytes, [`Bytes`] for "everything that is
//! left", [`Repeated`] for a run of values filling the rest).

use std::marker::PhantomData;

use bitcoin::constants::ChainHash;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::PublicKey;
use bitcoin::{BlockHash, Txid};

use super::codec::{Reader, WireWrite};
use super::error::DecodeError;
use super::features::ChannelType;
use super::types::{ChannelId, ShortChannelId};

/// The wire form of one field. `Value` is the Rust type the field holds; the implementing
/// type is the form (often `Value` itself).
///
/// Inside a TLV record a field's value fills the whole record: reading fails with
/// [`DecodeError::InvalidTlvLength`] when the record is too short or too long for it (see
/// [`super::tlv::tlv_value`]).
pub trait WireField {
    /// The value this form encodes.
    type Value;

    /// Appends `value`.
    fn write(value: &Self::Value, out: &mut Vec<u8>);

    /// Reads a value; `field` names it in errors.
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self::Value, DecodeError>;
}

macro_rules! int_field {
    ($($ty:ty => $put:ident, $get:ident;)*) => {
        $(
            impl WireField for $ty {
                type Value = $ty;
                fn write(value: &$ty, out: &mut Vec<u8>) {
                    out.$put(*value);
                }
                fn read(r: &mut Reader<'_>, field: &'static str) -> Result<$ty, DecodeError> {
                    r.$get(field)
                }
            }
        )*
    };
}

int_field! {
    u8 => put_u8, read_u8;
    u16 => put_u16, read_u16;
    u32 => put_u32, read_u32;
    u64 => put_u64, read_u64;
}

/// A flag: one byte, 0 or 1.
impl WireField for bool {
    type Value = bool;
    fn write(value: &bool, out: &mut Vec<u8>) {
        out.put_u8(u8::from(*value));
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<bool, DecodeError> {
        match r.read_u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidValue {
                field,
                reason: "a flag must be 0 or 1",
            }),
        }
    }
}

/// Nothing: a TLV record whose presence is the information (its value must be empty).
impl WireField for () {
    type Value = ();
    fn write(_value: &(), _out: &mut Vec<u8>) {}
    fn read(_r: &mut Reader<'_>, _field: &'static str) -> Result<(), DecodeError> {
        Ok(())
    }
}

impl<const N: usize> WireField for [u8; N] {
    type Value = [u8; N];
    fn write(value: &[u8; N], out: &mut Vec<u8>) {
        out.put_bytes(value);
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<[u8; N], DecodeError> {
        r.read_array(field)
    }
}

impl WireField for PublicKey {
    type Value = PublicKey;
    fn write(value: &PublicKey, out: &mut Vec<u8>) {
        out.put_point(value);
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<PublicKey, DecodeError> {
        r.read_point(field)
    }
}

impl WireField for Signature {
    type Value = Signature;
    fn write(value: &Signature, out: &mut Vec<u8>) {
        out.put_signature(value);
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Signature, DecodeError> {
        r.read_signature(field)
    }
}

impl WireField for ChainHash {
    type Value = ChainHash;
    fn write(value: &ChainHash, out: &mut Vec<u8>) {
        out.put_bytes(value.as_bytes());
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<ChainHash, DecodeError> {
        Ok(ChainHash::from(r.read_array::<32>(field)?))
    }
}

/// A txid in internal byte order.
impl WireField for Txid {
    type Value = Txid;
    fn write(value: &Txid, out: &mut Vec<u8>) {
        out.put_bytes(value.as_byte_array());
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Txid, DecodeError> {
        Ok(Txid::from_byte_array(r.read_array(field)?))
    }
}

/// A block hash in internal byte order.
impl WireField for BlockHash {
    type Value = BlockHash;
    fn write(value: &BlockHash, out: &mut Vec<u8>) {
        out.put_bytes(value.as_byte_array());
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<BlockHash, DecodeError> {
        Ok(BlockHash::from_byte_array(r.read_array(field)?))
    }
}

impl WireField for ChannelId {
    type Value = ChannelId;
    fn write(value: &ChannelId, out: &mut Vec<u8>) {
        out.put_bytes(&value.0);
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<ChannelId, DecodeError> {
        Ok(ChannelId(r.read_array(field)?))
    }
}

impl WireField for ShortChannelId {
    type Value = ShortChannelId;
    fn write(value: &ShortChannelId, out: &mut Vec<u8>) {
        out.put_u64(value.0);
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<ShortChannelId, DecodeError> {
        Ok(ShortChannelId(r.read_u64(field)?))
    }
}

/// A `channel_type`: its feature bits fill the rest (it only ever is a whole TLV value).
impl WireField for ChannelType {
    type Value = ChannelType;
    fn write(value: &ChannelType, out: &mut Vec<u8>) {
        out.put_bytes(&value.to_be_bytes());
    }
    fn read(r: &mut Reader<'_>, _field: &'static str) -> Result<ChannelType, DecodeError> {
        Ok(ChannelType::from_be_bytes(r.read_rest()))
    }
}

/// Bytes with a `u16` length in front (`u16 len || len*byte`). At most 65535 bytes are
/// written (see [`WireWrite::put_u16_prefixed`]).
#[derive(Debug)]
pub enum U16Bytes {}

impl WireField for U16Bytes {
    type Value = Vec<u8>;
    fn write(value: &Vec<u8>, out: &mut Vec<u8>) {
        out.put_u16_prefixed(value);
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<u8>, DecodeError> {
        Ok(r.read_u16_prefixed(field)?.to_vec())
    }
}

/// All the bytes that are left: a whole TLV value, or the last fixed field of a message
/// without a TLV stream (`excess_data` of a signed gossip message).
#[derive(Debug)]
pub enum Bytes {}

impl WireField for Bytes {
    type Value = Vec<u8>;
    fn write(value: &Vec<u8>, out: &mut Vec<u8>) {
        out.put_bytes(value);
    }
    fn read(r: &mut Reader<'_>, _field: &'static str) -> Result<Vec<u8>, DecodeError> {
        Ok(r.read_rest().to_vec())
    }
}

/// Values of form `C` one after another until nothing is left (`...*chain_hash`).
#[derive(Debug)]
pub struct Repeated<C>(PhantomData<C>);

impl<C: WireField> WireField for Repeated<C> {
    type Value = Vec<C::Value>;
    fn write(value: &Vec<C::Value>, out: &mut Vec<u8>) {
        for v in value {
            C::write(v, out);
        }
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<C::Value>, DecodeError> {
        let mut values = Vec::new();
        while !r.is_empty() {
            values.push(C::read(r, field)?);
        }
        Ok(values)
    }
}

/// A `u16` count followed by that many values of form `C` (`u16 num || num*C`). At most 65535
/// values are written (the count saturates; senders never build more).
#[derive(Debug)]
pub struct U16Counted<C>(PhantomData<C>);

impl<C: WireField> WireField for U16Counted<C> {
    type Value = Vec<C::Value>;
    fn write(value: &Vec<C::Value>, out: &mut Vec<u8>) {
        let n = u16::try_from(value.len()).unwrap_or(u16::MAX);
        out.put_u16(n);
        for v in value.iter().take(usize::from(n)) {
            C::write(v, out);
        }
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<C::Value>, DecodeError> {
        let n = r.read_u16(field)?;
        let mut values = Vec::with_capacity(usize::from(n).min(r.remaining()));
        for _ in 0..n {
            values.push(C::read(r, field)?);
        }
        Ok(values)
    }
}
