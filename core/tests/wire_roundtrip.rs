//! Property tests: every wire message round-trips encode → decode → encode, and arbitrary
//! bytes never make the decoder panic.

// This binary's TRACE log file, for the log-secret check (see common/trace.rs).
#[path = "common/trace.rs"]
mod trace;

use std::sync::LazyLock;

use bitcoin::constants::ChainHash;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey, SignOnly};
use bitcoin::Txid;
use proptest::collection::vec;
use proptest::prelude::*;
use tern_core::proto::wire::*;

static SECP: LazyLock<Secp256k1<SignOnly>> = LazyLock::new(Secp256k1::signing_only);

fn point() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_filter_map("valid secret", |b| {
        SecretKey::from_slice(&b)
            .ok()
            .map(|sk| PublicKey::from_secret_key(&SECP, &sk))
    })
}

fn sig() -> impl Strategy<Value = Signature> {
    any::<[u8; 64]>().prop_filter_map("valid signature", |b| Signature::from_compact(&b).ok())
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

fn channel_id() -> impl Strategy<Value = ChannelId> {
    any::<[u8; 32]>().prop_map(ChannelId)
}

fn chain() -> impl Strategy<Value = ChainHash> {
    any::<[u8; 32]>().prop_map(ChainHash::from)
}

fn txid() -> impl Strategy<Value = Txid> {
    any::<[u8; 32]>().prop_map(Txid::from_byte_array)
}

fn features() -> impl Strategy<Value = Features> {
    vec(0usize..300, 0..12).prop_map(|bits| {
        let mut f = Features::empty();
        for b in bits {
            f.set_bit(b);
        }
        f
    })
}

fn channel_keys() -> impl Strategy<Value = ChannelKeys> {
    (point(), point(), point(), point(), point(), point()).prop_map(|(a, b, c, d, e, f)| {
        ChannelKeys {
            funding_pubkey: a,
            revocation_basepoint: b,
            payment_basepoint: c,
            delayed_payment_basepoint: d,
            htlc_basepoint: e,
            first_per_commitment_point: f,
        }
    })
}

fn open_tlvs() -> impl Strategy<Value = (Option<Vec<u8>>, Option<ChannelType>)> {
    (
        proptest::option::of(bytes(40)),
        proptest::option::of(features().prop_map(ChannelType)),
    )
}

fn init() -> impl Strategy<Value = Message> {
    (
        features(),
        proptest::option::of(vec(chain(), 0..4)),
        proptest::option::of(bytes(20)),
    )
        .prop_map(|(features, networks, remote_addr)| {
            Init {
                features,
                networks,
                remote_addr,
            }
            .into()
        })
}

fn setup() -> impl Strategy<Value = Message> {
    prop_oneof![
        init(),
        (channel_id(), bytes(200))
            .prop_map(|(channel_id, data)| ErrorMessage { channel_id, data }.into()),
        (channel_id(), bytes(200))
            .prop_map(|(channel_id, data)| Warning { channel_id, data }.into()),
        (any::<u16>(), bytes(100)).prop_map(|(num_pong_bytes, ignored)| Ping {
            num_pong_bytes,
            ignored
        }
        .into()),
        bytes(100).prop_map(|ignored| Pong { ignored }.into()),
    ]
}

fn open_channel() -> impl Strategy<Value = Message> {
    (
        (
            chain(),
            channel_id(),
            any::<[u64; 6]>(),
            any::<u32>(),
            any::<[u16; 2]>(),
        ),
        (channel_keys(), any::<u8>(), open_tlvs()),
    )
        .prop_map(
            |((chain_hash, tmp, n, feerate, d), (keys, flags, (upfront, ct)))| {
                OpenChannel {
                    chain_hash,
                    temporary_channel_id: tmp,
                    funding_satoshis: n[0],
                    push_msat: n[1],
                    dust_limit_satoshis: n[2],
                    max_htlc_value_in_flight_msat: n[3],
                    channel_reserve_satoshis: n[4],
                    htlc_minimum_msat: n[5],
                    feerate_per_kw: feerate,
                    to_self_delay: d[0],
                    max_accepted_htlcs: d[1],
                    keys,
                    channel_flags: flags,
                    upfront_shutdown_script: upfront,
                    channel_type: ct,
                }
                .into()
            },
        )
}

fn accept_channel() -> impl Strategy<Value = Message> {
    (
        channel_id(),
        any::<[u64; 4]>(),
        any::<u32>(),
        any::<[u16; 2]>(),
        channel_keys(),
        open_tlvs(),
    )
        .prop_map(|(tmp, n, depth, d, keys, (upfront, ct))| {
            AcceptChannel {
                temporary_channel_id: tmp,
                dust_limit_satoshis: n[0],
                max_htlc_value_in_flight_msat: n[1],
                channel_reserve_satoshis: n[2],
                htlc_minimum_msat: n[3],
                minimum_depth: depth,
                to_self_delay: d[0],
                max_accepted_htlcs: d[1],
                keys,
                upfront_shutdown_script: upfront,
                channel_type: ct,
            }
            .into()
        })
}

fn establish() -> impl Strategy<Value = Message> {
    prop_oneof![
        open_channel(),
        accept_channel(),
        (channel_id(), txid(), any::<u16>(), sig()).prop_map(|(t, txid, idx, signature)| {
            FundingCreated {
                temporary_channel_id: t,
                funding_txid: txid,
                funding_output_index: idx,
                signature,
            }
            .into()
        }),
        (channel_id(), sig()).prop_map(|(channel_id, signature)| FundingSigned {
            channel_id,
            signature
        }
        .into()),
        (channel_id(), point(), proptest::option::of(any::<u64>())).prop_map(|(c, p, alias)| {
            ChannelReady {
                channel_id: c,
                second_per_commitment_point: p,
                short_channel_id_alias: alias.map(ShortChannelId),
            }
            .into()
        }),
    ]
}

fn funding_retransmit() -> impl Strategy<Value = Option<FundingRetransmit>> {
    proptest::option::of((txid(), any::<u8>()).prop_map(|(txid, retransmit_flags)| {
        FundingRetransmit {
            txid,
            retransmit_flags,
        }
    }))
}

fn other() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            channel_id(),
            any::<[u64; 2]>(),
            any::<[u8; 32]>(),
            point(),
            funding_retransmit(),
            funding_retransmit()
        )
            .prop_map(|(c, n, secret, p, next, locked)| ChannelReestablish {
                channel_id: c,
                next_commitment_number: n[0],
                next_revocation_number: n[1],
                your_last_per_commitment_secret: secret,
                my_current_per_commitment_point: p,
                next_funding: next,
                my_current_funding_locked: locked,
            }
            .into()),
        (channel_id(), bytes(60)).prop_map(|(channel_id, scriptpubkey)| Shutdown {
            channel_id,
            scriptpubkey
        }
        .into()),
        (
            channel_id(),
            any::<u64>(),
            sig(),
            proptest::option::of(any::<[u64; 2]>())
        )
            .prop_map(|(c, fee, signature, range)| ClosingSigned {
                channel_id: c,
                fee_satoshis: fee,
                signature,
                fee_range: range.map(|r| FeeRange {
                    min_fee_satoshis: r[0],
                    max_fee_satoshis: r[1],
                }),
            }
            .into()),
        (channel_id(), any::<u64>(), sig(), sig()).prop_map(|(c, scid, a, b)| {
            AnnouncementSignatures {
                channel_id: c,
                short_channel_id: ShortChannelId(scid),
                node_signature: a,
                bitcoin_signature: b,
            }
            .into()
        }),
        (
            (sig(), sig(), sig(), sig()),
            (bytes(10), chain(), any::<u64>()),
            (point(), point(), point(), point()),
            bytes(30)
        )
            .prop_map(|(s, (f, chain_hash, scid), k, excess_data)| {
                ChannelAnnouncement {
                    node_signature_1: s.0,
                    node_signature_2: s.1,
                    bitcoin_signature_1: s.2,
                    bitcoin_signature_2: s.3,
                    features: f,
                    chain_hash,
                    short_channel_id: ShortChannelId(scid),
                    node_id_1: k.0,
                    node_id_2: k.1,
                    bitcoin_key_1: k.2,
                    bitcoin_key_2: k.3,
                    excess_data,
                }
                .into()
            }),
        (
            sig(),
            (
                chain(),
                any::<u64>(),
                any::<u32>(),
                any::<[u8; 2]>(),
                any::<u16>()
            ),
            (any::<u64>(), any::<u32>(), any::<u32>(), any::<u64>()),
            bytes(30)
        )
            .prop_map(
                |(
                    signature,
                    (chain_hash, scid, timestamp, flags, cltv),
                    (min, base, ppm, max),
                    excess_data,
                )| {
                    ChannelUpdate {
                        signature,
                        chain_hash,
                        short_channel_id: ShortChannelId(scid),
                        timestamp,
                        message_flags: flags[0],
                        channel_flags: flags[1],
                        cltv_expiry_delta: cltv,
                        htlc_minimum_msat: min,
                        fee_base_msat: base,
                        fee_proportional_millionths: ppm,
                        htlc_maximum_msat: max,
                        excess_data,
                    }
                    .into()
                }
            ),
        (
            any::<u16>()
                .prop_map(|t| t | 1)
                .prop_filter("not a known type", |t| {
                    Message::decode(&t.to_be_bytes())
                        .is_ok_and(|m| matches!(m, Message::Unknown { .. }))
                }),
            bytes(50)
        )
            .prop_map(|(msg_type, payload)| Message::Unknown { msg_type, payload }),
    ]
}

fn any_message() -> impl Strategy<Value = Message> {
    prop_oneof![setup(), establish(), other()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_message_round_trips(msg in any_message()) {
        let encoded = msg.encode();
        let decoded = Message::decode(&encoded)
            .map_err(|e| TestCaseError::fail(format!("{} failed to decode: {e}", msg.name())))?;
        prop_assert_eq!(&decoded, &msg);
        prop_assert_eq!(decoded.encode(), encoded);
    }

    #[test]
    fn truncated_or_extended_messages_never_panic(msg in any_message(), cut in any::<prop::sample::Index>(), tail in bytes(40)) {
        let encoded = msg.encode();
        let n = cut.index(encoded.len() + 1);
        let _ = Message::decode(&encoded[..n]);
        let _ = Message::decode(&[encoded.as_slice(), tail.as_slice()].concat());
    }

    #[test]
    fn random_payloads_of_known_types_never_panic(
        t in prop::sample::select(vec![1u16, 16, 17, 18, 19, 32, 33, 34, 35, 36, 38, 39, 136, 256, 258, 259]),
        payload in bytes(600),
    ) {
        let mut bytes = t.to_be_bytes().to_vec();
        bytes.extend_from_slice(&payload);
        let _ = Message::decode(&bytes);
    }
}

#[test]
fn cutting_a_fixed_field_is_a_typed_error() {
    let ready: Message = ChannelReady {
        channel_id: ChannelId([7; 32]),
        second_per_commitment_point: PublicKey::from_secret_key(
            &SECP,
            &SecretKey::from_slice(&[1; 32]).expect("valid key"),
        ),
        short_channel_id_alias: None,
    }
    .into();
    let encoded = ready.encode();
    assert!(matches!(
        Message::decode(&encoded[..encoded.len() - 1]),
        Err(DecodeError::UnexpectedEof {
            field: "second_per_commitment_point",
            ..
        })
    ));
    // One stray byte after the fixed fields is a truncated TLV stream, not silently ignored.
    let mut long = encoded.clone();
    long.push(0x01);
    assert!(Message::decode(&long).is_err());
}
