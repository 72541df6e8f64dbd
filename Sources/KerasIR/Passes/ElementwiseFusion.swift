/// Fuses trees of f32 elementwise ops that share one result shape (an
/// optimizer's update rule, a dropout mask applied and scaled, an activation
/// gradient) into one fused_elementwise kernel: one pass over memory instead
/// of one per op. An op joins its consumer's tree when that consumer is its
/// only user; operands from outside must be the result's shape, one value,
/// or a trailing part of it (a bias row). A dropout mask (a Bernoulli draw,
/// and elementwise ops of it and single values) is recomputed inside every
/// tree that uses it instead of being stored: the draw is a function of the
/// seed, the run counter and the index, so the forward and the backward pass
/// see the same mask. Decisions, taken or refused, are recorded with their
/// reasons.
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

    /// A draw a fused program can make where it is used: a Bernoulli mask
    /// of known shape, shaped by its template (whose values it never reads).
    static func fusibleDraw(_ n: Node) -> Bool {
        FusedProgram.randomOps[n.op] != nil && n.inputs.count == 1 && n.type.isFullyKnown
            && n.attrs.sortedKeys.allSatisfy { ["p", "seed"].contains($0) }
    }

    public func run(_ graph: inout Graph, registry: OpRegistry) throws -> Bool {
        decisions = []
        let uses = GraphUses(graph)
        let users = uses.users
        func ref(_ i: Int) -> String { uses.ref(i) }
        let nodes = graph.nodes
        func fusible(_ i: Int) -> Bool { ElementwiseFusion.fusible(nodes[i], in: graph) || ElementwiseFusion.fusibleDraw(nodes[i]) }
        // Values cheaper to recompute than to store: draws, and elementwise ops of them and single values.
        var recomputable = [Bool](repeating: false, count: nodes.count)
        for i in nodes.indices where !uses.outputs.contains(i) {
            recomputable[i] = ElementwiseFusion.fusibleDraw(nodes[i])
                || (ElementwiseFusion.fusible(nodes[i], in: graph) && nodes[i].inputs.allSatisfy { recomputable[$0.id] || graph.type(of: $0).elementCount == 1 }
                    && nodes[i].inputs.contains { recomputable[$0.id] })
        }
        func absorbable(_ i: Int) -> Bool {
            guard fusible(i), !users[i].isEmpty, uses.singleUse(i) || recomputable[i] else { return false }
            return users[i].allSatisfy { u in ElementwiseFusion.fusible(nodes[u.id], in: graph) && nodes[u.id].type == nodes[i].type }
        }
        /// A member's operands: a draw reads none (its template only gives the shape).
        func operands(_ i: Int) -> [Value] { ElementwiseFusion.fusibleDraw(nodes[i]) ? [] : nodes[i].inputs }
        var replace: [Int: Node] = [:]
        var drop = Set<Int>()
        var fusedInto = Set<Int>()  // roots of the trees made
        for root in nodes.indices where fusible(root) && !absorbable(root) {
            var members = Set<Int>()
            var stack = [root]
            while let i = stack.popLast() {
                guard members.insert(i).inserted else { continue }
                for v in operands(i) where absorbable(v.id) { stack.append(v.id) }
            }
            guard members.count >= 2 else { continue }
            let order = members.sorted()
            var externals: [Value] = []
            for i in order { for v in operands(i) where !members.contains(v.id) && !externals.contains(v) { externals.append(v) } }
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
                if ElementwiseFusion.fusibleDraw(n) {
                    return FusedProgram.Instruction(op: n.op, alpha: Float((try? n.attrs.float("p", default: 0.5)) ?? 0.5), args: [],
                                                    seed: UInt64(bitPattern: Int64((try? n.attrs.int("seed")) ?? 0)),
                                                    shard: (try? n.attrs.int("shard", default: 0)) ?? 0)
                }
                return FusedProgram.Instruction(op: n.op, alpha: alpha, args: n.inputs.map { v in
                    position[v.id].map { (false, $0) } ?? (true, externals.firstIndex(of: v)!)
                })
            })
            let r = nodes[root]
            replace[root] = Node(kind: .fusedElementwise, inputs: externals, attrs: ["program": .string(program.text)], type: out,
                                 name: r.name, layer: r.layer)
            for i in order where i != root { drop.insert(i) }
            fusedInto.insert(root)
            let recomputed = order.filter { $0 != root && !uses.singleUse($0) }
            decisions.append("fused \(order.map { "\(nodes[$0].op) \(ref($0))" }.joined(separator: ", ")) -> fused_elementwise"
                             + (recomputed.isEmpty ? "" : " (recomputing \(recomputed.map(ref).joined(separator: ", ")) instead of storing it)"))
        }
        if replace.isEmpty { return false }
        // A recomputed value stays where a user of it was not fused (its tree was refused).
        func covered(_ i: Int) -> Bool { fusedInto.contains(i) || (drop.contains(i) && users[i].allSatisfy { covered($0.id) }) }
        drop = drop.filter { covered($0) }
        for (i, node) in replace { graph.nodes[i] = node }
        graph = rewrite(graph, replace: [:], drop: drop)
        return true
    }
}
