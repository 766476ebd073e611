//! Tern's desktop harness: the `tern` binary's pieces (daemon, control protocol, CLI, demo).
