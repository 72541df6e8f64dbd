import CKernels

/// Max pooling folded into the convolution before it: max_pool(conv_bias_act)
/// with 2x2 windows at stride 2 and no padding becomes conv_bias_act
/// {max_pool=[2,2]}, one kernel that pools each pair of output rows while
/// they are in cache, so the convolution's result (the largest tensor of a
/// CNN's inference) is never written out and read back. Only where that
/// result has no other reader: a training step keeps it for the gradient.
/// Shapes the fused kernel would run through its reference loops are left
/// alone, with the reason.
public final class ConvPoolFusion: DecisionRecordingPass, GraphPass {
    public var name: String { "fuse-conv-pool" }

    public func run(_ graph: inout Graph, registry: OpRegistry) throws -> Bool {
        decisions = []
        let uses = GraphUses(graph)
        func ref(_ i: Int) -> String { uses.ref(i) }
        let nodes = graph.nodes
        var replace: [Int: Node] = [:]
        var drop = Set<Int>()
        for pi in nodes.indices where nodes[pi].kind == .maxPool {
            let p = nodes[pi], ci = p.inputs[0].id, c = nodes[ci]
            guard c.kind == .convBiasAct, c.attrs["max_pool"] == nil else { continue }
            let x = graph.type(of: c.inputs[0]), w = graph.type(of: c.inputs[1]), y = c.type
            guard x.rank == 4, let window = try? PoolWindow(p.attrs, rank: 2, op: "max_pool") else { continue }
            guard window.pool == [2, 2], window.strides == [2, 2], window.pads.allSatisfy({ $0 == 0 }) else {
                decisions.append("not fused \(ref(ci)) -> \(ref(pi)): the kernel pools 2x2 windows at stride 2 without padding, not pool \(window.pool) strides \(window.strides) pads \(window.pads)")
                continue
            }
            guard uses.singleUse(ci) else {
                decisions.append("not fused \(ref(ci)) -> \(ref(pi)): the convolution's result "
                                 + (uses.outputs.contains(ci) ? "is a graph output" : "has \(uses.users[ci].count) readers (a training step keeps it for the gradient)"))
                continue
            }
            guard let geometry = try? ConvGeometry(c.attrs, rank: 2, op: "conv_bias_act"), x.shape[1...].allSatisfy({ $0 != TensorType.unknown }) else {
                continue
            }
            guard !fusedParts(c.attrs).residual else {
                decisions.append("not fused \(ref(ci)) -> \(ref(pi)): the convolution adds a residual")
                continue
            }
            var d = geometry.desc(batch: 1, inSpatial: Array(x.shape[1...2]), outSpatial: Array(y.shape[1...2]), kernel: Array(w.shape[0...1]),
                                  inChannels: x.shape[3], outChannels: w.shape[3])
            guard ck_conv_pool_fast(&d) != 0 else {
                decisions.append("not fused \(ref(ci)) -> \(ref(pi)): the fused kernel has no fast path for this convolution (\(x.shape[3]) input channels, groups \(geometry.groups))")
                continue
            }
            var attrs = c.attrs
            attrs["max_pool"] = .ints([2, 2])
            replace[pi] = Node(kind: .convBiasAct, inputs: c.inputs, attrs: attrs, type: p.type, name: p.name, layer: c.layer)
            drop.insert(ci)
            decisions.append("fused conv_bias_act \(ref(ci)) + max_pool \(ref(pi)) -> conv_bias_act {max_pool=[2,2]}")
        }
        if replace.isEmpty { return false }
        for (i, node) in replace { graph.nodes[i] = node }
        graph = rewrite(graph, replace: [:], drop: drop)
        return true
    }
}
