//! The log-secret check (issue 17 §4): no seed, mnemonic word list, secret key or
//! per-commitment secret of the test seeds appears in any line the test binaries (and the
//! daemons they spawn) logged, at any level. Every test binary logs at TRACE to its own file
//! (`common/trace.rs`); `scripts/test-secrets.sh` runs [`no_test_log_holds_a_secret`] after
//! the whole suite, over those files.
//!
//! Searched for, per test seed (every `[n; 32]`, the named seeds of the storage tests, the
//! words the tests use): the seed; its BIP39 words (any 3 in a row); the node secret key; for
//! channel indices 0..4, the five channel secret keys, the commitment seed and the first 16
//! per-commitment secrets. Each as hex (either case, anywhere in a longer hex run) and in
//! `Debug` byte-list form (`[7, 7, ...]`). The seed `[0; 32]` itself is not looked for: 32
//! zero bytes are the null txid, in public log lines.
//!
//! The canary ([`canary_logs_a_seed`], run only with `TERN_LOG_CANARY=1`) logs a seed on
//! purpose: running the suite with it makes the check fail, and
//! [`the_check_catches_the_canary`] proves that on every run.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bitcoin::Network;
use tern_core::proto::keys::{KeysManager, Mnemonic, NodeSeed};

/// Set to run the check over the suite's logs (after the suite: `scripts/test-secrets.sh`).
const CHECK_ENV: &str = "TERN_CHECK_LOGS";
/// Set to make [`canary_logs_a_seed`] log a seed.
const CANARY_ENV: &str = "TERN_LOG_CANARY";

/// The seeds of `node_storage_faults.rs`.
const NAMED_SEEDS: [[u8; 32]; 2] = [
    *b"tern storage-fault seed A ......",
    *b"tern storage-fault seed B ......",
];

/// Word lists the tests start nodes from.
const TEST_WORDS: [&str; 2] = [
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
    "legal winner thank year wave sausage worth useful legal winner thank yellow",
];

/// The secrets looked for.
struct Secrets {
    /// 32-byte secrets, with what each is.
    bytes: HashMap<[u8; 32], String>,
    /// Every 3 consecutive words of each word list.
    word_runs: HashMap<[String; 3], String>,
}

/// Records `what` for `key` unless an earlier secret has the same key (the word lists of
/// `[n; 32]` seeds repeat with a period of 8 words, so runs of 3 are shared): the first name
/// is kept.
fn note<K: std::hash::Hash + Eq>(map: &mut HashMap<K, String>, key: K, what: String) {
    map.entry(key).or_insert(what);
}

fn add_keys(secrets: &mut Secrets, keys: &KeysManager, label: &str) {
    if let Ok(node) = keys.node_secret_key() {
        secrets
            .bytes
            .insert(node.secret_bytes(), format!("{label}: node secret key"));
    }
    for index in 0..4u32 {
        let Ok(ch) = keys.channel_keys(index) else {
            continue;
        };
        for (what, key) in [
            ("funding key", ch.funding_key),
            ("revocation base secret", ch.revocation_base_secret),
            ("payment base secret", ch.payment_base_secret),
            (
                "delayed payment base secret",
                ch.delayed_payment_base_secret,
            ),
            ("htlc base secret", ch.htlc_base_secret),
        ] {
            secrets.bytes.insert(
                key.secret_bytes(),
                format!("{label}: channel {index} {what}"),
            );
        }
        note(
            &mut secrets.bytes,
            ch.commitment_seed,
            format!("{label}: channel {index} commitment seed"),
        );
        let first = (1u64 << 48) - 1;
        for n in 0..16 {
            note(
                &mut secrets.bytes,
                ch.per_commitment_secret(first - n),
                format!("{label}: channel {index} per-commitment secret #{n}"),
            );
        }
    }
}

fn add_words(secrets: &mut Secrets, words: &str, label: &str) {
    let list: Vec<String> = words.split_whitespace().map(str::to_lowercase).collect();
    for run in list.windows(3) {
        note(
            &mut secrets.word_runs,
            [run[0].clone(), run[1].clone(), run[2].clone()],
            format!("{label}: BIP39 words"),
        );
    }
}

fn test_secrets() -> Secrets {
    let mut secrets = Secrets {
        bytes: HashMap::new(),
        word_runs: HashMap::new(),
    };
    let mut seeds: Vec<([u8; 32], String)> = (0..=255u8)
        .map(|n| ([n; 32], format!("seed [{n}; 32]")))
        .collect();
    for (i, seed) in NAMED_SEEDS.iter().enumerate() {
        seeds.push((*seed, format!("storage-fault seed {i}")));
    }
    for (seed, label) in &seeds {
        // 32 zero bytes are the null txid and hash, in many a public log line (`by: 000…`);
        // no test uses them as a seed. Their derived secrets are still looked for.
        if *seed != [0; 32] {
            note(&mut secrets.bytes, *seed, format!("{label}: the seed"));
        }
        if let Ok(keys) = KeysManager::new(seed, Network::Regtest) {
            add_keys(&mut secrets, &keys, label);
        }
        if let Ok(m) = Mnemonic::from_entropy(seed) {
            add_words(&mut secrets, &m.to_words(), label);
        }
    }
    for words in TEST_WORDS {
        add_words(&mut secrets, words, "test words");
        if let Ok(seed) = NodeSeed::from_words(words, None) {
            if let Ok(keys) = KeysManager::from_seed(&seed, Network::Regtest) {
                add_keys(&mut secrets, &keys, "test words");
            }
        }
    }
    secrets
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// What of `secrets` `line` holds.
fn scan_line(secrets: &Secrets, line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let b = line.as_bytes();
    // Hex: every 64-digit window of every run of hex digits.
    let mut i = 0;
    while i < b.len() {
        if hex_value(b[i]).is_none() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && hex_value(b[i]).is_some() {
            i += 1;
        }
        let run = &b[start..i];
        for w in run.windows(64) {
            let mut key = [0u8; 32];
            for (k, pair) in key.iter_mut().zip(w.chunks(2)) {
                *k = (hex_value(pair[0]).unwrap_or(0) << 4) | hex_value(pair[1]).unwrap_or(0);
            }
            if let Some(what) = secrets.bytes.get(&key) {
                found.push(format!("{what} (hex)"));
            }
        }
    }
    // Debug byte lists: `[1, 2, 3, ...]`, every 32-byte window.
    for part in line.split('[').skip(1) {
        let list = part.split(']').next().unwrap_or("");
        let bytes: Vec<u8> = list
            .split(',')
            .map_while(|n| n.trim().parse::<u8>().ok())
            .collect();
        for w in bytes.windows(32) {
            let key: [u8; 32] = w.try_into().unwrap_or([0; 32]);
            if let Some(what) = secrets.bytes.get(&key) {
                found.push(format!("{what} (Debug bytes)"));
            }
        }
    }
    // Words: any 3 of a word list in a row.
    let words: Vec<String> = line
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    for run in words.windows(3) {
        let key = [run[0].clone(), run[1].clone(), run[2].clone()];
        if let Some(what) = secrets.word_runs.get(&key) {
            found.push(what.clone());
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Every `*.log` file in `dir` but `skip`: (files scanned, lines scanned, findings as
/// `file:line: what`).
fn scan_dir(secrets: &Secrets, dir: &Path, skip: Option<&Path>) -> (usize, usize, Vec<String>) {
    let mut files = 0;
    let mut lines = 0;
    let mut findings = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0, findings);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "log") || Some(path.as_path()) == skip {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        files += 1;
        let text = String::from_utf8_lossy(&bytes);
        for (n, line) in text.lines().enumerate() {
            lines += 1;
            for what in scan_line(secrets, line) {
                findings.push(format!("{}:{}: {what}", path.display(), n + 1));
            }
        }
    }
    findings.sort();
    (files, lines, findings)
}

fn own_log(dir: &Path) -> Option<PathBuf> {
    let name = std::env::current_exe()
        .ok()?
        .file_name()?
        .to_string_lossy()
        .into_owned();
    Some(dir.join(format!("{name}-{}.log", std::process::id())))
}

/// Run after the suite (`scripts/test-secrets.sh`): no test log holds a test secret.
#[test]
fn no_test_log_holds_a_secret() {
    if std::env::var_os(CHECK_ENV).is_none() {
        return;
    }
    let dir = common::trace::log_dir().expect("the test logs' dir");
    let secrets = test_secrets();
    let own = own_log(&dir);
    let (files, lines, findings) = scan_dir(&secrets, &dir, own.as_deref());
    println!(
        "log-secret check: {files} log files, {lines} lines in {}, {} secrets looked for",
        dir.display(),
        secrets.bytes.len() + secrets.word_runs.len()
    );
    // Not vacuous: the suite ran and logged (TRACE) before this check.
    assert!(
        files >= 10 && lines >= 1000,
        "too few logs to check: {files} files, {lines} lines"
    );
    assert!(
        findings.is_empty(),
        "{} secret(s) in the test logs:\n{}",
        findings.len(),
        findings
            .iter()
            .take(50)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Logs a seed on purpose, only when asked (`TERN_LOG_CANARY=1`).
#[test]
fn canary_logs_a_seed() {
    if std::env::var_os(CANARY_ENV).is_none() {
        return;
    }
    let seed = [7u8; 32];
    tracing::trace!(seed = ?seed, "canary: a seed in Debug form, on purpose");
    tracing::error!(
        "canary: a seed in hex, on purpose: {}",
        bitcoin::hex::DisplayHex::to_lower_hex_string(&seed[..])
    );
}

#[test]
fn the_check_catches_the_canary() {
    let dir = std::env::temp_dir().join(format!("tern-log-canary-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let secrets = test_secrets();
    let exe = std::env::current_exe().expect("exe");
    let status = std::process::Command::new(&exe)
        .args(["--exact", "canary_logs_a_seed", "--nocapture"])
        .env(CANARY_ENV, "1")
        .env(common::trace::LOG_DIR_ENV, &dir)
        .status()
        .expect("run the canary");
    assert!(status.success());
    let (files, _, findings) = scan_dir(&secrets, &dir, None);
    assert_eq!(files, 1, "the canary's own log file");
    assert!(
        findings
            .iter()
            .any(|f| f.ends_with("seed [7; 32]: the seed (Debug bytes)")),
        "{findings:?}"
    );
    assert!(
        findings
            .iter()
            .any(|f| f.ends_with("seed [7; 32]: the seed (hex)")),
        "{findings:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    // Each form is found inside a longer line, and public data is not a finding.
    let keys = KeysManager::new(&[9; 32], Network::Regtest).expect("keys");
    let node_id = keys.node_id().expect("id").to_string();
    let pcs = keys
        .channel_keys(2)
        .expect("keys")
        .per_commitment_secret((1 << 48) - 4);
    let pcs_hex = bitcoin::hex::DisplayHex::to_upper_hex_string(&pcs[..]);
    let words = Mnemonic::from_entropy(&[3; 32]).expect("words").to_words();
    let some: Vec<&str> = words.split(' ').skip(5).take(3).collect();
    assert_eq!(
        scan_line(&secrets, &format!("peer {node_id} connected")),
        Vec::<String>::new()
    );
    assert_eq!(
        scan_line(&secrets, &format!("msg=ab{pcs_hex}cd")),
        vec!["seed [9; 32]: channel 2 per-commitment secret #3 (hex)".to_string()]
    );
    assert_eq!(
        scan_line(&secrets, &format!("words: {}!", some.join(" "))),
        vec!["seed [3; 32]: BIP39 words".to_string()]
    );
    let node_secret = keys.node_secret_key().expect("key").secret_bytes();
    assert_eq!(
        scan_line(&secrets, &format!("key: Some({node_secret:?})")),
        vec!["seed [9; 32]: node secret key (Debug bytes)".to_string()]
    );
}
