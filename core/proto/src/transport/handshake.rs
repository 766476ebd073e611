//! The BOLT 8 handshake ([Authenticated Key Exchange Handshake](https://github.com/lightning/bolts/blob/master/08-transport.md#authenticated-key-exchange-handshake-specification)):
//! `Noise_XK_secp256k1_ChaChaPoly_SHA256` with prologue `lightning`, three acts.

use std::sync::LazyLock;

use bitcoin::secp256k1::ecdh::SharedSecret;
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey, SignOnly};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};

use super::cipher::{decrypt_with_ad, encrypt_with_ad, Transport};

/// Length of act one (initiator → responder).
pub const ACT_ONE_LEN: usize = 50;
/// Length of act two (responder → initiator).
pub const ACT_TWO_LEN: usize = 50;
/// Length of act three (initiator → responder).
pub const ACT_THREE_LEN: usize = 66;

const PROTOCOL_NAME: &[u8] = b"Noise_XK_secp256k1_ChaChaPoly_SHA256";
const PROLOGUE: &[u8] = b"lightning";

/// Used only to derive public keys from secret keys; results do not depend on it.
static SECP: LazyLock<Secp256k1<SignOnly>> = LazyLock::new(Secp256k1::signing_only);

/// Why a handshake act was refused. Each names the act (1, 2 or 3) it concerns; after any of
/// them the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The act had the wrong length (a short read).
    #[error("act {act}: expected {expected} bytes, got {got}")]
    ReadFailed {
        /// The act.
        act: u8,
        /// Its required length.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The act's version byte was not 0.
    #[error("act {act}: unknown handshake version {version}")]
    BadVersion {
        /// The act.
        act: u8,
        /// The version received.
        version: u8,
    },
    /// The act carried an invalid public key.
    #[error("act {act}: invalid public key")]
    BadPubkey {
        /// The act.
        act: u8,
    },
    /// The act's authentication tag did not verify.
    #[error("act {act}: authentication tag mismatch")]
    BadTag {
        /// The act.
        act: u8,
    },
    /// Act three's encrypted static key did not decrypt.
    #[error("act 3: encrypted static key failed authentication")]
    BadCiphertext,
}

pub(super) fn hkdf2(salt: &[u8; 32], ikm: &[u8]) -> ([u8; 32], [u8; 32]) {
    let mut okm = [0u8; 64];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(&[], &mut okm)
        .expect("64 bytes is a valid HKDF-SHA256 output length");
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    a.copy_from_slice(&okm[..32]);
    b.copy_from_slice(&okm[32..]);
    (a, b)
}

fn ecdh(point: &PublicKey, secret: &SecretKey) -> [u8; 32] {
    // libsecp256k1's default ECDH hash is SHA256 of the compressed point, as BOLT 8 specifies.
    SharedSecret::new(point, secret).secret_bytes()
}

/// The symmetric state shared by both roles.
#[derive(Clone)]
struct Symmetric {
    ck: [u8; 32],
    h: [u8; 32],
    temp_k: [u8; 32],
}

impl Symmetric {
    /// `h = SHA256(protocolName)`, `ck = h`, `h = SHA256(h || prologue)`,
    /// `h = SHA256(h || responder static key)`.
    fn new(responder_static: &PublicKey) -> Self {
        let h: [u8; 32] = Sha256::digest(PROTOCOL_NAME).into();
        let mut s = Symmetric {
            ck: h,
            h,
            temp_k: [0; 32],
        };
        s.mix_hash(PROLOGUE);
        s.mix_hash(&responder_static.serialize());
        s
    }

    fn mix_hash(&mut self, data: &[u8]) {
        let mut hasher = Sha256::new();
        hasher.update(self.h);
        hasher.update(data);
        self.h = hasher.finalize().into();
    }

    fn mix_key(&mut self, shared: &[u8; 32]) {
        let (ck, k) = hkdf2(&self.ck, shared);
        self.ck = ck;
        self.temp_k = k;
    }

    fn encrypt_and_hash(&mut self, n: u64, plaintext: &[u8]) -> Vec<u8> {
        let c = encrypt_with_ad(&self.temp_k, n, &self.h, plaintext)
            .expect("handshake plaintexts are far below the AEAD size limit");
        self.mix_hash(&c);
        c
    }

    fn decrypt_and_hash(&mut self, n: u64, ciphertext: &[u8]) -> Option<Vec<u8>> {
        let p = decrypt_with_ad(&self.temp_k, n, &self.h, ciphertext)?;
        self.mix_hash(ciphertext);
        Some(p)
    }

    /// The final split: the first key sends for the initiator, the second for the responder.
    fn split(&self) -> ([u8; 32], [u8; 32]) {
        hkdf2(&self.ck, &[])
    }
}

fn check_act<const N: usize>(act: u8, input: &[u8]) -> Result<[u8; N], HandshakeError> {
    let bytes: [u8; N] = input.try_into().map_err(|_| HandshakeError::ReadFailed {
        act,
        expected: N,
        got: input.len(),
    })?;
    if bytes[0] != 0 {
        return Err(HandshakeError::BadVersion {
            act,
            version: bytes[0],
        });
    }
    Ok(bytes)
}

/// Reads act one or two (`version || ephemeral key || tag`), mixing in the ECDH with
/// `local` and checking the tag. Returns the peer's ephemeral key.
fn read_ephemeral_act(
    act: u8,
    sym: &mut Symmetric,
    input: &[u8],
    local: &SecretKey,
) -> Result<PublicKey, HandshakeError> {
    let bytes: [u8; 50] = check_act(act, input)?;
    let re = PublicKey::from_slice(&bytes[1..34]).map_err(|_| HandshakeError::BadPubkey { act })?;
    sym.mix_hash(&re.serialize());
    sym.mix_key(&ecdh(&re, local));
    sym.decrypt_and_hash(0, &bytes[34..])
        .ok_or(HandshakeError::BadTag { act })?;
    Ok(re)
}

/// Writes act one or two: `0 || e.pub || tag`, after mixing in ECDH(e, `remote`).
fn write_ephemeral_act(sym: &mut Symmetric, e: &SecretKey, remote: &PublicKey) -> Vec<u8> {
    let e_pub = PublicKey::from_secret_key(&SECP, e).serialize();
    sym.mix_hash(&e_pub);
    sym.mix_key(&ecdh(remote, e));
    let tag = sym.encrypt_and_hash(0, &[]);
    let mut out = Vec::with_capacity(ACT_ONE_LEN);
    out.push(0);
    out.extend_from_slice(&e_pub);
    out.extend_from_slice(&tag);
    out
}

/// Where a [`Handshake`] stands.
#[derive(Clone)]
enum State {
    /// Initiator: act one sent, waiting for act two.
    InitiatorAwaitingActTwo {
        sym: Symmetric,
        local_static: SecretKey,
        remote_static: PublicKey,
        ephemeral: SecretKey,
    },
    /// Responder: waiting for act one.
    ResponderAwaitingActOne {
        local_static: SecretKey,
        ephemeral: SecretKey,
    },
    /// Responder: act two sent, waiting for act three.
    ResponderAwaitingActThree {
        sym: Symmetric,
        ephemeral: SecretKey,
    },
}

/// A BOLT 8 handshake in progress, for either role. Each act consumes it
/// ([`Handshake::process`]) and yields the next state or the finished [`Transport`].
#[derive(Clone)]
pub struct Handshake {
    state: State,
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        let state = match self.state {
            State::InitiatorAwaitingActTwo { .. } => "InitiatorAwaitingActTwo",
            State::ResponderAwaitingActOne { .. } => "ResponderAwaitingActOne",
            State::ResponderAwaitingActThree { .. } => "ResponderAwaitingActThree",
        };
        write!(f, "Handshake::{state}")
    }
}

/// The result of feeding an act to [`Handshake::process`].
#[derive(Debug)]
pub enum HandshakeStep {
    /// More acts follow: send `send` (act two), then feed act three to `next`.
    Continue {
        /// The handshake's new state.
        next: Handshake,
        /// Bytes to send to the peer.
        send: Vec<u8>,
    },
    /// The handshake is complete.
    Done {
        /// The session.
        transport: Transport,
        /// The peer's static key: its node id.
        remote_static: PublicKey,
        /// Bytes to send to the peer first (act three, for the initiator), or empty.
        send: Vec<u8>,
    },
}

impl Handshake {
    /// Starts a handshake as initiator towards `remote_static` (the node id being dialled).
    /// Returns the state and act one to send.
    pub fn initiator(
        local_static: SecretKey,
        remote_static: PublicKey,
        ephemeral: SecretKey,
    ) -> (Handshake, Vec<u8>) {
        let mut sym = Symmetric::new(&remote_static);
        let act_one = write_ephemeral_act(&mut sym, &ephemeral, &remote_static);
        let state = State::InitiatorAwaitingActTwo {
            sym,
            local_static,
            remote_static,
            ephemeral,
        };
        (Handshake { state }, act_one)
    }

    /// Starts a handshake as responder with our node key `local_static`.
    pub fn responder(local_static: SecretKey, ephemeral: SecretKey) -> Handshake {
        Handshake {
            state: State::ResponderAwaitingActOne {
                local_static,
                ephemeral,
            },
        }
    }

    /// Whether this side started the connection.
    pub fn is_initiator(&self) -> bool {
        matches!(self.state, State::InitiatorAwaitingActTwo { .. })
    }

    /// How many bytes the next act must have.
    pub fn expected_len(&self) -> usize {
        match self.state {
            State::InitiatorAwaitingActTwo { .. } => ACT_TWO_LEN,
            State::ResponderAwaitingActOne { .. } => ACT_ONE_LEN,
            State::ResponderAwaitingActThree { .. } => ACT_THREE_LEN,
        }
    }

    /// Feeds the peer's next act (exactly [`Handshake::expected_len`] bytes; any other length
    /// is [`HandshakeError::ReadFailed`]).
    pub fn process(self, input: &[u8]) -> Result<HandshakeStep, HandshakeError> {
        match self.state {
            State::InitiatorAwaitingActTwo {
                mut sym,
                local_static,
                remote_static,
                ephemeral,
            } => {
                let re = read_ephemeral_act(2, &mut sym, input, &ephemeral)?;
                // Act three: our encrypted static key, then a tag under ECDH(s, re).
                let s_pub = PublicKey::from_secret_key(&SECP, &local_static).serialize();
                let c = sym.encrypt_and_hash(1, &s_pub);
                sym.mix_key(&ecdh(&re, &local_static));
                let t = sym.encrypt_and_hash(0, &[]);
                let (sk, rk) = sym.split();
                let mut send = Vec::with_capacity(ACT_THREE_LEN);
                send.push(0);
                send.extend_from_slice(&c);
                send.extend_from_slice(&t);
                Ok(HandshakeStep::Done {
                    transport: Transport::new(sym.ck, sk, rk),
                    remote_static,
                    send,
                })
            }
            State::ResponderAwaitingActOne {
                local_static,
                ephemeral,
            } => {
                let local_pub = PublicKey::from_secret_key(&SECP, &local_static);
                let mut sym = Symmetric::new(&local_pub);
                let re = read_ephemeral_act(1, &mut sym, input, &local_static)?;
                let send = write_ephemeral_act(&mut sym, &ephemeral, &re);
                Ok(HandshakeStep::Continue {
                    next: Handshake {
                        state: State::ResponderAwaitingActThree { sym, ephemeral },
                    },
                    send,
                })
            }
            State::ResponderAwaitingActThree { mut sym, ephemeral } => {
                let bytes: [u8; ACT_THREE_LEN] = check_act(3, input)?;
                let rs = sym
                    .decrypt_and_hash(1, &bytes[1..50])
                    .ok_or(HandshakeError::BadCiphertext)?;
                let rs =
                    PublicKey::from_slice(&rs).map_err(|_| HandshakeError::BadPubkey { act: 3 })?;
                sym.mix_key(&ecdh(&rs, &ephemeral));
                sym.decrypt_and_hash(0, &bytes[50..])
                    .ok_or(HandshakeError::BadTag { act: 3 })?;
                let (rk, sk) = sym.split();
                Ok(HandshakeStep::Done {
                    transport: Transport::new(sym.ck, sk, rk),
                    remote_static: rs,
                    send: Vec::new(),
                })
            }
        }
    }
}
