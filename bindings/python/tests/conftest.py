"""Shared fixtures: a devnet (the tern-devnet binary) per test module, temp data dirs."""

import json
import os
import socket
import subprocess
import time
import urllib.request

import pytest


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Devnet:
    def __init__(self, binary):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/blocks/tip/height", timeout=1).read()
                return
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError("tern-devnet did not start")

    def control(self, what, body):
        req = urllib.request.Request(
            f"{self.url}/devnet/{what}",
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        return json.loads(urllib.request.urlopen(req, timeout=10).read())

    def mine(self, blocks=1):
        return self.control("mine", {"blocks": blocks})

    def faucet(self, address, amount_sat):
        return self.control("faucet", {"address": address, "amount_sat": amount_sat})

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def devnet():
    binary = os.environ.get("TERN_DEVNET_BIN")
    if not binary:
        pytest.fail("TERN_DEVNET_BIN is not set (scripts/test-bindings.sh sets it)")
    d = Devnet(binary)
    yield d
    d.stop()
