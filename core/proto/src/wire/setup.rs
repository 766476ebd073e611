//! Setup and control messages of BOLT 1: `init`, `error`, `warning`, `ping`, `pong`.

use bitcoin::constants::ChainHash;

use super::codec::{Reader, WireWrite};
use super::error::DecodeError;
use super::features::Features;
use super::field::{Bytes, Repeated, U16Bytes, WireField};
use super::types::ChannelId;

/// `init` ([BOLT 1: The `init` Message](https://github.com/lightning/bolts/blob/master/01-messaging.md#the-init-message)).
///
/// On decode the legacy `globalfeatures` field is OR-ed into `features` as BOLT 1 requires; on
/// encode `globalfeatures` is sent empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Init {
    /// The sender's feature bits (`globalfeatures | features`).
    pub features: Features,
    /// TLV 1 `networks`: the chains the sender is interested in.
    pub networks: Option<Vec<ChainHash>>,
    /// TLV 3 `remote_addr`: the receiver's address as seen by the sender (BOLT 7 address
    /// descriptor, kept raw).
    pub remote_addr: Option<Vec<u8>>,
}

impl Init {
    /// Whether the two `networks` lists (absent = any chain) have a chain in common with
    /// `chain`.
    pub fn accepts_chain(&self, chain: &ChainHash) -> bool {
        self.networks
            .as_ref()
            .is_none_or(|nets| nets.iter().any(|c| c == chain))
    }
}

/// The two feature fields of `init`: `globalfeatures` is sent empty and, on receipt, OR-ed
/// into `features`.
enum InitFeatures {}

impl WireField for InitFeatures {
    type Value = Features;
    fn write(value: &Features, out: &mut Vec<u8>) {
        out.put_u16_prefixed(&[]);
        out.put_u16_prefixed(&value.to_be_bytes());
    }
    fn read(r: &mut Reader<'_>, _field: &'static str) -> Result<Features, DecodeError> {
        let global = Features::from_be_bytes(r.read_u16_prefixed("globalfeatures")?);
        let local = Features::from_be_bytes(r.read_u16_prefixed("features")?);
        Ok(global.union(&local))
    }
}

crate::wire_message! {
    Init = 16 "init" {
        features: InitFeatures,
    }
    tlvs {
        1 => networks: option Repeated<ChainHash>,
        3 => remote_addr: option Bytes,
    }
}

/// `error` ([BOLT 1: The `error` and `warning` Messages](https://github.com/lightning/bolts/blob/master/01-messaging.md#the-error-and-warning-messages)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMessage {
    /// The failed channel, or [`ChannelId::ALL`] for all channels with the sender.
    pub channel_id: ChannelId,
    /// Free-form data, usually ASCII (at most 65535 bytes are sent).
    pub data: Vec<u8>,
}

/// `warning` ([BOLT 1: The `error` and `warning` Messages](https://github.com/lightning/bolts/blob/master/01-messaging.md#the-error-and-warning-messages)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The channel concerned, or [`ChannelId::ALL`] if none.
    pub channel_id: ChannelId,
    /// Free-form data, usually ASCII (at most 65535 bytes are sent).
    pub data: Vec<u8>,
}

/// `tx_abort` ([BOLT 2: The `tx_abort` Message](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#the-tx_abort-message)):
/// abandons an interactive transaction construction. Tern sends it only when a peer's
/// `channel_reestablish` names a `next_funding` it does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxAbort {
    /// The channel concerned.
    pub channel_id: ChannelId,
    /// Free-form data, usually ASCII (at most 65535 bytes are sent).
    pub data: Vec<u8>,
}

/// Renders `data` for logs: verbatim if it is printable ASCII (bytes 32..=126), as hex
/// otherwise (BOLT 1: "SHOULD NOT print out `data` verbatim" when it is not).
pub fn printable_data(data: &[u8]) -> String {
    if data.iter().all(|b| (32..=126).contains(b)) {
        data.iter().map(|b| char::from(*b)).collect()
    } else {
        data.iter().map(|b| format!("{b:02x}")).collect()
    }
}

macro_rules! channel_text_message {
    ($ty:ident, $code:literal, $name:literal) => {
        impl $ty {
            /// A message about `channel_id` carrying `text`.
            pub fn new(channel_id: ChannelId, text: &str) -> Self {
                $ty {
                    channel_id,
                    data: text.as_bytes().to_vec(),
                }
            }

            /// `data` made safe to log (see [`printable_data`]).
            pub fn printable(&self) -> String {
                printable_data(&self.data)
            }
        }

        crate::wire_message! {
            $ty = $code $name {
                channel_id: ChannelId,
                data: U16Bytes,
            }
            tlvs {}
        }
    };
}

channel_text_message!(ErrorMessage, 17, "error");
channel_text_message!(Warning, 1, "warning");
channel_text_message!(TxAbort, 74, "tx_abort");

/// `ping` ([BOLT 1: The `ping` and `pong` Messages](https://github.com/lightning/bolts/blob/master/01-messaging.md#the-ping-and-pong-messages)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    /// How many bytes the `pong` must carry.
    pub num_pong_bytes: u16,
    /// Padding (should be zeros).
    pub ignored: Vec<u8>,
}

impl Ping {
    /// A ping asking for `num_pong_bytes` with `padding` zero bytes of its own.
    pub fn new(num_pong_bytes: u16, padding: u16) -> Self {
        Ping {
            num_pong_bytes,
            ignored: vec![0; usize::from(padding)],
        }
    }

    /// The `pong` to answer with, or `None` when `num_pong_bytes >= 65532` (BOLT 1: the
    /// receiver "MUST NOT send a `pong`" then; such pings are only for traffic padding).
    pub fn response(&self) -> Option<Pong> {
        (self.num_pong_bytes < 65532).then(|| Pong {
            ignored: vec![0; usize::from(self.num_pong_bytes)],
        })
    }
}

crate::wire_message! {
    Ping = 18 "ping" {
        num_pong_bytes: u16,
        ignored: U16Bytes,
    }
    tlvs {}
}

/// `pong` ([BOLT 1: The `ping` and `pong` Messages](https://github.com/lightning/bolts/blob/master/01-messaging.md#the-ping-and-pong-messages)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pong {
    /// Padding; its length must equal the ping's `num_pong_bytes`.
    pub ignored: Vec<u8>,
}

crate::wire_message! {
    Pong = 19 "pong" {
        ignored: U16Bytes,
    }
    tlvs {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::WireMessage;

    #[test]
    fn init_combines_global_features() {
        // globalfeatures = bit 1, features = bit 13.
        let payload = [0, 1, 0x02, 0, 2, 0x20, 0x00];
        let init = Init::decode_payload(&payload).expect("valid init");
        assert_eq!(init.features.set_bits().collect::<Vec<_>>(), vec![1, 13]);
    }

    #[test]
    fn init_networks_must_be_whole_hashes() {
        let mut payload = vec![0, 0, 0, 0, 1, 31];
        payload.extend_from_slice(&[7u8; 31]);
        assert_eq!(
            Init::decode_payload(&payload),
            Err(DecodeError::InvalidTlvLength {
                tlv_type: 1,
                len: 31
            })
        );
    }

    #[test]
    fn ping_response_rules() {
        assert_eq!(Ping::new(3, 0).response().map(|p| p.ignored.len()), Some(3));
        assert_eq!(Ping::new(65532, 0).response(), None);
    }

    #[test]
    fn printable_only_when_ascii() {
        assert_eq!(printable_data(b"bad sig"), "bad sig");
        assert_eq!(printable_data(&[0, 0xff]), "00ff");
    }
}
