//! The async driver: runs a [`SyncPlanner`] against a [`ChainSource`], issuing each batch of
//! independent requests concurrently (bounded), and stopping at a deadline.

use std::time::Duration;

use futures::stream::{self, StreamExt};

use super::planner::{ChainEvent, Request, Response, ScriptHistories, Step, SyncPlanner};
use super::{ChainError, ChainSource, ChainState};

/// Most requests in flight at once (public Esplora servers rate-limit bursts).
pub const MAX_CONCURRENT_REQUESTS: usize = 4;

/// The result of one sync. Persist `state` if it differs from what was loaded.
#[derive(Debug, Clone)]
pub struct SyncOutcome {
    /// The new chain state.
    pub state: ChainState,
    /// What changed.
    pub events: Vec<ChainEvent>,
    /// Histories of the scripts asked for.
    pub scripts: ScriptHistories,
    /// Requests made.
    pub requests: usize,
    /// The spending transactions the sync fetched and checked (with
    /// [`SyncPlanner::verify_spends`]).
    pub spending_txs: Vec<bitcoin::Transaction>,
}

async fn execute<S: ChainSource>(source: &S, request: &Request) -> Result<Response, ChainError> {
    Ok(match request {
        Request::TipHash => Response::TipHash(source.tip_hash().await?),
        Request::Header(h) => Response::Header(source.header(*h).await?),
        Request::BlockStatus(h) => Response::BlockStatus(source.block_status(*h).await?),
        Request::TxStatus(t) => Response::TxStatus(source.tx_status(*t).await?),
        Request::MerkleBlock(t) => Response::MerkleBlock(source.merkle_block(*t).await?),
        Request::Outspend(op) => Response::Outspend(source.outspend(*op).await?),
        Request::ScriptTxs(s) => Response::ScriptTxs(source.script_txs(s.clone()).await?),
        Request::RawTx(t) => Response::RawTx(source.raw_tx(*t).await?),
    })
}

/// Runs one sync of `planner` against `source`; fails with [`ChainError::Deadline`] if it
/// would run past `deadline` (nothing is half-applied: the caller keeps its old state).
pub async fn sync<S: ChainSource>(
    source: &S,
    mut planner: SyncPlanner,
    deadline: Option<Duration>,
) -> Result<SyncOutcome, ChainError> {
    let run = async {
        let mut requests = 0;
        while let Step::Requests(batch) = planner.poll()? {
            requests += batch.len();
            let answers: Vec<(Request, Result<Response, ChainError>)> = stream::iter(batch)
                .map(|req| async move {
                    let answer = execute(source, &req).await;
                    (req, answer)
                })
                .buffer_unordered(MAX_CONCURRENT_REQUESTS)
                .collect()
                .await;
            for (req, answer) in answers {
                planner.handle(&req, answer?)?;
            }
        }
        let spending_txs = planner.spending_txs().to_vec();
        let (state, events, scripts) = planner.finish();
        Ok(SyncOutcome {
            state,
            events,
            scripts,
            requests,
            spending_txs,
        })
    };
    match deadline {
        Some(d) => tokio::time::timeout(d, run)
            .await
            .map_err(|_| ChainError::Deadline)?,
        None => run.await,
    }
}
