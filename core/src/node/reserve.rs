//! The on-chain reserve of anchor channels, and what `list_channels` says about bumping our
//! commitment's fee.
//!
//! **Why a reserve.** An anchor (`option_anchors`) commitment is signed at a low feerate
//! (ldk-node funds it at its 1008-block estimate): if we must force-close when fees are high,
//! only a CPFP child through our anchor gets it mined in time, and the child needs a wallet
//! coin (`node/cpfp.rs`). Like ldk-node (`AnchorChannelsConfig::per_channel_reserve_sats`,
//! 25 000 sat), the node keeps [`super::Config::anchor_reserve_per_channel`] on chain for each
//! anchor channel (configurable; 0 turns the check off):
//!
//! - **our open** of an anchor channel (our config prefers anchors: the peer's features are
//!   not known before we connect, so the check assumes it) is refused with
//!   [`NodeError::AnchorReserve`] when it would leave the wallet's spendable coins below
//!   reserve × (the anchor channels we have + this one) — in the same store job as the funds
//!   check, before a word to the peer;
//! - **an inbound anchor open** in the same case is refused with an `error` naming the
//!   reserve — when [`super::Config::anchor_reserve_inbound`] is set (default off: a phone
//!   accepts its LSP's channel with an empty wallet, as ldk-node does for its
//!   `trusted_peers_no_reserve`; `list_channels` then says the fee cannot be bumped). The
//!   fundee cannot change the funder's `channel_type` (BOLT 2: accept it or fail); LDK (and
//!   ldk-node) as funder answer such an error by retrying the open without anchors (LDK's
//!   channel type downgrade), so this is how the type is negotiated down;
//! - [`super::Node::list_balances`] shows the reserve apart ([`super::Balances::anchor_reserve`]):
//!   how much of the wallet the anchor channels we have ask to keep.
//!
//! The reserve is not enforced on on-chain sends (ldk-node refuses those too unless asked):
//! it is an open-time check, and the words below say when no coin is left.
//!
//! **Fee words** ([`super::ChannelDetails::fee_bump`]): without anchors the commitment's fee is
//! what both signed ("fee fixed at N sat/kw"); with anchors it can be bumped when the wallet
//! has a coin to spend, else "fee cannot be bumped: no on-chain coin". The wallet's spendable
//! amount is cached in memory ([`Shared::note_spendable`], refreshed by every sync, balance
//! read, funding, send and CPFP child), so `list_channels` never waits for the disk.

use std::sync::atomic::Ordering;

use bitcoin::Amount;

use super::db::Parts;
use super::types::FeeBump;
use super::{lock, ChannelDetails, NodeError, Shared};
use crate::proto::channel::ChannelState;

/// ldk-node's default reserve per anchor channel.
pub const DEFAULT_ANCHOR_RESERVE: Amount = Amount::from_sat(25_000);

/// Whether a channel in this view counts for the reserve: an anchor channel that may still
/// need to bump its commitment (open, opening, or closing on chain).
pub(crate) fn counts(c: &ChannelDetails) -> bool {
    c.anchors
        && !matches!(
            c.state,
            ChannelState::Closed
                | ChannelState::Aborted
                | ChannelState::Failed
                | ChannelState::FailedUnfunded
        )
}

/// What the wallet can spend now (locked coins excluded), in satoshis.
pub(crate) fn spendable_now(p: &Parts) -> u64 {
    let locked = p.store.locked_coins().unwrap_or_default();
    p.wallet.spendable_sat(&locked)
}

impl Shared {
    /// The anchor channels counted for the reserve.
    pub(crate) fn anchor_channels(&self) -> u32 {
        let n = lock(&self.views).values().filter(|c| counts(c)).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// The reserve the anchor channels we have (plus `extra` new ones) ask to keep on chain.
    pub(crate) fn anchor_reserve(&self, extra: u32) -> (Amount, u32) {
        let n = self.anchor_channels().saturating_add(extra);
        let per = self.config.anchor_reserve_per_channel;
        (per.checked_mul(u64::from(n)).unwrap_or(Amount::MAX), n)
    }

    /// Remembers what the wallet can spend (for the fee words of `list_channels`).
    pub(crate) fn note_spendable(&self, sat: u64) {
        self.wallet_spendable_sat.store(sat, Ordering::SeqCst);
    }

    /// Refreshes the cached spendable amount from the wallet.
    pub(crate) async fn refresh_spendable(&self) {
        if let Ok(sat) = self.db.call(|p: &mut Parts| spendable_now(p)).await {
            self.note_spendable(sat);
        }
    }

    /// Why an inbound anchor open must be refused for the reserve, if it must.
    pub(crate) async fn inbound_reserve_refusal(&self) -> Option<String> {
        let (required, n) = self.anchor_reserve(1);
        if required == Amount::ZERO {
            return None;
        }
        let spendable = match self.db.call(|p: &mut Parts| spendable_now(p)).await {
            Ok(sat) => Amount::from_sat(sat),
            Err(e) => return Some(format!("cannot read the wallet: {e}")),
        };
        self.note_spendable(spendable.to_sat());
        (spendable < required).then(|| {
            format!(
                "anchor channels need {} sat on chain to bump a force close's fee ({n} anchor \
                 channels x {} sat); we have {} sat: open without anchors",
                required.to_sat(),
                self.config.anchor_reserve_per_channel.to_sat(),
                spendable.to_sat()
            )
        })
    }

    /// The fee words of a channel view, from the cached spendable amount.
    pub(crate) fn with_fee_words(&self, mut c: ChannelDetails) -> ChannelDetails {
        let has_coin = self.wallet_spendable_sat.load(Ordering::SeqCst) > 0;
        c.fee_bump = fee_bump(c.anchors, c.commitment_feerate_per_kw, has_coin);
        c.fee_bump_words = fee_words(c.fee_bump);
        // A refused bump, while our commitment is still unconfirmed.
        let unconfirmed = matches!(
            c.closing,
            Some(crate::proto::channel::ClosingStatus::OnChain {
                confirmed_at: None,
                ..
            })
        );
        if let Some(fee) = lock(&self.cpfp_over_cap)
            .get(&c.channel_id)
            .filter(|_| unconfirmed)
        {
            c.fee_bump_words = capped_words(*fee, self.config.max_cpfp_fee);
        }
        c
    }
}

/// Whether our commitment's fee can be bumped.
pub(crate) fn fee_bump(anchors: bool, feerate_per_kw: u32, has_coin: bool) -> FeeBump {
    match (anchors, has_coin) {
        (false, _) => FeeBump::Fixed { feerate_per_kw },
        (true, true) => FeeBump::Bumpable,
        (true, false) => FeeBump::NoCoin,
    }
}

/// [`FeeBump`] in words.
pub(crate) fn fee_words(f: FeeBump) -> String {
    match f {
        FeeBump::Fixed { feerate_per_kw } => format!(
            "fee fixed at {feerate_per_kw} sat/kw: no anchors, a force close cannot raise it"
        ),
        FeeBump::Bumpable => {
            "fee can be bumped: a force close is CPFP'd through our anchor from a wallet coin"
                .into()
        }
        FeeBump::NoCoin => "fee cannot be bumped: no on-chain coin to CPFP our anchor with".into(),
    }
}

/// The fee words of a channel whose last CPFP child was refused by the cap.
pub(crate) fn capped_words(fee: Amount, max: Amount) -> String {
    format!(
        "fee bump refused: the CPFP child would pay {} sat, more than max_cpfp_fee ({} sat); \
         the commitment waits at its own fee",
        fee.to_sat(),
        max.to_sat()
    )
}

/// Our open's reserve check, in the store job of the funds check: `left` is what the wallet
/// keeps after the open (spendable less the open and its fee, less the opens in progress).
pub(crate) fn check_open(
    left: Amount,
    required: Amount,
    n: u32,
    per: Amount,
) -> Result<(), NodeError> {
    if left >= required {
        return Ok(());
    }
    Err(NodeError::AnchorReserve {
        left,
        required,
        anchor_channels: n,
        per_channel: per,
    })
}
