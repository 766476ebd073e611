//! The encrypted transport of [BOLT 8](https://github.com/lightning/bolts/blob/master/08-transport.md):
//! the `Noise_XK_secp256k1_ChaChaPoly_SHA256` handshake as a state machine, then the message
//! cipher (2-byte encrypted length, encrypted body, key rotation every 1000 nonces).
//!
//! Pure: bytes in, bytes out. Ephemeral keys are parameters, so the caller (the connection
//! manager) draws them and tests can replay the spec's vectors.
//!
//! Flow for the driver:
//! - initiator: [`Handshake::initiator`] returns act one to send; feed the 50-byte act two to
//!   [`Handshake::process`], which returns act three to send and the [`Transport`].
//! - responder: [`Handshake::responder`]; feed act one (50 bytes) to get act two to send,
//!   then act three (66 bytes) to get the [`Transport`] and the initiator's node id.
//! - [`Handshake::expected_len`] tells how many bytes the next act needs.
//! - [`Transport::split`] gives an [`Encryptor`] and a [`Decryptor`] that separate read and
//!   write tasks can own.
//!
//! Primitives come from RustCrypto (`chacha20poly1305`, `hkdf`, `sha2`) and libsecp256k1
//! (ECDH); none is implemented here.

mod cipher;
mod handshake;

pub use cipher::{
    Decryptor, Encryptor, Transport, TransportError, LENGTH_HEADER_LEN, MAC_LEN, MAX_PAYLOAD_LEN,
};
pub use handshake::{
    Handshake, HandshakeError, HandshakeStep, ACT_ONE_LEN, ACT_THREE_LEN, ACT_TWO_LEN,
};
