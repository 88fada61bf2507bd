import FlagpoleCore

/// Reads the project config (`flags/flagpole.yaml`) from its text.
package enum ProjectConfigLoader {
    static let topLevelKeys: Set<String> = ["version", "fractionalAlgorithm", "environments", "freezeWindows", "alerts", "guard"]
    static let environmentKeys: Set<String> = ["redisUrlEnv", "production", "requirePassIn"]
    static let freezeWindowKeys: Set<String> = ["name", "from", "to", "timezone", "environments", "reason"]
    static let alertKeys: Set<String> = ["name", "type", "url", "urlEnv", "botTokenEnv", "chatIdEnv", "environments", "notify"]

    /// Parses and validates a project config. Problems never stop the read: a part with an error
    /// keeps its default, and every problem is reported.
    ///
    /// `zones` finds the rules of the IANA time zones freeze windows name (`Europe/Berlin`); the
    /// caller does that I/O. Default: none (zone names are errors; fixed offsets work).
    package static func load(path: String, text: String, zones: @escaping ZoneRules.Resolver = ZoneRules.noDatabase) -> ProjectConfigLoad {
        let document = SourceDocument.parse(path: path, text: text)
        var reader = Reader(sink: DiagnosticSink(document: document), zones: zones)
        let config = reader.read()
        var locations: [String: FileLocation] = [:]
        if let section = document.value?["environments"] {
            locations[""] = document.keyLocation(of: "/environments")
            for env in config.environments {
                if let list = section.arrayValue, let i = list.firstIndex(of: .string(env.name)) {
                    locations[env.name] = document.location(of: JSONPointer.child("/environments", i))
                } else {
                    locations[env.name] = document.keyLocation(of: JSONPointer.child("/environments", env.name))
                }
            }
        }
        return ProjectConfigLoad(
            path: path, config: config, diagnostics: Diagnostic.sorted(document.diagnostics + reader.sink.diagnostics),
            environmentLocations: locations)
    }

    /// Whether a name can be an environment: letters, digits, `_`, `-`, `.` (it becomes a folder
    /// name and a Redis hash tag, so no `{`, `}` or `/`).
    package static func isValidEnvironmentName(_ name: String) -> Bool {
        !name.isEmpty
            && name.unicodeScalars.allSatisfy {
                $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_-.".unicodeScalars.contains($0))
            }
            && name != "." && name != ".."
    }

    static func isValidVariableName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic) else { return false }
        return name.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) }
    }

    private struct Reader {
        var sink: DiagnosticSink
        let zones: ZoneRules.Resolver

        mutating func read() -> ProjectConfig {
            var config = ProjectConfig()
            guard let root = sink.document.value else { return config }
            guard case .object(let top) = root else {
                sink.error(at: "", flag: nil, "the project config must be an object (a YAML mapping), not \(root.typeName)")
                return config
            }
            unknownKeys(top, allowed: ProjectConfigLoader.topLevelKeys, at: "", what: "project config")
            if let v = top["version"], v != .int(1) {
                sink.error(at: "/version", flag: nil, "version must be 1, not \(MessageText.literal(v))", hint: "this Flagpole reads version 1")
            }
            if let v = top["fractionalAlgorithm"] {
                if case .string(let s) = v, let a = FractionalAlgorithm(rawValue: s) {
                    config.fractionalAlgorithm = a
                } else {
                    sink.error(
                        at: "/fractionalAlgorithm", flag: nil, "fractionalAlgorithm must be \"v3\" or \"v2\", not \(MessageText.literal(v))",
                        hint: "v3 (the default) is the accepted flagd design; v2 matches flagd Go releases that predate it")
                }
            }
            if let v = top["environments"] { config.environments = environments(v) }
            let known = Set(config.environments.map(\.name))
            checkPromotionGates(config.environments, known: known)
            if let v = top["freezeWindows"] { config.freezeWindows = freezeWindows(v, known: known) }
            if let v = top["alerts"] { config.alertTargets = alerts(v, known: known) }
            if let v = top["guard"] { config.guardPolicy = guardPolicy(v) }
            return config
        }

        private mutating func unknownKeys(_ object: [String: JSONValue], allowed: Set<String>, at pointer: String, what: String) {
            for key in object.keys.sorted() where !allowed.contains(key) {
                var hint = "\(what) keys are " + allowed.sorted().joined(separator: ", ")
                if let s = MessageText.suggestion(for: key, among: allowed) { hint = "did you mean \"\(s)\"?" }
                sink.warning(at: JSONPointer.child(pointer, key), atKey: true, flag: nil, "unknown \(what) key \"\(key)\" is ignored", hint: hint)
            }
        }

        private func ordered(_ object: [String: JSONValue], under pointer: String) -> [(String, JSONValue)] {
            let map = sink.document.sourceMap
            return object.sorted { a, b in
                let la = map.keyLocation(of: JSONPointer.child(pointer, a.key))
                let lb = map.keyLocation(of: JSONPointer.child(pointer, b.key))
                return (la.line, la.column, a.key) < (lb.line, lb.column, b.key)
            }
        }

        private mutating func environments(_ value: JSONValue) -> [EnvironmentConfig] {
            var out: [EnvironmentConfig] = []
            switch value {
            case .array(let names):
                for (i, n) in names.enumerated() {
                    let p = JSONPointer.child("/environments", i)
                    guard case .string(let name) = n else {
                        sink.error(at: p, flag: nil, "an environment name must be a string, not \(MessageText.literal(n))")
                        continue
                    }
                    if checkEnvironmentName(name, at: p, atKey: false, seen: out) { out.append(EnvironmentConfig(name: name)) }
                }
            case .object(let map):
                for (name, settings) in ordered(map, under: "/environments") {
                    let p = JSONPointer.child("/environments", name)
                    guard checkEnvironmentName(name, at: p, atKey: true, seen: out) else { continue }
                    var env = EnvironmentConfig(name: name)
                    switch settings {
                    case .null: break
                    case .object(let o):
                        unknownKeys(o, allowed: ProjectConfigLoader.environmentKeys, at: p, what: "environment")
                        env.redisURLVariable = variableName(o["redisUrlEnv"], at: JSONPointer.child(p, "redisUrlEnv"))
                        switch o["production"] {
                        case nil: break
                        case .bool(let b)?: env.isProduction = b
                        case let other?:
                            sink.error(
                                at: JSONPointer.child(p, "production"), flag: nil,
                                "production must be true or false, not \(MessageText.literal(other))", hint: "e.g. production: true")
                        }
                        switch o["requirePassIn"] {
                        case nil: break
                        case .string(let source)? where !source.isEmpty: env.requirePassIn = source
                        case let other?:
                            sink.error(
                                at: JSONPointer.child(p, "requirePassIn"), flag: nil,
                                "requirePassIn must name an environment, not \(MessageText.literal(other))", hint: "e.g. requirePassIn: test")
                        }
                    default:
                        sink.error(
                            at: p, flag: nil, "the settings of environment \"\(name)\" must be an object, not \(settings.typeName)",
                            hint: "e.g. \(name): {redisUrlEnv: FLAGPOLE_\(name.uppercased())_REDIS_URL}")
                    }
                    out.append(env)
                }
            default:
                sink.error(
                    at: "/environments", flag: nil, "environments must be an object of name: settings (or a list of names), not \(value.typeName)")
            }
            return out
        }

        /// `requirePassIn` must name another environment of the list (checked once all are read,
        /// so the order in the file does not matter).
        private mutating func checkPromotionGates(_ environments: [EnvironmentConfig], known: Set<String>) {
            for env in environments {
                guard let source = env.requirePassIn else { continue }
                let p = JSONPointer.child(JSONPointer.child("/environments", env.name), "requirePassIn")
                if source == env.name {
                    sink.error(
                        at: p, flag: nil, "environment \"\(env.name)\" cannot require a pass in itself",
                        hint: "name the environment rollouts must complete in first, e.g. requirePassIn: test")
                } else if !known.contains(source) {
                    var hint = "environments are " + MessageText.quotedList(known.sorted())
                    if let s = MessageText.suggestion(for: source, among: known) { hint = "did you mean \"\(s)\"?" }
                    sink.error(at: p, flag: nil, "requirePassIn names environment \"\(source)\", which is not one of the environments", hint: hint)
                }
            }
        }

        private mutating func checkEnvironmentName(_ name: String, at pointer: String, atKey: Bool, seen: [EnvironmentConfig]) -> Bool {
            guard ProjectConfigLoader.isValidEnvironmentName(name) else {
                sink.error(
                    at: pointer, atKey: atKey, flag: nil, "\"\(name)\" cannot be an environment name",
                    hint: "use letters, digits, '_', '-' and '.' (it names a folder and a Redis hash tag)")
                return false
            }
            if seen.contains(where: { $0.name == name }) {
                sink.error(at: pointer, atKey: atKey, flag: nil, "environment \"\(name)\" is listed twice")
                return false
            }
            return true
        }

        /// The name of an environment variable, or nil (with an error when present but invalid).
        private mutating func variableName(_ value: JSONValue?, at pointer: String) -> String? {
            guard let value else { return nil }
            guard case .string(let name) = value, ProjectConfigLoader.isValidVariableName(name) else {
                sink.error(
                    at: pointer, flag: nil, "\(MessageText.literal(value)) is not an environment variable name",
                    hint: "name the variable (e.g. FLAGPOLE_REDIS_URL), not its value")
                return nil
            }
            return name
        }

        /// A name or a list of names (`environments`, `notify`): the strings, each item that is not
        /// one reported; nil, reported, when the value is neither.
        private mutating func nameList(_ value: JSONValue, at pointer: String, key: String, hint: String? = nil) -> [String]? {
            var names: [String] = []
            switch value {
            case .string(let s): names = [s]
            case .array(let items):
                for (i, item) in items.enumerated() {
                    guard case .string(let s) = item else {
                        sink.error(
                            at: JSONPointer.child(pointer, i), flag: nil, "an environment name must be a string, not \(MessageText.literal(item))")
                        continue
                    }
                    names.append(s)
                }
            default:
                sink.error(at: pointer, flag: nil, "\(key) must be a list of environment names, not \(value.typeName)", hint: hint)
                return nil
            }
            return names
        }

        private mutating func environmentList(_ value: JSONValue?, at pointer: String, known: Set<String>) -> [String]? {
            guard let value, let names = nameList(value, at: pointer, key: "environments") else { return nil }
            if !known.isEmpty {
                for name in names where !known.contains(name) {
                    sink.warning(
                        at: pointer, flag: nil, "environment \"\(name)\" is not one of the environments (\(MessageText.quotedList(known.sorted())))")
                }
            }
            return names
        }

        private mutating func requiredString(_ object: [String: JSONValue], _ key: String, at pointer: String, what: String) -> String? {
            guard let value = object[key] else {
                sink.error(at: pointer, atKey: true, flag: nil, "\(what) needs \"\(key)\"")
                return nil
            }
            guard case .string(let s) = value, !s.isEmpty else {
                sink.error(at: JSONPointer.child(pointer, key), flag: nil, "\(key) must be a non-empty string, not \(MessageText.literal(value))")
                return nil
            }
            return s
        }

        private mutating func freezeWindows(_ value: JSONValue, known: Set<String>) -> [FreezeWindow] {
            guard case .array(let items) = value else {
                sink.error(at: "/freezeWindows", flag: nil, "freezeWindows must be a list, not \(value.typeName)")
                return []
            }
            var out: [FreezeWindow] = []
            for (i, item) in items.enumerated() {
                let p = JSONPointer.child("/freezeWindows", i)
                guard case .object(let o) = item else {
                    sink.error(at: p, flag: nil, "a freeze window must be an object with name, from and to, not \(item.typeName)")
                    continue
                }
                unknownKeys(o, allowed: ProjectConfigLoader.freezeWindowKeys, at: p, what: "freeze window")
                let name = requiredString(o, "name", at: p, what: "a freeze window")
                let from = requiredString(o, "from", at: p, what: "a freeze window")
                let to = requiredString(o, "to", at: p, what: "a freeze window")
                var zone = ZoneRules.utc
                var zoneOK = true
                if let tz = o["timezone"] {
                    zoneOK = false
                    let tzPointer = JSONPointer.child(p, "timezone")
                    if case .string(let s) = tz, let seconds = CivilTime.parseOffset(s) {
                        zone = .fixed(seconds)
                        zoneOK = true
                    } else if case .string(let s) = tz, ZoneRules.isZoneName(s) {
                        switch zones(s) {
                        case .success(let rules):
                            zone = rules
                            zoneOK = true
                        case .failure(let failure):
                            sink.error(at: tzPointer, flag: nil, "timezone \"\(s)\": \(failure.message)", hint: failure.hint)
                        }
                    } else {
                        sink.error(
                            at: tzPointer, flag: nil, "timezone \(MessageText.literal(tz)) is neither a time zone name nor a UTC offset",
                            hint: "write an IANA zone such as Europe/Berlin or America/New_York, UTC, or an offset like +01:00")
                    }
                }
                let environments = environmentList(o["environments"], at: JSONPointer.child(p, "environments"), known: known)
                var reason: String?
                if let r = o["reason"] {
                    if case .string(let s) = r {
                        reason = s
                    } else {
                        sink.error(at: JSONPointer.child(p, "reason"), flag: nil, "reason must be a string")
                    }
                }
                if let name, out.contains(where: { $0.name == name }) {
                    sink.error(at: JSONPointer.child(p, "name"), flag: nil, "freeze window \"\(name)\" is defined twice")
                }
                guard let name, let from, let to, zoneOK,
                    let schedule = schedule(from: from, to: to, zone: zone, at: p, hasTimezone: o["timezone"] != nil)
                else { continue }
                out.append(FreezeWindow(name: name, schedule: schedule, environments: environments, reason: reason))
            }
            return out
        }

        private mutating func schedule(from: String, to: String, zone: ZoneRules, at pointer: String, hasTimezone: Bool) -> FreezeWindow.Schedule? {
            let fromPointer = JSONPointer.child(pointer, "from")
            let toPointer = JSONPointer.child(pointer, "to")
            func weekly(_ s: String) -> Int? {
                let parts = s.split(separator: " ", omittingEmptySubsequences: true)
                guard parts.count == 2, let day = CivilTime.weekday(String(parts[0])),
                    let minute = CivilTime.parseClock(String(parts[1]))
                else { return nil }
                // "sun 24:00" is Monday 00:00: minutes are taken modulo a week.
                return (day * 1_440 + minute) % (7 * 1_440)
            }
            if let a = weekly(from), let b = weekly(to) {
                guard a != b else {
                    sink.error(at: toPointer, flag: nil, "from and to are the same time: the window would be empty")
                    return nil
                }
                return .weekly(start: a, end: b % (7 * 1_440), zone: zone)
            }
            if let from = CivilTime.parseClock(from), let b = CivilTime.parseClock(to) {
                // "24:00" is the next midnight: minutes are taken modulo a day.
                let a = from % 1_440
                guard a != b % 1_440 else {
                    sink.error(at: toPointer, flag: nil, "from and to are the same time: the window would be empty")
                    return nil
                }
                return .daily(start: a, end: b % 1_440, zone: zone)
            }
            if let a = CivilTime.parseTimestamp(from), let b = CivilTime.parseTimestamp(to) {
                if hasTimezone {
                    sink.warning(
                        at: JSONPointer.child(pointer, "timezone"), flag: nil,
                        "timezone is ignored for timestamps, which carry their own offset")
                }
                guard a < b else {
                    sink.error(at: toPointer, flag: nil, "to must be later than from")
                    return nil
                }
                return .between(start: a, end: b)
            }
            let hint = "write both as \"fri 16:00\" (weekly), \"22:00\" (daily), or \"2026-12-20T00:00:00Z\" (a date range, with its offset)"
            let fromOK = weekly(from) != nil || CivilTime.parseClock(from) != nil || CivilTime.parseTimestamp(from) != nil
            if !fromOK {
                sink.error(at: fromPointer, flag: nil, "from \"\(from)\" is not a weekday and time, a time of day, or a timestamp", hint: hint)
            }
            let toOK = weekly(to) != nil || CivilTime.parseClock(to) != nil || CivilTime.parseTimestamp(to) != nil
            if !toOK {
                sink.error(at: toPointer, flag: nil, "to \"\(to)\" is not a weekday and time, a time of day, or a timestamp", hint: hint)
            }
            if fromOK && toOK {
                sink.error(at: toPointer, flag: nil, "from and to must have the same form", hint: hint)
            }
            return nil
        }

        private mutating func alerts(_ value: JSONValue, known: Set<String>) -> [AlertTarget] {
            guard case .array(let items) = value else {
                sink.error(at: "/alerts", flag: nil, "alerts must be a list, not \(value.typeName)")
                return []
            }
            var out: [AlertTarget] = []
            for (i, item) in items.enumerated() {
                let p = JSONPointer.child("/alerts", i)
                guard case .object(let o) = item else {
                    sink.error(at: p, flag: nil, "an alert target must be an object with name and type, not \(item.typeName)")
                    continue
                }
                unknownKeys(o, allowed: ProjectConfigLoader.alertKeys, at: p, what: "alert target")
                let name = requiredString(o, "name", at: p, what: "an alert target")
                let type = requiredString(o, "type", at: p, what: "an alert target")
                let environments = environmentList(o["environments"], at: JSONPointer.child(p, "environments"), known: known)
                let notify = notifyList(o["notify"], at: JSONPointer.child(p, "notify"), known: known)
                if let name, out.contains(where: { $0.name == name }) {
                    sink.error(at: JSONPointer.child(p, "name"), flag: nil, "alert target \"\(name)\" is defined twice")
                }
                guard let name, let type else { continue }
                let destination: AlertTarget.Destination?
                switch type {
                case "webhook", "slack":
                    destination = url(o, at: p, slack: type == "slack").map { type == "slack" ? .slack(url: $0) : .webhook(url: $0) }
                case "telegram":
                    let token = requiredVariable(o, "botTokenEnv", at: p)
                    let chat = requiredVariable(o, "chatIdEnv", at: p)
                    for key in ["url", "urlEnv"] where o[key] != nil {
                        sink.warning(at: JSONPointer.child(p, key), atKey: true, flag: nil, "\(key) is ignored for telegram targets")
                    }
                    if let token, let chat {
                        destination = .telegram(botToken: .environmentVariable(token), chatID: .environmentVariable(chat))
                    } else {
                        destination = nil
                    }
                default:
                    sink.error(
                        at: JSONPointer.child(p, "type"), flag: nil, "unknown alert type \"\(type)\"",
                        hint: "use webhook, slack or telegram")
                    destination = nil
                }
                if let destination {
                    out.append(AlertTarget(name: name, destination: destination, environments: environments, notify: notify))
                }
            }
            return out
        }

        /// `notify: [prod, …]`: the environments whose every change is announced to the target.
        /// Unlike `environments`, a name that is not an environment is an error (nothing would ever
        /// be announced, silently).
        private mutating func notifyList(_ value: JSONValue?, at pointer: String, known: Set<String>) -> [String] {
            guard let value, let names = nameList(value, at: pointer, key: "notify", hint: "e.g. notify: [prod]") else { return [] }
            var out: [String] = []
            for name in names {
                if !known.isEmpty, !known.contains(name) {
                    var hint = "notify names environments of this config: \(MessageText.quotedList(known.sorted()))"
                    if let s = MessageText.suggestion(for: name, among: known.sorted()) { hint = "did you mean \"\(s)\"?" }
                    sink.error(at: pointer, flag: nil, "notify names environment \"\(name)\", which is not one of the environments", hint: hint)
                } else if !Self.isEnvironmentName(name) {
                    sink.error(
                        at: pointer, flag: nil, "notify names \(MessageText.literal(.string(name))), which is not an environment name",
                        hint: "an environment name is letters, digits, '_', '.' and '-'")
                } else if !out.contains(name) {
                    out.append(name)
                }
            }
            return out
        }

        /// Letters, digits, `_`, `.`, `-`, at most 64, not starting with `_`, `.` or `-` (as StoreLayout checks).
        static func isEnvironmentName(_ name: String) -> Bool {
            guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 64, first != "_", first != ".", first != "-" else {
                return false
            }
            return name.unicodeScalars.allSatisfy { s in
                (s >= "a" && s <= "z") || (s >= "A" && s <= "Z") || (s >= "0" && s <= "9") || s == "_" || s == "." || s == "-"
            }
        }

        private mutating func requiredVariable(_ o: [String: JSONValue], _ key: String, at pointer: String) -> String? {
            guard o[key] != nil else {
                sink.error(at: pointer, atKey: true, flag: nil, "a telegram target needs \"\(key)\" (the name of an environment variable)")
                return nil
            }
            return variableName(o[key], at: JSONPointer.child(pointer, key))
        }

        private mutating func url(_ o: [String: JSONValue], at pointer: String, slack: Bool) -> AlertTarget.Value? {
            switch (o["url"], o["urlEnv"]) {
            case (nil, nil):
                sink.error(at: pointer, atKey: true, flag: nil, "a webhook target needs \"url\" or \"urlEnv\"")
                return nil
            case (_?, _?):
                sink.error(at: JSONPointer.child(pointer, "urlEnv"), flag: nil, "give either url or urlEnv, not both")
                return nil
            case (nil, let env?):
                return variableName(env, at: JSONPointer.child(pointer, "urlEnv")).map { .environmentVariable($0) }
            case (let url?, nil):
                let p = JSONPointer.child(pointer, "url")
                guard case .string(let s) = url, s.hasPrefix("https://") || s.hasPrefix("http://"), s.count > 8 else {
                    sink.error(at: p, flag: nil, "url must be an http:// or https:// URL, not \(MessageText.literal(url))")
                    return nil
                }
                if slack {
                    sink.warning(
                        at: p, flag: nil, "a Slack webhook URL is a secret and this file is in git",
                        hint: "put it in an environment variable and name it with urlEnv")
                }
                return .literal(s)
            }
        }

        private mutating func guardPolicy(_ value: JSONValue) -> GuardPolicy {
            var policy = GuardPolicy()
            guard case .object(let o) = value else {
                sink.error(at: "/guard", flag: nil, "guard must be an object, not \(value.typeName)")
                return policy
            }
            for key in o.keys.sorted() {
                let p = JSONPointer.child("/guard", key)
                guard let field = GuardPolicy.Field(rawValue: key) else {
                    var hint = "guard keys are " + GuardPolicy.Field.allCases.map(\.rawValue).joined(separator: ", ")
                    if let s = MessageText.suggestion(for: key, among: GuardPolicy.Field.allCases.map(\.rawValue)) {
                        hint = "did you mean \"\(s)\"?"
                    }
                    sink.warning(at: p, atKey: true, flag: nil, "unknown guard key \"\(key)\" is ignored", hint: hint)
                    continue
                }
                if let problem = policy.set(field, from: o[key]!) {
                    sink.error(at: p, flag: nil, problem.message, hint: problem.hint)
                }
            }
            if policy.metric == .prometheus {
                // Flags may still set what is missing in their own metadata: warn, do not fail.
                // Without prometheusQuery the default queries over Flagpole's own outcome series run.
                if policy.prometheusURL == nil {
                    sink.warning(
                        at: "/guard/metric", flag: nil, "metric is prometheus but guard sets no prometheusUrl",
                        hint: "set it here, or every flag rolled out must set rollout.prometheusUrl in its metadata")
                }
            }
            return policy
        }
    }
}
