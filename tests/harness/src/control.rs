//! The daemon's control protocol: one JSON request line in, one JSON response line out, over
//! the Unix socket `D/tern.sock`; and the client side of it.
//!
//! ```text
//! → {"cmd":"open","peer":"02ab…@127.0.0.1:9735","amount_sat":200000,"push_msat":0,"public":false}
//! ← {"ok":true,"result":{"temporary_channel_id":"…"}}
//! ← {"ok":false,"error":{"kind":"node","message":"peer … is not connected"}}
//! → {"cmd":"send","address":"bcrt1q…","amount_sat":50000,"all":false,"feerate_sat_vb":2}
//! ← {"ok":true,"result":{"txid":"…"}}
//! ```

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The control socket's file name inside the data dir.
pub const SOCKET_FILE: &str = "tern.sock";

/// Longest request line the daemon reads.
pub const MAX_LINE: usize = 64 * 1024;

/// The socket path of the daemon at `data_dir`.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// One request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    /// Node id, listen address, network, tip, halted.
    Info,
    /// A new on-chain address.
    NewAddress,
    /// On-chain and channel balances.
    Balance,
    /// Connect to `peer` (`<node id>@<host:port>`).
    Connect {
        /// `<node id>@<host:port>`.
        peer: String,
    },
    /// Open a channel.
    Open {
        /// `<node id>@<host:port>`.
        peer: String,
        /// Channel size.
        amount_sat: u64,
        /// Amount given to the peer.
        #[serde(default)]
        push_msat: u64,
        /// Announce the channel.
        #[serde(default)]
        public: bool,
    },
    /// Every channel.
    Channels,
    /// Connected peers.
    Peers,
    /// Pending events; `ack` marks the returned ones handled.
    Events {
        /// Mark them handled.
        #[serde(default)]
        ack: bool,
    },
    /// Pay `amount_sat` (or `all` that is spendable) to `address`, at `feerate_sat_vb` or the
    /// node's estimate.
    Send {
        /// The recipient, an address of the node's network.
        address: String,
        /// Exactly this much (fee on top).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        amount_sat: Option<u64>,
        /// Everything spendable instead (coins locked for opens excepted), less the fee.
        #[serde(default)]
        all: bool,
        /// Feerate in sat/vB (default: the node's ~6-block estimate).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        feerate_sat_vb: Option<u64>,
    },
    /// Close a channel cooperatively, paying our share to `address` (default: a fresh
    /// wallet address).
    Close {
        /// The channel id (64 hex digits).
        channel_id: String,
        /// Where our share goes (an address of the node's network).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
    },
    /// Force-close a channel (broadcast our commitment).
    ForceClose {
        /// The channel id (64 hex digits).
        channel_id: String,
    },
    /// One sync now.
    Sync,
    /// Stop the daemon.
    Stop,
}

/// An error answered by the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// `node` (the node refused or failed), `invalid_input`, `halted` or `protocol`.
    pub kind: String,
    /// For people.
    pub message: String,
}

/// One response line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request succeeded.
    pub ok: bool,
    /// The result, when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error, when not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl Response {
    /// A success.
    pub fn ok(result: Value) -> Self {
        Response {
            ok: true,
            result: Some(result),
            error: None,
        }
    }

    /// A failure.
    pub fn err(kind: &str, message: impl Into<String>) -> Self {
        Response {
            ok: false,
            result: None,
            error: Some(ErrorBody {
                kind: kind.to_string(),
                message: message.into(),
            }),
        }
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Nothing listens on the socket.
    #[error("no daemon running at {0} (start one with `tern daemon --data-dir {0} ...`)")]
    NoDaemon(String),
    /// The daemon answered an error.
    #[error("{}", .0.message)]
    Daemon(ErrorBody),
    /// The socket broke or the answer was not understood.
    #[error("control socket: {0}")]
    Io(String),
}

impl CallError {
    /// The CLI's exit code for this error: 3 no daemon, 2 bad input, 1 anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            CallError::NoDaemon(_) => 3,
            CallError::Daemon(b) if b.kind == "invalid_input" => 2,
            _ => 1,
        }
    }
}

/// Sends `request` to the daemon at `data_dir` and returns its result. Waits up to `timeout`
/// for the answer (an `open` can take the connect timeout).
pub fn call(data_dir: &Path, request: &Request, timeout: Duration) -> Result<Value, CallError> {
    let path = socket_path(data_dir);
    let shown = data_dir.display().to_string();
    let mut stream = match UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(CallError::NoDaemon(shown))
        }
        Err(e) => return Err(CallError::Io(format!("{}: {e}", path.display()))),
    };
    let io = |e: std::io::Error| CallError::Io(e.to_string());
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut line = serde_json::to_string(request).map_err(|e| CallError::Io(e.to_string()))?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io)?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).map_err(io)?;
    if answer.is_empty() {
        return Err(CallError::Io("the daemon closed the connection".into()));
    }
    let response: Response = serde_json::from_str(&answer)
        .map_err(|e| CallError::Io(format!("bad answer {answer:?}: {e}")))?;
    match (response.ok, response.result, response.error) {
        (true, Some(result), _) => Ok(result),
        (false, _, Some(error)) => Err(CallError::Daemon(error)),
        _ => Err(CallError::Io(format!("bad answer {answer:?}"))),
    }
}

/// Splits `<node id>@<host:port>`, checking both halves.
pub fn parse_peer(peer: &str) -> Result<(bitcoin::secp256k1::PublicKey, String), String> {
    let (id, addr) = peer
        .split_once('@')
        .ok_or_else(|| format!("peer {peer:?} is not <node id>@<host:port>"))?;
    let node_id = id
        .parse::<bitcoin::secp256k1::PublicKey>()
        .map_err(|_| format!("node id {id:?} is not a public key (66 hex digits)"))?;
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("address {addr:?} is not host:port"))?;
    if host.is_empty() {
        return Err(format!("address {addr:?} has no host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => {}
        _ => return Err(format!("address {addr:?}: port {port:?} is not 1-65535")),
    }
    Ok((node_id, addr.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let r = Request::Open {
            peer: "x@y:1".into(),
            amount_sat: 5,
            push_msat: 0,
            public: true,
        };
        let s = serde_json::to_string(&r).expect("json");
        assert!(s.contains("\"cmd\":\"open\""), "{s}");
        assert_eq!(serde_json::from_str::<Request>(&s).expect("parse"), r);
        let s = serde_json::to_string(&Request::NewAddress).expect("json");
        assert_eq!(s, r#"{"cmd":"new-address"}"#);
    }

    #[test]
    fn peers_are_checked() {
        let id = "02".to_string() + &"11".repeat(32);
        assert!(
            parse_peer(&format!("{id}@127.0.0.1:9735")).is_err(),
            "not on the curve"
        );
        let id = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
        assert!(parse_peer(&format!("{id}@127.0.0.1:9735")).is_ok());
        assert!(parse_peer(&format!("{id}@127.0.0.1")).is_err());
        assert!(parse_peer(&format!("{id}@:9735")).is_err());
        assert!(parse_peer(&format!("{id}@h:0")).is_err());
        assert!(parse_peer(id).is_err());
    }
}
