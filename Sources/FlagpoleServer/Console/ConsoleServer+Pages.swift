import Flagpole
import FlagpoleControl
import FlagpoleCore
import FlagpoleRollout
import FlagpoleStore
import Foundation

/// The read-only pages: overview, flags, one flag, audit.
extension ConsoleServer {
    /// The most rows the flag list shows at once (search or filter to narrow).
    static let flagRowLimit = 500

    func overview(_ session: ConsoleSessions.Session) async throws -> Rendered {
        let live = try await control.store.read(parseDefinitions: false)
        let rollouts = try await control.store.readRollouts()
        let fleet = try await control.store.clients()
        let drift = try await self.drift(revision: live.revision)
        let now = self.now()
        let m = live.meta
        var h = HTML()
        h.raw("<h1>")
        h.text(environment)
        h.raw("</h1><section class=\"cards\">")
        card(&h, "Revision", String(live.revision), "\(live.definitionTexts.count) flags")
        if let at = m["syncedAt"].flatMap({ Int64($0) }) {
            let commit =
                m["gitCommit"].map { $0.isEmpty ? "not a git tree" : String($0.prefix(12)) + (m["gitDirty"] == "true" ? " (dirty tree)" : "") } ?? "-"
            card(&h, "Last sync", ConsolePages.ago(at, now: now), "by \(m["syncedBy"] ?? "?") at \(ConsolePages.time(at)), commit \(commit)")
        } else {
            card(&h, "Last sync", "never", "run flagctl sync --env \(environment)")
        }
        let lease = rollouts.lease
        if let lease, lease.isLive(atMilliseconds: now * 1000) {
            card(&h, "Watcher", "live", "lease held by \(lease.holder)")
        } else {
            card(&h, "Watcher", "none", "nothing watches rollouts; run flagctl daemon --env \(environment)", warn: true)
        }
        card(
            &h, "Fleet", "\(fleet.clients.count) instances",
            "\(fleet.clients.filter { $0.revision == live.revision }.count) at revision \(live.revision)")
        h.raw("</section>")

        let active = rollouts.rollouts.values.filter { $0.status.isActive }.sorted { $0.flag < $1.flag }
        h.raw("<h2>Running rollouts</h2>")
        if active.isEmpty {
            h.raw("<p class=\"quiet\">None.</p>")
        } else {
            h.raw("<table><thead><tr><th>Flag</th><th>Target</th><th>Step</th><th>Status</th><th>Verdict</th></tr></thead><tbody>")
            for r in active {
                h.raw("<tr><td>")
                rolloutLink(&h, r.flag)
                h.raw("</td><td>")
                h.text(r.targetVariant)
                h.raw("</td><td>\(r.stepIndex + 1) of \(r.steps.count) (\(r.percent)%)</td><td>")
                h.text(r.status.rawValue + (r.dryRun ? " (dry run)" : ""))
                h.raw("</td><td>")
                if let o = rollouts.observations[r.flag], o.rolloutID == r.id {
                    h.raw("<span class=\"verdict \(o.verdict.rawValue)\">")
                    h.text(o.verdict.rawValue)
                    h.raw("</span> ")
                    h.text(o.reason)
                } else {
                    h.raw("<span class=\"quiet\">not looked at yet</span>")
                }
                h.raw("</td></tr>")
            }
            h.raw("</tbody></table>")
        }

        h.raw("<h2>Drift from the files</h2>")
        if let drift {
            if drift.isEmpty {
                h.raw("<p class=\"quiet\">None: Redis serves what the files say.</p>")
            } else {
                h.raw("<table><thead><tr><th>Flag</th><th>Status</th><th>Override</th><th>To make the files agree</th></tr></thead><tbody>")
                for d in drift {
                    h.raw("<tr><td>")
                    ConsolePages.flagLink(&h, d.flag)
                    h.raw("</td><td>")
                    h.text(d.status.rawValue)
                    h.raw("</td><td>")
                    if let o = d.override {
                        h.text("\(o.override.summary) by \(o.actor)" + (o.reason.map { " (\($0))" } ?? ""))
                    }
                    if let p = d.pin {
                        h.raw(" <span class=\"badge warn\">pinned</span> ")
                        h.text("by \(p.by): \(p.reason)")
                    }
                    h.raw("</td><td>")
                    h.text(d.reconcileHint ?? "")
                    h.raw("</td></tr>")
                }
                h.raw("</tbody></table>")
            }
        } else {
            h.raw("<p class=\"quiet\">Unknown: the daemon has no readable flag files for this environment.</p>")
        }

        h.raw("<h2>Fleet</h2>")
        if fleet.clients.isEmpty {
            h.raw("<p class=\"quiet\">No live instances.</p>")
        } else {
            h.raw(
                "<table><thead><tr><th>Application</th><th>Host</th><th>Version</th><th>Revision</th><th>Source</th><th>Last seen</th></tr></thead><tbody>"
            )
            for c in fleet.clients {
                let stale = c.revision != live.revision || !c.inSync || now - c.lastSeen > max(30, c.ttlSeconds)
                h.raw(stale ? "<tr class=\"stale\"><td>" : "<tr><td>")
                h.text(c.application)
                h.raw("</td><td>")
                h.text("\(c.host) (pid \(c.pid))")
                h.raw("</td><td>")
                h.text(c.version)
                h.raw("</td><td>")
                h.text(c.revision.map(String.init) ?? "none")
                if stale { h.raw(" <span class=\"badge warn\">stale</span>") }
                h.raw("</td><td>")
                h.text(c.source + (c.inSync ? "" : ", not in sync"))
                h.raw("</td><td>")
                h.text(ConsolePages.ago(c.lastSeen, now: now))
                h.raw("</td></tr>")
            }
            h.raw("</tbody></table>")
        }
        for p in live.problems {
            h.raw("<p class=\"problem\">")
            h.text(p.message)
            h.raw("</p>")
        }
        return Rendered(title: "Overview", body: h, live: true, session: session)
    }

    func card(_ h: inout HTML, _ label: String, _ value: String, _ note: String, warn: Bool = false) {
        h.raw(warn ? "<div class=\"card warn\"><div class=\"label\">" : "<div class=\"card\"><div class=\"label\">")
        h.text(label)
        h.raw("</div><div class=\"value\">")
        h.text(value)
        h.raw("</div><div class=\"sub\">")
        h.text(note)
        h.raw("</div></div>")
    }

    func rolloutLink(_ h: inout HTML, _ flag: String) {
        h.raw("<a href=\"/console/rollouts/")
        h.raw(HTML.urlComponent(flag))
        h.raw("\">")
        h.text(flag)
        h.raw("</a>")
    }

    /// The flag list's filters.
    enum FlagFilter: String, CaseIterable {
        case all, overridden, pinned, rollout, disabled, drift
    }

    func flagList(_ session: ConsoleSessions.Session, query: ConsoleForm) async throws -> Rendered {
        // The definitions' texts only: what each flag serves comes from the daemon's client.
        let live = try await control.store.read(parseDefinitions: false)
        let rollouts = try await control.store.readRollouts(includeObservations: false)
        let search = query.trimmed("q")?.lowercased()
        let filter = query["filter"].flatMap(FlagFilter.init(rawValue:)) ?? .all
        var drifted: Set<String> = []
        if filter == .drift { drifted = Set((try await drift(revision: live.revision) ?? []).map(\.flag)) }
        let inRollout = Set(rollouts.rollouts.values.filter { $0.status.isActive }.map(\.flag))
        var keys = live.definitionTexts.keys.sorted()
        if let search { keys = keys.filter { $0.lowercased().contains(search) } }
        switch filter {
        case .all: break
        case .overridden: keys = keys.filter { live.overrides[$0] != nil }
        case .pinned: keys = keys.filter { live.pins[$0] != nil }
        case .rollout: keys = keys.filter { inRollout.contains($0) }
        case .disabled: keys = keys.filter { client.evaluate($0).reason == .disabled }
        case .drift: keys = keys.filter { drifted.contains($0) }
        }
        var h = HTML()
        h.raw(
            "<h1>Flags</h1><form method=\"get\" action=\"/console/flags\" class=\"filters\"><input type=\"search\" name=\"q\" placeholder=\"Search keys\" value=\""
        )
        h.text(query["q"] ?? "")
        h.raw("\"><select name=\"filter\">")
        for f in FlagFilter.allCases {
            h.raw(
                "<option value=\"\(f.rawValue)\"\(f == filter ? " selected" : "")>\(f == .drift ? "stale (differs from the files)" : f.rawValue)</option>"
            )
        }
        h.raw("</select><button type=\"submit\">Filter</button></form>")
        h.raw("<p class=\"quiet\">\(keys.count) of \(live.definitionTexts.count) flags, revision \(live.revision)")
        if keys.count > Self.flagRowLimit { h.raw("; the first \(Self.flagRowLimit) shown: search to narrow") }
        h.raw("</p><table><thead><tr><th>Flag</th><th>Serves now (no context)</th><th>State</th><th>Override</th></tr></thead><tbody>")
        for key in keys.prefix(Self.flagRowLimit) {
            h.raw("<tr><td>")
            ConsolePages.flagLink(&h, key)
            h.raw("</td><td>")
            let result = client.evaluate(key)
            if let value = result.value {
                h.raw("<code>")
                h.text(value.jsonString)
                h.raw("</code> ")
                h.text(result.variant ?? "")
            } else {
                h.raw("<span class=\"quiet\">code default</span>")
            }
            h.raw(" <span class=\"quiet\">")
            h.text(result.reason.rawValue)
            h.raw("</span></td><td>")
            h.text(result.reason == .disabled ? "DISABLED" : "ENABLED")
            h.raw("</td><td>")
            if let o = live.overrides[key] {
                h.text("\(o.override.summary) by \(o.actor)")
            }
            if live.pins[key] != nil { h.raw(" <span class=\"badge warn\">pinned</span>") }
            if inRollout.contains(key) {
                h.raw(" <a class=\"badge\" href=\"/console/rollouts/\(HTML.urlComponent(key))\">rollout</a>")
            }
            h.raw("</td></tr>")
        }
        h.raw("</tbody></table>")
        return Rendered(title: "Flags", body: h, session: session)
    }

    func flagPage(_ session: ConsoleSessions.Session, key: String, query: ConsoleForm) async throws -> Rendered {
        let read = try await control.store.read(flag: key)
        guard let definition = read.definition else {
            throw ConsoleError(status: .notFound, title: "Not found", message: "flag '\(key)' is not in \(environment) (revision \(read.revision))")
        }
        let fingerprint = EnvironmentControl.stateFingerprint(read)
        let effective = read.override.map { $0.override.apply(to: definition) } ?? definition
        let meta = try await control.store.meta(LiveEvaluation.metaFields)
        let rollout = try await control.store.rollout(flag: key)
        let history = try await control.store.auditEntries(flag: key, limit: 50)
        let fileDiff = try await drift(revision: read.revision)?.first { $0.flag == key }
        var h = HTML()
        h.raw("<h1>")
        h.text(key)
        h.raw("</h1>")
        if let o = read.override {
            h.raw("<p class=\"override\"><strong>Override:</strong> ")
            h.text("\(o.override.summary), by \(o.actor) at \(ConsolePages.time(o.at))" + (o.reason.map { ": \($0)" } ?? ""))
            h.raw("</p>")
        } else {
            h.raw("<p class=\"quiet\">No override: it serves its definition from the files.</p>")
        }
        if let p = read.pin {
            h.raw("<p class=\"problem\"><strong>Pinned</strong> ")
            h.text("by \(p.by) at \(ConsolePages.time(p.at)): \(p.reason)")
            h.raw("</p>")
        }
        if let rollout, rollout.status.isActive {
            h.raw("<p>In rollout: ")
            rolloutLink(&h, key)
            h.text(" → \(rollout.targetVariant), \(rollout.percent)%, \(rollout.status.rawValue)")
            h.raw("</p>")
        }
        if let hint = fileDiff?.reconcileHint {
            h.raw("<p class=\"hint\">To make the files agree: ")
            h.text(hint)
            h.raw("</p>")
        }
        h.raw("<h2>Targeting</h2><p class=\"targeting\">")
        if let t = effective["targeting"], t != .object([:]), !t.isNull {
            h.text(ConsolePages.targetingText(t))
        } else {
            h.text("none: everyone gets \(effective["defaultVariant"]?.stringValue ?? "the code default")")
        }
        h.raw("</p>")

        h.raw("<h2>Evaluate for a context</h2><form method=\"get\" class=\"card\"><label>Context (JSON) <textarea name=\"context\" rows=\"3\">")
        h.text(query["context"] ?? "{\"targetingKey\": \"user-1\"}")
        h.raw("</textarea></label><button type=\"submit\">Evaluate</button></form>")
        if let text = query["context"] {
            do {
                let context = EvaluationContext(try JSONParser.parse(text))
                let result = LiveEvaluation.evaluate(
                    key, effective: effective, flagSetMetadata: LiveEvaluation.flagSetMetadata(meta["flagSetMetadata"]),
                    fractionalAlgorithm: meta["fractionalAlgorithm"], context: context)
                h.raw("<p class=\"result\">")
                h.text(
                    "value \(result.value.map(\.jsonString) ?? "(the caller's code default)"), variant \(result.variant ?? "-"), reason \(result.reason.rawValue)"
                        + (result.errorCode.map { ", error \($0.rawValue)" } ?? ""))
                h.raw("</p>")
            } catch {
                h.raw("<p class=\"problem\">")
                h.text("the context is not valid JSON: \(error)")
                h.raw("</p>")
            }
        }

        if session.mayOperate { flagActions(&h, session: session, key: key, effective: effective, read: read, fingerprint: fingerprint) }

        h.raw("<h2>Definition (from the files)</h2><pre>")
        h.text(definition.prettyJSONString)
        h.raw("</pre>")
        if let file = fileDiff?.fileDefinition, fileDiff?.status == .definitionDiffers {
            h.raw("<h3>The files now say</h3><pre>")
            h.text(file.prettyJSONString)
            h.raw("</pre>")
        }
        h.raw("<h2>History</h2>")
        auditTable(&h, history)
        return Rendered(title: key, body: h, session: session)
    }

    func flagActions(
        _ h: inout HTML, session: ConsoleSessions.Session, key: String, effective: JSONValue, read: FlagStore.FlagRead, fingerprint: String
    ) {
        h.raw("<h2>Actions</h2><div class=\"actions\">")
        let disabled = effective["state"]?.stringValue == "DISABLED"
        actionForm(
            &h, session: session, path: "/console/flags/\(HTML.urlComponent(key))", fingerprint: fingerprint, action: disabled ? "enable" : "disable"
        ) {
            h in h.raw(disabled ? "<strong>Enable</strong>" : "<strong>Disable</strong> (kill switch)")
        }
        let variants = (read.definition?["variants"]?.objectValue ?? [:]).keys.sorted()
        if !variants.isEmpty {
            actionForm(&h, session: session, path: "/console/flags/\(HTML.urlComponent(key))", fingerprint: fingerprint, action: "set") { h in
                h.raw("<strong>Set a variant</strong> <select name=\"variant\">")
                for v in variants {
                    h.raw("<option value=\"")
                    h.text(v)
                    h.raw("\">")
                    h.text(v)
                    h.raw("</option>")
                }
                h.raw("</select>")
            }
        }
        if read.override != nil || read.pin != nil {
            actionForm(&h, session: session, path: "/console/flags/\(HTML.urlComponent(key))", fingerprint: fingerprint, action: "clear") { h in
                h.raw("<strong>Clear the override</strong>")
                if read.pin != nil {
                    h.raw(" <label class=\"inline\"><input type=\"checkbox\" name=\"unpin\" value=\"1\"> and release the pin</label>")
                }
            }
        }
        h.raw("</div>")
    }

    /// A form that asks for a reason and posts `step=preview`.
    func actionForm(
        _ h: inout HTML, session: ConsoleSessions.Session, path: String, fingerprint: String, action: String, _ fields: (inout HTML) -> Void
    ) {
        h.raw("<form method=\"post\" class=\"card action\" action=\"")
        h.text(path)
        h.raw("\">")
        ConsolePages.hidden(&h, "csrf", sessions.csrfToken(for: session))
        ConsolePages.hidden(&h, "action", action)
        ConsolePages.hidden(&h, "seen", fingerprint)
        ConsolePages.hidden(&h, "step", "preview")
        h.raw("<div>")
        fields(&h)
        h.raw("</div>")
        h.raw("<input type=\"text\" name=\"reason\" placeholder=\"Reason (required)\" required maxlength=\"500\">")
        h.raw("<button type=\"submit\" name=\"go\" value=\"\(action)\">Preview \(action)</button></form>")
    }

    func auditTable(_ h: inout HTML, _ entries: [AuditEntry]) {
        if entries.isEmpty {
            h.raw("<p class=\"quiet\">No entries.</p>")
            return
        }
        h.raw(
            "<table class=\"audit\"><thead><tr><th>Time</th><th>Rev</th><th>Action</th><th>Actor</th><th>Flags</th><th>Reason</th></tr></thead><tbody>"
        )
        for e in entries {
            h.raw("<tr><td>")
            h.text(ConsolePages.time(e.at))
            h.raw("</td><td>\(e.revision)</td><td>")
            h.text(e.action)
            h.raw("</td><td>")
            h.text(e.actor)
            h.raw("</td><td>")
            for (i, f) in e.flags.prefix(5).enumerated() {
                if i > 0 { h.raw(", ") }
                ConsolePages.flagLink(&h, f)
            }
            if e.flags.count > 5 { h.raw(" +\(e.flags.count - 5) more") }
            h.raw("</td><td>")
            h.text(e.reason ?? "")
            h.raw("</td></tr>")
        }
        h.raw("</tbody></table>")
    }

    func auditPage(_ session: ConsoleSessions.Session, query: ConsoleForm) async throws -> Rendered {
        let flag = query.trimmed("flag")
        let actor = query.trimmed("actor")
        let action = query.trimmed("action")
        var since: Int64?
        if let text = query.trimmed("since") {
            guard let d = DurationText.parse(text) else {
                throw ConsoleError(status: .badRequest, title: "Bad filter", message: "since: '\(text)' is not a duration; write e.g. 30m, 2h or 7d")
            }
            since = now() - Int64(d.components.seconds)
        }
        let filtering = actor != nil || action != nil
        var entries = try await control.store.auditEntries(flag: flag, since: since, limit: filtering ? 2000 : 200)
        if let actor { entries = entries.filter { $0.actor.localizedCaseInsensitiveContains(actor) } }
        if let action { entries = entries.filter { $0.action.localizedCaseInsensitiveContains(action) } }
        entries = Array(entries.prefix(200))
        var h = HTML()
        h.raw("<h1>Audit</h1><form method=\"get\" action=\"/console/audit\" class=\"filters\">")
        for (name, label) in [("flag", "Flag"), ("actor", "Actor"), ("action", "Action"), ("since", "Since (e.g. 2h)")] {
            h.raw("<input type=\"text\" name=\"\(name)\" placeholder=\"\(label)\" value=\"")
            h.text(query[name] ?? "")
            h.raw("\">")
        }
        h.raw("<button type=\"submit\">Filter</button></form><p class=\"quiet\">Newest first, at most 200.</p>")
        auditTable(&h, entries)
        return Rendered(title: "Audit", body: h, live: true, session: session)
    }
}
