/// Data parallelism's averages in one allreduce per step: the allreduce_mean
/// nodes (one per gradient, the loss and each metric sum) gathered in graph
/// order into buckets of at most `bucketBytes`, each bucket one pack of
/// their inputs, one allreduce_mean over it, and a view per former result.
/// One call moves the step's bytes at the link's bandwidth, where a call per
/// tensor paid the network's latency per tensor (Horovod's tensor fusion,
/// DDP's gradient buckets). The memory planner then has each gradient's
/// kernel write straight into its block of the pack, so nothing is copied.
/// Only allreduces whose input depends on no other allreduce are bucketed
/// (packing a value with one computed from it would be a cycle).
public final class AllreduceBucketing: DecisionRecordingPass, GraphPass {
    public var name: String { "bucket-allreduce" }
    /// Bytes per bucket at most (Horovod's default fusion threshold, 64 MiB).
    public var bucketBytes: Int

    public init(bucketBytes: Int = 64 << 20) {
        self.bucketBytes = bucketBytes
        super.init()
    }

    public func run(_ graph: inout Graph, registry: OpRegistry) throws -> Bool {
        decisions = []
        let uses = GraphUses(graph)
        // Whether a value is computed from an allreduce's result.
        var downstream = [Bool](repeating: false, count: graph.nodes.count)
        var buckets: [[Int]] = [], current: [Int] = [], bytes = 0
        for (i, node) in graph.nodes.enumerated() {
            downstream[i] = node.inputs.contains { downstream[$0.id] || graph.nodes[$0.id].kind == .allreduceMean }
            guard node.kind == .allreduceMean else { continue }
            let x = node.inputs[0]
            guard let size = graph.type(of: x).byteCount else {
                decisions.append("not bucketed \(uses.ref(i)): \(graph.type(of: x)) has an unknown size")
                continue
            }
            if downstream[x.id] {
                decisions.append("not bucketed \(uses.ref(i)): its input is computed from another allreduce's result")
                continue
            }
            if !current.isEmpty && bytes + size > bucketBytes {
                buckets.append(current)
                current = []
                bytes = 0
            }
            current.append(i)
            bytes += size
        }
        if !current.isEmpty { buckets.append(current) }
        buckets = buckets.filter { $0.count > 1 }
        guard !buckets.isEmpty else { return false }
        for bucket in buckets {
            let inputs = bucket.map { graph.nodes[$0].inputs[0] }
            let types = inputs.map { graph.type(of: $0) }
            let total = types.reduce(0) { $0 + $1.elementCount! }
            let layer = graph.nodes[bucket[0]].layer
            let pack = graph.nodes.count
            graph.nodes.append(Node(kind: .pack, inputs: inputs, type: .f32([total]), layer: layer))
            graph.nodes.append(Node(kind: .allreduceMean, inputs: [Value(pack)], type: .f32([total]), layer: layer))
            for (r, offset) in zip(bucket, packOffsets(types)) {
                let old = graph.nodes[r]
                graph.nodes[r] = Node(kind: .view, inputs: [Value(pack + 1)], attrs: ["offset": .int(offset), "shape": .ints(old.type.shape)],
                                      type: old.type, name: old.name, layer: old.layer)
            }
            decisions.append("bucketed \(bucket.count) allreduce_mean (\(bucket.map(uses.ref).joined(separator: ", "))) "
                             + "-> one allreduce_mean of a pack of \(total) floats (\(total * 4) bytes)")
        }
        // The packs and their allreduces were appended: move each before its first reader.
        guard let ordered = topologicallyOrdered(graph) else {
            throw IRError("bucket-allreduce: packing the allreduces made a cycle")
        }
        graph = ordered
        return true
    }
}
