/// A rollout's error rates per minute as an SVG, rendered on the server (no script): treatment and
/// control as lines with a point per minute that has outcomes, the ceiling (`maxErrorRate`) as a
/// horizontal line, the allowance (control + `maxErrorIncrease`) as a dashed line, the step
/// boundaries and each decision as vertical marks with their reason as the tooltip.
///
/// Pure: data in, markup out. Colours are presentation attributes (the console's
/// Content-Security-Policy allows no inline `style`).
struct ConsoleChart: Sendable {
    /// One minute's counts.
    struct Minute: Sendable, Hashable {
        /// The Unix minute.
        var minute: Int64
        var treatmentFailures: Double
        var treatmentTotal: Double
        var controlFailures: Double
        var controlTotal: Double

        var treatmentRate: Double? { treatmentTotal > 0 ? treatmentFailures / treatmentTotal : nil }
        var controlRate: Double? { controlTotal > 0 ? controlFailures / controlTotal : nil }
    }

    /// A vertical mark on the time axis.
    struct Mark: Sendable, Hashable {
        /// Unix seconds.
        var at: Int64
        /// The short label (`step 2: 25%`, `revert`).
        var label: String
        /// The tooltip (the decision's reason).
        var detail: String
        /// `step` or the decision (`advance`, `revert`, `pause`, …): its class and colour.
        var kind: String
    }

    var minutes: [Minute]
    /// The chart's time range, Unix seconds.
    var from: Int64
    var to: Int64
    /// The absolute ceiling on the treatment's error rate (0…1).
    var ceiling: Double
    /// How far the treatment may exceed the control (0…1).
    var allowance: Double
    var marks: [Mark]

    static let width = 800.0, height = 300.0
    static let left = 52.0, right = 12.0, top = 14.0, bottom = 34.0

    /// The `<svg>` element.
    func svg() -> HTML {
        let plotW = Self.width - Self.left - Self.right
        let plotH = Self.height - Self.top - Self.bottom
        let span = Double(max(60, to - from))
        var peak = max(0.01, ceiling.isFinite ? ceiling * 1.15 : 0.01)
        for m in minutes {
            if let t = m.treatmentRate { peak = max(peak, t * 1.1) }
            if let c = m.controlRate { peak = max(peak, min(1, c + allowance) * 1.05) }
        }
        peak = min(1, peak)
        func x(_ unix: Double) -> Double { Self.left + (unix - Double(from)) / span * plotW }
        func y(_ rate: Double) -> Double { Self.top + plotH - min(1, max(0, rate / peak)) * plotH }
        func f(_ v: Double) -> String { String((v * 10).rounded() / 10) }

        var h = HTML()
        h.raw(
            "<svg class=\"chart\" viewBox=\"0 0 \(Int(Self.width)) \(Int(Self.height))\" role=\"img\" aria-label=\"Error rate per minute, treatment and control\" xmlns=\"http://www.w3.org/2000/svg\">"
        )
        // Grid and the y axis: five levels.
        for i in 0...4 {
            let rate = peak * Double(i) / 4
            let yy = f(y(rate))
            h.raw("<line class=\"grid\" x1=\"\(f(Self.left))\" x2=\"\(f(Self.width - Self.right))\" y1=\"\(yy)\" y2=\"\(yy)\" stroke=\"#e1e4e8\"/>")
            h.raw(
                "<text x=\"\(f(Self.left - 6))\" y=\"\(f(y(rate) + 4))\" text-anchor=\"end\" font-size=\"11\" fill=\"#57606a\">\(ConsolePages.percent(rate))</text>"
            )
        }
        // The time axis: a label about every 100 px, on whole minutes.
        let minutesSpan = max(1, Int64(span) / 60)
        let every = max(1, Int64((Double(minutesSpan) / (plotW / 100)).rounded(.up)))
        let stepMinutes = [1, 2, 5, 10, 15, 30, 60, 120, 240, 360].first { $0 >= every } ?? every
        var tick = (from / 60 / stepMinutes + 1) * stepMinutes * 60
        while tick <= to {
            let xx = f(x(Double(tick)))
            h.raw("<line x1=\"\(xx)\" x2=\"\(xx)\" y1=\"\(f(Self.top + plotH))\" y2=\"\(f(Self.top + plotH + 4))\" stroke=\"#57606a\"/>")
            h.raw(
                "<text x=\"\(xx)\" y=\"\(f(Self.height - 14))\" text-anchor=\"middle\" font-size=\"11\" fill=\"#57606a\">\(ConsolePages.clock(tick))</text>"
            )
            tick += stepMinutes * 60
        }
        // The ceiling.
        if ceiling.isFinite, ceiling <= peak {
            let yy = f(y(ceiling))
            h.raw(
                "<line class=\"ceiling\" x1=\"\(f(Self.left))\" x2=\"\(f(Self.width - Self.right))\" y1=\"\(yy)\" y2=\"\(yy)\" stroke=\"#cf222e\" stroke-width=\"1.5\" stroke-dasharray=\"2 3\"><title>ceiling \(ConsolePages.percent(ceiling))</title></line>"
            )
            h.raw(
                "<text x=\"\(f(Self.width - Self.right - 4))\" y=\"\(f(y(ceiling) - 4))\" text-anchor=\"end\" font-size=\"11\" fill=\"#cf222e\">ceiling</text>"
            )
        }
        // Marks: step boundaries and decisions.
        for mark in marks where mark.at >= from && mark.at <= to {
            let xx = f(x(Double(mark.at)))
            let colour = mark.kind == "step" ? "#8c959f" : (["revert", "abort", "stop", "would-revert"].contains(mark.kind) ? "#cf222e" : "#1a7f37")
            h.raw("<g class=\"mark ")
            h.text(mark.kind)
            h.raw("\"><line x1=\"\(xx)\" x2=\"\(xx)\" y1=\"\(f(Self.top))\" y2=\"\(f(Self.top + plotH))\" stroke=\"\(colour)\" stroke-width=\"1.5\"")
            if mark.kind == "step" { h.raw(" stroke-dasharray=\"4 3\"") }
            // The label right of the mark, or left of it near the right edge.
            let nearEnd = x(Double(mark.at)) > Self.width - Self.right - 90
            h.raw(
                "/><text x=\"\(f(x(Double(mark.at)) + (nearEnd ? -3 : 3)))\" y=\"\(f(Self.top + 10))\" font-size=\"11\" fill=\"\(colour)\"\(nearEnd ? " text-anchor=\"end\"" : "")>"
            )
            h.text(mark.label)
            h.raw("</text><title>")
            h.text("\(ConsolePages.time(mark.at)) \(mark.label): \(mark.detail)")
            h.raw("</title></g>")
        }
        // The allowance: control + maxErrorIncrease, dashed.
        let allowance = self.allowance
        path(
            &h, cls: "allowance", colour: "#bf8700", dash: "6 4", width: 1.5, value: { m in m.controlRate.map { min(1, $0 + allowance) } }, x: x, y: y
        )
        path(&h, cls: "control", colour: "#0969da", dash: nil, width: 2, value: { $0.controlRate }, x: x, y: y)
        path(&h, cls: "treatment", colour: "#cf222e", dash: nil, width: 2.5, value: { $0.treatmentRate }, x: x, y: y)
        // Points, so a single minute shows too.
        for m in minutes {
            let xx = f(x(Double(m.minute * 60 + 30)))
            if let c = m.controlRate {
                h.raw("<circle class=\"point control\" cx=\"\(xx)\" cy=\"\(f(y(c)))\" r=\"2.5\" fill=\"#0969da\"/>")
            }
            if let t = m.treatmentRate {
                h.raw("<circle class=\"point treatment\" cx=\"\(xx)\" cy=\"\(f(y(t)))\" r=\"3\" fill=\"#cf222e\"><title>")
                h.text("\(ConsolePages.clock(m.minute * 60)) treatment \(ConsolePages.percent(t)) of \(Int(m.treatmentTotal))")
                h.raw("</title></circle>")
            }
        }
        h.raw("<line x1=\"\(f(Self.left))\" x2=\"\(f(Self.left))\" y1=\"\(f(Self.top))\" y2=\"\(f(Self.top + plotH))\" stroke=\"#57606a\"/>")
        h.raw("</svg>")
        return h
    }

    /// A line through the minutes where `value` has a value (a gap where it has none).
    private func path(
        _ h: inout HTML, cls: String, colour: String, dash: String?, width: Double, value: (Minute) -> Double?, x: (Double) -> Double,
        y: (Double) -> Double
    ) {
        var d = ""
        var pen = false
        for m in minutes {
            guard let v = value(m) else {
                pen = false
                continue
            }
            let px = (x(Double(m.minute * 60 + 30)) * 10).rounded() / 10
            let py = (y(v) * 10).rounded() / 10
            d += (pen ? "L" : "M") + "\(px) \(py) "
            pen = true
        }
        guard !d.isEmpty else { return }
        h.raw("<path class=\"\(cls)\" d=\"\(d)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"\(width)\"")
        if let dash { h.raw(" stroke-dasharray=\"\(dash)\"") }
        h.raw("/>")
    }
}
