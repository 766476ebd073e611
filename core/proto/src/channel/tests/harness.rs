//! The two-party harness: a funder and a fundee, a virtual chain, message queues.

use std::collections::VecDeque;

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{All, PublicKey, Secp256k1, SecretKey};
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, BlockHash, Network, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness,
};

use crate::channel::{
    Action, BroadcastKind, Channel, ChannelConfig, ChannelError, ChannelEvent, ChannelRecord,
    ChannelState, Confirmation, Context, DurabilityChecker, FeeEstimates, InboundParams, Input,
    OutboundParams, Release, WatchRequest,
};
use crate::keys::{ChannelKeys as ChannelSecrets, KeysManager};
use crate::wire::{ChannelId, Feature, Features, Message};

/// One side: its keys, config, channel, and everything its actions produced.
#[derive(Clone)]
pub struct Node {
    pub secp: Secp256k1<All>,
    pub keys: ChannelSecrets,
    pub node_key: SecretKey,
    pub config: ChannelConfig,
    pub node_id: PublicKey,
    pub channel: Option<Channel>,
    pub checker: DurabilityChecker,
    /// The bytes of the last `Persist`.
    pub stored: Option<Vec<u8>>,
    pub outbox: VecDeque<Message>,
    pub broadcasts: Vec<Transaction>,
    pub events: Vec<ChannelEvent>,
    /// Every action list performed, in order.
    pub history: Vec<Vec<Action>>,
    pub funding_request: Option<(ScriptBuf, Amount, u32)>,
    /// Whether the peer's `channel_reestablish` arrived on this connection (true until a
    /// disconnect): like the driver, sends other than `channel_reestablish`, `error` and
    /// `warning` are dropped until it does.
    pub reestablished: bool,
    /// Where a close pays us when no script is given (the driver's wallet address), and where
    /// sweeps go.
    pub destination: ScriptBuf,
    /// A driver without a wallet address to give (no destination in the context).
    pub no_destination: bool,
    /// The peer's `init` features on the current connection.
    pub their_features: Features,
    /// The driver's fee estimates.
    pub estimates: FeeEstimates,
}

pub fn regtest_config() -> ChannelConfig {
    ChannelConfig::new(bitcoin::constants::ChainHash::using_genesis_block(
        Network::Regtest,
    ))
}

impl Node {
    pub fn new(seed: u8) -> Node {
        let km = KeysManager::new(&[seed; 32], Network::Regtest).expect("keys manager");
        Node {
            secp: Secp256k1::new(),
            keys: km.channel_keys(7).expect("channel keys"),
            node_key: km.node_secret_key().expect("node key"),
            config: regtest_config(),
            node_id: km.node_id().expect("node id"),
            channel: None,
            checker: DurabilityChecker::new(),
            stored: None,
            outbox: VecDeque::new(),
            broadcasts: Vec::new(),
            events: Vec::new(),
            history: Vec::new(),
            funding_request: None,
            reestablished: true,
            destination: ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([seed; 20])),
            no_destination: false,
            their_features: {
                let mut f = Features::tern_init();
                f.set_optional(Feature::ShutdownAnySegwit);
                f
            },
            estimates: FeeEstimates {
                commitment_per_kw: 2_500,
                in_144_blocks_per_kw: 1_000,
                in_1008_blocks_per_kw: 253,
            },
        }
    }

    pub fn ctx(&self) -> Context<'_> {
        let ctx = Context::new(&self.secp, &self.keys, &self.config)
            .with_node_key(&self.node_key)
            .with_their_features(&self.their_features)
            .with_fee_estimates(&self.estimates);
        if self.no_destination {
            ctx
        } else {
            ctx.with_destination(&self.destination)
        }
    }

    pub fn channel(&self) -> &Channel {
        self.channel.as_ref().expect("node has a channel")
    }

    pub fn state(&self) -> ChannelState {
        self.channel().state()
    }

    /// Performs an action list: checks the persist-before-act contract, then records what
    /// each action does.
    pub fn apply(&mut self, actions: &[Action]) {
        self.checker
            .observe(actions)
            .unwrap_or_else(|e| panic!("durability violated: {e}\nactions: {actions:#?}"));
        for action in actions {
            match action {
                Action::Commit(commit) => {
                    let bytes = commit.record.encode();
                    let back = ChannelRecord::decode(&bytes).expect("persisted record decodes");
                    assert_eq!(back, commit.record, "persisted record round-trips");
                    self.stored = Some(bytes);
                    self.events.extend(commit.events.iter().cloned());
                }
                Action::Send(msg) => {
                    let always = matches!(
                        msg,
                        Message::ChannelReestablish(_) | Message::Error(_) | Message::Warning(_)
                    );
                    if self.reestablished || always {
                        self.outbox.push_back(msg.clone());
                    }
                }
                Action::Broadcast { tx, .. } => self.broadcasts.push(tx.clone()),
                Action::Emit(e) => self.events.push(e.clone()),
                Action::FailOpen(fail) => self.events.extend(fail.events.iter().cloned()),
                Action::NeedFundingTx {
                    script_pubkey,
                    amount,
                    feerate_per_kw,
                    ..
                } => self.funding_request = Some((script_pubkey.clone(), *amount, *feerate_per_kw)),
                _ => {}
            }
        }
        self.history.push(actions.to_vec());
    }

    /// Feeds an input to the channel and to a twin rebuilt from the channel's record: both
    /// must produce the same actions and end equal. Returns (and applies) the actions.
    pub fn input(&mut self, input: Input) -> Vec<Action> {
        let mut channel = self.channel.take().expect("node has a channel");
        let bytes = channel.to_record().encode();
        let mut twin = ChannelRecord::decode(&bytes)
            .expect("record decodes")
            .into_channel();
        assert_eq!(twin, channel, "rebuilt channel equals the original");
        let ctx = Context::new(&self.secp, &self.keys, &self.config)
            .with_node_key(&self.node_key)
            .with_their_features(&self.their_features)
            .with_fee_estimates(&self.estimates);
        let ctx = if self.no_destination {
            ctx
        } else {
            ctx.with_destination(&self.destination)
        };
        match &input {
            Input::PeerDisconnected => self.reestablished = false,
            Input::Message(Message::ChannelReestablish(_)) => self.reestablished = true,
            _ => {}
        }
        let actions = channel.handle(input.clone(), &ctx);
        let twin_actions = twin.handle(input, &ctx);
        assert_eq!(actions, twin_actions, "rebuilt channel acts identically");
        assert_eq!(twin, channel, "rebuilt channel ends identical");
        self.channel = Some(channel);
        self.apply(&actions);
        actions
    }

    /// Restarts from the last persisted bytes (a kill at any point after them).
    pub fn restart(&mut self) -> Vec<Action> {
        let bytes = self.stored.clone().expect("something was persisted");
        let channel = ChannelRecord::decode(&bytes)
            .expect("stored record decodes")
            .into_channel();
        let actions = channel.resume_actions();
        self.checker = DurabilityChecker::with_persisted([&channel.to_record()]);
        self.channel = Some(channel);
        self.outbox.clear();
        self.apply(&actions);
        actions
    }

    pub fn sent_names(&self) -> Vec<&'static str> {
        self.outbox.iter().map(Message::name).collect()
    }
}

/// Funder (`a`) and fundee (`b`) with a virtual chain.
#[derive(Clone)]
pub struct Pair {
    pub a: Node,
    pub b: Node,
    pub height: u32,
    pub funding_block: Option<Confirmation>,
    /// Message names dropped in transit (`$name` in Core Lightning's dev-disconnect).
    pub drop: Vec<&'static str>,
}

pub const TEMP_ID: ChannelId = ChannelId([0x42; 32]);

/// The `init` features of a peer that does not offer `option_anchors` (what Tern sent before
/// anchors): with them the funder proposes `option_static_remotekey`, the channel every test
/// written before anchors was about.
pub fn no_anchors_peer() -> Features {
    let mut features = Features::tern_init();
    features.clear_bit(Feature::Anchors.optional_bit());
    features
}

/// An open to a peer without `option_anchors`: a static_remotekey channel.
pub fn outbound_params(peer: PublicKey) -> OutboundParams {
    OutboundParams {
        counterparty_node_id: peer,
        temporary_channel_id: TEMP_ID,
        keys_index: 7,
        funding_sat: 1_000_000,
        push_msat: 100_000_000,
        announce: false,
        commitment_feerate_per_kw: 2_500,
        funding_feerate_per_kw: 1_000,
        current_height: 100,
        their_features: no_anchors_peer(),
    }
}

/// An open to a peer offering `option_anchors` (today's Tern): an anchor channel when the
/// funder's config prefers anchors (the default).
pub fn anchors_params(peer: PublicKey) -> OutboundParams {
    OutboundParams {
        their_features: Features::tern_init(),
        ..outbound_params(peer)
    }
}

/// A funding transaction the way a wallet would build it: one (fake) segwit input, the funding
/// output at index 1 and a change output at index 0.
pub fn funding_tx(script: &ScriptBuf, amount: Amount) -> Transaction {
    let mut witness = Witness::new();
    witness.push([1u8; 71]);
    witness.push([2u8; 33]);
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: bitcoin::Txid::from_byte_array([9; 32]),
                vout: 3,
            },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness,
        }],
        output: vec![
            TxOut {
                value: Amount::from_sat(55_555),
                script_pubkey: ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array(
                    [5; 20],
                )),
            },
            TxOut {
                value: amount,
                script_pubkey: script.clone(),
            },
        ],
    }
}

impl Pair {
    pub fn new() -> Pair {
        Pair {
            a: Node::new(1),
            b: Node::new(2),
            height: 100,
            funding_block: None,
            drop: Vec::new(),
        }
    }

    /// The funder starts the open.
    pub fn start(&mut self, params: OutboundParams) {
        let (channel, actions) =
            Channel::new_outbound(params, &self.a.ctx()).expect("valid open command");
        self.a.channel = Some(channel);
        self.a.apply(&actions);
    }

    /// Delivers one message from `a` to `b` (`to_b`) or back; returns its name.
    pub fn deliver(&mut self, to_b: bool) -> Option<&'static str> {
        let (from, to) = if to_b {
            (&mut self.a, &mut self.b)
        } else {
            (&mut self.b, &mut self.a)
        };
        let msg = from.outbox.pop_front()?;
        let name = msg.name();
        if self.drop.contains(&name) {
            return Some(name);
        }
        let known = to
            .channel
            .as_ref()
            .is_some_and(|c| c.state() != ChannelState::Aborted);
        if !known && !matches!(msg, Message::OpenChannel(_)) {
            // What a driver does with a message about a channel it does not know: an `error`.
            if let (false, Some(id)) = (
                matches!(msg, Message::Error(_)),
                crate::channel::message_channel_id(&msg),
            ) {
                to.outbox
                    .push_back(Message::Error(crate::wire::ErrorMessage::new(
                        id,
                        "unknown channel",
                    )));
            }
            return Some(name);
        }
        match (&to.channel, msg) {
            (None, Message::OpenChannel(open)) => {
                let params = InboundParams {
                    counterparty_node_id: from.node_id,
                    keys_index: 7,
                    current_height: self.height,
                };
                match Channel::new_inbound(&open, params, &to.ctx()) {
                    Ok((channel, actions)) => {
                        to.channel = Some(channel);
                        to.apply(&actions);
                    }
                    Err(ChannelError::Rejected { actions, .. }) => to.apply(&actions),
                    Err(e) => panic!("unexpected inbound error {e}"),
                }
            }
            (Some(_), msg) => {
                to.input(Input::Message(msg));
            }
            (None, _) => unreachable!("handled above"),
        }
        Some(name)
    }

    /// One unit of progress: answer the funding request, else deliver one message to the
    /// fundee, else one to the funder. False when nothing moved.
    pub fn step(&mut self) -> bool {
        if let Some((script, amount, _)) = self.a.funding_request.take() {
            self.a.input(Input::FundingTxBuilt {
                tx: funding_tx(&script, amount),
            });
            return true;
        }
        self.deliver(true).is_some() || self.deliver(false).is_some()
    }

    /// Delivers messages both ways, and answers funding requests, until nothing moves.
    pub fn run(&mut self) {
        while self.step() {}
    }

    /// Runs a standard open up to both sides durable and the funding broadcast.
    pub fn open_to_pending() -> Pair {
        let mut pair = Pair::new();
        let peer = pair.b.node_id;
        pair.start(outbound_params(peer));
        pair.run();
        assert_eq!(pair.a.state(), ChannelState::AwaitingConfirmations);
        assert_eq!(pair.b.state(), ChannelState::AwaitingConfirmations);
        pair
    }

    pub fn funding(&self) -> Transaction {
        self.a
            .broadcasts
            .first()
            .cloned()
            .expect("funding broadcast")
    }

    /// Mines the funding in the next block and reports it to both sides.
    pub fn confirm_funding(&mut self) {
        self.height += 1;
        let conf = Confirmation {
            block_height: self.height,
            block_hash: BlockHash::from_byte_array([self.height as u8; 32]),
            tx_index: 1,
        };
        self.funding_block = Some(conf);
        let tx = self.funding();
        for node in [&mut self.a, &mut self.b] {
            if node.channel.is_none() {
                continue;
            }
            node.input(Input::FundingConfirmed {
                tx: tx.clone(),
                confirmation: conf,
                tip_height: self.height,
            });
        }
    }

    /// Mines `n` empty blocks, telling both sides.
    pub fn mine(&mut self, n: u32) {
        for _ in 0..n {
            self.height += 1;
            let h = self.height;
            for node in [&mut self.a, &mut self.b] {
                if node.channel.is_some() {
                    node.input(Input::NewBlock { height: h });
                }
            }
        }
    }

    /// A full open to `Ready` on both sides.
    pub fn open_to_ready() -> Pair {
        let mut pair = Pair::open_to_pending();
        pair.confirm_to_ready();
        pair
    }

    /// A full open of an anchor channel (`option_anchors` negotiated) to `Ready` on both
    /// sides.
    pub fn open_anchors_to_ready() -> Pair {
        let mut pair = Pair::new();
        pair.start(anchors_params(pair.b.node_id));
        pair.run();
        pair.confirm_to_ready();
        assert!(pair.a.channel().channel_type().anchors);
        pair
    }

    /// From a pending open: the funding confirmed to the fundee's minimum depth, both sides
    /// `Ready`.
    pub fn confirm_to_ready(&mut self) {
        self.confirm_funding();
        let depth = self.b.config.our_minimum_depth;
        self.mine(depth - 1);
        self.run();
        assert_eq!(self.a.state(), ChannelState::Ready);
        assert_eq!(self.b.state(), ChannelState::Ready);
    }
}

fn event_kind(e: &ChannelEvent) -> String {
    format!(
        "Emit({})",
        match e {
            ChannelEvent::ChannelPending { .. } => "ChannelPending",
            ChannelEvent::ChannelReady { .. } => "ChannelReady",
            ChannelEvent::ChannelOpenFailed { .. } => "ChannelOpenFailed",
            ChannelEvent::ChannelFailed { .. } => "ChannelFailed",
            ChannelEvent::ChannelClosing { .. } => "ChannelClosing",
            ChannelEvent::ChannelClosed { .. } => "ChannelClosed",
        }
    )
}

/// The names of the actions of a list, for order assertions. A commit is `Persist` followed
/// by what it carries (its events, then `AbandonFunding` for a funding it gives up); a
/// `FailOpen` is followed by its events.
pub fn kinds(actions: &[Action]) -> Vec<String> {
    let mut out = Vec::new();
    for a in actions {
        match a {
            Action::Commit(c) => {
                out.push("Persist".to_string());
                out.extend(c.events.iter().map(event_kind));
                if let Some(Release::AbandonFunding { .. }) = c.release {
                    out.push("AbandonFunding".into());
                }
            }
            Action::Send(m) => out.push(format!("Send({})", m.name())),
            Action::NeedFundingTx { .. } => out.push("NeedFundingTx".into()),
            Action::Broadcast {
                kind: BroadcastKind::Funding,
                ..
            } => out.push("BroadcastFunding".into()),
            Action::Broadcast {
                kind: BroadcastKind::Commitment,
                ..
            } => out.push("BroadcastCommitment".into()),
            Action::Broadcast {
                kind: BroadcastKind::MutualClose,
                ..
            } => out.push("BroadcastMutualClose".into()),
            Action::Broadcast {
                kind: BroadcastKind::Sweep,
                ..
            } => out.push("BroadcastSweep".into()),
            Action::Broadcast {
                kind: BroadcastKind::AnchorCpfp,
                ..
            } => out.push("BroadcastAnchorCpfp".into()),
            Action::BumpCommitment(_) => out.push("BumpCommitment".into()),
            Action::Watch(WatchRequest::Funding { .. }) => out.push("WatchFunding".into()),
            Action::Watch(WatchRequest::Output { .. }) => out.push("WatchOutput".into()),
            Action::Emit(e) => out.push(event_kind(e)),
            Action::Disconnect { .. } => out.push("Disconnect".into()),
            Action::ReconnectPeer { .. } => out.push("ReconnectPeer".into()),
            Action::FailOpen(f) => {
                out.push("FailOpen".into());
                out.extend(f.events.iter().map(event_kind));
            }
        }
    }
    out
}
