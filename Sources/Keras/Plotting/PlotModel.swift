/// Keras's plot_model: the layer graph with names, types and shapes, as
/// Graphviz DOT text or as SVG drawn directly (layers in call order, one box
/// per layer, edges for every call's inputs).
public enum ModelPlot {
    struct Box { var label: [String]; var parents: [Int] }

    static func boxes(_ model: Model) -> [Box] {
        let layers = model.layers
        var index: [ObjectIdentifier: Int] = [:]
        for (i, l) in layers.enumerated() { index[ObjectIdentifier(l)] = i }
        var inputBox: Int? = nil
        var out: [Box] = []
        if model is Sequential, let t = model.inputs.first {
            out.append(Box(label: ["input (InputLayer)", "output: \(formatShape(t.shape))"], parents: []))
            inputBox = 0
        }
        let base = out.count
        for (i, l) in layers.enumerated() {
            let node = l.inboundNodes.first
            let ins = node?.inputs.map { formatShape($0.shape) }.joined(separator: ", ") ?? "-"
            let outs = node?.outputShapes.map { formatShape($0) }.joined(separator: ", ") ?? "-"
            var parents = node?.inputs.compactMap { index[ObjectIdentifier($0.node.layer)].map { $0 + base } } ?? []
            if parents.isEmpty, let ib = inputBox, i == 0 { parents = [ib] }
            let label = l is InputLayer ? ["\(l.name) (InputLayer)", "output: \(outs)"] : ["\(l.name) (\(l.kerasClassName))", "input: \(ins)", "output: \(outs)"]
            out.append(Box(label: label, parents: parents))
        }
        return out
    }

    public static func dot(_ model: Model) -> String {
        var s = "digraph \"\(model.name)\" {\n  node [shape=record, fontname=\"sans-serif\"];\n"
        for (i, b) in boxes(model).enumerated() {
            let label = b.label.map { $0.replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "|", with: "\\|") }.joined(separator: "|")
            s += "  n\(i) [label=\"{\(label)}\"];\n"
            for p in b.parents { s += "  n\(p) -> n\(i);\n" }
        }
        return s + "}\n"
    }

    public static func svg(_ model: Model) -> String {
        let bs = boxes(model)
        var depth = [Int](repeating: 0, count: bs.count)
        for (i, b) in bs.enumerated() { depth[i] = (b.parents.map { depth[$0] + 1 }.max() ?? 0) }
        var column = [Int](repeating: 0, count: bs.count), used: [Int: Int] = [:]
        for i in bs.indices { column[i] = used[depth[i], default: 0]; used[depth[i], default: 0] += 1 }
        let w = 300.0, h = 64.0, gapX = 40.0, gapY = 36.0
        let cols = (used.values.max() ?? 1), rows = (depth.max() ?? 0) + 1
        let width = Double(cols) * (w + gapX) + gapX, height = Double(rows) * (h + gapY) + gapY
        func pos(_ i: Int) -> (Double, Double) { (gapX + Double(column[i]) * (w + gapX), gapY + Double(depth[i]) * (h + gapY)) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<defs><marker id=\"a\" markerWidth=\"8\" markerHeight=\"8\" refX=\"7\" refY=\"4\" orient=\"auto\"><path d=\"M0,0 L8,4 L0,8 z\" fill=\"#555\"/></marker></defs>\n"
        for (i, b) in bs.enumerated() {
            let (x, y) = pos(i)
            for p in b.parents {
                let (px, py) = pos(p)
                s += "<line x1=\"\(px + w / 2)\" y1=\"\(py + h)\" x2=\"\(x + w / 2)\" y2=\"\(y)\" stroke=\"#555\" marker-end=\"url(#a)\"/>\n"
            }
            s += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(w)\" height=\"\(h)\" rx=\"6\" fill=\"#eef3fb\" stroke=\"#4a6fa5\"/>\n"
            for (k, line) in b.label.enumerated() {
                s += "<text x=\"\(x + 10)\" y=\"\(y + 18 + Double(k) * 17)\"\(k == 0 ? " font-weight=\"bold\"" : "")>\(escape(line))</text>\n"
            }
        }
        return s + "</svg>\n"
    }
}

/// keras.utils.plot_model: writes SVG (path ending in .svg) or DOT text
/// (.dot, .gv) through a temporary file and a rename. Raster formats would
/// need a renderer this package does not carry, so they are an error.
public func plotModel(_ model: Model, to path: String) throws {
    let lower = path.lowercased()
    if lower.hasSuffix(".dot") || lower.hasSuffix(".gv") {
        try writeFileAtomically(path, ModelPlot.dot(model))
    } else if lower.hasSuffix(".svg") {
        try writeFileAtomically(path, ModelPlot.svg(model))
    } else {
        throw KerasError("plot_model: cannot write '\(path)': the formats are .svg and .dot (or .gv)")
    }
}
