//! The signed commitment a stopped node's channel holds — what it broadcasts when it fails the
//! channel — computed in pure code from its stored record (tern-core's tests and, by
//! `#[path]`, tern-harness's).

/// The record of the only channel in the stopped node's database at `data`.
pub fn stored_record(data: &std::path::Path) -> Vec<u8> {
    let store = tern_core::store::Store::open(data.join("tern.sqlite")).expect("store");
    let stored = store.list_channels().expect("channels");
    let [row] = stored.as_slice() else {
        panic!("one channel: {stored:?}")
    };
    row.record.clone()
}

/// The signed commitment a channel `record` of the node of seed `[seed; 32]` holds: what it
/// broadcasts when it fails the channel (fed a peer `error` here, in pure code).
pub fn commitment_of_record(record: &[u8], seed: u8) -> bitcoin::Transaction {
    use tern_core::proto::channel::{
        Action, BroadcastKind, Channel, ChannelConfig, ChannelRecord, Context, Input,
    };
    use tern_core::proto::wire::{ErrorMessage, Message};
    let mut channel = Channel::from_record(ChannelRecord::decode(record).expect("record"));
    let keys = tern_core::proto::keys::KeysManager::new(&[seed; 32], bitcoin::Network::Regtest)
        .expect("keys")
        .channel_keys(channel.keys_index())
        .expect("channel keys");
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let config = ChannelConfig::new(bitcoin::constants::ChainHash::REGTEST);
    let ctx = Context::new(&secp, &keys, &config);
    let id = channel.channel_id().expect("id");
    let error = Input::Message(Message::Error(ErrorMessage::new(id, "force close")));
    channel
        .handle(error, &ctx)
        .into_iter()
        .find_map(|a| match a {
            Action::Broadcast {
                tx,
                kind: BroadcastKind::Commitment,
            } => Some(tx),
            _ => None,
        })
        .expect("a commitment broadcast")
}

/// The latest signed commitment of the only channel of the stopped node at `data` (seed
/// `[seed; 32]`): what it would broadcast on a peer `error`.
pub fn stored_commitment(data: &std::path::Path, seed: u8) -> bitcoin::Transaction {
    commitment_of_record(&stored_record(data), seed)
}

/// [`stored_commitment`] of a channel that must be ready.
pub fn stored_ready_commitment(data: &std::path::Path, seed: u8) -> bitcoin::Transaction {
    use tern_core::proto::channel::{Channel, ChannelRecord, ChannelState};
    let record = stored_record(data);
    let channel = Channel::from_record(ChannelRecord::decode(&record).expect("record"));
    assert_eq!(channel.state(), ChannelState::Ready);
    commitment_of_record(&record, seed)
}
