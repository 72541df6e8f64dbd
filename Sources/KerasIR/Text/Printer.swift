/// Prints a graph in the dump notation (docs/ir.md): SSA, a type on every
/// value, attributes in braces, the layer that made a node at the end of its
/// line. `GraphParser` reads it back; print -> parse -> print is stable.
public struct GraphPrinter {
    /// Names of values as printed: arguments and named values keep their
    /// names, the rest are numbered in print order.
    public private(set) var names: [String]

    public init(_ g: Graph) {
        names = [String](repeating: "", count: g.nodes.count)
        var next = 0
        for (i, n) in g.nodes.enumerated() {
            if let name = n.name { names[i] = name } else if !n.isArgument {
                names[i] = String(next)
                next += 1
            } else {
                names[i] = "arg\(i)"
            }
        }
    }

    public func ref(_ v: Value) -> String { "%" + names[v.id] }

    public func line(_ g: Graph, _ i: Int) -> String {
        let n = g.nodes[i]
        var s = "\(ref(Value(i))) = \(n.op)"
        if !n.inputs.isEmpty { s += "(" + n.inputs.map(ref).joined(separator: ", ") + ")" }
        if !n.attrs.isEmpty { s += " \(n.attrs)" }
        s += " : \(n.type)"
        if let layer = n.layer, !layer.isEmpty { s += "  # \(layer)" }
        return s
    }

    public func print(_ g: Graph) -> String {
        let args = g.arguments.map { v -> String in
            let n = g[v]
            return "\(ref(v)): \(n.type)" + (n.kind == .parameter ? " param" : "")
        }
        var out = "graph @\(g.name)(" + args.joined(separator: ", ") + ")"
        out += " -> (" + g.outputs.map { g.type(of: $0).description }.joined(separator: ", ") + ") {\n"
        for i in g.nodes.indices where !g.nodes[i].isArgument {
            out += "  " + line(g, i) + "\n"
        }
        out += "  return" + (g.outputs.isEmpty ? "" : " " + g.outputs.map(ref).joined(separator: ", ")) + "\n}\n"
        return out
    }
}

extension Graph: CustomStringConvertible {
    /// The dump text of the graph.
    public var description: String { GraphPrinter(self).print(self) }
}
