import FlagpoleCore
import FlagpoleStore

/// How one flag in the files compares with the same flag in Redis.
package struct FlagDiff: Sendable {
    package enum Status: String, Sendable {
        case same
        case onlyInFiles = "only in files"
        case onlyInRedis = "only in Redis"
        case definitionDiffers = "definition differs"
        case overridden
        case pinned
    }

    package var flag: String
    package var status: Status
    /// Where the flag is defined in the files.
    package var location: FileLocation?
    package var fileDefinition: JSONValue?
    package var liveDefinition: JSONValue?
    package var override: OverrideRecord?
    package var pin: PinRecord?

    /// Creates a row.
    package init(
        flag: String, status: Status, location: FileLocation? = nil, fileDefinition: JSONValue? = nil, liveDefinition: JSONValue? = nil,
        override: OverrideRecord? = nil, pin: PinRecord? = nil
    ) {
        self.flag = flag
        self.status = status
        self.location = location
        self.fileDefinition = fileDefinition
        self.liveDefinition = liveDefinition
        self.override = override
        self.pin = pin
    }

    /// The change to the flag's file that would make the files say what Redis serves.
    package var reconcileHint: String? {
        guard let override else { return nil }
        let place = location.map { " in \($0.file)" } ?? ""
        let unpin = pin != nil ? ", then `flagctl sync --unpin \(flag)`" : ""
        switch override.override {
        case .variant(let v): return "set defaultVariant: \(v) and remove its targeting\(place)\(unpin)"
        case .enabled(let on): return "set state: \(on ? "ENABLED" : "DISABLED")\(place)\(unpin)"
        case .rollout(let s):
            return
                "a rollout is in progress (\(s.percent)% → \(s.targetVariant)); once it completes, set defaultVariant: \(s.targetVariant) and remove its targeting\(place)"
        case .definition(let frozen):
            let edits = Self.edits(from: fileDefinition, to: frozen)
            if edits.isEmpty { return "the files already say what is served; release the pin with `flagctl sync --unpin \(flag)`" }
            return edits.joined(separator: ", ") + place
                + (pin != nil ? ", then `flagctl sync --unpin \(flag)`" : ", then `flagctl override clear \(flag)`")
        }
    }

    /// The field edits that turn a file definition into `target` (state, defaultVariant, targeting, variants).
    static func edits(from file: JSONValue?, to target: JSONValue) -> [String] {
        var out: [String] = []
        let f = file?.objectValue ?? [:], t = target.objectValue ?? [:]
        func empty(_ v: JSONValue?) -> Bool { v == nil || v == .null || v == .object([:]) }
        if (f["state"] ?? "ENABLED") != (t["state"] ?? "ENABLED") { out.append("set state: \(t["state"]?.stringValue ?? "ENABLED")") }
        if f["defaultVariant"] != t["defaultVariant"] { out.append("set defaultVariant: \(t["defaultVariant"]?.stringValue ?? "null")") }
        if empty(t["targeting"]) && !empty(f["targeting"]) {
            out.append("remove its targeting")
        } else if !empty(t["targeting"]) && f["targeting"] != t["targeting"] {
            out.append("set targeting: \(t["targeting"]!.jsonString)")
        }
        if f["variants"] != t["variants"] { out.append("set variants: \(t["variants"]?.jsonString ?? "{}")") }
        return out
    }

    package var json: JSONValue {
        var o: [String: JSONValue] = ["flag": .string(flag), "status": .string(status.rawValue)]
        if let location { o["location"] = .string(location.description) }
        if let override { o["override"] = override.json }
        if let pin { o["pin"] = pin.json }
        if let reconcileHint { o["reconcile"] = .string(reconcileHint) }
        if status == .definitionDiffers || status == .onlyInFiles || status == .onlyInRedis {
            o["files"] = fileDefinition ?? .null
            o["redis"] = liveDefinition ?? .null
        }
        return .object(o)
    }
}

package enum LiveDiff {
    /// Compares the files (`load`) with the live state, overrides and pins included, flag by flag.
    package static func compare(load: FlagSetLoad, live: StoreSnapshot) -> [FlagDiff] {
        let files = FlagDocument.resolvedFlags(load.document)
        var rows: [FlagDiff] = []
        for key in Set(files.keys).union(live.definitions.keys).sorted() {
            let f = files[key], l = live.definitions[key]
            var row = FlagDiff(
                flag: key, status: .same, location: load.flagLocations[key], fileDefinition: f, liveDefinition: l,
                override: live.overrides[key], pin: live.pins[key])
            if f == nil {
                row.status = .onlyInRedis
            } else if l == nil {
                row.status = .onlyInFiles
            } else if f != l {
                row.status = .definitionDiffers
            } else if live.pins[key] != nil {
                row.status = .pinned
            } else if live.overrides[key] != nil {
                row.status = .overridden
            }
            rows.append(row)
        }
        return rows
    }
}
