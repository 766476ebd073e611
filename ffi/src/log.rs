//! Where the core's `tracing` events go, chosen once per process by the app:
//! - the platform's log by default: logcat on Android (tracing-android), the unified log on
//!   Apple (tracing-oslog), standard error elsewhere — no app code needed;
//! - or a file (desktop);
//! - or the app's own logger ([`LogSink`]), fed from a bounded queue on a thread of its own, so
//!   foreign code never runs on the node's runtime threads and a slow logger drops records
//!   (counted) instead of slowing the node.
//!
//! The core never logs a secret (seeds and keys have redacted `Debug`; no log line prints a
//! private key or a preimage).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};

use tracing::level_filters::LevelFilter;
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use crate::error::TernError;

/// How much to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl From<LogLevel> for LevelFilter {
    fn from(l: LogLevel) -> Self {
        match l {
            LogLevel::Error => LevelFilter::ERROR,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Trace => LevelFilter::TRACE,
        }
    }
}

fn level_of(l: &tracing::Level) -> LogLevel {
    match *l {
        tracing::Level::ERROR => LogLevel::Error,
        tracing::Level::WARN => LogLevel::Warn,
        tracing::Level::INFO => LogLevel::Info,
        tracing::Level::DEBUG => LogLevel::Debug,
        tracing::Level::TRACE => LogLevel::Trace,
    }
}

/// One log record handed to a [`LogSink`].
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LogRecord {
    pub level: LogLevel,
    /// The module that logged it, e.g. `tern_core::node::peer`.
    pub target: String,
    /// The message and its fields, as text.
    pub message: String,
}

/// The app's own logger. Called on a dedicated thread, never on the node's; an error it returns
/// (or an exception it throws) is ignored.
#[uniffi::export(with_foreign)]
pub trait LogSink: Send + Sync {
    fn log(&self, record: LogRecord) -> Result<(), TernError>;
}

static INSTALLED: OnceLock<&'static str> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

fn install(
    subscriber: impl Subscriber + Send + Sync + 'static,
    what: &'static str,
) -> Result<(), TernError> {
    if let Some(before) = INSTALLED.get() {
        return Err(TernError::InvalidInput(format!(
            "logging is already set up ({before}): once per process"
        )));
    }
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| TernError::InvalidInput(format!("logging is already set up: {e}")))?;
    let _ = INSTALLED.set(what);
    Ok(())
}

/// Logs at `level` and above to the platform's log (logcat, the unified log, standard error),
/// or to `file` if given (appended). Once per process.
#[uniffi::export]
pub fn init_logging(level: LogLevel, file: Option<String>) -> Result<(), TernError> {
    let filter = LevelFilter::from(level);
    if let Some(path) = file {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| TernError::invalid("log file", format!("{path}: {e}")))?;
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(std::sync::Mutex::new(f))
            .with_ansi(false)
            .with_filter(filter);
        return install(tracing_subscriber::registry().with(layer), "a file");
    }
    platform(filter)
}

#[cfg(target_os = "android")]
fn platform(filter: LevelFilter) -> Result<(), TernError> {
    let layer = tracing_android::layer("tern")
        .map_err(|e| TernError::Internal(format!("logcat: {e}")))?
        .with_filter(filter);
    install(tracing_subscriber::registry().with(layer), "logcat")
}

#[cfg(any(target_os = "ios", target_os = "macos"))]
fn platform(filter: LevelFilter) -> Result<(), TernError> {
    let layer =
        tracing_oslog::OsLogger::new("io.github.ternln.tern", "default").with_filter(filter);
    install(
        tracing_subscriber::registry().with(layer),
        "the unified log",
    )
}

#[cfg(not(any(target_os = "android", target_os = "ios", target_os = "macos")))]
fn platform(filter: LevelFilter) -> Result<(), TernError> {
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_filter(filter);
    install(tracing_subscriber::registry().with(layer), "standard error")
}

/// Logs at `level` and above to the app's `sink` (see [`LogSink`]); up to 1,024 records wait
/// for it, later ones are dropped ([`dropped_log_records`]). Once per process.
#[uniffi::export]
pub fn init_logging_with_sink(level: LogLevel, sink: Arc<dyn LogSink>) -> Result<(), TernError> {
    let (tx, rx) = sync_channel::<LogRecord>(1024);
    std::thread::Builder::new()
        .name("tern-log".into())
        .spawn(move || {
            for record in rx {
                let _ = sink.log(record);
            }
        })
        .map_err(|e| TernError::Internal(format!("cannot start the log thread: {e}")))?;
    let layer = SinkLayer { tx }.with_filter(LevelFilter::from(level));
    install(
        tracing_subscriber::registry().with(layer),
        "the app's logger",
    )
}

/// Records dropped because the app's logger fell behind.
#[uniffi::export]
pub fn dropped_log_records() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

struct SinkLayer {
    tx: SyncSender<LogRecord>,
}

impl<S: Subscriber> Layer<S> for SinkLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut text = Text(String::new());
        event.record(&mut text);
        let record = LogRecord {
            level: level_of(event.metadata().level()),
            target: event.metadata().target().to_string(),
            message: text.0,
        };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(record)
        {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An event's message and fields as one line.
struct Text(String);

impl tracing::field::Visit for Text {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let sep = if self.0.is_empty() { "" } else { " " };
            let _ = write!(self.0, "{sep}{}={value:?}", field.name());
        }
    }
}
