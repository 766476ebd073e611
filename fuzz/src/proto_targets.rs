//! The bodies of the fuzz targets over tern-proto's decoders: bytes from a peer (wire messages,
//! TLV streams, BigSize and the other BOLT 1 integers, BOLT 8 handshake acts and frames) and
//! the stored channel record. Each takes any bytes: decoding may fail, it must never panic, and
//! whatever decodes re-encodes to a fixed point. Compiled both by the fuzz crate (the
//! `fuzz_targets/*.rs` call these) and by `core/tests/decoder_fuzz_smoke.rs` (stable replays of
//! the seeds and kept crashers, and the same properties under proptest).

use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use tern_proto::channel::ChannelRecord;
use tern_proto::transport::{Handshake, HandshakeStep, Transport};
use tern_proto::wire::codec::{decode_signed, decode_truncated, encode_signed_minimal};
use tern_proto::wire::{Message, Reader, TlvStream, WireWrite};

/// `wire_message`: [`Message::decode`] dispatches on the type to every message's decoder (and
/// the extension TLV stream, the feature bits of `init`, …).
pub fn wire_message(data: &[u8]) {
    if let Ok(msg) = Message::decode(data) {
        let encoded = msg.encode();
        let again = Message::decode(&encoded).expect("our own encoding decodes");
        assert_eq!(again, msg);
        assert_eq!(again.encode(), encoded);
    }
}

/// The known-type sets [`tlv_stream`] decodes with (its first byte picks one): every type
/// known, none known (so every record is unknown: odd skipped, even refused), the BOLT 1 test
/// namespace n1 (1, 2, 3, 254) and n2 (0, 11).
fn tlv_known(selector: u8, t: u64) -> bool {
    match selector % 4 {
        0 => true,
        1 => false,
        2 => matches!(t, 1 | 2 | 3 | 254),
        _ => matches!(t, 0 | 11),
    }
}

/// `tlv_stream`: [`TlvStream::decode`]; a stream that decodes with every type known is
/// canonical, so it re-encodes to exactly its input.
pub fn tlv_stream(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    if let Ok(stream) = TlvStream::decode(bytes, |t| tlv_known(selector, t)) {
        let encoded = stream.encode();
        if selector % 4 == 0 {
            assert_eq!(encoded, bytes, "a decoded stream is canonical");
        }
        let again = TlvStream::decode(&encoded, |_| true).expect("our own encoding decodes");
        assert_eq!(again.records(), stream.records());
    }
}

/// `bigsize`: BigSize values read one after the other until the input ends or one fails (each
/// re-encodes to the bytes it was read from: only canonical encodings decode), then the same
/// bytes as a truncated integer (`tu64`, `tu32`, `tu16`) and as a signed integer.
pub fn bigsize(data: &[u8]) {
    let mut r = Reader::new(data);
    while !r.is_empty() {
        let before = r.remaining();
        let Ok(v) = r.read_bigsize("fuzz") else { break };
        let start = data.len() - before;
        let end = data.len() - r.remaining();
        let mut out = Vec::new();
        out.put_bigsize(v);
        assert_eq!(
            out,
            &data[start..end],
            "bigsize {v} re-encodes to its bytes"
        );
    }
    for max_len in [8, 4, 2] {
        if let Ok(v) = decode_truncated(data, max_len, "fuzz") {
            assert!(data.len() <= max_len);
            let bytes = v.to_be_bytes();
            let minimal = &bytes[bytes.iter().take_while(|b| **b == 0).count()..];
            assert_eq!(minimal, data, "a truncated integer is minimal");
        }
    }
    if let Ok(v) = decode_signed(data) {
        let minimal = encode_signed_minimal(v);
        assert!(minimal.len() <= data.len());
        assert_eq!(decode_signed(&minimal).ok(), Some(v));
    }
}

fn secret(byte: u8) -> SecretKey {
    SecretKey::from_slice(&[byte; 32]).expect("a valid secret key")
}

/// The BOLT 8 Appendix A keys, so that the vectors' acts (the seeds) get past each check.
const RESPONDER_STATIC: u8 = 0x21;
const RESPONDER_EPHEMERAL: u8 = 0x22;
const INITIATOR_STATIC: u8 = 0x11;
const INITIATOR_EPHEMERAL: u8 = 0x12;
const ACT_ONE_LEN: usize = 50;
const ACT_TWO_LEN: usize = 50;
const ACT_THREE_LEN: usize = 66;

/// Feeds `bytes` to an established session's decryptor in chunks of `chunk` bytes, reading
/// messages until one fails or the bytes run out.
fn drain(transport: &mut Transport, bytes: &[u8], chunk: usize) {
    for piece in bytes.chunks(chunk.max(1)) {
        transport.decryptor.feed(piece);
        loop {
            match transport.decryptor.next_message() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

/// `handshake`: every act a peer sends, in both roles, with the BOLT 8 vector keys. First
/// byte modulo 3 picks: 0, we are the responder and the input is act one (50 bytes) then act
/// three (66 bytes); 1, we are the initiator and the input is act two (50 bytes); 2, we are the
/// responder, act one is the vector initiator's genuine one and the input is act three.
/// Whatever follows a completed handshake is fed to the new session as ciphertext, in chunks
/// of (first byte / 3) bytes.
pub fn handshake(data: &[u8]) {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let secp = Secp256k1::signing_only();
    let responder_pub = PublicKey::from_secret_key(&secp, &secret(RESPONDER_STATIC));
    let done = if selector % 3 == 1 {
        let (hs, act1) = Handshake::initiator(
            secret(INITIATOR_STATIC),
            responder_pub,
            secret(INITIATOR_EPHEMERAL),
        );
        assert_eq!(act1.len(), ACT_ONE_LEN);
        let (act2, rest) = data.split_at(data.len().min(ACT_TWO_LEN));
        match hs.process(act2) {
            Ok(HandshakeStep::Done {
                transport,
                send,
                remote_static,
            }) => {
                assert_eq!(send.len(), ACT_THREE_LEN);
                assert_eq!(remote_static, responder_pub);
                Some((transport, rest))
            }
            Ok(HandshakeStep::Continue { .. }) => panic!("act two must finish the initiator"),
            Err(_) => None,
        }
    } else {
        let (act1, rest) = if selector % 3 == 0 {
            data.split_at(data.len().min(ACT_ONE_LEN))
        } else {
            (&[][..], data)
        };
        let genuine;
        let act1 = if selector % 3 == 0 {
            act1
        } else {
            genuine = Handshake::initiator(
                secret(INITIATOR_STATIC),
                responder_pub,
                secret(INITIATOR_EPHEMERAL),
            )
            .1;
            &genuine[..]
        };
        let hs = Handshake::responder(secret(RESPONDER_STATIC), secret(RESPONDER_EPHEMERAL));
        let Ok(HandshakeStep::Continue { next, send }) = hs.process(act1) else {
            return;
        };
        assert_eq!(send.len(), ACT_TWO_LEN);
        let (act3, rest) = rest.split_at(rest.len().min(ACT_THREE_LEN));
        match next.process(act3) {
            Ok(HandshakeStep::Done {
                transport, send, ..
            }) => {
                assert!(
                    send.is_empty(),
                    "the responder sends nothing after act three"
                );
                Some((transport, rest))
            }
            Ok(HandshakeStep::Continue { .. }) => panic!("act three must finish the handshake"),
            Err(_) => None,
        }
    };
    if let Some((mut transport, rest)) = done {
        drain(&mut transport, rest, usize::from(selector / 3));
    }
}

/// The BOLT 8 message-encryption vector's chaining key and the initiator's sending key: a
/// decryptor receiving with that key reads the vector's ciphertexts (the seeds).
const FRAMES_CK: [u8; 32] =
    hex32("919219dbb2920afa8db80f9a51787a840bcf111ed8d588caf9ab4be716e42b01");
const FRAMES_SK: [u8; 32] =
    hex32("969ab31b4d288cedf6218839b27a3e2140827047f2c0f01bf5c04435d43511a9");
const FRAMES_RK: [u8; 32] =
    hex32("bb9020b8965f4df047e07f955f3c4b88418984aadc5cdb35096b9ea8fa5c3442");

/// `frames`: the established session's decryptor. First byte even: the rest is ciphertext
/// from the peer, fed in chunks of (first byte / 2) bytes. Odd: the rest is plaintext, cut at
/// each 0xff byte into messages that the peer encrypts; fed back in chunks, exactly those
/// messages come out (across the key rotation after 500 messages).
pub fn frames(data: &[u8]) {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(selector / 2).max(1);
    // We receive with the vector initiator's sending key.
    let mut ours = Transport::new(FRAMES_CK, FRAMES_RK, FRAMES_SK);
    if selector % 2 == 0 {
        drain(&mut ours, data, chunk);
        return;
    }
    let mut peer = Transport::new(FRAMES_CK, FRAMES_SK, FRAMES_RK);
    let messages: Vec<&[u8]> = data.split(|b| *b == 0xff).collect();
    let mut wire = Vec::new();
    for m in &messages {
        wire.extend(peer.encrypt_message(m).expect("a fuzz input fits a frame"));
    }
    let mut got = Vec::new();
    for piece in wire.chunks(chunk) {
        ours.decryptor.feed(piece);
        while let Some(m) = ours
            .decryptor
            .next_message()
            .expect("our peer's frames decrypt")
        {
            got.push(m);
        }
    }
    assert_eq!(got, messages);
    assert_eq!(
        ours.decryptor.bytes_needed(),
        18,
        "nothing left over but the next header"
    );
}

/// `channel_record`: [`ChannelRecord::decode`], the record a channel is restored from at
/// start (a corrupt row must be an error); what decodes re-encodes to a fixed point.
pub fn channel_record(data: &[u8]) {
    if let Ok(record) = ChannelRecord::decode(data) {
        let encoded = record.encode();
        let again = ChannelRecord::decode(&encoded).expect("our own encoding decodes");
        assert_eq!(again, record);
        assert_eq!(again.encode(), encoded);
    }
}

/// 64 hex digits as 32 bytes, at compile time.
const fn hex32(s: &str) -> [u8; 32] {
    const fn digit(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a lowercase hex digit"),
        }
    }
    let b = s.as_bytes();
    assert!(b.len() == 64, "64 hex digits");
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (digit(b[2 * i]) << 4) | digit(b[2 * i + 1]);
        i += 1;
    }
    out
}
