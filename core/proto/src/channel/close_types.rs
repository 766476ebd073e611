//! The public vocabulary of a channel's end: how it closed ([`CloseKind`]), how far the close
//! is ([`ClosingStatus`]) and what it still owes us on chain ([`Claimable`]).
//!
//! Cooperative closes (`shutdown` / `closing_signed`) live in `shutdown.rs` and
//! `negotiate.rs`; what happens on chain after the funding is spent (classification, sweeps,
//! penalties, `Closed`) in `resolve.rs`.

/// Who asked for a cooperative close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Initiator {
    /// We sent the first `shutdown` (the user's `close_channel`).
    Local,
    /// The peer sent the first `shutdown`.
    Remote,
}

/// How a channel ended (or is ending) on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseKind {
    /// Both sides signed a closing transaction (`closing_signed`).
    Cooperative {
        /// Who sent the first `shutdown`.
        initiator: Initiator,
    },
    /// We broadcast our latest commitment (the user's force close, a protocol failure, the
    /// peer's `error`, a timeout).
    LocalForce,
    /// The peer broadcast its current commitment.
    RemoteForce,
    /// The peer broadcast a commitment newer than any we know: we lost data. Only our
    /// `to_remote` output can be taken (BOLT 5).
    RemoteFuture,
    /// The peer broadcast a commitment it had revoked: every output is ours (penalty).
    Revoked,
    /// The funding was spent by a transaction we cannot place (BOLT 5: warn the user).
    Unknown,
}

impl CloseKind {
    /// A short lowercase name (`cooperative`, `local-force`, ...), for logs, JSON and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            CloseKind::Cooperative {
                initiator: Initiator::Local,
            } => "cooperative (we asked)",
            CloseKind::Cooperative {
                initiator: Initiator::Remote,
            } => "cooperative (the peer asked)",
            CloseKind::LocalForce => "local-force",
            CloseKind::RemoteForce => "remote-force",
            CloseKind::RemoteFuture => "remote-future",
            CloseKind::Revoked => "revoked (penalty)",
            CloseKind::Unknown => "unknown spend",
        }
    }
}

/// How far a closing channel is, for `list_channels` (the node puts it in words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClosingStatus {
    /// Our `shutdown` waits until no update is in flight (or the peer reconnects).
    ShutdownPending,
    /// `shutdown`s exchanged (or ours sent): waiting for the peer's `shutdown` or for updates
    /// to settle.
    ShuttingDown,
    /// Negotiating the closing fee: `awaiting_peer` when our `closing_signed` is out.
    Negotiating {
        /// Whether we wait for the peer's `closing_signed`.
        awaiting_peer: bool,
    },
    /// The funding is spent (or our commitment / closing tx broadcast): resolving on chain.
    OnChain {
        /// How it closed.
        kind: CloseKind,
        /// The height the closing transaction confirmed at, if it did.
        confirmed_at: Option<u32>,
        /// The first height at which every output of ours is resolved (6 deep), if known.
        done_at: Option<u32>,
    },
    /// Every output is resolved at 6 confirmations.
    Closed {
        /// How it closed.
        kind: CloseKind,
    },
}

/// An amount the close gives back to us, and when (like ldk-node's lightning balances).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimable {
    /// Value in satoshis (before the sweep's fee).
    pub amount_sat: u64,
    /// Where it stands.
    pub status: ClaimStatus,
}

/// Where a [`Claimable`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimStatus {
    /// Paid to our wallet by the closing transaction: confirmed when it is 6 deep.
    AwaitingConfirmations {
        /// The height at which it counts as resolved (6 confirmations), once mined.
        confirmed_at: Option<u32>,
    },
    /// A CSV-locked output: spendable from `height` on (the sweep is built then).
    Timelocked {
        /// The first block height at which the sweep is valid.
        height: u32,
    },
    /// A sweep is broadcast, not yet 6 deep.
    Sweeping {
        /// The height the sweep confirmed at, if it did.
        confirmed_at: Option<u32>,
    },
    /// Worth less than the fee to sweep it: recorded, never swept.
    Uneconomical,
}
