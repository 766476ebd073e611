//! BIP32 derivation of every key from the node seed ([`NodeSeed`]: Tern's raw 32 bytes, or the
//! 64-byte BIP39 seed of a mnemonic).
//!
//! Paths (all hardened, from the BIP32 master key of the seed):
//! - node key: `m/0'`
//! - on-chain wallet (BIP84): `m/84'/coin'/0'/0/*` (external) and `m/84'/coin'/0'/1/*`
//!   (internal), `coin` = 0 on mainnet, 1 on test networks
//! - channel `i`: `m/535'/i'/k'` with `k` = 0 funding key, 1 revocation basepoint secret,
//!   2 payment basepoint secret, 3 delayed payment basepoint secret, 4 HTLC basepoint secret,
//!   5 per-commitment seed (the 32 secret-key bytes)
//!
//! A restore from the seed re-derives every channel's keys from the channel index stored in the
//! database; no private key is ever stored.

use bitcoin::bip32::{ChildNumber, Xpriv};
use bitcoin::secp256k1::{All, PublicKey, Secp256k1, SecretKey, Signing};
use bitcoin::Network;

use super::derivation::{derive_private_key, derive_revocation_private_key, per_commitment_point};
use super::shachain::build_commitment_secret;
use super::{KeysError, NodeSeed};

const NODE_KEY_INDEX: u32 = 0;
const CHANNEL_PURPOSE: u32 = 535;

fn hardened(index: u32) -> Result<ChildNumber, KeysError> {
    Ok(ChildNumber::from_hardened_idx(index)?)
}

/// Derives the node key, the wallet descriptors and the channel keys from the node seed.
pub struct KeysManager {
    master: Xpriv,
    network: Network,
    secp: Secp256k1<All>,
}

impl std::fmt::Debug for KeysManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeysManager")
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

/// The BIP84 descriptors of the on-chain wallet, with private keys (for `bdk_wallet`).
///
/// `Debug` does not print them.
#[derive(Clone, PartialEq, Eq)]
pub struct WalletDescriptors {
    /// Receive descriptor, e.g. `wpkh(tprv.../84'/1'/0'/0/*)`.
    pub external: String,
    /// Change descriptor, e.g. `wpkh(tprv.../84'/1'/0'/1/*)`.
    pub internal: String,
}

impl std::fmt::Debug for WalletDescriptors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WalletDescriptors(<redacted>)")
    }
}

impl KeysManager {
    /// Creates the manager from a raw 32-byte node seed (entropy is the caller's); the same
    /// as [`KeysManager::from_seed`] with [`NodeSeed::Raw`].
    pub fn new(seed: &[u8; 32], network: Network) -> Result<Self, KeysError> {
        Self::from_bytes(seed, network)
    }

    /// Creates the manager from the node seed: its bytes (32 raw, or 64 of a BIP39 seed) are
    /// the BIP32 master seed.
    pub fn from_seed(seed: &NodeSeed, network: Network) -> Result<Self, KeysError> {
        Self::from_bytes(seed.as_bytes(), network)
    }

    fn from_bytes(seed: &[u8], network: Network) -> Result<Self, KeysError> {
        Ok(Self {
            master: Xpriv::new_master(network, seed)?,
            network,
            secp: Secp256k1::new(),
        })
    }

    /// The network the keys are for.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The node's secret key (`m/0'`).
    pub fn node_secret_key(&self) -> Result<SecretKey, KeysError> {
        let path = [hardened(NODE_KEY_INDEX)?];
        Ok(self.master.derive_priv(&self.secp, &path)?.private_key)
    }

    /// The node id (public node key).
    pub fn node_id(&self) -> Result<PublicKey, KeysError> {
        Ok(PublicKey::from_secret_key(
            &self.secp,
            &self.node_secret_key()?,
        ))
    }

    /// The BIP84 wallet descriptors (network-aware coin type).
    pub fn wallet_descriptors(&self) -> WalletDescriptors {
        let coin = match self.network {
            Network::Bitcoin => 0,
            _ => 1,
        };
        WalletDescriptors {
            external: format!("wpkh({}/84'/{coin}'/0'/0/*)", self.master),
            internal: format!("wpkh({}/84'/{coin}'/0'/1/*)", self.master),
        }
    }

    /// The keys of channel number `channel_index` (below 2^31).
    pub fn channel_keys(&self, channel_index: u32) -> Result<ChannelKeys, KeysError> {
        let channel = hardened(channel_index).map_err(|_| KeysError::ChannelIndexOutOfRange {
            index: channel_index,
        })?;
        let base = self
            .master
            .derive_priv(&self.secp, &[hardened(CHANNEL_PURPOSE)?, channel])?;
        let key = |k: u32| -> Result<SecretKey, KeysError> {
            Ok(base.derive_priv(&self.secp, &[hardened(k)?])?.private_key)
        };
        Ok(ChannelKeys {
            funding_key: key(0)?,
            revocation_base_secret: key(1)?,
            payment_base_secret: key(2)?,
            delayed_payment_base_secret: key(3)?,
            htlc_base_secret: key(4)?,
            commitment_seed: key(5)?.secret_bytes(),
        })
    }
}

/// The public keys a channel party announces in `open_channel` / `accept_channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelPublicKeys {
    /// `funding_pubkey`.
    pub funding_pubkey: PublicKey,
    /// `revocation_basepoint`.
    pub revocation_basepoint: PublicKey,
    /// `payment_basepoint` (with `option_static_remotekey`, the `remotepubkey` itself).
    pub payment_basepoint: PublicKey,
    /// `delayed_payment_basepoint`.
    pub delayed_payment_basepoint: PublicKey,
    /// `htlc_basepoint`.
    pub htlc_basepoint: PublicKey,
}

/// One channel's secrets, derived from the node seed and the channel index.
///
/// `Debug` does not print the secrets.
#[derive(Clone)]
pub struct ChannelKeys {
    /// Secret key of `funding_pubkey`.
    pub funding_key: SecretKey,
    /// Secret of `revocation_basepoint`.
    pub revocation_base_secret: SecretKey,
    /// Secret of `payment_basepoint`.
    pub payment_base_secret: SecretKey,
    /// Secret of `delayed_payment_basepoint`.
    pub delayed_payment_base_secret: SecretKey,
    /// Secret of `htlc_basepoint`.
    pub htlc_base_secret: SecretKey,
    /// Seed of this channel's per-commitment secrets.
    pub commitment_seed: [u8; 32],
}

impl std::fmt::Debug for ChannelKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChannelKeys(<redacted>)")
    }
}

impl ChannelKeys {
    /// The public keys to announce.
    pub fn public_keys<C: Signing>(&self, secp: &Secp256k1<C>) -> ChannelPublicKeys {
        let pk = |sk: &SecretKey| PublicKey::from_secret_key(secp, sk);
        ChannelPublicKeys {
            funding_pubkey: pk(&self.funding_key),
            revocation_basepoint: pk(&self.revocation_base_secret),
            payment_basepoint: pk(&self.payment_base_secret),
            delayed_payment_basepoint: pk(&self.delayed_payment_base_secret),
            htlc_basepoint: pk(&self.htlc_base_secret),
        }
    }

    /// Our per-commitment secret at `index` (2^48 - 1 for the first commitment, descending).
    pub fn per_commitment_secret(&self, index: u64) -> [u8; 32] {
        build_commitment_secret(&self.commitment_seed, index)
    }

    /// Our per-commitment point at `index`.
    pub fn per_commitment_point<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        index: u64,
    ) -> Result<PublicKey, KeysError> {
        per_commitment_point(secp, &self.per_commitment_secret(index))
    }

    /// Secret key of our `local_delayedpubkey` for our commitment at `per_commitment_point`.
    pub fn delayed_payment_key<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        per_commitment_point: &PublicKey,
    ) -> Result<SecretKey, KeysError> {
        derive_private_key(
            secp,
            &self.delayed_payment_base_secret,
            per_commitment_point,
        )
    }

    /// Secret key of our HTLC pubkey at `per_commitment_point` (either commitment).
    pub fn htlc_key<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        per_commitment_point: &PublicKey,
    ) -> Result<SecretKey, KeysError> {
        derive_private_key(secp, &self.htlc_base_secret, per_commitment_point)
    }

    /// Secret key of the `revocationpubkey` of the counterparty's revoked commitment, once
    /// they revealed its `per_commitment_secret`.
    pub fn revocation_key<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        counterparty_per_commitment_secret: &SecretKey,
    ) -> Result<SecretKey, KeysError> {
        derive_revocation_private_key(
            secp,
            &self.revocation_base_secret,
            counterparty_per_commitment_secret,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_is_deterministic_and_distinct() {
        let seed = [3u8; 32];
        let a = KeysManager::new(&seed, Network::Regtest).expect("keys");
        let b = KeysManager::new(&seed, Network::Regtest).expect("keys");
        let secp = Secp256k1::new();
        let ka = a.channel_keys(7).expect("channel").public_keys(&secp);
        let kb = b.channel_keys(7).expect("channel").public_keys(&secp);
        assert_eq!(ka, kb);
        let other = a.channel_keys(8).expect("channel").public_keys(&secp);
        assert_ne!(ka.funding_pubkey, other.funding_pubkey);
        let keys = [
            ka.funding_pubkey,
            ka.revocation_basepoint,
            ka.payment_basepoint,
            ka.delayed_payment_basepoint,
            ka.htlc_basepoint,
        ];
        for (i, x) in keys.iter().enumerate() {
            for y in &keys[i + 1..] {
                assert_ne!(x, y);
            }
        }
        assert_eq!(a.node_id().expect("node"), b.node_id().expect("node"));
        assert!(matches!(
            a.channel_keys(1 << 31),
            Err(KeysError::ChannelIndexOutOfRange { .. })
        ));
    }

    #[test]
    fn descriptors_are_network_aware() {
        let seed = [5u8; 32];
        let test = KeysManager::new(&seed, Network::Testnet)
            .expect("keys")
            .wallet_descriptors();
        assert!(test.external.starts_with("wpkh(tprv"));
        assert!(test.external.ends_with("/84'/1'/0'/0/*)"));
        assert!(test.internal.ends_with("/84'/1'/0'/1/*)"));
        let main = KeysManager::new(&seed, Network::Bitcoin)
            .expect("keys")
            .wallet_descriptors();
        assert!(main.external.starts_with("wpkh(xprv"));
        assert!(main.external.ends_with("/84'/0'/0'/0/*)"));
        assert!(!format!("{main:?}").contains("xprv"));
    }
}
