/// Local algebraic identities that leave a value's type unchanged:
/// x*1, 1*x, x/1, x+0, 0+x, x-0, neg(neg(x)), reshape to the same type,
/// reshape of reshape, identity transpose, transpose of transpose,
/// broadcast_to and cast that change nothing; a broadcast_to to a known
/// shape drops its shape-source operand.
public struct Simplify: GraphPass {
    public var name: String { "simplify" }
    public init() {}

    private func splat(_ g: Graph, _ v: Value) -> Float? {
        let n = g[v]
        guard n.kind == .constant else { return nil }
        switch n.attrs["value"] {
        case .floats(let f)? where !f.isEmpty && f.allSatisfy({ $0 == f[0] }): return f[0]
        case .ints(let f)? where !f.isEmpty && f.allSatisfy({ $0 == f[0] }): return Float(f[0])
        default: return nil
        }
    }

    public func run(_ graph: inout Graph, registry: OpRegistry) throws -> Bool {
        var replace: [Int: Int] = [:]
        var changed = false
        func same(_ v: Value, _ i: Int) -> Bool { graph.type(of: v) == graph.nodes[i].type }
        for i in graph.nodes.indices {
            let n = graph.nodes[i]
            let ins = n.inputs.map { Value(replace[$0.id] ?? $0.id) }
            var target: Value? = nil
            switch n.kind {
            case .mul?:
                if splat(graph, ins[1]) == 1, same(ins[0], i) { target = ins[0] }
                else if splat(graph, ins[0]) == 1, same(ins[1], i) { target = ins[1] }
            case .div?:
                if splat(graph, ins[1]) == 1, same(ins[0], i) { target = ins[0] }
            case .add?:
                if splat(graph, ins[1]) == 0, same(ins[0], i) { target = ins[0] }
                else if splat(graph, ins[0]) == 0, same(ins[1], i) { target = ins[1] }
            case .sub?:
                if splat(graph, ins[1]) == 0, same(ins[0], i) { target = ins[0] }
            case .neg?:
                if graph[ins[0]].kind == .neg { target = graph[ins[0]].inputs[0] }
            case .reshape?, .broadcastTo?, .cast?:
                if same(ins[0], i) { target = ins[0] }
                else if n.kind == .broadcastTo, ins.count == 2, n.type.isFullyKnown {
                    // A known shape needs no shape-source operand (which would tie this value to it).
                    graph.nodes[i].inputs = [ins[0]]
                    graph.nodes[i].attrs["shape"] = .ints(n.type.shape)
                    changed = true
                }
                else if n.kind == .reshape, graph[ins[0]].kind == .reshape {
                    graph.nodes[i].inputs = [graph[ins[0]].inputs[0]]
                    changed = true
                }
            case .transpose?:
                let perm = (try? n.attrs.ints("perm")) ?? []
                if perm == Array(perm.indices) { target = ins[0] }
                else if graph[ins[0]].kind == .transpose, let inner = try? graph[ins[0]].attrs.ints("perm") {
                    let composed = perm.map { inner[$0] }
                    graph.nodes[i].inputs = [graph[ins[0]].inputs[0]]
                    graph.nodes[i].attrs["perm"] = .ints(composed)
                    changed = true
                    if composed == Array(composed.indices) { target = graph[ins[0]].inputs[0] }
                }
            default: break
            }
            if let t = target, n.name == nil || graph[t].name == nil {
                replace[i] = replace[t.id] ?? t.id
            }
        }
        if replace.isEmpty { return changed }
        graph = rewrite(graph, replace: replace, drop: [])
        return true
    }
}
