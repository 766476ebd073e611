//! The wire layer's error type.

/// Why a byte string could not be decoded into a wire value or message.
///
/// Every decoder in [`crate::wire`] returns this instead of panicking, whatever the
/// input: truncated, over-long, non-canonical or semantically invalid bytes all map to a
/// variant here. A peer that sends bytes producing any of these MUST be disconnected
/// (BOLT 1: "upon receiving a known message with insufficient length for the contents: MUST
/// close the connection").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended before the named field was complete.
    #[error("unexpected end of input reading {field}: needed {needed} bytes, {remaining} left")]
    UnexpectedEof {
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A BigSize was not minimally encoded.
    #[error("bigsize is not canonical")]
    NonCanonicalBigSize,
    /// A truncated integer (`tu16`, `tu32`, `tu64`) had a leading zero byte or was too long.
    #[error("truncated integer in {field} is not minimal or is too long ({len} bytes)")]
    NonMinimalTruncatedInt {
        /// The field being read.
        field: &'static str,
        /// Its encoded length.
        len: usize,
    },
    /// TLV record types were not strictly increasing (this includes duplicates).
    #[error("tlv type {current} follows type {previous}: types must strictly increase")]
    TlvTypeNotIncreasing {
        /// The previous record's type.
        previous: u64,
        /// The offending record's type.
        current: u64,
    },
    /// A TLV record of an unknown even type ("it's ok to be odd").
    #[error("unknown even tlv type {0}")]
    UnknownEvenTlvType(u64),
    /// A TLV record the message requires was absent.
    #[error("required tlv type {tlv_type} ({field}) is missing")]
    MissingTlv {
        /// The record's type.
        tlv_type: u64,
        /// The field it holds.
        field: &'static str,
    },
    /// A known TLV record's value had the wrong length for its contents.
    #[error("tlv type {tlv_type} has a value of {len} bytes, which is invalid for its contents")]
    InvalidTlvLength {
        /// The record's type.
        tlv_type: u64,
        /// The value's length.
        len: usize,
    },
    /// A field held a point that is not a valid compressed secp256k1 public key.
    #[error("{field} is not a valid point")]
    InvalidPoint {
        /// The field being read.
        field: &'static str,
    },
    /// A field held a signature that is not a valid compact ECDSA signature.
    #[error("{field} is not a valid signature")]
    InvalidSignature {
        /// The field being read.
        field: &'static str,
    },
    /// A field held a value its type does not allow.
    #[error("{field} has an invalid value: {reason}")]
    InvalidValue {
        /// The field being read.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A message of an unknown even type: the connection must be closed.
    #[error("unknown even message type {0}")]
    UnknownEvenMessageType(u16),
    /// Bytes were left after a value that must fill its container exactly.
    #[error("{extra} unexpected trailing bytes after {field}")]
    TrailingBytes {
        /// The field that should have consumed everything.
        field: &'static str,
        /// How many bytes were left.
        extra: usize,
    },
}
