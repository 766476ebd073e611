"""A devnet (tern-devnet) and a `tern daemon` listening on TCP, for the hostile-peer tests.

TERN_BIN and TERN_DEVNET_BIN name the binaries (scripts/test-hostile.sh builds and sets them).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, check, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            result = check()
            if result:
                return result
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not happen in {timeout} s")


class Devnet:
    def __init__(self, binary):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([binary, "--port", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for("tern-devnet start", lambda: urllib.request.urlopen(self.url + "/blocks/tip/height", timeout=1).read())

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class Daemon:
    """`tern daemon` at a temporary data dir, listening on 127.0.0.1:<free port>."""

    def __init__(self, binary, esplora):
        self.dir = tempfile.mkdtemp(prefix="tern-hostile-")
        self.port = free_port()
        self.log = open(os.path.join(self.dir, "stderr.log"), "wb")
        self.proc = subprocess.Popen(
            [binary, "daemon", "--data-dir", self.dir, "--network", "regtest", "--esplora", esplora,
             "--listen", f"127.0.0.1:{self.port}", "--inbound", "accept"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        info = wait_for("tern daemon start", lambda: self.info_or_none())
        self.node_id = info["node_id"]
        self.pid = info["pid"]

    def call(self, request, timeout=30):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(timeout)
            s.connect(os.path.join(self.dir, "tern.sock"))
            s.sendall((json.dumps(request) + "\n").encode())
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
        return json.loads(answer)

    def info_or_none(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"tern daemon exited {self.proc.returncode}: see {self.dir}/stderr.log")
        try:
            r = self.call({"cmd": "info"}, timeout=2)
        except (OSError, ValueError):
            return None
        return r.get("result") if r.get("ok") else None

    def answers(self):
        """The node is up: its process runs and its control socket answers."""
        return self.proc.poll() is None and self.call({"cmd": "info"})["ok"]

    def channels(self):
        """The channels past their durable point (stored): opens held in memory before it
        (ChannelState::is_durable) are left out."""
        r = self.call({"cmd": "channels"})
        assert r["ok"], r
        transient = {"OutboundAwaitingAccept", "AwaitingFundingTx", "AwaitingFundingSigned",
                     "InboundAwaitingFundingCreated", "Aborted"}
        return [c for c in r["result"] if c["state"] not in transient]

    def vm_hwm_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return None

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def devnet():
    binary = os.environ.get("TERN_DEVNET_BIN")
    if not binary:
        pytest.fail("TERN_DEVNET_BIN is not set (scripts/test-hostile.sh sets it)")
    d = Devnet(binary)
    yield d
    d.stop()


@pytest.fixture(scope="module")
def node(devnet):
    binary = os.environ.get("TERN_BIN")
    if not binary:
        pytest.fail("TERN_BIN is not set (scripts/test-hostile.sh sets it)")
    d = Daemon(binary, devnet.url)
    yield d
    d.stop()
