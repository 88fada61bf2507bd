import Foundation
import Hummingbird
import Logging
import Synchronization

/// A local HTTP server standing in for a webhook, Slack, Telegram or Prometheus: it keeps every
/// request and answers with what the test's `respond` says. Port 0 on 127.0.0.1: no fixed ports.
final class StandInServer: Sendable {
    struct Received: Sendable {
        var method: String
        var path: String
        /// The query string's items, percent-decoded.
        var query: [String: String]
        var body: String
        var contentType: String?
    }

    struct Reply: Sendable {
        var status: HTTPResponse.Status = .ok
        var body: String = "{}"
        /// Wait this long before answering (a hanging server), unless released.
        var delay: Duration? = nil
        /// A `Location` header (a redirect).
        var location: String? = nil
        /// A `Retry-After` header, in seconds.
        var retryAfter: Int? = nil
    }

    let received = Mutex<[Received]>([])
    let released = Atomic<Bool>(false)
    private let port = Mutex<Int?>(nil)
    private let task = Mutex<Task<Void, any Error>?>(nil)

    var requests: [Received] { received.withLock { $0 } }
    var count: Int { received.withLock { $0.count } }
    var url: String { "http://127.0.0.1:\(port.withLock { $0 } ?? 0)" }

    /// Starts a server answering every GET and POST with `respond(request, index)` (index counts
    /// from 0).
    static func start(_ respond: @escaping @Sendable (Received, Int) -> Reply) async throws -> StandInServer {
        let server = StandInServer()
        let router = Router()
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            let buffer = try await request.body.collect(upTo: 1 << 20)
            let body = String(decoding: buffer.readableBytesView, as: UTF8.self)
            let rawQuery = request.uri.query ?? ""
            var query: [String: String] = [:]
            for item in URLComponents(string: "http://x/?" + rawQuery)?.queryItems ?? [] { query[item.name] = item.value ?? "" }
            let received = Received(
                method: request.method.rawValue, path: request.uri.path, query: query, body: body,
                contentType: request.headers[.contentType])
            let index = server.received.withLock { list -> Int in
                list.append(received)
                return list.count - 1
            }
            let reply = respond(received, index)
            if let delay = reply.delay {
                let deadline = ContinuousClock.now + delay
                while ContinuousClock.now < deadline && !server.released.load(ordering: .relaxed) {
                    try await Task.sleep(for: .milliseconds(10))
                }
            }
            var headers: HTTPFields = [.contentType: "application/json"]
            if let location = reply.location { headers[.location] = location }
            if let retryAfter = reply.retryAfter { headers[.retryAfter] = String(retryAfter) }
            return Response(status: reply.status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: reply.body)))
        }
        router.get("**", use: handler)
        router.post("**", use: handler)
        var logger = Logger(label: "stand-in")
        logger.logLevel = .critical
        let ready = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                ready.continuation.yield(channel.localAddress?.port ?? 0)
                ready.continuation.finish()
            }, logger: logger)
        server.task.withLock { $0 = Task { try await app.runService(gracefulShutdownSignals: []) } }
        var iterator = ready.stream.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else { throw StandInError() }
        server.port.withLock { $0 = port }
        return server
    }

    struct StandInError: Error {}

    /// Releases hanging requests and stops the server.
    func stop() async {
        released.store(true, ordering: .relaxed)
        let task = self.task.withLock { $0 }
        task?.cancel()
        _ = try? await task?.value
    }

    /// Runs `body` with a server, stopping it afterwards.
    static func with<T>(
        _ respond: @escaping @Sendable (Received, Int) -> Reply = { _, _ in Reply() }, _ body: (StandInServer) async throws -> T
    ) async throws -> T {
        let server = try await start(respond)
        do {
            let result = try await body(server)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }
}
