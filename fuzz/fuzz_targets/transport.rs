//! Any bytes fed to the BOLT 8 handshake (responder acts one and three, initiator act two) and
//! to the message decryptor: errors are fine, panics are not.
#![no_main]

use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use libfuzzer_sys::fuzz_target;
use tern_core::proto::transport::{Handshake, HandshakeStep, Transport};

fn key(b: u8) -> SecretKey {
    SecretKey::from_slice(&[b; 32]).expect("valid key")
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    match selector % 4 {
        0 => {
            // Responder: act one, then act three.
            let (a1, rest) = data.split_at(data.len().min(50));
            if let Ok(HandshakeStep::Continue { next, .. }) =
                Handshake::responder(key(1), key(2)).process(a1)
            {
                let _ = next.process(rest);
            }
        }
        1 => {
            // Initiator: act two.
            let remote = PublicKey::from_secret_key(&Secp256k1::signing_only(), &key(1));
            let (hs, _act1) = Handshake::initiator(key(3), remote, key(4));
            let _ = hs.process(data);
        }
        3 => {
            // A genuine act one, then arbitrary bytes as act three.
            let responder_pub = PublicKey::from_secret_key(&Secp256k1::signing_only(), &key(1));
            let (_init, act1) = Handshake::initiator(key(3), responder_pub, key(4));
            if let Ok(HandshakeStep::Continue { next, .. }) =
                Handshake::responder(key(1), key(2)).process(&act1)
            {
                let _ = next.process(data);
            }
        }
        _ => {
            // Established session: arbitrary ciphertext in arbitrary chunks.
            let mut t = Transport::new([5; 32], [6; 32], [7; 32]);
            for chunk in data.chunks(usize::from(selector / 4).max(1)) {
                t.decryptor.feed(chunk);
                while let Ok(Some(_)) = t.decryptor.next_message() {}
            }
        }
    }
});
