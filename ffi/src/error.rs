//! One flat error for every call: kinds an app can act on, with a readable message (the core
//! error's text). Kotlin sees `TernException.<Kind>(message)`, Swift `TernError.<Kind>`,
//! Python `TernError.<Kind>`.

use tern_core::node::NodeError;

/// What went wrong in a Tern call.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum TernError {
    /// An argument is wrong (bad address, bad id, out-of-range amount): fix it and call again.
    #[error("{0}")]
    InvalidInput(String),
    /// The on-chain wallet cannot pay for this.
    #[error("{0}")]
    InsufficientFunds(String),
    /// The peer could not be reached, or is not connected.
    #[error("{0}")]
    PeerUnreachable(String),
    /// No channel has this id.
    #[error("{0}")]
    UnknownChannel(String),
    /// The channel cannot close this way now.
    #[error("{0}")]
    CannotClose(String),
    /// Another node runs on this data dir (another process, an app extension, another
    /// `Node` in this process).
    #[error("{0}")]
    AlreadyRunning(String),
    /// The node is stopped.
    #[error("{0}")]
    Stopped(String),
    /// The database failed (disk full, I/O error, a corrupt record).
    #[error("{0}")]
    Storage(String),
    /// The Esplora server failed or could not be reached: try again later.
    #[error("{0}")]
    Chain(String),
    /// A bug, or an unexpected failure of a library Tern uses.
    #[error("{0}")]
    Internal(String),
}

impl From<NodeError> for TernError {
    fn from(e: NodeError) -> Self {
        let message = e.to_string();
        match e {
            NodeError::InvalidInput { .. } => TernError::InvalidInput(message),
            NodeError::InsufficientFunds { .. } => TernError::InsufficientFunds(message),
            // The open would eat the anchor channels' fee reserve: the app's remedy is the same.
            NodeError::AnchorReserve { .. } => TernError::InsufficientFunds(message),
            NodeError::PeerUnreachable { .. } => TernError::PeerUnreachable(message),
            NodeError::UnknownChannel(_) => TernError::UnknownChannel(message),
            NodeError::CannotClose { .. } => TernError::CannotClose(message),
            NodeError::AlreadyRunning { .. } => TernError::AlreadyRunning(message),
            // The app gave another node's seed for this data dir: its remedy is its own seed.
            NodeError::WrongSeed { .. } => TernError::InvalidInput(message),
            NodeError::Stopped => TernError::Stopped(message),
            NodeError::Storage(_) => TernError::Storage(message),
            NodeError::Chain(_) => TernError::Chain(message),
            _ => TernError::Internal(message),
        }
    }
}

impl TernError {
    /// A bad argument `field`: `reason`.
    pub(crate) fn invalid(field: &str, reason: impl std::fmt::Display) -> Self {
        TernError::InvalidInput(format!("invalid {field}: {reason}"))
    }
}

/// An exception the app's code threw where Tern called it (a [`crate::LogSink`]).
impl From<uniffi::UnexpectedUniFFICallbackError> for TernError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        TernError::Internal(format!("the app's callback failed: {}", e.reason))
    }
}
