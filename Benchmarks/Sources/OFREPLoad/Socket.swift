import Glibc

/// What a non-blocking `connect` did.
enum ConnectOutcome {
    case connected(Int32)
    /// The handshake goes on; the descriptor becomes writable when it ends (see `pendingError`).
    case inProgress(Int32)
    case failed(errno: Int32)
}

/// Opens a non-blocking TCP socket with TCP_NODELAY and starts connecting it to `address`.
func startConnecting(to address: SocketAddress) -> ConnectOutcome {
    let fd = socket(address.family, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return .failed(errno: errno) }
    var on: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
    var storage = address.storage
    let status = withUnsafePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, address.length) }
    }
    if status == 0 { return .connected(fd) }
    let code = errno
    if code == EINPROGRESS { return .inProgress(fd) }
    close(fd)
    return .failed(errno: code)
}

/// The outcome of a connect that was in progress: 0 when connected, else the errno.
func pendingError(_ fd: Int32) -> Int32 {
    var code: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length) == 0 else { return errno }
    return code
}

/// Connects to `address`, waiting up to `timeoutMilliseconds`; the socket stays non-blocking.
func connectNow(to address: SocketAddress, timeoutMilliseconds: Int32) throws(LoadError) -> Int32 {
    switch startConnecting(to: address) {
    case .connected(let fd):
        return fd
    case .failed(let code):
        throw LoadError("cannot connect to \(address) (\(errorText(code)))")
    case .inProgress(let fd):
        var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        let ready = poll(&entry, 1, timeoutMilliseconds)
        let code = ready == 0 ? ETIMEDOUT : ready < 0 ? errno : pendingError(fd)
        guard code == 0 else {
            close(fd)
            throw LoadError("cannot connect to \(address) (\(errorText(code)))")
        }
        return fd
    }
}
