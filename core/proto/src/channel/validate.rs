//! Validation of the peer's channel parameters (BOLT 2 `open_channel` / `accept_channel`
//! requirements) and of our own open command. Every failure names the offending field.

use super::config::{
    ChannelConfig, OutboundParams, MAX_ACCEPTED_HTLCS, MIN_DUST_LIMIT_SAT, MIN_FEERATE_PER_KW,
};
use crate::bolt3::{self, commitment_fee, ANCHOR_OUTPUT_VALUE};
use crate::wire::{AcceptChannel, ChannelType, Feature, Features, OpenChannel};

/// A channel parameter that fails BOLT 2 or our limits. Its text is what the peer receives in
/// the `error` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct ValidationError {
    /// The BOLT 2 field name, e.g. `"dust_limit_satoshis"`.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn fail<T>(field: &'static str, reason: String) -> Result<T, ValidationError> {
    Err(ValidationError { field, reason })
}

/// The parameters both messages share, from the sender's side.
pub(crate) struct PeerParams {
    pub dust_limit_satoshis: u64,
    pub max_htlc_value_in_flight_msat: u64,
    pub channel_reserve_satoshis: u64,
    pub htlc_minimum_msat: u64,
    pub to_self_delay: u16,
    pub max_accepted_htlcs: u16,
}

impl From<&OpenChannel> for PeerParams {
    fn from(m: &OpenChannel) -> Self {
        PeerParams {
            dust_limit_satoshis: m.dust_limit_satoshis,
            max_htlc_value_in_flight_msat: m.max_htlc_value_in_flight_msat,
            channel_reserve_satoshis: m.channel_reserve_satoshis,
            htlc_minimum_msat: m.htlc_minimum_msat,
            to_self_delay: m.to_self_delay,
            max_accepted_htlcs: m.max_accepted_htlcs,
        }
    }
}

impl From<&AcceptChannel> for PeerParams {
    fn from(m: &AcceptChannel) -> Self {
        PeerParams {
            dust_limit_satoshis: m.dust_limit_satoshis,
            max_htlc_value_in_flight_msat: m.max_htlc_value_in_flight_msat,
            channel_reserve_satoshis: m.channel_reserve_satoshis,
            htlc_minimum_msat: m.htlc_minimum_msat,
            to_self_delay: m.to_self_delay,
            max_accepted_htlcs: m.max_accepted_htlcs,
        }
    }
}

/// Checks shared by `open_channel` and `accept_channel`.
fn check_common(
    p: &PeerParams,
    funding_sat: u64,
    config: &ChannelConfig,
) -> Result<(), ValidationError> {
    if p.dust_limit_satoshis < MIN_DUST_LIMIT_SAT {
        return fail(
            "dust_limit_satoshis",
            format!("{} is below {MIN_DUST_LIMIT_SAT}", p.dust_limit_satoshis),
        );
    }
    if p.dust_limit_satoshis > config.max_dust_limit_sat {
        return fail(
            "dust_limit_satoshis",
            format!(
                "{} is above our limit {}",
                p.dust_limit_satoshis, config.max_dust_limit_sat
            ),
        );
    }
    let max_reserve = funding_sat * u64::from(config.max_channel_reserve_percent) / 100;
    if p.channel_reserve_satoshis > max_reserve {
        return fail(
            "channel_reserve_satoshis",
            format!(
                "{} is above {}% of the channel ({max_reserve})",
                p.channel_reserve_satoshis, config.max_channel_reserve_percent
            ),
        );
    }
    if p.to_self_delay > config.max_to_self_delay {
        return fail(
            "to_self_delay",
            format!(
                "{} is above our limit {}",
                p.to_self_delay, config.max_to_self_delay
            ),
        );
    }
    if p.max_accepted_htlcs > MAX_ACCEPTED_HTLCS {
        return fail(
            "max_accepted_htlcs",
            format!("{} is above {MAX_ACCEPTED_HTLCS}", p.max_accepted_htlcs),
        );
    }
    if p.max_accepted_htlcs < config.min_max_accepted_htlcs.max(1) {
        return fail(
            "max_accepted_htlcs",
            format!(
                "{} is below our minimum {}",
                p.max_accepted_htlcs,
                config.min_max_accepted_htlcs.max(1)
            ),
        );
    }
    if p.htlc_minimum_msat > config.max_htlc_minimum_msat
        || p.htlc_minimum_msat >= funding_sat * 1000
    {
        return fail(
            "htlc_minimum_msat",
            format!(
                "{} is too large (limit {}, channel {} msat)",
                p.htlc_minimum_msat,
                config.max_htlc_minimum_msat,
                funding_sat * 1000
            ),
        );
    }
    let min_in_flight = funding_sat * 10 * u64::from(config.min_max_htlc_value_in_flight_percent);
    if p.max_htlc_value_in_flight_msat < min_in_flight.max(1) {
        return fail(
            "max_htlc_value_in_flight_msat",
            format!(
                "{} is below {}% of the channel",
                p.max_htlc_value_in_flight_msat, config.min_max_htlc_value_in_flight_percent
            ),
        );
    }
    Ok(())
}

/// The `channel_type` of a commitment format: `option_static_remotekey` alone (bit 12), or
/// with `option_anchors` (bits 12 and 22), the smallest bitmaps BOLT 2 asks for.
pub(crate) fn wire_channel_type(commitment: bolt3::ChannelType) -> ChannelType {
    if commitment.anchors {
        ChannelType::anchors()
    } else {
        ChannelType::static_remote_key()
    }
}

/// The commitment format a `channel_type` names, if it is one we build.
fn commitment_type(ct: &ChannelType) -> Option<bolt3::ChannelType> {
    [
        bolt3::ChannelType::STATIC_REMOTE_KEY,
        bolt3::ChannelType::ANCHORS,
    ]
    .into_iter()
    .find(|t| wire_channel_type(*t) == *ct)
}

/// The commitment format we propose as funder: anchors when we use them and the peer's
/// `init` offers `option_anchors`, else `option_static_remotekey` (BOLT 2: not a feature
/// that was not negotiated).
pub(crate) fn proposed_channel_type(
    their_features: &Features,
    config: &ChannelConfig,
) -> bolt3::ChannelType {
    if config.prefer_anchors && their_features.supports(Feature::Anchors) {
        bolt3::ChannelType::ANCHORS
    } else {
        bolt3::ChannelType::STATIC_REMOTE_KEY
    }
}

/// A `channel_type` for an error text: its features by name, e.g.
/// `StaticRemoteKey(12)+ScidAlias(46)`.
fn describe(ct: &ChannelType) -> String {
    let names: Vec<String> =
        ct.0.set_bits()
            .map(|bit| match Feature::from_bit(bit) {
                Some(f) => format!("{f:?}({bit})"),
                None => format!("bit {bit}"),
            })
            .collect();
    if names.is_empty() {
        "the empty type".into()
    } else {
        names.join("+")
    }
}

/// The fundee's rule for `open_channel.channel_type`: present, and static_remotekey or (when
/// we use them) anchors.
fn accepted_channel_type(
    ct: &Option<ChannelType>,
    config: &ChannelConfig,
) -> Result<bolt3::ChannelType, ValidationError> {
    let Some(ct) = ct else {
        return fail("channel_type", "missing (required)".into());
    };
    match commitment_type(ct) {
        Some(t) if t.anchors && !config.prefer_anchors => fail(
            "channel_type",
            format!(
                "{} is not accepted: anchor channels are disabled here (prefer_anchors is off; \
                 only option_static_remotekey)",
                describe(ct)
            ),
        ),
        Some(t) => Ok(t),
        None => fail(
            "channel_type",
            format!(
                "{} is not supported (only option_static_remotekey, or option_anchors with it)",
                describe(ct)
            ),
        ),
    }
}

/// The funding amount, push and feerate rules shared by both roles.
fn check_amounts(
    funding_sat: u64,
    push_msat: u64,
    feerate_per_kw: u32,
    fundee_reserve_sat: u64,
    channel_type: bolt3::ChannelType,
    config: &ChannelConfig,
) -> Result<(), ValidationError> {
    if funding_sat < config.min_funding_sat {
        return fail(
            "funding_satoshis",
            format!(
                "{funding_sat} is below our minimum {}",
                config.min_funding_sat
            ),
        );
    }
    if funding_sat > config.funding_cap_sat() {
        return fail(
            "funding_satoshis",
            format!(
                "{funding_sat} is above the limit {} (large channels {})",
                config.funding_cap_sat(),
                if config.large_channels {
                    "allowed"
                } else {
                    "not negotiated"
                }
            ),
        );
    }
    let funding_msat = funding_sat * 1000;
    if push_msat > funding_msat {
        return fail(
            "push_msat",
            format!("{push_msat} is above the funding ({funding_msat} msat)"),
        );
    }
    let funder_sat = (funding_msat - push_msat) / 1000;
    // The funder pays the commitment fee and, with anchors, both anchor outputs (BOLT 3).
    let anchors = if channel_type.anchors {
        2 * ANCHOR_OUTPUT_VALUE.to_sat()
    } else {
        0
    };
    let fee = commitment_fee(feerate_per_kw, 0, channel_type).to_sat() + anchors;
    if funder_sat < fee {
        let what = if channel_type.anchors {
            "the commitment fee and the two anchors"
        } else {
            "the commitment fee"
        };
        return fail(
            "push_msat",
            format!("the funder keeps {funder_sat} sat, less than {what} {fee}"),
        );
    }
    let to_funder = funder_sat - fee;
    let to_fundee = push_msat / 1000;
    if to_funder <= fundee_reserve_sat && to_fundee <= fundee_reserve_sat {
        return fail(
            "channel_reserve_satoshis",
            format!(
                "both initial balances ({to_funder}, {to_fundee}) are within the reserve {fundee_reserve_sat}"
            ),
        );
    }
    Ok(())
}

/// Checks our own open command for the commitment format we will propose.
pub(crate) fn validate_command(
    params: &OutboundParams,
    channel_type: bolt3::ChannelType,
    config: &ChannelConfig,
) -> Result<(), ValidationError> {
    let feerate = params.commitment_feerate_per_kw.max(config.feerate_floor());
    check_amounts(
        params.funding_sat,
        params.push_msat,
        feerate,
        0,
        channel_type,
        config,
    )?;
    if feerate > config.max_feerate_per_kw {
        return fail(
            "feerate_per_kw",
            format!("{feerate} is above our limit {}", config.max_feerate_per_kw),
        );
    }
    Ok(())
}

/// Checks a received `open_channel` (we are the fundee); returns the commitment format its
/// `channel_type` names.
pub(crate) fn validate_open(
    msg: &OpenChannel,
    config: &ChannelConfig,
) -> Result<bolt3::ChannelType, ValidationError> {
    if msg.chain_hash != config.chain_hash {
        return fail(
            "chain_hash",
            format!("{} is not our chain {}", msg.chain_hash, config.chain_hash),
        );
    }
    if msg.feerate_per_kw < config.feerate_floor().max(MIN_FEERATE_PER_KW) {
        return fail(
            "feerate_per_kw",
            format!(
                "{} is below our minimum {}",
                msg.feerate_per_kw,
                config.feerate_floor()
            ),
        );
    }
    if msg.feerate_per_kw > config.max_feerate_per_kw {
        return fail(
            "feerate_per_kw",
            format!(
                "{} is above our limit {}",
                msg.feerate_per_kw, config.max_feerate_per_kw
            ),
        );
    }
    let channel_type = accepted_channel_type(&msg.channel_type, config)?;
    check_amounts(
        msg.funding_satoshis,
        msg.push_msat,
        msg.feerate_per_kw,
        msg.channel_reserve_satoshis,
        channel_type,
        config,
    )?;
    check_common(&PeerParams::from(msg), msg.funding_satoshis, config)?;
    if msg.dust_limit_satoshis > msg.channel_reserve_satoshis {
        return fail(
            "dust_limit_satoshis",
            format!(
                "{} is above the sender's channel_reserve_satoshis {}",
                msg.dust_limit_satoshis, msg.channel_reserve_satoshis
            ),
        );
    }
    Ok(channel_type)
}

/// What the funder sent, for checking `accept_channel` against it.
pub(crate) struct SentOpen {
    pub channel_type: bolt3::ChannelType,
    pub funding_sat: u64,
    pub dust_limit_sat: u64,
    pub channel_reserve_sat: u64,
}

/// Checks a received `accept_channel` (we are the funder); returns the effective
/// `minimum_depth` (at least 1: no zero-conf).
pub(crate) fn validate_accept(
    msg: &AcceptChannel,
    sent: &SentOpen,
    config: &ChannelConfig,
) -> Result<u32, ValidationError> {
    // BOLT 2: the fundee echoes our channel_type; anything else fails the channel.
    let sent_type = wire_channel_type(sent.channel_type);
    match &msg.channel_type {
        None => return fail("channel_type", "missing (required)".into()),
        Some(ct) if *ct != sent_type => {
            return fail(
                "channel_type",
                format!(
                    "{} does not match the {} we sent",
                    describe(ct),
                    describe(&sent_type)
                ),
            )
        }
        Some(_) => {}
    }
    check_common(&PeerParams::from(msg), sent.funding_sat, config)?;
    if msg.channel_reserve_satoshis < sent.dust_limit_sat {
        return fail(
            "channel_reserve_satoshis",
            format!(
                "{} is below our dust_limit_satoshis {}",
                msg.channel_reserve_satoshis, sent.dust_limit_sat
            ),
        );
    }
    if sent.channel_reserve_sat < msg.dust_limit_satoshis {
        return fail(
            "dust_limit_satoshis",
            format!(
                "{} is above our channel_reserve_satoshis {}",
                msg.dust_limit_satoshis, sent.channel_reserve_sat
            ),
        );
    }
    if msg.minimum_depth > config.max_minimum_depth {
        return fail(
            "minimum_depth",
            format!(
                "{} is above our limit {}",
                msg.minimum_depth, config.max_minimum_depth
            ),
        );
    }
    Ok(msg.minimum_depth.max(1))
}
