"""Floods, with counted bounds: 1,000 TCP connections that never finish a handshake, and 1,000
`open_channel`s from 20 peers. The node holds at most its limits (128 inbound connections, 4
pending opens per peer, 50 in all), refuses the rest, stays up, and serves a well-behaved peer
afterwards. The daemon's peak RSS (VmHWM) before and after is written to
$TERN_HOSTILE_OUT/rss.txt for the record (not asserted)."""

import os
import select
import socket
import time

import bolt
from bolt import Peer

MAX_INBOUND = 128
PER_PEER = 4
TOTAL = 50


def note(line):
    out = os.environ.get("TERN_HOSTILE_OUT")
    if out:
        with open(os.path.join(out, "rss.txt"), "a") as f:
            f.write(line + "\n")


def test_connection_flood_is_bounded(node):
    before = node.vm_hwm_kib()
    socks = []
    for _ in range(1000):
        s = socket.create_connection(("127.0.0.1", node.port), timeout=5)
        socks.append(s)
    # A refused connection is closed by the node at once (EOF, nothing sent); an accepted one
    # waits for act one until the handshake timeout (10 s). Count the EOFs until none comes for
    # a second (well inside that timeout).
    poller = select.poll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    refused = 0
    while True:
        events = poller.poll(1000)
        if not events:
            break
        for fd, _ in events:
            poller.unregister(fd)
            try:
                data = by_fd[fd].recv(1)
            except ConnectionError:
                data = b""
            assert data == b"", "the node sent bytes before act one"
            refused += 1
    held = len(socks) - refused
    assert held <= MAX_INBOUND, f"{held} connections held, limit {MAX_INBOUND}"
    assert held >= MAX_INBOUND - 8, f"only {held} held: refused more than the limit asks"
    assert node.answers()
    for s in socks:
        s.close()
    # The slots free as the held connections close: a well-behaved peer gets in.
    deadline = time.time() + 15
    while True:
        try:
            p = Peer(node, timeout=5)
            break
        except (ValueError, EOFError, ConnectionError, OSError):
            if time.time() > deadline:
                raise
            time.sleep(0.1)
    assert p.alive()
    p.close()
    after = node.vm_hwm_kib()
    note(f"connection flood (1,000 connections, {held} held, {refused} refused): daemon VmHWM {before} KiB before, {after} KiB after")


def test_open_channel_flood_is_bounded(node):
    before = node.vm_hwm_kib()
    peers = [Peer(node) for _ in range(20)]
    sent = {}
    for p in peers:
        sent[p] = []
        for _ in range(50):
            temp, m = bolt.open_channel()
            p.send(m)
            sent[p].append(temp)
    accepted = refused = 0
    per_peer = []
    for p in peers:
        mine = 0
        for _ in range(50):
            m = p.read_until({bolt.ACCEPT_CHANNEL, bolt.ERROR})
            if bolt.msg_type(m) == bolt.ACCEPT_CHANNEL:
                mine += 1
            else:
                assert "too many pending" in bolt.error_text(m), bolt.error_text(m)
                refused += 1
        per_peer.append(mine)
        accepted += mine
    assert max(per_peer) <= PER_PEER, per_peer
    assert accepted == TOTAL, f"{accepted} accepted, {refused} refused: {per_peer}"
    assert accepted + refused == 1000
    assert node.answers()
    after = node.vm_hwm_kib()
    note(f"open_channel flood (1,000 opens from 20 peers, {accepted} held, {refused} refused): daemon VmHWM {before} KiB before, {after} KiB after")
    # The peers go: their unfunded opens die with the connections, the room comes back, and a
    # new peer's open is accepted.
    for p in peers:
        p.close()
    deadline = time.time() + 15
    while True:
        q = Peer(node)
        temp, m = bolt.open_channel()
        q.send(m)
        a = q.read_until({bolt.ACCEPT_CHANNEL, bolt.ERROR})
        q.close()
        if bolt.msg_type(a) == bolt.ACCEPT_CHANNEL:
            break
        assert time.time() < deadline, bolt.error_text(a)
        time.sleep(0.2)
