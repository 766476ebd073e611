//! [`wire_message!`](crate::wire_message): one declaration per message or record, from which
//! both its encoder and its decoder are generated.

/// Declares the wire form of a message (or of a fixed-layout value) once, generating both
/// directions from the one list so that they cannot disagree.
///
/// Three forms:
///
/// - `Type = type_number "bolt_name" { fixed fields } tlvs { records }` implements
///   [`WireMessage`](crate::wire::WireMessage) for a message: the fixed fields in wire order,
///   then its TLV extension stream. (It also implements the next form's `WireField`, so a
///   message's payload can be a TLV value elsewhere, e.g. in a stored record.)
/// - `struct Type { fixed fields } tlvs { records }` implements
///   [`WireField`](crate::wire::WireField) for fixed fields followed by a TLV stream that
///   fills the rest; with no fixed fields, `struct Type {} tlvs { ... }` is a plain TLV stream
///   (a stored record, or a nested stream inside one record).
/// - `struct Type { fixed fields }` implements [`WireField`](crate::wire::WireField) for a
///   value made of fixed fields only (e.g. [`ChannelKeys`](crate::wire::ChannelKeys)), so it
///   can be a field of a message or a TLV value.
///
/// A fixed field is `name: Form`, a [`WireField`](crate::wire::WireField) whose `Value` is the
/// struct field's type (`u64`, `PublicKey`, [`U16Bytes`](crate::wire::U16Bytes) for a
/// `Vec<u8>` with a `u16` length, …). A TLV record is `type => name: option Form` (the struct
/// field is an `Option`, absent when the record is) or `type => name: required Form` (absence
/// is [`DecodeError::MissingTlv`](crate::wire::DecodeError::MissingTlv)); its value fills the
/// record. Presence is declared per record because BOLT parity says something else: an even
/// type must be *understood* by a reader, it need not be *present* (`open_channel`'s
/// `upfront_shutdown_script` is type 0 and optional).
///
/// What the generated code guarantees:
///
/// - The encoder destructures the struct exhaustively and the decoder builds it with a struct
///   literal, so a struct field missing from the list (or a listed name that is no field) does
///   not compile; a form whose `Value` is not the field's type does not compile either.
/// - TLV record types must strictly increase in the list (checked at compile time), so records
///   are written in canonical order, never twice.
/// - Decoding reads the stream with [`TlvStream::decode`](crate::wire::TlvStream::decode): the
///   BOLT 1 rules (increasing types, canonical BigSizes, unknown odd types skipped, unknown
///   even types [`DecodeError::UnknownEvenTlvType`](crate::wire::DecodeError::UnknownEvenTlvType))
///   apply to every message alike. A message without records still validates its (empty or
///   unknown-odd) extension stream.
///
/// ```
/// use tern_proto::wire::{ChannelId, ShortChannelId, U16Bytes, WireMessage};
///
/// #[derive(Debug, PartialEq)]
/// pub struct Hello {
///     pub channel_id: ChannelId,
///     pub note: Vec<u8>,
///     pub alias: Option<ShortChannelId>,
/// }
///
/// tern_proto::wire_message! {
///     Hello = 32769 "hello" {
///         channel_id: ChannelId,
///         note: U16Bytes,
///     }
///     tlvs {
///         1 => alias: option ShortChannelId,
///     }
/// }
///
/// let hello = Hello { channel_id: ChannelId([1; 32]), note: b"hi".to_vec(), alias: None };
/// let bytes = hello.encode();
/// assert_eq!(bytes.len(), 2 + 32 + 2 + 2);
/// assert_eq!(Hello::decode_payload(&bytes[2..]), Ok(hello));
/// ```
///
/// A field added to the struct but forgotten in the list is a compile error (E0027, "pattern
/// does not mention field `flags`", from the encoder; E0063 from the decoder). Each
/// `compile_fail` block below is the example above with one defect, so fixing that defect
/// makes it compile (stable rustdoc does not check the error code):
///
/// ```compile_fail,E0027
/// use tern_proto::wire::{ChannelId, ShortChannelId, U16Bytes, WireMessage};
///
/// #[derive(Debug, PartialEq)]
/// pub struct Hello {
///     pub channel_id: ChannelId,
///     pub note: Vec<u8>,
///     pub flags: u8,
///     pub alias: Option<ShortChannelId>,
/// }
///
/// tern_proto::wire_message! {
///     Hello = 32769 "hello" {
///         channel_id: ChannelId,
///         note: U16Bytes,
///     }
///     tlvs {
///         1 => alias: option ShortChannelId,
///     }
/// }
/// ```
///
/// And so is a record list out of order:
///
/// ```compile_fail,E0080
/// use tern_proto::wire::{ChannelId, ShortChannelId};
///
/// pub struct Hello {
///     pub channel_id: ChannelId,
///     pub alias: Option<ShortChannelId>,
///     pub other: Option<ShortChannelId>,
/// }
///
/// tern_proto::wire_message! {
///     Hello = 32769 "hello" {
///         channel_id: ChannelId,
///     }
///     tlvs {
///         3 => alias: option ShortChannelId,
///         1 => other: option ShortChannelId,
///     }
/// }
/// ```
#[macro_export]
macro_rules! wire_message {
    (struct $ty:ident { $($field:ident : $form:ty),* $(,)? }) => {
        impl $crate::wire::WireField for $ty {
            type Value = $ty;

            fn write(value: &$ty, out: &mut ::std::vec::Vec<u8>) {
                let $ty { $($field),* } = value;
                $(<$form as $crate::wire::WireField>::write($field, out);)*
            }

            fn read(
                r: &mut $crate::wire::Reader<'_>,
                _field: &'static str,
            ) -> ::std::result::Result<$ty, $crate::wire::DecodeError> {
                $(let $field = <$form as $crate::wire::WireField>::read(r, stringify!($field))?;)*
                Ok($ty { $($field),* })
            }
        }
    };

    (@write option $form:ty, $tlv_type:expr, $value:expr, $out:expr) => {
        if let Some(v) = $value {
            $crate::wire::tlv::write_tlv::<$form>($tlv_type, v, $out);
        }
    };
    (@write required $form:ty, $tlv_type:expr, $value:expr, $out:expr) => {
        $crate::wire::tlv::write_tlv::<$form>($tlv_type, $value, $out);
    };
    (@read option $form:ty, $tlv_type:expr, $name:expr, $tlvs:expr) => {
        $crate::wire::tlv::read_tlv::<$form>($tlvs, $tlv_type, $name)?
    };
    (@read required $form:ty, $tlv_type:expr, $name:expr, $tlvs:expr) => {
        $crate::wire::tlv::read_tlv::<$form>($tlvs, $tlv_type, $name)?.ok_or(
            $crate::wire::DecodeError::MissingTlv {
                tlv_type: $tlv_type,
                field: $name,
            },
        )?
    };

    (
        struct $ty:ident {
            $($field:ident : $form:ty),* $(,)?
        }
        tlvs {
            $($tlv_type:literal => $tlv_field:ident : $presence:ident $tlv_form:ty),* $(,)?
        }
    ) => {
        impl $crate::wire::WireField for $ty {
            type Value = $ty;

            fn write(value: &$ty, out: &mut ::std::vec::Vec<u8>) {
                let $ty { $($field,)* $($tlv_field,)* } = value;
                $(<$form as $crate::wire::WireField>::write($field, out);)*
                $($crate::wire_message!(@write $presence $tlv_form, $tlv_type, $tlv_field, out);)*
            }

            fn read(
                r: &mut $crate::wire::Reader<'_>,
                _field: &'static str,
            ) -> ::std::result::Result<$ty, $crate::wire::DecodeError> {
                $(let $field = <$form as $crate::wire::WireField>::read(r, stringify!($field))?;)*
                const KNOWN: &[u64] = &[$($tlv_type),*];
                let tlvs = $crate::wire::TlvStream::decode(r.read_rest(), |t| KNOWN.contains(&t))?;
                $(let $tlv_field = $crate::wire_message!(
                    @read $presence $tlv_form, $tlv_type, stringify!($tlv_field), &tlvs
                );)*
                let _ = &tlvs;
                Ok($ty { $($field,)* $($tlv_field,)* })
            }
        }

        const _: () = assert!(
            $crate::wire::tlv::strictly_increasing(&[$($tlv_type),*]),
            concat!("the TLV types of ", stringify!($ty), " must strictly increase"),
        );
    };

    (
        $ty:ident = $msg_type:literal $name:literal {
            $($field:ident : $form:ty),* $(,)?
        }
        tlvs {
            $($tlvs:tt)*
        }
    ) => {
        $crate::wire_message! {
            struct $ty {
                $($field : $form),*
            }
            tlvs {
                $($tlvs)*
            }
        }

        impl $crate::wire::WireMessage for $ty {
            const TYPE: u16 = $msg_type;
            const NAME: &'static str = $name;

            fn encode_payload(&self, out: &mut ::std::vec::Vec<u8>) {
                <$ty as $crate::wire::WireField>::write(self, out);
            }

            fn decode_payload(
                payload: &[u8],
            ) -> ::std::result::Result<Self, $crate::wire::DecodeError> {
                let mut r = $crate::wire::Reader::new(payload);
                <$ty as $crate::wire::WireField>::read(&mut r, $name)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use bitcoin::secp256k1::PublicKey;

    use crate::wire::{
        ChannelId, DecodeError, ShortChannelId, TlvStream, U16Bytes, WireMessage, WireWrite,
    };

    /// A message with every kind of entry: fixed fields, a required even record, optional
    /// odd and even records.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Probe {
        channel_id: ChannelId,
        note: Vec<u8>,
        required: u8,
        optional_even: Option<ShortChannelId>,
        optional_odd: Option<u32>,
    }

    crate::wire_message! {
        Probe = 40001 "probe" {
            channel_id: ChannelId,
            note: U16Bytes,
        }
        tlvs {
            0 => required: required u8,
            2 => optional_even: option ShortChannelId,
            5 => optional_odd: option u32,
        }
    }

    fn probe() -> Probe {
        Probe {
            channel_id: ChannelId([3; 32]),
            note: vec![9, 9],
            required: 7,
            optional_even: Some(ShortChannelId(0x0102)),
            optional_odd: None,
        }
    }

    fn fixed_part() -> Vec<u8> {
        let mut out = vec![3; 32];
        out.put_u16_prefixed(&[9, 9]);
        out
    }

    #[test]
    fn encodes_fixed_fields_then_records_in_type_order() {
        let mut expected = fixed_part();
        let mut tlvs = TlvStream::default();
        tlvs.push(2, 0x0102u64.to_be_bytes().to_vec());
        tlvs.push(0, vec![7]);
        tlvs.encode_into(&mut expected);
        let mut payload = Vec::new();
        probe().encode_payload(&mut payload);
        assert_eq!(payload, expected);
        assert_eq!(Probe::decode_payload(&payload), Ok(probe()));
        let mut all = probe();
        all.optional_odd = Some(1);
        let mut payload = Vec::new();
        all.encode_payload(&mut payload);
        assert_eq!(Probe::decode_payload(&payload), Ok(all));
    }

    #[test]
    fn a_missing_required_record_is_an_error() {
        let mut payload = fixed_part();
        payload.extend_from_slice(&[5, 1, 0xaa]);
        assert_eq!(
            Probe::decode_payload(&payload),
            Err(DecodeError::MissingTlv {
                tlv_type: 0,
                field: "required"
            })
        );
    }

    #[test]
    fn unknown_odd_records_are_skipped_unknown_even_rejected() {
        let mut base = fixed_part();
        base.extend_from_slice(&[0, 1, 7]);
        let mut odd = base.clone();
        odd.extend_from_slice(&[3, 2, 0xde, 0xad]);
        let mut expected = probe();
        expected.optional_even = None;
        assert_eq!(Probe::decode_payload(&odd), Ok(expected));
        let mut even = base.clone();
        even.extend_from_slice(&[4, 0]);
        assert_eq!(
            Probe::decode_payload(&even),
            Err(DecodeError::UnknownEvenTlvType(4))
        );
        let mut unordered = base;
        unordered.extend_from_slice(&[5, 1, 1, 2, 8, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(
            Probe::decode_payload(&unordered),
            Err(DecodeError::TlvTypeNotIncreasing {
                previous: 5,
                current: 2
            })
        );
    }

    #[test]
    fn a_record_of_the_wrong_length_is_invalid() {
        let mut payload = fixed_part();
        payload.extend_from_slice(&[0, 1, 7, 5, 5, 0, 0, 0, 0, 1]);
        assert_eq!(
            Probe::decode_payload(&payload),
            Err(DecodeError::InvalidTlvLength {
                tlv_type: 5,
                len: 5
            })
        );
        let mut payload = fixed_part();
        payload.extend_from_slice(&[0, 1, 7, 5, 3, 0, 0, 1]);
        assert_eq!(
            Probe::decode_payload(&payload),
            Err(DecodeError::InvalidTlvLength {
                tlv_type: 5,
                len: 3
            })
        );
    }

    /// A value of fixed fields declared with the `struct` form.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Pair {
        point: PublicKey,
        n: u16,
    }

    crate::wire_message! {
        struct Pair {
            point: PublicKey,
            n: u16,
        }
    }

    #[test]
    fn struct_form_reads_what_it_writes() {
        use crate::wire::{Reader, WireField};
        let point = PublicKey::from_slice(&[
            0x02, 0x79, 0xbe, 0x66, 0x7e, 0xf9, 0xdc, 0xbb, 0xac, 0x55, 0xa0, 0x62, 0x95, 0xce,
            0x87, 0x0b, 0x07, 0x02, 0x9b, 0xfc, 0xdb, 0x2d, 0xce, 0x28, 0xd9, 0x59, 0xf2, 0x81,
            0x5b, 0x16, 0xf8, 0x17, 0x98,
        ])
        .expect("generator point");
        let pair = Pair { point, n: 0x0304 };
        let mut out = Vec::new();
        Pair::write(&pair, &mut out);
        assert_eq!(out.len(), 35);
        assert_eq!(&out[33..], &[3, 4]);
        let mut r = Reader::new(&out);
        assert_eq!(Pair::read(&mut r, "pair"), Ok(pair));
        assert!(r.is_empty());
        let mut short = Reader::new(&out[..34]);
        assert!(matches!(
            Pair::read(&mut short, "pair"),
            Err(DecodeError::UnexpectedEof { field: "n", .. })
        ));
    }
}
