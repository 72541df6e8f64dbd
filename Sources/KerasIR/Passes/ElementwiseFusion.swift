/// Fuses trees of f32 elementwise ops that share one result shape (an
/// optimizer's update rule, a dropout mask applied and scaled, an activation
/// gradient) into one fused_elementwise kernel: one pass over memory instead
/// of one per op. An op joins its consumer's tree when that consumer is its
/// only user; operands from outside must be the result's shape, one value,
/// or a trailing part of it (a bias row). Decisions, taken or refused, are
/// recorded with their reasons.
public final class ElementwiseFusion: DecisionRecordingPass, GraphPass {
    public var name: String { "fuse-elementwise" }

    /// An f32 op on f32 operands that a fused program can run.
    static func fusible(_ n: Node, in graph: Graph) -> Bool {
        guard n.type.dtype == .f32, n.inputs.allSatisfy({ graph.type(of: $0).dtype == .f32 }) else { return false }
        if FusedProgram.binaryOps[n.op] != nil { return n.inputs.count == 2 }
        if n.kind == .select { return n.inputs.count == 3 }
        guard n.inputs.count == 1, unaryKernel(n.op, n.attrs) != nil else { return false }
        // Only attributes the kernel's alpha carries.
        return n.attrs.sortedKeys.allSatisfy { $0 == unaryAlphaKey(n.op) }
    }

    public func run(_ graph: inout Graph, registry: OpRegistry) throws -> Bool {
        decisions = []
        let uses = GraphUses(graph)
        let users = uses.users
        func ref(_ i: Int) -> String { uses.ref(i) }
        let nodes = graph.nodes
        func absorbable(_ i: Int) -> Bool {
            guard ElementwiseFusion.fusible(nodes[i], in: graph), uses.singleUse(i) else { return false }
            let u = users[i][0].id
            return ElementwiseFusion.fusible(nodes[u], in: graph) && nodes[u].type == nodes[i].type
        }
        var replace: [Int: Node] = [:]
        var drop = Set<Int>()
        for root in nodes.indices where ElementwiseFusion.fusible(nodes[root], in: graph) && !absorbable(root) {
            var members = Set<Int>()
            var stack = [root]
            while let i = stack.popLast() {
                guard members.insert(i).inserted else { continue }
                for v in nodes[i].inputs where absorbable(v.id) { stack.append(v.id) }
            }
            guard members.count >= 2 else { continue }
            let order = members.sorted()
            var externals: [Value] = []
            for i in order { for v in nodes[i].inputs where !members.contains(v.id) && !externals.contains(v) { externals.append(v) } }
            let out = nodes[root].type
            if let bad = externals.first(where: { !fusedOperandFits(graph.type(of: $0), out) }) {
                decisions.append("not fused \(order.map(ref).joined(separator: ", ")): operand \(ref(bad.id)) \(graph.type(of: bad)) broadcasts into \(out) other than as one value or a trailing part")
                continue
            }
            guard externals.contains(where: { graph.type(of: $0) == out }) else {
                decisions.append("not fused \(order.map(ref).joined(separator: ", ")): no operand has the result's shape \(out)")
                continue
            }
            let position = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($0.element, $0.offset) })
            let program = FusedProgram(order.map { i in
                let n = nodes[i]
                let alpha = unaryAlphaKey(n.op).flatMap { k in n.attrs[k] != nil ? unaryKernel(n.op, n.attrs)?.1 : nil }
                return FusedProgram.Instruction(op: n.op, alpha: alpha, args: n.inputs.map { v in
                    position[v.id].map { (false, $0) } ?? (true, externals.firstIndex(of: v)!)
                })
            })
            let r = nodes[root]
            replace[root] = Node(kind: .fusedElementwise, inputs: externals, attrs: ["program": .string(program.text)], type: out,
                                 name: r.name, layer: r.layer)
            for i in order where i != root { drop.insert(i) }
            decisions.append("fused \(order.map { "\(nodes[$0].op) \(ref($0))" }.joined(separator: ", ")) -> fused_elementwise")
        }
        if replace.isEmpty { return false }
        for (i, node) in replace { graph.nodes[i] = node }
        graph = rewrite(graph, replace: [:], drop: drop)
        return true
    }
}
