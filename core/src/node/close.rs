//! Closing a channel from the API ([`Node::close_channel`], [`Node::force_close_channel`]) and
//! the wallet script a close pays to.
//!
//! Every refusal happens before anything is stored or sent: an unknown channel, one that
//! cannot close now (not durable yet, failed, already closing or closed), an address of another
//! network, a script the peer would refuse (a shutdown script locked into a channel that the
//! peer rejects makes the channel uncloseable, CLN #7014). Only then is a fresh wallet address
//! handed out (when the caller gave none) and the close fed to the channel through its peer
//! task, which answers once the channel's actions were performed.
//!
//! **The close/sweep destination.** A channel also needs a wallet script when the close is
//! not the user's: our `shutdown` answering the peer's, a sweep of an output into the wallet.
//! The node keeps at most one such script revealed ([`Shared::close_destination`], stored
//! under [`DESTINATION_KEY`]), revealed the first time a channel may need it (so a node whose
//! channels never close, or close cooperatively to an address of their own, reveals nothing:
//! a revealed address nobody paid costs one request per block), and forgotten as soon as a
//! transaction paying it is known (the next need reveals a fresh one). Two channels may have
//! stored the same script before it is forgotten; every payment is still seen, because every channel transaction that pays a
//! wallet script (a cooperative close, a sweep) is recorded in the wallet when it is broadcast
//! or seen spending a watched output ([`Shared::record_channel_tx`]), and the wallet queries
//! the scripts of its unconfirmed transactions at every sync.

use bitcoin::{Address, ScriptBuf, Transaction};

use super::db::Parts;
use super::details::closing_status;
use super::peer::{PeerCommand, PeerTask};
use super::{lock, now, Node, NodeError, Shared};
use crate::proto::channel::{Channel, ChannelState, CloseKind, ClosingStatus, Input};
use crate::proto::wire::{ChannelId, Message};

/// The meta key of the close/sweep destination script.
pub(crate) const DESTINATION_KEY: &str = "close_destination";

impl Node {
    /// Closes a channel cooperatively: our `shutdown` goes to the peer (once no update is in
    /// flight and the peer is connected), the closing fee is negotiated, the agreed
    /// transaction broadcast. Our share goes to `destination` (an address of this node's
    /// network, of a form the peer accepts), or to a fresh wallet address. Returns once the
    /// close is stored (progress: [`super::ChannelDetails::status`], then
    /// [`super::Event::ChannelClosing`] and [`super::Event::ChannelClosed`]).
    ///
    /// Refused with nothing stored or sent: [`NodeError::UnknownChannel`],
    /// [`NodeError::CannotClose`] (not durable yet, failed, already closing or closed) and
    /// [`NodeError::InvalidInput`] for an address of another network or one the peer would
    /// refuse (a taproot address needs the peer's `option_shutdown_anysegwit`).
    pub async fn close_channel(
        &self,
        channel_id: ChannelId,
        destination: Option<Address>,
    ) -> Result<(), NodeError> {
        self.check_running()?;
        let network = self.shared.config.network;
        if let Some(address) = &destination {
            if !address.as_unchecked().is_valid_for_network(network) {
                return Err(NodeError::invalid(
                    "address",
                    format!("{address} is not an address of this node's network ({network})"),
                ));
            }
        }
        let owner = self.owner(&channel_id)?;
        let script = destination.map(|a| a.script_pubkey());
        self.ask(owner, |reply| PeerCommand::Close {
            channel_id,
            script,
            reply,
        })
        .await
    }

    /// Force-closes a channel: our latest commitment is stored as the decision, broadcast
    /// (again every block until it confirms), then the peer gets an `error`; our `to_local`
    /// is swept into the wallet after the peer's `to_self_delay`. Returns once the decision is
    /// stored. Refused with nothing stored or sent: [`NodeError::UnknownChannel`],
    /// [`NodeError::CannotClose`] (not durable yet, failed, closing on chain by another
    /// transaction than our commitment — a cooperative close agreed or broadcast above all —
    /// or closed). A channel we already force-closed answers `CannotClose` too, after its
    /// commitment (and CPFP child) is rebroadcast (nothing stored).
    pub async fn force_close_channel(&self, channel_id: ChannelId) -> Result<(), NodeError> {
        self.check_running()?;
        let owner = self.owner(&channel_id)?;
        self.ask(owner, |reply| PeerCommand::ForceClose { channel_id, reply })
            .await
    }

    /// What closing channels still give back to us on chain, and when (from memory: never
    /// waits for the disk). The wallet's own coins are in [`Node::list_balances`]; an amount
    /// leaves this list once its transaction is 6 deep (then it is a wallet coin).
    pub fn claimable_balances(&self) -> Vec<super::ClaimableBalance> {
        let mut out: Vec<super::ClaimableBalance> = lock(&self.shared.views)
            .values()
            .flat_map(|c| {
                c.claimable.iter().map(|claim| super::ClaimableBalance {
                    channel_id: c.channel_id,
                    counterparty_node_id: c.counterparty_node_id,
                    amount: bitcoin::Amount::from_sat(claim.amount_sat),
                    status: claim.status,
                })
            })
            .collect();
        out.sort_by_key(|b| b.channel_id);
        out
    }

    /// The peer owning `channel_id` (from the views: no round trip).
    fn owner(&self, channel_id: &ChannelId) -> Result<bitcoin::secp256k1::PublicKey, NodeError> {
        lock(&self.shared.views)
            .get(channel_id)
            .map(|c| c.counterparty_node_id)
            .ok_or(NodeError::UnknownChannel(*channel_id))
    }
}

/// Why `channel` cannot close now (`force`: by a force close), `None` if it can.
pub(super) fn close_blocker(channel: &Channel, tip: u32, force: bool) -> Option<String> {
    let state = channel.state();
    if !state.is_durable() {
        return Some(format!(
            "it is not durable yet: its open is not finished (state {state:?})"
        ));
    }
    if state == ChannelState::FailedUnfunded {
        return Some("it failed before its funding was seen on chain: nothing to close".into());
    }
    if channel.is_failed() {
        let why = channel.failure_reason().unwrap_or("unknown reason");
        return Some(format!("it failed ({why})"));
    }
    match closing_status(channel, tip) {
        None => None,
        Some(ClosingStatus::Closed { kind }) => Some(format!("it is closed ({})", kind.name())),
        // A force close already decided: forcing again rebroadcasts our commitment.
        Some(ClosingStatus::OnChain {
            kind: CloseKind::LocalForce,
            ..
        }) if force => None,
        // Never our commitment over a mutual close (agreed, broadcast or mined).
        Some(ClosingStatus::OnChain {
            kind: CloseKind::Cooperative { .. },
            ..
        }) if force => Some(
            "its cooperative close is agreed and broadcast: it needs no force close, and our \
             commitment must never compete with the closing transaction"
                .into(),
        ),
        Some(ClosingStatus::OnChain { kind, .. }) => {
            Some(format!("it is already closing on chain ({})", kind.name()))
        }
        Some(_) if !force => Some("a cooperative close is already under way".into()),
        Some(_) => None,
    }
}

/// Whether feeding `input` to `channel` may need the close/sweep destination: our answer to
/// the peer's `shutdown`, or a channel closing on chain other than cooperatively (its
/// sweeps; a channel that just started closing gets it with its next input, at the latest
/// the next block, when its sweeps are built). A cooperative close pays the scripts both
/// sides chose: nothing to sweep, no address revealed for nothing.
pub(super) fn needs_destination(channel: &Channel, input: &Input, tip: u32) -> bool {
    if !channel.state().is_durable() {
        return false;
    }
    match input {
        // The peer's `shutdown` needs a script of ours only if we sent none yet (its answer
        // to ours needs nothing: an address revealed for nothing costs a request per block).
        Input::Message(Message::Shutdown(_)) => channel.our_shutdown_script().is_none(),
        _ => matches!(
            closing_status(channel, tip),
            Some(ClosingStatus::OnChain { kind, .. } | ClosingStatus::Closed { kind })
                if !matches!(kind, CloseKind::Cooperative { .. })
        ),
    }
}

/// Whether feeding `input` needs the fee estimates: a close under way (its closing fee), a
/// sweep.
pub(super) fn needs_fees(channel: &Channel, input: &Input, tip: u32) -> bool {
    channel.state().is_durable()
        && (needs_destination(channel, input, tip)
            || matches!(
                input,
                Input::Close { .. }
                    | Input::ForceClose
                    | Input::FundingSpent { .. }
                    | Input::OutputSpent { .. }
                    | Input::Message(Message::ClosingSigned(_) | Message::Error(_))
            )
            || closing_status(channel, tip).is_some())
}

impl Shared {
    /// The close/sweep destination (see the module documentation): revealed and stored the
    /// first time, cached after.
    pub(crate) async fn close_destination(&self) -> Result<ScriptBuf, NodeError> {
        if let Some(d) = lock(&self.destination).clone() {
            return Ok(d);
        }
        let (script, revealed) = self
            .db
            .run(|p: &mut Parts| {
                if let Some(bytes) = p.store.get_meta(DESTINATION_KEY)? {
                    return Ok::<_, NodeError>((ScriptBuf::from_bytes(bytes), false));
                }
                let script = p.wallet.new_address()?.script_pubkey();
                p.store.put_meta(DESTINATION_KEY, script.as_bytes())?;
                Ok((script, true))
            })
            .await?;
        if revealed {
            self.fresh_addresses
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(lock(&self.destination).get_or_insert(script).clone())
    }

    /// Records a channel transaction (a cooperative close, a sweep, a spend of a watched
    /// output) in the wallet if it pays a wallet script, so the sync follows it to its
    /// confirmation; if it pays the close/sweep destination, that one is forgotten (the next
    /// need reveals a fresh one).
    pub(crate) async fn record_channel_tx(&self, tx: &Transaction) {
        let current = lock(&self.destination).clone();
        let (tx, destination) = (tx.clone(), current.clone());
        let result = self
            .db
            .run(move |p: &mut Parts| {
                if !p.wallet.record_if_ours(&tx, now())? {
                    return Ok::<_, NodeError>(false);
                }
                let pays_destination = destination
                    .as_ref()
                    .is_some_and(|d| tx.output.iter().any(|o| &o.script_pubkey == d));
                if pays_destination {
                    p.store.delete_meta(DESTINATION_KEY)?;
                }
                Ok(pays_destination)
            })
            .await;
        match result {
            Ok(true) => {
                let mut cached = lock(&self.destination);
                if *cached == current {
                    *cached = None;
                }
            }
            Ok(false) => {}
            // The channel rebroadcasts (and the watch reports) again: recorded then.
            Err(e) => tracing::warn!("cannot record a channel transaction in the wallet: {e}"),
        }
    }
}

impl PeerTask {
    /// [`PeerCommand::Close`]: checks, a fresh wallet address when none was given, then
    /// [`Input::Close`].
    pub(super) async fn close(
        &mut self,
        channel_id: ChannelId,
        script: Option<ScriptBuf>,
    ) -> Result<(), NodeError> {
        let i = self.closeable(&channel_id, false)?;
        let features = self.connected().then(|| self.their_features.clone());
        let c = &self.channels[i];
        if let Some(reason) = c.close_refusal(None, features.as_ref()) {
            return Err(NodeError::CannotClose { channel_id, reason });
        }
        if let Some(script) = &script {
            if let Some(why) = c.close_refusal(Some(script), features.as_ref()) {
                return Err(NodeError::invalid("address", why));
            }
        }
        let script = match script {
            Some(s) => s,
            None => {
                let address = self
                    .shared
                    .db
                    .run(|p: &mut Parts| p.wallet.new_address())
                    .await?;
                self.shared
                    .fresh_addresses
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                address.script_pubkey()
            }
        };
        tracing::info!(channel = %channel_id, %script, "closing cooperatively");
        let input = Input::Close {
            script: Some(script),
        };
        self.feed_for_user(i, input, "close").await
    }

    /// [`PeerCommand::ForceClose`]: checks, then [`Input::ForceClose`]. A force close already
    /// decided is idempotent: its commitment (and CPFP child) is rebroadcast, nothing is
    /// stored, and the caller still hears `CannotClose` (nothing new was decided).
    pub(super) async fn force_close(&mut self, channel_id: ChannelId) -> Result<(), NodeError> {
        let i = self.closeable(&channel_id, true)?;
        if self.channels[i].close_kind() == Some(CloseKind::LocalForce) {
            tracing::info!(channel = %channel_id, "already force-closed: rebroadcasting");
            self.feed_checked(i, Input::ForceClose).await?;
            self.cleanup();
            return Err(NodeError::CannotClose {
                channel_id,
                reason: "it is already force-closed: our commitment was rebroadcast (again \
                         every block, with its CPFP child, until it confirms)"
                    .into(),
            });
        }
        tracing::info!(channel = %channel_id, "force-closing");
        self.feed_for_user(i, Input::ForceClose, "force close")
            .await
    }

    /// The index of `channel_id` if it can close now.
    fn closeable(&self, channel_id: &ChannelId, force: bool) -> Result<usize, NodeError> {
        let i = self
            .channels
            .iter()
            .position(|c| c.is_for(channel_id))
            .ok_or(NodeError::UnknownChannel(*channel_id))?;
        let tip = self.shared.tip_height();
        match close_blocker(&self.channels[i], tip, force) {
            Some(reason) => Err(NodeError::CannotClose {
                channel_id: *channel_id,
                reason,
            }),
            None => Ok(i),
        }
    }

    /// Feeds a user's close and answers once its actions were performed: an error if the
    /// persist failed (the channel is back to its stored state) or the channel stored nothing
    /// (it did not take the close).
    async fn feed_for_user(&mut self, i: usize, input: Input, what: &str) -> Result<(), NodeError> {
        let id = self.channels[i].current_id();
        let state = self.channels[i].state();
        let committed = self.feed_checked(i, input).await?;
        self.cleanup();
        if !committed {
            return Err(NodeError::CannotClose {
                channel_id: id,
                reason: format!("the channel did not take the {what} (state {state:?})"),
            });
        }
        Ok(())
    }
}
