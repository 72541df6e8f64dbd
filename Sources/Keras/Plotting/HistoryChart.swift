/// The training history as an SVG chart, written directly: one panel per
/// metric (loss, accuracy, ...), training and validation curves per epoch.
public enum HistoryChart {
    public static func svg(_ history: [String: [Float]], title: String = "Training history") -> String {
        let metrics = history.keys.filter { !$0.hasPrefix("val_") }.sorted { a, b in a == "loss" ? true : b == "loss" ? false : a < b }
        let panelW = 420.0, panelH = 260.0, margin = 50.0
        let width = Double(max(metrics.count, 1)) * (panelW + margin) + margin, height = panelH + 2 * margin + 30
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += "<text x=\"\(margin)\" y=\"22\" font-size=\"16\">\(escape(title))</text>\n"
        for (p, name) in metrics.enumerated() {
            let x0 = margin + Double(p) * (panelW + margin), y0 = margin + 20
            let series = [(name, "#1f77b4"), ("val_" + name, "#ff7f0e")].compactMap { key, color in history[key].map { (key, $0, color) } }
            let all = series.flatMap(\.1).filter(\.isFinite)
            var lo = Double(all.min() ?? 0), hi = Double(all.max() ?? 1)
            if hi - lo < 1e-12 { lo -= 0.5; hi += 0.5 }
            let epochs = series.map(\.1.count).max() ?? 1
            func px(_ i: Int) -> Double { x0 + (epochs <= 1 ? panelW / 2 : Double(i) / Double(epochs - 1) * panelW) }
            func py(_ v: Float) -> Double { y0 + panelH - (Double(v) - lo) / (hi - lo) * panelH }
            out += "<rect x=\"\(x0)\" y=\"\(y0)\" width=\"\(panelW)\" height=\"\(panelH)\" fill=\"none\" stroke=\"#999\"/>\n"
            out += "<text x=\"\(x0)\" y=\"\(y0 - 6)\" font-size=\"14\">\(escape(name))</text>\n"
            for k in 0...4 {
                let v = lo + (hi - lo) * Double(k) / 4, y = y0 + panelH - Double(k) / 4 * panelH
                out += "<line x1=\"\(x0 - 4)\" y1=\"\(y)\" x2=\"\(x0)\" y2=\"\(y)\" stroke=\"#999\"/><text x=\"\(x0 - 6)\" y=\"\(y + 4)\" text-anchor=\"end\">\(short(v))</text>\n"
            }
            out += "<text x=\"\(x0 + panelW / 2)\" y=\"\(y0 + panelH + 30)\" text-anchor=\"middle\">epoch (1 to \(epochs))</text>\n"
            for (i, (key, values, color)) in series.enumerated() {
                let pts = values.enumerated().filter { $0.element.isFinite }.map { "\(px($0.offset)),\(py($0.element))" }.joined(separator: " ")
                out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(pts)\"/>\n"
                for (j, v) in values.enumerated() where v.isFinite { out += "<circle cx=\"\(px(j))\" cy=\"\(py(v))\" r=\"2.5\" fill=\"\(color)\"/>\n" }
                out += "<rect x=\"\(x0 + panelW - 150)\" y=\"\(y0 + 10 + Double(i) * 18)\" width=\"12\" height=\"3\" fill=\"\(color)\"/>"
                out += "<text x=\"\(x0 + panelW - 132)\" y=\"\(y0 + 15 + Double(i) * 18)\">\(key.hasPrefix("val_") ? "validation" : "training")</text>\n"
            }
        }
        return out + "</svg>\n"
    }

    /// Writes the chart through a temporary file and a rename.
    public static func write(_ history: History, to path: String, title: String = "Training history") throws {
        try writeFileAtomically(path, svg(history.history, title: title))
    }

    static func short(_ v: Double) -> String { abs(v) >= 100 || (abs(v) < 0.01 && v != 0) ? formatExponent(v) : formatFixed(v, 3) }
}

func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        .replacingOccurrences(of: "\"", with: "&quot;")
}
