/// Removes nodes that no output, parameter update or argument needs. Arguments stay:
/// they are the graph's signature.
public struct DeadCodeElimination: GraphPass {
    public var name: String { "dce" }
    public init() {}

    public func run(_ graph: inout Graph, registry: OpRegistry) throws -> Bool {
        var live = [Bool](repeating: false, count: graph.nodes.count)
        for v in graph.outputs { live[v.id] = true }
        for (i, n) in graph.nodes.enumerated() where n.isArgument || registry[n.op]?.updatesParameters == true { live[i] = true }
        for i in stride(from: graph.nodes.count - 1, through: 0, by: -1) where live[i] {
            for v in graph.nodes[i].inputs { live[v.id] = true }
        }
        let dead = Set(live.indices.filter { !live[$0] })
        if dead.isEmpty { return false }
        graph = rewrite(graph, replace: [:], drop: dead)
        return true
    }
}
