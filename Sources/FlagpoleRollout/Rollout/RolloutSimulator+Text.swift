import FlagpoleCore

extension RolloutSimulator.CellResult {
    /// The smallest time by which at least `q` of all runs were reverted (a run never reverted
    /// counts as never); nil when fewer than that reverted. `revertTimes` must be sorted.
    package static func detectionQuantile(_ q: Double, revertTimes: [Duration], runs: Int) -> Duration? {
        let needed = Int((q * Double(runs)).rounded(.up))
        guard needed >= 1, needed <= revertTimes.count else { return nil }
        return revertTimes[needed - 1]
    }
}

extension RolloutSimulator {
    /// The grid as `flagctl rollout simulate` prints it: a header row, then one row per cell with
    /// its traffic, error rates, the share reverted within `detectionWindow` and at all, the median
    /// and 95th percentile time to revert ("-" when too few reverted), and the shares that passed or
    /// ended holding for "not enough data"; a "traffic" column names the traffic when some cell's is
    /// not plain (``RolloutSimulator/Scenario/trafficName``). With `showRuns` (default false) a last column says how
    /// many runs each cell had.
    package static func gridLines(_ cells: [CellResult], detectionWindow: Duration, showRuns: Bool = false) -> [String] {
        func percent(_ part: Int, _ whole: Int) -> String {
            whole > 0 ? RolloutText.short(Double(part) * 100 / Double(whole), 1) + "%" : "-"
        }
        let window = DurationText.format(detectionWindow)
        let showTraffic = cells.contains { $0.scenario.trafficName != "plain" }
        var header = [
            "req/s", "baseline", "treatment", "reverted<=\(window)", "reverted", "median", "p95", "passed", "not enough data",
        ]
        if showTraffic { header.insert("traffic", at: 3) }
        if showRuns { header.append("runs") }
        let rows = cells.map { cell -> [String] in
            let s = cell.scenario
            var row = [
                RolloutText.short(s.requestsPerSecond, 3), RolloutText.short(s.baselineErrorRate * 100, 2) + "%",
                RolloutText.short(s.treatmentErrorRate * 100, 2) + "%" + (s.isRegression ? "" : " (none)"),
                percent(cell.revertsWithinWindow, cell.runs), percent(cell.reverts, cell.runs),
                cell.medianDetection.map(DurationText.format) ?? "-", cell.p95Detection.map(DurationText.format) ?? "-",
                percent(cell.passes, cell.runs), percent(cell.notEnoughDataHolds, cell.runs),
            ]
            if showTraffic { row.insert(s.trafficName, at: 3) }
            if showRuns { row.append(String(cell.runs)) }
            return row
        }
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, text in
                let pad = String(repeating: " ", count: widths[i] - text.count)
                return i == 0 ? pad + text : text + (i == cells.count - 1 ? "" : pad)
            }.joined(separator: "  ")
        }
        return [line(header)] + rows.map(line)
    }

    /// One line per goal: `PASS  name: detail`, `FAIL  …`, or `SKIP  …` when the grid lacks its cells.
    package static func goalLines(_ goals: [Goal]) -> [String] {
        goals.map { goal in
            let mark = goal.passed.map { $0 ? "PASS" : "FAIL" } ?? "SKIP"
            return "\(mark)  \(goal.name): \(goal.detail)"
        }
    }
}
