//! Per-commitment secrets (BOLT 3) and the 49-entry compact storage of the counterparty's
//! revealed secrets ("shachain").
//!
//! See [BOLT 3 "Per-commitment Secret Requirements"](https://github.com/lightning/bolts/blob/master/03-transactions.md#per-commitment-secret-requirements)
//! and ["Efficient Per-commitment Secret Storage"](https://github.com/lightning/bolts/blob/master/03-transactions.md#efficient-per-commitment-secret-storage).
//!
//! Indices here are the spec's `I`: the first commitment uses [`INITIAL_COMMITMENT_NUMBER`]
//! (2^48 - 1) and each later commitment the index one lower.

use bitcoin::hashes::{sha256, Hash};

/// The index of the first per-commitment secret: 2^48 - 1.
pub const INITIAL_COMMITMENT_NUMBER: u64 = (1 << 48) - 1;

/// Number of storage buckets: one per possible count of trailing zero bits (0..=48).
const BUCKETS: usize = 49;

/// Errors from [`CounterpartyCommitmentSecrets::provide_secret`] and decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShachainError {
    /// The secret's index is not the next one expected (secrets arrive in descending order).
    #[error("unexpected per-commitment secret index {index} (expected {expected})")]
    UnexpectedIndex {
        /// The index provided.
        index: u64,
        /// The index that was expected.
        expected: u64,
    },
    /// The secret does not derive an earlier secret: it was not generated from the same seed.
    #[error("per-commitment secret for index {index} does not derive the earlier secret at index {earlier}")]
    InconsistentSecret {
        /// The index provided.
        index: u64,
        /// The earlier index whose stored secret does not match.
        earlier: u64,
    },
    /// A stored encoding is malformed.
    #[error("malformed per-commitment secret storage: {reason}")]
    Malformed {
        /// What is wrong.
        reason: &'static str,
    },
}

/// Derives the secret at index `index` from `base`, whose index shares bits `bits..48` with it
/// (the spec's `derive_secret`).
fn derive_secret(base: [u8; 32], bits: u32, index: u64) -> [u8; 32] {
    let mut p = base;
    for b in (0..bits).rev() {
        if index & (1 << b) != 0 {
            p[(b / 8) as usize] ^= 1 << (b % 8);
            p = sha256::Hash::hash(&p).to_byte_array();
        }
    }
    p
}

/// The `index`'th per-commitment secret from `seed` (the spec's `generate_from_seed`).
///
/// Only the low 48 bits of `index` are used.
pub fn build_commitment_secret(seed: &[u8; 32], index: u64) -> [u8; 32] {
    derive_secret(*seed, 48, index)
}

/// Compact storage of the counterparty's revealed per-commitment secrets: at most 49
/// `(secret, index)` pairs from which every revealed secret can be re-derived.
#[derive(Clone, PartialEq, Eq)]
pub struct CounterpartyCommitmentSecrets {
    known: [Option<([u8; 32], u64)>; BUCKETS],
}

impl std::fmt::Debug for CounterpartyCommitmentSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secrets themselves.
        f.debug_struct("CounterpartyCommitmentSecrets")
            .field("lowest_index", &self.lowest_index())
            .finish()
    }
}

impl Default for CounterpartyCommitmentSecrets {
    fn default() -> Self {
        Self {
            known: [None; BUCKETS],
        }
    }
}

impl CounterpartyCommitmentSecrets {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The spec's `where_to_put_secret`: the number of trailing zero bits of `index` (48 for 0).
    fn bucket(index: u64) -> usize {
        if index == 0 {
            48
        } else {
            (index.trailing_zeros() as usize).min(48)
        }
    }

    /// The lowest (most recent) index stored, if any.
    pub fn lowest_index(&self) -> Option<u64> {
        self.known.iter().flatten().map(|(_, i)| *i).min()
    }

    /// The index the next secret must have.
    pub fn next_index(&self) -> u64 {
        match self.lowest_index() {
            Some(i) => i.wrapping_sub(1),
            None => INITIAL_COMMITMENT_NUMBER,
        }
    }

    /// Stores the secret for `index` (the spec's `insert_secret`), after checking that it is
    /// the next index in descending order and that it derives every earlier secret it should.
    /// On error the store is unchanged.
    pub fn provide_secret(&mut self, index: u64, secret: [u8; 32]) -> Result<(), ShachainError> {
        let expected = self.next_index();
        if index != expected || index > INITIAL_COMMITMENT_NUMBER {
            return Err(ShachainError::UnexpectedIndex { index, expected });
        }
        let bucket = Self::bucket(index);
        for (earlier_secret, earlier_index) in self.known[..bucket].iter().flatten() {
            if derive_secret(secret, bucket as u32, *earlier_index) != *earlier_secret {
                return Err(ShachainError::InconsistentSecret {
                    index,
                    earlier: *earlier_index,
                });
            }
        }
        self.known[bucket] = Some((secret, index));
        Ok(())
    }

    /// The secret for an already revealed `index` (the spec's `derive_old_secret`), or `None`
    /// if it has not been revealed yet.
    pub fn get_secret(&self, index: u64) -> Option<[u8; 32]> {
        for (bucket, entry) in self.known.iter().enumerate() {
            if let Some((secret, stored_index)) = entry {
                let mask = !((1u64 << bucket) - 1);
                if index & mask == *stored_index {
                    return Some(derive_secret(*secret, bucket as u32, index));
                }
            }
        }
        None
    }

    /// Encodes the store: a version byte (1), then for each of the 49 buckets a presence byte
    /// followed, when present, by the 8-byte big-endian index and the 32-byte secret.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + BUCKETS * 41);
        out.push(1);
        for entry in &self.known {
            match entry {
                None => out.push(0),
                Some((secret, index)) => {
                    out.push(1);
                    out.extend_from_slice(&index.to_be_bytes());
                    out.extend_from_slice(secret);
                }
            }
        }
        out
    }

    /// Decodes what [`encode`](Self::encode) produced.
    pub fn decode(bytes: &[u8]) -> Result<Self, ShachainError> {
        let malformed = |reason| ShachainError::Malformed { reason };
        let (version, mut rest) = bytes.split_first().ok_or(malformed("empty"))?;
        if *version != 1 {
            return Err(malformed("unknown version"));
        }
        let mut store = Self::new();
        for (bucket, slot) in store.known.iter_mut().enumerate() {
            let (flag, tail) = rest.split_first().ok_or(malformed("truncated"))?;
            rest = tail;
            match flag {
                0 => {}
                1 => {
                    if rest.len() < 40 {
                        return Err(malformed("truncated"));
                    }
                    let mut index_bytes = [0u8; 8];
                    index_bytes.copy_from_slice(&rest[..8]);
                    let mut secret = [0u8; 32];
                    secret.copy_from_slice(&rest[8..40]);
                    rest = &rest[40..];
                    let index = u64::from_be_bytes(index_bytes);
                    if Self::bucket(index) != bucket {
                        return Err(malformed("index in the wrong bucket"));
                    }
                    *slot = Some((secret, index));
                }
                _ => return Err(malformed("bad presence flag")),
            }
        }
        if !rest.is_empty() {
            return Err(malformed("trailing bytes"));
        }
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_rederives_a_long_sequence() {
        let seed = [0x42u8; 32];
        let mut store = CounterpartyCommitmentSecrets::new();
        let n = 300u64;
        for k in 0..n {
            let index = INITIAL_COMMITMENT_NUMBER - k;
            store
                .provide_secret(index, build_commitment_secret(&seed, index))
                .expect("consistent secret");
        }
        for k in 0..n {
            let index = INITIAL_COMMITMENT_NUMBER - k;
            assert_eq!(
                store.get_secret(index),
                Some(build_commitment_secret(&seed, index))
            );
        }
        assert_eq!(store.get_secret(INITIAL_COMMITMENT_NUMBER - n), None);
        assert!(store.known.iter().flatten().count() <= 10);
        let decoded = CounterpartyCommitmentSecrets::decode(&store.encode()).expect("decode");
        assert_eq!(decoded, store);
    }

    #[test]
    fn rejects_out_of_order_and_leaves_store_unchanged() {
        let seed = [1u8; 32];
        let mut store = CounterpartyCommitmentSecrets::new();
        let first = INITIAL_COMMITMENT_NUMBER;
        store
            .provide_secret(first, build_commitment_secret(&seed, first))
            .expect("first");
        let before = store.clone();
        let err = store
            .provide_secret(first - 2, build_commitment_secret(&seed, first - 2))
            .expect_err("skipped an index");
        assert_eq!(
            err,
            ShachainError::UnexpectedIndex {
                index: first - 2,
                expected: first - 1
            }
        );
        let err = store
            .provide_secret(first - 1, build_commitment_secret(&[2u8; 32], first - 1))
            .expect_err("other seed");
        assert!(matches!(err, ShachainError::InconsistentSecret { .. }));
        assert_eq!(store, before);
        assert!(CounterpartyCommitmentSecrets::decode(&[2]).is_err());
    }
}
