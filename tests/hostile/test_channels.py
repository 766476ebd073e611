"""Hostile channel messages through pyln-proto: bad `open_channel`s (points, parameters, chain),
a `funding_created` with a bad signature, and messages for channels that do not exist or out of
order. Where BOLT 2 fails a channel, the only durable change allowed is none: the node stores no
channel (`channels` stays empty) and keeps serving others."""

import os
import struct

import pytest

import bolt
from bolt import Peer


def healthy(node):
    assert node.answers()
    p = Peer(node)
    try:
        temp, m = bolt.open_channel()
        p.send(m)
        accept = p.read_until({bolt.ACCEPT_CHANNEL, bolt.ERROR})
        assert bolt.msg_type(accept) == bolt.ACCEPT_CHANNEL, bolt.error_text(accept)
    finally:
        p.close()


def unknown_channel(p):
    """A message for a channel that does not exist: an `error` "unknown channel" for its id,
    the connection stays (a ping is answered)."""
    m = p.read_until({bolt.ERROR, bolt.WARNING})
    assert bolt.msg_type(m) == bolt.ERROR and "unknown channel" in bolt.error_text(m), bolt.error_text(m)
    assert p.alive()


def refused(p, temp_id):
    """The node's answer to an open it must refuse: an `error` (or `warning`) for it."""
    m = p.read_until({bolt.ERROR, bolt.WARNING, bolt.ACCEPT_CHANNEL})
    assert bolt.msg_type(m) in (bolt.ERROR, bolt.WARNING), "accepted a bad open_channel"
    if bolt.msg_type(m) == bolt.ERROR:
        assert m[2:34] == temp_id, "the error is not for the open's temporary id"
    return bolt.error_text(m)


@pytest.mark.parametrize(
    "case,kwargs,words",
    [
        ("other chain", {"chain": bolt.MAINNET}, "chain"),
        ("to_self_delay too long", {"to_self_delay": 60_000}, "to_self_delay"),
        ("too many htlcs", {"max_accepted_htlcs": 500}, "max_accepted_htlcs"),
        ("dust below 354", {"dust_limit_sat": 100}, "dust"),
        ("push above funding", {"push_msat": 200_000_000}, "push"),
        ("funding too small", {"funding_sat": 1_000}, "funding"),
        ("feerate zero", {"feerate_per_kw": 0}, "feerate"),
        ("no channel_type", {"channel_type": None}, "channel_type"),
        ("unknown channel_type", {"channel_type": bolt.bits(12, 100)}, "channel_type"),
    ],
)
def test_open_channel_out_of_range(node, case, kwargs, words):
    p = Peer(node)
    temp, m = bolt.open_channel(**kwargs)
    p.send(m)
    text = refused(p, temp)
    assert words in text, f"{case}: {text}"
    # With no other channel on it, the connection closes after the error (inbound.rs).
    assert p.closed()
    assert node.channels() == []
    healthy(node)


def test_open_channel_bad_point(node):
    # An invalid point cannot be parsed: the message is malformed (BOLT 1: warning and close).
    p = Peer(node)
    temp, m = bolt.open_channel(funding_pubkey=bolt.BAD_POINT)
    p.send(m)
    w = p.read_until({bolt.WARNING, bolt.ERROR, bolt.ACCEPT_CHANNEL})
    assert bolt.msg_type(w) in (bolt.WARNING, bolt.ERROR), "accepted a bad point"
    assert p.closed()
    assert node.channels() == []
    healthy(node)


def test_open_channel_truncated(node):
    p = Peer(node)
    temp, m = bolt.open_channel()
    p.send(m[:200])
    w = p.read_until({bolt.WARNING, bolt.ERROR})
    assert p.closed()
    healthy(node)


def test_funding_created_bad_signature_fails_only_that_channel(node):
    p = Peer(node)
    temp, m = bolt.open_channel()
    p.send(m)
    a = p.read_until({bolt.ACCEPT_CHANNEL, bolt.ERROR})
    assert bolt.msg_type(a) == bolt.ACCEPT_CHANNEL, bolt.error_text(a)
    p.send(bolt.funding_created(temp))
    e = p.read_until({bolt.ERROR, bolt.WARNING, bolt.FUNDING_SIGNED})
    assert bolt.msg_type(e) != bolt.FUNDING_SIGNED, "signed a funding with a bad commitment signature"
    assert node.channels() == [], "a failed open left a stored channel"
    p.close()
    healthy(node)


def test_funding_created_for_unknown_channel(node):
    p = Peer(node)
    p.send(bolt.funding_created(os.urandom(32)))
    unknown_channel(p)
    p.close()
    assert node.channels() == []
    healthy(node)


@pytest.mark.parametrize(
    "name,t,rest",
    [
        ("funding_signed", bolt.FUNDING_SIGNED, None),
        ("channel_ready", bolt.CHANNEL_READY, None),
        ("shutdown", bolt.SHUTDOWN, struct.pack(">H", 22) + b"\x00\x14" + os.urandom(20)),
        ("closing_signed", bolt.CLOSING_SIGNED, struct.pack(">Q", 1000) + bolt.signature()),
        ("update_fee", bolt.UPDATE_FEE, struct.pack(">I", 2500)),
        ("commitment_signed", bolt.COMMITMENT_SIGNED, bolt.signature() + struct.pack(">H", 0)),
        ("revoke_and_ack", bolt.REVOKE_AND_ACK, os.urandom(32) + bolt.point()),
    ],
)
def test_channel_message_for_unknown_channel(node, name, t, rest):
    # Out of order: a message for a channel that does not exist. The node must not crash or
    # store anything; the connection either stays (error/ignored) or closes with a warning.
    p = Peer(node)
    if rest is None:
        rest = {bolt.FUNDING_SIGNED: bolt.signature(), bolt.CHANNEL_READY: bolt.point()}[t]
    cid = os.urandom(32)
    p.send(bolt.channel_msg(t, cid, rest))
    unknown_channel(p)
    p.close()
    assert node.channels() == []
    healthy(node)


def test_accept_channel_unsolicited(node):
    # A well-formed accept_channel for an open we never sent.
    p = Peer(node)
    body = struct.pack(">H", bolt.ACCEPT_CHANNEL) + os.urandom(32)
    body += struct.pack(">QQQQIHH", 546, 90_000_000, 1000, 1, 3, 144, 30)
    body += b"".join(bolt.point() for _ in range(6)) + bolt.tlv(1, bolt.bits(12))
    p.send(body)
    unknown_channel(p)
    p.close()
    assert node.channels() == []
    healthy(node)


def test_second_open_with_same_temporary_id(node):
    p = Peer(node)
    temp, m = bolt.open_channel()
    p.send(m)
    a = p.read_until({bolt.ACCEPT_CHANNEL, bolt.ERROR})
    assert bolt.msg_type(a) == bolt.ACCEPT_CHANNEL
    _, again = bolt.open_channel(temp_id=temp)
    p.send(again)
    # The duplicate reaches the pending channel of that id, which ignores it: no second
    # accept_channel before the pong that answers our next ping, the connection stays.
    p.send(bolt.ping(8))
    while True:
        m2 = p.read()
        assert bolt.msg_type(m2) != bolt.ACCEPT_CHANNEL, "accepted a second open with the same temporary id"
        if bolt.msg_type(m2) == bolt.PONG:
            break
    p.close()
    assert node.channels() == []
