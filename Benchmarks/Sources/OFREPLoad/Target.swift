import Glibc

/// Where the requests go, and the bytes of the one request that every connection sends, built once.
struct Target {
    /// The URL's `host:port` as written, for the `Host` header.
    var authority: String
    var host: String
    var port: UInt16
    /// The path and query, `/` when the URL has none.
    var path: String
    var request: [UInt8]

    init(_ options: Options) throws(LoadError) {
        let url = options.url
        if url.lowercased().hasPrefix("https://") {
            throw .usage("--url \(url): https is not supported, only plain http")
        }
        guard url.lowercased().hasPrefix("http://") else {
            throw .usage("--url wants http://HOST:PORT/PATH, not '\(url)'")
        }
        let rest = url.dropFirst("http://".count)
        let pathStart = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        authority = String(rest[..<pathStart])
        path = rest[pathStart...].isEmpty ? "/" : String(rest[pathStart...])
        if path.hasPrefix("?") { path = "/" + path }
        (host, port) = try Self.hostAndPort(authority, url: url)
        request = Self.request(options, authority: authority, path: path)
    }

    /// `host`, `host:port`, `[v6]` or `[v6]:port`; port 80 when absent.
    private static func hostAndPort(_ authority: String, url: String) throws(LoadError) -> (String, UInt16) {
        var host = Substring(authority)
        var portText: Substring?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw .usage("--url \(url): unclosed '['") }
            let after = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .usage("--url \(url): junk after ']'") }
                portText = after.dropFirst()
            }
        } else if let colon = host.lastIndex(of: ":") {
            portText = host[host.index(after: colon)...]
            host = host[..<colon]
        }
        guard !host.isEmpty else { throw .usage("--url \(url) has no host") }
        guard let portText else { return (String(host), 80) }
        guard let port = UInt16(portText), port > 0 else { throw .usage("--url \(url): bad port '\(portText)'") }
        return (String(host), port)
    }

    private static func request(_ options: Options, authority: String, path: String) -> [UInt8] {
        let method = options.method ?? (options.body.isEmpty ? "GET" : "POST")
        var head = "\(method) \(path) HTTP/1.1\r\n"
        if !options.headers.contains(where: { $0.name.lowercased() == "host" }) {
            head += "Host: \(authority)\r\n"
        }
        for header in options.headers {
            head += "\(header.name): \(header.value)\r\n"
        }
        if !options.body.isEmpty || ["POST", "PUT", "PATCH"].contains(method.uppercased()) {
            head += "Content-Length: \(options.body.count)\r\n"
        }
        head += "\r\n"
        return Array(head.utf8) + options.body
    }
}

/// One resolved address of the target.
struct SocketAddress: CustomStringConvertible {
    var storage = sockaddr_storage()
    var length: socklen_t = 0
    var family: Int32 = 0
    /// `127.0.0.1:8080`, `[::1]:8080`.
    var description = ""

    /// The addresses `getaddrinfo` gives for `host`, in its order of preference.
    static func resolve(host: String, port: UInt16) throws(LoadError) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0 else {
            throw LoadError("cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var entry = list
        while let info = entry?.pointee {
            var address = SocketAddress()
            address.family = info.ai_family
            address.length = info.ai_addrlen
            withUnsafeMutableBytes(of: &address.storage) { storage in
                storage.copyMemory(from: UnsafeRawBufferPointer(start: info.ai_addr, count: Int(info.ai_addrlen)))
            }
            address.description = numericHost(info.ai_addr, info.ai_addrlen, family: info.ai_family, port: port)
            addresses.append(address)
            entry = info.ai_next
        }
        return addresses
    }

    private static func numericHost(
        _ address: UnsafePointer<sockaddr>, _ length: socklen_t, family: Int32, port: UInt16
    ) -> String {
        var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        guard getnameinfo(address, length, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST) == 0 else {
            return "?:\(port)"
        }
        let host = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
