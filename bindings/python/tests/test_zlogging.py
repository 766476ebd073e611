"""The app's own logger (a Python LogSink) receives the core's records; logging is set up once
per process (this module runs last: the subscriber it installs stays for the process)."""

import asyncio
import threading
import time

import pytest

import tern


class Collect(tern.LogSink):
    def __init__(self):
        self.records = []
        self.threads = set()

    def log(self, record):
        self.records.append(record)
        self.threads.add(threading.current_thread().name)


def test_the_apps_logger_gets_the_cores_records(tmp_path, devnet):
    sink = Collect()
    tern.init_logging_with_sink(tern.LogLevel.DEBUG, sink)
    with pytest.raises(tern.TernError.InvalidInput):
        tern.init_logging(tern.LogLevel.INFO, None)

    async def go():
        c = tern.default_config(tern.Network.REGTEST, str(tmp_path / "log"), devnet.url)
        node = await tern.Node.start(c, bytes([42] * 32))
        await node.sync(None)
        await node.stop()

    asyncio.run(go())
    deadline = time.time() + 5
    while not any(r.target.startswith("tern_core") for r in sink.records):
        assert time.time() < deadline, [r.target for r in sink.records]
        time.sleep(0.01)
    assert threading.main_thread().name not in sink.threads
    assert all(isinstance(r.level, tern.LogLevel) for r in sink.records)
