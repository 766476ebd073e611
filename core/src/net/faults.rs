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
//!
//! A `*N` suffix fires on the Nth match instead of the first (`-funding_created*2`).
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
        let msg_type = Message::type_for_name(name).ok_or_else(err)?;
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
    inner: Arc<Mutex<VecDeque<(FaultRule, u32)>>>,
}

impl FaultPlan {
    /// A plan from rules.
    pub fn new(rules: impl IntoIterator<Item = FaultRule>) -> Self {
        FaultPlan {
            inner: Arc::new(Mutex::new(rules.into_iter().map(|r| (r, 0)).collect())),
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
        self.inner.lock().map(|q| q.len()).unwrap_or(0)
    }

    fn check(&self, msg_type: u16, sending: bool) -> FaultVerdict {
        let Ok(mut q) = self.inner.lock() else {
            return FaultVerdict::Pass;
        };
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
}
