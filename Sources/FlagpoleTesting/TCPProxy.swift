import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A TCP relay on a free loopback port in front of a real Redis, for faults the network causes:
/// `blackhole(subscribersOnly:)` stops relaying without closing anything — the connection is cut
/// silently, as a dead NAT entry or a half-open socket would — and `heal()` resumes.
///
/// Not a stand-in for Redis: every byte goes to and comes from the real server.
package final class TCPProxy: @unchecked Sendable {
    /// The proxy's port on 127.0.0.1.
    package let port: Int
    private let upstreamPort: Int
    private let listener: Int32
    private let lock = NSLock()
    private var stopped = false
    private var blackholeAll = false
    private var blackholeSubscribers = false
    /// Replies still to be lost (see ``loseNextReplies(_:)``).
    private var repliesToLose = 0
    private var repliesLost = 0
    private var connections: [Connection] = []
    /// Server → client bytes relayed per 10 ms while throttled (0: no limit).
    private var throttleBytes = 0

    private final class Connection: @unchecked Sendable {
        let client: Int32
        let server: Int32
        var isSubscriber = false
        init(client: Int32, server: Int32) {
            self.client = client
            self.server = server
        }
    }

    /// Starts relaying 127.0.0.1:`port` → 127.0.0.1:`upstreamPort`.
    package init(upstreamPort: Int) throws {
        self.upstreamPort = upstreamPort
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ProxyError("socket() failed: errno \(errno)") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            close(fd)
            throw ProxyError("bind/listen failed: errno \(errno)")
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        listener = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
        Thread { [self] in acceptLoop() }.start()
    }

    /// `redis://127.0.0.1:<port>` (plus whatever path/query the caller appends).
    package var url: String { "redis://127.0.0.1:\(port)" }

    /// Stops relaying: every connection (or only those that sent SUBSCRIBE/PSUBSCRIBE) stays open
    /// but nothing passes in either direction.
    package func blackhole(subscribersOnly: Bool) {
        lock.withLock {
            if subscribersOnly { blackholeSubscribers = true } else { blackholeAll = true }
        }
    }

    /// Relays replies (server → client, on connections that are not subscribers) at most
    /// `bytesPerTenMilliseconds` at a time, one chunk every 10 ms: a slow link, on which a large
    /// reply takes many reads that each arrive well within any timeout. 0 lifts the limit.
    package func throttle(bytesPerTenMilliseconds: Int) {
        lock.withLock { throttleBytes = max(0, bytesPerTenMilliseconds) }
    }

    /// Relays again.
    package func heal() {
        lock.withLock {
            blackholeAll = false
            blackholeSubscribers = false
        }
    }

    /// Makes the next `count` replies from the server (on connections that are not subscribers)
    /// vanish: the reply is read and thrown away and that connection is closed at once, so the
    /// server has carried the request out but the client never hears so — the fault that makes
    /// a naive retry count twice.
    package func loseNextReplies(_ count: Int = 1) {
        lock.withLock { repliesToLose += count }
    }

    /// How many replies ``loseNextReplies(_:)`` has thrown away so far.
    package var lostReplies: Int { lock.withLock { repliesLost } }

    /// Closes every relayed connection that is not a subscriber now, whatever is in flight.
    package func cutConnections() {
        lock.withLock {
            for c in connections where !c.isSubscriber {
                shutdown(c.client, Int32(SHUT_RDWR))
                shutdown(c.server, Int32(SHUT_RDWR))
            }
        }
    }

    /// How many relayed connections sent SUBSCRIBE or PSUBSCRIBE.
    package var subscriberConnections: Int { lock.withLock { connections.filter(\.isSubscriber).count } }

    /// Closes the listener and every relayed connection. Idempotent: file descriptors are
    /// touched only while still open and owned here (a second close could hit a descriptor number
    /// the process has since reused for another socket).
    package func stop() {
        lock.withLock {
            guard !stopped else { return }
            stopped = true
            shutdown(listener, Int32(SHUT_RDWR))
            for c in connections {
                shutdown(c.client, Int32(SHUT_RDWR))
                shutdown(c.server, Int32(SHUT_RDWR))
            }
        }
    }

    deinit { stop() }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if lock.withLock({ stopped }) {
                    close(listener)  // only here, once
                    return
                }
                continue
            }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = UInt16(upstreamPort).bigEndian
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let ok = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if ok != 0 {
                close(client)
                close(server)
                continue
            }
            let connection = Connection(client: client, server: server)
            let accepted = lock.withLock { () -> Bool in
                guard !stopped else { return false }
                connections.append(connection)
                return true
            }
            if !accepted {
                close(client)
                close(server)
                continue
            }
            Thread { [self] in relay(connection) }.start()
        }
    }

    private func isBlocked(_ c: Connection) -> Bool {
        lock.withLock { blackholeAll || (blackholeSubscribers && c.isSubscriber) || stopped }
    }

    private func relay(_ c: Connection) {
        defer {
            // Closed under the lock, after leaving the list, so stop() never shuts down a reused number.
            lock.withLock {
                connections.removeAll { $0 === c }
                close(c.client)
                close(c.server)
            }
        }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var fds = [pollfd(fd: c.client, events: Int16(POLLIN), revents: 0), pollfd(fd: c.server, events: Int16(POLLIN), revents: 0)]
        while !lock.withLock({ stopped }) {
            if isBlocked(c) {
                usleep(10_000)  // hold everything: nothing is read, so nothing is forwarded
                continue
            }
            fds[0].revents = 0
            fds[1].revents = 0
            let n = poll(&fds, 2, 50)
            if n < 0 { return }
            if n == 0 { continue }
            for (i, from) in [c.client, c.server].enumerated() where fds[i].revents != 0 {
                if isBlocked(c) { break }
                let to = from == c.client ? c.server : c.client
                let limit = from == c.server && !c.isSubscriber ? lock.withLock { throttleBytes } : 0
                let got = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, limit > 0 ? min(limit, $0.count) : $0.count) }
                if got <= 0 { return }
                if from == c.server, !c.isSubscriber {
                    let lose = lock.withLock { () -> Bool in
                        guard repliesToLose > 0 else { return false }
                        repliesToLose -= 1
                        repliesLost += 1
                        return true
                    }
                    if lose { return }  // the defer closes both sides: the reply is gone
                }
                if from == c.client, !c.isSubscriber {
                    let text = String(decoding: buffer[0..<got], as: UTF8.self).uppercased()
                    if text.contains("SUBSCRIBE") { lock.withLock { c.isSubscriber = true } }
                }
                var sent = 0
                while sent < got {
                    let w = buffer.withUnsafeBytes { write(to, $0.baseAddress! + sent, got - sent) }
                    if w <= 0 { return }
                    sent += w
                }
                if limit > 0 { usleep(10_000) }
            }
        }
    }
}

struct ProxyError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
