/// The graph as Graphviz DOT and as JSON, beside the text notation: DOT
/// draws a node per op (arguments as ellipses), edges from operands, and each
/// fused_elementwise node as a cluster of the ops it runs; JSON lists the
/// nodes with their operands, types, attributes and layers.
public enum GraphFormats {
    static func quoted(_ s: String) -> String { quoteString(s) }

    public static func dot(_ g: Graph) -> String {
        let names = GraphPrinter(g)
        var out = "digraph \(quoted(g.name)) {\n  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=10];\n"
        for (i, n) in g.nodes.enumerated() {
            let id = "v\(i)", label = "%\(names.names[i]) = \(n.op)\n\(n.type)" + (n.layer.map { "\n# \($0)" } ?? "")
            if n.kind == .fusedElementwise, let program = try? n.attrs.string("program") {
                // A fusion group: the fused ops inside, the node itself as the cluster's output.
                out += "  subgraph \(quoted("cluster_\(i)")) {\n    label=\(quoted("fused %\(names.names[i])"));\n    style=dashed;\n"
                for (k, ins) in program.split(separator: ";").enumerated() {
                    out += "    \(quoted("\(id)_\(k)")) [shape=box, style=rounded, label=\(quoted(String(ins)))];\n"
                    if k > 0 { out += "    \(quoted("\(id)_\(k - 1)")) -> \(quoted("\(id)_\(k)")) [style=dotted];\n" }
                }
                out += "    \(id) [shape=box, label=\(quoted(label))];\n"
                out += "    \(quoted("\(id)_\(program.split(separator: ";").count - 1)")) -> \(id) [style=dotted];\n  }\n"
            } else {
                out += "  \(id) [shape=\(n.isArgument ? "ellipse" : "box"), label=\(quoted(label))];\n"
            }
            for v in n.inputs { out += "  v\(v.id) -> \(id);\n" }
        }
        for (k, v) in g.outputs.enumerated() {
            out += "  out\(k) [shape=plaintext, label=\(quoted("output \(k)"))];\n  v\(v.id) -> out\(k);\n"
        }
        return out + "}\n"
    }

    public static func json(_ g: Graph) -> String {
        let names = GraphPrinter(g)
        func str(_ s: String) -> String { quoted(s) }
        var nodes: [String] = []
        for (i, n) in g.nodes.enumerated() {
            let attrs = n.attrs.sortedKeys.map { "\(str($0)): \(str(n.attrs[$0]!.description))" }.joined(separator: ", ")
            nodes.append("{\"id\": \(i), \"name\": \(str(names.names[i])), \"op\": \(str(n.op)), "
                + "\"inputs\": [\(n.inputs.map { String($0.id) }.joined(separator: ", "))], \"type\": \(str(n.type.description)), "
                + "\"attrs\": {\(attrs)}, \"layer\": \(n.layer.map(str) ?? "null")}")
        }
        return "{\"graph\": \(str(g.name)), \"outputs\": [\(g.outputs.map { String($0.id) }.joined(separator: ", "))],\n \"nodes\": [\n  "
            + nodes.joined(separator: ",\n  ") + "\n ]}\n"
    }
}
