import Flagpole
import GRPCCore
import Logging
import SwiftProtobuf

/// `flagd.sync.v1.FlagSyncService`, as flagd serves it, over one environment's effective flags:
///
/// - `SyncFlags` streams the whole flag set as one flagd JSON document now and again after every
///   change the daemon's client applies (a `flagctl set`, a rollout step, a revert, a sync).
/// - `FetchAllFlags` answers the current document once.
/// - `GetMetadata` (deprecated in flagd) answers an empty struct: Flagpole has no static context
///   to add to evaluations, so a provider evaluates exactly what the Swift client evaluates.
///
/// Every call needs a token with the `evaluate` scope when the daemon has tokens (`authorization:
/// Bearer TOKEN` or `x-api-key` metadata), and a selector, if any, must name the daemon's
/// environment (``SyncAccess``).
package struct FlagSyncService: Flagd_Sync_V1_FlagSyncService.ServiceProtocol {
    let feed: FlagDocumentFeed
    let access: SyncAccess
    let logger: Logger

    package init(feed: FlagDocumentFeed, access: SyncAccess, logger: Logger) {
        self.feed = feed
        self.access = access
        self.logger = logger
    }

    /// The refusal for a request with this metadata and body selector; nil when it may sync.
    func refusal(_ metadata: Metadata, selector: String) -> RPCError? {
        let header = metadata[stringValues: "flagd-selector"].first(where: { _ in true })
        return access.refusal(
            authorization: metadata[stringValues: "authorization"].first(where: { _ in true }),
            apiKey: metadata[stringValues: "x-api-key"].first(where: { _ in true }),
            selector: header ?? selector)
    }

    package func syncFlags(
        request: ServerRequest<Flagd_Sync_V1_SyncFlagsRequest>, context: ServerContext
    ) async throws -> StreamingServerResponse<Flagd_Sync_V1_SyncFlagsResponse> {
        if let refusal = refusal(request.metadata, selector: request.message.selector) {
            logger.debug(
                "Refused a flagd sync stream", metadata: ["flagpole.peer": "\(context.remotePeer)", "flagpole.reason": "\(refusal.message)"])
            return StreamingServerResponse(error: refusal)
        }
        let providerID = request.message.providerID
        let documents = feed.documents()
        return StreamingServerResponse { writer in
            logger.debug(
                "flagd sync stream opened", metadata: ["flagpole.peer": "\(context.remotePeer)", "flagpole.provider": "\(providerID)"])
            var sent: UInt64 = 0
            for await document in documents where document.generation > sent {
                var response = Flagd_Sync_V1_SyncFlagsResponse()
                response.flagConfiguration = document.json
                try await writer.write(response)
                sent = document.generation
            }
            // The feed ended: the daemon is stopping. The provider keeps its flags and reconnects.
            return [:]
        }
    }

    package func fetchAllFlags(
        request: ServerRequest<Flagd_Sync_V1_FetchAllFlagsRequest>, context: ServerContext
    ) async throws -> ServerResponse<Flagd_Sync_V1_FetchAllFlagsResponse> {
        if let refusal = refusal(request.metadata, selector: request.message.selector) { return ServerResponse(error: refusal) }
        guard let document = feed.current else {
            return ServerResponse(
                error: RPCError(
                    code: .unavailable, message: "the daemon has no flags yet: Redis has not answered and there is no snapshot or flag file"))
        }
        var response = Flagd_Sync_V1_FetchAllFlagsResponse()
        response.flagConfiguration = document.json
        return ServerResponse(message: response)
    }

    package func getMetadata(
        request: ServerRequest<Flagd_Sync_V1_GetMetadataRequest>, context: ServerContext
    ) async throws -> ServerResponse<Flagd_Sync_V1_GetMetadataResponse> {
        if let refusal = refusal(request.metadata, selector: "") { return ServerResponse(error: refusal) }
        var response = Flagd_Sync_V1_GetMetadataResponse()
        response.metadata = Google_Protobuf_Struct()  // present and empty: no static context
        return ServerResponse(message: response)
    }
}
