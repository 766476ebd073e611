//! The commitment state of a ready channel (BOLT 2 "Normal Operation"): both sides' current
//! commitments, the one we signed for the peer and wait to see revoked, the updates of each
//! side by how far they got, and the secrets the peer revealed.
//!
//! ```text
//! our updates:   proposed --(we sign)--> signed --(their revoke_and_ack)--> acked --(their commitment_signed)--> in our commitment
//! their updates: proposed --(their commitment_signed)--> acked --(we sign)--> signed --(their revoke_and_ack)--> in both
//! ```
//!
//! A commitment we sign for the peer holds our proposed and their acked updates; one they sign
//! for us holds our acked and their proposed updates. One `commitment_signed` of ours is
//! unrevoked at a time ([`RemoteNext::Signed`]); updates made meanwhile wait in `proposed`.
//! The only update without HTLCs is the funder's `update_fee`; HTLC updates become more
//! [`Update`] variants and [`Spec`] gains the HTLC set.
//!
//! Pure data and pure steps: the handlers in `update.rs` sign, verify and decide; this file
//! only moves updates between sets, counts commitment numbers and stores the layout of record
//! field 60.

use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::PublicKey;

use crate::keys::CounterpartyCommitmentSecrets;
use crate::wire::codec::{Reader, WireWrite};
use crate::wire::{DecodeError, WireField};

/// What one commitment pays, seen from our side (the owner's `to_local` is `our_msat` for our
/// commitment and `their_msat` for theirs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spec {
    pub(crate) feerate_per_kw: u32,
    pub(crate) our_msat: u64,
    pub(crate) their_msat: u64,
}

impl Spec {
    /// The spec after `ours` and `theirs` (each in the order proposed). An `update_fee`
    /// replaces the feerate; only the funder sends them, so at most one side has any.
    pub(crate) fn apply(self, ours: &[Update], theirs: &[Update]) -> Spec {
        let mut spec = self;
        for update in ours.iter().chain(theirs) {
            match update {
                Update::Fee { feerate_per_kw } => spec.feerate_per_kw = *feerate_per_kw,
            }
        }
        spec
    }
}

/// One update to the commitments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Update {
    /// `update_fee`.
    Fee { feerate_per_kw: u32 },
}

/// Our current commitment: what we would broadcast, with the peer's signature of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LocalCommit {
    pub(crate) number: u64,
    pub(crate) spec: Spec,
    /// Our per-commitment point for it.
    pub(crate) point: PublicKey,
    pub(crate) their_sig: Signature,
}

/// A commitment of the peer's, with the per-commitment point it was built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RemoteCommit {
    pub(crate) number: u64,
    pub(crate) spec: Spec,
    pub(crate) point: PublicKey,
}

/// A commitment we signed and sent, whose predecessor the peer has not revoked yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SignedRemote {
    pub(crate) commit: RemoteCommit,
    /// Our signature, as sent (retransmitted as is).
    pub(crate) our_sig: Signature,
    /// Our commitment number when we sent it: it went out after the `revoke_and_ack` that
    /// made that number current, which orders their retransmission.
    pub(crate) sent_after_local: u64,
}

/// What comes after the peer's current commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RemoteNext {
    /// Nothing signed: the point the next one will use.
    Point(PublicKey),
    /// Signed and sent; waiting for `revoke_and_ack`.
    Signed(SignedRemote),
}

/// Our updates by how far they got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LocalChanges {
    pub(crate) proposed: Vec<Update>,
    pub(crate) signed: Vec<Update>,
    pub(crate) acked: Vec<Update>,
}

/// The peer's updates by how far they got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RemoteChanges {
    pub(crate) proposed: Vec<Update>,
    pub(crate) acked: Vec<Update>,
    pub(crate) signed: Vec<Update>,
}

/// The whole commitment state of a ready channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Commitments {
    pub(crate) local: LocalCommit,
    pub(crate) remote: RemoteCommit,
    pub(crate) next: RemoteNext,
    pub(crate) ours: LocalChanges,
    pub(crate) theirs: RemoteChanges,
    /// The per-commitment secrets the peer revealed (BOLT 3 compact storage).
    pub(crate) their_secrets: CounterpartyCommitmentSecrets,
    /// Watchdog: the first tick seen with an update in flight and no progress since (reset
    /// by every change). Not a protocol fact; kept in the record only so that a channel
    /// rebuilt from it is the same value.
    pub(crate) stalled_since: Option<u64>,
}

impl Commitments {
    /// The state right after `channel_ready`: both sides at commitment 0.
    pub(crate) fn initial(
        spec: Spec,
        our_first_point: PublicKey,
        their_sig: Signature,
        their_first_point: PublicKey,
        their_second_point: PublicKey,
    ) -> Commitments {
        Commitments {
            local: LocalCommit {
                number: 0,
                spec,
                point: our_first_point,
                their_sig,
            },
            remote: RemoteCommit {
                number: 0,
                spec,
                point: their_first_point,
            },
            next: RemoteNext::Point(their_second_point),
            ours: LocalChanges::default(),
            theirs: RemoteChanges::default(),
            their_secrets: CounterpartyCommitmentSecrets::new(),
            stalled_since: None,
        }
    }

    /// Whether a `commitment_signed` of ours would carry anything.
    pub(crate) fn can_sign(&self) -> bool {
        matches!(self.next, RemoteNext::Point(_))
            && !(self.ours.proposed.is_empty() && self.theirs.acked.is_empty())
    }

    /// The commitment we would sign next for the peer (with the point it uses), if we may.
    pub(crate) fn next_remote(&self) -> Option<RemoteCommit> {
        let RemoteNext::Point(point) = self.next else {
            return None;
        };
        Some(RemoteCommit {
            number: self.remote.number + 1,
            spec: self
                .remote
                .spec
                .apply(&self.ours.proposed, &self.theirs.acked),
            point,
        })
    }

    /// We signed `commit` (from [`Commitments::next_remote`]) with `our_sig`.
    pub(crate) fn signed(&mut self, commit: RemoteCommit, our_sig: Signature) {
        self.ours.signed = std::mem::take(&mut self.ours.proposed);
        self.theirs.signed = std::mem::take(&mut self.theirs.acked);
        self.next = RemoteNext::Signed(SignedRemote {
            commit,
            our_sig,
            sent_after_local: self.local.number,
        });
    }

    /// The commitment the peer's next `commitment_signed` signs for us.
    pub(crate) fn next_local_spec(&self) -> Spec {
        self.local
            .spec
            .apply(&self.ours.acked, &self.theirs.proposed)
    }

    /// The peer signed our next commitment (`spec` from [`Commitments::next_local_spec`]).
    pub(crate) fn received_commitment(
        &mut self,
        spec: Spec,
        point: PublicKey,
        their_sig: Signature,
    ) {
        self.local = LocalCommit {
            number: self.local.number + 1,
            spec,
            point,
            their_sig,
        };
        self.ours.acked.clear();
        let proposed = std::mem::take(&mut self.theirs.proposed);
        self.theirs.acked.extend(proposed);
    }

    /// The peer revoked its previous commitment: the one we signed is current now.
    pub(crate) fn revoked(&mut self, signed: SignedRemote, next_point: PublicKey) {
        self.remote = signed.commit;
        self.next = RemoteNext::Point(next_point);
        let signed_ours = std::mem::take(&mut self.ours.signed);
        self.ours.acked.extend(signed_ours);
        self.theirs.signed.clear();
    }

    /// The connection dropped: updates no `commitment_signed` covers are forgotten (BOLT 2:
    /// the peer's "MUST reverse"; ours are proposed again by whoever wanted them).
    pub(crate) fn drop_unsigned(&mut self) {
        self.ours.proposed.clear();
        self.theirs.proposed.clear();
        // A new connection (or process: tick clocks start again) restarts the watchdog.
        self.stalled_since = None;
    }

    /// Whether anything is in flight: an update not in both commitments, or a signature not
    /// yet answered by a revocation.
    pub(crate) fn pending(&self) -> bool {
        matches!(self.next, RemoteNext::Signed(_))
            || !(self.ours.proposed.is_empty()
                && self.ours.signed.is_empty()
                && self.ours.acked.is_empty()
                && self.theirs.proposed.is_empty()
                && self.theirs.acked.is_empty()
                && self.theirs.signed.is_empty())
    }

    /// The latest feerate we asked for as funder (proposed, signed or in force).
    pub(crate) fn latest_feerate(&self) -> u32 {
        self.local
            .spec
            .apply(&self.ours.acked, &[])
            .apply(&self.ours.signed, &[])
            .apply(&self.ours.proposed, &[])
            .feerate_per_kw
    }
}

// ----- Record field 60: the layout of `Commitments` (a nested TLV stream). -----

/// Record form of a list of updates: each a `u16`-prefixed entry whose first byte is its kind
/// (1 = fee, then the `u32` feerate); kinds this build does not know are an error (an
/// unknown update could change a commitment).
#[derive(Debug)]
pub(crate) enum UpdateList {}

const KIND_FEE: u8 = 1;

impl WireField for UpdateList {
    type Value = Vec<Update>;
    fn write(value: &Vec<Update>, out: &mut Vec<u8>) {
        for update in value {
            let mut entry = Vec::new();
            match update {
                Update::Fee { feerate_per_kw } => {
                    entry.put_u8(KIND_FEE);
                    entry.put_u32(*feerate_per_kw);
                }
            }
            out.put_u16_prefixed(&entry);
        }
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<Update>, DecodeError> {
        let mut updates = Vec::new();
        while !r.is_empty() {
            let mut entry = Reader::new(r.read_u16_prefixed(field)?);
            let update = match entry.read_u8(field)? {
                KIND_FEE => Update::Fee {
                    feerate_per_kw: entry.read_u32(field)?,
                },
                _ => {
                    return Err(DecodeError::InvalidValue {
                        field,
                        reason: "unknown update kind",
                    })
                }
            };
            entry.finish(field)?;
            updates.push(update);
        }
        Ok(updates)
    }
}

/// Record form of the peer's revealed secrets (their BOLT 3 compact encoding).
#[derive(Debug)]
pub(crate) enum Secrets {}

impl WireField for Secrets {
    type Value = CounterpartyCommitmentSecrets;
    fn write(value: &CounterpartyCommitmentSecrets, out: &mut Vec<u8>) {
        out.put_bytes(&value.encode());
    }
    fn read(
        r: &mut Reader<'_>,
        field: &'static str,
    ) -> Result<CounterpartyCommitmentSecrets, DecodeError> {
        CounterpartyCommitmentSecrets::decode(r.read_rest()).map_err(|_| {
            DecodeError::InvalidValue {
                field,
                reason: "invalid per-commitment secret storage",
            }
        })
    }
}

crate::wire_message! {
    struct Spec {
        feerate_per_kw: u32,
        our_msat: u64,
        their_msat: u64,
    }
}

crate::wire_message! {
    struct LocalCommit {
        number: u64,
        spec: Spec,
        point: PublicKey,
        their_sig: Signature,
    }
}

crate::wire_message! {
    struct RemoteCommit {
        number: u64,
        spec: Spec,
        point: PublicKey,
    }
}

crate::wire_message! {
    struct SignedRemote {
        commit: RemoteCommit,
        our_sig: Signature,
        sent_after_local: u64,
    }
}

/// The flat form of [`Commitments`] (one TLV per part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommitmentsFields {
    local: LocalCommit,
    remote: RemoteCommit,
    next_point: Option<PublicKey>,
    next_signed: Option<SignedRemote>,
    ours_proposed: Vec<Update>,
    ours_signed: Vec<Update>,
    ours_acked: Vec<Update>,
    theirs_proposed: Vec<Update>,
    theirs_acked: Vec<Update>,
    theirs_signed: Vec<Update>,
    their_secrets: CounterpartyCommitmentSecrets,
    stalled_since: Option<u64>,
}

crate::wire_message! {
    struct CommitmentsFields {}
    tlvs {
        0 => local: required LocalCommit,
        2 => remote: required RemoteCommit,
        4 => next_point: option PublicKey,
        6 => next_signed: option SignedRemote,
        8 => ours_proposed: required UpdateList,
        10 => ours_signed: required UpdateList,
        12 => ours_acked: required UpdateList,
        14 => theirs_proposed: required UpdateList,
        16 => theirs_acked: required UpdateList,
        18 => theirs_signed: required UpdateList,
        20 => their_secrets: required Secrets,
        21 => stalled_since: option u64,
    }
}

/// Record field 60.
#[derive(Debug)]
pub(crate) enum CommitmentsForm {}

impl WireField for CommitmentsForm {
    type Value = Commitments;
    fn write(c: &Commitments, out: &mut Vec<u8>) {
        let (next_point, next_signed) = match c.next {
            RemoteNext::Point(p) => (Some(p), None),
            RemoteNext::Signed(s) => (None, Some(s)),
        };
        CommitmentsFields::write(
            &CommitmentsFields {
                local: c.local,
                remote: c.remote,
                next_point,
                next_signed,
                ours_proposed: c.ours.proposed.clone(),
                ours_signed: c.ours.signed.clone(),
                ours_acked: c.ours.acked.clone(),
                theirs_proposed: c.theirs.proposed.clone(),
                theirs_acked: c.theirs.acked.clone(),
                theirs_signed: c.theirs.signed.clone(),
                their_secrets: c.their_secrets.clone(),
                stalled_since: c.stalled_since,
            },
            out,
        );
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Commitments, DecodeError> {
        let f = CommitmentsFields::read(r, field)?;
        let next = match (f.next_point, f.next_signed) {
            (Some(p), None) => RemoteNext::Point(p),
            (None, Some(s)) => RemoteNext::Signed(s),
            _ => {
                return Err(DecodeError::InvalidValue {
                    field,
                    reason: "exactly one of next point and next signed commitment",
                })
            }
        };
        Ok(Commitments {
            local: f.local,
            remote: f.remote,
            next,
            ours: LocalChanges {
                proposed: f.ours_proposed,
                signed: f.ours_signed,
                acked: f.ours_acked,
            },
            theirs: RemoteChanges {
                proposed: f.theirs_proposed,
                acked: f.theirs_acked,
                signed: f.theirs_signed,
            },
            their_secrets: f.their_secrets,
            stalled_since: f.stalled_since,
        })
    }
}
