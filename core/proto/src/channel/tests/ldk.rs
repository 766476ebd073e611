//! Interop with LDK's `ChannelManager`, in memory (no network, no runtime): LDK parses every
//! message Tern sends and Tern verifies every signature LDK makes, in both roles, up to
//! `channel_ready` on both sides.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bitcoin::block::{Header, Version as BlockVersion};
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{PublicKey, Secp256k1};
use bitcoin::{BlockHash, CompactTarget, Network, Transaction, TxMerkleNode, Txid};
use lightning::blinded_path::message::{BlindedMessagePath, MessageContext, MessageForwardNode};
use lightning::blinded_path::payment::{BlindedPaymentPath, ReceiveTlvs};
use lightning::chain::chaininterface::{BroadcasterInterface, ConfirmationTarget, FeeEstimator};
use lightning::chain::chainmonitor::{ChainMonitor, Persist};
use lightning::chain::channelmonitor::{ChannelMonitor, ChannelMonitorUpdate};
use lightning::chain::transaction::OutPoint as LdkOutPoint;
use lightning::chain::{BestBlock, ChannelMonitorUpdateStatus, Confirm, Filter, WatchedOutput};
use lightning::events::{Event, EventsProvider};
use lightning::ln::channel_state::ChannelDetails;
use lightning::ln::channelmanager::{ChainParameters, ChannelManager};
use lightning::ln::msgs::{
    self, BaseMessageHandler, ChannelMessageHandler, ErrorAction, MessageSendEvent,
};
use lightning::onion_message::messenger::{Destination, MessageRouter, OnionMessagePath};
use lightning::routing::router::{InFlightHtlcs, Route, RouteParameters, Router};
use lightning::sign::{InMemorySigner, KeysManager, NodeSigner, ReceiveAuthKey, Recipient};
use lightning::types::features::InitFeatures;
use lightning::util::config::UserConfig;
use lightning::util::logger::{Logger, Record};
use lightning::util::persist::MonitorName;
use lightning::util::ser::{LengthReadable, Writeable};

use super::harness::{funding_tx, outbound_params, Node};
use crate::channel::{Action, Channel, ChannelState, Confirmation, InboundParams, Input};
use crate::wire::{Features, Message};

pub(super) mod anchors;

pub(super) struct NoLog;
impl Logger for NoLog {
    fn log(&self, _record: Record) {}
}

/// LDK's fee estimates: 2,500 sat/kw for every target until a test changes them.
pub(super) struct Fees(pub(super) AtomicU32);
impl FeeEstimator for Fees {
    fn get_est_sat_per_1000_weight(&self, _target: ConfirmationTarget) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Default)]
pub(super) struct Broadcasts(pub(super) Mutex<Vec<Transaction>>);
impl BroadcasterInterface for Broadcasts {
    fn broadcast_transactions(&self, txs: &[&Transaction]) {
        let mut all = self.0.lock().expect("lock");
        all.extend(txs.iter().map(|t| (*t).clone()));
    }
}

pub(super) struct NoFilter;
impl Filter for NoFilter {
    fn register_tx(&self, _txid: &Txid, _script_pubkey: &bitcoin::Script) {}
    fn register_output(&self, _output: WatchedOutput) {}
}

pub(super) struct MemoryPersister;
impl Persist<InMemorySigner> for MemoryPersister {
    fn persist_new_channel(
        &self,
        _name: MonitorName,
        _monitor: &ChannelMonitor<InMemorySigner>,
    ) -> ChannelMonitorUpdateStatus {
        ChannelMonitorUpdateStatus::Completed
    }
    fn update_persisted_channel(
        &self,
        _name: MonitorName,
        _update: Option<&ChannelMonitorUpdate>,
        _monitor: &ChannelMonitor<InMemorySigner>,
    ) -> ChannelMonitorUpdateStatus {
        ChannelMonitorUpdateStatus::Completed
    }
    fn archive_persisted_channel(&self, _name: MonitorName) {}
}

pub(super) struct NoRouter;
impl Router for NoRouter {
    fn find_route(
        &self,
        _payer: &PublicKey,
        _params: &RouteParameters,
        _first_hops: Option<&[&ChannelDetails]>,
        _inflight: InFlightHtlcs,
    ) -> Result<Route, &'static str> {
        Err("no routing in this test")
    }
    fn create_blinded_payment_paths<
        T: bitcoin::secp256k1::Signing + bitcoin::secp256k1::Verification,
    >(
        &self,
        _recipient: PublicKey,
        _first_hops: Vec<ChannelDetails>,
        _tlvs: ReceiveTlvs,
        _amount_msats: Option<u64>,
        _secp: &Secp256k1<T>,
    ) -> Result<Vec<BlindedPaymentPath>, ()> {
        Err(())
    }
}
impl MessageRouter for NoRouter {
    fn find_path(
        &self,
        _sender: PublicKey,
        _peers: Vec<PublicKey>,
        _destination: Destination,
    ) -> Result<OnionMessagePath, ()> {
        Err(())
    }
    fn create_blinded_paths<T: bitcoin::secp256k1::Signing + bitcoin::secp256k1::Verification>(
        &self,
        _recipient: PublicKey,
        _key: ReceiveAuthKey,
        _context: MessageContext,
        _peers: Vec<MessageForwardNode>,
        _secp: &Secp256k1<T>,
    ) -> Result<Vec<BlindedMessagePath>, ()> {
        Err(())
    }
}

pub(super) type Monitor = ChainMonitor<
    InMemorySigner,
    Arc<NoFilter>,
    Arc<Broadcasts>,
    Arc<Fees>,
    Arc<NoLog>,
    Arc<MemoryPersister>,
    Arc<KeysManager>,
>;
pub(super) type Manager = ChannelManager<
    Arc<Monitor>,
    Arc<Broadcasts>,
    Arc<KeysManager>,
    Arc<KeysManager>,
    Arc<KeysManager>,
    Arc<Fees>,
    Arc<NoRouter>,
    Arc<NoRouter>,
    Arc<NoLog>,
>;

pub(super) struct Ldk {
    pub(super) manager: Manager,
    pub(super) monitor: Arc<Monitor>,
    pub(super) broadcasts: Arc<Broadcasts>,
    pub(super) node_id: PublicKey,
    pub(super) fees: Arc<Fees>,
}

pub(super) fn header(height: u32) -> Header {
    Header {
        version: BlockVersion::TWO,
        prev_blockhash: BlockHash::from_byte_array([height.wrapping_sub(1) as u8; 32]),
        merkle_root: TxMerkleNode::all_zeros(),
        time: 1_700_000_000 + height,
        bits: CompactTarget::from_consensus(0x207f_ffff),
        nonce: height,
    }
}

impl Ldk {
    pub(super) fn new(height: u32) -> Ldk {
        Ldk::with_config(height, UserConfig::default())
    }

    /// An LDK node with `config` (anchors tests: `ldk/anchors.rs`).
    pub(super) fn with_config(height: u32, config: UserConfig) -> Ldk {
        let keys = Arc::new(KeysManager::new(&[0xee; 32], 1_700_000_000, 0, true));
        let fees = Arc::new(Fees(AtomicU32::new(2_500)));
        let broadcasts = Arc::new(Broadcasts::default());
        let monitor = Arc::new(ChainMonitor::new(
            None,
            broadcasts.clone(),
            Arc::new(NoLog),
            fees.clone(),
            Arc::new(MemoryPersister),
            keys.clone(),
            keys.get_peer_storage_key(),
        ));
        let node_id = keys.get_node_id(Recipient::Node).expect("node id");
        let manager = ChannelManager::new(
            fees.clone(),
            monitor.clone(),
            broadcasts.clone(),
            Arc::new(NoRouter),
            Arc::new(NoRouter),
            Arc::new(NoLog),
            keys.clone(),
            keys.clone(),
            keys,
            config,
            ChainParameters {
                network: Network::Regtest,
                best_block: BestBlock::new(header(height).block_hash(), height),
            },
            1_700_000_000,
        );
        Ldk {
            manager,
            monitor,
            broadcasts,
            node_id,
            fees,
        }
    }

    pub(super) fn connect(&self, tern: PublicKey) {
        let features = InitFeatures::from_be_bytes(Features::tern_init().to_be_bytes());
        let init = msgs::Init {
            features,
            networks: None,
            remote_network_address: None,
        };
        self.manager
            .peer_connected(tern, &init, true)
            .expect("LDK accepts our init");
    }

    /// LDK's messages for Tern, converted to Tern's types; fails the test if LDK refused
    /// something.
    pub(super) fn outbox(&self) -> Vec<Message> {
        self.messages(false)
    }

    /// LDK's messages for Tern, with the `error`s it sends if `errors` (else they fail the
    /// test).
    pub(super) fn messages(&self, errors: bool) -> Vec<Message> {
        let mut out = Vec::new();
        for ev in self.manager.get_and_clear_pending_msg_events() {
            let (ty, payload) = match ev {
                MessageSendEvent::SendAcceptChannel { msg, .. } => (33u16, msg.encode()),
                MessageSendEvent::SendOpenChannel { msg, .. } => (32, msg.encode()),
                MessageSendEvent::SendFundingCreated { msg, .. } => (34, msg.encode()),
                MessageSendEvent::SendFundingSigned { msg, .. } => (35, msg.encode()),
                MessageSendEvent::SendChannelReady { msg, .. } => (36, msg.encode()),
                MessageSendEvent::SendChannelReestablish { msg, .. } => (136, msg.encode()),
                MessageSendEvent::SendRevokeAndACK { msg, .. } => (133, msg.encode()),
                MessageSendEvent::SendShutdown { msg, .. } => (38, msg.encode()),
                MessageSendEvent::SendClosingSigned { msg, .. } => (39, msg.encode()),
                MessageSendEvent::UpdateHTLCs { updates, .. } => {
                    let mut parts: Vec<(u16, Vec<u8>)> = Vec::new();
                    parts.extend(updates.update_add_htlcs.iter().map(|m| (128, m.encode())));
                    parts.extend(
                        updates
                            .update_fulfill_htlcs
                            .iter()
                            .map(|m| (130, m.encode())),
                    );
                    parts.extend(updates.update_fail_htlcs.iter().map(|m| (131, m.encode())));
                    parts.extend(
                        updates
                            .update_fail_malformed_htlcs
                            .iter()
                            .map(|m| (135, m.encode())),
                    );
                    parts.extend(updates.update_fee.iter().map(|m| (134, m.encode())));
                    parts.extend(updates.commitment_signed.iter().map(|m| (132, m.encode())));
                    for (ty, payload) in parts {
                        let mut bytes = ty.to_be_bytes().to_vec();
                        bytes.extend(payload);
                        out.push(Message::decode(&bytes).expect("Tern decodes LDK's update"));
                    }
                    continue;
                }
                MessageSendEvent::HandleError {
                    action: ErrorAction::SendErrorMessage { msg },
                    ..
                } if errors => (17, msg.encode()),
                MessageSendEvent::HandleError { action, .. } => {
                    panic!("LDK refused: {action:?}")
                }
                _ => continue,
            };
            let mut bytes = ty.to_be_bytes().to_vec();
            bytes.extend(payload);
            out.push(Message::decode(&bytes).expect("Tern decodes LDK's message"));
        }
        out
    }

    /// Hands one of Tern's messages to LDK (through its wire encoding).
    pub(super) fn receive(&self, from: PublicKey, msg: &Message) {
        let bytes = msg.encode();
        let mut payload = &bytes[2..];
        macro_rules! read {
            ($t:ty) => {
                <$t as LengthReadable>::read_from_fixed_length_buffer(&mut payload)
                    .expect("LDK decodes Tern's message")
            };
        }
        match msg {
            Message::OpenChannel(_) => self
                .manager
                .handle_open_channel(from, &read!(msgs::OpenChannel)),
            Message::AcceptChannel(_) => self
                .manager
                .handle_accept_channel(from, &read!(msgs::AcceptChannel)),
            Message::FundingCreated(_) => self
                .manager
                .handle_funding_created(from, &read!(msgs::FundingCreated)),
            Message::FundingSigned(_) => self
                .manager
                .handle_funding_signed(from, &read!(msgs::FundingSigned)),
            Message::ChannelReady(_) => self
                .manager
                .handle_channel_ready(from, &read!(msgs::ChannelReady)),
            Message::ChannelReestablish(_) => self
                .manager
                .handle_channel_reestablish(from, &read!(msgs::ChannelReestablish)),
            Message::Error(_) => self.manager.handle_error(from, &read!(msgs::ErrorMessage)),
            // LDK's peer manager only logs a warning (and the connection goes).
            Message::Warning(_) => {}
            Message::UpdateFee(_) => self
                .manager
                .handle_update_fee(from, &read!(msgs::UpdateFee)),
            Message::CommitmentSigned(_) => self
                .manager
                .handle_commitment_signed(from, &read!(msgs::CommitmentSigned)),
            Message::RevokeAndAck(_) => self
                .manager
                .handle_revoke_and_ack(from, &read!(msgs::RevokeAndACK)),
            Message::Shutdown(_) => self.manager.handle_shutdown(from, &read!(msgs::Shutdown)),
            Message::ClosingSigned(_) => self
                .manager
                .handle_closing_signed(from, &read!(msgs::ClosingSigned)),
            other => panic!("unexpected {}", other.name()),
        }
    }

    pub(super) fn events(&self) -> Vec<Event> {
        let events = Mutex::new(Vec::new());
        self.manager.process_pending_events(&|e: Event| {
            events.lock().expect("lock").push(e);
            Ok(())
        });
        events.into_inner().expect("lock")
    }

    pub(super) fn confirm(&self, tx: &Transaction, height: u32) {
        let h = header(height);
        for c in [
            &self.manager as &dyn Confirm,
            &*self.monitor as &dyn Confirm,
        ] {
            c.transactions_confirmed(&h, &[(1, tx)], height);
            c.best_block_updated(&h, height);
        }
    }

    pub(super) fn tip(&self, height: u32) {
        let h = header(height);
        for c in [
            &self.manager as &dyn Confirm,
            &*self.monitor as &dyn Confirm,
        ] {
            c.best_block_updated(&h, height);
        }
    }
}

/// Delivers everything Tern queued to LDK; returns it.
pub(super) fn flush(node: &mut Node, ldk: &Ldk) -> Vec<Message> {
    let sent: Vec<Message> = node.outbox.drain(..).collect();
    for m in &sent {
        ldk.receive(node.node_id, m);
    }
    sent
}

pub(super) fn conf(height: u32) -> Confirmation {
    Confirmation {
        block_height: height,
        block_hash: header(height).block_hash(),
        tx_index: 1,
    }
}

#[test]
fn tern_funder_ldk_fundee() {
    let mut height = 200;
    let ldk = Ldk::new(height);
    let mut tern = Node::new(1);
    ldk.connect(tern.node_id);

    let (channel, actions) =
        Channel::new_outbound(outbound_params(ldk.node_id), &tern.ctx()).expect("open");
    tern.channel = Some(channel);
    tern.apply(&actions);
    flush(&mut tern, &ldk); // open_channel → LDK
    let replies = ldk.outbox();
    assert!(
        matches!(replies.as_slice(), [Message::AcceptChannel(_)]),
        "{replies:?}"
    );

    let actions = tern.input(Input::Message(replies[0].clone()));
    let Some(Action::NeedFundingTx {
        script_pubkey,
        amount,
        ..
    }) = actions.first().cloned()
    else {
        panic!("funding request: {actions:?}");
    };
    let tx = funding_tx(&script_pubkey, amount);
    tern.input(Input::FundingTxBuilt { tx: tx.clone() });
    // funding_created → LDK verifies our signature of its commitment.
    let sent = flush(&mut tern, &ldk);
    assert!(matches!(sent.as_slice(), [Message::FundingCreated(_)]));
    let replies = ldk.outbox();
    assert!(
        matches!(replies.as_slice(), [Message::FundingSigned(_)]),
        "{replies:?}"
    );
    // Tern verifies LDK's signature of our commitment, persists, broadcasts.
    let actions = tern.input(Input::Message(replies[0].clone()));
    assert_eq!(
        tern.state(),
        ChannelState::AwaitingConfirmations,
        "{actions:?}"
    );
    assert_eq!(tern.broadcasts, vec![tx.clone()]);
    assert!(ldk
        .events()
        .iter()
        .any(|e| matches!(e, Event::ChannelPending { .. })));

    // Six confirmations (LDK's minimum_depth).
    height += 1;
    ldk.confirm(&tx, height);
    assert!(tern.outbox.is_empty());
    tern.input(Input::FundingConfirmed {
        tx: tx.clone(),
        confirmation: conf(height),
        tip_height: height,
    });
    let depth = tern.channel().minimum_depth().expect("depth");
    assert_eq!(depth, 6);
    for _ in 1..depth {
        height += 1;
        ldk.tip(height);
        tern.input(Input::NewBlock { height });
    }
    let ours: Vec<Message> = tern.outbox.drain(..).collect();
    assert!(
        matches!(ours.as_slice(), [Message::ChannelReady(_)]),
        "{ours:?}"
    );
    ldk.receive(tern.node_id, &ours[0]);
    let replies = ldk.outbox();
    let ready = replies
        .iter()
        .find(|m| matches!(m, Message::ChannelReady(_)))
        .expect("LDK's channel_ready");
    tern.input(Input::Message(ready.clone()));
    assert_eq!(tern.state(), ChannelState::Ready);
    assert!(ldk
        .events()
        .iter()
        .any(|e| matches!(e, Event::ChannelReady { .. })));
    let details = ldk.manager.list_channels();
    assert_eq!(details.len(), 1);
    assert!(details[0].is_channel_ready);
    assert_eq!(
        details[0].funding_txo,
        Some(LdkOutPoint {
            txid: tx.compute_txid(),
            index: 1
        })
    );
    assert_eq!(details[0].channel_value_satoshis, 1_000_000);
}

#[test]
fn ldk_funder_tern_fundee() {
    let mut height = 300;
    let ldk = Ldk::new(height);
    let mut tern = Node::new(2);
    ldk.connect(tern.node_id);

    ldk.manager
        .create_channel(tern.node_id, 500_000, 20_000_000, 42, None, None)
        .expect("LDK opens");
    let msgs = ldk.outbox();
    let Some(Message::OpenChannel(open)) = msgs.first().cloned() else {
        panic!("open_channel: {msgs:?}");
    };
    let params = InboundParams {
        counterparty_node_id: ldk.node_id,
        keys_index: 7,
        current_height: height,
    };
    let (channel, actions) =
        Channel::new_inbound(&open, params, &tern.ctx()).expect("Tern accepts LDK's open");
    tern.channel = Some(channel);
    tern.apply(&actions);
    flush(&mut tern, &ldk); // accept_channel → LDK

    let tx = ldk
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::FundingGenerationReady {
                temporary_channel_id,
                counterparty_node_id,
                channel_value_satoshis,
                output_script,
                ..
            } => {
                let tx = funding_tx(
                    &output_script,
                    bitcoin::Amount::from_sat(channel_value_satoshis),
                );
                ldk.manager
                    .funding_transaction_generated(
                        temporary_channel_id,
                        counterparty_node_id,
                        tx.clone(),
                    )
                    .expect("LDK takes the funding tx");
                Some(tx)
            }
            _ => None,
        })
        .expect("funding generation event");
    let msgs = ldk.outbox();
    assert!(
        matches!(msgs.as_slice(), [Message::FundingCreated(_)]),
        "{msgs:?}"
    );
    // Tern verifies LDK's signature of our commitment, persists, then signs LDK's.
    let actions = tern.input(Input::Message(msgs[0].clone()));
    assert_eq!(
        tern.state(),
        ChannelState::AwaitingConfirmations,
        "{actions:?}"
    );
    // funding_signed → LDK verifies our signature of its commitment and broadcasts.
    let sent = flush(&mut tern, &ldk);
    assert!(matches!(sent.as_slice(), [Message::FundingSigned(_)]));
    assert!(ldk.outbox().is_empty());
    let broadcast = ldk.broadcasts.0.lock().expect("lock").clone();
    assert_eq!(broadcast, vec![tx.clone()], "LDK accepted funding_signed");

    height += 1;
    ldk.confirm(&tx, height);
    tern.input(Input::FundingConfirmed {
        tx: tx.clone(),
        confirmation: conf(height),
        tip_height: height,
    });
    // Tern's minimum_depth is 3; LDK as funder sends channel_ready at our depth too.
    for _ in 1..3 {
        height += 1;
        ldk.tip(height);
        tern.input(Input::NewBlock { height });
    }
    let ours: Vec<Message> = tern.outbox.drain(..).collect();
    assert!(
        matches!(ours.as_slice(), [Message::ChannelReady(_)]),
        "{ours:?}"
    );
    let theirs = ldk.outbox();
    let ready = theirs
        .iter()
        .find(|m| matches!(m, Message::ChannelReady(_)))
        .expect("LDK's channel_ready");
    tern.input(Input::Message(ready.clone()));
    ldk.receive(tern.node_id, &ours[0]);
    assert_eq!(tern.state(), ChannelState::Ready);
    assert_eq!(tern.channel().our_balance_msat(), 20_000_000);
    let details = ldk.manager.list_channels();
    assert!(details[0].is_channel_ready, "{:?}", details[0]);

    // Reconnection: LDK and Tern reestablish; Tern retransmits channel_ready per BOLT 2.
    ldk.manager.peer_disconnected(tern.node_id);
    ldk.connect(tern.node_id);
    let theirs = ldk.outbox();
    let Some(Message::ChannelReestablish(reest)) = theirs.first().cloned() else {
        panic!("LDK reestablishes: {theirs:?}");
    };
    assert_eq!(reest.next_commitment_number, 1);
    tern.input(Input::PeerReconnected);
    let actions = tern.input(Input::Message(Message::ChannelReestablish(reest)));
    assert!(
        matches!(actions.as_slice(), [Action::Send(Message::ChannelReady(_))]),
        "{actions:?}"
    );
    flush(&mut tern, &ldk);
    let after = ldk.outbox();
    assert!(
        !after.iter().any(|m| matches!(m, Message::Error(_))),
        "{after:?}"
    );
}

/// Tern, the fundee, persisted the channel and was killed before its `funding_signed` left;
/// LDK, the funder, dropped the unfunded open when the connection went. After Tern's restart
/// LDK answers its `channel_reestablish` with the placeholder it sends for a channel it does
/// not know, then an `error`: Tern fails the channel in words a user understands and
/// broadcasts nothing (its commitment would spend a funding that never existed).
#[test]
fn ldk_funder_that_dropped_the_open_fails_tern_fundee_without_a_broadcast() {
    let height = 300;
    let ldk = Ldk::new(height);
    let mut tern = Node::new(2);
    ldk.connect(tern.node_id);
    ldk.manager
        .create_channel(tern.node_id, 500_000, 20_000_000, 42, None, None)
        .expect("LDK opens");
    let Some(Message::OpenChannel(open)) = ldk.outbox().first().cloned() else {
        panic!("open_channel");
    };
    let params = InboundParams {
        counterparty_node_id: ldk.node_id,
        keys_index: 7,
        current_height: height,
    };
    let (channel, actions) = Channel::new_inbound(&open, params, &tern.ctx()).expect("accepts");
    tern.channel = Some(channel);
    tern.apply(&actions);
    flush(&mut tern, &ldk);
    for e in ldk.events() {
        if let Event::FundingGenerationReady {
            temporary_channel_id,
            counterparty_node_id,
            channel_value_satoshis,
            output_script,
            ..
        } = e
        {
            let tx = funding_tx(
                &output_script,
                bitcoin::Amount::from_sat(channel_value_satoshis),
            );
            ldk.manager
                .funding_transaction_generated(temporary_channel_id, counterparty_node_id, tx)
                .expect("LDK takes the funding tx");
        }
    }
    let msgs = ldk.outbox();
    assert!(
        matches!(msgs.as_slice(), [Message::FundingCreated(_)]),
        "{msgs:?}"
    );
    tern.input(Input::Message(msgs[0].clone()));
    assert_eq!(tern.state(), ChannelState::AwaitingConfirmations);
    assert_eq!(tern.sent_names(), ["funding_signed"]);
    // Killed here: funding_signed never leaves; LDK forgets the open when the link drops.
    ldk.manager.peer_disconnected(tern.node_id);
    assert!(
        ldk.manager.list_channels().is_empty(),
        "LDK dropped the open"
    );
    assert!(ldk.broadcasts.0.lock().expect("lock").is_empty());
    tern.restart();
    ldk.connect(tern.node_id);
    assert!(ldk.outbox().is_empty(), "LDK knows no channel with Tern");
    tern.input(Input::PeerReconnected);
    flush(&mut tern, &ldk);
    let replies = ldk.messages(true);
    let [Message::ChannelReestablish(placeholder), Message::Error(_)] = replies.as_slice() else {
        panic!("LDK's placeholder and error: {replies:?}");
    };
    assert_eq!(
        (
            placeholder.next_commitment_number,
            placeholder.next_revocation_number
        ),
        (0, 0)
    );
    assert_ne!(placeholder.your_last_per_commitment_secret, [0; 32]);
    for m in replies.clone() {
        tern.input(Input::Message(m));
    }
    assert_eq!(tern.state(), ChannelState::FailedUnfunded);
    assert_eq!(
        tern.channel().failure_reason(),
        Some("the funder dropped the open before our funding_signed reached it; nothing was committed")
    );
    assert!(!tern.history.iter().flatten().any(|a| matches!(
        a,
        Action::Broadcast {
            kind: crate::channel::BroadcastKind::Commitment,
            ..
        } | Action::Broadcast {
            kind: crate::channel::BroadcastKind::Funding,
            ..
        }
    )));
    assert!(tern.broadcasts.is_empty());
    assert!(tern
        .events
        .iter()
        .any(|e| matches!(e, crate::channel::ChannelEvent::ChannelOpenFailed { .. })));
    // Our error reaches LDK, which has nothing to fail.
    flush(&mut tern, &ldk);
    assert!(ldk.messages(true).is_empty());
    // The funding is still watched.
    assert!(matches!(
        tern.channel().resume_actions().as_slice(),
        [Action::Watch(crate::channel::WatchRequest::Funding { .. })]
    ));
}
