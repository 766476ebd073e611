//! Seed inputs for each fuzz target, made from the repository's files when the fuzzer starts:
//! the golden records (`core/tests/fixtures/records`), the BOLT test vectors
//! (`core/tests/vectors`), and, for wire messages, one valid message of every type the decoder
//! knows, grown from the decoder's own errors (so a message type added later gets its seed
//! without anyone writing one). Nothing here is a binary blob that cannot be rebuilt.

use std::path::{Path, PathBuf};

use bitcoin::hex::FromHex;
use serde_json::Value;
use tern_proto::wire::{DecodeError, Message};

/// The repository root (both compilers of this file live one level below it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("a parent directory")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn hex(s: &str) -> Vec<u8> {
    Vec::<u8>::from_hex(s.trim()).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}

/// The golden fixtures whose name starts with `prefix`, decoded from hex.
fn fixtures(prefix: &str) -> Vec<Vec<u8>> {
    let dir = repo_root().join("core/tests/fixtures/records");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "hex")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no fixtures {prefix}*.hex");
    names.iter().map(|p| hex(&read(p))).collect()
}

fn vector(name: &str) -> Value {
    let path = repo_root().join("core/tests/vectors").join(name);
    serde_json::from_str(&read(&path)).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// Every string under key `key`, anywhere in `v`, decoded from hex.
fn hex_strings(v: &Value, key: &str, out: &mut Vec<Vec<u8>>) {
    match v {
        Value::Object(map) => {
            for (k, value) in map {
                match value {
                    Value::String(s) if k == key => out.push(hex(s)),
                    _ => hex_strings(value, key, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| hex_strings(i, key, out)),
        _ => {}
    }
}

fn strings_of(file: &str, key: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    hex_strings(&vector(file), key, &mut out);
    assert!(!out.is_empty(), "no {key} in {file}");
    out
}

/// Every message type [`Message::decode`] knows (tried over all 65,536 type numbers: a known
/// type fails on an empty payload with something other than "unknown type", or decodes to a
/// known message).
pub fn known_message_types() -> Vec<u16> {
    (0..=u16::MAX)
        .filter(|t| match Message::decode(&t.to_be_bytes()) {
            Ok(Message::Unknown { .. }) | Err(DecodeError::UnknownEvenMessageType(_)) => false,
            Ok(_) | Err(_) => true,
        })
        .collect()
}

/// A valid point (the secp256k1 generator) and a valid compact signature (r = s = 1).
const POINT: [u8; 33] = {
    let x = *b"\x79\xbe\x66\x7e\xf9\xdc\xbb\xac\x55\xa0\x62\x95\xce\x87\x0b\x07\x02\x9b\xfc\xdb\x2d\xce\x28\xd9\x59\xf2\x81\x5b\x16\xf8\x17\x98";
    let mut p = [2u8; 33];
    let mut i = 0;
    while i < 32 {
        p[i + 1] = x[i];
        i += 1;
    }
    p
};

fn signature() -> [u8; 64] {
    let mut s = [0u8; 64];
    s[31] = 1;
    s[63] = 1;
    s
}

/// One valid encoding of message type `msg_type`, grown field by field: whenever the decoder
/// runs out of input it says how many bytes the field needs, and those are appended (`fill`
/// bytes); a field it then rejects as a point or a signature gets a valid one instead.
pub fn grow_message(msg_type: u16, fill: u8) -> Option<Vec<u8>> {
    let mut buf = msg_type.to_be_bytes().to_vec();
    let mut last = 0..0;
    for _ in 0..256 {
        match Message::decode(&buf) {
            Ok(_) => return Some(buf),
            Err(DecodeError::UnexpectedEof {
                needed, remaining, ..
            }) if needed > remaining && needed - remaining <= 2048 => {
                let start = buf.len();
                buf.resize(start + needed - remaining, fill);
                last = start..buf.len();
            }
            Err(DecodeError::InvalidPoint { .. }) if last.len() == POINT.len() => {
                buf[last.clone()].copy_from_slice(&POINT);
            }
            Err(DecodeError::InvalidSignature { .. }) if last.len() == 64 => {
                buf[last.clone()].copy_from_slice(&signature());
            }
            Err(_) => return None,
        }
    }
    None
}

/// Seeds of `wire_message`: per known type, the grown message with zero and with 0x01 fill,
/// each also with an unknown odd extension record (type 65,537) where that still decodes; and
/// the BOLT 1 message-extension vectors.
pub fn wire_messages() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for t in known_message_types() {
        for fill in [0u8, 1] {
            let Some(msg) = grow_message(t, fill) else {
                continue;
            };
            // An odd TLV record of type 65,537 (BigSize fe00010001), one byte long.
            let extended = [&msg[..], &[0xfe, 0, 1, 0, 1, 1, 0x2a]].concat();
            if Message::decode(&extended).is_ok() {
                out.push(extended);
            }
            out.push(msg);
        }
    }
    out.extend(strings_of("bolt01-init-extension.json", "message"));
    out
}

/// The BOLT 8 vector's first two ciphertexts of the message test (a decryptor with its keys
/// reads them in order).
fn vector_frames(v: &Value) -> Vec<u8> {
    let outputs = v["message_encryption"]["outputs"]
        .as_array()
        .expect("message outputs");
    outputs
        .iter()
        .take_while(|o| o["index"].as_u64().is_some_and(|i| i < 2))
        .flat_map(|o| hex(o["ciphertext"].as_str().expect("ciphertext")))
        .collect()
}

/// The seeds of `target`, or `None` for a target this file does not seed (`store_db`'s come
/// from `core_targets::store_db_seeds`).
pub fn for_target(target: &str) -> Option<Vec<Vec<u8>>> {
    let with_selectors = |streams: Vec<Vec<u8>>, selectors: &[u8]| -> Vec<Vec<u8>> {
        streams
            .iter()
            .flat_map(|s| selectors.iter().map(move |sel| [&[*sel][..], s].concat()))
            .collect()
    };
    Some(match target {
        "wire_message" => wire_messages(),
        "tlv_stream" => with_selectors(strings_of("bolt01-tlv.json", "stream"), &[0, 1, 2, 3]),
        "bigsize" => {
            let mut s = strings_of("bolt01-bigsize.json", "bytes");
            s.extend(strings_of("bolt01-signed-integers.json", "bytes"));
            s
        }
        "handshake" => {
            let v = vector("bolt08-transport.json");
            let mut out = Vec::new();
            for (role, selector) in [("responder", 0u8), ("initiator", 1)] {
                for case in v[role].as_array().expect("cases") {
                    let mut seed = vec![selector];
                    for step in case["steps"].as_array().expect("steps") {
                        if let Some(input) = step["input"].as_str() {
                            seed.extend(hex(input));
                        }
                    }
                    out.push(seed);
                }
            }
            // The successful responder handshake, then the session's first two messages.
            let mut session = out[0].clone();
            session.extend(vector_frames(&v));
            out.push(session);
            out
        }
        "frames" => {
            let frames = vector_frames(&vector("bolt08-transport.json"));
            vec![
                [&[0u8][..], &frames].concat(),
                [&[0x40u8][..], &frames].concat(),
                b"\x01hello\xffworld\xff".to_vec(),
                [&[0x21u8][..], &[0xffu8; 520][..]].concat(),
            ]
        }
        "channel_record" => fixtures("channel_v1_"),
        "event_record" => fixtures("event_v1_"),
        "chain_state" => {
            let mut s = fixtures("chain_state_v1");
            s.push(b"\x01{\"tip\":null,\"txs\":{},\"outpoints\":{}}".to_vec());
            s
        }
        "fee_cache" => {
            let mut s = fixtures("fee_cache_v1");
            // Estimates no server should send: negative, huge, below the floor.
            s.push(
                b"\x01{\"fetched_at\":0,\"estimates\":{\"1\":-1.0,\"2\":1e300,\"144\":0.5}}"
                    .to_vec(),
            );
            s
        }
        _ => return None,
    })
}

/// The kept crashers of `target` (`fuzz/regressions/<target>/*.hex`: the input as one line
/// of hex, so that a diff shows it), each with its file name.
pub fn regressions(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = repo_root().join("fuzz/regressions").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "hex"))
        .map(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            (name.unwrap_or_default(), hex(&read(&p)))
        })
        .collect();
    out.sort();
    out
}
