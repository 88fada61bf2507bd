import FlagpoleCore
import FlagpoleRollout
import Foundation

extension FlagpoleClient {
    /// Flag files to serve when Redis is unreachable at start and there is no snapshot on disk:
    /// the environment's folder of a `flags/` tree, as `flagctl sync` reads it.
    public struct FlagFiles: Sendable, Hashable {
        /// The flags folder, holding `<environment>/*.yaml|*.yml|*.json` (searched recursively)
        /// and optionally the project config `flagpole.yaml`, whose fractional algorithm is used.
        public var directory: String

        /// Flag files in `directory` (for example `"flags"`).
        public init(directory: String) {
            self.directory = directory
        }

        /// Reads and merges the environment's files. Files with errors still give the flags that
        /// compile (a broken flag evaluates to the caller's default); `errors` says what is wrong.
        package func load(environment: String) -> (document: JSONValue, algorithm: FractionalAlgorithm, errors: [String])? {
            let root = URL(fileURLWithPath: directory)
            let folder = root.appendingPathComponent(environment)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                return nil
            }
            var algorithm = FractionalAlgorithm.v3
            for name in ProjectConfig.fileNames {
                let path = root.appendingPathComponent(name).path
                if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                    algorithm = ProjectConfigLoader.load(path: path, text: text).config.fractionalAlgorithm
                    break
                }
            }
            let paths = ((try? FileManager.default.subpathsOfDirectory(atPath: folder.path)) ?? [])
                .filter { sub in
                    let ext = sub.split(separator: ".").last.map { $0.lowercased() } ?? ""
                    return sub.contains(".") && ["yaml", "yml", "json"].contains(ext)
                        && !sub.split(separator: "/").contains { $0.hasPrefix(".") }
                }
                .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            var sources: [FlagSource] = []
            var errors: [String] = []
            for sub in paths {
                let path = folder.appendingPathComponent(sub).path
                if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                    sources.append(FlagSource(path: path, text: text))
                } else {
                    errors.append("\(path): cannot read the file")
                }
            }
            let load = FlagSetLoader.load(sources, options: FlagSetLoader.Options(fractionalAlgorithm: algorithm))
            errors += load.diagnostics.filter { $0.severity == .error }.map { "\($0)" }
            return (load.document, algorithm, errors)
        }
    }
}
