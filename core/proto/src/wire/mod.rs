//! The Lightning wire protocol ([BOLT 1](https://github.com/lightning/bolts/blob/master/01-messaging.md)):
//! fundamental types, BigSize, TLV streams, feature bits ([BOLT 9](https://github.com/lightning/bolts/blob/master/09-features.md))
//! and the typed messages Tern exchanges with peers.
//!
//! Entry points: [`Message::decode`] / [`Message::encode`] for whole messages, the
//! [`WireMessage`] trait for single message types, [`TlvStream`] and [`Reader`] for the
//! building blocks. Every message's codec is declared once with
//! [`wire_message!`](crate::wire_message) from its field list ([`WireField`] forms). All decoding is bounds-checked and returns [`DecodeError`]; nothing here
//! panics on bad input.

mod close;
pub mod codec;
mod error;
mod establish;
pub mod features;
mod field;
mod gossip;
mod macros;
mod message;
mod reestablish;
mod setup;
pub mod tlv;
mod types;
mod update;

pub use close::{ClosingSigned, FeeRange, Shutdown};
pub use codec::{Reader, WireWrite};
pub use error::DecodeError;
pub use establish::{AcceptChannel, ChannelReady, FundingCreated, FundingSigned, OpenChannel};
pub use features::{ChannelType, Feature, FeatureError, Features};
pub use field::{Bytes, Repeated, U16Bytes, U16Counted, WireField};
pub use gossip::{AnnouncementSignatures, ChannelAnnouncement, ChannelUpdate};
pub use message::{peek_type, Message, WireMessage, MAX_MESSAGE_LEN};
pub use reestablish::{ChannelReestablish, FundingRetransmit};
pub use setup::{printable_data, ErrorMessage, Init, Ping, Pong, TxAbort, Warning};
pub use tlv::{TlvRecord, TlvStream};
pub use types::{ChannelId, ChannelKeys, ParseChannelIdError, ShortChannelId};
pub use update::{
    CommitmentSigned, RevokeAndAck, UpdateAddHtlc, UpdateFailHtlc, UpdateFailMalformedHtlc,
    UpdateFee, UpdateFulfillHtlc, ONION_PACKET_LEN,
};
