//! The forms a `shutdown` `scriptpubkey` may take.
//!
//! See [BOLT 2 "Closing Initiation: `shutdown`"](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#closing-initiation-shutdown):
//! P2WPKH, P2WSH, and witness versions 1 to 16 with a 2-40 byte program when
//! `option_shutdown_anysegwit` is negotiated; `OP_RETURN` only with `option_simple_close`, which
//! Tern does not speak. Legacy P2PKH and P2SH are no longer listed, but old nodes may send them
//! and the rationale says they "may be accepted": they are reported as their own forms so that
//! a caller accepts them from a peer (with a warning) and never chooses them itself.

use bitcoin::opcodes::all::{OP_CHECKSIG, OP_DUP, OP_EQUAL, OP_EQUALVERIFY, OP_HASH160};
use bitcoin::opcodes::all::{OP_PUSHBYTES_0, OP_PUSHNUM_1, OP_PUSHNUM_16, OP_RETURN};

/// An acceptable `shutdown` script, by form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownScript {
    /// `OP_0 <20 bytes>`: version 0 pay to witness pubkey hash.
    P2wpkh,
    /// `OP_0 <32 bytes>`: version 0 pay to witness script hash.
    P2wsh,
    /// `OP_1`..`OP_16 <2..=40 bytes>` (P2TR is version 1 with 32 bytes): only with
    /// `option_shutdown_anysegwit` negotiated.
    Witness {
        /// The witness version, 1 to 16.
        version: u8,
        /// The witness program's length, 2 to 40.
        program_len: u8,
    },
    /// Legacy `OP_DUP OP_HASH160 <20> OP_EQUALVERIFY OP_CHECKSIG`: not a BOLT 2 form any more;
    /// accept from a peer with a warning, never choose it.
    P2pkh,
    /// Legacy `OP_HASH160 <20> OP_EQUAL`: not a BOLT 2 form any more; accept from a peer with
    /// a warning, never choose it.
    P2sh,
}

impl ShutdownScript {
    /// Whether the form is one BOLT 2 lists (false for the legacy P2PKH and P2SH).
    pub fn is_bolt2_form(self) -> bool {
        !matches!(self, ShutdownScript::P2pkh | ShutdownScript::P2sh)
    }
}

/// Why a `shutdown` script is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShutdownScriptError {
    /// The script is empty.
    #[error("the shutdown script is empty")]
    Empty,
    /// A witness version 1 to 16 program while `option_shutdown_anysegwit` is not negotiated.
    #[error("witness version {version} needs option_shutdown_anysegwit (26/27) on both sides")]
    AnySegwitNotNegotiated {
        /// The witness version.
        version: u8,
    },
    /// A witness version 0 program that is neither 20 nor 32 bytes.
    #[error("a witness version 0 program must be 20 or 32 bytes, not {len}")]
    BadV0Program {
        /// The program's length.
        len: usize,
    },
    /// A witness version 1 to 16 program outside 2 to 40 bytes.
    #[error("a witness version {version} program must be 2 to 40 bytes, not {len}")]
    BadWitnessProgram {
        /// The witness version.
        version: u8,
        /// The program's length.
        len: usize,
    },
    /// An `OP_RETURN` output, allowed only with `option_simple_close`, which we do not speak.
    #[error("OP_RETURN shutdown scripts need option_simple_close, which is not supported")]
    OpReturn,
    /// Anything else.
    #[error("not a shutdown script form BOLT 2 allows")]
    Unknown,
}

/// Classifies a `shutdown` `scriptpubkey` (BOLT 2). `anysegwit` says whether
/// `option_shutdown_anysegwit` is negotiated, i.e. both sides' `init` set bit 26 or 27
/// ([`crate::wire::Features::supports`] on ours and theirs).
pub fn shutdown_script_form(
    script: &[u8],
    anysegwit: bool,
) -> Result<ShutdownScript, ShutdownScriptError> {
    let Some((&first, rest)) = script.split_first() else {
        return Err(ShutdownScriptError::Empty);
    };
    if first == OP_RETURN.to_u8() {
        return Err(ShutdownScriptError::OpReturn);
    }
    if is_p2pkh(script) {
        return Ok(ShutdownScript::P2pkh);
    }
    if is_p2sh(script) {
        return Ok(ShutdownScript::P2sh);
    }
    let version = if first == OP_PUSHBYTES_0.to_u8() {
        0
    } else if (OP_PUSHNUM_1.to_u8()..=OP_PUSHNUM_16.to_u8()).contains(&first) {
        first - OP_PUSHNUM_1.to_u8() + 1
    } else {
        return Err(ShutdownScriptError::Unknown);
    };
    // A single direct push (opcodes 1..=75 push that many bytes) of exactly the rest.
    let Some((&push, program)) = rest.split_first() else {
        return Err(ShutdownScriptError::Unknown);
    };
    if !(1..=75).contains(&push) || usize::from(push) != program.len() {
        return Err(ShutdownScriptError::Unknown);
    }
    let len = program.len();
    match (version, len) {
        (0, 20) => Ok(ShutdownScript::P2wpkh),
        (0, 32) => Ok(ShutdownScript::P2wsh),
        (0, len) => Err(ShutdownScriptError::BadV0Program { len }),
        (version, 2..=40) if anysegwit => Ok(ShutdownScript::Witness {
            version,
            program_len: push,
        }),
        (version, 2..=40) => Err(ShutdownScriptError::AnySegwitNotNegotiated { version }),
        (version, len) => Err(ShutdownScriptError::BadWitnessProgram { version, len }),
    }
}

fn is_p2pkh(script: &[u8]) -> bool {
    script.len() == 25
        && script[0] == OP_DUP.to_u8()
        && script[1] == OP_HASH160.to_u8()
        && script[2] == 20
        && script[23] == OP_EQUALVERIFY.to_u8()
        && script[24] == OP_CHECKSIG.to_u8()
}

fn is_p2sh(script: &[u8]) -> bool {
    script.len() == 23
        && script[0] == OP_HASH160.to_u8()
        && script[1] == 20
        && script[22] == OP_EQUAL.to_u8()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hex::FromHex;
    use bitcoin::{Address, ScriptBuf};

    fn hex(s: &str) -> Vec<u8> {
        Vec::<u8>::from_hex(s).expect("hex")
    }

    /// The scriptPubKey of a BIP-173/350 address.
    fn spk(address: &str) -> Vec<u8> {
        address
            .parse::<Address<_>>()
            .expect("address")
            .assume_checked()
            .script_pubkey()
            .to_bytes()
    }

    #[test]
    fn version_0_forms() {
        for anysegwit in [false, true] {
            // BIP-173/350 vectors.
            assert_eq!(
                shutdown_script_form(
                    &spk("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
                    anysegwit
                ),
                Ok(ShutdownScript::P2wpkh)
            );
            assert_eq!(
                shutdown_script_form(
                    &spk("bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3"),
                    anysegwit
                ),
                Ok(ShutdownScript::P2wsh)
            );
            // OP_0 with a 20- and a 32-byte push built by hand.
            let mut script = vec![0x00, 20];
            script.extend([7u8; 20]);
            assert_eq!(
                shutdown_script_form(&script, anysegwit),
                Ok(ShutdownScript::P2wpkh)
            );
            let mut script = vec![0x00, 32];
            script.extend([7u8; 32]);
            assert_eq!(
                shutdown_script_form(&script, anysegwit),
                Ok(ShutdownScript::P2wsh)
            );
            // Version 0 with another length.
            for len in [2usize, 19, 21, 31, 33, 40] {
                let mut script = vec![0x00, len as u8];
                script.extend(vec![7u8; len]);
                assert_eq!(
                    shutdown_script_form(&script, anysegwit),
                    Err(ShutdownScriptError::BadV0Program { len })
                );
            }
        }
    }

    #[test]
    fn witness_v1_to_v16_need_anysegwit() {
        // BIP-350 vectors: P2TR (v1, 32 bytes), v16 with 2 bytes, v2 with 16, v1 with 40.
        let vectors = [
            (
                "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
                1u8,
                32u8,
            ),
            ("BC1SW50QGDZ25J", 16, 2),
            ("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", 2, 16),
            (
                "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
                1,
                40,
            ),
        ];
        for (address, version, program_len) in vectors {
            let script = spk(address);
            assert_eq!(
                shutdown_script_form(&script, true),
                Ok(ShutdownScript::Witness {
                    version,
                    program_len
                }),
                "{address}"
            );
            assert_eq!(
                shutdown_script_form(&script, false),
                Err(ShutdownScriptError::AnySegwitNotNegotiated { version }),
                "{address}"
            );
        }
        // Every version 1..=16 at both ends of the length range.
        for version in 1u8..=16 {
            for len in [2usize, 40] {
                let mut script = vec![0x50 + version, len as u8];
                script.extend(vec![1u8; len]);
                assert_eq!(
                    shutdown_script_form(&script, true),
                    Ok(ShutdownScript::Witness {
                        version,
                        program_len: len as u8
                    })
                );
            }
            // A 1-byte and a 41-byte program are refused, with or without anysegwit.
            for len in [1usize, 41] {
                let mut script = vec![0x50 + version, len as u8];
                script.extend(vec![1u8; len]);
                for anysegwit in [false, true] {
                    assert_eq!(
                        shutdown_script_form(&script, anysegwit),
                        Err(ShutdownScriptError::BadWitnessProgram { version, len })
                    );
                }
            }
        }
        // The P2TR output of a key, built by the bitcoin crate.
        let secp = bitcoin::secp256k1::Secp256k1::new();
        let key = bitcoin::secp256k1::Keypair::from_seckey_slice(&secp, &[3u8; 32]).expect("key");
        let p2tr = ScriptBuf::new_p2tr(&secp, key.x_only_public_key().0, None);
        assert_eq!(
            shutdown_script_form(p2tr.as_bytes(), true),
            Ok(ShutdownScript::Witness {
                version: 1,
                program_len: 32
            })
        );
    }

    #[test]
    fn legacy_forms_are_reported_as_themselves() {
        let p2pkh = spk("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2");
        let p2sh = spk("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy");
        for anysegwit in [false, true] {
            let form = shutdown_script_form(&p2pkh, anysegwit).expect("p2pkh");
            assert_eq!(form, ShutdownScript::P2pkh);
            assert!(!form.is_bolt2_form());
            let form = shutdown_script_form(&p2sh, anysegwit).expect("p2sh");
            assert_eq!(form, ShutdownScript::P2sh);
            assert!(!form.is_bolt2_form());
        }
        assert!(ShutdownScript::P2wpkh.is_bolt2_form());
        assert!(ShutdownScript::Witness {
            version: 1,
            program_len: 32
        }
        .is_bolt2_form());
    }

    #[test]
    fn op_return_and_others_are_refused() {
        for anysegwit in [false, true] {
            // OP_RETURN forms of option_simple_close: 6..=75 direct, 76..=80 with PUSHDATA1.
            let mut direct = vec![0x6a, 6];
            direct.extend([0u8; 6]);
            let mut pushdata1 = vec![0x6a, 0x4c, 80];
            pushdata1.extend([0u8; 80]);
            for script in [direct, pushdata1, vec![0x6a]] {
                assert_eq!(
                    shutdown_script_form(&script, anysegwit),
                    Err(ShutdownScriptError::OpReturn)
                );
            }
            assert_eq!(
                shutdown_script_form(&[], anysegwit),
                Err(ShutdownScriptError::Empty)
            );
            let refused = [
                // A bare public key (P2PK).
                hex("210279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798ac"),
                // OP_0 alone, a push longer than the rest, a trailing byte.
                hex("00"),
                hex("0014aabb"),
                hex("0002aabbcc"),
                // OP_1 with PUSHDATA1 of 32 bytes (not a direct push).
                {
                    let mut s = vec![0x51, 0x4c, 32];
                    s.extend([1u8; 32]);
                    s
                },
                // OP_1NEGATE and a non-push first opcode.
                hex("4f0401020304"),
                hex("ac"),
                // P2PKH with the wrong final opcode.
                hex("76a914000000000000000000000000000000000000000088ad"),
            ];
            for script in refused {
                assert_eq!(
                    shutdown_script_form(&script, anysegwit),
                    Err(ShutdownScriptError::Unknown),
                    "{script:02x?}"
                );
            }
        }
    }
}
