//! TLV streams ([BOLT 1: Type-Length-Value Format](https://github.com/lightning/bolts/blob/master/01-messaging.md#type-length-value-format)).
//!
//! Decoding enforces the BOLT 1 rules: types strictly increase (so no duplicates), BigSize
//! types and lengths are canonical, a value never runs past the end of the stream, unknown
//! even types are an error and unknown odd types are skipped.

use super::codec::{Reader, WireWrite};
use super::error::DecodeError;
use super::field::WireField;

/// One TLV record: its type and raw value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlvRecord {
    /// The record type.
    pub tlv_type: u64,
    /// The raw value bytes.
    pub value: Vec<u8>,
}

/// A decoded TLV stream holding the records of known types, in increasing type order.
///
/// Records of unknown odd types are validated (ordering, lengths) and then dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlvStream {
    records: Vec<TlvRecord>,
}

impl TlvStream {
    /// Decodes all of `bytes` as a TLV stream. `is_known(type)` says which types the caller
    /// understands: those are kept, unknown odd types are skipped, unknown even types fail
    /// with [`DecodeError::UnknownEvenTlvType`].
    pub fn decode(bytes: &[u8], is_known: impl Fn(u64) -> bool) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let mut records = Vec::new();
        let mut previous: Option<u64> = None;
        while !r.is_empty() {
            let tlv_type = r.read_bigsize("tlv type")?;
            let len = r.read_bigsize("tlv length")?;
            let len = usize::try_from(len).map_err(|_| DecodeError::UnexpectedEof {
                field: "tlv value",
                needed: usize::MAX,
                remaining: r.remaining(),
            })?;
            let value = r.read_bytes(len, "tlv value")?;
            if let Some(previous) = previous {
                if tlv_type <= previous {
                    return Err(DecodeError::TlvTypeNotIncreasing {
                        previous,
                        current: tlv_type,
                    });
                }
            }
            previous = Some(tlv_type);
            if is_known(tlv_type) {
                records.push(TlvRecord {
                    tlv_type,
                    value: value.to_vec(),
                });
            } else if tlv_type % 2 == 0 {
                return Err(DecodeError::UnknownEvenTlvType(tlv_type));
            }
        }
        Ok(TlvStream { records })
    }

    /// The known records, in increasing type order.
    pub fn records(&self) -> &[TlvRecord] {
        &self.records
    }

    /// The value of the record of type `tlv_type`, if present.
    pub fn get(&self, tlv_type: u64) -> Option<&[u8]> {
        self.records
            .iter()
            .find(|r| r.tlv_type == tlv_type)
            .map(|r| r.value.as_slice())
    }

    /// Adds a record to a stream being built for encoding. Records may be pushed in any
    /// order; a record replaces an earlier one of the same type.
    pub fn push(&mut self, tlv_type: u64, value: Vec<u8>) {
        match self.records.binary_search_by_key(&tlv_type, |r| r.tlv_type) {
            Ok(i) => self.records[i].value = value,
            Err(i) => self.records.insert(i, TlvRecord { tlv_type, value }),
        }
    }

    /// Appends the canonical encoding (increasing types) to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        for rec in &self.records {
            out.put_bigsize(rec.tlv_type);
            out.put_bigsize(rec.value.len() as u64);
            out.put_bytes(&rec.value);
        }
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

/// Appends one record of type `tlv_type` whose value is `value` in form `C`. The generated
/// encoders of [`wire_message!`](crate::wire_message) call this in increasing type order.
pub fn write_tlv<C: WireField>(tlv_type: u64, value: &C::Value, out: &mut Vec<u8>) {
    let mut v = Vec::new();
    C::write(value, &mut v);
    out.put_bigsize(tlv_type);
    out.put_bigsize(v.len() as u64);
    out.put_bytes(&v);
}

/// Reads a whole TLV value in form `C`: a value too short or too long for it is
/// [`DecodeError::InvalidTlvLength`]; other errors (an invalid point, …) pass through.
pub fn tlv_value<C: WireField>(
    tlv_type: u64,
    value: &[u8],
    field: &'static str,
) -> Result<C::Value, DecodeError> {
    let bad_len = DecodeError::InvalidTlvLength {
        tlv_type,
        len: value.len(),
    };
    let mut r = Reader::new(value);
    let v = C::read(&mut r, field).map_err(|e| match e {
        DecodeError::UnexpectedEof { .. } => bad_len.clone(),
        e => e,
    })?;
    if r.is_empty() {
        Ok(v)
    } else {
        Err(bad_len)
    }
}

/// The record of type `tlv_type` of a decoded stream, read in form `C`, if present.
pub fn read_tlv<C: WireField>(
    stream: &TlvStream,
    tlv_type: u64,
    field: &'static str,
) -> Result<Option<C::Value>, DecodeError> {
    stream
        .get(tlv_type)
        .map(|v| tlv_value::<C>(tlv_type, v, field))
        .transpose()
}

/// Whether `types` strictly increase (so are also distinct): the order BOLT 1 requires of a
/// stream, checked at compile time on the record lists of [`wire_message!`](crate::wire_message).
pub const fn strictly_increasing(types: &[u64]) -> bool {
    let mut i = 1;
    while i < types.len() {
        if types[i] <= types[i - 1] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_keeps_order_and_replaces() {
        let mut s = TlvStream::default();
        s.push(5, vec![5]);
        s.push(1, vec![1]);
        s.push(5, vec![6]);
        assert_eq!(s.encode(), vec![1, 1, 1, 5, 1, 6]);
        let back = TlvStream::decode(&s.encode(), |_| true).expect("valid stream");
        assert_eq!(back, s);
    }

    #[test]
    fn huge_length_is_eof_not_panic() {
        let bytes = [0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            TlvStream::decode(&bytes, |_| true),
            Err(DecodeError::UnexpectedEof { .. })
        ));
    }
}
