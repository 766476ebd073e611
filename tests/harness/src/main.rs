//! `tern`: the desktop harness (devnet, daemon, CLI, demo).

fn main() {
    eprintln!("tern: not implemented yet");
    std::process::exit(2);
}
