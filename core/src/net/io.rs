//! The byte streams connections run on: TCP, or (tests) an in-memory [`super::MemoryNet`].
//! Everything above this file sees a [`Stream`] and does not know which.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use super::NetConfig;

/// A connected byte stream.
pub(super) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A connection's stream, whatever carries it.
pub(super) type Stream = Box<dyn Io>;

/// Dials `addr`: the stream and the peer's address.
pub(super) async fn dial(cfg: &NetConfig, addr: &str) -> std::io::Result<(Stream, SocketAddr)> {
    #[cfg(any(test, feature = "dev-disconnect"))]
    if let Some(net) = &cfg.memory_net {
        let (stream, remote) = net.connect(addr)?;
        return Ok((Box::new(stream), remote));
    }
    let _ = cfg;
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let remote = stream.peer_addr()?;
    Ok((Box::new(stream), remote))
}

/// A bound listener.
pub(super) enum Listener {
    Tcp(TcpListener),
    #[cfg(any(test, feature = "dev-disconnect"))]
    Memory(tokio::sync::mpsc::UnboundedReceiver<super::memory::Accepted>),
}

impl Listener {
    /// Binds `addr` (`host:port`; port 0 picks one): the listener and the bound address.
    pub(super) async fn bind(cfg: &NetConfig, addr: &str) -> Result<(Self, SocketAddr), String> {
        #[cfg(any(test, feature = "dev-disconnect"))]
        if let Some(net) = &cfg.memory_net {
            let (local, accepted) = net.bind(addr)?;
            return Ok((Listener::Memory(accepted), local));
        }
        let _ = cfg;
        let listener = TcpListener::bind(addr).await.map_err(|e| e.to_string())?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        Ok((Listener::Tcp(listener), local))
    }

    /// The next accepted connection and the peer's address.
    pub(super) async fn accept(&mut self) -> std::io::Result<(Stream, SocketAddr)> {
        match self {
            Listener::Tcp(l) => {
                let (stream, peer) = l.accept().await?;
                let _ = stream.set_nodelay(true);
                Ok((Box::new(stream), peer))
            }
            #[cfg(any(test, feature = "dev-disconnect"))]
            Listener::Memory(accepted) => match accepted.recv().await {
                Some((stream, peer)) => Ok((Box::new(stream), peer)),
                // The network keeps the sender while this receiver lives: never happens.
                None => std::future::pending().await,
            },
        }
    }
}
