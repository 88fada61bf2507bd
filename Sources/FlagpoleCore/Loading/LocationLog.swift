import Synchronization

/// Where the values and keys of one parsed file stand, written down in the order the reader
/// meets them: a table of paths (a parent and one reference token each) and the locations
/// recorded at those paths. Pointer strings are only built when a ``FileSourceMap`` is asked
/// for, so reading a file that has no problems never builds one for every value.
///
/// Replaying the records in order into a map gives exactly the map a reader that assigned
/// `values[pointer]` and `keys[pointer]` as it went would have built (later records win).
struct LocationLog: Sendable {
    /// One path: the root (index 0) or a member key or array index under a parent path.
    struct Path: Sendable {
        var parent: Int32
        var depth: Int32
        /// The member key (unescaped); empty for an array element.
        var key: String
        /// The array index, or -1 for a member key.
        var index: Int32
    }

    /// A location recorded at a path: where its value starts, or where its member key does.
    struct Record: Sendable {
        var path: Int32
        var isKey: Bool
        var line: Int32
        var column: Int32
    }

    /// The root path, `""`.
    static let root: Int32 = 0

    private(set) var paths: [Path] = [Path(parent: -1, depth: 0, key: "", index: -1)]
    private(set) var records: [Record] = []

    init() {}

    /// Reserves room for about `count` values.
    mutating func reserveCapacity(_ count: Int) {
        paths.reserveCapacity(count)
        records.reserveCapacity(count)
    }

    /// The path of member `key` under `parent`.
    mutating func child(_ parent: Int32, key: String) -> Int32 {
        paths.append(Path(parent: parent, depth: paths[Int(parent)].depth + 1, key: key, index: -1))
        return Int32(truncatingIfNeeded: paths.count - 1)
    }

    /// The path of element `index` under `parent`.
    mutating func child(_ parent: Int32, index: Int) -> Int32 {
        paths.append(Path(parent: parent, depth: paths[Int(parent)].depth + 1, key: "", index: Int32(truncatingIfNeeded: index)))
        return Int32(truncatingIfNeeded: paths.count - 1)
    }

    /// Records where the value at `path` starts.
    mutating func value(_ path: Int32, line: Int, column: Int) {
        records.append(Record(path: path, isKey: false, line: Int32(truncatingIfNeeded: line), column: Int32(truncatingIfNeeded: column)))
    }

    /// Records where the key of the member at `path` starts.
    mutating func key(_ path: Int32, line: Int, column: Int) {
        records.append(Record(path: path, isKey: true, line: Int32(truncatingIfNeeded: line), column: Int32(truncatingIfNeeded: column)))
    }

    /// How many reference tokens the path has.
    func depth(_ path: Int32) -> Int { Int(paths[Int(path)].depth) }

    /// The reference tokens of a path, unescaped.
    func tokens(_ path: Int32) -> [String] {
        var out: [String] = []
        var p = Int(path)
        while p > 0 {
            let entry = paths[p]
            out.append(entry.index >= 0 ? String(entry.index) : entry.key)
            p = Int(entry.parent)
        }
        return out.reversed()
    }

    /// The JSON Pointer of a path.
    func pointer(_ path: Int32) -> String {
        var out = ""
        for token in tokens(path) {
            out += "/"
            out += JSONSourceMap.escape(token)
        }
        return out
    }

    /// The flag key a path lies under (`/flags/<key>/…`), if any: ``JSONPointer/flagKey(of:)``
    /// of its pointer.
    func flagKey(_ path: Int32) -> String? {
        var p = Int(path)
        guard p > 0, paths[p].depth >= 2 else { return nil }
        while paths[p].depth > 2 { p = Int(paths[p].parent) }
        let top = paths[Int(paths[p].parent)]
        guard top.index < 0, top.key == "flags" else { return nil }
        return paths[p].index >= 0 ? String(paths[p].index) : paths[p].key
    }

    /// Where the value at `pointer` starts, or its nearest ancestor that has a location; with
    /// `key`, where the member's key starts when that is known. The same answers as
    /// ``FileSourceMap/valueLocation(of:)`` and ``FileSourceMap/keyLocation(of:)`` of ``map(maxDepth:)``,
    /// found by one pass over the log instead of building the map: `nil` for a pointer that does
    /// not start with `/` (ask the map).
    func location(of pointer: String, key: Bool) -> SourceLocation? {
        guard pointer.isEmpty || pointer.utf8.first == UInt8(ascii: "/") else { return nil }
        // The pointer's reference tokens as they are spelt in it (escaped), and as array indices.
        let tokens =
            pointer.isEmpty
            ? [] : pointer.utf8.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map { Substring($0) }
        let indices = tokens.map { token -> Int32? in
            guard let i = Int32(token), String(i) == token else { return nil }
            return i
        }
        let depth = tokens.count
        // Which paths spell a prefix of the pointer (a path's parent must, and its own token must match).
        var onPointer = [Bool](repeating: false, count: paths.count)
        onPointer[0] = true
        for p in 1..<paths.count {
            let entry = paths[p]
            guard entry.depth <= depth, onPointer[Int(entry.parent)] else { continue }
            let t = Int(entry.depth) - 1
            onPointer[p] = entry.index >= 0 ? indices[t] == entry.index : JSONSourceMap.escape(entry.key) == tokens[t]
        }
        var values = [SourceLocation?](repeating: nil, count: depth + 1)
        var keyLocation: SourceLocation?
        for record in records where onPointer[Int(record.path)] {
            let d = Int(paths[Int(record.path)].depth)
            let location = SourceLocation(line: Int(record.line), column: Int(record.column))
            if !record.isKey {
                values[d] = location
            } else if d == depth {
                keyLocation = location
            }
        }
        if key, let keyLocation { return keyLocation }
        for d in stride(from: depth, through: 0, by: -1) {
            if let value = values[d] { return value }
        }
        return SourceLocation(line: 1, column: 1)
    }

    /// The map the records describe, limited to pointers of at most `maxDepth` tokens.
    func map(maxDepth: Int = .max) -> FileSourceMap {
        // Every pointer of a full map, kept to build its children's; a shallow one is built whole.
        let memoize = maxDepth > 2
        var pointers = [String?](repeating: nil, count: memoize ? paths.count : 0)
        func pointer(_ path: Int) -> String {
            if path == 0 { return "" }
            if memoize, let p = pointers[path] { return p }
            let entry = paths[path]
            let token = entry.index >= 0 ? String(entry.index) : JSONSourceMap.escape(entry.key)
            let p = pointer(Int(entry.parent)) + "/" + token
            if memoize { pointers[path] = p }
            return p
        }
        var values: [String: SourceLocation] = [:]
        var keys: [String: SourceLocation] = [:]
        if maxDepth == .max {
            values.reserveCapacity(records.count)
            keys.reserveCapacity(records.count)
        }
        for record in records where paths[Int(record.path)].depth <= maxDepth {
            let location = SourceLocation(line: Int(record.line), column: Int(record.column))
            if record.isKey {
                keys[pointer(Int(record.path))] = location
            } else {
                values[pointer(Int(record.path))] = location
            }
        }
        return FileSourceMap(values: values, keys: keys)
    }
}

/// A file's locations beyond those a ``SourceDocument`` keeps at hand. The first few deep
/// pointers are looked up in the log one by one (a file with a problem or two pays for those
/// alone); after that the full map is built once and kept.
final class DeferredLocations: Sendable {
    /// Pointers of at most this many tokens are in the document's own map.
    let shallowDepth: Int
    private let log: LocationLog
    private let state = Mutex<(lookups: Int, full: FileSourceMap?)>((0, nil))

    /// How many pointers are looked up in the log before the map is built.
    static let lookupsBeforeMap = 16

    init(log: LocationLog, shallowDepth: Int) {
        self.log = log
        self.shallowDepth = shallowDepth
    }

    /// Every location of the file.
    var map: FileSourceMap {
        state.withLock { state in
            if let full = state.full { return full }
            let built = log.map()
            state.full = built
            return built
        }
    }

    /// ``FileSourceMap/valueLocation(of:)`` of ``map``.
    func valueLocation(of pointer: String) -> SourceLocation {
        lookUp(pointer, key: false)
    }

    /// ``FileSourceMap/keyLocation(of:)`` of ``map``.
    func keyLocation(of pointer: String) -> SourceLocation {
        lookUp(pointer, key: true)
    }

    private func lookUp(_ pointer: String, key: Bool) -> SourceLocation {
        let full: FileSourceMap? = state.withLock { state in
            if state.full == nil, state.lookups < DeferredLocations.lookupsBeforeMap {
                state.lookups += 1
                return nil
            }
            if state.full == nil { state.full = log.map() }
            return state.full
        }
        if full == nil, let found = log.location(of: pointer, key: key) { return found }
        let map = full ?? self.map
        return key ? map.keyLocation(of: pointer) : map.valueLocation(of: pointer)
    }
}
