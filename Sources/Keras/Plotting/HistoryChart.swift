import Foundation

/// The training history as an SVG chart, written directly: one panel per
/// metric (loss, accuracy, ...), training and validation curves per epoch,
/// on round tick values with gridlines, labelled epoch ticks and the legend
/// above the data.
public enum HistoryChart {
    public static func svg(_ history: [String: [Float]], title: String = "Training history", metrics only: [String]? = nil) -> String {
        let metrics = (only ?? history.keys.filter { !$0.hasPrefix("val_") })
            .sorted { a, b in a == "loss" ? b != "loss" : b == "loss" ? false : a < b }
        let panelW = 420.0, panelH = 260.0, margin = 60.0, header = 44.0
        let width = Double(max(metrics.count, 1)) * (panelW + margin) + margin, height = panelH + header + 2 * margin
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += "<text x=\"\(margin)\" y=\"24\" font-size=\"16\">\(escape(title))</text>\n"
        for (p, name) in metrics.enumerated() {
            let x0 = margin + Double(p) * (panelW + margin), y0 = margin + header
            let series = [(name, "#1f77b4"), ("val_" + name, "#ff7f0e")].compactMap { key, color in history[key].map { (key, $0, color) } }
            let all = series.flatMap(\.1).filter(\.isFinite).map(Double.init)
            let ticks = niceTicks(all.min() ?? 0, all.max() ?? 1)
            let lo = ticks.first!, hi = ticks.last!
            let epochs = max(series.map(\.1.count).max() ?? 1, 1)
            func px(_ i: Int) -> Double { x0 + (epochs <= 1 ? panelW / 2 : Double(i) / Double(epochs - 1) * panelW) }
            func py(_ v: Double) -> Double { y0 + panelH - (v - lo) / (hi - lo) * panelH }
            // the metric's name and the legend above the plot area, so neither covers a curve
            out += "<text x=\"\(x0)\" y=\"\(y0 - 26)\" font-size=\"14\">\(escape(name))</text>\n"
            for (i, (key, _, color)) in series.enumerated() {
                let lx = x0 + panelW - 190 + Double(i) * 95
                out += "<rect x=\"\(lx)\" y=\"\(y0 - 15)\" width=\"14\" height=\"3\" fill=\"\(color)\"/>"
                out += "<text x=\"\(lx + 18)\" y=\"\(y0 - 10)\">\(key.hasPrefix("val_") ? "validation" : "training")</text>\n"
            }
            let decimals = tickDecimals(ticks)
            for v in ticks {
                let y = py(v)
                out += "<line x1=\"\(x0)\" y1=\"\(y)\" x2=\"\(x0 + panelW)\" y2=\"\(y)\" stroke=\"#e5e5e5\"/>"
                out += "<text x=\"\(x0 - 6)\" y=\"\(y + 4)\" text-anchor=\"end\">\(formatFixed(v, decimals))</text>\n"
            }
            for e in epochTicks(epochs) {
                let x = px(e - 1)
                out += "<line x1=\"\(x)\" y1=\"\(y0)\" x2=\"\(x)\" y2=\"\(y0 + panelH)\" stroke=\"#f0f0f0\"/>"
                out += "<text x=\"\(x)\" y=\"\(y0 + panelH + 16)\" text-anchor=\"middle\">\(e)</text>\n"
            }
            out += "<rect x=\"\(x0)\" y=\"\(y0)\" width=\"\(panelW)\" height=\"\(panelH)\" fill=\"none\" stroke=\"#999\"/>\n"
            out += "<text x=\"\(x0 + panelW / 2)\" y=\"\(y0 + panelH + 36)\" text-anchor=\"middle\">epoch</text>\n"
            for (key, values, color) in series {
                let pts = values.enumerated().filter { $0.element.isFinite }.map { "\(px($0.offset)),\(py(Double($0.element)))" }.joined(separator: " ")
                out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(pts)\"><title>\(escape(key))</title></polyline>\n"
                for (j, v) in values.enumerated() where v.isFinite { out += "<circle cx=\"\(px(j))\" cy=\"\(py(Double(v)))\" r=\"2.5\" fill=\"\(color)\"/>\n" }
            }
        }
        return out + "</svg>\n"
    }

    /// Writes the chart through a temporary file and a rename.
    public static func write(_ history: History, to path: String, title: String = "Training history", metrics: [String]? = nil) throws {
        try writeFileAtomically(path, svg(history.history, title: title, metrics: metrics))
    }

    /// Tick values 1, 2 or 5 times a power of ten apart that cover [lo, hi]
    /// in about `count` steps; the axis runs from the first to the last.
    static func niceTicks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        var lo = lo, hi = hi
        if !(hi - lo > 1e-12) { lo -= 0.5; hi += 0.5 }
        let raw = (hi - lo) / Double(count), power = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= raw } ?? 10 * power
        let first = floor(lo / step), last = ceil(hi / step)
        return stride(from: first, through: last, by: 1).map { ($0 * step * 1e9).rounded() / 1e9 }
    }

    /// Decimals that tell the ticks apart (none for whole steps).
    static func tickDecimals(_ ticks: [Double]) -> Int {
        guard ticks.count > 1 else { return 0 }
        let step = ticks[1] - ticks[0]
        return max(0, Int(-floor(log10(step) + 1e-9)))
    }

    /// Epoch labels (from 1) at a round spacing, about eight at most.
    static func epochTicks(_ epochs: Int) -> [Int] {
        let step = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000].first { epochs / $0 <= 8 } ?? max(epochs / 8, 1)
        return [1] + stride(from: step, through: epochs, by: step).filter { $0 > 1 }
    }
}

/// Keras's plot of a History (its `history` dictionary): one panel per
/// metric, or the ones named, with validation curves where they exist.
public func plotHistory(_ history: History, to path: String, metrics: [String]? = nil, title: String = "Training history") throws {
    guard path.hasSuffix(".svg") else { throw KerasError("plotHistory writes SVG; got '\(path)'") }
    if let m = metrics, let missing = m.first(where: { history.history[$0] == nil }) {
        throw KerasError("plotHistory: no metric '\(missing)' in the history (it has: \(history.history.keys.sorted().joined(separator: ", ")))")
    }
    try HistoryChart.write(history, to: path, title: title, metrics: metrics)
}

func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        .replacingOccurrences(of: "\"", with: "&quot;")
}
