import FlagpoleCore
import Foundation
import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Testing

@testable import FlagpoleServer

@Suite("OFREPFastPath: single evaluations on the event loop, everything else to the router, in order", .timeLimit(.minutes(2)))
struct OFREPFastPathTests {
    static let guest = #"{"context": {"targetingKey": "u2", "email": "bob@example.com"}}"#

    static func post(_ path: String, _ headers: HTTPFields = [:]) -> HTTPRequest {
        HTTPRequest(method: .post, scheme: nil, authority: "localhost", path: path, headerFields: headers)
    }

    /// Writes a whole request into `channel`.
    static func send(_ request: HTTPRequest, body: String? = nil, into channel: EmbeddedChannel) throws {
        try channel.writeInbound(HTTPRequestPart.head(request))
        if let body { try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: body))) }
        try channel.writeInbound(HTTPRequestPart.end(nil))
    }

    /// The response the handler wrote, or nil when it wrote none.
    static func answer(from channel: EmbeddedChannel) throws -> (head: HTTPResponse, body: String)? {
        guard case .head(let head)? = try channel.readOutbound(as: HTTPResponsePart.self) else { return nil }
        var body = ""
        while let part = try channel.readOutbound(as: HTTPResponsePart.self) {
            switch part {
            case .body(let buffer): body += String(buffer: buffer)
            case .end: return (head, body)
            case .head: Issue.record("a second head before the end")
            }
        }
        Issue.record("no end of the response")
        return (head, body)
    }

    /// The parts handed on to the router.
    static func forwarded(from channel: EmbeddedChannel) throws -> [HTTPRequestPart] {
        var parts: [HTTPRequestPart] = []
        while let part = try channel.readInbound(as: HTTPRequestPart.self) { parts.append(part) }
        return parts
    }

    @Test("a single evaluation is answered in the pipeline with the router's body, Content-Length and Date; nothing reaches the router")
    func answersInPlace() async throws {
        try await ServerFixture.with { fixture, client in
            let channel = EmbeddedChannel(handler: OFREPFastPath(server: fixture.server))
            try Self.send(Self.post("/ofrep/v1/evaluate/flags/color", [.contentType: "application/json"]), body: Self.guest, into: channel)
            let answer = try #require(try Self.answer(from: channel))
            #expect(try Self.forwarded(from: channel).isEmpty)
            #expect(fixture.server.eventLoopAnswers.load(ordering: .relaxed) == 1)
            #expect(answer.head.status == .ok)
            #expect(answer.head.headerFields[.contentType] == "application/json")
            #expect(answer.head.headerFields[.contentLength] == String(answer.body.utf8.count))
            #expect(answer.head.headerFields[.date]?.hasSuffix(" GMT") == true)
            let routed = try await client.post("/ofrep/v1/evaluate/flags/color", Self.guest)
            #expect(answer.body == routed.text)

            // 404 and a query string: still answered here, with the key without the query.
            try Self.send(Self.post("/ofrep/v1/evaluate/flags/nope?x=1"), body: Self.guest, into: channel)
            let missing = try #require(try Self.answer(from: channel))
            #expect(missing.head.status == .notFound)
            #expect(try JSONParser.parse(missing.body)["key"] == "nope")

            // A body in several parts is read whole.
            let staff = #"{"context": {"targetingKey": "u1", "email": "ann@flagpole.dev"}}"#
            try channel.writeInbound(HTTPRequestPart.head(Self.post("/ofrep/v1/evaluate/flags/new-checkout")))
            for piece in [staff.prefix(10), staff.dropFirst(10).prefix(20), staff.dropFirst(30)] {
                try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: String(piece))))
            }
            try channel.writeInbound(HTTPRequestPart.end(nil))
            #expect(try JSONParser.parse(try #require(try Self.answer(from: channel)).body)["value"] == true)
            _ = try channel.finish()
        }
    }

    @Test("401 and a Content-Length past the limit are answered from the head; the body is dropped, the next request served")
    func answersFromTheHead() async throws {
        let tokens = try AccessTokens(fileContents: "reader-token-0123456789 evaluate", path: "tokens.txt")
        try await ServerFixture.with(tokens: tokens, maxBodySize: 100) { fixture, _ in
            let channel = EmbeddedChannel(handler: OFREPFastPath(server: fixture.server))
            try channel.writeInbound(HTTPRequestPart.head(Self.post("/ofrep/v1/evaluate/flags/color")))
            #expect(try Self.answer(from: channel)?.head.status == .unauthorized, "answered before the body")
            try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: Self.guest)))
            try channel.writeInbound(HTTPRequestPart.end(nil))

            let reader: HTTPFields = [.authorization: "Bearer reader-token-0123456789"]
            var big = reader
            big[.contentLength] = "5000"
            try channel.writeInbound(HTTPRequestPart.head(Self.post("/ofrep/v1/evaluate/flags/color", big)))
            let tooLarge = try #require(try Self.answer(from: channel))
            #expect(tooLarge.head.status == .contentTooLarge)
            #expect(tooLarge.body.contains("larger than 100 bytes"))
            try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: String(repeating: "x", count: 5000))))
            try channel.writeInbound(HTTPRequestPart.end(nil))
            #expect(try Self.forwarded(from: channel).isEmpty)

            // Past the limit without a Content-Length: found while reading, answered at the end.
            try channel.writeInbound(HTTPRequestPart.head(Self.post("/ofrep/v1/evaluate/flags/color", reader)))
            for _ in 0..<3 { try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: String(repeating: "x", count: 60)))) }
            #expect(try Self.answer(from: channel) == nil)
            try channel.writeInbound(HTTPRequestPart.end(nil))
            #expect(try Self.answer(from: channel)?.head.status == .contentTooLarge)

            try Self.send(Self.post("/ofrep/v1/evaluate/flags/color", reader), body: Self.guest, into: channel)
            #expect(try Self.answer(from: channel)?.head.status == .ok)
            _ = try channel.finish()
        }
    }

    @Test("a connection that is not writable, and everything after Connection: close, goes to the router")
    func routerWhenItMatters() async throws {
        try await ServerFixture.with { fixture, _ in
            let channel = EmbeddedChannel(handler: OFREPFastPath(server: fixture.server))
            channel.isWritable = false
            try Self.send(Self.post("/ofrep/v1/evaluate/flags/color"), body: Self.guest, into: channel)
            #expect(try Self.answer(from: channel) == nil)
            #expect(try Self.forwarded(from: channel).count == 3)
            try Self.endRouterResponse(on: channel)
            channel.isWritable = true

            try Self.send(Self.post("/ofrep/v1/evaluate/flags/color", [.connection: "close"]), body: Self.guest, into: channel)
            #expect(try Self.forwarded(from: channel).count == 3)
            try Self.endRouterResponse(on: channel)
            try Self.send(Self.post("/ofrep/v1/evaluate/flags/color"), body: Self.guest, into: channel)
            #expect(try Self.answer(from: channel) == nil, "after Connection: close the router answers (and closes)")
            #expect(try Self.forwarded(from: channel).count == 3)
            _ = try channel.finish()
        }
    }

    @Test("shutting down: a half-read evaluation is answered before the router hears of it; later requests go to the router")
    func quiesce() async throws {
        try await ServerFixture.with { fixture, _ in
            let events = EventRecorder()
            let channel = EmbeddedChannel(handlers: [OFREPFastPath(server: fixture.server), events])
            try channel.writeInbound(HTTPRequestPart.head(Self.post("/ofrep/v1/evaluate/flags/color")))
            try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: Self.guest)))
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            #expect(events.quiesceEvents == 0, "held while the request is half read")
            try channel.writeInbound(HTTPRequestPart.end(nil))
            #expect(try Self.answer(from: channel)?.head.status == .ok)
            #expect(events.quiesceEvents == 1, "passed on once answered")

            try Self.send(Self.post("/ofrep/v1/evaluate/flags/color"), body: Self.guest, into: channel)
            #expect(try Self.answer(from: channel) == nil)
            #expect(events.forwardedParts == 3)

            // Idle when it arrives: passed on at once.
            let idle = EventRecorder()
            let second = EmbeddedChannel(handlers: [OFREPFastPath(server: fixture.server), idle])
            second.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            #expect(idle.quiesceEvents == 1)
            _ = try channel.finish()
            _ = try second.finish()
        }
    }

    @Test("the Date header is an IMF-fixdate")
    func httpDate() {
        #expect(OFREPFastPath.httpDate(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(OFREPFastPath.httpDate(951_782_400 + 86_399) == "Tue, 29 Feb 2000 23:59:59 GMT")
        #expect(OFREPFastPath.httpDate(1_795_000_000) == "Wed, 18 Nov 2026 11:06:40 GMT")
    }

    /// The router's answer to the request it was handed, passing out through the handler.
    static func endRouterResponse(on channel: EmbeddedChannel) throws {
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        while try channel.readOutbound(as: HTTPResponsePart.self) != nil {}
    }

    @Test("other requests, closing requests and other paths go to the router untouched")
    func forwardsTheRest() async throws {
        try await ServerFixture.with { fixture, _ in
            let channel = EmbeddedChannel(handler: OFREPFastPath(server: fixture.server))
            let others: [HTTPRequest] = [
                HTTPRequest(method: .get, scheme: nil, authority: "localhost", path: "/readyz"),
                HTTPRequest(method: .get, scheme: nil, authority: "localhost", path: "/ofrep/v1/evaluate/flags/color"),
                Self.post("/ofrep/v1/evaluate/flags"),
                Self.post("/ofrep/v1/evaluate/flags/"),
                Self.post("/ofrep/v1/evaluate/flags/color/extra"),
                Self.post("/ofrep/v1/evaluate/flags/color", [.connection: "close"]),
            ]
            for request in others {
                try Self.send(request, body: Self.guest, into: channel)
                #expect(try Self.answer(from: channel) == nil, "\(request)")
                let parts = try Self.forwarded(from: channel)
                #expect(parts.count == 3, "\(request)")
                if case .head(let head)? = parts.first { #expect(head.path == request.path) } else { Issue.record("no head first") }
                // The router answers; its end passes through the handler on the way out.
                try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
                try channel.writeOutbound(HTTPResponsePart.end(nil))
                while try channel.readOutbound(as: HTTPResponsePart.self) != nil {}
            }
            _ = try channel.finish()
        }
    }

    @Test("while the router owes an answer, evaluations queue behind it: HTTP/1.1 answers in order")
    func keepsOrder() async throws {
        try await ServerFixture.with { fixture, _ in
            let channel = EmbeddedChannel(handler: OFREPFastPath(server: fixture.server))
            try Self.send(HTTPRequest(method: .get, scheme: nil, authority: "localhost", path: "/readyz"), into: channel)
            try Self.send(Self.post("/ofrep/v1/evaluate/flags/color"), body: Self.guest, into: channel)
            // /readyz is unanswered: the evaluation goes to the router too, after it.
            #expect(try Self.answer(from: channel) == nil)
            let paths = try Self.forwarded(from: channel).compactMap { part -> String? in
                if case .head(let head) = part { return head.path }
                return nil
            }
            #expect(paths == ["/readyz", "/ofrep/v1/evaluate/flags/color"])
            // The router answers both; the next evaluation is answered in place again.
            for _ in 0..<2 {
                try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
                try channel.writeOutbound(HTTPResponsePart.end(nil))
            }
            while try channel.readOutbound(as: HTTPResponsePart.self) != nil {}
            try Self.send(Self.post("/ofrep/v1/evaluate/flags/color"), body: Self.guest, into: channel)
            #expect(try Self.answer(from: channel)?.head.status == .ok)
            #expect(try Self.forwarded(from: channel).isEmpty)
            _ = try channel.finish()
        }
    }

    @Test("over a real connection, pipelined requests of both kinds come back in the order sent; evaluations are answered on the event loop")
    func pipelinedOverTCP() async throws {
        try await ServerFixture.with(.live) { fixture, client in
            let port = try #require(client.port)
            func post(_ key: String, _ body: String) -> String {
                "POST /ofrep/v1/evaluate/flags/\(key) HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
            }
            let pipelined = [
                "GET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n",
                post("color", Self.guest),
                "POST /ofrep/v1/evaluate/flags HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n",
                post("limit", Self.guest),
                post("nope", "{}"),
            ]
            // One evaluation alone, then five pipelined behind /readyz, then one alone again.
            let batches = [[post("ratio", Self.guest)], pipelined, [post("theme", Self.guest)]]
            let responses = try RawHTTPConnection.exchange(port: port, batches: batches.map { $0.joined() }, expecting: batches.map(\.count))
            #expect(responses.map(\.status) == [200, 200, 200, 200, 200, 404, 200])
            #expect(try JSONParser.parse(responses[0].body)["key"] == "ratio")
            #expect(responses[1].body.hasPrefix("client: ready"))
            #expect(try JSONParser.parse(responses[2].body)["key"] == "color")
            #expect(try JSONParser.parse(responses[3].body)["flags"]?.arrayValue?.isEmpty == false)
            #expect(try JSONParser.parse(responses[4].body)["value"] == 100)
            #expect(try JSONParser.parse(responses[5].body)["errorCode"] == "FLAG_NOT_FOUND")
            #expect(try JSONParser.parse(responses[6].body)["key"] == "theme")
            // The first and the last were answered on the event loop; those behind /readyz may not be.
            let answered = fixture.server.eventLoopAnswers.load(ordering: .relaxed)
            #expect(answered >= 2 && answered <= 5, "\(answered)")
        }
    }
}

/// Records what reaches the router's side of the pipeline.
final class EventRecorder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPRequestPart
    var quiesceEvents = 0
    var forwardedParts = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { forwardedParts += 1 }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent { quiesceEvents += 1 }
    }
}

/// A blocking HTTP/1.1 connection that writes bytes as given and reads responses with a
/// Content-Length: enough to pipeline requests, which HTTP clients do not.
enum RawHTTPConnection {
    struct Response {
        var status: Int
        var body: String
    }

    /// Writes each batch, then reads its responses before writing the next.
    static func exchange(port: Int, batches: [String], expecting counts: [Int]) throws -> [Response] {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawError("socket: errno \(errno)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw RawError("connect to 127.0.0.1:\(port): errno \(errno)") }
        var received: [UInt8] = []
        var responses: [Response] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        for (text, count) in zip(batches, counts) {
            let bytes = Array(text.utf8)
            var written = 0
            while written < bytes.count {
                let n = bytes[written...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
                guard n > 0 else { throw RawError("send: errno \(errno)") }
                written += n
            }
            let expected = responses.count + count
            while responses.count < expected {
                if let (response, used) = parse(received) {
                    responses.append(response)
                    received.removeFirst(used)
                    continue
                }
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                guard n > 0 else { throw RawError("connection ended or timed out after \(responses.count) of \(counts.reduce(0, +)) responses") }
                received += buffer[..<n]
            }
        }
        return responses
    }

    /// The first complete response in `bytes` and how many bytes it took.
    static func parse(_ bytes: [UInt8]) -> (Response, Int)? {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let end = (0...max(0, bytes.count - 4)).first(where: { bytes.count >= 4 && Array(bytes[$0..<$0 + 4]) == separator }) else { return nil }
        let head = String(decoding: bytes[..<end], as: UTF8.self)
        let lines = head.components(separatedBy: "\r\n")
        guard let status = lines.first?.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return nil }
        let length =
            lines.dropFirst().compactMap { line -> Int? in
                let parts = line.split(separator: ":", maxSplits: 1)
                guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
                return Int(parts[1].trimmingCharacters(in: .whitespaces))
            }.first ?? 0
        guard bytes.count >= end + 4 + length else { return nil }
        return (Response(status: status, body: String(decoding: bytes[(end + 4)..<(end + 4 + length)], as: UTF8.self)), end + 4 + length)
    }

    struct RawError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
