//! The node's root secret: Tern's raw 32-byte seed or a BIP39 mnemonic's 64-byte seed.
//!
//! Either becomes the BIP32 master seed every key derives from ([`super::KeysManager`]). A raw
//! seed is used as it is (the `D/seed` files of existing nodes keep their node id); a mnemonic
//! is turned into its [BIP39](https://github.com/bitcoin/bips/blob/master/bip-0039.mediawiki)
//! seed — PBKDF2-HMAC-SHA512 of the words and `"mnemonic" + passphrase`, 2048 rounds — so the
//! BIP84 wallet is the one any BIP39 wallet restores from the same words.
//!
//! Pure: generating words takes the entropy as a parameter (the caller reads the OS RNG).

use zeroize::Zeroize;

use super::KeysError;

/// The secret the node's keys derive from. `Debug` does not print it; dropped, it is zeroed.
#[derive(Clone, PartialEq, Eq)]
pub enum NodeSeed {
    /// Tern's raw seed (`D/seed`): 32 bytes, used directly as the BIP32 master seed.
    Raw([u8; 32]),
    /// A BIP39 seed (64 bytes, from words and a passphrase), the BIP32 master seed.
    Bip39([u8; 64]),
}

impl NodeSeed {
    /// The BIP39 seed of `mnemonic` with `passphrase` (`None` is the empty passphrase).
    pub fn from_mnemonic(mnemonic: &Mnemonic, passphrase: Option<&str>) -> NodeSeed {
        NodeSeed::Bip39(mnemonic.0.to_seed(passphrase.unwrap_or("")))
    }

    /// Parses `words` ([`Mnemonic::parse`]) and derives their BIP39 seed.
    pub fn from_words(words: &str, passphrase: Option<&str>) -> Result<NodeSeed, KeysError> {
        Ok(Self::from_mnemonic(&Mnemonic::parse(words)?, passphrase))
    }

    /// The BIP32 master seed bytes (32 or 64).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            NodeSeed::Raw(b) => b,
            NodeSeed::Bip39(b) => b,
        }
    }
}

impl From<[u8; 32]> for NodeSeed {
    fn from(seed: [u8; 32]) -> Self {
        NodeSeed::Raw(seed)
    }
}

impl std::fmt::Debug for NodeSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeSeed::Raw(_) => f.write_str("NodeSeed::Raw(<redacted>)"),
            NodeSeed::Bip39(_) => f.write_str("NodeSeed::Bip39(<redacted>)"),
        }
    }
}

impl Drop for NodeSeed {
    fn drop(&mut self) {
        match self {
            NodeSeed::Raw(b) => b.zeroize(),
            NodeSeed::Bip39(b) => b.zeroize(),
        }
    }
}

/// A checked BIP39 mnemonic (English word list). `Debug` does not print the words.
#[derive(Clone, PartialEq, Eq)]
pub struct Mnemonic(bip39::Mnemonic);

impl std::fmt::Debug for Mnemonic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mnemonic({} words, <redacted>)", self.0.word_count())
    }
}

impl Mnemonic {
    /// The words encoding `entropy` (16, 20, 24, 28 or 32 bytes: 12 to 24 words). Tern
    /// generates 24 words from 32 bytes of the caller's entropy.
    pub fn from_entropy(entropy: &[u8]) -> Result<Mnemonic, KeysError> {
        bip39::Mnemonic::from_entropy(entropy)
            .map(Mnemonic)
            .map_err(|e| KeysError::Mnemonic(e.to_string()))
    }

    /// Parses 12, 15, 18, 21 or 24 English words separated by whitespace, in any case,
    /// checking every word and the checksum. Errors name the position of a bad word, never
    /// the words.
    pub fn parse(words: &str) -> Result<Mnemonic, KeysError> {
        let lower = words.trim().to_lowercase();
        bip39::Mnemonic::parse_in(bip39::Language::English, lower.as_str())
            .map(Mnemonic)
            .map_err(|e| {
                KeysError::Mnemonic(match e {
                    bip39::Error::UnknownWord(i) => {
                        format!("word {} is not in the BIP39 English word list", i + 1)
                    }
                    bip39::Error::BadWordCount(n) => {
                        format!("{n} words: a mnemonic has 12, 15, 18, 21 or 24")
                    }
                    bip39::Error::InvalidChecksum => {
                        "the checksum does not match (a word is wrong or out of order)".into()
                    }
                    other => other.to_string(),
                })
            })
    }

    /// The words, separated by single spaces (lower case).
    pub fn to_words(&self) -> String {
        self.0.words().collect::<Vec<_>>().join(" ")
    }

    /// How many words.
    pub fn word_count(&self) -> usize {
        self.0.word_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From Trezor's BIP39 reference vectors (`vectors.json`, English, passphrase "TREZOR"):
    /// entropy, words, seed.
    const TREZOR: &[(&str, &str, &str)] = &[
        (
            "00000000000000000000000000000000",
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon \
             abandon about",
            "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e\
             1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04",
        ),
        (
            "7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f",
            "legal winner thank year wave sausage worth useful legal winner thank yellow",
            "2e8905819b8723fe2c1d161860e5ee1830318dbf49a83bd451cfb8440c28bd6fa457fe1296106559a3c80\
             937a1c1069be3a3a5bd381ee6260e8d9739fce1f607",
        ),
        (
            "9e885d952ad362caeb4efe34a8e91bd2",
            "ozone drill grab fiber curtain grace pudding thank cruise elder eight picnic",
            "274ddc525802f7c828d8ef7ddbcdc5304e87ac3535913611fbbfa986d0c9e5476c91689f9c8a54fd55bd3\
             8606aa6a8595ad213d4c9c9f9aca3fb217069a41028",
        ),
        (
            "0000000000000000000000000000000000000000000000000000000000000000",
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon \
             abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon \
             abandon abandon abandon art",
            "bda85446c68413707090a52022edd26a1c9462295029f2e60cd7c4f2bbd3097170af7a4d73245cafa9c3c\
             ca8d561a7c3de6f5d4a10be8ed2a5e608d68f92fcc8",
        ),
        (
            "f585c11aec520db57dd353c69554b21a89b20fb0650966fa0a9d6f74fd989d8f",
            "void come effort suffer camp survey warrior heavy shoot primary clutch crush open \
             amazing screen patrol group space point ten exist slush involve unfold",
            "01f5bced59dec48e362f2c45b5de68b9fd6c92c6634f44d6d40aab69056506f0e35524a518034ddc1192e\
             1dacd32c1ed3eaa3c3b131c88ed8e7e54c49a5d0998",
        ),
    ];

    fn hex(s: &str) -> Vec<u8> {
        use bitcoin::hex::FromHex;
        Vec::<u8>::from_hex(s).expect("hex")
    }

    #[test]
    fn trezor_vectors() {
        for (entropy, words, seed) in TREZOR {
            let words = words.split_whitespace().collect::<Vec<_>>().join(" ");
            let m = Mnemonic::from_entropy(&hex(entropy)).expect("entropy");
            assert_eq!(m.to_words(), words);
            assert_eq!(Mnemonic::parse(&words).expect("parses"), m);
            let derived = NodeSeed::from_words(&words, Some("TREZOR")).expect("words");
            assert_eq!(derived.as_bytes(), hex(seed).as_slice(), "{words}");
        }
    }

    #[test]
    fn parsing_is_lenient_on_case_and_spaces_and_strict_on_words() {
        let words =
            "  Legal winner thank year wave sausage\n worth useful legal winner thank YELLOW ";
        assert_eq!(Mnemonic::parse(words).expect("parses").word_count(), 12);
        let err = |w: &str| Mnemonic::parse(w).expect_err("refused").to_string();
        let e = err("legal winner thank year wave sausage worth useful legal winner thank yelow");
        assert!(e.contains("word 12 is not in the BIP39"), "{e}");
        assert!(!e.contains("yelow"), "never echoes the words: {e}");
        let e = err("legal winner thank year wave sausage worth useful legal winner thank");
        assert!(e.contains("11 words"), "{e}");
        let e = err("legal winner thank year wave sausage worth useful legal winner thank thank");
        assert!(e.contains("checksum"), "{e}");
        assert!(Mnemonic::from_entropy(&[0u8; 15]).is_err());
    }

    #[test]
    fn seeds_are_redacted_and_distinct() {
        let raw = NodeSeed::from([7u8; 32]);
        assert_eq!(raw.as_bytes(), &[7u8; 32]);
        assert_eq!(format!("{raw:?}"), "NodeSeed::Raw(<redacted>)");
        let m = Mnemonic::from_entropy(&[7u8; 32]).expect("entropy");
        assert_eq!(m.word_count(), 24);
        assert!(!format!("{m:?}").contains(&m.to_words()[..8]));
        let a = NodeSeed::from_mnemonic(&m, None);
        assert_eq!(a, NodeSeed::from_mnemonic(&m, Some("")));
        assert_ne!(a, NodeSeed::from_mnemonic(&m, Some("x")));
        assert_eq!(a.as_bytes().len(), 64);
        assert_eq!(format!("{a:?}"), "NodeSeed::Bip39(<redacted>)");
    }
}
