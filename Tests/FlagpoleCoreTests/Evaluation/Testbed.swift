import FlagpoleCore
import Foundation

/// The flagd conformance material in `../shared/flagd-testbed` (relative to the package root).
struct Testbed {
    struct NotFound: Error, CustomStringConvertible {
        var path: String
        var description: String { "flagd-testbed not found at \(path)" }
    }

    struct UnreadableFile: Error, CustomStringConvertible {
        var path: String
        var reason: String
        var description: String { "cannot read \(path): \(reason)" }
    }

    /// The testbed's root folder.
    let root: URL

    /// The package root, found from this file's path (Tests/FlagpoleCoreTests/Evaluation/…).
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // Evaluation
            .deletingLastPathComponent()  // FlagpoleCoreTests
            .deletingLastPathComponent()  // Tests
            .deletingLastPathComponent()
    }

    /// Finds the testbed, or throws "flagd-testbed not found at PATH".
    static func locate() throws -> Testbed {
        let root = packageRoot.appendingPathComponent("../shared/flagd-testbed").standardizedFileURL
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw NotFound(path: root.path)
        }
        return Testbed(root: root)
    }

    func url(_ relative: String) -> URL {
        root.appendingPathComponent(relative)
    }

    func text(_ relative: String) throws -> String {
        let u = url(relative)
        do {
            return try String(contentsOf: u, encoding: .utf8)
        } catch {
            throw UnreadableFile(path: u.path, reason: "\(error)")
        }
    }

    func json(_ relative: String) throws -> JSONValue {
        try JSONParser.parse(try text(relative))
    }

    /// The `.feature` files of a folder, sorted.
    func features(in folder: String) throws -> [String] {
        let names = try FileManager.default.contentsOfDirectory(atPath: url(folder).path)
        return names.filter { $0.hasSuffix(".feature") }.sorted().map { folder + "/" + $0 }
    }
}
