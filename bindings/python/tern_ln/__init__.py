"""Tern for Python: the generated bindings (module `tern`, a build output) plus the idioms.

`events(node)` is the node's event stream as an async iterator, delivered at least once: an
event is acknowledged (`event_handled`) only when the next one is asked for, that is after the
`async for` body that handled it returned; an event whose handling was cut short (the process
killed, the loop left with `break`, the task cancelled) is delivered again, also after a
restart. The iterator ends when the node stops.
"""

from datetime import timedelta

from tern import *  # noqa: F401,F403  (the generated API, re-exported)
import tern as _tern


async def events(node, slice=timedelta(seconds=1)):
    """Yields the node's events; acknowledges each once the consumer asks for the next."""
    while True:
        try:
            pending = await node.wait_next_event_timeout(slice)
        except _tern.TernError.Stopped:
            return
        if pending is None:
            continue
        yield pending.event
        await node.event_handled(pending.seq)
