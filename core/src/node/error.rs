//! The node API's error: one flat enum of kinds an app can act on.

use std::path::PathBuf;

use bitcoin::secp256k1::PublicKey;
use bitcoin::Amount;

use crate::chain::{ChainError, WatcherError};
use crate::net::NetError;
use crate::proto::wire::ChannelId;
use crate::store::StoreError;
use crate::wallet::WalletError;

/// What went wrong in a [`super::Node`] call. Each kind says what the app can do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// An argument is wrong: fix `field` and call again.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The argument (or configuration item) at fault, e.g. `"channel_value"`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The on-chain wallet cannot pay for this: receive more, or ask for less.
    #[error(
        "insufficient funds: {} sat needed, {} sat available, {} sat held by other opens in progress",
        needed.to_sat(), available.to_sat(), locked_by_opens.to_sat()
    )]
    InsufficientFunds {
        /// What the transaction needs, fee included.
        needed: Amount,
        /// What the wallet can spend now (locked coins excluded).
        available: Amount,
        /// What opens in progress have locked (spendable again once they end).
        locked_by_opens: Amount,
    },
    /// An anchor channel's open would leave less on chain than the reserve the anchor
    /// channels keep to fee-bump a force close (`Config::anchor_reserve_per_channel`):
    /// receive more, open a smaller channel, or lower the reserve.
    #[error(
        "open refused: it would leave {} sat on chain, below the {} sat reserve of {anchor_channels} anchor channels ({} sat each) that pays for bumping a force close's fee",
        left.to_sat(), required.to_sat(), per_channel.to_sat()
    )]
    AnchorReserve {
        /// What the wallet would keep after the open.
        left: Amount,
        /// What the anchor channels (this one included) ask to keep.
        required: Amount,
        /// How many anchor channels, this one included.
        anchor_channels: u32,
        /// The reserve per anchor channel.
        per_channel: Amount,
    },
    /// The peer could not be reached (or its connection dropped): check the address, try
    /// later.
    #[error("peer {node_id} unreachable: {reason}")]
    PeerUnreachable {
        /// The peer.
        node_id: PublicKey,
        /// Why.
        reason: String,
    },
    /// No channel (or pending open request) has this id.
    #[error("unknown channel {0}")]
    UnknownChannel(ChannelId),
    /// The channel cannot close this way now (not durable yet, already closing or closed,
    /// failed): see `reason`.
    #[error("channel {channel_id} cannot close: {reason}")]
    CannotClose {
        /// The channel.
        channel_id: ChannelId,
        /// Why.
        reason: String,
    },
    /// Another node (another process, an app extension, or another `Node` in this process)
    /// holds this data dir. Only one may run on it at a time.
    #[error("another node is running on {}", data_dir.display())]
    AlreadyRunning {
        /// The data dir.
        data_dir: PathBuf,
    },
    /// The seed given is not the one this data dir's database was made with: the database
    /// records the node id it belongs to (meta key `node_id`). Nothing was written.
    #[error(
        "this database belongs to node {database}, the seed is node {seed}: refusing to start \
         (give this node's seed or mnemonic, or start the other seed in another data dir)"
    )]
    WrongSeed {
        /// The node id recorded in the database (boxed: keeps `NodeError` small).
        database: Box<PublicKey>,
        /// The node id of the seed given.
        seed: Box<PublicKey>,
    },
    /// The node was stopped (or halted after its storage failed).
    #[error("the node is stopped")]
    Stopped,
    /// The database failed (disk full, I/O error, a corrupt record).
    #[error("storage: {0}")]
    Storage(#[from] StoreError),
    /// The Esplora server failed or could not be reached: try again later.
    #[error("chain source: {0}")]
    Chain(#[from] ChainError),
    /// A bug or an unexpected failure of a library Tern uses.
    #[error("internal error: {0}")]
    Internal(String),
}

impl NodeError {
    /// An [`NodeError::InvalidInput`].
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        NodeError::InvalidInput {
            field,
            reason: reason.into(),
        }
    }

    /// A record of `table` that cannot be decoded.
    pub(crate) fn corrupt(table: &'static str, reason: impl std::fmt::Display) -> Self {
        NodeError::Storage(StoreError::Corrupt {
            table,
            reason: reason.to_string(),
        })
    }
}

impl From<WatcherError> for NodeError {
    fn from(e: WatcherError) -> Self {
        match e {
            WatcherError::Chain(c) => NodeError::Chain(c),
            WatcherError::Store(s) => NodeError::Storage(s),
            WatcherError::Corrupt(c) => NodeError::corrupt("meta", c),
        }
    }
}

impl From<WalletError> for NodeError {
    fn from(e: WalletError) -> Self {
        match e {
            WalletError::InsufficientFunds { needed, available } => NodeError::InsufficientFunds {
                needed: Amount::from_sat(needed),
                available: Amount::from_sat(available),
                locked_by_opens: Amount::ZERO,
            },
            WalletError::InvalidAddress { address, reason } => {
                NodeError::invalid("address", format!("{address}: {reason}"))
            }
            e @ WalletError::WrongNetwork { .. } => NodeError::invalid("address", e.to_string()),
            e @ WalletError::DustAmount { .. } => NodeError::invalid("amount", e.to_string()),
            e @ WalletError::FeeRateOutOfRange { .. } => {
                NodeError::invalid("fee_rate", e.to_string())
            }
            other => NodeError::Internal(other.to_string()),
        }
    }
}

impl From<NetError> for NodeError {
    fn from(e: NetError) -> Self {
        match e {
            NetError::Shutdown => NodeError::Stopped,
            NetError::Listen(reason) => NodeError::invalid("listen", reason),
            other => NodeError::Internal(other.to_string()),
        }
    }
}
