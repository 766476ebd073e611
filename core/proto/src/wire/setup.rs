//! Setup and control messages of BOLT 1: `init`, `error`, `warning`, `ping`, `pong`.

use bitcoin::constants::ChainHash;

use super::codec::{Reader, WireWrite};
use super::error::DecodeError;
use super::features::Features;
use super::message::WireMessage;
use super::tlv::TlvStream;
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
    const TLV_NETWORKS: u64 = 1;
    const TLV_REMOTE_ADDR: u64 = 3;

    /// Whether the two `networks` lists (absent = any chain) have a chain in common with
    /// `chain`.
    pub fn accepts_chain(&self, chain: &ChainHash) -> bool {
        self.networks
            .as_ref()
            .is_none_or(|nets| nets.iter().any(|c| c == chain))
    }
}

impl WireMessage for Init {
    const TYPE: u16 = 16;
    const NAME: &'static str = "init";

    fn encode_payload(&self, out: &mut Vec<u8>) {
        out.put_u16_prefixed(&[]);
        out.put_u16_prefixed(&self.features.to_be_bytes());
        let mut tlvs = TlvStream::default();
        if let Some(networks) = &self.networks {
            let mut v = Vec::with_capacity(networks.len() * 32);
            for c in networks {
                v.extend_from_slice(c.as_bytes());
            }
            tlvs.push(Self::TLV_NETWORKS, v);
        }
        if let Some(addr) = &self.remote_addr {
            tlvs.push(Self::TLV_REMOTE_ADDR, addr.clone());
        }
        tlvs.encode_into(out);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let global = Features::from_be_bytes(r.read_u16_prefixed("globalfeatures")?);
        let local = Features::from_be_bytes(r.read_u16_prefixed("features")?);
        let tlvs = TlvStream::decode(r.read_rest(), |t| {
            t == Self::TLV_NETWORKS || t == Self::TLV_REMOTE_ADDR
        })?;
        let networks = match tlvs.get(Self::TLV_NETWORKS) {
            None => None,
            Some(v) => {
                if v.len() % 32 != 0 {
                    return Err(DecodeError::InvalidTlvLength {
                        tlv_type: Self::TLV_NETWORKS,
                        len: v.len(),
                    });
                }
                let mut nets = Vec::with_capacity(v.len() / 32);
                let mut r = Reader::new(v);
                while !r.is_empty() {
                    nets.push(ChainHash::from(r.read_array::<32>("networks")?));
                }
                Some(nets)
            }
        };
        Ok(Init {
            features: global.union(&local),
            networks,
            remote_addr: tlvs.get(Self::TLV_REMOTE_ADDR).map(<[u8]>::to_vec),
        })
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
    ($ty:ident, $code:expr, $name:expr) => {
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

        impl WireMessage for $ty {
            const TYPE: u16 = $code;
            const NAME: &'static str = $name;

            fn encode_payload(&self, out: &mut Vec<u8>) {
                out.put_bytes(&self.channel_id.0);
                out.put_u16_prefixed(&self.data);
            }

            fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
                let mut r = Reader::new(payload);
                let channel_id = ChannelId(r.read_array("channel_id")?);
                let data = r.read_u16_prefixed("data")?.to_vec();
                TlvStream::decode(r.read_rest(), |_| false)?;
                Ok($ty { channel_id, data })
            }
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

impl WireMessage for Ping {
    const TYPE: u16 = 18;
    const NAME: &'static str = "ping";

    fn encode_payload(&self, out: &mut Vec<u8>) {
        out.put_u16(self.num_pong_bytes);
        out.put_u16_prefixed(&self.ignored);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let num_pong_bytes = r.read_u16("num_pong_bytes")?;
        let ignored = r.read_u16_prefixed("ignored")?.to_vec();
        TlvStream::decode(r.read_rest(), |_| false)?;
        Ok(Ping {
            num_pong_bytes,
            ignored,
        })
    }
}

/// `pong` ([BOLT 1: The `ping` and `pong` Messages](https://github.com/lightning/bolts/blob/master/01-messaging.md#the-ping-and-pong-messages)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pong {
    /// Padding; its length must equal the ping's `num_pong_bytes`.
    pub ignored: Vec<u8>,
}

impl WireMessage for Pong {
    const TYPE: u16 = 19;
    const NAME: &'static str = "pong";

    fn encode_payload(&self, out: &mut Vec<u8>) {
        out.put_u16_prefixed(&self.ignored);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let ignored = r.read_u16_prefixed("ignored")?.to_vec();
        TlvStream::decode(r.read_rest(), |_| false)?;
        Ok(Pong { ignored })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
