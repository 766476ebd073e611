//! Configuration of channel establishment: our own parameters and the limits the peer's
//! parameters must respect, plus the inputs that start an open in either role.

use bitcoin::constants::ChainHash;
use bitcoin::secp256k1::PublicKey;

use crate::wire::{ChannelId, Features};

/// The lowest fee rate anyone may use, in sat per 1000 weight units (what LDK requires of a
/// peer: 1 sat/vbyte rounded up).
pub const MIN_FEERATE_PER_KW: u32 = 253;

/// The lowest `dust_limit_satoshis` BOLT 2 allows (BOLT 3 "Dust Limits").
pub const MIN_DUST_LIMIT_SAT: u64 = 354;

/// The default `dust_limit_satoshis` of new channels: 355 sat, one above the BOLT 2 floor.
/// BOLT 3 has each signer of a closing transaction remove outputs *below its own* dust limit;
/// LDK removes outputs *at or below* its 354. With 355 both rules drop exactly the outputs of
/// 354 sat or less, so our closing transaction is LDK's for every balance; with the old 546 a
/// peer balance of 355-545 sat was removed by us and kept by LDK, which then refused our
/// signature and force-closed. Existing channels keep the value stored in their record.
pub const DEFAULT_DUST_LIMIT_SAT: u64 = 355;

/// The `to_self_delay` Tern asks of its peers by default: 1008 blocks, about a week. It is the
/// time we have, after the peer broadcasts a commitment it revoked, to see it and take its
/// `to_local` with the revocation key — and Tern runs on phones that the OS keeps asleep for
/// days (background wakes are rare and short). LDK's and ldk-node's own default is 144 (a
/// day), too short for that; every implementation here accepts up to 2016 (LDK's
/// `their_to_self_delay` limit, lnd's and CLN's maximum). The cost falls on the peer: its own
/// balance waits a week after *its* force close, never ours.
pub const DEFAULT_TO_SELF_DELAY: u16 = 1008;

/// The most HTLCs BOLT 2 allows either side to accept.
pub const MAX_ACCEPTED_HTLCS: u16 = 483;

/// `funding_satoshis` must stay below this unless both sides support
/// `option_support_large_channel`.
pub const LARGE_CHANNEL_THRESHOLD_SAT: u64 = 1 << 24;

/// Blocks after which a fundee forgets a channel whose funding never confirmed (BOLT 2).
pub const FUNDEE_FUNDING_TIMEOUT_BLOCKS: u32 = 2016;

/// Extra blocks past `minimum_depth` after which a missing `channel_ready` from the peer makes
/// the watchdog reconnect the peer (Core Lightning's "six is the magic number").
pub const WATCHDOG_EXTRA_BLOCKS: u32 = 6;

/// Our channel parameters and the bounds we accept from peers. One value per node; every
/// field is configurable, the defaults suit a mobile light node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelConfig {
    /// The chain we run on (`open_channel.chain_hash` must match).
    pub chain_hash: ChainHash,
    /// Whether both sides advertised `option_support_large_channel` (allows funding
    /// >= 2^24 sat). The driver sets it per peer from the `init` features.
    pub large_channels: bool,
    /// Whether we use `option_anchors` (zero-fee HTLC anchor outputs) channels. When true
    /// (the default), as funder we propose an anchor `channel_type` whenever the peer's
    /// `init` offers `option_anchors` (else `option_static_remotekey`), and as fundee we
    /// accept either type. When false we propose and accept `option_static_remotekey` only
    /// (and the node does not offer `option_anchors` in `init`). Anchors let a force close
    /// confirm at whatever fee the moment needs (CPFP through our anchor, with a wallet
    /// coin); a static_remotekey commitment confirms only if its own feerate is high enough.
    pub prefer_anchors: bool,

    // --- our side ---
    /// The `dust_limit_satoshis` we send (clamped to the peer's reserve when we are the
    /// fundee, never below 354). Default [`DEFAULT_DUST_LIMIT_SAT`] (355): see there why.
    pub our_dust_limit_sat: u64,
    /// The `to_self_delay` we impose on the peer: how long its `to_local` stays locked after it
    /// force-closes, i.e. the window we have to notice a revoked commitment and take it.
    /// Default [`DEFAULT_TO_SELF_DELAY`] (1008 blocks, a week): see there why.
    pub our_to_self_delay: u16,
    /// The `max_accepted_htlcs` we send.
    pub our_max_accepted_htlcs: u16,
    /// The `htlc_minimum_msat` we send.
    pub our_htlc_minimum_msat: u64,
    /// Our `max_htlc_value_in_flight_msat`, in percent of the channel (1..=100).
    pub our_max_htlc_value_in_flight_percent: u8,
    /// The reserve we ask the peer to keep, in thousandths of the channel (10 = 1%).
    pub our_channel_reserve_permille: u16,
    /// The `minimum_depth` we ask for as fundee (0 is treated as 1: no zero-conf).
    pub our_minimum_depth: u32,

    // --- limits on the peer ---
    /// Smallest channel we accept or open, in sat.
    pub min_funding_sat: u64,
    /// Largest channel we accept or open, in sat (further capped below 2^24 unless
    /// `large_channels`).
    pub max_funding_sat: u64,
    /// Largest `dust_limit_satoshis` we accept.
    pub max_dust_limit_sat: u64,
    /// Largest `to_self_delay` the peer may impose on us.
    pub max_to_self_delay: u16,
    /// Smallest `max_accepted_htlcs` we accept.
    pub min_max_accepted_htlcs: u16,
    /// Largest `htlc_minimum_msat` we accept.
    pub max_htlc_minimum_msat: u64,
    /// Smallest `max_htlc_value_in_flight_msat` we accept, in percent of the channel.
    pub min_max_htlc_value_in_flight_percent: u8,
    /// Largest reserve the peer may ask us to keep, in percent of the channel.
    pub max_channel_reserve_percent: u8,
    /// Largest `minimum_depth` we accept from a fundee.
    pub max_minimum_depth: u32,
    /// Smallest commitment `feerate_per_kw` we accept from a funder (never below 253).
    pub min_feerate_per_kw: u32,
    /// Largest commitment `feerate_per_kw` we accept from a funder.
    pub max_feerate_per_kw: u32,
    /// Smallest `update_fee` feerate we accept from the funder of a ready channel (never below
    /// 253; a raise of the current feerate is accepted anyway): see `fee_policy.rs`.
    pub update_fee_min_per_kw: u32,
    /// Largest `update_fee` feerate we accept from the funder of a ready channel (LDK has no
    /// such bound; the funder pays): see `fee_policy.rs`.
    pub update_fee_max_per_kw: u32,

    // --- timing ---
    /// How long, in seconds of [`super::Input::Tick`] time, a transient open waits in one state
    /// for the peer's next message while connected (a silent peer) before it is failed.
    pub open_timeout_secs: u64,
    /// How long, in seconds of [`super::Input::Tick`] time, a commitment update in flight
    /// may make no progress (a message lost while the connection stays up) before the peer is
    /// reconnected so that `channel_reestablish` retransmits it.
    pub update_timeout_secs: u64,
}

impl ChannelConfig {
    /// Defaults for `chain_hash`.
    pub fn new(chain_hash: ChainHash) -> Self {
        ChannelConfig {
            chain_hash,
            large_channels: false,
            prefer_anchors: true,
            our_dust_limit_sat: DEFAULT_DUST_LIMIT_SAT,
            our_to_self_delay: DEFAULT_TO_SELF_DELAY,
            our_max_accepted_htlcs: 30,
            our_htlc_minimum_msat: 1,
            our_max_htlc_value_in_flight_percent: 100,
            our_channel_reserve_permille: 10,
            our_minimum_depth: 3,
            min_funding_sat: 20_000,
            max_funding_sat: LARGE_CHANNEL_THRESHOLD_SAT - 1,
            max_dust_limit_sat: 1_000,
            max_to_self_delay: 2016,
            min_max_accepted_htlcs: 1,
            max_htlc_minimum_msat: 1_000_000,
            min_max_htlc_value_in_flight_percent: 1,
            max_channel_reserve_percent: 20,
            max_minimum_depth: 144,
            min_feerate_per_kw: MIN_FEERATE_PER_KW,
            max_feerate_per_kw: 100_000,
            update_fee_min_per_kw: MIN_FEERATE_PER_KW,
            update_fee_max_per_kw: 1_000_000,
            open_timeout_secs: 60,
            update_timeout_secs: 30,
        }
    }

    /// The largest funding allowed, taking `large_channels` into account.
    pub fn funding_cap_sat(&self) -> u64 {
        if self.large_channels {
            self.max_funding_sat
        } else {
            self.max_funding_sat.min(LARGE_CHANNEL_THRESHOLD_SAT - 1)
        }
    }

    /// The lowest commitment fee rate we accept (at least 253 sat/kw).
    pub fn feerate_floor(&self) -> u32 {
        self.min_feerate_per_kw.max(MIN_FEERATE_PER_KW)
    }

    /// The reserve we ask the peer to keep for a channel of `funding_sat`: our per-mille share,
    /// at least `floor_sat` (a dust limit it must not fall below).
    pub(crate) fn reserve_for(&self, funding_sat: u64, floor_sat: u64) -> u64 {
        (funding_sat.saturating_mul(u64::from(self.our_channel_reserve_permille)) / 1000)
            .max(floor_sat)
            .max(MIN_DUST_LIMIT_SAT)
    }

    /// Our `max_htlc_value_in_flight_msat` for a channel of `funding_sat`.
    pub(crate) fn max_in_flight_for(&self, funding_sat: u64) -> u64 {
        let percent = u64::from(self.our_max_htlc_value_in_flight_percent.clamp(1, 100));
        funding_sat.saturating_mul(10 * percent)
    }
}

/// The command that starts an outbound open (we are the funder). Entropy (the temporary
/// channel id) and the key index are chosen by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundParams {
    /// The peer's node id.
    pub counterparty_node_id: PublicKey,
    /// A fresh random id, unique among this peer's channels.
    pub temporary_channel_id: ChannelId,
    /// Index of this channel's keys in the [`crate::keys::KeysManager`].
    pub keys_index: u32,
    /// The channel's size.
    pub funding_sat: u64,
    /// Amount given to the peer at open.
    pub push_msat: u64,
    /// Whether to announce the channel (`announce_channel`). Mobile default: `false`.
    pub announce: bool,
    /// Fee rate of the first commitment transaction (raised to 253 if lower).
    pub commitment_feerate_per_kw: u32,
    /// Fee rate for the funding transaction the wallet builds (raised to 253 if lower).
    pub funding_feerate_per_kw: u32,
    /// Current chain tip height (recorded, for timeouts).
    pub current_height: u32,
    /// The features of the peer's `init` on the current connection: the `channel_type` we
    /// propose depends on them (anchors only if the peer offers `option_anchors`).
    pub their_features: Features,
}

/// What the driver supplies when an `open_channel` arrives (we are the fundee).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundParams {
    /// The peer's node id.
    pub counterparty_node_id: PublicKey,
    /// Index of this channel's keys in the [`crate::keys::KeysManager`].
    pub keys_index: u32,
    /// Current chain tip height (starts the 2016-block funding timeout).
    pub current_height: u32,
}
