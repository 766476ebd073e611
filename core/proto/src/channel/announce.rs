//! Public channels ([BOLT 7: `announcement_signatures`](https://github.com/lightning/bolts/blob/master/07-routing-gossip.md#the-announcement_signatures-message)):
//! once both `channel_ready` were exchanged and the funding has 6 confirmations, exchange
//! `announcement_signatures`, then build and verify the `channel_announcement`. Each step is a
//! persisted mark (our half sent, the peer's half received, the announcement built). Once a
//! [`super::Action::Commit`] carries a record whose
//! [`super::Channel::channel_announcement`] is set, the gossip layer may relay it. Private
//! channels (the mobile default) skip all of this.

use bitcoin::hashes::{sha256d, Hash};
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::{Message as SecpMessage, PublicKey};

use super::phase::Announcement;
use super::{Action, Channel, ChannelState, Context, DisconnectScope};
use crate::wire::{AnnouncementSignatures, ChannelAnnouncement, Message, Warning};

/// Confirmations before a channel may be announced (BOLT 7).
pub const ANNOUNCEMENT_DEPTH: u32 = 6;

fn digest(announcement: &ChannelAnnouncement) -> SecpMessage {
    let hash = sha256d::Hash::hash(&announcement.signed_bytes());
    SecpMessage::from_digest(hash.to_byte_array())
}

impl Channel {
    /// The unsigned `channel_announcement` (all four signatures are placeholders).
    fn unsigned_announcement(&self, our_node_id: PublicKey) -> Option<ChannelAnnouncement> {
        let scid = self.short_channel_id()?;
        let ours = self.params.ours.keys.funding_pubkey;
        let theirs = self.their_params()?.keys.funding_pubkey;
        let peer = self.params.counterparty_node_id;
        let (node_id_1, node_id_2, bitcoin_key_1, bitcoin_key_2) =
            if our_node_id.serialize() < peer.serialize() {
                (our_node_id, peer, ours, theirs)
            } else {
                (peer, our_node_id, theirs, ours)
            };
        let placeholder = Signature::from_compact(&[1; 64]).ok()?;
        Some(ChannelAnnouncement {
            node_signature_1: placeholder,
            node_signature_2: placeholder,
            bitcoin_signature_1: placeholder,
            bitcoin_signature_2: placeholder,
            features: Vec::new(),
            chain_hash: self.params.chain_hash,
            short_channel_id: scid,
            node_id_1,
            node_id_2,
            bitcoin_key_1,
            bitcoin_key_2,
            excess_data: Vec::new(),
        })
    }

    /// Our `announcement_signatures`, if the channel is public, confirmed and we have the node
    /// key.
    fn our_announcement_signatures(&self, ctx: &Context<'_>) -> Option<AnnouncementSignatures> {
        let node_key = ctx.node_key?;
        let node_id = PublicKey::from_secret_key(ctx.secp, node_key);
        let unsigned = self.unsigned_announcement(node_id)?;
        let msg = digest(&unsigned);
        Some(AnnouncementSignatures {
            channel_id: self.channel_id()?,
            short_channel_id: unsigned.short_channel_id,
            node_signature: ctx.secp.sign_ecdsa(&msg, node_key),
            bitcoin_signature: ctx.secp.sign_ecdsa(&msg, &ctx.keys.funding_key),
        })
    }

    /// Combines both halves into the announcement and verifies all four signatures.
    fn complete_announcement(
        &self,
        ctx: &Context<'_>,
        ours: &AnnouncementSignatures,
        theirs: (Signature, Signature),
    ) -> Option<ChannelAnnouncement> {
        let node_id = PublicKey::from_secret_key(ctx.secp, ctx.node_key?);
        let mut a = self.unsigned_announcement(node_id)?;
        let (their_node, their_bitcoin) = theirs;
        if a.node_id_1 == node_id {
            a.node_signature_1 = ours.node_signature;
            a.bitcoin_signature_1 = ours.bitcoin_signature;
            a.node_signature_2 = their_node;
            a.bitcoin_signature_2 = their_bitcoin;
        } else {
            a.node_signature_1 = their_node;
            a.bitcoin_signature_1 = their_bitcoin;
            a.node_signature_2 = ours.node_signature;
            a.bitcoin_signature_2 = ours.bitcoin_signature;
        }
        let msg = digest(&a);
        let checks = [
            (&a.node_signature_1, &a.node_id_1),
            (&a.node_signature_2, &a.node_id_2),
            (&a.bitcoin_signature_1, &a.bitcoin_key_1),
            (&a.bitcoin_signature_2, &a.bitcoin_key_2),
        ];
        checks
            .iter()
            .all(|(sig, key)| ctx.secp.verify_ecdsa(&msg, sig, key).is_ok())
            .then_some(a)
    }

    /// The announcement state of a public channel, once durable.
    fn announcement_mut(&mut self) -> Option<&mut Announcement> {
        if !self.params.announce {
            return None;
        }
        self.phase.established_mut().map(|e| &mut e.announcement)
    }

    /// Public channels at `tip_height`: send our half when due (persisting the mark first);
    /// completes the announcement if the peer's half is already in.
    pub(crate) fn announce_if_due(&mut self, tip_height: u32, ctx: &Context<'_>) -> Vec<Action> {
        if !self.params.announce
            || self.state() != ChannelState::Ready
            || self.announcement_signatures_sent()
            || self.confirmations(tip_height) < ANNOUNCEMENT_DEPTH
        {
            return Vec::new();
        }
        let Some(ours) = self.our_announcement_signatures(ctx) else {
            tracing::error!(channel = %self.current_id(), "public channel but no node key in the context: cannot announce");
            return Vec::new();
        };
        let built = self.built_if_complete(ctx, &ours);
        if let Some(a) = self.announcement_mut() {
            a.sigs_sent = true;
            a.answered = true;
            if a.built.is_none() {
                a.built = built;
            }
        }
        vec![
            self.commit(Vec::new()),
            Action::Send(Message::AnnouncementSignatures(ours)),
        ]
    }

    /// If both halves are in and the announcement is not built yet, builds and verifies it.
    fn built_if_complete(
        &self,
        ctx: &Context<'_>,
        ours: &AnnouncementSignatures,
    ) -> Option<ChannelAnnouncement> {
        let state = &self.phase.established()?.announcement;
        let theirs = state.theirs?;
        if state.built.is_some() {
            return None;
        }
        let built = self.complete_announcement(ctx, ours, theirs);
        if built.is_none() {
            tracing::error!(channel = %self.current_id(), "channel_announcement does not verify");
        }
        built
    }

    /// The peer's `announcement_signatures`.
    pub(crate) fn on_announcement_signatures(
        &mut self,
        msg: &AnnouncementSignatures,
        ctx: &Context<'_>,
    ) -> Vec<Action> {
        if Some(msg.channel_id) != self.channel_id() || !self.params.announce {
            return Vec::new();
        }
        if !matches!(
            self.state(),
            ChannelState::AwaitingChannelReady | ChannelState::Ready
        ) {
            // BOLT 7: defer until our channel_ready is sent; the peer retransmits on
            // reconnection.
            return Vec::new();
        }
        let warn = |text: String| {
            vec![Action::Send(Message::Warning(Warning::new(
                msg.channel_id,
                &text,
            )))]
        };
        if Some(msg.short_channel_id) != self.short_channel_id() {
            return warn(format!(
                "announcement_signatures for short_channel_id {} but the funding is at {:?}",
                msg.short_channel_id,
                self.short_channel_id()
            ));
        }
        let Some(node_key) = ctx.node_key else {
            tracing::error!(channel = %self.current_id(), "no node key in the context: cannot check announcement_signatures");
            return Vec::new();
        };
        let node_id = PublicKey::from_secret_key(ctx.secp, node_key);
        let Some(theirs) = self.their_params() else {
            return Vec::new();
        };
        let Some(unsigned) = self.unsigned_announcement(node_id) else {
            return Vec::new();
        };
        let digest = digest(&unsigned);
        let valid = ctx
            .secp
            .verify_ecdsa(
                &digest,
                &msg.node_signature,
                &self.params.counterparty_node_id,
            )
            .is_ok()
            && ctx
                .secp
                .verify_ecdsa(&digest, &msg.bitcoin_signature, &theirs.keys.funding_pubkey)
                .is_ok();
        if !valid {
            let mut actions = warn("invalid announcement_signatures".into());
            actions.push(Action::Disconnect {
                counterparty_node_id: self.params.counterparty_node_id,
                reason: "invalid announcement_signatures".into(),
                scope: DisconnectScope::Connection,
            });
            return actions;
        }
        let mut actions = Vec::new();
        let sigs = (msg.node_signature, msg.bitcoin_signature);
        if !self.announcement_signatures_received() {
            if let Some(a) = self.announcement_mut() {
                a.theirs = Some(sigs);
            }
            if self.announcement_signatures_sent() {
                let built = self
                    .our_announcement_signatures(ctx)
                    .and_then(|ours| self.built_if_complete(ctx, &ours));
                if let (Some(a), Some(built)) = (self.announcement_mut(), built) {
                    a.built = Some(built);
                }
            }
            actions.push(self.commit(Vec::new()));
        }
        // BOLT 7 "upon reconnection": answer with our own half, once per connection, unless
        // it already went out on this connection.
        let answered = self.announcement_mut().is_none_or(|a| a.answered);
        if self.announcement_signatures_sent() && !answered {
            if let Some(ours) = self.our_announcement_signatures(ctx) {
                if let Some(a) = self.announcement_mut() {
                    a.answered = true;
                }
                actions.push(Action::Send(Message::AnnouncementSignatures(ours)));
            }
        }
        actions
    }

    /// On reestablish: retransmit our half if the peer's never arrived.
    pub(crate) fn announcement_retransmission(&mut self, ctx: &Context<'_>) -> Option<Action> {
        if !self.params.announce
            || !self.announcement_signatures_sent()
            || self.announcement_signatures_received()
        {
            return None;
        }
        let ours = self.our_announcement_signatures(ctx)?;
        self.announcement_mut()?.answered = true;
        Some(Action::Send(Message::AnnouncementSignatures(ours)))
    }
}
