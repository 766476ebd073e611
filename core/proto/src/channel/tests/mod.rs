//! Tests of the channel state machine: an in-memory two-party harness that drives real opens
//! (real keys and signatures), with the durability checker and a record round-trip (rebuild
//! and continue identically) after every step.

mod anchors;
mod announce;
mod chain;
mod checker;
mod close;
mod commit;
mod golden;
mod harness;
mod ldk;
mod ldk_close;
mod ldk_update;
mod open;
mod record;
mod reestablish;
mod resolve;
mod resolve_cpfp;
mod resolve_more;
mod restart;
mod spent;
mod sweep_rbf;
mod timeout;
mod unfunded;
mod update;
mod validation;
