//! Funding several opens from one wallet: the check `open_channel` makes before it says anything
//! to the peer, the funding build that waits for a sibling's change, and the broadcast of a
//! funding after the unconfirmed parents it spends.
//!
//! **The reservation is the open intent.** An intent in progress (pending, or channel pending
//! while its funding is unbroadcast) holds its amount plus a funding fee against the wallet's
//! spendable coins; `open_channel` checks a new open against what is left and records its intent
//! in the same store transaction, so concurrent calls cannot both take the same sats. Nothing
//! else is stored: the intent is already durable before anything is sent, and every way an open
//! ends (failed while running, failed at the next start by `fail_interrupted_intents`, ready)
//! changes its status, which releases the hold — no separate reservation can leak.
//!
//! **Later opens spend the earlier ones' change.** Coins are chosen only when the peer's
//! `accept_channel` gives the funding script, and locked then (store coin locks, with the
//! intent id). With one coin, the first funding locks it; a sibling whose build finds too little
//! because such a locked coin is still unspent *waits* ([`Funding::Wait`]) until that funding is
//! broadcast (its change, our own unconfirmed output, becomes spendable: BDK may spend it, and
//! nobody but us can replace its parent) or fails (its coin is unlocked). Unconfirmed coins paid
//! to us by others are never spent. A child funding refused by the server is sent again after
//! its unconfirmed ancestors ([`broadcast_funding`]), and the wallet rebroadcasts parents first.

use bitcoin::{Amount, FeeRate, OutPoint, ScriptBuf, Transaction};

use super::db::Parts;
use super::{now, NodeError, Shared};
use crate::chain::FeeTarget;
use crate::chain::{ChainSource, ChainWatcher, DynSource};
use crate::store::{NewOpenIntent, OpenIntent, OpenIntentStatus, Store};
use crate::wallet::{funding_fee, SpendableCoin, WalletError};

/// What the wallet can give a new open, besides what the opens in progress hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FundsCheck {
    /// The new open's amount plus the fee of its funding transaction.
    pub(crate) needed: Amount,
    /// What is left for it: spendable coins minus what the opens in progress hold.
    pub(crate) available: Amount,
    /// What the opens in progress hold (their amounts and funding fees).
    pub(crate) held_by_opens: Amount,
}

impl FundsCheck {
    fn into_error(self) -> NodeError {
        NodeError::InsufficientFunds {
            needed: self.needed,
            available: self.available,
            locked_by_opens: self.held_by_opens,
        }
    }
}

/// Whether an intent's open is in progress and its funding not yet out of the wallet.
fn holds(intent: &OpenIntent, locks: &[(OutPoint, Option<i64>)], coins: &[SpendableCoin]) -> bool {
    match intent.status {
        OpenIntentStatus::Pending | OpenIntentStatus::Negotiating => true,
        // Durable, funding built: it holds until the funding spends its coins (broadcast).
        OpenIntentStatus::ChannelPending => locked_unspent(intent.id, locks, coins) > 0,
        OpenIntentStatus::Ready | OpenIntentStatus::Failed => false,
    }
}

/// How many coins locked by `intent_id` are still unspent in the wallet.
fn locked_unspent(
    intent_id: i64,
    locks: &[(OutPoint, Option<i64>)],
    coins: &[SpendableCoin],
) -> usize {
    locks
        .iter()
        .filter(|(o, holder)| *holder == Some(intent_id) && coins.iter().any(|c| c.outpoint == *o))
        .count()
}

/// Checks that `amount` can be funded from `coins` besides what the in-progress `intents` hold.
/// Pure: the wallet's spendable coins, the store's coin locks and open intents are inputs.
pub(crate) fn check(
    coins: &[SpendableCoin],
    locks: &[(OutPoint, Option<i64>)],
    intents: &[OpenIntent],
    amount: Amount,
    fee_rate: FeeRate,
) -> Result<FundsCheck, FundsCheck> {
    let holding: Vec<&OpenIntent> = intents.iter().filter(|i| holds(i, locks, coins)).collect();
    // Coins locked by nothing in progress (a stale lock) are not ours to count.
    let usable = |c: &&SpendableCoin| match locks.iter().find(|(o, _)| *o == c.outpoint) {
        None => true,
        Some((_, holder)) => holding.iter().any(|i| Some(i.id) == *holder),
    };
    let total: Amount = coins.iter().filter(usable).map(|c| c.value).sum();
    let held_by_opens: Amount = holding
        .iter()
        .map(|i| {
            let inputs = locked_unspent(i.id, locks, coins);
            Amount::from_sat(i.amount_sat) + funding_fee(fee_rate, inputs)
        })
        .sum();
    // The fee of the new funding: as many inputs as the largest coins it would take.
    let mut values: Vec<Amount> = coins.iter().filter(usable).map(|c| c.value).collect();
    values.sort_unstable_by(|a, b| b.cmp(a));
    let mut inputs = 1;
    let mut covered = Amount::ZERO;
    for (k, v) in values.iter().enumerate() {
        covered += *v;
        inputs = k + 1;
        if covered >= amount + funding_fee(fee_rate, inputs) {
            break;
        }
    }
    let result = FundsCheck {
        needed: amount + funding_fee(fee_rate, inputs),
        available: total.checked_sub(held_by_opens).unwrap_or(Amount::ZERO),
        held_by_opens,
    };
    if result.needed <= result.available {
        Ok(result)
    } else {
        Err(result)
    }
}

/// The fee rate of funding transactions (what `PeerTask::open` gives the channel).
fn funding_fee_rate(store: &Store) -> Result<FeeRate, NodeError> {
    let fees = ChainWatcher::<DynSource>::fee_cache(store)?;
    Ok(fees.fee_rate(FeeTarget::Normal))
}

/// `open_channel`'s check, before anything reaches the peer: records the open intent if the
/// wallet can fund it besides the opens in progress — in one store transaction with the check,
/// so concurrent opens see each other — else [`NodeError::InsufficientFunds`] and no intent.
/// Runs on the store thread (one job: no funding can be built in between).
/// `reserve`: (required, anchor channels, per channel), the anchor reserve the wallet must
/// keep after this open ([`NodeError::AnchorReserve`] otherwise; zero: none).
pub(crate) fn reserve_open(
    parts: &mut Parts,
    intent: &NewOpenIntent,
    reserve: (Amount, u32, Amount),
) -> Result<i64, NodeError> {
    let coins = parts.wallet.spendable_coins();
    let fee_rate = funding_fee_rate(&parts.store)?;
    let amount = Amount::from_sat(intent.amount_sat);
    let (required, n, per) = reserve;
    let checked = parts.store.write(|tx| {
        let locks = tx.coin_locks()?;
        let intents = tx.list_open_intents()?;
        match check(&coins, &locks, &intents, amount, fee_rate) {
            Ok(ok) => {
                let left = ok.available.checked_sub(ok.needed).unwrap_or(Amount::ZERO);
                if let Err(e) = super::reserve::check_open(left, required, n, per) {
                    return Ok(Err(Refused::Reserve(e)));
                }
                tx.insert_open_intent(intent, now()).map(Ok)
            }
            Err(short) => Ok(Err(Refused::Funds(short))),
        }
    })?;
    checked.map_err(|refused| {
        let short = match refused {
            Refused::Funds(short) => short,
            Refused::Reserve(e) => {
                tracing::info!("open refused: {e}");
                return e;
            }
        };
        tracing::info!(
            needed = short.needed.to_sat(),
            available = short.available.to_sat(),
            held = short.held_by_opens.to_sat(),
            "open refused: insufficient funds"
        );
        short.into_error()
    })
}

/// Why [`reserve_open`] refused.
enum Refused {
    Funds(FundsCheck),
    Reserve(NodeError),
}

/// What came of a funding request.
#[derive(Debug)]
pub(crate) enum Funding {
    /// Built, signed and its coins locked for the intent.
    Built(Transaction),
    /// Too little now, but a sibling's unbroadcast funding holds a coin whose change (or
    /// release) may suffice: ask again when it is broadcast or failed.
    Wait,
    /// Cannot be funded.
    Failed(String),
}

/// Builds the funding of `intent` and locks its coins (one store-thread job, so no other open
/// can take the same coins in between), or says to wait for a sibling's funding.
pub(crate) fn build_funding(
    parts: &mut Parts,
    intent: Option<i64>,
    script: ScriptBuf,
    amount: Amount,
    fee_rate: FeeRate,
) -> Funding {
    let locks = match parts.store.coin_locks() {
        Ok(l) => l,
        Err(e) => return Funding::Failed(e.to_string()),
    };
    let locked: Vec<OutPoint> = locks.iter().map(|(o, _)| *o).collect();
    let coins = parts.wallet.spendable_coins();
    // A sibling's funding is built and not broadcast: one of its locked coins is unspent.
    let sibling_pending = locks
        .iter()
        .any(|(o, holder)| *holder != intent && coins.iter().any(|c| c.outpoint == *o));
    let free: Amount = coins
        .iter()
        .filter(|c| !locked.contains(&c.outpoint))
        .map(|c| c.value)
        .sum();
    if sibling_pending && free < amount + funding_fee(fee_rate, 1) {
        return Funding::Wait;
    }
    match parts
        .wallet
        .build_funding_tx(script, amount, fee_rate, &locked)
    {
        Ok(tx) => {
            let inputs: Vec<OutPoint> = tx.input.iter().map(|i| i.previous_output).collect();
            if let Err(e) = parts.store.lock_coins(&inputs, intent, now()) {
                if let Err(abandon) = parts.wallet.abandon(&tx) {
                    tracing::error!("cannot abandon the unlocked funding: {abandon}");
                }
                return Funding::Failed(format!("cannot lock coins: {e}"));
            }
            Funding::Built(tx)
        }
        Err(WalletError::InsufficientFunds { .. }) if sibling_pending => Funding::Wait,
        Err(e) => Funding::Failed(e.to_string()),
    }
}

/// Records a funding in the wallet and broadcasts it. A refused one may spend the change of
/// an unconfirmed parent the server dropped: the parents go first, then the funding again.
pub(crate) async fn broadcast_funding(shared: &Shared, tx: Transaction) {
    let recorded = tx.clone();
    let result = shared
        .db
        .run(move |p: &mut Parts| p.wallet.record_broadcast(&recorded, now()))
        .await;
    if let Err(e) = result {
        tracing::warn!("wallet could not record the funding: {e}");
    }
    shared.refresh_spendable().await;
    let Err(e) = shared.source.broadcast(tx.clone()).await else {
        return;
    };
    let child = tx.clone();
    let parents = shared
        .db
        .call(move |p: &mut Parts| p.wallet.unconfirmed_ancestors(&child))
        .await
        .unwrap_or_default();
    if parents.is_empty() {
        tracing::warn!("funding broadcast failed (retried every block): {e}");
        return;
    }
    tracing::info!(
        parents = parents.len(),
        "funding refused ({e}): sending its unconfirmed parents first"
    );
    for parent in parents {
        let txid = parent.compute_txid();
        if let Err(e) = shared.source.broadcast(parent).await {
            tracing::debug!(%txid, "parent rebroadcast refused: {e}");
        }
    }
    if let Err(e) = shared.source.broadcast(tx).await {
        tracing::warn!("funding broadcast failed (retried every block): {e}");
    }
}

/// Dev builds: what tests read of the store's funding state.
#[cfg(feature = "dev-disconnect")]
impl super::Node {
    /// Dev builds: every coin lock in the store, with the open intent holding it.
    pub async fn dev_coin_locks(&self) -> Result<Vec<(OutPoint, Option<i64>)>, NodeError> {
        self.shared
            .db
            .run(|p: &mut Parts| p.store.coin_locks())
            .await
    }

    /// Dev builds: the open intents still in progress (pending or channel pending), as
    /// (intent id, amount in sat, status).
    pub async fn dev_open_intents_in_progress(
        &self,
    ) -> Result<Vec<(i64, u64, OpenIntentStatus)>, NodeError> {
        let intents = self
            .shared
            .db
            .run(|p: &mut Parts| p.store.list_open_intents())
            .await?;
        Ok(intents
            .into_iter()
            .filter(|i| {
                matches!(
                    i.status,
                    OpenIntentStatus::Pending
                        | OpenIntentStatus::Negotiating
                        | OpenIntentStatus::ChannelPending
                )
            })
            .map(|i| (i.id, i.amount_sat, i.status))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;
    use bitcoin::Txid;

    fn coin(n: u8, sat: u64, confirmed: bool) -> SpendableCoin {
        SpendableCoin {
            outpoint: OutPoint::new(Txid::from_byte_array([n; 32]), 0),
            value: Amount::from_sat(sat),
            confirmed,
        }
    }

    fn intent(id: i64, sat: u64, status: OpenIntentStatus) -> OpenIntent {
        OpenIntent {
            id,
            peer_id: [2; 33],
            address: String::new(),
            amount_sat: sat,
            push_msat: 0,
            public: false,
            status,
            channel_id: None,
            failure_reason: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn rate() -> FeeRate {
        FeeRate::from_sat_per_vb(2).expect("rate")
    }

    fn fee(inputs: usize) -> Amount {
        funding_fee(rate(), inputs)
    }

    #[test]
    fn an_open_fits_what_the_coins_hold() {
        let coins = [coin(1, 1_000_000, true)];
        let ok = check(&coins, &[], &[], Amount::from_sat(500_000), rate()).expect("fits");
        assert_eq!(ok.needed, Amount::from_sat(500_000) + fee(1));
        assert_eq!(ok.available, Amount::from_sat(1_000_000));
        assert_eq!(ok.held_by_opens, Amount::ZERO);
        let short = check(&coins, &[], &[], Amount::from_sat(1_000_000), rate()).unwrap_err();
        assert_eq!(short.needed, Amount::from_sat(1_000_000) + fee(1));
        assert_eq!(short.available, Amount::from_sat(1_000_000));
    }

    /// Opens in progress hold their amounts: pending ones, and durable ones until their
    /// funding spends its locked coins; finished ones hold nothing.
    #[test]
    fn opens_in_progress_hold_their_amount_and_fee() {
        let coins = [coin(1, 1_000_000, true)];
        let locks = [(coins[0].outpoint, Some(1))];
        let intents = [
            intent(1, 300_000, OpenIntentStatus::ChannelPending),
            intent(2, 200_000, OpenIntentStatus::Pending),
            intent(3, 900_000, OpenIntentStatus::Failed),
            intent(4, 900_000, OpenIntentStatus::Ready),
        ];
        let held = Amount::from_sat(500_000) + fee(1) + fee(1);
        let ok = check(&coins, &locks, &intents, Amount::from_sat(400_000), rate()).expect("fits");
        assert_eq!(ok.held_by_opens, held);
        assert_eq!(ok.available, Amount::from_sat(1_000_000) - held);
        let short = check(&coins, &locks, &intents, Amount::from_sat(500_000), rate()).unwrap_err();
        assert_eq!(short.available, Amount::from_sat(1_000_000) - held);
        // Once broadcast, intent 1's coin is spent: its change is a coin, and it holds nothing.
        let change = [coin(9, 700_000 - fee(1).to_sat(), false)];
        let ok = check(&change, &locks, &intents, Amount::from_sat(400_000), rate()).expect("fits");
        assert_eq!(ok.held_by_opens, Amount::from_sat(200_000) + fee(1));
    }

    /// A coin locked by an open no longer in progress is not counted (the build skips it too).
    #[test]
    fn stale_locks_are_not_spendable() {
        let coins = [coin(1, 1_000_000, true), coin(2, 100_000, true)];
        let locks = [(coins[0].outpoint, Some(7)), (coins[1].outpoint, None)];
        let intents = [intent(7, 10_000, OpenIntentStatus::Failed)];
        let short = check(&coins, &locks, &intents, Amount::from_sat(50_000), rate()).unwrap_err();
        assert_eq!(short.available, Amount::ZERO);
    }

    #[test]
    fn the_fee_counts_the_coins_it_takes() {
        let coins = [coin(1, 300_000, true), coin(2, 300_000, true)];
        let ok = check(&coins, &[], &[], Amount::from_sat(400_000), rate()).expect("fits");
        assert_eq!(ok.needed, Amount::from_sat(400_000) + fee(2));
    }
}
