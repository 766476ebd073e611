//! Every test binary that includes this module logs at TRACE, every target, to a file of its
//! own: `target/test-logs/<binary>-<pid>.log` (or `$TERN_TEST_LOG_DIR`). Installed before
//! `main` (an `.init_array` entry on Linux), so no test has to ask for it. The log-secret
//! check (`core/tests/log_secrets.rs`, run by `scripts/test-secrets.sh` after the suite)
//! greps these files for the test seeds' secrets; without TRACE everywhere it could not fail.
//! Files, not stdout: the cost is one buffered write per line.
//!
//! Daemons a test spawns inherit `TERN_TEST_LOG_DIR` (set here) and log to that dir too.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

/// The environment variable naming the dir of the test logs.
pub const LOG_DIR_ENV: &str = "TERN_TEST_LOG_DIR";

/// The test logs' dir: `$TERN_TEST_LOG_DIR`, else `test-logs` in the target dir (the test
/// binary is `<target>/<profile>/deps/<name>`).
pub fn log_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(LOG_DIR_ENV) {
        return Some(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.parent()?.join("test-logs"))
}

/// A line writer that flushes each event (a killed or aborted test keeps its lines).
struct LineFile(Mutex<std::io::BufWriter<std::fs::File>>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LineFile {
    type Writer = LineGuard<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        LineGuard(self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

struct LineGuard<'a>(std::sync::MutexGuard<'a, std::io::BufWriter<std::fs::File>>);

impl Write for LineGuard<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl Drop for LineGuard<'_> {
    fn drop(&mut self) {
        let _ = self.0.flush();
    }
}

/// Installs the TRACE file subscriber as the global default (once; a failure to create the
/// file or an already installed subscriber leaves things as they are: never panics).
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Some(dir) = log_dir() else { return };
        if std::fs::create_dir_all(&dir).is_err() {
            return;
        }
        let name = std::env::current_exe()
            .ok()
            .and_then(|e| e.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "test".into());
        let path = dir.join(format!("{name}-{}.log", std::process::id()));
        let Ok(file) = std::fs::File::create(&path) else {
            return;
        };
        // Children (a spawned `tern daemon`) log to the same dir.
        std::env::set_var(LOG_DIR_ENV, &dir);
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(LineFile(Mutex::new(std::io::BufWriter::new(file))))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// Runs [`install`] before `main`, in every test binary with this module (what the `ctor`
/// crate does, without the dependency).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
#[used]
#[link_section = ".init_array"]
static INSTALL_BEFORE_MAIN: extern "C" fn() = {
    extern "C" fn before_main() {
        // A panic must not unwind out of an `extern "C"` function.
        let _ = std::panic::catch_unwind(install);
    }
    before_main
};
