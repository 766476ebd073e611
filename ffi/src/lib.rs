//! Thin uniffi layer over `tern-core`.
//!
//! Only scaffolding for now: the async `Node` API is exported here with uniffi proc-macros once
//! the node driver exists. Generated Kotlin and Swift bindings are build outputs, never committed.

uniffi::setup_scaffolding!("tern");

/// The version of the Tern library, so that bindings can check what they loaded.
#[uniffi::export]
pub fn tern_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_is_the_crate_version() {
        assert_eq!(super::tern_version(), env!("CARGO_PKG_VERSION"));
    }
}
