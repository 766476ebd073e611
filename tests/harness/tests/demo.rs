//! `tern demo` as a process: the devnet, two daemons, three SIGKILLs during an open, and the
//! channel ready with every satoshi accounted for. Exit 0 or the test fails with its output.

// This binary's TRACE log file, for the log-secret check (core/tests/common/trace.rs).
#[path = "../../../core/tests/common/trace.rs"]
mod trace;

use std::process::Command;

#[test]
fn tern_demo_exits_zero() {
    let out = Command::new(env!("CARGO_BIN_EXE_tern"))
        .arg("demo")
        .output()
        .expect("run tern demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tern demo failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    for step in [
        "(a) phone SIGKILLed",
        "(b) phone SIGKILLed",
        "(c) phone SIGKILLed",
    ] {
        assert!(stdout.contains(step), "no {step:?} in:\n{stdout}");
    }
    assert!(stdout.contains("demo OK"), "{stdout}");
}
