/// A unified diff (`diff -u`, `git diff`) of two texts, line by line, with 3 lines of context.
package enum UnifiedDiff {
    /// The diff of `old` and `new` under `--- a/PATH` / `+++ b/PATH`; empty when they are equal.
    package static func make(path: String, old: String, new: String, context: Int = 3) -> String {
        if old == new { return "" }
        let a = lines(old), b = lines(new)
        // Common head and tail first: the middle (where edits are) is small.
        var head = 0
        while head < a.count, head < b.count, a[head] == b[head] { head += 1 }
        var tail = 0
        while tail < a.count - head, tail < b.count - head, a[a.count - 1 - tail] == b[b.count - 1 - tail] { tail += 1 }
        let am = Array(a[head..<(a.count - tail)]), bm = Array(b[head..<(b.count - tail)])
        // Each line of the whole texts: (' ', '-', '+'), with its line numbers.
        var ops: [(Character, String)] = a[..<head].map { (" ", $0) }
        ops += middle(am, bm)
        ops += a[(a.count - tail)...].map { (" ", $0) }
        return "--- a/\(path)\n+++ b/\(path)\n" + hunks(ops, context: context)
    }

    /// Lines, each with its line break (`\ No newline at end of file` marks a last line without one).
    static func lines(_ text: String) -> [String] {
        var out = text.split(separator: "\n", omittingEmptySubsequences: false).map { String($0) + "\n" }
        if text.hasSuffix("\n") {
            out.removeLast()
        } else if let last = out.popLast() {
            out.append(String(last.dropLast()) + "\n\\ No newline at end of file\n")
        }
        return out
    }

    /// The longest common subsequence of the middles, as operations.
    private static func middle(_ a: [String], _ b: [String]) -> [(Character, String)] {
        guard a.count * b.count <= 4_000_000 else { return a.map { ("-", $0) } + b.map { ("+", $0) } }
        let n = a.count, m = b.count
        var table = [Int32](repeating: 0, count: (n + 1) * (m + 1))
        for i in stride(from: n - 1, through: 0, by: -1) {
            for j in stride(from: m - 1, through: 0, by: -1) {
                table[i * (m + 1) + j] =
                    a[i] == b[j] ? table[(i + 1) * (m + 1) + j + 1] + 1 : max(table[(i + 1) * (m + 1) + j], table[i * (m + 1) + j + 1])
            }
        }
        var out: [(Character, String)] = []
        var i = 0, j = 0
        while i < n || j < m {
            if i < n, j < m, a[i] == b[j] {
                out.append((" ", a[i]))
                i += 1
                j += 1
            } else if j < m, i == n || table[i * (m + 1) + j + 1] >= table[(i + 1) * (m + 1) + j] {
                out.append(("+", b[j]))
                j += 1
            } else {
                out.append(("-", a[i]))
                i += 1
            }
        }
        // Within a run of changes, removals before additions, as diff -u prints them.
        var sorted: [(Character, String)] = []
        var run: [(Character, String)] = []
        for op in out + [(" ", "")] {
            if op.0 == " " {
                sorted += run.filter { $0.0 == "-" } + run.filter { $0.0 == "+" }
                run = []
                sorted.append(op)
            } else {
                run.append(op)
            }
        }
        return Array(sorted.dropLast())
    }

    private static func hunks(_ ops: [(Character, String)], context: Int) -> String {
        let changed = ops.indices.filter { ops[$0].0 != " " }
        var out = ""
        var k = 0
        while k < changed.count {
            let first = max(0, changed[k] - context)
            var last = changed[k]
            while k + 1 < changed.count, changed[k + 1] - last <= 2 * context {
                k += 1
                last = changed[k]
            }
            k += 1
            let end = min(ops.count, last + context + 1)
            // Line numbers where the hunk starts in each text.
            var oldLine = 1, newLine = 1
            for op in ops[..<first] {
                if op.0 != "+" { oldLine += 1 }
                if op.0 != "-" { newLine += 1 }
            }
            let slice = ops[first..<end]
            let oldCount = slice.count { $0.0 != "+" }, newCount = slice.count { $0.0 != "-" }
            out += "@@ -\(oldCount == 0 ? oldLine - 1 : oldLine),\(oldCount) +\(newCount == 0 ? newLine - 1 : newLine),\(newCount) @@\n"
            for op in slice { out += String(op.0) + op.1 }
        }
        return out
    }
}
