//! The [`Message`] enum: every message Tern understands, framed as
//! `type (u16) || payload || extension` ([BOLT 1: Lightning Message Format](https://github.com/lightning/bolts/blob/master/01-messaging.md#lightning-message-format)).

use super::close::{ClosingSigned, Shutdown};
use super::codec::{Reader, WireWrite};
use super::error::DecodeError;
use super::establish::{AcceptChannel, ChannelReady, FundingCreated, FundingSigned, OpenChannel};
use super::gossip::{AnnouncementSignatures, ChannelAnnouncement, ChannelUpdate};
use super::reestablish::ChannelReestablish;
use super::setup::{ErrorMessage, Init, Ping, Pong, TxAbort, Warning};
use super::update::{
    CommitmentSigned, RevokeAndAck, UpdateAddHtlc, UpdateFailHtlc, UpdateFailMalformedHtlc,
    UpdateFee, UpdateFulfillHtlc,
};

/// The largest message the transport carries (BOLT 8: 2-byte length).
pub const MAX_MESSAGE_LEN: usize = 65535;

/// A typed message: its type number, name, and payload codec.
pub trait WireMessage: Sized {
    /// The BOLT message type.
    const TYPE: u16;
    /// The BOLT name, e.g. `"funding_created"`.
    const NAME: &'static str;

    /// Appends the payload (everything after the type) to `out`.
    fn encode_payload(&self, out: &mut Vec<u8>);

    /// Decodes a payload (everything after the type), including any extension TLV stream.
    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError>;

    /// The whole message: type then payload.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.put_u16(Self::TYPE);
        self.encode_payload(&mut out);
        out
    }
}

macro_rules! messages {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        /// Any message Tern understands, or an unknown odd one.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Message {
            $(
                #[doc = concat!("See [`", stringify!($ty), "`].")]
                $variant($ty),
            )*
            /// A message of an unknown odd type: BOLT 1 says to ignore it. Kept so that
            /// custom-message handlers can see it.
            Unknown {
                /// Its type (always odd).
                msg_type: u16,
                /// Its payload.
                payload: Vec<u8>,
            },
        }

        impl Message {
            /// Decodes a whole message (type then payload).
            ///
            /// Unknown odd types decode to [`Message::Unknown`]; unknown even types fail with
            /// [`DecodeError::UnknownEvenMessageType`], after which the connection must be
            /// closed.
            pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
                let mut r = Reader::new(bytes);
                let msg_type = r.read_u16("message type")?;
                let payload = r.read_rest();
                match msg_type {
                    $(<$ty>::TYPE => Ok(Message::$variant(<$ty>::decode_payload(payload)?)),)*
                    t if t % 2 == 1 => Ok(Message::Unknown {
                        msg_type: t,
                        payload: payload.to_vec(),
                    }),
                    t => Err(DecodeError::UnknownEvenMessageType(t)),
                }
            }

            /// Encodes the whole message (type then payload).
            pub fn encode(&self) -> Vec<u8> {
                match self {
                    $(Message::$variant(m) => m.encode(),)*
                    Message::Unknown { msg_type, payload } => {
                        let mut out = Vec::with_capacity(2 + payload.len());
                        out.put_u16(*msg_type);
                        out.put_bytes(payload);
                        out
                    }
                }
            }

            /// The message type number.
            pub fn msg_type(&self) -> u16 {
                match self {
                    $(Message::$variant(_) => <$ty>::TYPE,)*
                    Message::Unknown { msg_type, .. } => *msg_type,
                }
            }

            /// The BOLT name (`"unknown"` for unknown types).
            pub fn name(&self) -> &'static str {
                match self {
                    $(Message::$variant(_) => <$ty>::NAME,)*
                    Message::Unknown { .. } => "unknown",
                }
            }

            /// The type number of a known message name, e.g. `"funding_created"` → 34.
            pub fn type_for_name(name: &str) -> Option<u16> {
                match name {
                    $(<$ty>::NAME => Some(<$ty>::TYPE),)*
                    _ => None,
                }
            }
        }

        const _: () = assert!(
            distinct(&[$(<$ty>::TYPE),*]),
            "two messages share a type number",
        );

        $(
            impl From<$ty> for Message {
                fn from(m: $ty) -> Message {
                    Message::$variant(m)
                }
            }
        )*
    };
}

messages! {
    Init(Init),
    Error(ErrorMessage),
    Warning(Warning),
    Ping(Ping),
    Pong(Pong),
    OpenChannel(OpenChannel),
    AcceptChannel(AcceptChannel),
    FundingCreated(FundingCreated),
    FundingSigned(FundingSigned),
    ChannelReady(ChannelReady),
    ChannelReestablish(ChannelReestablish),
    TxAbort(TxAbort),
    Shutdown(Shutdown),
    ClosingSigned(ClosingSigned),
    UpdateAddHtlc(UpdateAddHtlc),
    UpdateFulfillHtlc(UpdateFulfillHtlc),
    UpdateFailHtlc(UpdateFailHtlc),
    UpdateFailMalformedHtlc(UpdateFailMalformedHtlc),
    CommitmentSigned(CommitmentSigned),
    RevokeAndAck(RevokeAndAck),
    UpdateFee(UpdateFee),
    AnnouncementSignatures(AnnouncementSignatures),
    ChannelAnnouncement(ChannelAnnouncement),
    ChannelUpdate(ChannelUpdate),
}

/// Whether no two of `types` are equal.
const fn distinct(types: &[u16]) -> bool {
    let mut i = 0;
    while i < types.len() {
        let mut j = i + 1;
        while j < types.len() {
            if types[i] == types[j] {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

/// The type number at the start of an encoded message, if it has one. Lets a caller route or
/// filter a message (e.g. the fault-injection hook) without decoding it.
pub fn peek_type(bytes: &[u8]) -> Option<u16> {
    Reader::new(bytes).read_u16("message type").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_types_follow_its_ok_to_be_odd() {
        assert_eq!(
            Message::decode(&[0x80, 0x01, 0xaa]),
            Ok(Message::Unknown {
                msg_type: 0x8001,
                payload: vec![0xaa]
            })
        );
        assert_eq!(
            Message::decode(&[0x80, 0x00, 0xaa]),
            Err(DecodeError::UnknownEvenMessageType(0x8000))
        );
        assert!(matches!(
            Message::decode(&[0x00]),
            Err(DecodeError::UnexpectedEof { .. })
        ));
    }

    #[test]
    fn names_map_to_types() {
        assert_eq!(Message::type_for_name("funding_created"), Some(34));
        assert_eq!(Message::type_for_name("channel_announcement"), Some(256));
        assert_eq!(Message::type_for_name("channel_update"), Some(258));
        assert_eq!(Message::type_for_name("nope"), None);
    }

    #[test]
    fn truncations_of_a_message_never_panic() {
        let ping = Message::Ping(Ping::new(4, 3)).encode();
        for n in 0..ping.len() {
            assert!(Message::decode(&ping[..n]).is_err(), "prefix {n}");
        }
        assert!(Message::decode(&ping).is_ok());
    }
}
