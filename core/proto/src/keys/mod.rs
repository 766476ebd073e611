//! Keys: BIP32 derivation from the node seed, BOLT 3 per-commitment secrets and key derivation.
//!
//! - [`NodeSeed`] is the root secret: Tern's raw 32-byte seed or the 64-byte BIP39 seed of a
//!   [`Mnemonic`] and passphrase.
//! - [`KeysManager`] derives, from the seed, the node key, the BIP84 wallet descriptors and,
//!   for channel number `i`, every channel key ([`ChannelKeys`]). Nothing but the seed and the
//!   channel index needs to be stored to re-derive them.
//! - [`build_commitment_secret`] and [`CounterpartyCommitmentSecrets`] implement
//!   [BOLT 3 per-commitment secrets](https://github.com/lightning/bolts/blob/master/03-transactions.md#per-commitment-secret-requirements)
//!   and their [compact storage](https://github.com/lightning/bolts/blob/master/03-transactions.md#efficient-per-commitment-secret-storage).
//! - [`derive_public_key`], [`derive_private_key`], [`derive_revocation_public_key`] and
//!   [`derive_revocation_private_key`] implement
//!   [BOLT 3 key derivation](https://github.com/lightning/bolts/blob/master/03-transactions.md#key-derivation).
//!
//! Pure code: entropy (the seed) is a parameter.

mod derivation;
mod mnemonic;
mod seed;
mod shachain;

pub use derivation::{
    derive_private_key, derive_public_key, derive_revocation_private_key,
    derive_revocation_public_key, per_commitment_point,
};
pub use mnemonic::{Mnemonic, NodeSeed};
pub use seed::{ChannelKeys, ChannelPublicKeys, KeysManager, WalletDescriptors};
pub use shachain::{
    build_commitment_secret, CounterpartyCommitmentSecrets, ShachainError,
    INITIAL_COMMITMENT_NUMBER,
};

/// Errors from key derivation.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// BIP32 derivation failed (astronomically unlikely for valid seeds).
    #[error("bip32 derivation failed: {0}")]
    Bip32(#[from] bitcoin::bip32::Error),
    /// A tweak produced an invalid key (probability ~2^-128).
    #[error("key tweak for {what} produced an invalid key: {source}")]
    Tweak {
        /// Which derivation failed.
        what: &'static str,
        /// The underlying secp256k1 error.
        source: bitcoin::secp256k1::Error,
    },
    /// BIP39 words (or entropy) that are not a valid mnemonic.
    #[error("invalid mnemonic: {0}")]
    Mnemonic(String),
    /// The channel index does not fit a hardened BIP32 child number.
    #[error("channel index {index} is out of range (must be below 2^31)")]
    ChannelIndexOutOfRange {
        /// The rejected index.
        index: u32,
    },
}
