#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Answers `POST /ofrep/v1/evaluate/flags/{key}` on the event loop that read the request, inside
/// Hummingbird's channel pipeline (its `additionalChannelHandlers`), and hands every other
/// request on to Hummingbird's router.
///
/// An evaluation is in memory and takes microseconds, so the async route's costs dominate it: a
/// task resumed on Swift's cooperative pool for every request and a hop back to the event loop
/// to write. On 2 cores under 20,000 requests a second those hops were most of the p99. Here the
/// request is answered where it was read, with the same code the route runs
/// (``DaemonServer/answerEvaluation(headers:rawKey:body:)``): same bodies, statuses, counters,
/// authentication and body limit.
///
/// HTTP/1.1 answers requests in order. While a request handed to Hummingbird has not been answered
/// (the end of its response has not passed here), later ones go to Hummingbird too, so a
/// pipelining client never gets an answer ahead of an earlier one. Requests asking to close the
/// connection also go to Hummingbird, which closes it after answering.
final class OFREPFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    static let pathPrefix = "/ofrep/v1/evaluate/flags/"

    /// A single evaluation being read: answered at its end.
    private struct Pending {
        var headers: HTTPFields
        var rawKey: String
        var body: [UInt8] = []
        var tooLarge = false
    }

    private let server: DaemonServer
    private var pending: Pending?
    /// The `Date` header for the second it was made in (Hummingbird's responses carry one too).
    private var date: (second: time_t, text: String) = (0, "")
    /// Requests handed to Hummingbird whose response has not ended yet.
    private var forwarded = 0

    init(server: DaemonServer) {
        self.server = server
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            if forwarded == 0, let rawKey = Self.singleEvaluationKey(request) {
                var next = Pending(headers: request.headerFields, rawKey: rawKey)
                if let length = request.headerFields[.contentLength].flatMap({ Int($0) }), length > server.configuration.maxBodySize {
                    next.tooLarge = true
                }
                pending = next
            } else {
                forwarded += 1
                context.fireChannelRead(data)
            }
        case .body(let buffer):
            guard pending != nil else { return context.fireChannelRead(data) }
            if !pending!.tooLarge {
                if pending!.body.count + buffer.readableBytes > server.configuration.maxBodySize {
                    pending!.tooLarge = true
                    pending!.body = []
                } else {
                    pending!.body.append(contentsOf: buffer.readableBytesView)
                }
            }
        case .end:
            guard let request = pending else { return context.fireChannelRead(data) }
            pending = nil
            let answer = server.answerEvaluation(headers: request.headers, rawKey: request.rawKey, body: request.tooLarge ? nil : request.body)
            write(answer, context: context)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Only Hummingbird's responses pass here; this handler's own go straight towards the socket.
        if case .end = unwrapOutboundIn(data) { forwarded = max(0, forwarded - 1) }
        context.write(data, promise: promise)
    }

    private func write(_ answer: DaemonServer.Answer, context: ChannelHandlerContext) {
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
        guard !key.isEmpty, !key.contains(UInt8(ascii: "/")) else { return nil }
        if let connection = request.headerFields[.connection], connection.lowercased().contains("close") { return nil }
        return String(Substring(key))
    }
}
