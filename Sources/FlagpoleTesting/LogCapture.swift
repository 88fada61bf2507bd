import Logging
import Synchronization

/// Keeps every log entry written through ``logger``, for assertions.
package final class LogCapture: Sendable {
    package struct Entry: Sendable {
        package var level: Logger.Level
        package var message: String
        package var metadata: Logger.Metadata
    }

    package let entries = Mutex<[Entry]>([])

    package init() {}

    /// A logger at `debug` that records into this capture.
    package var logger: Logger {
        var logger = Logger(label: "flagpole.test") { _ in Handler(capture: self) }
        logger.logLevel = .debug
        return logger
    }

    /// Every entry, one a line: level, message, metadata.
    package var text: String { entries.withLock { $0.map { "\($0.level) \($0.message) \($0.metadata)" }.joined(separator: "\n") } }

    /// The messages of the warnings.
    package func warnings() -> [String] { entries.withLock { $0.filter { $0.level == .warning }.map(\.message) } }

    /// The warnings whose `flagpole.flag` metadata names `flag`.
    package func warnings(about flag: String) -> [Entry] {
        entries.withLock { $0.filter { $0.level == .warning && $0.metadata["flagpole.flag"] == .string(flag) } }
    }

    /// Whether an entry at `level` contains `text`.
    package func contains(_ text: String, level: Logger.Level = .warning) -> Bool {
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
