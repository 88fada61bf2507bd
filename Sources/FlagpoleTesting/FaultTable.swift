import Foundation

/// The fault suite's table: each fault test adds one row — the fault, what was checked, the result,
/// and a figure — printed as it happens and appended to the file named by `FLAGPOLE_FAULT_TABLE`
/// (`./run test` prints that file at the end).
package enum FaultTable {
    private static let lock = NSLock()

    /// Adds a row. `passed` is what the test asserted; the test still fails by its own `#expect`s.
    package static func record(fault: String, checked: String, passed: Bool, figure: String) {
        func cell(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ") }
        let row = "| \(cell(fault)) | \(cell(checked)) | \(passed ? "pass" : "FAIL") | \(cell(figure)) |"
        lock.withLock {
            print("fault table: " + row)
            guard let path = ProcessInfo.processInfo.environment["FLAGPOLE_FAULT_TABLE"], !path.isEmpty else { return }
            let header = "| fault | what was checked | result | figure |\n|---|---|---|---|\n"
            if !FileManager.default.fileExists(atPath: path) {
                _ = FileManager.default.createFile(atPath: path, contents: Data(header.utf8))
            }
            if let handle = FileHandle(forWritingAtPath: path) {
                handle.seekToEndOfFile()
                handle.write(Data((row + "\n").utf8))
                try? handle.close()
            }
        }
    }

    /// Milliseconds with one decimal, for figures.
    package static func ms(_ d: Duration) -> String {
        let (s, atto) = d.components
        return String(format: "%.1f ms", Double(s) * 1000 + Double(atto) / 1e15)
    }
}
