//! The BOLT 8 message cipher ([Lightning Message Specification](https://github.com/lightning/bolts/blob/master/08-transport.md#lightning-message-specification)).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use super::handshake::hkdf2;

/// Length of a Poly1305 tag.
pub const MAC_LEN: usize = 16;
/// Length of the encrypted length prefix: 2 bytes plus its tag.
pub const LENGTH_HEADER_LEN: usize = 2 + MAC_LEN;
/// The largest plaintext message (the length prefix is a `u16`).
pub const MAX_PAYLOAD_LEN: usize = 65535;
/// A key is rotated once its nonce reaches this value.
const ROTATE_AT: u64 = 1000;

/// Why the message cipher refused its input. After any of these the connection must close.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The message to send is longer than 65535 bytes.
    #[error("message of {0} bytes exceeds the 65535-byte limit")]
    MessageTooLong(usize),
    /// The encrypted length prefix failed authentication.
    #[error("length header failed authentication")]
    BadLengthTag,
    /// An encrypted body failed authentication.
    #[error("message body failed authentication")]
    BadBodyTag,
    /// An input had the wrong size for its step.
    #[error("expected {expected} bytes, got {got}")]
    WrongLength {
        /// The size the step needs.
        expected: usize,
        /// The size given.
        got: usize,
    },
    /// The cipher refused to encrypt (cannot happen for inputs within the size limit).
    #[error("encryption failed")]
    EncryptFailed,
}

/// One direction's key, chaining key and nonce.
#[derive(Clone)]
struct CipherState {
    ck: [u8; 32],
    k: [u8; 32],
    n: u64,
}

impl std::fmt::Debug for CipherState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print keys.
        f.debug_struct("CipherState").field("n", &self.n).finish()
    }
}

pub(super) fn nonce(n: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&n.to_le_bytes());
    Nonce::from(bytes)
}

pub(super) fn encrypt_with_ad(
    k: &[u8; 32],
    n: u64,
    ad: &[u8],
    plaintext: &[u8],
) -> Option<Vec<u8>> {
    ChaCha20Poly1305::new(Key::from_slice(k))
        .encrypt(
            &nonce(n),
            Payload {
                msg: plaintext,
                aad: ad,
            },
        )
        .ok()
}

pub(super) fn decrypt_with_ad(
    k: &[u8; 32],
    n: u64,
    ad: &[u8],
    ciphertext: &[u8],
) -> Option<Vec<u8>> {
    ChaCha20Poly1305::new(Key::from_slice(k))
        .decrypt(
            &nonce(n),
            Payload {
                msg: ciphertext,
                aad: ad,
            },
        )
        .ok()
}

impl CipherState {
    fn next_nonce(&mut self) -> u64 {
        let n = self.n;
        self.n += 1;
        if self.n == ROTATE_AT {
            let (ck, k) = hkdf2(&self.ck, &self.k);
            self.ck = ck;
            self.k = k;
            self.n = 0;
        }
        n
    }

    fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, TransportError> {
        let k = self.k;
        let n = self.next_nonce();
        encrypt_with_ad(&k, n, &[], plaintext).ok_or(TransportError::EncryptFailed)
    }

    fn decrypt(&mut self, ciphertext: &[u8]) -> Option<Vec<u8>> {
        let k = self.k;
        let n = self.next_nonce();
        decrypt_with_ad(&k, n, &[], ciphertext)
    }
}

/// The sending half: encrypts whole messages.
#[derive(Debug, Clone)]
pub struct Encryptor {
    state: CipherState,
}

impl Encryptor {
    /// Encrypts one message: encrypted 2-byte length (18 bytes) then encrypted body
    /// (`len + 16` bytes).
    pub fn encrypt_message(&mut self, msg: &[u8]) -> Result<Vec<u8>, TransportError> {
        let len =
            u16::try_from(msg.len()).map_err(|_| TransportError::MessageTooLong(msg.len()))?;
        let mut out = self.state.encrypt(&len.to_be_bytes())?;
        out.extend(self.state.encrypt(msg)?);
        Ok(out)
    }
}

/// What a [`Decryptor`] expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Header,
    Body(usize),
}

/// The receiving half: decrypts a byte stream into messages.
///
/// Either drive it step by step ([`Decryptor::decrypt_length`] then
/// [`Decryptor::decrypt_body`]) or push bytes with [`Decryptor::feed`] and pull whole
/// messages with [`Decryptor::next_message`].
#[derive(Debug, Clone)]
pub struct Decryptor {
    state: CipherState,
    buf: Vec<u8>,
    pending: Pending,
}

impl Decryptor {
    /// Decrypts an 18-byte length header, returning the body length (without its tag).
    pub fn decrypt_length(&mut self, header: &[u8]) -> Result<usize, TransportError> {
        if header.len() != LENGTH_HEADER_LEN {
            return Err(TransportError::WrongLength {
                expected: LENGTH_HEADER_LEN,
                got: header.len(),
            });
        }
        let plain = self
            .state
            .decrypt(header)
            .ok_or(TransportError::BadLengthTag)?;
        let bytes: [u8; 2] = plain
            .as_slice()
            .try_into()
            .map_err(|_| TransportError::BadLengthTag)?;
        Ok(usize::from(u16::from_be_bytes(bytes)))
    }

    /// Decrypts a body of `len + 16` bytes (after [`Decryptor::decrypt_length`] gave `len`).
    pub fn decrypt_body(&mut self, body: &[u8]) -> Result<Vec<u8>, TransportError> {
        if body.len() < MAC_LEN {
            return Err(TransportError::WrongLength {
                expected: MAC_LEN,
                got: body.len(),
            });
        }
        self.state.decrypt(body).ok_or(TransportError::BadBodyTag)
    }

    /// How many more bytes [`Decryptor::next_message`] needs before it can make progress.
    pub fn bytes_needed(&self) -> usize {
        let want = match self.pending {
            Pending::Header => LENGTH_HEADER_LEN,
            Pending::Body(len) => len + MAC_LEN,
        };
        want.saturating_sub(self.buf.len())
    }

    /// Buffers received ciphertext.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole decrypted message, if enough bytes have been fed.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        loop {
            match self.pending {
                Pending::Header => {
                    if self.buf.len() < LENGTH_HEADER_LEN {
                        return Ok(None);
                    }
                    let header: Vec<u8> = self.buf.drain(..LENGTH_HEADER_LEN).collect();
                    let len = self.decrypt_length(&header)?;
                    self.pending = Pending::Body(len);
                }
                Pending::Body(len) => {
                    if self.buf.len() < len + MAC_LEN {
                        return Ok(None);
                    }
                    let body: Vec<u8> = self.buf.drain(..len + MAC_LEN).collect();
                    self.pending = Pending::Header;
                    return self.decrypt_body(&body).map(Some);
                }
            }
        }
    }
}

/// An established BOLT 8 session: one [`Encryptor`] and one [`Decryptor`].
#[derive(Debug, Clone)]
pub struct Transport {
    /// The sending half.
    pub encryptor: Encryptor,
    /// The receiving half.
    pub decryptor: Decryptor,
}

impl Transport {
    /// A session from the handshake's final chaining key and the two directions' keys.
    pub fn new(ck: [u8; 32], sk: [u8; 32], rk: [u8; 32]) -> Self {
        Transport {
            encryptor: Encryptor {
                state: CipherState { ck, k: sk, n: 0 },
            },
            decryptor: Decryptor {
                state: CipherState { ck, k: rk, n: 0 },
                buf: Vec::new(),
                pending: Pending::Header,
            },
        }
    }

    /// Splits the session so a read task and a write task can each own a half.
    pub fn split(self) -> (Encryptor, Decryptor) {
        (self.encryptor, self.decryptor)
    }

    /// Encrypts one message (see [`Encryptor::encrypt_message`]).
    pub fn encrypt_message(&mut self, msg: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.encryptor.encrypt_message(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Transport, Transport) {
        let ck = [1u8; 32];
        let (a, b) = ([2u8; 32], [3u8; 32]);
        (Transport::new(ck, a, b), Transport::new(ck, b, a))
    }

    #[test]
    fn stream_decryption_across_rotations_and_partial_feeds() {
        let (mut alice, mut bob) = pair();
        let mut wire = Vec::new();
        let msgs: Vec<Vec<u8>> = (0..1200u32)
            .map(|i| i.to_be_bytes().repeat(i as usize % 7))
            .collect();
        for m in &msgs {
            wire.extend(alice.encrypt_message(m).expect("small message"));
        }
        let mut got = Vec::new();
        for chunk in wire.chunks(37) {
            bob.decryptor.feed(chunk);
            while let Some(m) = bob.decryptor.next_message().expect("authentic") {
                got.push(m);
            }
        }
        assert_eq!(got, msgs);
        assert_eq!(bob.decryptor.bytes_needed(), LENGTH_HEADER_LEN);
    }

    #[test]
    fn tampering_is_detected_and_size_is_limited() {
        let (mut alice, mut bob) = pair();
        let mut ct = alice.encrypt_message(b"hello").expect("small message");
        ct[LENGTH_HEADER_LEN] ^= 1;
        bob.decryptor.feed(&ct);
        assert_eq!(
            bob.decryptor.next_message(),
            Err(TransportError::BadBodyTag)
        );
        assert_eq!(
            alice.encrypt_message(&vec![0; MAX_PAYLOAD_LEN + 1]),
            Err(TransportError::MessageTooLong(MAX_PAYLOAD_LEN + 1))
        );
        assert!(alice.encrypt_message(&vec![0; MAX_PAYLOAD_LEN]).is_ok());
    }
}
