//! Tests of the channel state machine.
