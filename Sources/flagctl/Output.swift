import ArgumentParser
import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import Foundation

/// Printing helpers shared by the commands.
enum Output {
    /// Prints rows as an aligned table with a header.
    static func table(_ header: [String], _ rows: [[String]]) {
        var widths = header.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
        print(line(header))
        for row in rows { print(line(row)) }
    }

    static func json(_ value: JSONValue) {
        print(value.prettyJSONString)
    }

    /// Writes a message to standard error.
    static func error(_ message: String) {
        FileHandle.standardError.write(Data(("flagctl: " + message + "\n").utf8))
    }

    static func time(_ unixSeconds: Int64) -> String {
        guard unixSeconds > 0 else { return "-" }
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd HH:mm:ss'Z'"
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: Date(timeIntervalSince1970: TimeInterval(unixSeconds)))
    }

    static func ago(_ unixSeconds: Int64, now: Int64 = Int64(Date().timeIntervalSince1970)) -> String {
        let s = max(0, now - unixSeconds)
        switch s {
        case ..<60: return "\(s)s ago"
        case ..<3600: return "\(s / 60)m ago"
        case ..<86400: return "\(s / 3600)h ago"
        default: return "\(s / 86400)d ago"
        }
    }
}

/// Runs a command body, turning Flagpole's errors into a clear message and exit code 1.
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as StoreError {
        Output.error(error.message)
        throw ExitCode.failure
    } catch let error as RedisError {
        Output.error(error.description)
        throw ExitCode.failure
    } catch let error as FlagDirectoryError {
        Output.error(error.description)
        throw ExitCode.failure
    }
}

/// `--reason` and `--actor`, recorded in the audit.
struct ChangeOptions: ParsableArguments {
    @Option(help: "Why: recorded in the audit trail.")
    var reason: String?

    @Option(help: ArgumentHelp("Who: recorded in the audit trail (default: user@host).", valueName: "name"))
    var actor: String?

    var resolvedActor: String { actor ?? Provenance.defaultActor }
}

extension GlobalOptions {
    /// A Redis client for the configured server.
    func makeClient() throws -> RedisClient {
        RedisClient(configuration: try redisConfiguration())
    }

    /// The control surface of the chosen environment.
    func control() throws -> EnvironmentControl {
        let env = try environment()
        do {
            return try EnvironmentControl(environment: env, client: try makeClient(), directory: FlagDirectory(root: flags))
        } catch let error as StoreError {
            throw ValidationError(error.message)
        }
    }
}
