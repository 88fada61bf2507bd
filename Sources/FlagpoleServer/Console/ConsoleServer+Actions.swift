import FlagpoleControl
import FlagpoleCore
import FlagpoleStore

/// The actions: a form posts `step=preview` (what will change, and for production the second
/// confirmation), then `step=apply`, which goes through the CLI's code with the state the person
/// saw, so a change made meanwhile is shown as a conflict (409), never overwritten.
extension ConsoleServer {
    /// The longest reason accepted, in characters.
    static let reasonLimit = 500

    func reason(_ form: ConsoleForm) throws -> String {
        guard let reason = form.trimmed("reason") else {
            throw ConsoleError(
                status: .badRequest, title: "A reason is needed", message: "say why (the reason goes into the audit trail); go back and fill it in")
        }
        guard reason.count <= Self.reasonLimit else {
            throw ConsoleError(
                status: .badRequest, title: "Reason too long", message: "the reason has \(reason.count) characters; keep it to \(Self.reasonLimit)")
        }
        return reason
    }

    /// For production, the environment's name typed again; else nothing.
    func checkConfirmation(_ form: ConsoleForm) throws {
        guard configuration.isProduction else { return }
        guard form.trimmed("confirm") == environment else {
            throw ConsoleError(
                status: .badRequest, title: "Not confirmed",
                message: "\(environment) is a production environment: type its name, \(environment), in the confirmation box to apply the change")
        }
    }

    func flagAction(_ session: ConsoleSessions.Session, key: String, form: ConsoleForm) async throws -> Rendered {
        let change: EnvironmentControl.RuntimeChange
        switch form["action"] {
        case "disable": change = .enable(false)
        case "enable": change = .enable(true)
        case "clear": change = .clear(unpin: form["unpin"] == "1")
        case "set":
            guard let variant = form["variant"], !variant.isEmpty else {
                throw ConsoleError(status: .badRequest, title: "No variant", message: "choose the variant to serve")
            }
            change = .set(variant: variant)
        default:
            throw ConsoleError(
                status: .badRequest, title: "Unknown action", message: "action must be disable, enable, set or clear, not '\(form["action"] ?? "")'")
        }
        let reason = try reason(form)
        guard let seen = form["seen"], !seen.isEmpty else {
            throw ConsoleError(status: .badRequest, title: "Stale form", message: "the form does not say what you saw; open the flag's page again")
        }
        let path = "/console/flags/\(HTML.urlComponent(key))"
        if form["step"] == "apply" {
            try checkConfirmation(form)
            let outcome = try await control.apply(change, flag: key, actor: session.name, reason: reason, expectedState: seen)
            var h = HTML()
            h.raw("<h1>")
            if let revision = outcome.revision {
                h.text("Done: \(form["action"] ?? "") \(key), revision \(revision)")
                h.raw("</h1><p>")
                h.text("Override now: \(outcome.after?.override.summary ?? "none"). Every client follows within a moment.")
            } else {
                h.text("Nothing to do")
                h.raw("</h1><p>")
                h.text("'\(key)' already was that way; nothing was written.")
            }
            h.raw("</p><p><a href=\"\(path)\">Back to ")
            h.text(key)
            h.raw("</a></p>")
            return Rendered(title: "Done", body: h, session: session)
        }
        // Preview: what the flag is now and what it will be.
        let live = try await control.store.read(flag: key)
        guard let definition = live.definition else {
            throw StoreError(code: .flagNotFound, message: "flag '\(key)' is not in \(environment)")
        }
        guard EnvironmentControl.stateFingerprint(live) == seen else {
            throw StoreError(
                code: .conflict, message: "flag '\(key)' changed since you looked; nothing was written: open its page again and decide anew")
        }
        let before = live.override.map { $0.override.apply(to: definition) } ?? definition
        let after: JSONValue
        var overrideAfter: String
        switch change {
        case .set(let variant):
            guard definition["variants"]?[variant] != nil else {
                throw StoreError(code: .invalidInput, message: "flag '\(key)' has no variant '\(variant)'")
            }
            after = FlagOverride.variant(variant).apply(to: definition)
            overrideAfter = FlagOverride.variant(variant).summary
        case .enable(let on):
            after = FlagOverride.enabled(on).apply(to: definition)
            overrideAfter = FlagOverride.enabled(on).summary
        case .clear(let unpin):
            if live.pin != nil && !unpin {
                throw StoreError(
                    code: .pinned, message: "flag '\(key)' is pinned by an automatic revert; tick 'release the pin' to clear it deliberately")
            }
            after = definition
            overrideAfter = "none (the files' definition)"
        }
        var h = HTML()
        h.raw("<h1>")
        h.text("\((form["action"] ?? "").capitalized) \(key)?")
        h.raw("</h1><table class=\"preview\"><thead><tr><th></th><th>Now</th><th>After</th></tr></thead><tbody><tr><th>Override</th><td>")
        h.text(live.override.map { "\($0.override.summary) by \($0.actor)" } ?? "none")
        h.raw("</td><td>")
        h.text(overrideAfter + " by \(session.name)")
        h.raw("</td></tr><tr><th>State</th><td>")
        h.text(before["state"]?.stringValue ?? "?")
        h.raw("</td><td>")
        h.text(after["state"]?.stringValue ?? "?")
        h.raw("</td></tr><tr><th>Default variant</th><td>")
        h.text(before["defaultVariant"]?.stringValue ?? "(code default)")
        h.raw("</td><td>")
        h.text(after["defaultVariant"]?.stringValue ?? "(code default)")
        h.raw("</td></tr><tr><th>Targeting</th><td>")
        h.text(before["targeting"].map { $0.isNull || $0 == .object([:]) ? "none" : ConsolePages.targetingText($0) } ?? "none")
        h.raw("</td><td>")
        h.text(after["targeting"].map { $0.isNull || $0 == .object([:]) ? "none" : ConsolePages.targetingText($0) } ?? "none")
        h.raw("</td></tr></tbody></table>")
        confirmForm(&h, session: session, path: path, form: form, reason: reason, fields: ["action", "variant", "unpin"])
        return Rendered(title: "Confirm", body: h, session: session)
    }

    func rolloutAction(_ session: ConsoleSessions.Session, flag: String, form: ConsoleForm) async throws -> Rendered {
        guard let command = form["action"].flatMap(EnvironmentControl.RolloutCommand.init(rawValue:)) else {
            throw ConsoleError(
                status: .badRequest, title: "Unknown action", message: "action must be pause, resume, abort or promote, not '\(form["action"] ?? "")'"
            )
        }
        let reason = try reason(form)
        guard let seen = form["seen"], !seen.isEmpty else {
            throw ConsoleError(status: .badRequest, title: "Stale form", message: "the form does not say what you saw; open the rollout's page again")
        }
        let path = "/console/rollouts/\(HTML.urlComponent(flag))"
        if form["step"] == "apply" {
            try checkConfirmation(form)
            let record = try await control.driveRollout(command, flag: flag, actor: session.name, reason: reason, expectedRollout: seen)
            var h = HTML()
            h.raw("<h1>")
            h.text("Done: \(command.rawValue) \(flag)")
            h.raw("</h1><p>")
            h.text("The rollout \(record.id) is \(record.status.rawValue) (revision \(record.revision)).")
            if command == .abort {
                h.text(
                    " \(flag) serves "
                        + (record.before.override.map { "its override before the rollout (\($0.override.summary))" } ?? "the files' definition")
                        + " again.")
            }
            h.raw("</p><p><a href=\"\(path)\">Back to the rollout</a></p>")
            return Rendered(title: "Done", body: h, session: session)
        }
        guard let record = try await control.store.rollout(flag: flag) else {
            throw StoreError(code: .rolloutState, message: "flag '\(flag)' has no rollout in \(environment)")
        }
        guard record.stateFingerprint == seen else {
            throw StoreError(
                code: .conflict,
                message:
                    "the rollout of '\(flag)' changed since you looked: it is now \(record.status.rawValue) at step \(record.stepIndex + 1) of \(record.steps.count) (\(record.percent)%); nothing was written: open its page again"
            )
        }
        // Whether the rollout's state machine allows it, asked now (it is asked again when applying).
        let live = try await control.store.read(flag: flag)
        var machine = RolloutStateMachine(record: record, configuration: .init(environment: environment, actor: session.name))
        for action in machine.event(
            .command(command, by: session.name, reason: reason, flag: RolloutStateMachine.flagChange(record: record, live: live), now: now() * 1000))
        {
            if case .refuse(let why) = action { throw StoreError(code: .rolloutState, message: why.description) }
        }
        var h = HTML()
        h.raw("<h1>")
        h.text("\(command.rawValue.capitalized) the rollout of \(flag)?")
        h.raw("</h1><p class=\"lead\">")
        switch command {
        case .pause:
            h.text(
                "It holds at step \(record.stepIndex + 1) (\(record.percent)% on \(record.targetVariant)): the watcher keeps looking but neither advances nor reverts."
            )
        case .resume:
            h.text("It runs again at \(record.percent)%; the step's clock goes on where it stopped.")
        case .abort:
            h.text(
                "It ends, and \(flag) goes back exactly to what it served before: "
                    + (record.before.override.map { "its override \($0.override.summary)" } ?? "the files' definition") + " (no pin).")
        case .promote:
            h.text("It finishes now: \(record.targetVariant) for everyone.")
        }
        h.raw("</p>")
        confirmForm(&h, session: session, path: path, form: form, reason: reason, fields: ["action"])
        return Rendered(title: "Confirm", body: h, session: session)
    }

    /// The second form: the same fields with `step=apply`, the reason, and for production a box
    /// for the environment's name.
    func confirmForm(_ h: inout HTML, session: ConsoleSessions.Session, path: String, form: ConsoleForm, reason: String, fields: [String]) {
        h.raw("<form method=\"post\" class=\"card confirm\" action=\"")
        h.text(path)
        h.raw("\">")
        ConsolePages.hidden(&h, "csrf", sessions.csrfToken(for: session))
        ConsolePages.hidden(&h, "step", "apply")
        ConsolePages.hidden(&h, "seen", form["seen"] ?? "")
        ConsolePages.hidden(&h, "reason", reason)
        for name in fields {
            if let value = form[name] { ConsolePages.hidden(&h, name, value) }
        }
        h.raw("<p>Reason: <q>")
        h.text(reason)
        h.raw("</q></p>")
        if configuration.isProduction {
            h.raw("<label class=\"prod\">")
            h.text("\(environment) is production. Type its name to confirm:")
            h.raw(" <input type=\"text\" name=\"confirm\" autocomplete=\"off\" required></label>")
        }
        h.raw("<button type=\"submit\" class=\"danger\">Apply</button> <a href=\"")
        h.text(path)
        h.raw("\">Cancel</a></form>")
    }
}
