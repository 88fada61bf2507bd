import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The control side's outbound HTTP (Prometheus queries, alert webhooks): one AsyncHTTPClient for
/// the process, on the shared event loop group, whose connections are reused between requests.
///
/// - **Deadlines.** ``send(_:timeout:maxBodyBytes:)`` bounds the whole exchange — connecting,
///   the head and the body — by one deadline: a server that accepts and never answers, or answers
///   a byte a second, fails at the deadline, not later; one that refuses connections fails with
///   that reason.
/// - **No redirects.** A redirect is answered as it is (a 3xx status), never followed: an alert's
///   payload (and a Telegram bot token in its path) never goes to a host the project config does
///   not name, and a Prometheus URL that redirects is reported, not silently replaced.
/// - **Connections.** At most 4 per host (soft limit), idle ones closed after 60 s.
enum ControlHTTP {
    /// The client. Never shut down: it lives as long as the process (like `HTTPClient.shared`).
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 4)
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// An answer, its body read whole.
    struct Answer: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    /// Why a request got no answer. Its description never holds the URL (which may carry a token).
    enum Failure: Error, Sendable, CustomStringConvertible {
        /// The deadline passed first.
        case timedOut(Duration)
        /// Connecting or the exchange failed; the reason names no URL.
        case failed(String)

        var description: String {
            switch self {
            case .timedOut(let d): "timed out after \(d)"
            case .failed(let why): "failed (\(why))"
            }
        }
    }

    /// Sends `request` and reads its answer, all within `timeout`; a body larger than
    /// `maxBodyBytes` is cut there.
    static func send(_ request: HTTPClientRequest, timeout: Duration, maxBodyBytes: Int = 1 << 20) async throws(Failure) -> Answer {
        let deadline = ContinuousClock.now + timeout
        let nanos = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        do {
            // The client's deadline covers connecting and the head (a refused connection is
            // reported as such, not as a timeout)…
            let response = try await client.execute(request, deadline: .now() + .nanoseconds(nanos))
            // …and this one the body: a server that sends its head and then stalls.
            let body = try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
                group.addTask {
                    var body: [UInt8] = []
                    for try await buffer in response.body {
                        body.append(contentsOf: buffer.readableBytesView.prefix(max(0, maxBodyBytes - body.count)))
                        if body.count >= maxBodyBytes { break }
                    }
                    return body
                }
                group.addTask {
                    try await Task.sleep(until: deadline, clock: .continuous)
                    return nil
                }
                defer { group.cancelAll() }
                guard let body = try await group.next()! else { throw Failure.timedOut(timeout) }
                return body
            }
            return Answer(status: Int(response.status.code), headers: response.headers, body: body)
        } catch let failure as Failure {
            throw failure
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .connectTimeout || error == .readTimeout {
            throw .timedOut(timeout)
        } catch {
            throw .failed(reason(error))
        }
    }

    /// A short reason for a transport error, without the URL.
    private static func reason(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return "\(error)" }
        if let error = error as? IOError { return "\(error.description)" }
        // NIOConnectionError and friends name host and port, never a path or a query.
        let text = "\(error)"
        return text.count > 200 ? String(text.prefix(200)) + "…" : text
    }

    /// `url` without its user and password, and those as a Basic `Authorization` value (nil
    /// without a user).
    static func splitCredentials(_ url: URL) -> (url: URL, authorization: String?) {
        guard let user = url.user, var components = URLComponents(url: url, resolvingAgainstBaseURL: false) else { return (url, nil) }
        let password = url.password ?? ""
        components.user = nil
        components.password = nil
        let plain = (user.removingPercentEncoding ?? user) + ":" + (password.removingPercentEncoding ?? password)
        return (components.url ?? url, "Basic " + Data(plain.utf8).base64EncodedString())
    }
}
