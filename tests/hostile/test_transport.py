"""Hostile peers at the transport and `init` level, through pyln-proto (Core Lightning's BOLT 8)
and raw TCP. Each case: the BOLT outcome, then the node still answers its control socket and a
well-behaved peer still connects (the `healthy` check)."""

import os
import socket
import struct
import time

import pytest

import bolt
from bolt import Peer


def healthy(node):
    assert node.answers(), "the control socket does not answer"
    p = Peer(node)
    try:
        assert p.alive(), "a well-behaved peer gets no pong"
    finally:
        p.close()


def raw(node, timeout=10):
    s = socket.create_connection(("127.0.0.1", node.port), timeout=timeout)
    return s


def closed_by_node(s):
    """Reads until EOF: True when the node closed the socket (a reset counts), False on timeout."""
    try:
        while True:
            if not s.recv(4096):
                return True
    except socket.timeout:
        return False
    except ConnectionError:
        return True


def test_well_behaved_peer_connects(node):
    healthy(node)


def test_garbage_act_one(node):
    s = raw(node)
    s.sendall(os.urandom(50))
    assert closed_by_node(s)
    healthy(node)


def test_act_one_bad_version(node):
    # A real act one from pyln-proto with its version byte changed: BOLT 8 says abort.
    from pyln.proto import wire
    from pyln.proto.primitives import PrivateKey, PublicKey

    s = raw(node)
    c = wire.LightningConnection(s, PublicKey(bytes.fromhex(node.node_id)), PrivateKey(os.urandom(32)), True)
    act = bytearray(c.handshake_act_one_initiator())
    act[0] = 1
    s.sendall(bytes(act))
    assert closed_by_node(s)
    healthy(node)


def test_truncated_act_one(node):
    s = raw(node)
    s.sendall(os.urandom(20))
    s.shutdown(socket.SHUT_WR)
    assert closed_by_node(s)
    healthy(node)


def up_to_act_three(node):
    """A raw socket past acts one and two (pyln-proto as the initiator), and our act three."""
    from pyln.proto import wire
    from pyln.proto.primitives import PrivateKey, PublicKey

    s = raw(node)
    c = wire.LightningConnection(s, PublicKey(bytes.fromhex(node.node_id)), PrivateKey(os.urandom(32)), True)
    s.sendall(c.handshake_act_one_initiator())
    act_two = b""
    while len(act_two) < 50:
        act_two += s.recv(50 - len(act_two))
    c.handshake_act_two_initiator(act_two)
    return s, bytearray(c.handshake_act_three_initiator())


def test_truncated_act_three(node):
    s, act = up_to_act_three(node)
    s.sendall(act[:30])
    s.shutdown(socket.SHUT_WR)
    assert closed_by_node(s)
    healthy(node)


def test_bad_act_three_mac(node):
    s, act = up_to_act_three(node)
    act[-1] ^= 1
    s.sendall(bytes(act))
    assert closed_by_node(s)
    healthy(node)


def test_slowloris_handshake_cut_at_timeout(node):
    # One byte a second of a 50-byte act one: the node's handshake timeout (10 s, the default
    # connect timeout) cuts it long before the act is complete.
    s = raw(node, timeout=1)
    sent = 0
    start = time.time()
    act = os.urandom(50)
    while sent < len(act):
        try:
            s.sendall(act[sent : sent + 1])
        except ConnectionError:
            break
        sent += 1
        try:
            if s.recv(1) == b"":
                break
        except socket.timeout:
            pass
        except ConnectionError:
            break
    took = time.time() - start
    assert sent < len(act), f"the node took all {sent} bytes over {took:.0f} s"
    assert took < 20, took
    healthy(node)


def test_bad_mac_mid_stream(node):
    p = Peer(node)
    assert p.alive()
    # A frame whose length header is fine and whose body MAC is broken.
    c = p.conn
    m = bolt.ping(4)
    length = struct.pack("!H", len(m))
    lc = bolt_encrypt(c, c.sn, length)
    mc = bytearray(bolt_encrypt(c, c.sn + 1, m))
    mc[-1] ^= 0x80
    c.sn += 2
    c.connection.sendall(lc + bytes(mc))
    assert p.closed()
    healthy(node)


def bolt_encrypt(c, n, plaintext):
    from pyln.proto.wire import encryptWithAD

    return encryptWithAD(c.sk, c.nonce(n), b"", plaintext)


def test_garbage_length_header(node):
    p = Peer(node)
    p.conn.connection.sendall(os.urandom(18))
    assert p.closed()
    healthy(node)


def test_zero_length_frame(node):
    # BOLT 1: a message is at least its 2-byte type. An empty frame cannot be parsed: warning
    # and close.
    p = Peer(node)
    p.send(b"")
    w = p.read_until({bolt.WARNING})
    assert "bad message" in bolt.error_text(w), bolt.error_text(w)
    assert p.closed()
    healthy(node)


def test_largest_frame_of_unknown_odd_type_is_ignored(node):
    # The largest frame BOLT 8 can carry (65,535 bytes), of an unknown odd type: ignored.
    p = Peer(node)
    p.send(struct.pack(">H", 0x8001) + os.urandom(65_533))
    assert p.alive()
    p.close()
    healthy(node)


def test_oversized_length_is_a_bad_mac(node):
    # A length header claiming more than the body that follows: the node waits for the claimed
    # body and the MAC of whatever arrives fails; it never buffers past 65,535 + 16 bytes.
    p = Peer(node)
    c = p.conn
    lc = bolt_encrypt(c, c.sn, struct.pack("!H", 65_535))
    mc = bolt_encrypt(c, c.sn + 1, bolt.ping(4))
    c.sn += 2
    c.connection.sendall(lc + mc + os.urandom(65_535 + 16 - len(mc)) + os.urandom(1000))
    assert p.closed()
    healthy(node)


def test_unknown_odd_message_ignored(node):
    p = Peer(node)
    p.send(struct.pack(">H", 0x1235) + b"hello")
    assert p.alive()
    p.close()


def test_unknown_even_message_warning_then_close(node):
    p = Peer(node)
    p.send(struct.pack(">H", 0x1234) + b"hello")
    w = p.read_until({bolt.WARNING})
    assert "4660" in bolt.error_text(w) or "unknown" in bolt.error_text(w).lower(), bolt.error_text(w)
    assert p.closed()
    healthy(node)


def test_init_with_unknown_required_feature(node):
    p = Peer(node, send_init=False)
    feats = int.from_bytes(p.their_features(), "big") | (1 << 100)
    p.send(bolt.init(feats.to_bytes(13, "big")))
    w = p.read_until({bolt.WARNING})
    assert "feature" in bolt.error_text(w), bolt.error_text(w)
    assert p.closed()
    healthy(node)


def test_init_with_unknown_odd_feature_is_fine(node):
    p = Peer(node, send_init=False)
    feats = int.from_bytes(p.their_features(), "big") | (1 << 101)
    p.send(bolt.init(feats.to_bytes(13, "big")))
    assert p.alive()
    p.close()


def test_init_for_another_chain(node):
    p = Peer(node, chain=bolt.MAINNET)
    w = p.read_until({bolt.WARNING})
    assert "chain" in bolt.error_text(w), bolt.error_text(w)
    assert p.closed()
    healthy(node)


def test_first_message_not_init(node):
    p = Peer(node, send_init=False)
    p.send(bolt.ping(4))
    assert p.closed()
    healthy(node)


def test_ping_asking_for_too_many_pong_bytes(node):
    # BOLT 1: num_pong_bytes >= 65532 means no pong.
    p = Peer(node)
    p.send(struct.pack(">HHH", bolt.PING, 65_532, 0))
    assert p.alive()  # the next pong is the answer to alive()'s own ping
    p.close()


def test_peer_that_never_reads_its_pongs_is_cut(node):
    # Pings asking for 65,531-byte pongs and never reading them: the node's send queue for the
    # peer is capped (256 KiB); it disconnects the peer instead of buffering.
    p = Peer(node)
    s = p.conn.connection
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    big = struct.pack(">HHH", bolt.PING, 65_531, 0)
    cut = False
    for _ in range(2000):
        try:
            p.send(big)
        except socket.timeout:
            break  # the node stopped reading (backpressure): not a disconnect
        except (ConnectionError, OSError):
            cut = True
            break
    if not cut:
        # Our side still sends: the node must have closed its side (EOF after pongs).
        s.settimeout(10)
        cut = p.closed()
    assert cut, "the node kept buffering pongs for a peer that does not read"
    healthy(node)
