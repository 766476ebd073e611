"""Tern's Python bindings against the devnet: two nodes through the bindings, a channel
opened between them with its events acknowledged, a restart mid-open, each error kind, a
waiter woken by stop. Every call is awaited (the bindings' async API) on asyncio."""

import asyncio
import os
from datetime import timedelta

import pytest

import tern


def config(data_dir, esplora_url, listen=None):
    c = tern.default_config(tern.Network.REGTEST, str(data_dir), esplora_url)
    c.listen = listen
    c.runtime_threads = 1
    return c


def run(coro):
    return asyncio.run(coro)


async def start(tmp, name, url, seed, listen=None):
    return await tern.Node.start(config(tmp / name, url, listen), bytes([seed] * 32))


def test_version():
    assert tern.tern_version() == "0.1.0"


def test_error_kinds(tmp_path, devnet):
    async def go():
        with pytest.raises(tern.TernError.InvalidInput):
            await tern.Node.start(config(tmp_path / "a", devnet.url), bytes(31))
        node = await start(tmp_path, "a", devnet.url, 1)
        with pytest.raises(tern.TernError.AlreadyRunning):
            await start(tmp_path, "a", devnet.url, 1)
        with pytest.raises(tern.TernError.InvalidInput):
            await node.connect("not-a-key", "127.0.0.1:1")
        with pytest.raises(tern.TernError.UnknownChannel):
            await node.close_channel("00" * 32, None)
        with pytest.raises(tern.TernError.InvalidInput):
            await node.close_channel("00" * 32, "bc1qnotanaddress")
        await node.stop()
        assert node.is_stopped()
        with pytest.raises(tern.TernError.Stopped):
            await node.new_address()

    run(go())


def test_stop_wakes_a_waiter_and_a_timeout_returns_none(tmp_path, devnet):
    async def go():
        node = await start(tmp_path, "w", devnet.url, 2)
        assert await node.wait_next_event_timeout(timedelta(milliseconds=50)) is None
        waiter = asyncio.ensure_future(node.wait_next_event())
        await asyncio.sleep(0.05)
        assert not waiter.done()
        await node.stop()
        with pytest.raises(tern.TernError.Stopped):
            await asyncio.wait_for(waiter, 5)

    run(go())


async def sync_all(*nodes):
    for n in nodes:
        await n.sync(None)


async def next_events(node, want, devnet, others, limit=60):
    """Collects events until one of kind `want` arrives, acknowledging each after it is
    handled; mines and syncs between waits."""
    seen = []
    for _ in range(limit):
        p = await node.wait_next_event_timeout(timedelta(milliseconds=200))
        if p is None:
            devnet.mine(1)
            await sync_all(node, *others)
            continue
        seen.append(p.event)
        await node.event_handled(p.seq)
        if isinstance(p.event, want):
            return p.event, seen
    raise AssertionError(f"no {want.__name__} in {seen}")


def test_open_a_channel_and_resume_it_after_a_restart(tmp_path, devnet):
    async def go():
        lsp = await start(tmp_path, "lsp", devnet.url, 3, listen="127.0.0.1:0")
        phone = await start(tmp_path, "phone", devnet.url, 4)
        address = await phone.new_address()
        devnet.faucet(address, 500_000)
        devnet.mine(1)
        await sync_all(phone, lsp)
        balances = await phone.list_balances()
        assert balances.confirmed_sat == 500_000

        temp = await phone.open_channel(lsp.node_id(), lsp.listen_addr(), 200_000, 0, False)
        assert len(temp) == 64
        pending, _ = await next_events(phone, tern.Event.CHANNEL_PENDING, devnet, [lsp])
        channel_id = pending.channel_id
        assert pending.counterparty_node_id == lsp.node_id()

        # Restart the phone mid-open (funding broadcast, not confirmed): it resumes.
        await phone.stop()
        del phone
        phone = await start(tmp_path, "phone", devnet.url, 4)
        await phone.connect(lsp.node_id(), lsp.listen_addr())
        ready, _ = await next_events(phone, tern.Event.CHANNEL_READY, devnet, [lsp])
        assert ready.channel_id == channel_id
        _, _ = await next_events(lsp, tern.Event.CHANNEL_READY, devnet, [phone])

        [details] = await phone.list_channels()
        assert details.channel_id == channel_id
        assert details.state == tern.ChannelState.READY
        assert details.channel_value_sat == 200_000
        assert details.is_outbound
        # An anchor channel with a wallet coin left: a force close could be CPFP'd.
        assert details.anchors
        assert isinstance(details.fee_bump, tern.FeeBump.BUMPABLE), details.fee_bump
        assert details.fee_bump_words.startswith("fee can be bumped"), details.fee_bump_words
        assert (await phone.list_balances()).anchor_reserve_sat == 25_000
        # Handled events are not delivered again.
        left = [p.event for p in await phone.pending_events(100)]
        assert not any(
            isinstance(e, (tern.Event.CHANNEL_PENDING, tern.Event.CHANNEL_READY)) for e in left
        ), left
        after = await phone.list_balances()
        assert after.confirmed_sat + after.unconfirmed_sat < 300_000

        # A cooperative close through the bindings.
        await phone.close_channel(channel_id, None)
        closing, _ = await next_events(phone, tern.Event.CHANNEL_CLOSING, devnet, [lsp])
        assert closing.kind == tern.CloseKind.COOPERATIVE_LOCAL
        closed, _ = await next_events(phone, tern.Event.CHANNEL_CLOSED, devnet, [lsp])
        assert 190_000 < closed.claimed_sat < 200_000
        assert closed.kind == tern.CloseKind.COOPERATIVE_LOCAL
        # The books, to the satoshi: what the close paid is in the wallet.
        end = await phone.list_balances()
        assert end.confirmed_sat + end.unconfirmed_sat == (
            after.confirmed_sat + after.unconfirmed_sat + closed.claimed_sat
        )
        assert await phone.claimable_balances() == []
        await phone.stop()
        await lsp.stop()

    run(go())


def test_a_cancelled_wait_leaves_the_node_usable(tmp_path, devnet):
    async def go():
        node = await start(tmp_path, "c", devnet.url, 5)
        waiter = asyncio.ensure_future(node.wait_next_event())
        await asyncio.sleep(0.05)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert await node.wait_next_event_timeout(timedelta(milliseconds=20)) is None
        await node.stop()

    run(go())


def test_the_same_seed_is_the_same_node_and_words_give_a_wallet(tmp_path, devnet):
    async def go():
        a = await start(tmp_path, "s", devnet.url, 6)
        node_id = a.node_id()
        first = await a.new_address()
        await a.stop()
        a = await start(tmp_path, "s", devnet.url, 6)
        assert a.node_id() == node_id
        assert await a.new_address() != first
        await a.stop()
        words = "abandon " * 11 + "about"
        m = await tern.Node.start_with_mnemonic(
            config(tmp_path / "m", devnet.url), words, None
        )
        # BIP84's first receive address of the standard test mnemonic: the witness program of
        # BIP84's testnet vector tb1q6rz28mcfaxtmd6v789l9rrlrusdprr9pqcpvkl, in regtest's hrp.
        assert await m.new_address() == "bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pz3cppk"
        await m.stop()

    run(go())


def test_sync_and_peers(tmp_path, devnet):
    async def go():
        lsp = await start(tmp_path, "lp", devnet.url, 7, listen="127.0.0.1:0")
        phone = await start(tmp_path, "pp", devnet.url, 8)
        summary = await phone.sync(timedelta(seconds=10))
        assert summary.tip_height is not None and summary.tip_height >= 100
        assert summary.requests > 0
        assert phone.synced_height() == summary.tip_height
        await phone.connect(lsp.node_id(), lsp.listen_addr())
        for _ in range(100):
            if await phone.list_peers() == [lsp.node_id()]:
                break
            await asyncio.sleep(0.02)
        assert await phone.list_peers() == [lsp.node_id()]
        await phone.disconnect(lsp.node_id())
        for _ in range(50):
            if await phone.list_peers() == []:
                break
            await asyncio.sleep(0.02)
        assert await phone.list_peers() == []
        await phone.stop()
        await lsp.stop()

    run(go())


def test_a_manual_inbound_policy_asks_the_app(tmp_path, devnet):
    async def go():
        c = config(tmp_path / "ml", devnet.url, listen="127.0.0.1:0")
        c.inbound_policy = tern.InboundPolicy.MANUAL
        lsp = await tern.Node.start(c, bytes([9] * 32))
        phone = await start(tmp_path, "mp", devnet.url, 10)
        devnet.faucet(await phone.new_address(), 300_000)
        devnet.mine(1)
        await sync_all(phone, lsp)
        opening = asyncio.ensure_future(
            phone.open_channel(lsp.node_id(), lsp.listen_addr(), 100_000, 0, False)
        )
        request, _ = await next_events(lsp, tern.Event.OPEN_CHANNEL_REQUEST, devnet, [])
        assert request.counterparty_node_id == phone.node_id()
        assert request.channel_value_sat == 100_000
        await lsp.reject_channel(phone.node_id(), request.temporary_channel_id)
        temp = await asyncio.wait_for(opening, 30)
        failed, _ = await next_events(phone, tern.Event.CHANNEL_OPEN_FAILED, devnet, [])
        assert failed.temporary_channel_id == temp
        assert await phone.list_channels() == []
        # Its coins are spendable again.
        assert (await phone.list_balances()).locked_sat == 0
        await phone.stop()
        await lsp.stop()

    run(go())


def test_the_event_iterator_acknowledges_after_the_body_and_redelivers_otherwise(tmp_path, devnet):
    import tern_ln

    async def go():
        lsp = await start(tmp_path, "it-lsp", devnet.url, 20, listen="127.0.0.1:0")
        phone = await start(tmp_path, "it-phone", devnet.url, 21)
        await phone.connect(lsp.node_id(), lsp.listen_addr())
        # Left with `break` inside the body: not acknowledged, delivered again.
        async for first in tern_ln.events(phone, timedelta(milliseconds=100)):
            break
        assert isinstance(first, tern.Event.PEER_CONNECTED), first
        again = await phone.next_event()
        assert again is not None and again.event == first
        # Handled (the body returned, the next one asked for): acknowledged.
        seen = []
        async def take_two():
            async for e in tern_ln.events(phone, timedelta(milliseconds=100)):
                seen.append(e)
                if len(seen) == 1:
                    await phone.disconnect(lsp.node_id())
                else:
                    break
        await asyncio.wait_for(take_two(), 10)
        assert seen[0] == first
        left = [p.event for p in await phone.pending_events(10)]
        assert first not in left, left
        # The iterator ends when the node stops.
        await phone.stop()
        ended = [e async for e in tern_ln.events(phone, timedelta(milliseconds=50))]
        assert ended == []
        await lsp.stop()

    run(go())
