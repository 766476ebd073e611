//! The `fuzz/` targets' properties as plain property tests, so they run on stable in every
//! test run (cargo-fuzz needs nightly): arbitrary bytes never panic the message decoder or the
//! transport, and decoded messages re-encode to a fixed point.

use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use proptest::collection::vec;
use proptest::prelude::*;
use tern_core::proto::transport::{Handshake, HandshakeStep, Transport};
use tern_core::proto::wire::Message;

fn key(b: u8) -> SecretKey {
    SecretKey::from_slice(&[b; 32]).expect("valid key")
}

/// Known message types first, so most inputs reach a payload decoder.
fn message_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![
            1u16, 16, 17, 18, 19, 32, 33, 34, 35, 36, 38, 39, 136, 256, 259, 0x8001,
        ]),
        vec(any::<u8>(), 0..400),
    )
        .prop_map(|(t, payload)| [t.to_be_bytes().as_slice(), payload.as_slice()].concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn wire_message_target(data in prop_oneof![message_bytes(), vec(any::<u8>(), 0..64)]) {
        if let Ok(msg) = Message::decode(&data) {
            let encoded = msg.encode();
            let again = Message::decode(&encoded).expect("our own encoding decodes");
            prop_assert_eq!(&again, &msg);
            prop_assert_eq!(again.encode(), encoded);
        }
    }

    #[test]
    fn transport_target(selector in any::<u8>(), data in vec(any::<u8>(), 0..300)) {
        match selector % 4 {
            0 => {
                let (a1, rest) = data.split_at(data.len().min(50));
                if let Ok(HandshakeStep::Continue { next, .. }) =
                    Handshake::responder(key(1), key(2)).process(a1)
                {
                    let _ = next.process(rest);
                }
            }
            1 => {
                let remote = PublicKey::from_secret_key(&Secp256k1::signing_only(), &key(1));
                let (hs, _act1) = Handshake::initiator(key(3), remote, key(4));
                let _ = hs.process(&data);
            }
            3 => {
            // A genuine act one, then arbitrary bytes as act three.
            let responder_pub = PublicKey::from_secret_key(&Secp256k1::signing_only(), &key(1));
            let (_init, act1) = Handshake::initiator(key(3), responder_pub, key(4));
            if let Ok(HandshakeStep::Continue { next, .. }) =
                Handshake::responder(key(1), key(2)).process(&act1)
            {
                let _ = next.process(&data);
            }
        }
        _ => {
                let mut t = Transport::new([5; 32], [6; 32], [7; 32]);
                for chunk in data.chunks(usize::from(selector / 4).max(1)) {
                    t.decryptor.feed(chunk);
                    while let Ok(Some(_)) = t.decryptor.next_message() {}
                }
            }
        }
    }
}
