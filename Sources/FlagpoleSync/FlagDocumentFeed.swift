import Flagpole
import FlagpoleCore
import Synchronization

/// The newest effective flag document of the daemon's client, encoded once per change and handed
/// to every open SyncFlags stream. A stream that falls behind skips to the newest document: each
/// one is the whole flag set, so nothing is lost by skipping.
package final class FlagDocumentFeed: Sendable {
    /// One encoded flag set.
    package struct Document: Sendable, Hashable {
        /// The client's snapshot generation it was encoded from.
        package var generation: UInt64
        /// The store revision; nil when the client serves its disk copy's or the files' data.
        package var revision: Int64?
        /// The flagd JSON document (`flag_configuration`).
        package var json: String
    }

    private struct State {
        var current: Document?
        var nextID = 0
        var subscribers: [Int: AsyncStream<Document>.Continuation] = [:]
        var finished = false
    }

    private let state = Mutex(State())

    package init() {}

    /// The newest document; nil until the client has data (from Redis, its disk copy or the files).
    package var current: Document? { state.withLock { $0.current } }

    /// Encodes the client's effective flags when they are new and hands them to every stream.
    package func publish(_ flags: FlagpoleClient.EffectiveFlags) {
        guard flags.source != .defaults else { return }  // no data yet: nothing a provider could use
        if let current = state.withLock({ $0.current }), current.generation >= flags.generation { return }
        let document = Document(generation: flags.generation, revision: flags.revision, json: flags.document.jsonString)
        // Yielded under the lock, so that no stream gets an older document after a newer one.
        state.withLock { s in
            if let current = s.current, current.generation >= document.generation { return }
            s.current = document
            for subscriber in s.subscribers.values { subscriber.yield(document) }
        }
    }

    /// Follows `client` until it stops or the task is cancelled: publishes its flags now and after
    /// every snapshot it swaps in.
    package func follow(_ client: FlagpoleClient) async {
        let swaps = client.effectiveFlagsChanges()  // before the first read: no swap slips between
        publish(client.effectiveFlags())
        for await _ in swaps {
            publish(client.effectiveFlags())
        }
    }

    /// The current document (when there is one) and every newer one, newest only when the reader
    /// is behind. Ends at ``finish()``.
    package func documents() -> AsyncStream<Document> {
        let (stream, continuation) = AsyncStream.makeStream(of: Document.self, bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { s -> Int? in
            guard !s.finished else { return nil }
            s.nextID += 1
            s.subscribers[s.nextID] = continuation
            if let current = s.current { continuation.yield(current) }
            return s.nextID
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// The number of open streams.
    package var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    /// Ends every stream (the daemon is stopping); later ``documents()`` end at once.
    package func finish() {
        let subscribers = state.withLock { s -> [AsyncStream<Document>.Continuation] in
            s.finished = true
            defer { s.subscribers = [:] }
            return Array(s.subscribers.values)
        }
        for subscriber in subscribers { subscriber.finish() }
    }
}
