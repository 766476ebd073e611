//! The node's own tokio runtime and the two ways a call reaches it.
//!
//! uniffi polls an exported future on the foreign language's executor (Kotlin's dispatcher,
//! Swift's cooperative pool, Python's event loop), where no tokio runtime is entered. Rather
//! than uniffi's `async_runtime = "tokio"` (one global current-thread runtime for every
//! future of the process), each [`crate::Node`] owns a multi-thread runtime of
//! `runtime_threads` workers, and every call goes through it:
//! - [`Rt::spawned`] runs the call as a task of that runtime and awaits its `JoinHandle`: it
//!   completes even if the caller gives up (a cancelled coroutine), so a write, an open or a
//!   stop is never cut in half by the app;
//! - [`Rt::entered`] polls the call on the caller's executor with the runtime entered at each
//!   poll: dropping it (a cancelled Kotlin coroutine) cancels it. Only for waits, which own
//!   nothing.
//!
//! The runtime is never dropped where that could panic (inside an async context: Bitkit's top
//! crash with ldk-node): [`Rt::dispose`] stops the node on a thread of its own, then shuts the
//! runtime down in the background.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::runtime::{Handle, Runtime};

use crate::error::TernError;

/// A node's runtime.
pub(crate) struct Rt {
    handle: Handle,
    /// Taken by [`Rt::dispose`].
    runtime: Arc<Mutex<Option<Runtime>>>,
}

impl Rt {
    /// A runtime of `threads` workers, named `tern-rt`.
    pub(crate) fn new(threads: u32) -> Result<Rt, TernError> {
        if threads == 0 {
            return Err(TernError::invalid("runtime_threads", "at least 1"));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads as usize)
            .thread_name("tern-rt")
            .enable_all()
            .build()
            .map_err(|e| TernError::Internal(format!("cannot start the runtime: {e}")))?;
        Ok(Rt {
            handle: runtime.handle().clone(),
            runtime: Arc::new(Mutex::new(Some(runtime))),
        })
    }

    /// The runtime's handle.
    #[cfg(test)]
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `fut` as a task of the runtime; the result once it completes (even if the caller
    /// stops awaiting it).
    pub(crate) async fn spawned<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, TernError> {
        self.handle
            .spawn(fut)
            .await
            .map_err(|e| TernError::Internal(format!("the call's task failed: {e}")))
    }

    /// Runs `fut` as a task of the runtime and returns its handle.
    pub(crate) fn spawn<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        self.handle.spawn(fut)
    }

    /// Polls `fut` where it is awaited, inside the runtime's context; dropping it cancels it.
    pub(crate) fn entered<F: Future>(&self, fut: F) -> Entered<F> {
        Entered {
            handle: self.handle.clone(),
            fut: Box::pin(fut),
        }
    }

    /// Runs `stop` to completion on a thread of its own, then shuts the runtime down without
    /// waiting for what is left (blocking tasks finish on their own). Safe from any thread,
    /// inside or outside an async context; a second call does nothing.
    pub(crate) fn dispose(&self, stop: impl Future<Output = ()> + Send + 'static) {
        let slot = self.runtime.clone();
        let Some(runtime) = slot.lock().map(|mut r| r.take()).unwrap_or(None) else {
            return;
        };
        let keep = Arc::new(Mutex::new(Some(runtime)));
        let mine = keep.clone();
        let spawned = std::thread::Builder::new()
            .name("tern-stop".into())
            .spawn(move || {
                if let Some(runtime) = mine.lock().map(|mut r| r.take()).unwrap_or(None) {
                    runtime.block_on(stop);
                    runtime.shutdown_background();
                }
            });
        if spawned.is_err() {
            // No thread to be had: shut down at once (never panics, in any context).
            if let Some(runtime) = keep.lock().map(|mut r| r.take()).unwrap_or(None) {
                runtime.shutdown_background();
            }
        }
    }
}

/// A future polled inside a runtime's context ([`Rt::entered`]).
pub(crate) struct Entered<F> {
    handle: Handle,
    fut: Pin<Box<F>>,
}

impl<F: Future> Future for Entered<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let _entered = this.handle.enter();
        this.fut.as_mut().poll(cx)
    }
}
