import FlagpoleTesting
import Foundation
import Testing

/// A webhook stand-in in Python (the tests' other stand-ins live in FlagpoleControlTests): it
/// answers every POST with 200 and appends the body, one line each, to a file.
private let webhookScript = #"""
    import http.server, sys
    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
            with open(sys.argv[1], 'ab') as f:
                f.write(body.replace(b'\n', b' ') + b'\n')
            self.send_response(200)
            self.send_header('Content-Type', 'application/json')
            self.end_headers()
            self.wfile.write(b'{}')
        def log_message(self, *args):
            pass
    server = http.server.HTTPServer(('127.0.0.1', 0), Hook)
    print('port', server.server_address[1], flush=True)
    server.serve_forever()
    """#

@Suite("flagctl daemon announces every change (the binary)", .timeLimit(.minutes(3)))
struct DaemonNotificationTests {
    @Test("a change by a flagctl that exits at once is announced once; one made while the daemon is down, once after its restart")
    func announcedOnceAcrossRestart() async throws {
        guard let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            Issue.record("python3 is missing: the webhook stand-in of this test needs it (scripts/install-deps.sh installs it)")
            return
        }
        try await RedisServer.withServer { server in
            let root = try await syncDaemonFlags(server)
            defer { try? FileManager.default.removeItem(at: root) }
            try """
            version: 1
            alerts:
              - name: team-hook
                type: webhook
                urlEnv: FLAGPOLE_TEST_HOOK
                environments: [test]
                notify: [prod]
            """.write(to: root.appendingPathComponent("flagpole.yaml"), atomically: true, encoding: .utf8)
            let received = root.appendingPathComponent("received.jsonl")
            let script = root.appendingPathComponent("hook.py")
            try webhookScript.write(to: script, atomically: true, encoding: .utf8)
            let hook = try BackgroundProcess(python, [script.path, received.path])
            defer { Task { await hook.stop() } }
            let (_, line) = try await hook.waitForLine(timeout: .seconds(20), "the webhook stand-in listens") { $0.hasPrefix("port ") }
            let url = "http://127.0.0.1:\(line.dropFirst(5))/hook"
            func lines() -> [String] {
                ((try? String(contentsOf: received, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            }
            let common = ["--env", "prod", "--redis", server.url, "--flags", root.path]
            let arguments = common + ["--interval", "200ms", "--console-url", "http://console.example/console"]
            var daemon = try await DaemonProcess.start(arguments, environment: ["FLAGPOLE_TEST_HOOK": url])
            #expect(daemon.stdout.contains("notifications to team-hook"), "\(daemon.stdout)")
            // Its first start begins at the end of the stream: the sync before it is not announced.
            try await waitUntil("the daemon starts announcing", timeout: .seconds(20), interval: .milliseconds(50)) {
                daemon.stderr.contains("starting at the end of the audit stream")
            }
            let set = try FlagctlProcess.run(["set", "checkout", "on", "--reason", "launch"] + common)
            #expect(set.status == 0, "\(set.stderr)")
            try await waitUntil("the set is announced", timeout: .seconds(20), interval: .milliseconds(50)) { lines().count >= 1 }
            #expect(try await daemon.stop() == 0)
            // Down: a change nobody announces yet.
            let disable = try FlagctlProcess.run(["disable", "checkout", "--reason", "errors"] + common)
            #expect(disable.status == 0, "\(disable.stderr)")
            daemon = try await DaemonProcess.start(arguments, environment: ["FLAGPOLE_TEST_HOOK": url])
            try await waitUntil("the change made while it was down is announced", timeout: .seconds(20), interval: .milliseconds(50)) {
                lines().count >= 2
            }
            let enable = try FlagctlProcess.run(["enable", "checkout"] + common)
            #expect(enable.status == 0, "\(enable.stderr)")
            try await waitUntil("the third change is announced", timeout: .seconds(20), interval: .milliseconds(50)) { lines().count >= 3 }
            #expect(try await daemon.stop() == 0)
            let documents = lines().map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(documents.count == 3, "each change once: \(lines())")
            #expect(documents.map { $0?["action"] as? String } == ["set", "disable", "enable"])
            #expect(documents[0]?["reason"] as? String == "launch" && documents[0]?["environment"] as? String == "prod")
            #expect((documents[0]?["links"] as? [String: String])?["checkout"] == "http://console.example/console/flags/checkout")
            #expect(Set(documents.compactMap { $0?["id"] as? String }).count == 3)
        }
    }
}
