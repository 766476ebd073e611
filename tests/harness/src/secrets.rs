//! The node's secret in its data dir: `D/mnemonic` (BIP39 words, written by `tern init`) or
//! `D/seed` (32 raw bytes, created by the first `tern daemon` when neither exists and the dir
//! holds no database: a database without its secret is refused, never given a new one).
//!
//! Both are mode 0600, created atomically (written and fsynced under a temporary name, then
//! hard-linked, which fails if the name exists) and never overwritten. The words and the seed
//! are never logged and never reach the node's database. A data dir with both, or with a
//! malformed one, is refused: which one is this node is not guessed.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use bitcoin::Network;
use serde_json::{json, Value};
use tern_core::proto::keys::{KeysManager, Mnemonic, NodeSeed};

/// The raw seed file's name inside the data dir.
pub const SEED_FILE: &str = "seed";
/// The BIP39 words' file name inside the data dir.
pub const MNEMONIC_FILE: &str = "mnemonic";
/// The node database's file name (its presence means the dir holds a node).
const DB_FILE: &str = "tern.sqlite";

/// Why the secret could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The words given are not a mnemonic (the CLI's exit 2).
    #[error("{0}")]
    BadWords(String),
    /// The data dir cannot take a new secret, or holds an unusable one.
    #[error("{0}")]
    Refused(String),
}

/// Creates `dir/name` holding `bytes` (mode 0600) unless it exists; returns whether it did.
fn create_once(dir: &Path, name: &str, bytes: &[u8]) -> Result<bool, SecretError> {
    let path = dir.join(name);
    let shown = path.display();
    let fail =
        |what: &str, e: std::io::Error| SecretError::Refused(format!("cannot {what} {shown}: {e}"));
    // One temporary name per process: two processes racing never write the same file.
    let tmp = dir.join(format!("{name}.tmp.{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| fail("create", e))?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, &path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(fail("write", e)),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, SecretError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| SecretError::Refused(format!("cannot read {}: {e}", path.display())))?;
    Ok(bytes)
}

/// Reads `D/seed`, or creates it (32 bytes from the OS RNG) in a data dir that holds no node
/// yet. A file of another size is refused, not overwritten. A data dir with a database and
/// neither `D/seed` nor `D/mnemonic` is refused before anything is written: a new seed would
/// be another node, whose wallet cannot open that database.
pub fn load_or_create_seed(data_dir: &Path) -> Result<[u8; 32], SecretError> {
    let path = data_dir.join(SEED_FILE);
    if !path.exists() {
        let db = data_dir.join(DB_FILE);
        if db.exists() && !data_dir.join(MNEMONIC_FILE).exists() {
            return Err(SecretError::Refused(format!(
                "{} holds a node's database ({}) but not its secret: neither {} nor {} \
                 exists. Refusing to start (a new seed would be another node, and nothing has \
                 been written). Restore this node's secret: put its 32-byte seed file back as \
                 {}, or its BIP39 words (one line) in {}",
                data_dir.display(),
                db.display(),
                path.display(),
                data_dir.join(MNEMONIC_FILE).display(),
                path.display(),
                data_dir.join(MNEMONIC_FILE).display(),
            )));
        }
        let mut seed = [0u8; 32];
        {
            use bitcoin::secp256k1::rand::RngCore;
            bitcoin::secp256k1::rand::rngs::OsRng.fill_bytes(&mut seed);
        }
        if create_once(data_dir, SEED_FILE, &seed)? {
            tracing::info!("created a new seed in {}", path.display());
            return Ok(seed);
        }
        // Another process created it first: use theirs.
    }
    let bytes = read(&path)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        SecretError::Refused(format!(
            "the seed file {} has {} bytes, expected 32: refusing to start \
             (it is not overwritten; move it away to create a new node)",
            path.display(),
            bytes.len()
        ))
    })
}

/// The node seed of the data dir: from `D/mnemonic` when it exists, else from `D/seed`
/// (created when missing, as before mnemonics existed).
pub fn load_node_seed(data_dir: &Path) -> Result<NodeSeed, SecretError> {
    let words = data_dir.join(MNEMONIC_FILE);
    let seed = data_dir.join(SEED_FILE);
    match (words.exists(), seed.exists()) {
        (true, true) => Err(SecretError::Refused(format!(
            "{} and {} both exist: refusing to start (which one is this node's? move the \
             other away)",
            words.display(),
            seed.display()
        ))),
        (true, false) => {
            let bytes = read(&words)?;
            let mnemonic = std::str::from_utf8(&bytes)
                .map_err(|_| "it is not text".to_string())
                .and_then(|text| Mnemonic::parse(text).map_err(|e| e.to_string()))
                .map_err(|reason| {
                    SecretError::Refused(format!(
                        "the mnemonic file {} is not usable ({reason}): refusing to start",
                        words.display()
                    ))
                })?;
            Ok(NodeSeed::from_mnemonic(&mnemonic, None))
        }
        (false, _) => load_or_create_seed(data_dir).map(NodeSeed::Raw),
    }
}

/// `tern init`: a new node in `data_dir` from `words` (or 24 new words from the OS RNG),
/// written to `D/mnemonic`. Returns the node id, the first receive address on `network`, and
/// the words when they were generated (shown this once).
pub fn init(data_dir: &Path, words: Option<&str>, network: Network) -> Result<Value, SecretError> {
    let mnemonic = match words {
        Some(w) => Mnemonic::parse(w).map_err(|e| SecretError::BadWords(e.to_string()))?,
        None => {
            let mut entropy = [0u8; 32];
            {
                use bitcoin::secp256k1::rand::RngCore;
                bitcoin::secp256k1::rand::rngs::OsRng.fill_bytes(&mut entropy);
            }
            Mnemonic::from_entropy(&entropy).map_err(|e| SecretError::Refused(e.to_string()))?
        }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(|e| SecretError::Refused(format!("cannot create {}: {e}", data_dir.display())))?;
    if let Some(existing) = [MNEMONIC_FILE, SEED_FILE, DB_FILE]
        .iter()
        .map(|f| data_dir.join(f))
        .find(|p| p.exists())
    {
        return Err(SecretError::Refused(format!(
            "{} already holds a node ({} exists): init never replaces one",
            data_dir.display(),
            existing.display()
        )));
    }
    let seed = NodeSeed::from_mnemonic(&mnemonic, None);
    let keys = KeysManager::from_seed(&seed, network)
        .map_err(|e| SecretError::Refused(format!("keys: {e}")))?;
    let node_id = keys
        .node_id()
        .map_err(|e| SecretError::Refused(format!("keys: {e}")))?;
    let address = tern_core::wallet::first_receive_address(&keys.wallet_descriptors(), network)
        .map_err(|e| SecretError::Refused(e.to_string()))?;
    let path = data_dir.join(MNEMONIC_FILE);
    if !create_once(
        data_dir,
        MNEMONIC_FILE,
        format!("{}\n", mnemonic.to_words()).as_bytes(),
    )? {
        return Err(SecretError::Refused(format!(
            "{} appeared meanwhile: init never replaces one",
            path.display()
        )));
    }
    let mut out = json!({
        "node_id": node_id.to_string(),
        "network": network.to_string(),
        "first_address": address.to_string(),
        "mnemonic_file": path.display().to_string(),
    });
    if words.is_none() {
        out["words"] = Value::String(mnemonic.to_words());
    }
    Ok(out)
}
