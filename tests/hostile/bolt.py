"""BOLT 1/2 messages built by hand (the peer under test is not Tern's code: pyln-proto speaks
BOLT 8, these bytes are the messages), and a peer that talks to a Tern node over it."""

import os
import socket
import struct

import coincurve
from pyln.proto import wire
from pyln.proto.primitives import PrivateKey, PublicKey

# BOLT 1 message types.
INIT, ERROR, WARNING, PING, PONG = 16, 17, 1, 18, 19
# BOLT 2.
OPEN_CHANNEL, ACCEPT_CHANNEL, FUNDING_CREATED, FUNDING_SIGNED = 32, 33, 34, 35
CHANNEL_READY, SHUTDOWN, CLOSING_SIGNED = 36, 38, 39
UPDATE_ADD_HTLC, COMMITMENT_SIGNED, REVOKE_AND_ACK, UPDATE_FEE = 128, 132, 133, 134

# Genesis block hashes in wire (internal) byte order.
REGTEST = bytes.fromhex("06226e46111a0b59caaf126043eb5bbf28c34f3a5e332a1fc7b2b73cf188910f")
MAINNET = bytes.fromhex("6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000")


def tlv(t, value):
    assert t < 253 and len(value) < 253
    return bytes([t, len(value)]) + value


def bits(*set_bits):
    """A BOLT 9 feature field (big-endian, shortest) with these bits set."""
    if not set_bits:
        return b""
    n = max(set_bits) // 8 + 1
    v = 0
    for b in set_bits:
        v |= 1 << b
    return v.to_bytes(n, "big")


def u16(b, i):
    return struct.unpack(">H", b[i : i + 2])[0]


def msg_type(m):
    return u16(m, 0) if len(m) >= 2 else None


def init(features=b"", chain=REGTEST):
    networks = tlv(1, chain) if chain is not None else b""
    return struct.pack(">HH", INIT, 0) + struct.pack(">H", len(features)) + features + networks


def ping(num_pong_bytes=4, ignored=0):
    return struct.pack(">HHH", PING, num_pong_bytes, ignored) + b"\x00" * ignored


def point():
    return coincurve.PrivateKey().public_key.format(compressed=True)


# A 33-byte string that is not a point: 0x02 with an x that has no y on the curve (x = 5).
BAD_POINT = b"\x02" + (5).to_bytes(32, "big")


def open_channel(
    temp_id=None,
    chain=REGTEST,
    funding_sat=100_000,
    push_msat=0,
    to_self_delay=144,
    feerate_per_kw=2500,
    max_accepted_htlcs=30,
    dust_limit_sat=546,
    reserve_sat=1000,
    funding_pubkey=None,
    first_point=None,
    channel_type=bits(12),
):
    temp_id = temp_id or os.urandom(32)
    body = struct.pack(">H", OPEN_CHANNEL) + chain + temp_id
    body += struct.pack(
        ">QQQQQQIHH",
        funding_sat,
        push_msat,
        dust_limit_sat,
        90_000_000,  # max_htlc_value_in_flight_msat
        reserve_sat,
        1,  # htlc_minimum_msat
        feerate_per_kw,
        to_self_delay,
        max_accepted_htlcs,
    )
    body += funding_pubkey or point()
    body += point() + point() + point() + point()  # revocation, payment, delayed, htlc
    body += first_point or point()
    body += b"\x00"  # channel_flags
    if channel_type is not None:
        body += tlv(1, channel_type)
    return temp_id, body


def signature():
    """A well-formed compact ECDSA signature (r, s) by a random key over a random digest."""
    return coincurve.PrivateKey().sign_recoverable(os.urandom(32), hasher=None)[:64]


def funding_created(temp_id, txid=None, vout=0, sig=None):
    return (
        struct.pack(">H", FUNDING_CREATED)
        + temp_id
        + (txid or os.urandom(32))
        + struct.pack(">H", vout)
        + (sig or signature())
    )


def channel_msg(t, channel_id, rest=b""):
    return struct.pack(">H", t) + channel_id + rest


class Peer:
    """One BOLT 8 connection (pyln-proto) to the node, `init` exchanged unless told not to."""

    def __init__(self, node, features=None, chain=REGTEST, send_init=True, timeout=10):
        self.key = PrivateKey(os.urandom(32))
        self.conn = wire.connect(self.key, PublicKey(bytes.fromhex(node.node_id)), "127.0.0.1", node.port)
        self.conn.connection.settimeout(timeout)
        self.their_init = self.read()
        assert msg_type(self.their_init) == INIT, self.their_init[:2]
        if send_init:
            feats = self.their_features() if features is None else features
            self.send(init(feats, chain))

    def their_features(self):
        m = self.their_init
        glen = u16(m, 2)
        flen = u16(m, 4 + glen)
        return m[6 + glen : 6 + glen + flen]

    def send(self, m):
        self.conn.send_message(m)

    def read(self):
        """One message, decrypted with pyln-proto's cipher state. pyln's own read_message
        takes a short read of the length header for a closed connection; this one waits for
        all 18 bytes, and raises EOFError only when the node closed the connection."""
        c = self.conn
        lc = self._recv_exact(18)
        (length,) = struct.unpack("!H", wire.decryptWithAD(c.rk, c.nonce(c.rn), b"", lc))
        c.rn += 1
        mc = self._recv_exact(length + 16)
        m = wire.decryptWithAD(c.rk, c.nonce(c.rn), b"", mc)
        c.rn += 1
        c._maybe_rotate_keys()
        return m

    def _recv_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.conn.connection.recv(n - len(out))
            if not chunk:
                raise EOFError(f"closed after {len(out)} of {n} bytes")
            out += chunk
        return out

    def read_until(self, types, limit=50):
        """The next message of one of `types`, skipping pings (answered) and others."""
        for _ in range(limit):
            m = self.read()
            t = msg_type(m)
            if t == PING:
                self.send(struct.pack(">HH", PONG, u16(m, 2)) + b"\x00" * u16(m, 2))
                continue
            if t in types:
                return m
        raise AssertionError(f"none of {types} in {limit} messages")

    def closed(self):
        """Whether the node closes the connection (after any messages it still sends)."""
        try:
            while True:
                self.read()
        except socket.timeout:
            return False
        except (EOFError, ConnectionError):
            return True

    def alive(self):
        """Whether the connection still answers a ping."""
        self.send(ping(8))
        return msg_type(self.read_until({PONG})) == PONG

    def close(self):
        try:
            self.conn.connection.close()
        except OSError:
            pass


def error_text(m):
    """The data of an `error` or `warning`."""
    n = u16(m, 34)
    return m[36 : 36 + n].decode(errors="replace")
