import Logging
import Synchronization

/// Keeps every log entry written through ``logger``, for assertions.
public final class LogCapture: Sendable {
    public struct Entry: Sendable {
        public var level: Logger.Level
        public var message: String
        public var metadata: Logger.Metadata
    }

    public let entries = Mutex<[Entry]>([])

    public init() {}

    /// A logger at `debug` that records into this capture.
    public var logger: Logger {
        var logger = Logger(label: "flagpole.test") { _ in Handler(capture: self) }
        logger.logLevel = .debug
        return logger
    }

    /// Every entry, one a line: level, message, metadata.
    public var text: String { entries.withLock { $0.map { "\($0.level) \($0.message) \($0.metadata)" }.joined(separator: "\n") } }

    /// The messages of the warnings.
    public func warnings() -> [String] { entries.withLock { $0.filter { $0.level == .warning }.map(\.message) } }

    /// The warnings whose `flagpole.flag` metadata names `flag`.
    public func warnings(about flag: String) -> [Entry] {
        entries.withLock { $0.filter { $0.level == .warning && $0.metadata["flagpole.flag"] == .string(flag) } }
    }

    /// Whether an entry at `level` contains `text`.
    public func contains(_ text: String, level: Logger.Level = .warning) -> Bool {
        entries.withLock { $0.contains { $0.level == level && $0.message.contains(text) } }
    }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var all = metadata
            for (k, v) in event.metadata ?? [:] { all[k] = v }
            capture.entries.withLock { $0.append(Entry(level: event.level, message: "\(event.message)", metadata: all)) }
        }
    }
}
