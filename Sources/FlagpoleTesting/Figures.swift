import Foundation

/// Figures a test measures for the docs (a replay grid, two sources' error rates side by side):
/// written to `$FLAGPOLE_FIGURES/<name>.md` when that variable names a folder (`./run test` sets it
/// to `.flagpole/figures`), so that `scripts/update-figures` copies them into the docs' marked
/// blocks (`<!-- BEGIN figure:NAME -->`) instead of anyone typing numbers by hand. Printed either way.
package enum Figures {
    /// Writes (replaces) the figure `name`: text as it should appear in the docs (Markdown).
    package static func write(_ name: String, _ markdown: String) {
        print("figure \(name):\n\(markdown)")
        guard let folder = ProcessInfo.processInfo.environment["FLAGPOLE_FIGURES"], !folder.isEmpty else { return }
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = (folder as NSString).appendingPathComponent(name + ".md")
        try? Data(markdown.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
