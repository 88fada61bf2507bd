import Synchronization

/// A one-way gate: closed until ``open()``, then open for good. Tasks wait for it with a timeout.
final class ReadinessGate: Sendable {
    private struct State {
        var isOpen = false
        var nextID: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        /// Waiters cancelled before they were registered.
        var cancelled: Set<UInt64> = []
    }

    private let state = Mutex(State())

    var isOpen: Bool { state.withLock { $0.isOpen } }

    func open() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            guard !s.isOpen else { return [] }
            s.isOpen = true
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        for w in waiters { w.resume() }
    }

    /// True when the gate opened within `timeout`; false on timeout or cancellation.
    func wait(timeout: Duration) async -> Bool {
        if isOpen { return true }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await self.waitOpen()
                return self.isOpen
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return self.isOpen
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first || isOpen
        }
    }

    private func waitOpen() async {
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.isOpen || s.cancelled.remove(id) != nil { return true }
                    s.waiters[id] = c
                    return false
                }
                if resumeNow { c.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
                if let w = s.waiters.removeValue(forKey: id) { return w }
                s.cancelled.insert(id)
                return nil
            }
            waiter?.resume()
        }
    }
}

/// Hands each update (a set of changed flag keys, or a ``FlagpoleClient/Update``) to every
/// current subscriber.
final class ChangeBroadcaster<Element: Sendable>: Sendable {
    private struct State {
        var nextID = 0
        var continuations: [Int: AsyncStream<Element>.Continuation] = [:]
        var finished = false
    }

    private let state = Mutex(State())

    func makeStream(bufferLimit: Int) -> AsyncStream<Element> {
        let (stream, continuation) = AsyncStream.makeStream(of: Element.self, bufferingPolicy: .bufferingNewest(bufferLimit))
        let id = state.withLock { s -> Int? in
            guard !s.finished else { return nil }
            s.nextID += 1
            s.continuations[s.nextID] = continuation
            return s.nextID
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.continuations.removeValue(forKey: id) }
        }
        return stream
    }

    func publish(_ element: Element) {
        let all = state.withLock { Array($0.continuations.values) }
        for c in all { c.yield(element) }
    }

    func finish() {
        let all = state.withLock { s -> [AsyncStream<Element>.Continuation] in
            s.finished = true
            defer { s.continuations = [:] }
            return Array(s.continuations.values)
        }
        for c in all { c.finish() }
    }
}
