//! On-chain sends: money that came back from a channel (or was never in one) leaves Tern.
//!
//! The checks and the build are the wallet's ([`crate::wallet::OnchainWallet::build_payment`]);
//! here the node picks the feerate, keeps the coins of opens in progress out, records the
//! transaction before broadcasting it (a kill in between leaves it to the rebroadcast every
//! block does for unconfirmed wallet transactions) and forgets it if the network refuses it.

use bitcoin::{FeeRate, Txid};

use super::db::Parts;
use super::{now, Node, NodeError};
use crate::chain::{ChainError, ChainSource, FeeTarget};
use crate::wallet::check_send_fee_rate;

pub use crate::wallet::SendAmount;

impl Node {
    /// Pays `amount` to `address` (of this node's network) at `fee_rate` (sat per kwu, within
    /// 1..=1000 sat/vB), by default the estimate for ~6 blocks (refreshed first when older
    /// than [`super::Config::fee_max_age`], 10 minutes by default). Never spends the coins locked for opens in progress; `All` sweeps
    /// every other spendable coin. The transaction is in the wallet (balances) at once and is
    /// rebroadcast every block until it confirms: an unreachable server is not an error, a
    /// refusal is (and the coins are spendable again).
    pub async fn send_onchain(
        &self,
        address: &str,
        amount: SendAmount,
        fee_rate: Option<FeeRate>,
    ) -> Result<Txid, NodeError> {
        self.check_running()?;
        let fee_rate = match fee_rate {
            Some(rate) => check_send_fee_rate(rate)?,
            None => self.send_fee_rate().await?,
        };
        // One store-thread job: the coins of opens in progress are read, kept out and the
        // payment built and recorded with nothing in between (an open locks its coins in the
        // same job that builds its funding).
        let address = address.to_string();
        let tx = self
            .shared
            .db
            .run(move |p: &mut Parts| {
                let address = p.wallet.parse_address(&address)?;
                let locked = p.store.locked_coins()?;
                let tx = p
                    .wallet
                    .build_payment(&address, amount, fee_rate, &locked)?;
                p.wallet.record_broadcast(&tx, now())?;
                Ok::<_, NodeError>(tx)
            })
            .await?;
        self.shared.refresh_spendable().await;
        let txid = tx.compute_txid();
        tracing::info!(%txid, ?amount, "sending on chain");
        match self.shared.source.broadcast(tx.clone()).await {
            Ok(()) => Ok(txid),
            Err(e @ ChainError::BroadcastRefused { .. }) => {
                let refused = tx.clone();
                self.shared
                    .db
                    .run(move |p: &mut Parts| p.wallet.forget(&refused, now()))
                    .await?;
                Err(e.into())
            }
            Err(e) => {
                tracing::warn!(%txid, "send broadcast failed (retried every block): {e}");
                Ok(txid)
            }
        }
    }

    /// The default feerate of a send: the cached ~6-block estimate, refreshed when stale
    /// (`fees.rs`: the peer tasks then ask the fee policy); a failed refresh keeps the cache (or
    /// its fallback).
    async fn send_fee_rate(&self) -> Result<FeeRate, NodeError> {
        let (cache, _) = self.shared.fee_cache(None).await?;
        Ok(cache.fee_rate(FeeTarget::Normal))
    }
}
