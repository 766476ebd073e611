//! The funder's commitment fee updates: the fee cache refreshed (when older than
//! [`super::Config::fee_max_age`]), and the policy (`proto::channel::fee_policy`) asked for every ready
//! channel we fund — when the cache refreshes, on each new block, and after the peer's
//! `channel_reestablish` — with [`Input::SetFeerate`] fed through the owning peer task, only
//! while the peer is connected and no update is in flight.
//!
//! Where the estimates flow: the node (a sync, a send) refreshes the cache and hands the
//! estimates to the peer tasks ([`PeerCommand::Fees`]); each task keeps the latest and decides
//! for its own channels. No lock is shared between peers; the store is only reached through
//! the store thread.

use std::sync::Arc;
use std::time::Duration;

use bitcoin::secp256k1::PublicKey;

use super::db::Parts;
use super::peer::{PeerCommand, PeerTask};
use super::{lock, now, NodeError, Shared};
use crate::chain::{ChainSource, ChainWatcher, DynSource, FeeCache, FEE_CACHE_KEY};
use crate::proto::channel::{Channel, ChannelState, FeeEstimates, Input, Role};
use crate::proto::wire::ChannelId;

/// The `SetFeerate` inputs the policy asks for among `channels`: (index, feerate) for each
/// ready channel we fund whose feerate should move, none while its update is in flight.
pub(crate) fn feerate_updates(channels: &[Channel], est: &FeeEstimates) -> Vec<(usize, u32)> {
    channels
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.update_pending())
        .filter_map(|(i, c)| c.wanted_feerate(est).map(|f| (i, f)))
        .collect()
}

impl Shared {
    /// The fee cache, refreshed first when older than [`super::Config::fee_max_age`] (one
    /// `GET /fee-estimates`, bounded by `within` if given); a failed or empty fetch keeps the
    /// cached figures. A refreshed cache is handed to the peer tasks whose ready channels we
    /// fund. Returns the cache and whether it was refreshed.
    pub(crate) async fn fee_cache(
        self: &Arc<Self>,
        within: Option<Duration>,
    ) -> Result<(FeeCache, bool), NodeError> {
        let cache = self
            .db
            .run(|p: &mut Parts| ChainWatcher::<DynSource>::fee_cache(&p.store))
            .await?;
        let max_age = self.config.fee_max_age;
        if !max_age.is_zero() && !cache.is_stale(now(), max_age.as_secs()) {
            return Ok((cache, false));
        }
        let fetched = match within {
            Some(limit) => tokio::time::timeout(limit, self.source.fee_estimates())
                .await
                .unwrap_or_else(|_| {
                    Err(crate::chain::ChainError::Transport {
                        what: "fee estimates".into(),
                        reason: "the sync's deadline passed".into(),
                    })
                }),
            None => self.source.fee_estimates().await,
        };
        let fresh = match fetched {
            Ok(estimates) => FeeCache::refreshed(estimates, now()),
            Err(e) => {
                tracing::warn!("fee estimates unavailable, using the cached ones: {e}");
                None
            }
        };
        let Some(fresh) = fresh else {
            return Ok((cache, false));
        };
        let record = fresh.encode();
        self.db
            .run(move |p: &mut Parts| p.store.put_meta(FEE_CACHE_KEY, &record))
            .await?;
        self.hand_fees(fresh.fee_estimates());
        Ok((fresh, true))
    }

    /// A new block: the peers whose ready channels we fund get the estimates (refreshed when
    /// stale, the fetch bounded by `within`), so that each asks the policy.
    pub(crate) async fn fees_on_new_block(self: &Arc<Self>, within: Option<Duration>) {
        if self.funded_peers().is_empty() {
            return;
        }
        match self.fee_cache(within).await {
            Ok((_, true)) => {}
            Ok((cache, false)) => self.hand_fees(cache.fee_estimates()),
            Err(e) => tracing::error!("cannot read the fee cache: {e}"),
        }
    }

    /// Hands `est` to the task of every peer with a ready channel we fund.
    fn hand_fees(&self, est: FeeEstimates) {
        for peer in self.funded_peers() {
            if let Some(tx) = lock(&self.peers).get(&peer).cloned() {
                let _ = tx.send(PeerCommand::Fees(est));
            }
        }
    }

    /// The cached estimates (no fetch), `None` if the cache cannot be read.
    pub(crate) async fn cached_fees(&self) -> Option<FeeEstimates> {
        let cache = self
            .db
            .run(|p: &mut Parts| ChainWatcher::<DynSource>::fee_cache(&p.store))
            .await;
        match cache {
            Ok(cache) => Some(cache.fee_estimates()),
            Err(e) => {
                tracing::error!("cannot read the fee cache: {e}");
                None
            }
        }
    }

    /// The peers of the ready channels we fund, and of closing channels (their closing fee,
    /// their sweeps), from the `list_channels` views.
    fn funded_peers(&self) -> Vec<PublicKey> {
        let mut peers: Vec<PublicKey> = lock(&self.views)
            .values()
            .filter(|c| (c.is_outbound && c.state == ChannelState::Ready) || c.closing.is_some())
            .map(|c| c.counterparty_node_id)
            .collect();
        peers.sort();
        peers.dedup();
        peers
    }
}

impl PeerTask {
    /// New estimates from the node: keep them, and ask the policy.
    pub(super) async fn on_fees(&mut self, est: FeeEstimates) {
        self.fees = Some(est);
        self.apply_fee_policy(None).await;
    }

    /// Feeds [`Input::SetFeerate`] to each ready channel we fund (among `only`, if given)
    /// whose feerate the policy wants moved — only while the peer is connected and no update of
    /// the channel is in flight. Uses the latest estimates the node handed over, or the cached
    /// ones.
    pub(super) async fn apply_fee_policy(&mut self, only: Option<&[ChannelId]>) {
        let funds_ready =
            |c: &Channel| c.role() == Role::Funder && c.state() == ChannelState::Ready;
        if !self.connected() || !self.channels.iter().any(funds_ready) {
            return;
        }
        let est = match self.fees {
            Some(est) => est,
            None => {
                let cache = self
                    .shared
                    .db
                    .run(|p: &mut Parts| ChainWatcher::<DynSource>::fee_cache(&p.store))
                    .await;
                match cache {
                    Ok(cache) => *self.fees.insert(cache.fee_estimates()),
                    Err(e) => {
                        tracing::error!("cannot read the fee cache: {e}");
                        return;
                    }
                }
            }
        };
        for (i, feerate_per_kw) in feerate_updates(&self.channels, &est) {
            let c = &self.channels[i];
            if only.is_some_and(|ids| !ids.contains(&c.current_id())) {
                continue;
            }
            tracing::info!(channel = %c.current_id(), from = c.commitment_feerate_per_kw(), to = feerate_per_kw, "moving the commitment feerate");
            self.shared
                .observer
                .feerate_set(c.current_id(), feerate_per_kw);
            self.feed(i, Input::SetFeerate { feerate_per_kw }).await;
        }
        self.cleanup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::channel::ChannelRecord;
    use bitcoin::hex::FromHex;

    fn fixture(hex: &str) -> Channel {
        let bytes = Vec::<u8>::from_hex(hex.trim()).expect("hex");
        Channel::from_record(ChannelRecord::decode(&bytes).expect("record"))
    }

    #[test]
    fn set_feerate_only_for_ready_channels_we_fund() {
        let channels = [
            fixture(include_str!(
                "../../tests/fixtures/records/channel_v1_fundee_ready.hex"
            )),
            fixture(include_str!(
                "../../tests/fixtures/records/channel_v1_funder_ready.hex"
            )),
            fixture(include_str!(
                "../../tests/fixtures/records/channel_v1_funder_awaiting_channel_ready.hex"
            )),
            fixture(include_str!(
                "../../tests/fixtures/records/channel_v1_funder_public_announced.hex"
            )),
        ];
        let current = channels[1].commitment_feerate_per_kw();
        assert_eq!(channels[3].commitment_feerate_per_kw(), current);
        let est = |commitment_per_kw| FeeEstimates {
            commitment_per_kw,
            in_144_blocks_per_kw: 253,
            in_1008_blocks_per_kw: 253,
        };
        assert_eq!(
            feerate_updates(&channels, &est(current + 100)),
            [(1, current + 100), (3, current + 100)]
        );
        assert_eq!(feerate_updates(&channels, &est(current)), []);
        assert_eq!(
            feerate_updates(&channels, &est(current / 2)),
            [(1, current / 2), (3, current / 2)]
        );
        for c in &channels {
            assert!(!c.channel_type().anchors);
        }
    }
}
