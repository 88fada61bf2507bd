import Flagpole
import FlagpoleServer
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ServiceLifecycle

/// `flagctl daemon`'s gRPC port: ``FlagSyncService`` over plaintext HTTP/2, fed by the daemon's
/// client. A `Service`: it serves until a graceful shutdown, which ends every open stream (the
/// providers keep their flags and reconnect) and then stops listening.
package final class FlagSyncServer: Service, Sendable {
    package struct Configuration: Sendable {
        /// The address to listen on (the daemon's `--host`).
        package var host = "127.0.0.1"
        /// The TCP port; 0 picks a free one.
        package var port = 8015
        /// The environment the daemon serves (what a selector may name).
        package var environment: String
        /// The daemon's tokens (the same as OFREP's).
        package var tokens = AccessTokens.none

        package init(environment: String) {
            self.environment = environment
        }
    }

    let client: FlagpoleClient
    let configuration: Configuration
    let feed = FlagDocumentFeed()
    let logger: Logger
    let onListening: @Sendable (String, Int) async -> Void

    /// - Parameters:
    ///   - onListening: Called once the port is bound, with the host and the port (the bound one
    ///     when `port` is 0).
    package init(
        client: FlagpoleClient, configuration: Configuration, logger: Logger,
        onListening: @escaping @Sendable (String, Int) async -> Void = { _, _ in }
    ) {
        self.client = client
        self.configuration = configuration
        self.logger = logger
        self.onListening = onListening
    }

    /// The address as the transport takes it: `localhost` is 127.0.0.1, an address with `:` IPv6.
    static func socketAddress(host: String, port: Int) -> GRPCNIOTransportCore.SocketAddress {
        let h = host.trimmingCharacters(in: ["[", "]"])
        if h.lowercased() == "localhost" { return .ipv4(host: "127.0.0.1", port: port) }
        return h.contains(":") ? .ipv6(host: h, port: port) : .ipv4(host: h, port: port)
    }

    /// Serves until a graceful shutdown or cancellation.
    ///
    /// - Throws: ``DaemonServerError`` when the port cannot be bound.
    package func run() async throws {
        let place = "\(configuration.host):\(configuration.port)"
        // Listen only once the client has its first data: a provider given an empty document
        // would serve every flag as missing.
        await client.waitUntilReady(timeout: client.configuration.startupTimeout + .seconds(1))
        let transport = HTTP2ServerTransport.Posix(
            address: Self.socketAddress(host: configuration.host, port: configuration.port), transportSecurity: .plaintext)
        let service = FlagSyncService(
            feed: feed, access: SyncAccess(environment: configuration.environment, tokens: configuration.tokens), logger: logger)
        let server = GRPCServer(transport: transport, services: [service])

        enum Done { case served, other }
        do {
            try await withGracefulShutdownHandler {
                try await withThrowingTaskGroup(of: Done.self) { group in
                    group.addTask {
                        try await server.serve()
                        return .served
                    }
                    group.addTask {
                        await self.feed.follow(self.client)
                        return .other
                    }
                    group.addTask {
                        // When binding fails this fails too ("no listening address"), possibly before
                        // serve() throws the cause (the address in use): leave the error to serve().
                        guard let address = try? await transport.listeningAddress else { return .other }
                        let port = address.ipv4?.port ?? address.ipv6?.port ?? self.configuration.port
                        self.logger.info(
                            "Serving flagd sync (flagd.sync.v1)",
                            metadata: [
                                "flagpole.address": "\(self.configuration.host):\(port)", "flagpole.auth": "\(self.configuration.tokens.isEnabled)",
                            ])
                        await self.onListening(self.configuration.host, port)
                        return .other
                    }
                    // Until the server has stopped; then the feed stops following the client.
                    while let done = try await group.next() {
                        if case .served = done { break }
                    }
                    group.cancelAll()
                }
            } onGracefulShutdown: {
                // Streams never end by themselves: end them, so that the server can stop.
                self.feed.finish()
                server.beginGracefulShutdown()
            }
        } catch {
            feed.finish()
            let text = "\(error)"
            if text.contains("Address already in use") || text.contains("EADDRINUSE") || text.contains("errno: 98") {
                throw DaemonServerError(
                    "cannot listen for flagd sync on \(place): the address is in use; stop what holds it, pass another --sync-port, or --no-sync")
            }
            if error is CancellationError { return }
            throw DaemonServerError("cannot serve flagd sync on \(place): \(text); check --host and --sync-port")
        }
    }
}
