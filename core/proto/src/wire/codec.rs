//! Fundamental types of BOLT 1: big-endian integers, BigSize, truncated and signed integers,
//! points, signatures and fixed byte arrays, with a bounds-checked [`Reader`] and a
//! [`WireWrite`] extension for `Vec<u8>`.
//!
//! See [BOLT 1: Fundamental Types](https://github.com/lightning/bolts/blob/master/01-messaging.md#fundamental-types)
//! and [Appendix A: BigSize](https://github.com/lightning/bolts/blob/master/01-messaging.md#appendix-a-bigsize-test-vectors).

use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::PublicKey;

use super::error::DecodeError;

/// A bounds-checked cursor over a byte slice. Every read fails with
/// [`DecodeError::UnexpectedEof`] rather than panicking when the input is short.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Whether everything has been read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The unread bytes, consuming them.
    pub fn read_rest(&mut self) -> &'a [u8] {
        let rest = self.buf;
        self.buf = &[];
        rest
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless everything has been read.
    pub fn finish(&self, field: &'static str) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                field,
                extra: self.buf.len(),
            })
        }
    }

    /// Reads `n` bytes.
    pub fn read_bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::UnexpectedEof {
                field,
                needed: n,
                remaining: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Reads a fixed-size byte array.
    pub fn read_array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let bytes = self.read_bytes(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Reads a `byte`.
    pub fn read_u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.read_array::<1>(field)?[0])
    }

    /// Reads a big-endian `u16`.
    pub fn read_u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.read_array(field)?))
    }

    /// Reads a big-endian `u32`.
    pub fn read_u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.read_array(field)?))
    }

    /// Reads a big-endian `u64`.
    pub fn read_u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.read_array(field)?))
    }

    /// Reads a `u16` length followed by that many bytes.
    pub fn read_u16_prefixed(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.read_u16(field)?;
        self.read_bytes(usize::from(len), field)
    }

    /// Reads a BigSize (BOLT 1 Appendix A), rejecting non-canonical encodings.
    pub fn read_bigsize(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let first = self.read_u8(field)?;
        let (value, min) = match first {
            0xfd => (u64::from(self.read_u16(field)?), 0xfd),
            0xfe => (u64::from(self.read_u32(field)?), 0x1_0000),
            0xff => (self.read_u64(field)?, 0x1_0000_0000),
            small => return Ok(u64::from(small)),
        };
        if value < min {
            return Err(DecodeError::NonCanonicalBigSize);
        }
        Ok(value)
    }

    /// Reads a 33-byte compressed point.
    pub fn read_point(&mut self, field: &'static str) -> Result<PublicKey, DecodeError> {
        let bytes = self.read_bytes(33, field)?;
        PublicKey::from_slice(bytes).map_err(|_| DecodeError::InvalidPoint { field })
    }

    /// Reads a 64-byte compact ECDSA signature.
    pub fn read_signature(&mut self, field: &'static str) -> Result<Signature, DecodeError> {
        let bytes = self.read_bytes(64, field)?;
        Signature::from_compact(bytes).map_err(|_| DecodeError::InvalidSignature { field })
    }

    /// Reads the rest of the input as a truncated unsigned integer of at most `max_len` bytes
    /// (`tu16`, `tu32`, `tu64`), rejecting leading zero bytes.
    pub fn read_truncated(
        &mut self,
        max_len: usize,
        field: &'static str,
    ) -> Result<u64, DecodeError> {
        let bytes = self.read_rest();
        decode_truncated(bytes, max_len, field)
    }
}

/// Decodes a truncated unsigned integer (`tu16`/`tu32`/`tu64`) filling all of `bytes`.
pub fn decode_truncated(
    bytes: &[u8],
    max_len: usize,
    field: &'static str,
) -> Result<u64, DecodeError> {
    let len = bytes.len();
    if len > max_len || len > 8 || bytes.first() == Some(&0) {
        return Err(DecodeError::NonMinimalTruncatedInt { field, len });
    }
    Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// Length in bytes of the minimal truncated encoding of `value`.
pub fn truncated_len(value: u64) -> usize {
    8 - (value.leading_zeros() as usize / 8)
}

/// Number of bytes of the BigSize encoding of `value`.
pub fn bigsize_len(value: u64) -> usize {
    match value {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Decodes a signed integer (`s8`, `s16`, `s32`, `s64`: big-endian two's complement) whose
/// width is the length of `bytes`.
pub fn decode_signed(bytes: &[u8]) -> Result<i64, DecodeError> {
    let field = "signed integer";
    match bytes.len() {
        1 => Ok(i64::from(i8::from_be_bytes([bytes[0]]))),
        2 => Ok(i64::from(i16::from_be_bytes([bytes[0], bytes[1]]))),
        4 => {
            let mut a = [0u8; 4];
            a.copy_from_slice(bytes);
            Ok(i64::from(i32::from_be_bytes(a)))
        }
        8 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(bytes);
            Ok(i64::from_be_bytes(a))
        }
        _ => Err(DecodeError::InvalidValue {
            field,
            reason: "width must be 1, 2, 4 or 8 bytes",
        }),
    }
}

/// Encodes `value` in the smallest of `s8`, `s16`, `s32`, `s64` that holds it.
pub fn encode_signed_minimal(value: i64) -> Vec<u8> {
    if let Ok(v) = i8::try_from(value) {
        v.to_be_bytes().to_vec()
    } else if let Ok(v) = i16::try_from(value) {
        v.to_be_bytes().to_vec()
    } else if let Ok(v) = i32::try_from(value) {
        v.to_be_bytes().to_vec()
    } else {
        value.to_be_bytes().to_vec()
    }
}

/// Writing fundamental types into a byte vector. Writes cannot fail.
pub trait WireWrite {
    /// Appends a `byte`.
    fn put_u8(&mut self, v: u8);
    /// Appends a big-endian `u16`.
    fn put_u16(&mut self, v: u16);
    /// Appends a big-endian `u32`.
    fn put_u32(&mut self, v: u32);
    /// Appends a big-endian `u64`.
    fn put_u64(&mut self, v: u64);
    /// Appends raw bytes.
    fn put_bytes(&mut self, v: &[u8]);
    /// Appends a BigSize.
    fn put_bigsize(&mut self, v: u64);
    /// Appends a truncated integer (minimal big-endian, no leading zeros; zero is empty).
    fn put_truncated(&mut self, v: u64);
    /// Appends a compressed point.
    fn put_point(&mut self, p: &PublicKey);
    /// Appends a compact signature.
    fn put_signature(&mut self, s: &Signature);
    /// Appends a `u16` length and the bytes.
    ///
    /// The caller guarantees `v.len() <= 65535` (message types clamp on construction);
    /// longer input is cut to 65535 bytes so the length always matches the data written.
    fn put_u16_prefixed(&mut self, v: &[u8]);
}

impl WireWrite for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_bytes(&mut self, v: &[u8]) {
        self.extend_from_slice(v);
    }
    fn put_bigsize(&mut self, v: u64) {
        match v {
            0..=0xfc => self.push(v as u8),
            0xfd..=0xffff => {
                self.push(0xfd);
                self.put_u16(v as u16);
            }
            0x1_0000..=0xffff_ffff => {
                self.push(0xfe);
                self.put_u32(v as u32);
            }
            _ => {
                self.push(0xff);
                self.put_u64(v);
            }
        }
    }
    fn put_truncated(&mut self, v: u64) {
        let bytes = v.to_be_bytes();
        self.extend_from_slice(&bytes[8 - truncated_len(v)..]);
    }
    fn put_point(&mut self, p: &PublicKey) {
        self.extend_from_slice(&p.serialize());
    }
    fn put_signature(&mut self, s: &Signature) {
        self.extend_from_slice(&s.serialize_compact());
    }
    fn put_u16_prefixed(&mut self, v: &[u8]) {
        let len = v.len().min(usize::from(u16::MAX));
        self.put_u16(len as u16);
        self.extend_from_slice(&v[..len]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_roundtrip_edges() {
        for v in [0u64, 1, 0xff, 0x100, 0xffff_ffff, u64::MAX] {
            let mut buf = Vec::new();
            buf.put_truncated(v);
            assert_eq!(buf.len(), truncated_len(v));
            assert_eq!(decode_truncated(&buf, 8, "t"), Ok(v));
        }
        assert!(decode_truncated(&[0, 1], 8, "t").is_err());
        assert!(decode_truncated(&[1, 0, 0], 2, "t").is_err());
    }

    #[test]
    fn reader_never_panics_on_short_input() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert!(matches!(
            r.read_u32("x"),
            Err(DecodeError::UnexpectedEof {
                needed: 4,
                remaining: 3,
                ..
            })
        ));
        assert_eq!(r.read_u16("y"), Ok(0x0102));
        assert!(r.read_point("p").is_err());
    }
}
