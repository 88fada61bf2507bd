/// An incremental parser of the HTTP/1.x responses on one keep-alive connection that has one
/// request in flight: feed it bytes as they are read until it says `complete`.
///
/// Understands the status line, headers (names case-insensitively), a `Content-Length` body,
/// `Transfer-Encoding: chunked` bodies with their trailers, 1xx interim responses, and 204/304
/// without a body. A response framed by closing the connection cannot be used on a keep-alive
/// connection, and bytes after a complete response mean the server answered a request that was not
/// sent: both are errors.
struct HTTPResponseParser {
    enum Outcome: Equatable {
        case needMoreData
        /// `keepAlive` is false when the server will close the connection after this response.
        case complete(status: Int, keepAlive: Bool)
    }

    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    private enum State {
        case statusLine
        case headerLine
        case body(remaining: Int)
        case chunkSizeLine
        case chunkData(remaining: Int)
        /// The CRLF after a chunk's data.
        case chunkEnd
        case trailerLine
    }

    /// The longest status, header, chunk-size or trailer line accepted.
    private static let maximumLineLength = 16 * 1024

    private var state = State.statusLine
    /// The start of a line that a previous read ended in the middle of.
    private var partialLine: [UInt8] = []
    private var status = 0
    private var contentLength: Int?
    private var isChunked = false
    private var keepAlive = true

    /// Parses `bytes`, the next bytes read from the connection.
    mutating func parse(_ bytes: UnsafeRawBufferPointer) throws(ParseError) -> Outcome {
        var index = 0
        while index < bytes.count {
            switch state {
            case .body(let remaining), .chunkData(let remaining):
                let taken = min(remaining, bytes.count - index)
                index += taken
                if case .body = state {
                    state = .body(remaining: remaining - taken)
                    if remaining == taken { return try finish(atEndOf: bytes, index: index) }
                } else {
                    state = remaining == taken ? .chunkEnd : .chunkData(remaining: remaining - taken)
                }
            case .statusLine, .headerLine, .chunkSizeLine, .chunkEnd, .trailerLine:
                guard let lineEnd = endOfLine(in: bytes, from: index) else {
                    try keepPartialLine(bytes[index...])
                    return .needMoreData
                }
                let isComplete: Bool
                if partialLine.isEmpty {
                    isComplete = try parseLine(UnsafeRawBufferPointer(rebasing: bytes[index..<lineEnd]))
                } else {
                    var line = partialLine
                    line.append(contentsOf: bytes[index..<lineEnd])
                    partialLine.removeAll(keepingCapacity: true)
                    isComplete = try line.withUnsafeBytes { line in
                        Result { () throws(ParseError) in try parseLine(line) }
                    }.get()
                }
                index = lineEnd + 1
                if isComplete { return try finish(atEndOf: bytes, index: index) }
            }
        }
        return .needMoreData
    }

    /// The index of the next `\n` at or after `start`.
    private func endOfLine(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        var index = start
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\n") { return index }
            index += 1
        }
        return nil
    }

    private mutating func keepPartialLine(_ bytes: Slice<UnsafeRawBufferPointer>) throws(ParseError) {
        guard partialLine.count + bytes.count <= Self.maximumLineLength else {
            throw ParseError(description: "a response line is longer than \(Self.maximumLineLength) bytes")
        }
        partialLine.append(contentsOf: bytes)
    }

    /// Handles one line without its `\n`; returns true when it ends the response.
    private mutating func parseLine(_ rawLine: UnsafeRawBufferPointer) throws(ParseError) -> Bool {
        var line = rawLine
        if line.last == UInt8(ascii: "\r") { line = UnsafeRawBufferPointer(rebasing: line.dropLast()) }
        switch state {
        case .statusLine:
            if line.isEmpty { return false }  // tolerated before a status line (RFC 9112 2.2)
            try parseStatusLine(line)
            state = .headerLine
            return false
        case .headerLine:
            if line.isEmpty { return try endOfHead() }
            try parseHeader(line)
            return false
        case .chunkSizeLine:
            let size = try chunkSize(line)
            state = size == 0 ? .trailerLine : .chunkData(remaining: size)
            return false
        case .chunkEnd:
            guard line.isEmpty else { throw ParseError(description: "chunk data longer than its chunk size") }
            state = .chunkSizeLine
            return false
        case .trailerLine:
            return line.isEmpty
        case .body, .chunkData:
            preconditionFailure("not a line state")
        }
    }

    /// `HTTP/1.1 200 OK`
    private mutating func parseStatusLine(_ line: UnsafeRawBufferPointer) throws(ParseError) {
        guard line.count >= 12, line.equalsIgnoringCase("http/1.", prefixOnly: true), line[8] == UInt8(ascii: " "),
            let code = UnsafeRawBufferPointer(rebasing: line[9..<12]).decimalValue
        else {
            throw ParseError(description: "not an HTTP/1.x status line: '\(String(decoding: line.prefix(80), as: UTF8.self))'")
        }
        status = code
        keepAlive = line[7] != UInt8(ascii: "0")  // HTTP/1.0 closes unless it says keep-alive
        contentLength = nil
        isChunked = false
    }

    private mutating func parseHeader(_ line: UnsafeRawBufferPointer) throws(ParseError) {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
            throw ParseError(description: "a header line without ':': '\(String(decoding: line.prefix(80), as: UTF8.self))'")
        }
        let name = UnsafeRawBufferPointer(rebasing: line[..<colon])
        let valueBytes = UnsafeRawBufferPointer(rebasing: line[(colon + 1)...]).trimmingSpaces()
        var value: String { String(decoding: valueBytes, as: UTF8.self).lowercased() }
        if name.equalsIgnoringCase("content-length") {
            guard let length = valueBytes.decimalValue else {
                throw ParseError(description: "bad Content-Length '\(value)'")
            }
            contentLength = length
        } else if name.equalsIgnoringCase("transfer-encoding") {
            guard value.split(separator: ",").last?.trimmingASCIIWhitespace() == "chunked" else {
                throw ParseError(description: "Transfer-Encoding '\(value)' is not supported, only chunked")
            }
            isChunked = true
        } else if name.equalsIgnoringCase("connection") {
            let options = value.split(separator: ",").map { $0.trimmingASCIIWhitespace() }
            if options.contains("close") { keepAlive = false }
            if options.contains("keep-alive") { keepAlive = true }
        }
    }

    /// After the empty line that ends the head: true when the response has no body.
    private mutating func endOfHead() throws(ParseError) -> Bool {
        switch status {
        case 101:
            throw ParseError(description: "the server switched protocols (101)")
        case 100..<200:
            state = .statusLine  // an interim response; the real one follows
            return false
        case 204, 304:
            return true
        default:
            if isChunked {
                state = .chunkSizeLine
                return false
            }
            guard let contentLength else {
                throw ParseError(
                    description: "a \(status) response with neither Content-Length nor chunked encoding:"
                        + " its end would be the connection's, which keep-alive cannot use")
            }
            state = .body(remaining: contentLength)
            return contentLength == 0
        }
    }

    /// The hexadecimal size before any `;extension`.
    private func chunkSize(_ line: UnsafeRawBufferPointer) throws(ParseError) -> Int {
        let digits = line.prefix { $0 != UInt8(ascii: ";") }
        let text = String(decoding: digits, as: UTF8.self).trimmingASCIIWhitespace()
        guard let size = Int(text, radix: 16), size >= 0 else {
            throw ParseError(description: "bad chunk size '\(text)'")
        }
        return size
    }

    /// Returns `complete` and resets for the next response, which must not have started yet.
    private mutating func finish(atEndOf bytes: UnsafeRawBufferPointer, index: Int) throws(ParseError) -> Outcome {
        guard index == bytes.count else {
            throw ParseError(description: "\(bytes.count - index) bytes after a complete response, with no request in flight")
        }
        let outcome = Outcome.complete(status: status, keepAlive: keepAlive)
        state = .statusLine
        return outcome
    }
}

// Byte-level helpers, so that parsing a response allocates nothing.
extension UnsafeRawBufferPointer {
    /// ASCII case-insensitive comparison with a lowercase `name`, or with the start of the bytes
    /// when `prefixOnly`.
    fileprivate func equalsIgnoringCase(_ name: StaticString, prefixOnly: Bool = false) -> Bool {
        let length = name.utf8CodeUnitCount
        guard prefixOnly ? count >= length : count == length else { return false }
        let expected = UnsafeRawBufferPointer(start: name.utf8Start, count: length)
        for i in 0..<length {
            let byte = self[i]
            let lowercase = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
            if lowercase != expected[i] { return false }
        }
        return true
    }
}

extension UnsafeRawBufferPointer {
    /// Without leading and trailing spaces and tabs.
    fileprivate func trimmingSpaces() -> UnsafeRawBufferPointer {
        let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var start = 0
        var end = count
        while start < end, isSpace(self[start]) { start += 1 }
        while end > start, isSpace(self[end - 1]) { end -= 1 }
        return UnsafeRawBufferPointer(rebasing: self[start..<end])
    }

    /// The bytes as a non-negative decimal number; nil if empty, not all digits, or too long.
    fileprivate var decimalValue: Int? {
        guard !isEmpty, count <= 18 else { return nil }
        var value = 0
        for byte in self {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }
}

extension StringProtocol {
    fileprivate func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
