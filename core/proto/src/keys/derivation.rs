//! BOLT 3 key derivation from basepoints and per-commitment points.
//!
//! See [BOLT 3 "Key Derivation"](https://github.com/lightning/bolts/blob/master/03-transactions.md#key-derivation).

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{PublicKey, Scalar, Secp256k1, SecretKey, Signing, Verification};

use super::KeysError;

fn sha256_points(a: &PublicKey, b: &PublicKey) -> [u8; 32] {
    let mut engine = sha256::Hash::engine();
    engine.input(&a.serialize());
    engine.input(&b.serialize());
    sha256::Hash::from_engine(engine).to_byte_array()
}

fn scalar(bytes: [u8; 32], what: &'static str) -> Result<Scalar, KeysError> {
    Scalar::from_be_bytes(bytes).map_err(|_| KeysError::Tweak {
        what,
        source: bitcoin::secp256k1::Error::InvalidTweak,
    })
}

/// `per_commitment_point = per_commitment_secret * G`.
pub fn per_commitment_point<C: Signing>(
    secp: &Secp256k1<C>,
    per_commitment_secret: &[u8; 32],
) -> Result<PublicKey, KeysError> {
    let secret =
        SecretKey::from_slice(per_commitment_secret).map_err(|source| KeysError::Tweak {
            what: "per-commitment secret",
            source,
        })?;
    Ok(PublicKey::from_secret_key(secp, &secret))
}

/// `pubkey = basepoint + SHA256(per_commitment_point || basepoint) * G`.
///
/// Gives `localpubkey`, `local_htlcpubkey`, `remote_htlcpubkey`, `local_delayedpubkey` and
/// `remote_delayedpubkey` from the matching basepoint.
pub fn derive_public_key<C: Verification>(
    secp: &Secp256k1<C>,
    basepoint: &PublicKey,
    per_commitment_point: &PublicKey,
) -> Result<PublicKey, KeysError> {
    let tweak = scalar(sha256_points(per_commitment_point, basepoint), "pubkey")?;
    basepoint
        .add_exp_tweak(secp, &tweak)
        .map_err(|source| KeysError::Tweak {
            what: "pubkey",
            source,
        })
}

/// `privkey = basepoint_secret + SHA256(per_commitment_point || basepoint)`.
pub fn derive_private_key<C: Signing>(
    secp: &Secp256k1<C>,
    basepoint_secret: &SecretKey,
    per_commitment_point: &PublicKey,
) -> Result<SecretKey, KeysError> {
    let basepoint = PublicKey::from_secret_key(secp, basepoint_secret);
    let tweak = scalar(sha256_points(per_commitment_point, &basepoint), "privkey")?;
    basepoint_secret
        .add_tweak(&tweak)
        .map_err(|source| KeysError::Tweak {
            what: "privkey",
            source,
        })
}

/// `revocationpubkey = revocation_basepoint * SHA256(revocation_basepoint || per_commitment_point)
/// + per_commitment_point * SHA256(per_commitment_point || revocation_basepoint)`.
pub fn derive_revocation_public_key<C: Verification>(
    secp: &Secp256k1<C>,
    revocation_basepoint: &PublicKey,
    per_commitment_point: &PublicKey,
) -> Result<PublicKey, KeysError> {
    let err = |source| KeysError::Tweak {
        what: "revocation pubkey",
        source,
    };
    let base_tweak = scalar(
        sha256_points(revocation_basepoint, per_commitment_point),
        "revocation pubkey",
    )?;
    let point_tweak = scalar(
        sha256_points(per_commitment_point, revocation_basepoint),
        "revocation pubkey",
    )?;
    let a = revocation_basepoint
        .mul_tweak(secp, &base_tweak)
        .map_err(err)?;
    let b = per_commitment_point
        .mul_tweak(secp, &point_tweak)
        .map_err(err)?;
    a.combine(&b).map_err(err)
}

/// `revocationprivkey = revocation_basepoint_secret * SHA256(revocation_basepoint ||
/// per_commitment_point) + per_commitment_secret * SHA256(per_commitment_point ||
/// revocation_basepoint)`.
pub fn derive_revocation_private_key<C: Signing>(
    secp: &Secp256k1<C>,
    revocation_basepoint_secret: &SecretKey,
    per_commitment_secret: &SecretKey,
) -> Result<SecretKey, KeysError> {
    let err = |source| KeysError::Tweak {
        what: "revocation privkey",
        source,
    };
    let revocation_basepoint = PublicKey::from_secret_key(secp, revocation_basepoint_secret);
    let point = PublicKey::from_secret_key(secp, per_commitment_secret);
    let base_tweak = scalar(
        sha256_points(&revocation_basepoint, &point),
        "revocation privkey",
    )?;
    let point_tweak = scalar(
        sha256_points(&point, &revocation_basepoint),
        "revocation privkey",
    )?;
    let a = revocation_basepoint_secret
        .mul_tweak(&base_tweak)
        .map_err(err)?;
    let b = per_commitment_secret.mul_tweak(&point_tweak).map_err(err)?;
    a.add_tweak(&Scalar::from(b)).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_public_derivations_agree() {
        let secp = Secp256k1::new();
        let base = SecretKey::from_slice(&[7u8; 32]).expect("valid key");
        let pcs = SecretKey::from_slice(&[9u8; 32]).expect("valid key");
        let pcp = PublicKey::from_secret_key(&secp, &pcs);
        let base_point = PublicKey::from_secret_key(&secp, &base);

        let sk = derive_private_key(&secp, &base, &pcp).expect("derive");
        let pk = derive_public_key(&secp, &base_point, &pcp).expect("derive");
        assert_eq!(PublicKey::from_secret_key(&secp, &sk), pk);

        let rsk = derive_revocation_private_key(&secp, &base, &pcs).expect("derive");
        let rpk = derive_revocation_public_key(&secp, &base_point, &pcp).expect("derive");
        assert_eq!(PublicKey::from_secret_key(&secp, &rsk), rpk);
        assert_ne!(rpk, pk);
    }
}
