//! HTTP server: routing of the Esplora and `/devnet/` control endpoints, request counting and
//! fault injection. Built on hyper directly so that a fault can drop a connection mid-request.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bitcoin::address::NetworkUnchecked;
use bitcoin::consensus::encode::deserialize_hex;
use bitcoin::hashes::sha256;
use bitcoin::{Address, Amount, BlockHash, Network, Transaction, Txid};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::esplora::{self, Reply, ScriptQuery};
use crate::state::Inner;

/// Largest request body accepted (a big transaction in hex is far below this).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with this HTTP status (e.g. 500, 429) instead of the real answer.
    Status(u16),
    /// Answer normally after this many milliseconds.
    LatencyMs(u64),
    /// Close the connection without answering.
    Drop,
    /// Answer with this status and a `Retry-After: seconds` header (a rate limit that says
    /// when to come back).
    RetryAfter {
        /// HTTP status, e.g. 429 or 503.
        status: u16,
        /// The header's value, in seconds.
        seconds: u64,
    },
    /// The real answer's body cut to this many bytes (a complete, short answer).
    Truncate(usize),
    /// The real answer's headers (its full `Content-Length`) and this many bytes of its body,
    /// then the connection closed: a reset mid-body.
    ResetAfter(usize),
    /// The real answer's body followed by this many spaces (still valid JSON, just huge).
    Oversize(usize),
    /// Answer 200 with this body instead of the real one (a lie: another proof, a forged
    /// status, a header of another block).
    Body(String),
}

/// One fault rule: the next `count` requests matching `path` (exact, or a prefix when it ends
/// with `*`) and `method` (any when absent) get `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    /// Path, exact or a prefix ending in `*`.
    pub path: String,
    /// HTTP method to match, any when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// What happens.
    pub kind: FaultKind,
    /// How many requests it still applies to.
    pub count: u32,
    /// Only requests to the listener on this port (the devnet's own or a
    /// [`crate::Mirror`]'s); any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl FaultRule {
    /// The next `count` requests to `path` (any method) get `kind`.
    pub fn new(path: &str, kind: FaultKind, count: u32) -> Self {
        FaultRule {
            path: path.into(),
            method: None,
            kind,
            count,
            port: None,
        }
    }

    /// The same rule, for requests to the listener on `port` only.
    pub fn on_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    fn matches(&self, method: &Method, path: &str, port: u16) -> bool {
        let path_ok = match self.path.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == self.path,
        };
        let method_ok = self
            .method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method.as_str()));
        let port_ok = self.port.is_none_or(|p| p == port);
        path_ok && method_ok && port_ok && self.count > 0
    }
}

/// Requests counted since start (or the last reset); `/devnet/` control calls are not counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    /// All counted requests.
    pub total: u64,
    /// By route, e.g. `"GET /scripthash/:hash/txs"`.
    pub by_route: BTreeMap<String, u64>,
    /// By concrete method and path, e.g. `"GET /blocks/tip/hash"`.
    pub by_path: BTreeMap<String, u64>,
    /// Response body bytes sent for the counted requests.
    #[serde(default)]
    pub bytes: u64,
    /// By the port of the listener asked (the devnet's own, a [`crate::Mirror`]'s).
    #[serde(default)]
    pub by_port: BTreeMap<u16, u64>,
}

impl RequestCounts {
    /// Count for a route such as `"GET /blocks/tip/hash"` (0 when never requested).
    pub fn route(&self, route: &str) -> u64 {
        self.by_route.get(route).copied().unwrap_or(0)
    }
}

/// One transaction posted through `POST /tx` (the Esplora broadcast endpoint), in the order
/// received: what a test asks to know exactly which transactions a node broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostedTx {
    /// The posted transaction's txid.
    pub txid: Txid,
    /// Whether the mempool accepted it (a transaction it already holds counts as accepted,
    /// as Core's "already in the mempool" is for a broadcaster).
    pub accepted: bool,
    /// Why it was refused, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// State shared by the server and the library handle.
#[derive(Debug)]
pub struct Shared {
    /// Chain, mempool, policy, faucet.
    pub inner: Mutex<Inner>,
    /// Request counters.
    pub counts: Mutex<RequestCounts>,
    /// Transactions posted through `POST /tx` since start or the last reset of the counts
    /// (decoded ones only: a body that is no transaction has no txid).
    pub posted: Mutex<Vec<PostedTx>>,
    /// Fault rules.
    pub faults: Mutex<Vec<FaultRule>>,
}

/// Locks a mutex, recovering the data if a previous holder panicked (state stays usable).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A parsed request.
#[derive(Debug)]
enum Route {
    FeeEstimates,
    TipHash,
    TipHeight,
    Blocks(Option<u32>),
    BlockHeight(u32),
    Block(BlockHash),
    BlockHeader(BlockHash),
    BlockStatus(BlockHash),
    BlockRaw(BlockHash),
    BlockTxids(BlockHash),
    BlockTxid(BlockHash, usize),
    BlockTxs(BlockHash, usize),
    Tx(Txid),
    TxRaw(Txid),
    TxHex(Txid),
    TxStatus(Txid),
    MerkleProof(Txid),
    MerkleblockProof(Txid),
    Outspend(Txid, u32),
    Outspends(Txid),
    PostTx,
    Script(sha256::Hash, Option<String>, ScriptQuery),
    Mempool,
    MempoolTxids,
    MempoolRecent,
    Control(&'static str),
    Invalid(String),
    Unknown,
}

fn parse<T: FromStr>(s: &str, what: &str) -> Result<T, Route> {
    s.parse()
        .map_err(|_| Route::Invalid(format!("invalid {what}: {s}")))
}

fn script_route(sh: sha256::Hash, address: Option<String>, rest: &[&str]) -> Result<Route, Route> {
    let q = match rest {
        [] => ScriptQuery::Stats,
        ["txs"] => ScriptQuery::Txs,
        ["txs", "chain"] => ScriptQuery::TxsChain(None),
        ["txs", "chain", last] => ScriptQuery::TxsChain(Some(parse(last, "txid")?)),
        ["txs", "mempool"] => ScriptQuery::TxsMempool,
        ["utxo"] => ScriptQuery::Utxo,
        _ => return Ok(Route::Unknown),
    };
    Ok(Route::Script(sh, address, q))
}

fn route(method: &Method, path: &str) -> Route {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let r = (|| -> Result<Route, Route> {
        Ok(match (method, segs.as_slice()) {
            (&Method::GET, ["fee-estimates"]) => Route::FeeEstimates,
            (&Method::GET, ["blocks", "tip", "hash"]) => Route::TipHash,
            (&Method::GET, ["blocks", "tip", "height"]) => Route::TipHeight,
            (&Method::GET, ["blocks"]) => Route::Blocks(None),
            (&Method::GET, ["blocks", h]) => Route::Blocks(Some(parse(h, "height")?)),
            (&Method::GET, ["block-height", h]) => Route::BlockHeight(parse(h, "height")?),
            (&Method::GET, ["block", h]) => Route::Block(parse(h, "block hash")?),
            (&Method::GET, ["block", h, "header"]) => Route::BlockHeader(parse(h, "block hash")?),
            (&Method::GET, ["block", h, "status"]) => Route::BlockStatus(parse(h, "block hash")?),
            (&Method::GET, ["block", h, "raw"]) => Route::BlockRaw(parse(h, "block hash")?),
            (&Method::GET, ["block", h, "txids"]) => Route::BlockTxids(parse(h, "block hash")?),
            (&Method::GET, ["block", h, "txid", i]) => {
                Route::BlockTxid(parse(h, "block hash")?, parse(i, "index")?)
            }
            (&Method::GET, ["block", h, "txs"]) => Route::BlockTxs(parse(h, "block hash")?, 0),
            (&Method::GET, ["block", h, "txs", i]) => {
                Route::BlockTxs(parse(h, "block hash")?, parse(i, "index")?)
            }
            (&Method::GET, ["tx", t]) => Route::Tx(parse(t, "txid")?),
            (&Method::GET, ["tx", t, "raw"]) => Route::TxRaw(parse(t, "txid")?),
            (&Method::GET, ["tx", t, "hex"]) => Route::TxHex(parse(t, "txid")?),
            (&Method::GET, ["tx", t, "status"]) => Route::TxStatus(parse(t, "txid")?),
            (&Method::GET, ["tx", t, "merkle-proof"]) => Route::MerkleProof(parse(t, "txid")?),
            (&Method::GET, ["tx", t, "merkleblock-proof"]) => {
                Route::MerkleblockProof(parse(t, "txid")?)
            }
            (&Method::GET, ["tx", t, "outspend", v]) => {
                Route::Outspend(parse(t, "txid")?, parse(v, "output index")?)
            }
            (&Method::GET, ["tx", t, "outspends"]) => Route::Outspends(parse(t, "txid")?),
            (&Method::POST, ["tx"]) => Route::PostTx,
            (&Method::GET, ["scripthash", h, rest @ ..]) => {
                script_route(parse(h, "script hash")?, None, rest)?
            }
            (&Method::GET, ["address", a, rest @ ..]) => {
                let address: Address<NetworkUnchecked> = parse(a, "address")?;
                let address = address
                    .require_network(Network::Regtest)
                    .map_err(|_| Route::Invalid(format!("address {a} is not a regtest address")))?;
                let sh = crate::chain::script_hash(&address.script_pubkey());
                script_route(sh, Some(a.to_string()), rest)?
            }
            (&Method::GET, ["mempool"]) => Route::Mempool,
            (&Method::GET, ["mempool", "txids"]) => Route::MempoolTxids,
            (&Method::GET, ["mempool", "recent"]) => Route::MempoolRecent,
            (&Method::POST, ["devnet", "mine"]) => Route::Control("mine"),
            (&Method::POST, ["devnet", "faucet"]) => Route::Control("faucet"),
            (&Method::POST, ["devnet", "reorg"]) => Route::Control("reorg"),
            (&Method::POST, ["devnet", "drop-mempool-tx"]) => Route::Control("drop-mempool-tx"),
            (&Method::POST, ["devnet", "fee-estimates"]) => Route::Control("fee-estimates"),
            (&Method::GET, ["devnet", "faults"]) => Route::Control("faults-list"),
            (&Method::POST, ["devnet", "faults"]) => Route::Control("faults-add"),
            (&Method::DELETE, ["devnet", "faults"]) => Route::Control("faults-clear"),
            (&Method::GET, ["devnet", "requests"]) => Route::Control("requests"),
            (&Method::POST, ["devnet", "requests", "reset"]) => Route::Control("requests-reset"),
            (&Method::GET, ["devnet", "posted"]) => Route::Control("posted"),
            (&Method::GET, ["devnet", "info"]) => Route::Control("info"),
            _ => Route::Unknown,
        })
    })();
    r.unwrap_or_else(|e| e)
}

/// The route template used for counting.
fn template(route: &Route) -> &'static str {
    match route {
        Route::FeeEstimates => "GET /fee-estimates",
        Route::TipHash => "GET /blocks/tip/hash",
        Route::TipHeight => "GET /blocks/tip/height",
        Route::Blocks(None) => "GET /blocks",
        Route::Blocks(Some(_)) => "GET /blocks/:start_height",
        Route::BlockHeight(_) => "GET /block-height/:height",
        Route::Block(_) => "GET /block/:hash",
        Route::BlockHeader(_) => "GET /block/:hash/header",
        Route::BlockStatus(_) => "GET /block/:hash/status",
        Route::BlockRaw(_) => "GET /block/:hash/raw",
        Route::BlockTxids(_) => "GET /block/:hash/txids",
        Route::BlockTxid(..) => "GET /block/:hash/txid/:index",
        Route::BlockTxs(..) => "GET /block/:hash/txs",
        Route::Tx(_) => "GET /tx/:txid",
        Route::TxRaw(_) => "GET /tx/:txid/raw",
        Route::TxHex(_) => "GET /tx/:txid/hex",
        Route::TxStatus(_) => "GET /tx/:txid/status",
        Route::MerkleProof(_) => "GET /tx/:txid/merkle-proof",
        Route::MerkleblockProof(_) => "GET /tx/:txid/merkleblock-proof",
        Route::Outspend(..) => "GET /tx/:txid/outspend/:vout",
        Route::Outspends(_) => "GET /tx/:txid/outspends",
        Route::PostTx => "POST /tx",
        Route::Script(_, address, q) => match (address.is_some(), q) {
            (false, ScriptQuery::Stats) => "GET /scripthash/:hash",
            (false, ScriptQuery::Txs) => "GET /scripthash/:hash/txs",
            (false, ScriptQuery::TxsChain(_)) => "GET /scripthash/:hash/txs/chain",
            (false, ScriptQuery::TxsMempool) => "GET /scripthash/:hash/txs/mempool",
            (false, ScriptQuery::Utxo) => "GET /scripthash/:hash/utxo",
            (true, ScriptQuery::Stats) => "GET /address/:address",
            (true, ScriptQuery::Txs) => "GET /address/:address/txs",
            (true, ScriptQuery::TxsChain(_)) => "GET /address/:address/txs/chain",
            (true, ScriptQuery::TxsMempool) => "GET /address/:address/txs/mempool",
            (true, ScriptQuery::Utxo) => "GET /address/:address/utxo",
        },
        Route::Mempool => "GET /mempool",
        Route::MempoolTxids => "GET /mempool/txids",
        Route::MempoolRecent => "GET /mempool/recent",
        Route::Control(_) => "control",
        Route::Invalid(_) => "invalid",
        Route::Unknown => "unknown",
    }
}

fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

fn into_response(reply: Reply) -> Response<Full<Bytes>> {
    match reply {
        Reply::Text(t) => respond(StatusCode::OK, "text/plain", t),
        Reply::Json(v) => respond(StatusCode::OK, "application/json", v.to_string()),
        Reply::Raw(b) => respond(StatusCode::OK, "application/octet-stream", b),
        Reply::NotFound(m) => respond(StatusCode::NOT_FOUND, "text/plain", m),
        Reply::BadRequest(m) => respond(StatusCode::BAD_REQUEST, "text/plain", m),
    }
}

/// Returned to hyper to close the connection without an answer (the `drop` fault).
#[derive(Debug)]
struct DroppedByFault;

impl std::fmt::Display for DroppedByFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DroppedByFault {}

async fn handle(
    shared: Arc<Shared>,
    port: u16,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, DroppedByFault> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = route(&method, &path);
    let mut body_fault = None;
    if !matches!(route, Route::Control(_)) {
        {
            let mut counts = lock(&shared.counts);
            counts.total += 1;
            *counts.by_port.entry(port).or_default() += 1;
            *counts
                .by_route
                .entry(template(&route).to_string())
                .or_default() += 1;
            *counts
                .by_path
                .entry(format!("{method} {path}"))
                .or_default() += 1;
        }
        let fault = {
            let mut faults = lock(&shared.faults);
            let hit = faults.iter_mut().find(|r| r.matches(&method, &path, port));
            hit.map(|r| {
                r.count -= 1;
                r.kind.clone()
            })
        };
        match fault {
            Some(FaultKind::Status(code)) => {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return Ok(respond(
                    status,
                    "text/plain",
                    format!("injected fault: HTTP {code}"),
                ));
            }
            Some(FaultKind::RetryAfter { status, seconds }) => {
                let code = StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
                let mut resp = respond(
                    code,
                    "text/plain",
                    format!("injected fault: HTTP {status}, retry after {seconds} s"),
                );
                resp.headers_mut()
                    .insert(hyper::header::RETRY_AFTER, seconds.into());
                return Ok(resp);
            }
            Some(FaultKind::Drop) => return Err(DroppedByFault),
            Some(FaultKind::LatencyMs(ms)) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Some(kind) => body_fault = Some(kind),
            None => {}
        }
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(respond(
                StatusCode::BAD_REQUEST,
                "text/plain",
                format!("bad body: {e}"),
            ))
        }
    };
    let counted = !matches!(route, Route::Control(_));
    let mut response = into_response(execute(&shared, route, &body));
    if let Some(kind) = body_fault {
        response = rewrite_body(response, kind).await;
    }
    if counted {
        use hyper::body::Body;
        let len = response.body().size_hint().exact().unwrap_or(0);
        lock(&shared.counts).bytes += len;
    }
    Ok(response)
}

/// Applies a body fault to a real answer.
async fn rewrite_body(response: Response<Full<Bytes>>, kind: FaultKind) -> Response<Full<Bytes>> {
    let (mut parts, body) = response.into_parts();
    let real = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let new: Bytes = match kind {
        FaultKind::Truncate(n) => real.slice(..n.min(real.len())),
        FaultKind::ResetAfter(n) => {
            // The full length announced, fewer bytes sent: hyper ends the connection.
            parts
                .headers
                .insert(hyper::header::CONTENT_LENGTH, real.len().into());
            real.slice(..n.min(real.len().saturating_sub(1)))
        }
        FaultKind::Oversize(n) => {
            let mut v = real.to_vec();
            v.resize(real.len() + n, b' ');
            v.into()
        }
        FaultKind::Body(text) => {
            parts.status = StatusCode::OK;
            text.into()
        }
        _ => real,
    };
    Response::from_parts(parts, Full::new(new))
}

fn execute(shared: &Shared, route: Route, body: &[u8]) -> Reply {
    if let Route::Control(name) = route {
        return control(shared, name, body);
    }
    let mut inner = lock(&shared.inner);
    let chain = &inner.chain;
    match route {
        Route::FeeEstimates => Reply::Json(json!(inner
            .fee_estimates
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect::<serde_json::Map<_, _>>())),
        Route::TipHash => esplora::tip_hash(chain),
        Route::TipHeight => esplora::tip_height(chain),
        Route::Blocks(start) => esplora::blocks(chain, start),
        Route::BlockHeight(h) => esplora::block_height(chain, h),
        Route::Block(h) => esplora::block(chain, &h),
        Route::BlockHeader(h) => esplora::block_header(chain, &h),
        Route::BlockStatus(h) => esplora::block_status(chain, &h),
        Route::BlockRaw(h) => esplora::block_raw(chain, &h),
        Route::BlockTxids(h) => esplora::block_txids(chain, &h),
        Route::BlockTxid(h, i) => esplora::block_txid(chain, &h, i),
        Route::BlockTxs(h, i) => esplora::block_txs(chain, &h, i),
        Route::Tx(t) => esplora::tx(chain, &t),
        Route::TxRaw(t) => esplora::tx_raw(chain, &t),
        Route::TxHex(t) => esplora::tx_hex(chain, &t),
        Route::TxStatus(t) => esplora::tx_status(chain, &t),
        Route::MerkleProof(t) => esplora::merkle_proof(chain, &t),
        Route::MerkleblockProof(t) => esplora::merkleblock_proof(chain, &t),
        Route::Outspend(t, v) => esplora::outspend(chain, &t, v),
        Route::Outspends(t) => esplora::outspends(chain, &t),
        Route::Script(sh, address, q) => esplora::script(chain, &sh, address.as_deref(), &q),
        Route::Mempool => esplora::mempool(chain),
        Route::MempoolTxids => esplora::mempool_txids(chain),
        Route::MempoolRecent => esplora::mempool_recent(chain),
        Route::PostTx => {
            let hex = match std::str::from_utf8(body) {
                Ok(s) => s.trim(),
                Err(_) => return Reply::BadRequest("body must be a hex transaction".into()),
            };
            let tx: Transaction = match deserialize_hex(hex) {
                Ok(tx) => tx,
                Err(e) => return Reply::BadRequest(format!("TX decode failed: {e}")),
            };
            let txid = tx.compute_txid();
            let result = inner.broadcast(tx);
            lock(&shared.posted).push(PostedTx {
                txid,
                accepted: result.is_ok(),
                refused: result.as_ref().err().cloned(),
            });
            match result {
                Ok(txid) => Reply::Text(txid.to_string()),
                Err(why) => Reply::BadRequest(why),
            }
        }
        Route::Invalid(why) => Reply::BadRequest(why),
        Route::Control(_) | Route::Unknown => Reply::NotFound("Not found".into()),
    }
}

fn json_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Reply> {
    serde_json::from_slice(body).map_err(|e| Reply::BadRequest(format!("invalid JSON body: {e}")))
}

fn regtest_script(address: &str) -> Result<bitcoin::ScriptBuf, Reply> {
    let a: Address<NetworkUnchecked> = address
        .parse()
        .map_err(|e| Reply::BadRequest(format!("invalid address {address}: {e}")))?;
    let a = a
        .require_network(Network::Regtest)
        .map_err(|_| Reply::BadRequest(format!("address {address} is not a regtest address")))?;
    Ok(a.script_pubkey())
}

#[derive(Deserialize)]
struct MineReq {
    blocks: u32,
    address: Option<String>,
}
#[derive(Deserialize)]
struct FaucetReq {
    address: String,
    amount_sat: u64,
}
#[derive(Deserialize)]
struct ReorgReq {
    depth: u32,
    new_blocks: u32,
}
#[derive(Deserialize)]
struct DropReq {
    txid: Txid,
}
#[derive(Deserialize)]
#[serde(untagged)]
enum FaultsReq {
    One(FaultRule),
    Many(Vec<FaultRule>),
}

/// Most blocks one `mine` call may ask for.
const MAX_MINE: u32 = 10_000;

fn control(shared: &Shared, name: &str, body: &[u8]) -> Reply {
    let result: Result<Value, Reply> = (|| match name {
        "mine" => {
            let req: MineReq = json_body(body)?;
            if req.blocks > MAX_MINE {
                return Err(Reply::BadRequest(format!(
                    "at most {MAX_MINE} blocks per call"
                )));
            }
            let script = req.address.as_deref().map(regtest_script).transpose()?;
            let hashes = lock(&shared.inner).mine(req.blocks, script);
            Ok(json!({"hashes": hashes}))
        }
        "faucet" => {
            let req: FaucetReq = json_body(body)?;
            let script = regtest_script(&req.address)?;
            if req.amount_sat == 0 {
                return Err(Reply::BadRequest("amount_sat must be positive".into()));
            }
            let txid = lock(&shared.inner)
                .faucet_pay(script, Amount::from_sat(req.amount_sat))
                .map_err(Reply::BadRequest)?;
            Ok(json!({"txid": txid}))
        }
        "reorg" => {
            let req: ReorgReq = json_body(body)?;
            let outcome = lock(&shared.inner)
                .reorg(req.depth, req.new_blocks)
                .map_err(Reply::BadRequest)?;
            Ok(json!(outcome))
        }
        "drop-mempool-tx" => {
            let req: DropReq = json_body(body)?;
            let dropped = lock(&shared.inner)
                .drop_mempool_tx(&req.txid)
                .map_err(Reply::NotFound)?;
            Ok(json!({"dropped": dropped}))
        }
        "fee-estimates" => {
            let raw: BTreeMap<String, f64> = json_body(body)?;
            let mut estimates = BTreeMap::new();
            for (k, v) in raw {
                let target: u16 = k.parse().map_err(|_| {
                    Reply::BadRequest(format!("fee target {k} is not a number of blocks"))
                })?;
                if !(v.is_finite() && v > 0.0) {
                    return Err(Reply::BadRequest(format!(
                        "fee rate {v} for target {k} must be positive"
                    )));
                }
                estimates.insert(target, v);
            }
            lock(&shared.inner).set_fee_estimates(estimates.clone());
            Ok(json!(estimates))
        }
        "faults-add" => {
            let rules = match json_body::<FaultsReq>(body)? {
                FaultsReq::One(r) => vec![r],
                FaultsReq::Many(rs) => rs,
            };
            let mut faults = lock(&shared.faults);
            faults.retain(|r| r.count > 0);
            faults.extend(rules);
            Ok(json!(*faults))
        }
        "faults-list" => {
            let mut faults = lock(&shared.faults);
            faults.retain(|r| r.count > 0);
            Ok(json!(*faults))
        }
        "faults-clear" => {
            lock(&shared.faults).clear();
            Ok(json!([]))
        }
        "requests" => Ok(json!(*lock(&shared.counts))),
        "requests-reset" => {
            *lock(&shared.counts) = RequestCounts::default();
            lock(&shared.posted).clear();
            Ok(json!({"total": 0}))
        }
        "posted" => Ok(json!(*lock(&shared.posted))),
        "info" => {
            let inner = lock(&shared.inner);
            Ok(json!({
                "network": "regtest",
                "tip_height": inner.chain.tip_height(),
                "tip_hash": inner.chain.tip_hash(),
                "mempool_size": inner.chain.mempool.entries.len(),
                "faucet_address": inner.faucet.address().to_string(),
                "faucet_balance_sat": inner.faucet.balance(&inner.chain).to_sat(),
            }))
        }
        _ => Err(Reply::NotFound("Not found".into())),
    })();
    match result {
        Ok(v) => Reply::Json(v),
        Err(reply) => reply,
    }
}

/// Accepts connections until `shutdown` flips.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let port = listener.local_addr().map_or(0, |a| a.port());
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (stream, _) = match accepted {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                continue;
            }
        };
        let shared = shared.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let svc = hyper::service::service_fn(move |req| handle(shared.clone(), port, req));
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, svc);
            tokio::select! {
                r = conn => { if let Err(e) = r { tracing::debug!("connection ended: {e}"); } }
                _ = stop.changed() => {}
            }
        });
    }
}
