package io.github.ternln.tern

import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow

/**
 * The node's events as a cold [Flow], delivered at least once: each event is acknowledged
 * ([Node.eventHandled]) only after the collector's block for it returns, so an event whose
 * handling was cut short (the app killed, the collector cancelled) is delivered again — also
 * after a restart. One collector at a time; fan out after the acknowledgement with `shareIn`.
 * The flow completes when the node stops.
 */
fun Node.events(): Flow<Event> = flow {
    while (true) {
        val pending = try {
            waitNextEvent()
        } catch (e: TernException.Stopped) {
            break
        }
        emit(pending.event) // suspends until the collector has handled it
        eventHandled(pending.seq)
    }
}
