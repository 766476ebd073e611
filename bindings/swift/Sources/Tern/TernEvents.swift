import Foundation

/// The node's events as an `AsyncSequence`, delivered at least once: the event an iteration
/// returned is acknowledged (`eventHandled`) only when the next one is asked for, that is
/// after the loop's body for it ran, so an event whose handling was cut short (the app killed,
/// the task cancelled) is delivered again — also after a restart. The sequence ends when the
/// node stops or the task is cancelled (uniffi's Swift async cannot cancel a Rust wait, so the
/// iterator waits in slices of `slice` and checks for cancellation between them).
public struct NodeEvents: AsyncSequence {
    public typealias Element = Event

    let node: Node
    let slice: TimeInterval

    public struct AsyncIterator: AsyncIteratorProtocol {
        let node: Node
        let slice: TimeInterval
        var handled: UInt64?

        public mutating func next() async throws -> Event? {
            if let seq = handled {
                try await node.eventHandled(seq: seq)
                handled = nil
            }
            while !Task.isCancelled {
                do {
                    if let pending = try await node.waitNextEventTimeout(timeout: slice) {
                        handled = pending.seq
                        return pending.event
                    }
                } catch TernError.Stopped {
                    return nil
                }
            }
            return nil
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(node: node, slice: slice, handled: nil)
    }
}

extension Node {
    /// The node's events (see `NodeEvents`); `slice` bounds how long a cancelled task waits.
    public func events(slice: TimeInterval = 1.0) -> NodeEvents {
        NodeEvents(node: self, slice: slice)
    }
}
