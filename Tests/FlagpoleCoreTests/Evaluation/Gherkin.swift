/// A small Gherkin reader: Feature, Background, Scenario, Scenario Outline, Examples tables and
/// tags. Step text and table cells are kept verbatim (no escape processing, so `A\u0000B` stays
/// eight characters), apart from trimming the spaces around cells.
enum Gherkin {
    struct Step {
        var text: String
        var table: [[String]]
        var line: Int
    }

    struct Examples {
        var name: String
        var tags: [String]
        var header: [String] = []
        var rows: [(line: Int, cells: [String])] = []
    }

    struct Scenario {
        var name: String
        var tags: [String]
        var line: Int
        var isOutline: Bool
        var steps: [Step] = []
        var examples: [Examples] = []
    }

    struct Feature {
        var file: String
        var name = ""
        var tags: [String] = []
        var background: [Step] = []
        var scenarios: [Scenario] = []
    }

    /// One runnable case: a plain scenario, or one row of an outline's examples.
    struct Case: CustomStringConvertible {
        var file: String
        var scenario: String
        var line: Int
        /// The example row's line, for outline rows.
        var rowLine: Int?
        var tags: Set<String>
        var steps: [Step]

        var description: String {
            let row = rowLine.map { ", row at line \($0)" } ?? ""
            return "\(file):\(line) \"\(scenario)\"\(row) \(tags.sorted().joined(separator: " "))"
        }
    }

    struct SyntaxError: Error, CustomStringConvertible {
        var file: String
        var line: Int
        var message: String
        var description: String { "\(file):\(line): \(message)" }
    }

    private static let stepKeywords = ["Given ", "When ", "Then ", "And ", "But ", "* "]

    static func parse(_ text: String, file: String) throws -> Feature {
        var feature = Feature(file: file)
        var pendingTags: [String] = []
        enum Section { case none, background, scenario, examples }
        var section = Section.none
        var docString: (fence: String, step: Int)?
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)

        func appendStep(_ step: Step) {
            if section == .background {
                feature.background.append(step)
            } else {
                feature.scenarios[feature.scenarios.count - 1].steps.append(step)
            }
        }
        func appendRow(_ cells: [String], line: Int) throws {
            switch section {
            case .examples:
                let s = feature.scenarios.count - 1
                let e = feature.scenarios[s].examples.count - 1
                if feature.scenarios[s].examples[e].header.isEmpty {
                    feature.scenarios[s].examples[e].header = cells
                } else {
                    feature.scenarios[s].examples[e].rows.append((line, cells))
                }
            case .background:
                guard !feature.background.isEmpty else { throw SyntaxError(file: file, line: line, message: "table without a step") }
                feature.background[feature.background.count - 1].table.append(cells)
            case .scenario:
                let s = feature.scenarios.count - 1
                guard !feature.scenarios[s].steps.isEmpty else { throw SyntaxError(file: file, line: line, message: "table without a step") }
                feature.scenarios[s].steps[feature.scenarios[s].steps.count - 1].table.append(cells)
            case .none:
                throw SyntaxError(file: file, line: line, message: "table outside a scenario")
            }
        }

        for (i, raw) in lines.enumerated() {
            let lineNumber = i + 1
            let line = raw.trimmingSpaces()
            if let fence = docString?.fence {
                if line == fence { docString = nil }
                continue  // doc strings are not used by the suites we run
            }
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("\"\"\"") || line.hasPrefix("```") {
                docString = (String(line.prefix(3)), lineNumber)
                continue
            }
            if line.hasPrefix("@") {
                let beforeComment = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
                pendingTags += beforeComment.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                continue
            }
            if let rest = line.dropKeyword("Feature:") {
                feature.name = rest
                feature.tags = pendingTags
                pendingTags = []
                continue
            }
            if line.dropKeyword("Rule:") != nil {
                pendingTags = []
                continue
            }
            if line.dropKeyword("Background:") != nil {
                section = .background
                continue
            }
            if let (rest, outline) = line.dropScenarioKeyword() {
                feature.scenarios.append(Scenario(name: rest, tags: pendingTags, line: lineNumber, isOutline: outline))
                pendingTags = []
                section = .scenario
                continue
            }
            if let rest = line.dropKeyword("Examples:") ?? line.dropKeyword("Scenarios:") {
                guard !feature.scenarios.isEmpty else { throw SyntaxError(file: file, line: lineNumber, message: "Examples outside a scenario") }
                feature.scenarios[feature.scenarios.count - 1].examples.append(Examples(name: rest, tags: pendingTags))
                pendingTags = []
                section = .examples
                continue
            }
            if line.hasPrefix("|") {
                try appendRow(cells(of: line), line: lineNumber)
                continue
            }
            if let keyword = stepKeywords.first(where: { line.hasPrefix($0) }) {
                guard section == .background || section == .scenario else {
                    throw SyntaxError(file: file, line: lineNumber, message: "step outside a scenario")
                }
                appendStep(Step(text: String(line.dropFirst(keyword.count)), table: [], line: lineNumber))
                continue
            }
            // Free-form description text.
        }
        return feature
    }

    /// The cells of a table row: split at unescaped `|`, spaces around each cell trimmed.
    static func cells(of line: String) -> [String] {
        var cells: [String] = []
        var current = ""
        var escaped = false
        var started = false
        for ch in line {
            if escaped {
                if ch != "|" { current.append("\\") }
                current.append(ch)
                escaped = false
            } else if ch == "\\" {
                escaped = true
            } else if ch == "|" {
                if started { cells.append(current.trimmingSpaces()) }
                started = true
                current = ""
            } else {
                current.append(ch)
            }
        }
        return cells
    }

    /// Every case of a feature, outlines expanded row by row with the tags of feature, scenario and
    /// examples block.
    static func cases(of feature: Feature) -> [Case] {
        var out: [Case] = []
        for s in feature.scenarios {
            let baseTags = Set(feature.tags + s.tags)
            if !s.isOutline {
                out.append(
                    Case(file: feature.file, scenario: s.name, line: s.line, rowLine: nil, tags: baseTags, steps: feature.background + s.steps))
                continue
            }
            for e in s.examples {
                for row in e.rows {
                    var values: [String: String] = [:]
                    for (h, v) in zip(e.header, row.cells) { values[h] = v }
                    func fill(_ text: String) -> String {
                        var t = text
                        for (h, v) in values { t = t.replacingAll("<\(h)>", with: v) }
                        return t
                    }
                    let steps = (feature.background + s.steps).map { step in
                        Step(text: fill(step.text), table: step.table.map { $0.map(fill) }, line: step.line)
                    }
                    out.append(
                        Case(file: feature.file, scenario: s.name, line: s.line, rowLine: row.line, tags: baseTags.union(e.tags), steps: steps))
                }
            }
        }
        return out
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }

    func dropKeyword(_ keyword: String) -> String? {
        guard hasPrefix(keyword) else { return nil }
        return dropFirst(keyword.count).trimmingSpaces()
    }

    func dropScenarioKeyword() -> (String, Bool)? {
        for (k, outline) in [("Scenario Outline:", true), ("Scenario Template:", true), ("Scenario:", false), ("Example:", false)] {
            if let rest = dropKeyword(k) { return (rest, outline) }
        }
        return nil
    }

    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return String(self) }
        var out = ""
        var rest = Substring(self)
        while let r = rest.firstRange(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        out += rest
        return out
    }
}
