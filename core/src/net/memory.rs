//! An in-memory network for tests: two connection managers on one [`MemoryNet`] talk over
//! `tokio::io::duplex` pipes instead of sockets, so whole nodes run in one test with no port,
//! no kernel and, on a paused clock, no real time.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::io::DuplexStream;
use tokio::sync::mpsc;

/// Bytes buffered in each direction of a pipe (a writer waits while its pipe is full, as on
/// a socket).
const PIPE_BUFFER: usize = 64 * 1024;
/// First port handed out for `:0` listeners and for dialling ends.
const FIRST_PORT: u16 = 20_000;

/// A connection handed to a listener: its end of the pipe and the dialler's address.
pub(super) type Accepted = (DuplexStream, SocketAddr);

/// A network of in-memory listeners, keyed by the socket address they were given. Cheap to
/// clone: clones are the same network.
#[derive(Debug, Clone, Default)]
pub struct MemoryNet {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Ports handed out so far (after [`FIRST_PORT`]).
    ports: u16,
    listeners: HashMap<SocketAddr, mpsc::UnboundedSender<Accepted>>,
}

impl Inner {
    fn fresh_addr(&mut self) -> SocketAddr {
        self.ports = self.ports.wrapping_add(1);
        let port = FIRST_PORT.wrapping_add(self.ports);
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }
}

fn refused(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionRefused, what)
}

impl MemoryNet {
    /// An empty network.
    pub fn new() -> Self {
        MemoryNet::default()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Listens on `addr` (`host:port`; port 0 picks one): the bound address and the stream of
    /// accepted connections. An address whose listener is gone can be bound again.
    pub(super) fn bind(
        &self,
        addr: &str,
    ) -> Result<(SocketAddr, mpsc::UnboundedReceiver<Accepted>), String> {
        let asked: SocketAddr = addr
            .parse()
            .map_err(|e| format!("{addr} is not a socket address: {e}"))?;
        let mut inner = self.inner();
        let bound = if asked.port() == 0 {
            inner.fresh_addr()
        } else {
            asked
        };
        if inner.listeners.get(&bound).is_some_and(|l| !l.is_closed()) {
            return Err(format!("{bound} is already in use"));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        inner.listeners.insert(bound, tx);
        Ok((bound, rx))
    }

    /// Dials `addr`: our end of a new pipe and the listener's address. Refused when nothing
    /// listens there. Public so that a test can be a raw (hostile) peer of a node.
    pub fn connect(&self, addr: &str) -> std::io::Result<(DuplexStream, SocketAddr)> {
        let remote: SocketAddr = addr
            .parse()
            .map_err(|e| refused(format!("{addr} is not a socket address: {e}")))?;
        let mut inner = self.inner();
        let local = inner.fresh_addr();
        let listener = inner
            .listeners
            .get(&remote)
            .ok_or_else(|| refused(format!("nothing listens on {remote}")))?;
        let (ours, theirs) = tokio::io::duplex(PIPE_BUFFER);
        listener
            .send((theirs, local))
            .map_err(|_| refused(format!("the listener on {remote} is closed")))?;
        Ok((ours, remote))
    }
}
