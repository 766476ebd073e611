//! The check behind "nothing that fsyncs runs on an async thread" can fail: a guarded store
//! committing on a tokio worker is counted, the same store committing on a plain thread is
//! not. (Own test binary: the counter is per process.) Needs the `dev-disconnect` feature.
#![cfg(feature = "dev-disconnect")]

// This binary's TRACE log file, for the log-secret check (see common/trace.rs).
#[path = "common/trace.rs"]
mod trace;

use tern_core::store::{dev_commits_on_async_threads, Store};

#[tokio::test]
async fn a_guarded_commit_on_a_tokio_thread_is_counted() {
    let mut store = Store::open_in_memory().expect("store");
    store.put_meta("unguarded", b"1").expect("write");
    assert_eq!(
        dev_commits_on_async_threads(),
        0,
        "unguarded stores are not counted"
    );
    store.guard_async_commits();
    let mut store = std::thread::spawn(move || {
        store.put_meta("plain thread", b"1").expect("write");
        store
    })
    .join()
    .expect("thread");
    assert_eq!(dev_commits_on_async_threads(), 0, "a plain thread is fine");
    store.put_meta("tokio worker", b"1").expect("write");
    assert_eq!(
        dev_commits_on_async_threads(),
        1,
        "a commit on the runtime is counted"
    );
}
