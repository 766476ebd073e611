//! Fault injection for tests, modelled on Core Lightning's `dev-disconnect`.
//!
//! A [`FaultPlan`] is an ordered list of [`FaultRule`]s. Only the first rule is armed; it
//! fires on its `nth` matching message, is then consumed, and the next rule becomes armed.
//! Rules are written like Core Lightning's:
//!
//! | rule | effect |
//! |---|---|
//! | `-funding_created` | close the connection instead of sending it |
//! | `+funding_signed` | send it, then close |
//! | `$channel_ready` | drop it silently (pretend it was sent) and keep the connection |
//! | `<accept_channel` | deliver it to the node, then close |
//! | `~commitment_signed:signature` | send it corrupted ([`Mutation`]) and keep the connection |
//!
//! A `*N` suffix fires on the Nth match instead of the first (`-funding_created*2`). A `~`
//! rule names its mutation after a `:`, and only for a message it applies to:
//!
//! | mutation | messages | what is sent instead |
//! |---|---|---|
//! | `signature` | `commitment_signed`, `closing_signed` | a valid signature by another key of another hash |
//! | `secret` | `revoke_and_ack` | the `per_commitment_secret` with its last byte flipped |
//! | `point` | `revoke_and_ack` | a `next_per_commitment_point` that is no point (prefix `0x05`): undecodable |
//! | `feerate_low` | `update_fee` | `feerate_per_kw` 252, below the 253 floor |
//! | `feerate_high` | `update_fee` | `feerate_per_kw` `u32::MAX` |
//! | `script` | `shutdown` | the script `OP_0 <5 bytes>`, no valid shutdown script form |
//! | `duplicate` | any | the message, twice |
//!
//! Every plan also keeps the transcript of the message types its connections sent and
//! received ([`FaultPlan::sent`], [`FaultPlan::received`]), for tests to see what went over
//! the wire.
//! Compiled only in test builds or with the `dev-disconnect` feature.

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use crate::proto::wire::Message;

/// What a rule does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// `-`: close before sending.
    CloseBeforeSend,
    /// `+`: send, then close.
    SendThenClose,
    /// `$`: drop the message silently.
    DropSilently,
    /// `<`: close after receiving (the message is delivered first).
    CloseAfterReceive,
    /// `~`: send the message corrupted and keep the connection.
    Corrupt(Mutation),
}

/// How a `~` rule corrupts the message it fires on (the module's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    /// `signature`: a valid signature, by another key, of another hash.
    Signature,
    /// `secret`: the `per_commitment_secret` with its last byte flipped.
    Secret,
    /// `point`: a `next_per_commitment_point` with prefix `0x05` (no point encodes so).
    Point,
    /// `feerate_low`: `feerate_per_kw` 252.
    FeerateLow,
    /// `feerate_high`: `feerate_per_kw` `u32::MAX`.
    FeerateHigh,
    /// `script`: the shutdown script `OP_0 <5 bytes>`.
    Script,
    /// `duplicate`: the message, sent twice.
    Duplicate,
}

impl Mutation {
    fn parse(name: &str, msg_type: u16) -> Option<Mutation> {
        let ty = |n| Message::type_for_name(n);
        let m = match name {
            "signature" => Mutation::Signature,
            "secret" => Mutation::Secret,
            "point" => Mutation::Point,
            "feerate_low" => Mutation::FeerateLow,
            "feerate_high" => Mutation::FeerateHigh,
            "script" => Mutation::Script,
            "duplicate" => Mutation::Duplicate,
            _ => return None,
        };
        let applies = match m {
            Mutation::Signature => {
                Some(msg_type) == ty("commitment_signed") || Some(msg_type) == ty("closing_signed")
            }
            Mutation::Secret | Mutation::Point => Some(msg_type) == ty("revoke_and_ack"),
            Mutation::FeerateLow | Mutation::FeerateHigh => Some(msg_type) == ty("update_fee"),
            Mutation::Script => Some(msg_type) == ty("shutdown"),
            Mutation::Duplicate => true,
        };
        applies.then_some(m)
    }

    /// The encoded messages to send instead of `encoded` (`encoded` itself, unchanged, if it
    /// is not the message the mutation applies to).
    pub fn apply(self, encoded: &[u8]) -> Vec<Vec<u8>> {
        use bitcoin::secp256k1::{Message as Digest, Secp256k1, SecretKey};
        let unchanged = vec![encoded.to_vec()];
        if self == Mutation::Duplicate {
            return vec![encoded.to_vec(), encoded.to_vec()];
        }
        let Ok(mut msg) = Message::decode(encoded) else {
            return unchanged;
        };
        let wrong_signature = || {
            let key = SecretKey::from_slice(&[0x42; 32]).ok()?;
            let digest = Digest::from_digest([0x42; 32]);
            Some(Secp256k1::signing_only().sign_ecdsa(&digest, &key))
        };
        match (self, &mut msg) {
            (Mutation::Signature, Message::CommitmentSigned(m)) => match wrong_signature() {
                Some(sig) => m.signature = sig,
                None => return unchanged,
            },
            (Mutation::Signature, Message::ClosingSigned(m)) => match wrong_signature() {
                Some(sig) => m.signature = sig,
                None => return unchanged,
            },
            (Mutation::Secret, Message::RevokeAndAck(m)) => m.per_commitment_secret[31] ^= 0xff,
            (Mutation::Point, Message::RevokeAndAck(_)) => {
                // type (2) + channel_id (32) + per_commitment_secret (32), then the point.
                let mut bytes = encoded.to_vec();
                match bytes.get_mut(2 + 32 + 32) {
                    Some(prefix) => *prefix = 0x05,
                    None => return unchanged,
                }
                return vec![bytes];
            }
            (Mutation::FeerateLow, Message::UpdateFee(m)) => m.feerate_per_kw = 252,
            (Mutation::FeerateHigh, Message::UpdateFee(m)) => m.feerate_per_kw = u32::MAX,
            (Mutation::Script, Message::Shutdown(m)) => {
                m.scriptpubkey = vec![0x00, 0x05, 1, 2, 3, 4, 5]
            }
            _ => return unchanged,
        }
        vec![msg.encode()]
    }
}

impl FaultAction {
    fn on_send(self) -> bool {
        !matches!(self, FaultAction::CloseAfterReceive)
    }
}

/// One rule: an action, the message type it matches, and which match fires it (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// The action.
    pub action: FaultAction,
    /// The message type matched.
    pub msg_type: u16,
    /// Fires on this match (1 = first).
    pub nth: u32,
}

/// A fault rule that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault rule {0:?}")]
pub struct FaultRuleError(pub String);

impl FromStr for FaultRule {
    type Err = FaultRuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || FaultRuleError(s.to_string());
        let mut chars = s.chars();
        let action = match chars.next() {
            Some('-') => FaultAction::CloseBeforeSend,
            Some('+') => FaultAction::SendThenClose,
            Some('$') => FaultAction::DropSilently,
            Some('<') => FaultAction::CloseAfterReceive,
            // Its mutation is read below, once the message type is known.
            Some('~') => FaultAction::Corrupt(Mutation::Duplicate),
            _ => return Err(err()),
        };
        let rest = chars.as_str();
        let (name, nth) = match rest.split_once('*') {
            Some((name, n)) => (name, n.parse::<u32>().map_err(|_| err())?),
            None => (rest, 1),
        };
        if nth == 0 {
            return Err(err());
        }
        let (name, mutation) = match (action, name.split_once(':')) {
            (FaultAction::Corrupt(_), Some((name, mutation))) => (name, mutation),
            (FaultAction::Corrupt(_), None) | (_, Some(_)) => return Err(err()),
            (_, None) => (name, ""),
        };
        let msg_type = Message::type_for_name(name).ok_or_else(err)?;
        let action = match action {
            FaultAction::Corrupt(_) => {
                FaultAction::Corrupt(Mutation::parse(mutation, msg_type).ok_or_else(err)?)
            }
            other => other,
        };
        Ok(FaultRule {
            action,
            msg_type,
            nth,
        })
    }
}

/// What the connection must do with a message, as decided by the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultVerdict {
    /// No rule fired: proceed normally.
    Pass,
    /// A rule fired with this action.
    Fire(FaultAction),
}

/// An ordered, shared list of rules, consumed as they fire. Cloning shares the list, so one
/// plan covers every connection of a manager.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    // Test-only: a plain mutex, held for a few instructions and never across an await.
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The rules not yet fired, each with its matches so far.
    rules: VecDeque<(FaultRule, u32)>,
    /// Every message type checked, in order: (sending, type).
    transcript: Vec<(bool, u16)>,
}

impl FaultPlan {
    /// A plan from rules.
    pub fn new(rules: impl IntoIterator<Item = FaultRule>) -> Self {
        let rules = rules.into_iter().map(|r| (r, 0)).collect();
        FaultPlan {
            inner: Arc::new(Mutex::new(Inner {
                rules,
                transcript: Vec::new(),
            })),
        }
    }

    /// Parses rules like `["-funding_created", "<accept_channel*2"]`.
    pub fn parse<'a>(rules: impl IntoIterator<Item = &'a str>) -> Result<Self, FaultRuleError> {
        let rules = rules
            .into_iter()
            .map(str::parse)
            .collect::<Result<Vec<FaultRule>, _>>()?;
        Ok(FaultPlan::new(rules))
    }

    /// Rules not yet fired.
    pub fn remaining(&self) -> usize {
        self.inner.lock().map(|i| i.rules.len()).unwrap_or(0)
    }

    /// The types of the messages sent on the plan's connections so far, in order (the `init`
    /// of each connection excepted), as they were queued: what a fired rule did to them is
    /// not reflected.
    pub fn sent(&self) -> Vec<u16> {
        self.transcript(true)
    }

    /// The types of the messages received on the plan's connections so far, in order (the
    /// `init` of each connection excepted).
    pub fn received(&self) -> Vec<u16> {
        self.transcript(false)
    }

    fn transcript(&self, sending: bool) -> Vec<u16> {
        let Ok(i) = self.inner.lock() else {
            return Vec::new();
        };
        i.transcript
            .iter()
            .filter(|(s, _)| *s == sending)
            .map(|(_, t)| *t)
            .collect()
    }

    fn check(&self, msg_type: u16, sending: bool) -> FaultVerdict {
        let Ok(mut inner) = self.inner.lock() else {
            return FaultVerdict::Pass;
        };
        inner.transcript.push((sending, msg_type));
        let q = &mut inner.rules;
        let Some((rule, seen)) = q.front_mut() else {
            return FaultVerdict::Pass;
        };
        if rule.msg_type != msg_type || rule.action.on_send() != sending {
            return FaultVerdict::Pass;
        }
        *seen += 1;
        if *seen < rule.nth {
            return FaultVerdict::Pass;
        }
        let action = rule.action;
        q.pop_front();
        FaultVerdict::Fire(action)
    }

    /// Consulted before sending a message of `msg_type`.
    pub fn on_send(&self, msg_type: u16) -> FaultVerdict {
        self.check(msg_type, true)
    }

    /// Consulted after receiving a message of `msg_type`.
    pub fn on_receive(&self, msg_type: u16) -> FaultVerdict {
        self.check(msg_type, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_core_lightning_style_rules() {
        let r: FaultRule = "-funding_created".parse().expect("valid");
        assert_eq!(
            r,
            FaultRule {
                action: FaultAction::CloseBeforeSend,
                msg_type: 34,
                nth: 1
            }
        );
        let r: FaultRule = "<accept_channel*3".parse().expect("valid");
        assert_eq!(
            (r.action, r.msg_type, r.nth),
            (FaultAction::CloseAfterReceive, 33, 3)
        );
        assert!("!ping".parse::<FaultRule>().is_err());
        assert!("-no_such_message".parse::<FaultRule>().is_err());
        assert!("+ping*0".parse::<FaultRule>().is_err());
    }

    #[test]
    fn rules_fire_on_nth_match_in_order() {
        let plan = FaultPlan::parse(["+ping*2", "$pong"]).expect("valid");
        // The second rule is not armed until the first fires.
        assert_eq!(plan.on_send(19), FaultVerdict::Pass);
        assert_eq!(plan.on_receive(18), FaultVerdict::Pass); // receive does not match '+'
        assert_eq!(plan.on_send(18), FaultVerdict::Pass);
        assert_eq!(
            plan.on_send(18),
            FaultVerdict::Fire(FaultAction::SendThenClose)
        );
        assert_eq!(plan.remaining(), 1);
        assert_eq!(
            plan.on_send(19),
            FaultVerdict::Fire(FaultAction::DropSilently)
        );
        assert_eq!(plan.on_send(19), FaultVerdict::Pass);
        assert_eq!(plan.remaining(), 0);
    }

    #[test]
    fn parses_corrupt_rules_only_with_a_mutation_for_their_message() {
        let r: FaultRule = "~commitment_signed:signature*2".parse().expect("valid");
        assert_eq!(
            (r.action, r.msg_type, r.nth),
            (FaultAction::Corrupt(Mutation::Signature), 132, 2)
        );
        let cases = [
            ("~closing_signed:signature", Mutation::Signature, 39),
            ("~revoke_and_ack:secret", Mutation::Secret, 133),
            ("~revoke_and_ack:point", Mutation::Point, 133),
            ("~update_fee:feerate_low", Mutation::FeerateLow, 134),
            ("~update_fee:feerate_high", Mutation::FeerateHigh, 134),
            ("~shutdown:script", Mutation::Script, 38),
            ("~ping:duplicate", Mutation::Duplicate, 18),
        ];
        for (rule, mutation, msg_type) in cases {
            let r: FaultRule = rule.parse().expect(rule);
            assert_eq!(
                (r.action, r.msg_type, r.nth),
                (FaultAction::Corrupt(mutation), msg_type, 1)
            );
        }
        for bad in [
            "~commitment_signed",        // no mutation
            "~commitment_signed:",       // empty mutation
            "~commitment_signed:garble", // unknown mutation
            "~update_fee:signature",     // not for that message
            "~shutdown:secret",
            "~commitment_signed:point",
            "-commitment_signed:signature", // a mutation on another action
            "~revoke_and_ack:secret*0",
        ] {
            assert!(bad.parse::<FaultRule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn mutations_change_only_what_they_name() {
        use crate::proto::wire::{
            ChannelId, ClosingSigned, CommitmentSigned, RevokeAndAck, Shutdown, UpdateFee,
        };
        use bitcoin::secp256k1::{Message as Digest, PublicKey, Secp256k1, SecretKey};
        let secp = Secp256k1::new();
        let key = SecretKey::from_slice(&[7; 32]).expect("key");
        let signature = secp.sign_ecdsa(&Digest::from_digest([9; 32]), &key);
        let id = ChannelId([3; 32]);
        let one = |m: Mutation, msg: Message| {
            let out = m.apply(&msg.encode());
            assert_eq!(out.len(), 1, "{m:?}");
            Message::decode(&out[0])
        };

        let cs = CommitmentSigned {
            channel_id: id,
            signature,
            htlc_signatures: vec![signature],
            funding_txid: None,
        };
        let Ok(Message::CommitmentSigned(got)) = one(Mutation::Signature, cs.clone().into()) else {
            panic!("commitment_signed");
        };
        assert_ne!(got.signature, cs.signature);
        assert_eq!(
            (got.channel_id, &got.htlc_signatures),
            (id, &cs.htlc_signatures)
        );

        let closing = ClosingSigned {
            channel_id: id,
            fee_satoshis: 300,
            signature,
            fee_range: None,
        };
        let Ok(Message::ClosingSigned(got)) = one(Mutation::Signature, closing.clone().into())
        else {
            panic!("closing_signed");
        };
        assert_ne!(got.signature, closing.signature);
        assert_eq!(got.fee_satoshis, 300);

        let raa = RevokeAndAck {
            channel_id: id,
            per_commitment_secret: [5; 32],
            next_per_commitment_point: PublicKey::from_secret_key(&secp, &key),
        };
        let Ok(Message::RevokeAndAck(got)) = one(Mutation::Secret, raa.clone().into()) else {
            panic!("revoke_and_ack");
        };
        assert_ne!(got.per_commitment_secret, raa.per_commitment_secret);
        assert_eq!(
            got.per_commitment_secret[..31],
            raa.per_commitment_secret[..31]
        );
        assert_eq!(got.next_per_commitment_point, raa.next_per_commitment_point);
        // No point: the decoder refuses the message.
        assert!(one(Mutation::Point, raa.clone().into()).is_err());

        let fee = |f| UpdateFee {
            channel_id: id,
            feerate_per_kw: f,
        };
        for (m, want) in [
            (Mutation::FeerateLow, 252),
            (Mutation::FeerateHigh, u32::MAX),
        ] {
            let Ok(Message::UpdateFee(got)) = one(m, fee(5_000).into()) else {
                panic!("update_fee");
            };
            assert_eq!(got, fee(want));
        }

        let shutdown = Shutdown {
            channel_id: id,
            scriptpubkey: vec![
                0x00, 0x14, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
            ],
        };
        let Ok(Message::Shutdown(got)) = one(Mutation::Script, shutdown.into()) else {
            panic!("shutdown");
        };
        assert_eq!(got.scriptpubkey, [0x00, 0x05, 1, 2, 3, 4, 5]);

        let bytes = Message::from(raa).encode();
        assert_eq!(
            Mutation::Duplicate.apply(&bytes),
            [bytes.clone(), bytes.clone()]
        );
        // A mutation on a message it does not apply to sends it unchanged.
        assert_eq!(Mutation::Script.apply(&bytes), [bytes]);
    }

    #[test]
    fn the_plan_keeps_the_transcript_of_every_connection() {
        let plan = FaultPlan::parse(["~ping:duplicate"]).expect("valid");
        assert_eq!(
            plan.on_send(18),
            FaultVerdict::Fire(FaultAction::Corrupt(Mutation::Duplicate))
        );
        assert_eq!(plan.on_receive(19), FaultVerdict::Pass);
        assert_eq!(plan.on_send(1), FaultVerdict::Pass);
        assert_eq!((plan.sent(), plan.received()), (vec![18, 1], vec![19]));
        // A clone shares it.
        assert_eq!(plan.clone().sent(), [18, 1]);
    }
}
