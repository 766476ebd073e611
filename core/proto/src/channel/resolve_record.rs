//! The record part of a closing channel (`resolve.rs`): fields 70–76 of a version-1 record,
//! written only with state Closing (11) or Closed (12), which builds before closes do not
//! read (they refuse the state byte), so every field is even: required to understand.
//!
//! | type | field |
//! |---|---|
//! | 70 | the close kind (a byte: 0 cooperative we asked, 1 cooperative the peer asked, 2 local force, 3 remote force, 4 remote future, 5 revoked, 6 unknown) |
//! | 72 | the transaction that spends (or will spend) the funding (consensus encoding) |
//! | 74 | its confirmation height (opt) |
//! | 76 | the tracked outputs: a `u16` count, then each (below) |
//!
//! A tracked output: txid (32), vout (`u32`), amount (`u64` sat), the claim (a byte: 0
//! `to_local` + commitment number `u64`, 1 `to_remote`, 2 penalty + number `u64`, 3 paid to
//! the wallet), then the state (a byte: 0 waiting; 1 sweep broadcast + feerate `u32` + height
//! `u32` + the sweep as a `u32`-length-prefixed consensus transaction; 2 confirmed + txid +
//! height `u32` + claimed `u64` sat; 3 uneconomical; 4 nothing to do). The failure reason
//! (42) holds the closing reason.

use bitcoin::consensus::encode::{deserialize, serialize};
use bitcoin::{OutPoint, Transaction};

use super::resolve::{Claim, OutputState, Tracked};
use super::{CloseKind, Initiator};
use crate::wire::codec::{Reader, WireWrite};
use crate::wire::{DecodeError, WireField};

fn invalid(field: &'static str, reason: &'static str) -> DecodeError {
    DecodeError::InvalidValue { field, reason }
}

/// Record 70.
#[derive(Debug)]
pub(super) enum CloseKindByte {}

impl WireField for CloseKindByte {
    type Value = CloseKind;
    fn write(value: &CloseKind, out: &mut Vec<u8>) {
        out.put_u8(match value {
            CloseKind::Cooperative {
                initiator: Initiator::Local,
            } => 0,
            CloseKind::Cooperative {
                initiator: Initiator::Remote,
            } => 1,
            CloseKind::LocalForce => 2,
            CloseKind::RemoteForce => 3,
            CloseKind::RemoteFuture => 4,
            CloseKind::Revoked => 5,
            CloseKind::Unknown => 6,
        });
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<CloseKind, DecodeError> {
        Ok(match r.read_u8(field)? {
            0 => CloseKind::Cooperative {
                initiator: Initiator::Local,
            },
            1 => CloseKind::Cooperative {
                initiator: Initiator::Remote,
            },
            2 => CloseKind::LocalForce,
            3 => CloseKind::RemoteForce,
            4 => CloseKind::RemoteFuture,
            5 => CloseKind::Revoked,
            6 => CloseKind::Unknown,
            _ => return Err(invalid(field, "unknown close kind")),
        })
    }
}

fn put_tx(tx: &Transaction, out: &mut Vec<u8>) {
    let bytes = serialize(tx);
    out.put_u32(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
    out.put_bytes(&bytes);
}

fn read_tx(r: &mut Reader<'_>, field: &'static str) -> Result<Transaction, DecodeError> {
    let len = r.read_u32(field)?;
    let len = usize::try_from(len).map_err(|_| invalid(field, "too long"))?;
    deserialize(r.read_bytes(len, field)?).map_err(|_| invalid(field, "not a transaction"))
}

/// Record 76.
#[derive(Debug)]
pub(super) enum TrackedList {}

impl WireField for TrackedList {
    type Value = Vec<Tracked>;
    fn write(value: &Vec<Tracked>, out: &mut Vec<u8>) {
        out.put_u16(u16::try_from(value.len()).unwrap_or(u16::MAX));
        for o in value {
            bitcoin::Txid::write(&o.outpoint.txid, out);
            out.put_u32(o.outpoint.vout);
            out.put_u64(o.amount_sat);
            match o.claim {
                Claim::ToLocal { number } => {
                    out.put_u8(0);
                    out.put_u64(number);
                }
                Claim::ToRemote => out.put_u8(1),
                Claim::Penalty { number } => {
                    out.put_u8(2);
                    out.put_u64(number);
                }
                Claim::Wallet => out.put_u8(3),
            }
            match &o.state {
                OutputState::Waiting => out.put_u8(0),
                OutputState::Broadcast {
                    tx,
                    feerate_per_kw,
                    height,
                } => {
                    out.put_u8(1);
                    out.put_u32(*feerate_per_kw);
                    out.put_u32(*height);
                    put_tx(tx, out);
                }
                OutputState::Confirmed {
                    txid,
                    height,
                    claimed_sat,
                } => {
                    out.put_u8(2);
                    bitcoin::Txid::write(txid, out);
                    out.put_u32(*height);
                    out.put_u64(*claimed_sat);
                }
                OutputState::Uneconomical => out.put_u8(3),
                OutputState::Nothing => out.put_u8(4),
            }
        }
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<Tracked>, DecodeError> {
        let n = r.read_u16(field)?;
        let mut out = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let txid = bitcoin::Txid::read(r, field)?;
            let vout = r.read_u32(field)?;
            let amount_sat = r.read_u64(field)?;
            let claim = match r.read_u8(field)? {
                0 => Claim::ToLocal {
                    number: r.read_u64(field)?,
                },
                1 => Claim::ToRemote,
                2 => Claim::Penalty {
                    number: r.read_u64(field)?,
                },
                3 => Claim::Wallet,
                _ => return Err(invalid(field, "unknown claim")),
            };
            let state = match r.read_u8(field)? {
                0 => OutputState::Waiting,
                1 => {
                    let feerate_per_kw = r.read_u32(field)?;
                    let height = r.read_u32(field)?;
                    OutputState::Broadcast {
                        tx: read_tx(r, field)?,
                        feerate_per_kw,
                        height,
                    }
                }
                2 => OutputState::Confirmed {
                    txid: bitcoin::Txid::read(r, field)?,
                    height: r.read_u32(field)?,
                    claimed_sat: r.read_u64(field)?,
                },
                3 => OutputState::Uneconomical,
                4 => OutputState::Nothing,
                _ => return Err(invalid(field, "unknown output state")),
            };
            out.push(Tracked {
                outpoint: OutPoint { txid, vout },
                amount_sat,
                claim,
                state,
            });
        }
        r.finish(field)?;
        Ok(out)
    }
}
