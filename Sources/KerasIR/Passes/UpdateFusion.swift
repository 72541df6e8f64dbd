/// Turns a step's parameter updates into one fused_update kernel call: every
/// assign, with the f32 elementwise ops that feed only assigns (an
/// optimizer's rule, moving statistics, the step counter), becomes a job, and
/// all jobs run in one call. Ops connected through full-size values share a
/// job (Adam's m, v and w of one variable: one pass over its memory);
/// single-value ops (bias corrections) are copied into each job that needs
/// them and computed once per job. A job is left as it was, with the reason,
/// when its ops do not share the parameter's shape or another job reads the
/// parameter it writes. A sum of squares feeding only the update (clipping
/// by norm: reduce_sum(square(g)) over every element) is computed by the
/// same call before any job ({sum_squares}), so clipping adds no kernel.
public final class UpdateFusion: DecisionRecordingPass, GraphPass {
    public var name: String { "fuse-updates" }

    public func run(_ graph: inout Graph, registry: OpRegistry) throws -> Bool {
        decisions = []
        let uses = GraphUses(graph)
        let nodes = graph.nodes
        func ref(_ i: Int) -> String { uses.ref(i) }
        let assigns = uses.rewritableAssigns(graph)
        guard !assigns.isEmpty else { return false }
        let targets = Set(assigns.map { nodes[$0].inputs[0].id })
        let isAssign = Set(assigns)
        // The region: elementwise ops all of whose users are in the region or assigns.
        var inRegion = [Bool](repeating: false, count: nodes.count)
        for i in nodes.indices.reversed() where ElementwiseFusion.fusible(nodes[i], in: graph) && !uses.outputs.contains(i) {
            inRegion[i] = !uses.users[i].isEmpty && uses.users[i].allSatisfy { inRegion[$0.id] || isAssign.contains($0.id) }
        }
        func uniform(_ i: Int) -> Bool { nodes[i].type.elementCount == 1 }
        // Sums of squares of values from outside the region, read only by it: the kernel computes them first.
        var normSource: [Int: Value] = [:]
        for i in nodes.indices where nodes[i].kind == .reduceSum && uniform(i) && nodes[i].type.dtype == .f32 && !uses.outputs.contains(i) {
            let sq = nodes[i].inputs[0].id
            guard nodes[sq].kind == .square, uses.singleUse(sq), !targets.contains(nodes[sq].inputs[0].id),
                  graph.type(of: nodes[sq].inputs[0]).isFullyKnown,
                  !uses.users[i].isEmpty, uses.users[i].allSatisfy({ inRegion[$0.id] }) else { continue }
            normSource[i] = nodes[sq].inputs[0]
        }
        // Jobs: assigns and full-size region ops connected through full-size values.
        var parent = Array(nodes.indices)
        func find(_ i: Int) -> Int { var x = i; while parent[x] != x { parent[x] = parent[parent[x]]; x = parent[x] }; return x }
        func union(_ a: Int, _ b: Int) { parent[find(a)] = find(b) }
        for i in nodes.indices where inRegion[i] && !uniform(i) {
            for v in nodes[i].inputs where inRegion[v.id] && !uniform(v.id) { union(i, v.id) }
        }
        for a in assigns where inRegion[nodes[a].inputs[1].id] && !uniform(nodes[a].inputs[1].id) { union(a, nodes[a].inputs[1].id) }
        var jobRoots: [Int] = []
        var members: [Int: [Int]] = [:]
        for i in nodes.indices where (inRegion[i] && !uniform(i)) || isAssign.contains(i) {
            let r = find(i)
            if members[r] == nil { jobRoots.append(r) }
            members[r, default: []].append(i)
        }

        var externals: [Value] = []
        var jobs: [UpdateProgram.Job] = []
        var fused: [Int] = []
        for r in jobRoots {
            let jobAssigns = members[r]!.filter { isAssign.contains($0) }
            let t = nodes[jobAssigns[0]].type
            var set = Set(members[r]!.filter { !isAssign.contains($0) })
            // the single-value region ops this job uses, transitively
            var stack = Array(set)
            while let i = stack.popLast() {
                for v in nodes[i].inputs where inRegion[v.id] && uniform(v.id) && set.insert(v.id).inserted { stack.append(v.id) }
            }
            for a in jobAssigns where inRegion[nodes[a].inputs[1].id] && set.insert(nodes[a].inputs[1].id).inserted {
                stack.append(nodes[a].inputs[1].id)
                while let i = stack.popLast() {
                    for v in nodes[i].inputs where inRegion[v.id] && uniform(v.id) && set.insert(v.id).inserted { stack.append(v.id) }
                }
            }
            let order = set.sorted()
            let what = jobAssigns.map { "assign \(ref($0))" }.joined(separator: ", ")
            if let bad = order.first(where: { !uniform($0) && nodes[$0].type != t }) {
                decisions.append("not fused \(what): \(nodes[bad].op) \(ref(bad)) is \(nodes[bad].type), not the parameter's \(t)")
                continue
            }
            var jobExternals: [Value] = []
            for i in order { for v in nodes[i].inputs where !set.contains(v.id) && !jobExternals.contains(v) { jobExternals.append(v) } }
            for a in jobAssigns where !set.contains(nodes[a].inputs[1].id) && !jobExternals.contains(nodes[a].inputs[1]) {
                jobExternals.append(nodes[a].inputs[1])
            }
            if let bad = jobExternals.first(where: { !fusedOperandFits(graph.type(of: $0), t) }) {
                decisions.append("not fused \(what): operand \(ref(bad.id)) \(graph.type(of: bad)) broadcasts into \(t) other than as one value or a trailing part")
                continue
            }
            // A full-size parameter this job writes may be read only by this job; no value stored may be a parameter being written.
            let written = jobAssigns.map { nodes[$0].inputs[0].id }
            if t.elementCount != 1, let p = written.first(where: { p in
                uses.users[p].contains { u in (inRegion[u.id] || isAssign.contains(u.id)) && !set.contains(u.id) && !jobAssigns.contains(u.id) }
            }) {
                decisions.append("not fused \(what): another update reads \(ref(p)), which this job writes")
                continue
            }
            if let a = jobAssigns.first(where: { targets.contains(nodes[$0].inputs[1].id) }) {
                decisions.append("not fused \(what): assign \(ref(a)) stores parameter \(ref(nodes[a].inputs[1].id)), which is itself updated")
                continue
            }
            // Input 0 is the first target, so the node's result names it.
            if externals.isEmpty { externals.append(nodes[jobAssigns[0]].inputs[0]) }
            func input(_ v: Value) -> Int {
                if let k = externals.firstIndex(of: v) { return k }
                externals.append(v)
                return externals.count - 1
            }
            let position = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($0.element, $0.offset) })
            let program = FusedProgram(order.map { i in
                let n = nodes[i]
                let alpha = unaryAlphaKey(n.op).flatMap { k in n.attrs[k] != nil ? unaryKernel(n.op, n.attrs)?.1 : nil }
                return FusedProgram.Instruction(op: n.op, alpha: alpha, args: n.inputs.map { v in position[v.id].map { (false, $0) } ?? (true, input(v)) })
            })
            let stores = jobAssigns.map { a in
                let v = nodes[a].inputs[1]
                return UpdateProgram.Store(target: input(nodes[a].inputs[0]), value: position[v.id].map { (false, $0) } ?? (true, input(v)))
            }
            jobs.append(UpdateProgram.Job(program: program, stores: stores))
            fused += jobAssigns
            decisions.append("fused \(what)\(order.isEmpty ? "" : " with " + order.map { "\(nodes[$0].op) \(ref($0))" }.joined(separator: ", ")) -> job \(jobs.count - 1)")
        }
        guard !jobs.isEmpty else { return false }
        // Sums of squares become the operands after the node's inputs: x<inputs + r>.
        let norms = externals.filter { normSource[$0.id] != nil }
        var sumSquares: [Int] = []
        if !norms.isEmpty {
            var real = externals.filter { normSource[$0.id] == nil }
            for v in norms where !real.contains(normSource[v.id]!) { real.append(normSource[v.id]!) }
            sumSquares = norms.map { real.firstIndex(of: normSource[$0.id]!)! }
            let remap = externals.map { v in real.firstIndex(of: v) ?? real.count + norms.firstIndex(of: v)! }
            jobs = jobs.map { $0.remappingInputs(remap) }
            for v in norms { decisions.append("sum of squares \(ref(v.id)) of \(ref(normSource[v.id]!.id)) -> computed first by the fused_update") }
            externals = real
        }
        // The layer that owns most of the updates names the kernel in profiles.
        var counts: [String: Int] = [:]
        for a in fused { counts[nodes[a].layer ?? "", default: 0] += 1 }
        let layer = counts.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }?.key
        let last = fused.max()!
        var attrs: Attributes = ["program": .string(UpdateProgram(jobs).text)]
        if !sumSquares.isEmpty { attrs["sum_squares"] = .ints(sumSquares) }
        graph.nodes[last] = Node(kind: .fusedUpdate, inputs: externals, attrs: attrs,
                                 type: graph.type(of: externals[0]), layer: layer?.isEmpty == false ? layer : nil)
        graph = rewrite(graph, replace: [:], drop: Set(fused.filter { $0 != last }))
        _ = try DeadCodeElimination().run(&graph, registry: registry)
        decisions.append("\(jobs.count) jobs, \(fused.count) stores -> one fused_update")
        return true
    }
}
