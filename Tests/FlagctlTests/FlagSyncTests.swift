import FlagpoleCore
import FlagpoleServer
import FlagpoleSync
import FlagpoleTesting
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Testing

@Suite("flagd sync: who may sync (SyncAccess)")
struct SyncAccessTests {
    static let tokens = try! AccessTokens(fileContents: "reader-token-0123456789 evaluate\nreporter-token-0123456789 report\n", path: "tokens")

    @Test("tokens as OFREP: none configured is open; missing or unknown is UNAUTHENTICATED; a token without 'evaluate' is PERMISSION_DENIED")
    func tokens() {
        #expect(SyncAccess(environment: "prod", tokens: .none).refusal(authorization: nil, apiKey: nil, selector: "") == nil)
        let access = SyncAccess(environment: "prod", tokens: Self.tokens)
        #expect(access.refusal(authorization: nil, apiKey: nil, selector: "")?.code == .unauthenticated)
        #expect(access.refusal(authorization: "Bearer nope-nope-nope-nope", apiKey: nil, selector: "")?.code == .unauthenticated)
        #expect(access.refusal(authorization: "Bearer reporter-token-0123456789", apiKey: nil, selector: "")?.code == .permissionDenied)
        #expect(access.refusal(authorization: "bearer reader-token-0123456789", apiKey: nil, selector: "") == nil)
        #expect(access.refusal(authorization: nil, apiKey: "reader-token-0123456789", selector: "") == nil)
    }

    @Test("a selector may name the daemon's environment only, and a wrong one says which environment is served")
    func selectors() {
        let access = SyncAccess(environment: "prod", tokens: .none)
        for ok in ["", "prod", "flagSetId=prod", " environment = prod "] { #expect(access.selectorProblem(ok) == nil, "\(ok)") }
        #expect(access.selectorProblem("flagSetId=test")?.contains("serves the environment 'prod'") == true)
        #expect(access.selectorProblem("source=file:flags.json")?.contains("flagSetId=prod") == true)
        #expect(access.refusal(authorization: nil, apiKey: nil, selector: "test")?.code == .notFound)
    }
}

@Suite("flagd sync over the wire: flagctl daemon's gRPC port", .serialized, .timeLimit(.minutes(3)))
struct FlagSyncWireTests {
    static let token = "sync-wire-token-0123456789"

    static func metadata(_ token: String?, selector: String? = nil) -> Metadata {
        var m = Metadata()
        if let token { m.addString("Bearer \(token)", forKey: "authorization") }
        if let selector { m.addString(selector, forKey: "flagd-selector") }
        return m
    }

    @Test(
        "FetchAllFlags and SyncFlags send the effective flags as one flagd document, again after `flagctl set`; tokens and selectors are checked; GetMetadata is empty"
    )
    func wire() async throws {
        try await RedisServer.withServer { server in
            let flags = FlagctlProcess.packageRoot.appendingPathComponent("flags").path
            let common = ["--env", "test", "--redis", server.url, "--flags", flags]
            #expect(try FlagctlProcess.run(["sync"] + common).status == 0)
            let daemon = try await DaemonProcess.start(common + ["--no-watcher"], environment: ["FLAGPOLE_DAEMON_TOKENS": Self.token])
            let port = try #require(daemon.syncPort)
            try await withGRPCClient(transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)) {
                grpc in
                let sync = Flagd_Sync_V1_FlagSyncService.Client(wrapping: grpc)
                // Refusals, with OFREP's words.
                for (metadata, code) in [
                    (Self.metadata(nil), RPCError.Code.unauthenticated), (Self.metadata("wrong-token-0123456789"), .unauthenticated),
                    (Self.metadata(Self.token, selector: "flagSetId=prod"), .notFound),
                ] {
                    await #expect {
                        _ = try await sync.fetchAllFlags(Flagd_Sync_V1_FetchAllFlagsRequest(), metadata: metadata)
                    } throws: { ($0 as? RPCError)?.code == code }
                }

                let all = try await sync.fetchAllFlags(
                    Flagd_Sync_V1_FetchAllFlagsRequest(), metadata: Self.metadata(Self.token, selector: "flagSetId=test"))
                let document = try JSONParser.parse(all.flagConfiguration)
                #expect(document["flags"]?["checkout-button-color"]?["defaultVariant"] == "blue")
                #expect(document["metadata"]?.objectValue != nil)
                let meta = try await sync.getMetadata(Flagd_Sync_V1_GetMetadataRequest(), metadata: Self.metadata(Self.token))
                #expect(meta.hasMetadata && meta.metadata.fields.isEmpty)

                // The stream: the document now, then after `flagctl set` the override applied.
                let documents = try await sync.syncFlags(Flagd_Sync_V1_SyncFlagsRequest(), metadata: Self.metadata(Self.token)) { response in
                    var seen: [JSONValue] = []
                    for try await message in response.messages {
                        seen.append(try JSONParser.parse(message.flagConfiguration))
                        if seen.count == 1 {
                            let set = try FlagctlProcess.run(["set", "checkout-button-color", "green"] + common)
                            #expect(set.status == 0, "\(set.stderr)")
                        } else if seen.last?["flags"]?["checkout-button-color"]?["defaultVariant"] == "green" {
                            break
                        }
                    }
                    return seen
                }
                #expect(documents.first == document)
                let last = try #require(documents.last?["flags"]?["checkout-button-color"])
                #expect(last["defaultVariant"] == "green" && last["targeting"] == nil && last["state"] == "ENABLED")
            }
            #expect(try await daemon.stop() == 0)
        }
    }
}
