"""The background wake through the Python bindings against the devnet: a phone stopped
mid-open is finished by a wake (one dial, the ChannelReady in the report), the next wake with
nothing pending costs one request, no dial and no fsync, a wake beside the running node is
Busy, and a cancelled asyncio task cancels its wake (the data dir comes free); a wake whose
server stalls ends within its deadline, and a process SIGKILLed mid-wake leaves the data dir free
for the next start; a wake whose first Esplora server is down syncs through its fall-back."""

import asyncio
import os
import signal
import subprocess
import sys
from datetime import timedelta

import tern

from test_node import config, next_events, start, sync_all


def options(deadline_ms=20_000, cancel=None):
    return tern.WakeOptions(deadline_ms=deadline_ms, cancel=cancel)


def test_a_wake_finishes_an_open_then_costs_one_request(tmp_path, devnet):
    async def go():
        lsp = await start(tmp_path, "wl", devnet.url, 21, listen="127.0.0.1:0")
        phone = await start(tmp_path, "wp", devnet.url, 22)
        devnet.faucet(await phone.new_address(), 400_000)
        devnet.mine(1)
        await sync_all(phone, lsp)
        await phone.open_channel(lsp.node_id(), lsp.listen_addr(), 150_000, 0, False)
        await next_events(phone, tern.Event.CHANNEL_PENDING, devnet, [lsp])
        busy = await tern.wake(config(tmp_path / "wp", devnet.url), bytes([22] * 32), options())
        assert isinstance(busy.outcome, tern.WakeOutcome.BUSY), busy
        await phone.stop()
        del phone
        # The funding confirms while the phone sleeps; the LSP sees it (and cannot reach the
        # phone, which does not listen).
        for _ in range(50):
            devnet.mine(1)
            await lsp.sync(None)
            [c] = await lsp.list_channels()
            if c.confirmations >= 3:
                break

        report = await tern.wake(config(tmp_path / "wp", devnet.url), bytes([22] * 32), options())
        assert isinstance(report.outcome, tern.WakeOutcome.COMPLETED), report
        assert report.pending == [], report
        assert report.costs.dials == 1, report
        assert any(isinstance(e, tern.Event.CHANNEL_READY) for e in report.events), report

        quiet = await tern.wake(config(tmp_path / "wp", devnet.url), bytes([22] * 32), options())
        assert isinstance(quiet.outcome, tern.WakeOutcome.COMPLETED), quiet
        assert quiet.costs.http_requests == 1, quiet
        assert (quiet.costs.dials, quiet.costs.fsyncs, quiet.costs.commits) == (0, 0, 0), quiet
        assert quiet.next_wake_after_secs == 24 * 3600
        await lsp.stop()

    asyncio.run(go())


def test_a_cancelled_task_cancels_its_wake(tmp_path, devnet):
    async def go():
        # A server that accepts and never answers: the wake's sync waits (10 s per request).
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        silent = config(tmp_path / "wc", f"http://127.0.0.1:{port}")
        task = asyncio.ensure_future(tern.wake(silent, bytes([23] * 32), options(60_000)))
        await asyncio.sleep(0.3)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        # The dir comes free within 2 s (the cancelled wake stops cleanly on its runtime).
        for _ in range(100):
            try:
                node = await tern.Node.start(config(tmp_path / "wc", devnet.url), bytes([23] * 32))
                break
            except tern.TernError.AlreadyRunning:
                await asyncio.sleep(0.02)
        else:
            raise AssertionError("the data dir stayed held after the cancel")
        await node.stop()
        # An explicit handle, cancelled before: the report says so.
        cancel = tern.WakeCancel()
        cancel.cancel()
        report = await tern.wake(silent, bytes([23] * 32), options(cancel=cancel))
        assert isinstance(report.outcome, tern.WakeOutcome.CANCELLED), report
        server.close()

    asyncio.run(go())


async def silent_server():
    """A server that accepts and never answers: a sync against it waits (10 s per request)."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def test_a_stalled_wake_ends_within_its_deadline(tmp_path, devnet):
    async def go():
        server, url = await silent_server()
        report = await tern.wake(config(tmp_path / "wd", url), bytes([24] * 32), options(3_000))
        assert isinstance(report.outcome, tern.WakeOutcome.DEADLINE_REACHED), report
        assert report.costs.total_ms < 3_000, report
        assert report.costs.dials == 0, report
        node = await tern.Node.start(config(tmp_path / "wd", devnet.url), bytes([24] * 32))
        await node.stop()
        server.close()

    asyncio.run(go())



def test_a_wake_fails_over_to_the_next_esplora_server(tmp_path, devnet):
    """The first server refuses every connection: the wake syncs through the fall-back."""
    import urllib.request

    async def go():
        c = config(tmp_path / "wf", "http://127.0.0.1:1")
        c.esplora_fallback_urls = [devnet.url]
        devnet.mine(1)
        tip = int(urllib.request.urlopen(devnet.url + "/blocks/tip/height", timeout=5).read())
        report = await tern.wake(c, bytes([25] * 32), options())
        assert isinstance(report.outcome, tern.WakeOutcome.COMPLETED), report
        assert report.tip_height == tip, report
        alone = config(tmp_path / "wf", "http://127.0.0.1:1")
        failed = await tern.wake(alone, bytes([25] * 32), options())
        assert isinstance(failed.outcome, tern.WakeOutcome.FAILED), failed

    asyncio.run(go())

CHILD = """
import asyncio, sys
import tern
c = tern.default_config(tern.Network.REGTEST, sys.argv[1], sys.argv[2])
c.runtime_threads = 1
asyncio.run(tern.wake(c, bytes([25] * 32), tern.WakeOptions(deadline_ms=60_000, cancel=None)))
"""


def test_a_process_killed_mid_wake_leaves_the_dir_free(tmp_path, devnet):
    async def go():
        held, asked = [], asyncio.Event()

        def on_connect(reader, writer):
            held.append(writer)  # never answered
            asked.set()

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "wk"), url], env=os.environ)
        try:
            # The child's sync reached the server: it is inside its wake, holding the dir.
            await asyncio.wait_for(asked.wait(), 30)
            busy = await tern.wake(config(tmp_path / "wk", url), bytes([25] * 32), options())
            assert isinstance(busy.outcome, tern.WakeOutcome.BUSY), busy
            child.send_signal(signal.SIGKILL)
            child.wait()
        finally:
            if child.poll() is None:
                child.kill()
        # At once, with no retry: the kernel released the lock with the process.
        node = await tern.Node.start(config(tmp_path / "wk", devnet.url), bytes([25] * 32))
        await node.stop()
        del node
        report = await tern.wake(config(tmp_path / "wk", devnet.url), bytes([25] * 32), options())
        assert isinstance(report.outcome, tern.WakeOutcome.COMPLETED), report
        server.close()

    asyncio.run(go())
