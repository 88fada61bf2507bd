import FlagpoleCore
import FlagpoleRollout
import Foundation

/// A problem with the paths themselves (not their contents): a path that does not exist.
package struct FlagDirectoryError: Error, Sendable, CustomStringConvertible {
    /// What kind of problem.
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        /// The path does not exist.
        package static let notFound = Code(name: "notFound")
        /// The path exists but cannot be listed or read.
        package static let unreadable = Code(name: "unreadable")
        /// An environment that has no folder.
        package static let unknownEnvironment = Code(name: "unknownEnvironment")
        /// The code's name.
        package var description: String { name }
    }

    /// What kind of problem.
    package var code: Code
    /// The path concerned.
    package var path: String
    /// What went wrong, for people.
    package var message: String

    /// Creates an error.
    package init(code: Code, path: String, message: String) {
        self.code = code
        self.path = path
        self.message = message
    }

    /// `path: message`.
    package var description: String { "\(path): \(message)" }
}

/// The `flags/` folder of a project: one folder per environment (`flags/<env>/`, any number of
/// `*.yaml`, `*.yml` and `*.json` files, searched recursively and read in sorted order), plus the
/// project config (`flags/flagpole.yaml`, see ``ProjectConfig/fileNames``).
///
/// This type does the file I/O; ``FlagSetLoader`` and ``ProjectConfigLoader`` (pure) do the reading.
package struct FlagDirectory: Sendable {
    /// The folder's path, as given (relative paths stay relative, so diagnostics read `flags/prod/a.yaml`).
    package var root: String

    /// Creates a handle on a flags folder. Default: `flags` in the current directory.
    package init(root: String = "flags") {
        self.root = root
    }

    /// The extensions of flag files.
    package static let flagFileExtensions = ["yaml", "yml", "json"]

    /// Whether a path names a flag file by its extension.
    package static func isFlagFile(_ path: String) -> Bool {
        let ext = path.split(separator: ".").last.map { $0.lowercased() } ?? ""
        return path.contains(".") && flagFileExtensions.contains(ext)
    }

    /// The project config's path, if the folder holds one.
    package var configPath: String? {
        ProjectConfig.fileNames.map { Self.join(root, $0) }.first { Self.isRegularFile($0) }
    }

    /// The environment folders: the non-hidden subfolders, sorted by name.
    package func environmentNames() throws(FlagDirectoryError) -> [String] {
        try Self.contents(of: root).filter { Self.isDirectory(Self.join(root, $0)) }
    }

    /// The folder of an environment.
    package func environmentPath(_ name: String) -> String {
        Self.join(root, name)
    }

    /// The flag files of an environment, searched recursively, sorted by path.
    package func flagFiles(inEnvironment name: String) throws(FlagDirectoryError) -> [String] {
        let path = environmentPath(name)
        guard Self.isDirectory(path) else {
            throw FlagDirectoryError(code: .unknownEnvironment, path: path, message: "no environment folder \"\(name)\"")
        }
        return try Self.flagFiles(under: path)
    }

    /// Reads the project config; the default config (and no diagnostics) when there is no file.
    package func loadConfig() -> ProjectConfigLoad {
        guard let path = configPath else { return ProjectConfigLoad(path: nil, config: ProjectConfig(), diagnostics: []) }
        switch Self.readText(path) {
        case .success(let text): return ProjectConfigLoader.load(path: path, text: text, zones: SystemZoneDatabase.resolver())
        case .failure(let problem): return ProjectConfigLoad(path: path, config: ProjectConfig(), diagnostics: [problem])
        }
    }

    /// Reads, merges and validates one environment, with the project config's fractional algorithm.
    package func loadEnvironment(_ name: String) throws(FlagDirectoryError) -> FlagSetLoad {
        try loadEnvironment(name, options: FlagSetLoader.Options.checkingGuardPolicy(fractionalAlgorithm: loadConfig().config.fractionalAlgorithm))
    }

    /// Reads, merges and validates one environment.
    package func loadEnvironment(_ name: String, options: FlagSetLoader.Options) throws(FlagDirectoryError) -> FlagSetLoad {
        Self.load(files: try flagFiles(inEnvironment: name), options: options)
    }

    // MARK: Validation

    /// Validates flag files and project configs, the way `flagctl validate` does.
    ///
    /// Each path may be
    /// - a flags folder (it holds the project config, or only folders): the config and every
    ///   environment, and whether the config's environments match the folders;
    /// - an environment folder (it holds flag files): that environment;
    /// - a single file: the project config if it is named like one, else a flag set of its own.
    ///
    /// Unreadable files become diagnostics; only a path that does not exist throws. With `now`
    /// (Unix seconds), flags whose `metadata.expires` is past are warned about.
    package static func validate(paths: [String], now: Int64? = nil) throws(FlagDirectoryError) -> ValidationReport {
        var report = ValidationReport()
        for given in paths {
            var path = given
            while path.hasPrefix("./") && path.count > 2 { path.removeFirst(2) }
            guard FileManager.default.fileExists(atPath: path) else {
                throw FlagDirectoryError(code: .notFound, path: path, message: "no such file or directory")
            }
            if isDirectory(path) {
                if try isFlagsRoot(path) {
                    try validateRoot(FlagDirectory(root: path), now: now, into: &report)
                } else {
                    let options = FlagSetLoader.Options.checkingGuardPolicy(fractionalAlgorithm: algorithm(near: path), now: now)
                    report.add(load(files: try flagFiles(under: path), options: options), environment: lastComponent(path))
                }
            } else if ProjectConfig.fileNames.contains(lastComponent(path)) {
                switch readText(path) {
                case .success(let text): report.add(ProjectConfigLoader.load(path: path, text: text, zones: SystemZoneDatabase.resolver()))
                case .failure(let problem): report.add([problem])
                }
            } else {
                let options = FlagSetLoader.Options.checkingGuardPolicy(fractionalAlgorithm: algorithm(near: parent(path)), now: now)
                report.add(load(files: [path], options: options))
            }
        }
        return report
    }

    private static func validateRoot(_ directory: FlagDirectory, now: Int64?, into report: inout ValidationReport) throws(FlagDirectoryError) {
        let config = directory.loadConfig()
        report.add(config)
        let options = FlagSetLoader.Options.checkingGuardPolicy(fractionalAlgorithm: config.config.fractionalAlgorithm, now: now)
        let folders = try directory.environmentNames()
        for name in folders {
            report.add(load(files: try directory.flagFiles(inEnvironment: name), options: options), environment: name)
        }
        var extra: [Diagnostic] = []
        for file in try contents(of: directory.root) where isFlagFile(file) && !ProjectConfig.fileNames.contains(file) {
            extra.append(
                Diagnostic(
                    .warning, at: FileLocation(file: join(directory.root, file), line: 1, column: 1),
                    message: "this file is not inside an environment folder and is ignored",
                    hint: "move it to \(join(directory.root, "<environment>"))/"))
        }
        if let configPath = config.path, !config.config.environments.isEmpty {
            let listed = config.config.environments.map(\.name)
            for name in listed where !folders.contains(name) {
                extra.append(
                    Diagnostic(
                        .warning, at: config.environmentLocations[name] ?? FileLocation(file: configPath, line: 1, column: 1),
                        message: "environment \"\(name)\" has no folder \(directory.environmentPath(name))/",
                        hint: "create the folder, or remove the environment"))
            }
            for name in folders where !listed.contains(name) {
                extra.append(
                    Diagnostic(
                        .warning, at: config.environmentLocations[""] ?? FileLocation(file: configPath, line: 1, column: 1),
                        message: "the folder \(directory.environmentPath(name))/ is not listed under environments",
                        hint: "add \(name) to environments, or move the folder out of \(directory.root)/"))
            }
        }
        if folders.isEmpty {
            extra.append(
                Diagnostic(
                    .warning, at: FileLocation(file: directory.root, line: 1, column: 1),
                    message: "no environment folders", hint: "put flag files in \(join(directory.root, "<environment>"))/"))
        }
        report.add(Diagnostic.sorted(extra))
    }

    /// A folder is a flags root when it holds a project config, or holds folders but no flag files.
    private static func isFlagsRoot(_ path: String) throws(FlagDirectoryError) -> Bool {
        let entries = try contents(of: path)
        if entries.contains(where: { ProjectConfig.fileNames.contains($0) && isRegularFile(join(path, $0)) }) { return true }
        let hasFlagFiles = entries.contains { isFlagFile($0) && isRegularFile(join(path, $0)) }
        let hasFolders = entries.contains { isDirectory(join(path, $0)) }
        return !hasFlagFiles && hasFolders
    }

    /// The fractional algorithm of the project config in `directory` or its parent; `.v3` without one.
    private static func algorithm(near directory: String) -> FractionalAlgorithm {
        for candidate in [directory, parent(directory)] {
            let config = FlagDirectory(root: candidate)
            if config.configPath != nil { return config.loadConfig().config.fractionalAlgorithm }
        }
        return .v3
    }

    // MARK: Files

    /// Reads flag files and loads them as one flag set; unreadable files become diagnostics.
    package static func load(files: [String], options: FlagSetLoader.Options = .checkingGuardPolicy()) -> FlagSetLoad {
        var sources: [FlagSource] = []
        var problems: [Diagnostic] = []
        for file in files {
            switch readText(file) {
            case .success(let text): sources.append(FlagSource(path: file, text: text))
            case .failure(let problem): problems.append(problem)
            }
        }
        var load = FlagSetLoader.load(sources, options: options)
        load.files = files
        load.diagnostics = Diagnostic.sorted(load.diagnostics + problems)
        return load
    }

    /// The flag files under a folder, recursively, skipping hidden files and folders, sorted by path.
    package static func flagFiles(under directory: String) throws(FlagDirectoryError) -> [String] {
        let subpaths: [String]
        do {
            subpaths = try FileManager.default.subpathsOfDirectory(atPath: directory)
        } catch {
            throw FlagDirectoryError(code: .unreadable, path: directory, message: "cannot list the folder: \(error.localizedDescription)")
        }
        return
            subpaths
            .filter { sub in
                isFlagFile(sub) && !sub.split(separator: "/").contains { $0.hasPrefix(".") }
                    && isRegularFile(join(directory, sub))
            }
            .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            .map { join(directory, $0) }
    }

    private static func readText(_ path: String) -> FileText {
        let location = FileLocation(file: path, line: 1, column: 1)
        guard let data = FileManager.default.contents(atPath: path) else {
            return .failure(Diagnostic(.error, at: location, message: "cannot read the file"))
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            return .failure(Diagnostic(.error, at: location, message: "the file is not UTF-8 text"))
        }
        return .success(text)
    }

    private static func contents(of directory: String) throws(FlagDirectoryError) -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: directory).filter { !$0.hasPrefix(".") }.sorted()
        } catch {
            throw FlagDirectoryError(code: .unreadable, path: directory, message: "cannot list the folder: \(error.localizedDescription)")
        }
    }

    static func join(_ directory: String, _ name: String) -> String {
        if directory.isEmpty || directory == "." { return name }
        return directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    private static func lastComponent(_ path: String) -> String {
        let trimmed = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
        if trimmed == "." { return lastComponent(FileManager.default.currentDirectoryPath) }
        return trimmed.split(separator: "/").last.map(String.init) ?? trimmed
    }

    private static func parent(_ path: String) -> String {
        let trimmed = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
        guard let slash = trimmed.lastIndex(of: "/") else { return trimmed == "." ? ".." : "." }
        return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
    }

    private static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    private static func isRegularFile(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
    }
}

/// The text of a file, or why it could not be read.
private enum FileText {
    case success(String)
    case failure(Diagnostic)
}
