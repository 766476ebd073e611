//! Driving `tern daemon` child processes: spawn, wait until they answer, call, SIGKILL,
//! restart on the same data dir. Shared by `tern demo` and the process-level tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::control::{self, CallError, Request};

/// How long a control call may take (an `open` waits for the connection).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A `tern daemon` child process.
#[derive(Debug)]
pub struct DaemonProc {
    /// A name for messages ("phone", "lsp").
    pub name: String,
    /// Its data dir.
    pub data_dir: PathBuf,
    bin: PathBuf,
    esplora: String,
    child: Option<Child>,
    starts: u32,
}

impl DaemonProc {
    /// A daemon named `name` on `data_dir`, not yet running.
    pub fn new(bin: &Path, name: &str, data_dir: &Path, esplora: &str) -> Self {
        DaemonProc {
            name: name.to_string(),
            data_dir: data_dir.to_path_buf(),
            bin: bin.to_path_buf(),
            esplora: esplora.to_string(),
            child: None,
            starts: 0,
        }
    }

    /// Starts the process with `extra` arguments (`--listen`, `--dev-*`), waits until it
    /// answers `info`, and returns that answer. Its stderr goes to `D/stderr.<n>.log`.
    pub fn start(&mut self, extra: &[&str], timeout: Duration) -> Result<Value, String> {
        if self.child.is_some() {
            return Err(format!("{} is already running", self.name));
        }
        std::fs::create_dir_all(&self.data_dir)
            .map_err(|e| format!("{}: mkdir {}: {e}", self.name, self.data_dir.display()))?;
        self.starts += 1;
        let err_path = self.data_dir.join(format!("stderr.{}.log", self.starts));
        let err_file = std::fs::File::create(&err_path)
            .map_err(|e| format!("{}: {}: {e}", self.name, err_path.display()))?;
        let child = Command::new(&self.bin)
            .arg("daemon")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--network", "regtest", "--esplora", &self.esplora])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(err_file))
            .spawn()
            .map_err(|e| format!("{}: cannot run {}: {e}", self.name, self.bin.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                let log = std::fs::read_to_string(&err_path).unwrap_or_default();
                return Err(format!(
                    "{} exited at start ({status}): {}",
                    self.name,
                    tail(&log, 2000)
                ));
            }
            match self.call(&Request::Info) {
                Ok(info) => return Ok(info),
                Err(CallError::NoDaemon(_)) => {}
                Err(e) => return Err(format!("{}: info: {e}", self.name)),
            }
            if Instant::now() >= deadline {
                return Err(format!("{} did not answer within {timeout:?}", self.name));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is running (not exited, not killed).
    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.try_wait().is_none()
    }

    fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Its pid, while started.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// One control call.
    pub fn call(&self, request: &Request) -> Result<Value, CallError> {
        control::call(&self.data_dir, request, CALL_TIMEOUT)
    }

    /// One control call whose failure is a message naming the daemon.
    pub fn must(&self, request: &Request) -> Result<Value, String> {
        self.call(request)
            .map_err(|e| format!("{}: {request:?}: {e}", self.name))
    }

    /// SIGKILLs the process and reaps it (no-op when not running).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // std's kill is SIGKILL on Unix.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asks the daemon to stop and waits for the process to end (SIGKILL after `timeout`).
    pub fn stop(&mut self, timeout: Duration) {
        if self.child.is_none() {
            return;
        }
        let _ = self.call(&Request::Stop);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.try_wait().is_some() {
                self.child = None;
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }

    /// Waits until `info` reports `"halted": true`.
    pub fn wait_halted(&mut self, timeout: Duration) -> Result<(), String> {
        self.wait_for(timeout, "halted", |d| {
            Ok(d.must(&Request::Info)?["halted"] == Value::Bool(true))
        })
    }

    /// Polls `check` every 50 ms until it returns true, fails, or `timeout` passes.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut(&mut Self) -> Result<bool, String>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.child.is_some() && self.try_wait().is_some() {
                return Err(format!("{} exited while waiting for {what}", self.name));
            }
            if check(self)? {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("{}: not {what} within {timeout:?}", self.name));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The daemon's channels.
    pub fn channels(&self) -> Result<Vec<Value>, String> {
        match self.must(&Request::Channels)? {
            Value::Array(a) => Ok(a),
            other => Err(format!("{}: channels: not a list: {other}", self.name)),
        }
    }

    /// Pending events, marked handled.
    pub fn take_events(&self) -> Result<Vec<Value>, String> {
        match self.must(&Request::Events { ack: true })? {
            Value::Array(a) => Ok(a),
            other => Err(format!("{}: events: not a list: {other}", self.name)),
        }
    }

    /// Fails with the node's persist-before-act violations (its self-audit), if any.
    pub fn check_durability(&self) -> Result<u64, String> {
        let info = self.must(&Request::Info)?;
        match info["dev_durability_violations"].as_array() {
            Some(v) if v.is_empty() => Ok(u64_of(&info, "dev_audited_actions")),
            Some(v) => Err(format!("{}: durability violations: {v:?}", self.name)),
            None => Err(format!("{}: info has no self-audit: {info}", self.name)),
        }
    }

    /// The last lines of its log.
    pub fn log_tail(&self, chars: usize) -> String {
        let log = std::fs::read_to_string(self.data_dir.join(crate::daemon::LOG_FILE))
            .unwrap_or_default();
        tail(&log, chars).to_string()
    }
}

impl Drop for DaemonProc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn tail(s: &str, chars: usize) -> &str {
    let mut start = s.len().saturating_sub(chars);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// A u64 field of a JSON object (0 when missing, so that sums show the gap).
pub fn u64_of(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

/// A string field of a JSON object ("" when missing).
pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// A fresh temp dir for a run.
pub fn temp_dir(prefix: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()))
}

/// xorshift64*: enough to spread the kill moments of the process-level kill tests,
/// reproducible from a seed.
#[derive(Debug, Clone)]
pub struct KillRng(u64);

impl KillRng {
    /// The generator of run `run` under `seed` (splitmix64 of both, never zero).
    pub fn new(seed: u64, run: u64) -> Self {
        let mut z = seed.wrapping_add((run + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        KillRng((z ^ (z >> 31)) | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A BOLT 3 commitment: its locktime's top byte is 0x20 and its input's sequence's 0x80 (a
/// closing transaction has neither).
pub fn is_commitment(tx: &bitcoin::Transaction) -> bool {
    tx.lock_time.to_consensus_u32() >> 24 == 0x20
        && tx.input.first().is_some_and(|i| i.sequence.0 >> 24 == 0x80)
}

/// The kill tests' seed: `TERN_KILL_SEED`, else the clock.
pub fn kill_seed() -> u64 {
    std::env::var("TERN_KILL_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        })
}

/// The kill tests' run count: `TERN_KILL_RUNS`, else `default`.
pub fn kill_runs(default: usize) -> usize {
    std::env::var("TERN_KILL_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Runs `one(run)` for each run of `0..runs`, `parallel` at a time on scoped threads (the
/// seeded kill tests' loop); returns what each returned, in the order they finished.
pub fn run_parallel<R: Send>(
    runs: usize,
    parallel: usize,
    one: impl Fn(usize) -> R + Sync,
) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let reports = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..parallel {
            s.spawn(|| loop {
                let run = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if run >= runs {
                    return;
                }
                let report = one(run);
                reports
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(report);
            });
        }
    });
    reports.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// Fails a seeded kill test with every broken run's `details`, naming the seed to replay
/// and where the broken runs' data dirs are kept.
pub fn fail_on_broken(details: &[String], runs: usize, seed: u64, base: &Path) {
    if details.is_empty() {
        return;
    }
    panic!(
        "{} of {runs} runs broke (seed {seed}: replay with TERN_KILL_SEED={seed}; data under \
         {}):\n{}",
        details.len(),
        base.display(),
        details.join("\n")
    );
}
