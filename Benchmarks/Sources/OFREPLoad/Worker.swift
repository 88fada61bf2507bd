import Glibc

/// What one worker measured; merged over the workers at the end.
struct Tally {
    /// Nanoseconds from when each recorded request was due (or sent, if earlier) to its complete
    /// response.
    var latencies: [Int64] = []
    /// Nanoseconds from each recorded request's write to its complete response.
    var serviceTimes: [Int64] = []
    var non2xx = 0
    /// Connections that failed or closed with a request in flight, and failed connects.
    var socketErrors = 0
    /// Recorded requests still unanswered when the drain time after the run ran out.
    var timeouts = 0
    /// Recorded requests in flight on a connection that failed or was closed before the answer.
    var lost = 0
    /// Connections opened again after the server closed them.
    var reconnects = 0

    mutating func merge(_ other: Tally) {
        latencies += other.latencies
        serviceTimes += other.serviceTimes
        non2xx += other.non2xx
        socketErrors += other.socketErrors
        timeouts += other.timeouts
        lost += other.lost
        reconnects += other.reconnects
    }
}

/// One keep-alive connection with at most one request in flight.
struct Connection {
    enum State {
        /// Closed; opened again at `retryAt`.
        case disconnected(retryAt: Int64)
        case connecting
        case idle
        /// The request is partly written.
        case writing(written: Int)
        case awaitingResponse
    }

    var fd: Int32 = -1
    var state = State.disconnected(retryAt: 0)
    /// When the next request is due (open loop).
    var nextDue: Int64
    /// When the request in flight was due.
    var due: Int64 = 0
    /// When the request in flight was written.
    var sentAt: Int64 = 0
    var parser = HTTPResponseParser()

    var hasRequestInFlight: Bool {
        switch state {
        case .writing, .awaitingResponse: true
        default: false
        }
    }
}

/// One generator thread: its connections, one epoll set, and what it measured.
///
/// A worker is used by one thread at a time: `main` makes it, hands it to the thread that calls
/// `run()`, and reads `tally` only after joining that thread.
final class Worker {
    private let request: [UInt8]
    private let address: SocketAddress
    private let schedule: Schedule
    private let poller: Poller
    private var connections: [Connection] = []
    private let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    private(set) var tally = Tally()

    /// How long a connection waits before it connects again after a failed connect.
    private static let reconnectDelay: Int64 = 10_000_000

    /// `sockets` are connected already; their global connection indices are `indices`.
    init(
        request: [UInt8], address: SocketAddress, schedule: Schedule, sockets: [Int32], indices: [Int],
        totalConnections: Int, expectedRequests: Int
    ) throws(LoadError) {
        self.request = request
        self.address = address
        self.schedule = schedule
        poller = try Poller()
        for (fd, index) in zip(sockets, indices) {
            var connection = Connection(nextDue: schedule.firstSend(connection: index, of: totalConnections))
            connection.fd = fd
            connection.state = .idle
            poller.add(fd, token: connections.count, interest: Poller.readable)
            connections.append(connection)
        }
        tally.latencies.reserveCapacity(expectedRequests)
        tally.serviceTimes.reserveCapacity(expectedRequests)
    }

    deinit {
        readBuffer.deallocate()
        for connection in connections where connection.fd >= 0 { close(connection.fd) }
    }

    /// Sends and receives until `schedule.end`; then sends what fell due before the end but is
    /// still unsent (a connection behind its schedule) and waits for every answer, until the drain
    /// deadline. What is still unanswered or unsent then counts as timeouts, so a stall near the
    /// end cannot drop its slowest requests from the figures.
    func run() {
        while true {
            let now = monotonicNanoseconds()
            guard now < schedule.drainDeadline else { break }
            let wakeAt = sendWhatIsDue(now: now)
            if now >= schedule.end, !connections.contains(where: { $0.hasRequestInFlight || owesRequest($0) }) { break }
            poller.wait(until: wakeAt) { index, events in handle(events, on: index) }
        }
        tally.timeouts = connections.count(where: { $0.hasRequestInFlight && $0.due >= schedule.measuredStart })
            + connections.reduce(0) { $0 + unsentRecorded($1) }
    }

    /// Whether the connection has a request due before the end that it has not sent (open loop).
    private func owesRequest(_ connection: Connection) -> Bool {
        guard schedule.interval != nil else { return false }
        return connection.nextDue < schedule.end
    }

    /// How many requests due in the measured time the connection never sent (open loop).
    private func unsentRecorded(_ connection: Connection) -> Int {
        guard let interval = schedule.interval, connection.nextDue < schedule.end else { return 0 }
        let first = max(connection.nextDue, schedule.measuredStart)
        guard first < schedule.end else { return 0 }
        // Due times from nextDue on, every interval, before the end; those from measuredStart on.
        let all = (schedule.end - 1 - connection.nextDue) / interval + 1
        let unrecorded = connection.nextDue >= schedule.measuredStart ? 0 : (schedule.measuredStart - 1 - connection.nextDue) / interval + 1
        return Int(all - unrecorded)
    }

    /// Sends on each idle connection whose request is due, reconnects closed ones whose time has
    /// come, and returns when the next of them is due. Open loop: only requests due before the end
    /// are sent, even after it. Closed loop: nothing is sent after the end.
    private func sendWhatIsDue(now: Int64) -> Int64 {
        var wakeAt = now < schedule.end ? schedule.end : schedule.drainDeadline
        for index in connections.indices {
            switch connections[index].state {
            case .idle:
                guard let interval = schedule.interval else {
                    if now < schedule.end { send(on: index, due: now) }
                    continue
                }
                let due = connections[index].nextDue
                if due >= schedule.end {
                    continue  // its last request of the run is sent
                } else if due - schedule.sendAhead <= now {
                    connections[index].nextDue += interval
                    send(on: index, due: due)
                } else {
                    wakeAt = min(wakeAt, due - schedule.sendAhead)
                }
            case .disconnected(let retryAt):
                guard now < schedule.end else { continue }
                if retryAt <= now {
                    reconnect(index, now: now)
                    if case .idle = connections[index].state { wakeAt = now }  // connected at once: send next pass
                } else {
                    wakeAt = min(wakeAt, retryAt)
                }
            case .connecting, .writing, .awaitingResponse:
                break
            }
        }
        return wakeAt
    }

    private func send(on index: Int, due: Int64) {
        connections[index].due = due
        connections[index].sentAt = monotonicNanoseconds()
        connections[index].state = .writing(written: 0)
        write(on: index, resumed: false)
    }

    /// Writes the rest of the request. When the socket buffer is full, it watches for writability
    /// and is called again with `resumed`.
    private func write(on index: Int, resumed: Bool) {
        guard case .writing(var written) = connections[index].state else { return }
        let fd = connections[index].fd
        while written < request.count {
            let count = request.withUnsafeBytes { bytes in
                Glibc.send(fd, bytes.baseAddress! + written, bytes.count - written, Int32(MSG_NOSIGNAL))
            }
            if count >= 0 {
                written += count
            } else if errno == EAGAIN {
                connections[index].state = .writing(written: written)
                poller.modify(fd, token: index, interest: Poller.readable | Poller.writable)
                return
            } else if errno != EINTR {
                lose(index, error: true)
                return
            }
        }
        if resumed { poller.modify(fd, token: index, interest: Poller.readable) }
        connections[index].state = .awaitingResponse
    }

    private func handle(_ events: UInt32, on index: Int) {
        switch connections[index].state {
        case .connecting:
            finishConnecting(index)
        case .writing:
            if events & (Poller.writable | Poller.error | Poller.hangUp) != 0 { write(on: index, resumed: true) }
            if events & Poller.readable != 0 { read(on: index) }
        case .idle, .awaitingResponse:
            read(on: index)
        case .disconnected:
            break
        }
    }

    /// Reads what the socket has and hands it to the connection's parser.
    private func read(on index: Int) {
        let fd = connections[index].fd
        while true {
            let count = Glibc.read(fd, readBuffer.baseAddress, readBuffer.count)
            if count > 0 {
                received(UnsafeRawBufferPointer(rebasing: readBuffer[..<count]), on: index)
                if count < readBuffer.count { return }
            } else if count == 0 {
                lose(index, error: connections[index].hasRequestInFlight)
                return
            } else {
                if errno == EAGAIN { return }
                if errno != EINTR {
                    lose(index, error: true)
                    return
                }
            }
        }
    }

    private func received(_ bytes: UnsafeRawBufferPointer, on index: Int) {
        guard connections[index].hasRequestInFlight else {
            fail("the server sent \(bytes.count) bytes with no request in flight")
        }
        let outcome: HTTPResponseParser.Outcome
        do {
            outcome = try connections[index].parser.parse(bytes)
        } catch {
            fail("bad response from \(address): \(error)")
        }
        guard case .complete(let status, let keepAlive) = outcome else { return }
        let now = monotonicNanoseconds()
        let connection = connections[index]
        if connection.due >= schedule.measuredStart {
            tally.latencies.append(now - min(connection.due, connection.sentAt))
            tally.serviceTimes.append(now - connection.sentAt)
            if !(200..<300).contains(status) { tally.non2xx += 1 }
        }
        connections[index].state = .idle
        if !keepAlive {
            lose(index, error: false)
        }
    }

    /// Closes the connection and opens it again at once; counts a socket error when `error`.
    private func lose(_ index: Int, error: Bool) {
        if connections[index].hasRequestInFlight, connections[index].due >= schedule.measuredStart { tally.lost += 1 }
        close(connections[index].fd)
        connections[index].fd = -1
        connections[index].parser = HTTPResponseParser()
        if error { tally.socketErrors += 1 }
        connections[index].state = .disconnected(retryAt: 0)
        let now = monotonicNanoseconds()
        if now < schedule.end { reconnect(index, now: now) }
    }

    private func reconnect(_ index: Int, now: Int64) {
        switch startConnecting(to: address) {
        case .connected(let fd):
            connections[index].fd = fd
            connections[index].state = .idle
            poller.add(fd, token: index, interest: Poller.readable)
            tally.reconnects += 1
        case .inProgress(let fd):
            connections[index].fd = fd
            connections[index].state = .connecting
            poller.add(fd, token: index, interest: Poller.writable)
        case .failed:
            tally.socketErrors += 1
            connections[index].state = .disconnected(retryAt: now + Self.reconnectDelay)
        }
    }

    private func finishConnecting(_ index: Int) {
        let fd = connections[index].fd
        guard pendingError(fd) == 0 else {
            close(fd)
            connections[index].fd = -1
            tally.socketErrors += 1
            connections[index].state = .disconnected(retryAt: monotonicNanoseconds() + Self.reconnectDelay)
            return
        }
        connections[index].state = .idle
        poller.modify(fd, token: index, interest: Poller.readable)
        tally.reconnects += 1
    }
}
