//! BOLT 1 test vectors (Appendices A–D), loaded from `tests/vectors/bolt01-*.json`.

// This binary's TRACE log file, for the log-secret check (see common/trace.rs).
#[path = "common/trace.rs"]
mod trace;

use bitcoin::hex::FromHex;
use serde_json::Value;
use tern_core::proto::wire::codec::{decode_signed, decode_truncated, encode_signed_minimal};
use tern_core::proto::wire::{DecodeError, Message, Reader, ShortChannelId, TlvStream, WireWrite};

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

fn hex(s: &str) -> Vec<u8> {
    Vec::<u8>::from_hex(s).unwrap_or_else(|e| panic!("bad hex {s}: {e}"))
}

fn cases<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no array {key}"))
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {v}"))
}

#[test]
fn bigsize_decoding() {
    let v = load("bolt01-bigsize.json");
    let decoding = cases(&v, "decoding");
    assert_eq!(decoding.len(), 18);
    for case in decoding {
        let bytes = hex(s(case, "bytes"));
        let mut r = Reader::new(&bytes);
        let got = r.read_bigsize("value");
        if case.get("exp_error").is_some() {
            assert!(
                got.is_err(),
                "{}: expected failure, got {got:?}",
                s(case, "name")
            );
        } else {
            let want = case["value"].as_u64().expect("u64 value");
            assert_eq!(got, Ok(want), "{}", s(case, "name"));
            assert!(r.is_empty(), "{}: bytes left", s(case, "name"));
        }
    }
}

#[test]
fn bigsize_encoding() {
    let v = load("bolt01-bigsize.json");
    let encoding = cases(&v, "encoding");
    assert_eq!(encoding.len(), 8);
    for case in encoding {
        let value = case["value"].as_u64().expect("u64 value");
        let mut out = Vec::new();
        out.put_bigsize(value);
        assert_eq!(out, hex(s(case, "bytes")), "{}", s(case, "name"));
    }
}

#[test]
fn signed_integers() {
    let v = load("bolt01-signed-integers.json");
    let all = cases(&v, "cases");
    assert_eq!(all.len(), 23);
    for case in all {
        let value = case["value"].as_i64().expect("i64 value");
        let bytes = hex(s(case, "bytes"));
        assert_eq!(decode_signed(&bytes), Ok(value), "decode {value}");
        assert_eq!(encode_signed_minimal(value), bytes, "encode {value}");
    }
}

/// The test namespaces of BOLT 1 Appendix B, decoded with the wire module's building blocks.
/// Returns the decoded fields as `(tlv name, field, value as written in the spec)`.
fn decode_namespace(ns: &str, stream: &[u8]) -> Result<Vec<(String, String, String)>, DecodeError> {
    let known: &[u64] = if ns == "n1" {
        &[1, 2, 3, 254]
    } else {
        &[0, 11]
    };
    let tlvs = TlvStream::decode(stream, |t| known.contains(&t))?;
    let mut out = Vec::new();
    let mut push = |tlv: &str, field: &str, value: String| {
        out.push((tlv.to_string(), field.to_string(), value));
    };
    for rec in tlvs.records() {
        let v = rec.value.as_slice();
        let bad_len = DecodeError::InvalidTlvLength {
            tlv_type: rec.tlv_type,
            len: v.len(),
        };
        match (ns, rec.tlv_type) {
            ("n1", 1) => push(
                "tlv1",
                "amount_msat",
                decode_truncated(v, 8, "amount_msat")?.to_string(),
            ),
            ("n1", 2) => {
                let b: [u8; 8] = v.try_into().map_err(|_| bad_len)?;
                push(
                    "tlv2",
                    "scid",
                    ShortChannelId(u64::from_be_bytes(b)).to_string(),
                );
            }
            ("n1", 3) => {
                let mut r = Reader::new(v);
                let node_id = r.read_point("node_id")?;
                let a1 = r.read_u64("amount_msat_1")?;
                let a2 = r.read_u64("amount_msat_2")?;
                r.finish("tlv3")?;
                push("tlv3", "node_id", node_id.to_string());
                push("tlv3", "amount_msat_1", a1.to_string());
                push("tlv3", "amount_msat_2", a2.to_string());
            }
            ("n1", 254) => {
                let mut r = Reader::new(v);
                let d = r.read_u16("cltv_delta")?;
                r.finish("tlv4")?;
                push("tlv4", "cltv_delta", d.to_string());
            }
            ("n2", 0) => push(
                "tlv1",
                "amount_msat",
                decode_truncated(v, 8, "amount_msat")?.to_string(),
            ),
            ("n2", 11) => push(
                "tlv2",
                "cltv_expiry",
                decode_truncated(v, 4, "cltv_expiry")?.to_string(),
            ),
            _ => unreachable!("only known types are kept"),
        }
    }
    Ok(out)
}

/// Parses "`tlv3` `node_id`=02.. `amount_msat_1`=1" into `(tlv, field, value)` triples.
fn parse_values_as_written(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut tlv = String::new();
    for tok in text.split_whitespace() {
        match tok.split_once('=') {
            None => tlv = tok.trim_matches('`').to_string(),
            Some((field, value)) => {
                out.push((
                    tlv.clone(),
                    field.trim_matches('`').to_string(),
                    value.to_string(),
                ));
            }
        }
    }
    out
}

struct TlvCase {
    namespaces: Vec<String>,
    valid: bool,
    stream: Vec<u8>,
    values: Option<String>,
    line: u64,
}

fn tlv_cases() -> Vec<TlvCase> {
    let v = load("bolt01-tlv.json");
    let mut out = Vec::new();
    for group in cases(&v, "groups") {
        let namespaces: Vec<String> = cases(group, "namespaces")
            .iter()
            .map(|n| n.as_str().expect("namespace").to_string())
            .collect();
        for case in cases(group, "cases") {
            out.push(TlvCase {
                namespaces: namespaces.clone(),
                valid: case["valid"].as_bool().expect("valid flag"),
                stream: hex(s(case, "stream")),
                values: case
                    .get("values_as_written")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                line: case["line"].as_u64().expect("line"),
            });
        }
    }
    out
}

#[test]
fn tlv_streams_from_appendix_b() {
    let all = tlv_cases();
    assert_eq!(all.len(), 57);
    let mut checked_values = 0;
    for case in &all {
        for ns in &case.namespaces {
            let got = decode_namespace(ns, &case.stream);
            assert_eq!(
                got.is_ok(),
                case.valid,
                "line {} in {ns}: {got:?}",
                case.line
            );
            if let (Some(text), Ok(values)) = (&case.values, &got) {
                assert_eq!(values, &parse_values_as_written(text), "line {}", case.line);
                checked_values += 1;
            }
        }
    }
    assert_eq!(checked_values, 12);
}

fn first_type(stream: &[u8]) -> Option<u64> {
    Reader::new(stream).read_bigsize("type").ok()
}

#[test]
fn tlv_stream_appending_rules() {
    let all = tlv_cases();
    let n1 = |c: &&TlvCase| c.namespaces.iter().any(|n| n == "n1");
    let valid: Vec<&TlvCase> = all
        .iter()
        .filter(n1)
        .filter(|c| c.valid && !c.stream.is_empty())
        .collect();
    let invalid: Vec<&TlvCase> = all.iter().filter(n1).filter(|c| !c.valid).collect();
    assert!(valid.len() >= 10 && invalid.len() >= 30);
    let (mut failures, mut successes) = (0, 0);
    for a in &valid {
        for b in &invalid {
            let joined = [a.stream.as_slice(), b.stream.as_slice()].concat();
            assert!(
                decode_namespace("n1", &joined).is_err(),
                "lines {}+{}",
                a.line,
                b.line
            );
            failures += 1;
        }
        for b in &valid {
            // Each valid n1 stream is one record: append only strictly higher types.
            let (Some(ta), Some(tb)) = (first_type(&a.stream), first_type(&b.stream)) else {
                continue;
            };
            let joined = [a.stream.as_slice(), b.stream.as_slice()].concat();
            let got = decode_namespace("n1", &joined);
            if ta < tb {
                assert!(got.is_ok(), "lines {}+{}: {got:?}", a.line, b.line);
                successes += 1;
            } else {
                assert!(got.is_err(), "lines {}+{} out of order", a.line, b.line);
            }
        }
    }
    assert!(failures > 300 && successes > 20, "{failures} {successes}");
}

#[test]
fn init_extension_vectors() {
    let v = load("bolt01-init-extension.json");
    let all = cases(&v, "cases");
    assert_eq!(all.len(), 5);
    for case in all {
        let bytes = hex(s(case, "message"));
        let valid = case["valid"].as_bool().expect("valid flag");
        let got = Message::decode(&bytes);
        assert_eq!(got.is_ok(), valid, "{}: {got:?}", s(case, "comment"));
        if let Ok(msg) = got {
            assert!(matches!(msg, Message::Init(_)), "{}", s(case, "comment"));
        }
    }
}
