import HTTPTypes
import NIOCore
import NIOHTTPTypes

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Answers `POST /ofrep/v1/evaluate/flags/{key}` on the event loop that read the request, inside
/// Hummingbird's channel pipeline (its `additionalChannelHandlers`), and hands every other
/// request on to Hummingbird's router.
///
/// An evaluation is in memory and takes microseconds, so the async route's costs dominate it: a
/// task resumed on Swift's cooperative pool for every request and a hop back to the event loop
/// to write. On 2 cores under 20,000 requests a second those hops were most of the p99. Here the
/// request is answered where it was read, with the same code the route runs
/// (``DaemonServer/earlyEvaluationAnswer(headers:key:)`` from the head: 401, 403, 413; then
/// ``DaemonServer/answerEvaluation(key:body:)``): same bodies, statuses, counters,
/// authentication and body limit.
///
/// Where the router's way matters, requests go to the router instead:
/// - **Order.** HTTP/1.1 answers requests in order. While a request handed to the router has not
///   been answered (the end of its response has not passed here), later ones go to the router too.
/// - **Backpressure.** While the connection is not writable (a client that sends without reading
///   its answers), requests go to the router, whose bounded buffers stop reading the socket.
/// - **Closing.** A request with `Connection: close`, and every request after it, goes to the
///   router, which closes the connection after answering. Once the server is shutting down
///   (`ChannelShouldQuiesceEvent`), likewise; a request half read when that arrives is answered
///   first, and the event is passed on after it, so that the router closes an idle connection.
///
/// One instance per connection (Hummingbird calls the `additionalChannelHandlers` closure for
/// every channel); it is confined to that channel's event loop.
final class OFREPFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    static let pathPrefix = "/ofrep/v1/evaluate/flags/"

    /// A single evaluation being read: answered at its end.
    private struct Pending {
        /// The flag key, percent-decoded.
        var key: String
        /// When the head arrived (for the latency histogram).
        var start: ContinuousClock.Instant
        var body: [UInt8] = []
        var tooLarge = false
    }

    private enum State {
        /// Between requests, or passing a request on to the router.
        case idle
        /// Reading a single evaluation this handler answers.
        case reading(Pending)
        /// Answered from its head already (401, 403, 413): the rest of the request is dropped.
        case discarding
    }

    private let server: DaemonServer
    private var state = State.idle
    /// Requests handed to the router whose response has not ended yet.
    private var forwarded = 0
    /// A request asked to close the connection, or the server is shutting down: the router answers
    /// everything from here on.
    private var routerOnly = false
    /// The shutdown event, held while a request this handler answers is half read.
    private var heldQuiesce: Any?
    /// The `Date` header for the second it was made in (Hummingbird's responses carry one too).
    private var date: (second: time_t, text: String) = (0, "")

    init(server: DaemonServer) {
        self.server = server
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (.head(let request), _):
            if !routerOnly, forwarded == 0, context.channel.isWritable, let rawKey = Self.singleEvaluationKey(request) {
                let key = DaemonServer.decodedKey(rawKey)
                let start = ContinuousClock.now
                if let early = server.earlyEvaluationAnswer(headers: request.headerFields, key: key) {
                    write(early, context: context)
                    server.counters.time(.evaluate, since: start)
                    state = .discarding
                } else {
                    state = .reading(Pending(key: key, start: start))
                }
            } else {
                if Self.asksToClose(request) { routerOnly = true }
                forwarded += 1
                context.fireChannelRead(data)
            }
        case (.body(let buffer), .reading(var pending)):
            if !pending.tooLarge {
                if pending.body.count + buffer.readableBytes > server.configuration.maxBodySize {
                    pending.tooLarge = true
                    pending.body = []
                } else {
                    pending.body.append(contentsOf: buffer.readableBytesView)
                }
            }
            state = .reading(pending)
        case (.end, .reading(let pending)):
            state = .idle
            write(server.answerEvaluation(key: pending.key, body: pending.tooLarge ? nil : pending.body), context: context)
            server.counters.time(.evaluate, since: pending.start)
            if let event = heldQuiesce {
                heldQuiesce = nil
                context.fireUserInboundEventTriggered(event)
            }
        case (.body, .discarding):
            break
        case (.end, .discarding):
            state = .idle
        case (.body, .idle), (.end, .idle):
            context.fireChannelRead(data)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            routerOnly = true
            if case .reading = state {
                heldQuiesce = event
                return
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Only the router's responses pass here; this handler's own go straight towards the socket.
        // The router also answers what it was never handed: a 400 for bytes that do not parse.
        if case .end = unwrapOutboundIn(data) { forwarded = max(0, forwarded - 1) }
        context.write(data, promise: promise)
    }

    private func write(_ answer: DaemonServer.Answer, context: ChannelHandlerContext) {
        // Counted before the answer leaves, so that whoever reads the answer sees the count.
        server.eventLoopAnswers.wrappingAdd(1, ordering: .relaxed)
        let body = context.channel.allocator.buffer(string: answer.body)
        var response = HTTPResponse(status: answer.status, headerFields: answer.headers)
        response.headerFields[.contentLength] = String(body.readableBytes)
        response.headerFields[.date] = currentDate()
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func currentDate() -> String {
        let now = time(nil)
        if now != date.second { date = (now, Self.httpDate(now)) }
        return date.text
    }

    /// `seconds` since the epoch as an HTTP date (IMF-fixdate): `Mon, 23 Nov 2026 06:56:13 GMT`.
    static func httpDate(_ seconds: time_t) -> String {
        var clock = seconds
        var parts = tm()
        gmtime_r(&clock, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }

    /// The `{key}` of a request this handler answers, as sent; nil for every other request.
    static func singleEvaluationKey(_ request: HTTPRequest) -> String? {
        guard request.method == .post, let path = request.path, path.hasPrefix(pathPrefix) else { return nil }
        var key = path.utf8.dropFirst(pathPrefix.utf8.count)
        if let query = key.firstIndex(of: UInt8(ascii: "?")) { key = key[..<query] }
        // An empty key or a deeper path is the router's to answer (404, or another route).
        guard !key.isEmpty, !key.contains(UInt8(ascii: "/")), !asksToClose(request) else { return nil }
        return String(Substring(key))
    }

    /// Whether the request asks to close the connection after its answer.
    static func asksToClose(_ request: HTTPRequest) -> Bool {
        request.headerFields[.connection].map { $0.lowercased().contains("close") } ?? false
    }
}
