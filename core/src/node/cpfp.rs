//! Performing [`Action::BumpCommitment`]: the CPFP child of our force-closed anchor
//! commitment, built from a wallet coin (`proto::channel` `resolve_cpfp.rs` decides when and
//! at what feerate; `wallet/cpfp.rs` builds).
//!
//! 1. One store-thread job builds the child (never from a coin locked by an open or another
//!    child) and locks its wallet coins (`coin_locks`, no intent), so no send, open or other
//!    child can pick them before the child is recorded in the wallet. A replacement (RBF)
//!    unlocks the coins of the child it replaces first, and reuses them.
//! 2. The channel gets [`Input::CpfpBuilt`]: it stores the child, then broadcasts the
//!    commitment and the child ([`BroadcastKind::AnchorCpfp`]). A failed write leaves the
//!    channel as it was (the next block asks again; the coins stay locked until a child that
//!    spends them is recorded).
//! 3. The child's broadcast records it in the wallet (its change is ours) and then unlocks
//!    its coins: from then on the wallet itself sees them spent. A refused broadcast keeps
//!    the lock (the child is rebroadcast every block). At start, locks without an open intent
//!    (only children take them) are released: a stored child is rebroadcast, and recorded,
//!    by its channel's resume.
//!
//! **A cap** ([`super::Config::max_cpfp_fee`], default [`DEFAULT_MAX_CPFP_FEE`]): a child
//! whose exact fee passes it is abandoned before anything is locked or fed to the channel (a
//! replacement's coins are locked again for the child it would have replaced, which stays
//! out), the refusal is remembered for `list_channels` (`Shared::cpfp_over_cap`, the fee
//! words say it), and the next block asks again. A child built within the cap clears it.
//!
//! The funding key signing the anchor is derived here from the channel's keys: the action
//! carries no secret. Without any wallet coin the child cannot be built: logged, asked again
//! on the next block, and `list_channels` says the fee cannot be bumped (`details.rs`).
//!
//! [`Action::BumpCommitment`]: crate::proto::channel::Action::BumpCommitment
//! [`BroadcastKind::AnchorCpfp`]: crate::proto::channel::BroadcastKind::AnchorCpfp

use bitcoin::secp256k1::SecretKey;
use bitcoin::{Amount, FeeRate, OutPoint, Transaction};

use super::db::Parts;
use super::peer::PeerTask;
use super::{lock, now, NodeError, Shared};
use crate::proto::channel::{Action, Context, CpfpRequest, Input};

/// [`super::Config::max_cpfp_fee`]'s default: twice ldk-node's per-channel anchor reserve.
pub const DEFAULT_MAX_CPFP_FEE: Amount = Amount::from_sat(50_000);

/// What [`build_child`] made of a request.
enum Built {
    /// The child, its coins locked.
    Child(Transaction),
    /// Not built: the child would pay this fee, more than the cap.
    OverCap(Amount),
}

/// The wallet coins a child spends (all its inputs but the anchor).
pub(crate) fn child_coins(child: &Transaction, anchor: &OutPoint) -> Vec<OutPoint> {
    child
        .input
        .iter()
        .map(|i| i.previous_output)
        .filter(|o| o != anchor)
        .collect()
}

/// Builds the child and locks its coins, in one store-thread job; a child paying more than
/// `max_fee` is abandoned (and a replaced child's coins locked again).
fn build_child(
    p: &mut Parts,
    request: &CpfpRequest,
    funding_key: &SecretKey,
    max_fee: Amount,
) -> Result<Built, NodeError> {
    let anchor = request.anchor.outpoint;
    let previous_coins = request
        .replaces
        .as_ref()
        .map(|previous| child_coins(previous, &anchor))
        .unwrap_or_default();
    for coin in &previous_coins {
        p.store.unlock_coin(coin)?;
    }
    // Not built (or over the cap): the child it would replace stays out, its coins held.
    let relock = |p: &mut Parts| {
        if !previous_coins.is_empty() {
            if let Err(e) = p.store.lock_coins(&previous_coins, None, now()) {
                tracing::error!("cannot lock the coins of the CPFP child again: {e}");
            }
        }
    };
    let locked = p.store.locked_coins()?;
    let target = FeeRate::from_sat_per_kwu(u64::from(request.feerate_per_kw));
    let child = match p.wallet.build_anchor_cpfp_replacing(
        &request.parent,
        request.parent_fee,
        &request.anchor,
        funding_key,
        target,
        &locked,
        request.replaces.as_ref(),
        now(),
    ) {
        Ok(child) => child,
        Err(e) => {
            relock(p);
            return Err(e.into());
        }
    };
    let fee = p.wallet.anchor_cpfp_fee(&child, &request.anchor);
    if let Some(fee) = fee.filter(|f| *f > max_fee) {
        if let Err(abandon) = p.wallet.abandon(&child) {
            tracing::error!("cannot abandon the CPFP child over the cap: {abandon}");
        }
        relock(p);
        return Ok(Built::OverCap(fee));
    }
    if let Err(e) = p
        .store
        .lock_coins(&child_coins(&child, &anchor), None, now())
    {
        if let Err(abandon) = p.wallet.abandon(&child) {
            tracing::error!("cannot abandon the unlocked CPFP child: {abandon}");
        }
        return Err(e.into());
    }
    Ok(Built::Child(child))
}

impl Shared {
    /// At start: the coin locks of CPFP children (the only locks without an open intent) are
    /// released. A child built but not stored before the process ended is gone; a stored one
    /// is rebroadcast by its channel's resume, which records it in the wallet (its coins are
    /// then spent in the wallet's eyes).
    pub(crate) async fn release_child_locks(&self) -> Result<(), NodeError> {
        self.db
            .run(|p: &mut Parts| {
                let orphans: Vec<OutPoint> = p
                    .store
                    .coin_locks()?
                    .into_iter()
                    .filter(|(_, holder)| holder.is_none())
                    .map(|(o, _)| o)
                    .collect();
                for coin in &orphans {
                    p.store.unlock_coin(coin)?;
                }
                if !orphans.is_empty() {
                    tracing::info!(
                        coins = orphans.len(),
                        "released the coin locks of CPFP children"
                    );
                }
                Ok::<_, NodeError>(())
            })
            .await
    }
}

impl PeerTask {
    /// [`Action::BumpCommitment`]: build the child, feed it back; the channel's answer goes
    /// first in the queue. Nothing if the wallet cannot build it.
    pub(super) async fn bump_commitment(&mut self, i: usize, request: CpfpRequest) -> Vec<Action> {
        let id = request.channel_id;
        let keys = match self.context_keys(self.channels[i].keys_index()) {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(channel = %id, "{e}");
                return Vec::new();
            }
        };
        let funding_key = keys.funding_key;
        let job = request.clone();
        let max_fee = self.shared.config.max_cpfp_fee;
        let built = self
            .shared
            .db
            .run(move |p: &mut Parts| build_child(p, &job, &funding_key, max_fee))
            .await;
        let child = match built {
            Ok(Built::Child(child)) => {
                lock(&self.shared.cpfp_over_cap).remove(&id);
                child
            }
            Ok(Built::OverCap(fee)) => {
                tracing::warn!(channel = %id, feerate_per_kw = request.feerate_per_kw, fee_sat = fee.to_sat(), max_sat = max_fee.to_sat(), "the CPFP child of our commitment would pay more than max_cpfp_fee: not built (asked again next block)");
                lock(&self.shared.cpfp_over_cap).insert(id, fee);
                return Vec::new();
            }
            Err(e) => {
                tracing::warn!(channel = %id, feerate_per_kw = request.feerate_per_kw, "cannot build the CPFP child of our commitment (asked again next block): {e}");
                return Vec::new();
            }
        };
        tracing::info!(channel = %id, txid = %child.compute_txid(), feerate_per_kw = request.feerate_per_kw, "CPFP child built");
        let input = Input::CpfpBuilt {
            child,
            feerate_per_kw: request.feerate_per_kw,
            height: request.height,
        };
        let ctx = Context::new(&self.shared.secp, &keys, &self.shared.config.channel)
            .with_node_key(&self.shared.node_secret);
        self.channels[i].handle(input, &ctx)
    }

    /// After the child's broadcast: recorded in the wallet, then its coins unlocked (the
    /// wallet now sees them spent).
    pub(super) async fn child_broadcast(&self, child: &Transaction) {
        self.shared.record_channel_tx(child).await;
        let spent: Vec<OutPoint> = child.input.iter().map(|i| i.previous_output).collect();
        let txid = child.compute_txid();
        let result = self
            .shared
            .db
            .run(move |p: &mut Parts| {
                // Only once the wallet holds it (else the lock is all that guards the coins).
                if p.wallet.knows(&txid) {
                    for coin in &spent {
                        p.store.unlock_coin(coin)?;
                    }
                }
                Ok::<_, NodeError>(())
            })
            .await;
        if let Err(e) = result {
            tracing::warn!("cannot unlock the CPFP child's coins: {e}");
        }
        self.shared.refresh_spendable().await;
    }
}
