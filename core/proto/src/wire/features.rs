//! Feature bits ([BOLT 9](https://github.com/lightning/bolts/blob/master/09-features.md)) and
//! `channel_type`.
//!
//! A feature vector is a big-endian bit field: bit 0 is the least significant bit of the last
//! byte. Features come in pairs: the even bit means "required", the odd bit "supported".

use std::fmt;

/// A feature Tern knows, named by its pair of bits (BOLT 9 table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// `option_data_loss_protect` (0/1).
    DataLossProtect,
    /// `option_upfront_shutdown_script` (4/5).
    UpfrontShutdownScript,
    /// `gossip_queries` (6/7).
    GossipQueries,
    /// `var_onion_optin` (8/9).
    VarOnionOptin,
    /// `gossip_queries_ex` (10/11).
    GossipQueriesEx,
    /// `option_static_remotekey` (12/13).
    StaticRemoteKey,
    /// `payment_secret` (14/15).
    PaymentSecret,
    /// `basic_mpp` (16/17).
    BasicMpp,
    /// `option_support_large_channel` (18/19).
    LargeChannel,
    /// `option_anchors` (22/23), zero-fee HTLC transactions.
    Anchors,
    /// `option_route_blinding` (24/25).
    RouteBlinding,
    /// `option_shutdown_anysegwit` (26/27).
    ShutdownAnySegwit,
    /// `option_dual_fund` (28/29).
    DualFund,
    /// `option_quiesce` (34/35).
    Quiesce,
    /// `option_attribution_data` (36/37).
    AttributionData,
    /// `option_onion_messages` (38/39).
    OnionMessages,
    /// `option_provide_storage` (42/43).
    ProvideStorage,
    /// `option_channel_type` (44/45).
    ChannelType,
    /// `option_scid_alias` (46/47).
    ScidAlias,
    /// `option_payment_metadata` (48/49).
    PaymentMetadata,
    /// `option_zeroconf` (50/51).
    ZeroConf,
    /// `option_simple_close` (60/61).
    SimpleClose,
    /// `option_splice` (62/63).
    Splice,
}

impl Feature {
    /// Every known feature.
    pub const ALL: [Feature; 23] = [
        Feature::DataLossProtect,
        Feature::UpfrontShutdownScript,
        Feature::GossipQueries,
        Feature::VarOnionOptin,
        Feature::GossipQueriesEx,
        Feature::StaticRemoteKey,
        Feature::PaymentSecret,
        Feature::BasicMpp,
        Feature::LargeChannel,
        Feature::Anchors,
        Feature::RouteBlinding,
        Feature::ShutdownAnySegwit,
        Feature::DualFund,
        Feature::Quiesce,
        Feature::AttributionData,
        Feature::OnionMessages,
        Feature::ProvideStorage,
        Feature::ChannelType,
        Feature::ScidAlias,
        Feature::PaymentMetadata,
        Feature::ZeroConf,
        Feature::SimpleClose,
        Feature::Splice,
    ];

    /// The even ("required") bit of the pair.
    pub const fn required_bit(self) -> usize {
        match self {
            Feature::DataLossProtect => 0,
            Feature::UpfrontShutdownScript => 4,
            Feature::GossipQueries => 6,
            Feature::VarOnionOptin => 8,
            Feature::GossipQueriesEx => 10,
            Feature::StaticRemoteKey => 12,
            Feature::PaymentSecret => 14,
            Feature::BasicMpp => 16,
            Feature::LargeChannel => 18,
            Feature::Anchors => 22,
            Feature::RouteBlinding => 24,
            Feature::ShutdownAnySegwit => 26,
            Feature::DualFund => 28,
            Feature::Quiesce => 34,
            Feature::AttributionData => 36,
            Feature::OnionMessages => 38,
            Feature::ProvideStorage => 42,
            Feature::ChannelType => 44,
            Feature::ScidAlias => 46,
            Feature::PaymentMetadata => 48,
            Feature::ZeroConf => 50,
            Feature::SimpleClose => 60,
            Feature::Splice => 62,
        }
    }

    /// The odd ("supported") bit of the pair.
    pub const fn optional_bit(self) -> usize {
        self.required_bit() + 1
    }

    /// The features this one depends on (BOLT 9 "Dependencies" column).
    pub fn dependencies(self) -> &'static [Feature] {
        match self {
            Feature::BasicMpp => &[Feature::PaymentSecret],
            Feature::ZeroConf => &[Feature::ScidAlias],
            Feature::SimpleClose => &[Feature::ShutdownAnySegwit],
            _ => &[],
        }
    }

    /// The known feature owning `bit`, if any.
    pub fn from_bit(bit: usize) -> Option<Feature> {
        Feature::ALL
            .into_iter()
            .find(|f| f.required_bit() == bit & !1)
    }
}

/// Why a peer's feature vector is unacceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeatureError {
    /// The peer requires a feature (even bit) that we do not know or do not support.
    #[error("peer requires feature bit {0}, which we do not support")]
    UnsupportedRequired(usize),
    /// We require a feature the peer does not offer.
    #[error("peer does not offer feature {0:?}, which we require")]
    MissingRequired(Feature),
    /// The vector sets a feature without one of its dependencies.
    #[error("feature {feature:?} is set without its dependency {dependency:?}")]
    MissingDependency {
        /// The feature that was set.
        feature: Feature,
        /// The dependency that was not.
        dependency: Feature,
    },
}

/// A feature bit vector, as carried by `init`, `channel_announcement` and `channel_type`.
///
/// The bytes are kept in wire order (big-endian) and always minimal: no leading zero bytes.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Features {
    /// Little-endian bytes internally (index 0 holds bits 0..8), trimmed of trailing zeros.
    le: Vec<u8>,
}

impl fmt::Debug for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Features{:?}", self.set_bits().collect::<Vec<_>>())
    }
}

impl Features {
    /// An empty vector.
    pub fn empty() -> Self {
        Features::default()
    }

    /// Parses wire bytes (big-endian bit field). Leading zero bytes are accepted and dropped.
    pub fn from_be_bytes(bytes: &[u8]) -> Self {
        let mut le: Vec<u8> = bytes.iter().rev().copied().collect();
        trim(&mut le);
        Features { le }
    }

    /// The minimal wire encoding (big-endian; empty when no bit is set).
    pub fn to_be_bytes(&self) -> Vec<u8> {
        self.le.iter().rev().copied().collect()
    }

    /// Whether `bit` is set.
    pub fn is_set(&self, bit: usize) -> bool {
        self.le
            .get(bit / 8)
            .is_some_and(|byte| byte & (1 << (bit % 8)) != 0)
    }

    /// Sets `bit`.
    pub fn set_bit(&mut self, bit: usize) {
        let idx = bit / 8;
        if self.le.len() <= idx {
            self.le.resize(idx + 1, 0);
        }
        if let Some(byte) = self.le.get_mut(idx) {
            *byte |= 1 << (bit % 8);
        }
    }

    /// Clears `bit`.
    pub fn clear_bit(&mut self, bit: usize) {
        if let Some(byte) = self.le.get_mut(bit / 8) {
            *byte &= !(1 << (bit % 8));
        }
        trim(&mut self.le);
    }

    /// Marks `feature` as supported (odd bit), clearing its required bit.
    pub fn set_optional(&mut self, feature: Feature) -> &mut Self {
        self.clear_bit(feature.required_bit());
        self.set_bit(feature.optional_bit());
        self
    }

    /// Marks `feature` as required (even bit), clearing its optional bit.
    pub fn set_required(&mut self, feature: Feature) -> &mut Self {
        self.clear_bit(feature.optional_bit());
        self.set_bit(feature.required_bit());
        self
    }

    /// Builder form of [`Features::set_optional`].
    pub fn with_optional(mut self, feature: Feature) -> Self {
        self.set_optional(feature);
        self
    }

    /// Builder form of [`Features::set_required`].
    pub fn with_required(mut self, feature: Feature) -> Self {
        self.set_required(feature);
        self
    }

    /// Whether either bit of `feature` is set.
    pub fn supports(&self, feature: Feature) -> bool {
        self.is_set(feature.required_bit()) || self.is_set(feature.optional_bit())
    }

    /// Whether the even bit of `feature` is set.
    pub fn requires(&self, feature: Feature) -> bool {
        self.is_set(feature.required_bit())
    }

    /// All set bits, in increasing order.
    pub fn set_bits(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.le.len() * 8).filter(|b| self.is_set(*b))
    }

    /// Bitwise OR of two vectors (BOLT 1: `globalfeatures` and `features` are combined so).
    pub fn union(&self, other: &Features) -> Features {
        let len = self.le.len().max(other.le.len());
        let mut le = vec![0u8; len];
        for (i, byte) in le.iter_mut().enumerate() {
            *byte = self.le.get(i).copied().unwrap_or(0) | other.le.get(i).copied().unwrap_or(0);
        }
        trim(&mut le);
        Features { le }
    }

    /// Checks that every known feature set here has its dependencies set (BOLT 9: "MUST set
    /// all transitive feature dependencies").
    pub fn check_dependencies(&self) -> Result<(), FeatureError> {
        for feature in Feature::ALL {
            if self.supports(feature) {
                for dep in feature.dependencies() {
                    if !self.supports(*dep) {
                        return Err(FeatureError::MissingDependency {
                            feature,
                            dependency: *dep,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether a peer advertising `theirs` can talk to us advertising `self`
    /// (BOLT 1 `init` receiver rules):
    /// - every even bit they set must be a feature we support (set in `self`, either bit);
    /// - every feature we require must be supported by them;
    /// - their vector must set all dependencies of the known features it sets.
    ///
    /// Unknown odd bits are ignored.
    pub fn check_compatible(&self, theirs: &Features) -> Result<(), FeatureError> {
        for bit in theirs.set_bits().filter(|b| b % 2 == 0) {
            let ours = self.is_set(bit) || self.is_set(bit + 1);
            if !ours {
                return Err(FeatureError::UnsupportedRequired(bit));
            }
        }
        for feature in Feature::ALL {
            if self.requires(feature) && !theirs.supports(feature) {
                return Err(FeatureError::MissingRequired(feature));
            }
        }
        theirs.check_dependencies()
    }

    /// The features Tern sends in `init`: it offers (odd bits) data_loss_protect,
    /// var_onion_optin, static_remote_key, payment_secret, anchors (zero-fee HTLC
    /// transactions, negotiated per channel through `channel_type`), shutdown_anysegwit (so
    /// that a peer accepts a witness v1+ shutdown script such as P2TR from us, and we accept
    /// its) and channel_type, and requires nothing, so any spec-following peer (LDK
    /// included) accepts it.
    pub fn tern_init() -> Features {
        Features::empty()
            .with_optional(Feature::DataLossProtect)
            .with_optional(Feature::VarOnionOptin)
            .with_optional(Feature::StaticRemoteKey)
            .with_optional(Feature::PaymentSecret)
            .with_optional(Feature::Anchors)
            .with_optional(Feature::ShutdownAnySegwit)
            .with_optional(Feature::ChannelType)
    }

    /// Whether these (a peer's `init`) features offer `option_shutdown_anysegwit` (26 or 27).
    pub fn supports_shutdown_anysegwit(&self) -> bool {
        self.supports(Feature::ShutdownAnySegwit)
    }

    /// Whether `option_shutdown_anysegwit` is negotiated between our `init` features and
    /// theirs: both set bit 26 or 27 (BOLT 9: a feature is negotiated when both offer it).
    /// Only then may either side's `shutdown` script be a witness v1+ program (BOLT 2).
    pub fn shutdown_anysegwit_negotiated(ours: &Features, theirs: &Features) -> bool {
        ours.supports_shutdown_anysegwit() && theirs.supports_shutdown_anysegwit()
    }
}

fn trim(le: &mut Vec<u8>) {
    while le.last() == Some(&0) {
        le.pop();
    }
}

/// A `channel_type` (BOLT 2 `open_channel` TLV 1): a feature vector naming the commitment
/// format and channel options both sides agree on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ChannelType(pub Features);

impl ChannelType {
    /// `option_static_remotekey` only: the simplest channel type still in use.
    pub fn static_remote_key() -> Self {
        ChannelType(Features::empty().with_required(Feature::StaticRemoteKey))
    }

    /// `option_anchors` with `option_static_remotekey` (zero-fee HTLC anchors).
    pub fn anchors() -> Self {
        ChannelType(
            Features::empty()
                .with_required(Feature::StaticRemoteKey)
                .with_required(Feature::Anchors),
        )
    }

    /// Adds `option_scid_alias` (a private channel that must only be referred to by alias).
    pub fn with_scid_alias(mut self) -> Self {
        self.0.set_required(Feature::ScidAlias);
        self
    }

    /// Adds `option_zeroconf`.
    pub fn with_zero_conf(mut self) -> Self {
        self.0.set_required(Feature::ZeroConf);
        self
    }

    /// Parses wire bytes.
    pub fn from_be_bytes(bytes: &[u8]) -> Self {
        ChannelType(Features::from_be_bytes(bytes))
    }

    /// The minimal wire encoding.
    pub fn to_be_bytes(&self) -> Vec<u8> {
        self.0.to_be_bytes()
    }

    /// Whether this is anchors (`option_anchors`).
    pub fn is_anchors(&self) -> bool {
        self.0.is_set(Feature::Anchors.required_bit())
    }

    /// Whether both sides' `init` features allow this channel type: every bit it sets must be
    /// even (channel types only use required bits) and the feature must be supported by both.
    pub fn is_supported_by(&self, ours: &Features, theirs: &Features) -> bool {
        self.0.set_bits().all(|bit| {
            bit % 2 == 0
                && Feature::from_bit(bit).is_some_and(|f| ours.supports(f) && theirs.supports(f))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_layout_matches_bolt9() {
        // bit 0 is the least significant bit of the last byte.
        let f = Features::empty().with_optional(Feature::DataLossProtect);
        assert_eq!(f.to_be_bytes(), vec![0x02]);
        let f = Features::empty().with_required(Feature::StaticRemoteKey);
        assert_eq!(f.to_be_bytes(), vec![0x10, 0x00]);
        assert_eq!(Features::from_be_bytes(&[0, 0x10, 0x00]), f);
    }

    #[test]
    fn tern_init_offers_and_requires_nothing() {
        let f = Features::tern_init();
        for feature in [
            Feature::DataLossProtect,
            Feature::VarOnionOptin,
            Feature::StaticRemoteKey,
            Feature::PaymentSecret,
            Feature::Anchors,
            Feature::ShutdownAnySegwit,
            Feature::ChannelType,
        ] {
            assert!(f.supports(feature) && !f.requires(feature), "{feature:?}");
        }
        // option_shutdown_anysegwit on its odd bit (27), so a P2TR shutdown works with LDK.
        assert!(f.is_set(27) && !f.is_set(26));
        assert!(f.supports_shutdown_anysegwit());
        assert!(f.set_bits().all(|b| b % 2 == 1));
        // option_anchors is offered on its odd bit at our spec commit (22/23).
        assert!(f.is_set(23) && !f.is_set(22));
        assert_eq!(f.check_dependencies(), Ok(()));
    }

    #[test]
    fn compatibility_rules() {
        let ours = Features::tern_init();
        // Unknown odd bit: fine.
        let mut theirs = Features::empty();
        theirs.set_bit(101);
        assert_eq!(ours.check_compatible(&theirs), Ok(()));
        // Unknown even bit: refused.
        theirs.set_bit(100);
        assert_eq!(
            ours.check_compatible(&theirs),
            Err(FeatureError::UnsupportedRequired(100))
        );
        // Known required bit we support (optional on our side): fine.
        let theirs = Features::empty().with_required(Feature::StaticRemoteKey);
        assert_eq!(ours.check_compatible(&theirs), Ok(()));
        // Missing dependency.
        let theirs = Features::empty().with_optional(Feature::BasicMpp);
        assert!(matches!(
            ours.check_compatible(&theirs),
            Err(FeatureError::MissingDependency { .. })
        ));
        // We require something they lack.
        let ours = Features::empty().with_required(Feature::Anchors);
        assert_eq!(
            ours.check_compatible(&Features::empty()),
            Err(FeatureError::MissingRequired(Feature::Anchors))
        );
    }

    #[test]
    fn shutdown_anysegwit_needs_both_sides() {
        let ours = Features::tern_init();
        let required = Features::empty().with_required(Feature::ShutdownAnySegwit);
        let optional = Features::empty().with_optional(Feature::ShutdownAnySegwit);
        let lacking = Features::empty().with_optional(Feature::StaticRemoteKey);
        assert!(required.supports_shutdown_anysegwit());
        assert!(optional.supports_shutdown_anysegwit());
        assert!(!lacking.supports_shutdown_anysegwit());
        assert!(Features::shutdown_anysegwit_negotiated(&ours, &required));
        assert!(Features::shutdown_anysegwit_negotiated(&ours, &optional));
        assert!(!Features::shutdown_anysegwit_negotiated(&ours, &lacking));
        assert!(!Features::shutdown_anysegwit_negotiated(
            &lacking, &optional
        ));
        // A peer requiring it (26) is compatible with us now.
        assert_eq!(ours.check_compatible(&required), Ok(()));
    }

    #[test]
    fn channel_type_helpers() {
        let ct = ChannelType::anchors().with_scid_alias();
        assert!(ct.is_anchors());
        let back = ChannelType::from_be_bytes(&ct.to_be_bytes());
        assert_eq!(back, ct);
        let both = Features::empty()
            .with_optional(Feature::StaticRemoteKey)
            .with_optional(Feature::Anchors)
            .with_optional(Feature::ScidAlias);
        assert!(ct.is_supported_by(&both, &both));
        assert!(!ct.is_supported_by(&both, &Features::tern_init()));
    }
}
