import CKernels
import Foundation
import KerasIR

/// A graph compiled at concrete shapes: a flat list of kernel calls over
/// preassigned buffers (one arena for intermediates, the parameter store for
/// persistent state, a constant pool, a shared workspace). The calls are
/// data (`KernelCall`); the plan binds their operands to addresses once, and
/// `run()` walks the bound list and allocates nothing.
public final class ExecutionPlan {
    /// One kernel call and the node it computes (an op may lower to several).
    public struct Step {
        public var node: Int
        public var kernel: KernelCall
    }

    /// A step bound to memory: the C entry, its table row, the parameter
    /// block and the operand addresses, all owned by the plan.
    private struct Launch {
        var entry: ck_entry_fn
        var row: UnsafePointer<ck_kernel_info>
        var params: UnsafeRawPointer
        var operands: UnsafePointer<UnsafeMutableRawPointer?>
    }

    /// The specialized, optimized, scheduled graph the plan runs.
    public let graph: Graph
    public let memory: MemoryPlan
    public let store: ParameterStore
    public let isa: ck_isa
    /// The ops this plan was specialized, optimized, planned and lowered with.
    public let registry: OpRegistry
    public private(set) var steps: ContiguousArray<Step> = []
    public private(set) var passLog: [PassRecord] = []
    public private(set) var workspaceBytes = 0

    private let arena: UnsafeMutableRawPointer
    /// The inputs' storage, outside the arena: filled by the caller, read by the run.
    private let feeds: UnsafeMutableRawPointer
    private var constants: [UnsafeMutableRawPointer] = []
    private var workspace: UnsafeMutableRawPointer?
    private var launches: ContiguousArray<Launch> = []
    private var callMemory: [UnsafeMutableRawPointer] = []
    private let counter: UnsafeMutablePointer<UInt64>
    private let ownsCounter: Bool
    private var pointers: [UnsafeMutableRawPointer] = []
    private var inputIndex: [String: Int] = [:]
    // Hot-path tables: plain arrays walked with index loops, so a run
    // allocates nothing even where generics are not specialized (debug builds).
    private var inputNodes: ContiguousArray<Int> = []
    private var inputNameList: ContiguousArray<String> = []
    private var inputByteCounts: ContiguousArray<Int> = []
    private var outputIsF32: ContiguousArray<Bool> = []
    private var outputPointers: ContiguousArray<UnsafeRawPointer> = []
    private var fed: ContiguousArray<Bool>

    /// Compiles `graph` with the given shapes for its inputs (by name).
    /// `registry` defines the ops for every stage: specialization, the passes
    /// (the pipeline runs with it), memory planning, lowering and costs.
    /// `randomCounter`: the count of runs random ops draw by, when plans
    /// share one (a model's training plans at every batch size, as Keras's
    /// seed generator state is one variable); the caller keeps it alive.
    /// By default the plan counts its own runs from 0.
    public init(_ graph: Graph, inputShapes: [String: [Int]], store: ParameterStore,
                isa: ck_isa = ck_best_isa(), registry: OpRegistry = .standard, pipeline: PassPipeline? = .standard(),
                randomCounter: UnsafeMutablePointer<UInt64>? = nil) throws {
        try checkISASetting()
        self.registry = registry
        var g = try specialize(graph, inputShapes: inputShapes, registry: registry)
        if var p = pipeline {
            p.registry = registry
            try p.run(&g)
            passLog = p.log
        }
        self.graph = g
        self.store = store
        self.isa = isa
        // Parameters first, so a type conflict or an impossible size fails
        // before anything is allocated.
        var newParameterBytes = 0
        for v in g.parameters where !store.contains(g[v].name ?? "v\(v.id)") {
            let t = g.type(of: v)
            let bytes = try MemoryLimit.check("parameter %\(g[v].name ?? "v\(v.id)")", shape: t.shape) * 4
            newParameterBytes = MemoryLimit.saturatingSum(newParameterBytes, bytes)
        }
        try MemoryLimit.check("the parameters of @\(g.name)", count: newParameterBytes, elementBytes: 1)
        for v in g.parameters {
            try store.declare(g[v].name ?? "v\(v.id)", g.type(of: v))
        }
        memory = try MemoryPlan(g, registry: registry, inPlace: !PassPipeline.environmentList("KERAS_DISABLE_PASSES").contains("in-place"))
        // The arena, feeds, constants and the parameters this plan adds, together.
        var planBytes = MemoryLimit.saturatingSum(memory.arenaBytes, memory.feedBytes)
        for v in g.nodes.indices where g.nodes[v].kind == .constant { planBytes = MemoryLimit.saturatingSum(planBytes, g.nodes[v].type.byteCount ?? 0) }
        try MemoryLimit.check("plan @\(g.name) (arena, feeds and constants)", count: planBytes, elementBytes: 1)
        arena = alignedAllocate(bytes: memory.arenaBytes)
        feeds = alignedAllocate(bytes: memory.feedBytes)
        ownsCounter = randomCounter == nil
        counter = randomCounter ?? .allocate(capacity: 1)
        if ownsCounter { counter.initialize(to: 0) }
        fed = ContiguousArray(repeating: false, count: g.nodes.count)
        try lower()
        for v in g.inputs {
            inputNodes.append(v.id)
            inputNameList.append(g[v].name ?? "v\(v.id)")
            inputByteCounts.append(g.type(of: v).byteCount!)
        }
        for v in g.outputs {
            outputIsF32.append(g.type(of: v).dtype == .f32)
            outputPointers.append(UnsafeRawPointer(pointers[v.id]))
        }
    }

    /// Compiles with every unknown dimension of every input set to `batchSize`.
    public convenience init(_ graph: Graph, batchSize: Int, store: ParameterStore,
                            isa: ck_isa = ck_best_isa(), registry: OpRegistry = .standard, pipeline: PassPipeline? = .standard(),
                            randomCounter: UnsafeMutablePointer<UInt64>? = nil) throws {
        guard batchSize > 0 else { throw IRError("batch size must be positive, got \(batchSize)") }
        try self.init(graph, inputShapes: batchShapes(graph, batchSize), store: store, isa: isa, registry: registry, pipeline: pipeline,
                      randomCounter: randomCounter)
    }

    deinit {
        arena.deallocate()
        feeds.deallocate()
        for c in constants { c.deallocate() }
        workspace?.deallocate()
        for p in callMemory { p.deallocate() }
        if ownsCounter { counter.deallocate() }
    }

    private func lower() throws {
        let g = graph
        pointers = []
        pointers.reserveCapacity(g.nodes.count)
        var buffers: [(inputs: [UnsafeMutableRawPointer], output: UnsafeMutableRawPointer)] = []
        for (i, node) in g.nodes.enumerated() {
            let def = try registry.lookup(node.op)
            let ins = node.inputs.map { pointers[$0.id] }
            let types = node.inputs.map { g.type(of: $0) }
            func addKernels(_ make: (LoweringContext) throws -> [KernelCall], _ out: UnsafeMutableRawPointer) throws {
                let calls: [KernelCall]
                let placed = def.inputOffsets == nil ? [] : Set(node.inputs.indices.filter { memory.placed[node.inputs[$0].id]?.pack == i })
                do { calls = try make(LoweringContext(isa: isa, node: node, inputTypes: types, placedInputs: placed)) } catch let e as IRError {
                    throw IRError.at(layer: node.layer, "lowering \(node.op): \(e.message)")
                } catch let e as AttributeError {
                    throw IRError.at(layer: node.layer, "lowering \(node.op): \(e)")
                }
                for c in calls {
                    workspaceBytes = max(workspaceBytes, c.workspaceBytes)
                    steps.append(Step(node: i, kernel: c))
                    buffers.append((ins, out))
                }
            }
            switch def.lowering {
            case .storage:
                switch node.kind {
                case .parameter?:
                    pointers.append(store.buffer(node.name ?? "v\(i)")!.pointer)
                case .input?:
                    pointers.append(feeds + memory.feedOffset(of: i)!)
                    inputIndex[node.name ?? "v\(i)"] = i
                default:  // constant: its values, or one value filling the shape
                    let count = try MemoryLimit.check("constant \(node.type)", shape: node.type.shape)
                    let p = alignedAllocate(bytes: count * 4)
                    constants.append(p)
                    switch node.attrs["value"] {
                    case .floats(let v)?:
                        let f = p.assumingMemoryBound(to: Float.self)
                        for k in 0..<count { f[k] = v.count == 1 ? v[0] : v[k] }
                    case .ints(let v)? where node.type.dtype == .f32:
                        let f = p.assumingMemoryBound(to: Float.self)
                        for k in 0..<count { f[k] = Float(v.count == 1 ? v[0] : v[k]) }
                    case .ints(let v)?:  // the shape rule checked that every value fits in int32
                        let f = p.assumingMemoryBound(to: Int32.self)
                        for k in 0..<count { f[k] = Int32(truncatingIfNeeded: v.count == 1 ? v[0] : v[k]) }
                    default:
                        throw IRError.at(layer: node.layer, "constant \(node.type) has no value list")
                    }
                    pointers.append(p)
                }
            case .alias:
                pointers.append(ins[0])
            case .view(let offset):
                pointers.append(ins[0] + (try offset(node)) * 4)
            case .inPlace(let make):
                pointers.append(ins[0])
                try addKernels(make, ins[0])
            case .kernels(let make):
                let out = arena + memory.offset(of: i)!
                pointers.append(out)
                try addKernels(make, out)
            }
        }
        if workspaceBytes > 0 {
            try MemoryLimit.check("plan @\(g.name) workspace", count: workspaceBytes, elementBytes: 1)
            workspace = alignedAllocate(bytes: workspaceBytes)
        }
        for (k, step) in steps.enumerated() { launches.append(try bind(step, buffers[k].inputs, buffers[k].output)) }
    }

    /// Resolves a call's operands to addresses and copies its parameter
    /// block next to them, 64-byte aligned, for the plan's life.
    private func bind(_ step: Step, _ inputs: [UnsafeMutableRawPointer], _ output: UnsafeMutableRawPointer) throws -> Launch {
        let call = step.kernel, node = graph.nodes[step.node]
        guard let entry = ck_kernel_entry(Int32(call.kernel)) else {
            throw IRError.at(layer: node.layer, "lowering \(node.op): kernel table row \(call.kernel) has no entry")
        }
        var count = 0
        let table = ck_kernel_table(&count)!
        let paramBytes = (call.params.count + 63) / 64 * 64
        let memory = alignedAllocate(bytes: paramBytes + max(call.operands.count, 1) * MemoryLayout<UnsafeMutableRawPointer?>.stride)
        callMemory.append(memory)
        call.params.withUnsafeBytes { memory.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        let operands = (memory + paramBytes).bindMemory(to: UnsafeMutableRawPointer?.self, capacity: max(call.operands.count, 1))
        for (j, o) in call.operands.enumerated() {
            let base: UnsafeMutableRawPointer?
            switch o.buffer {
            case .input(let i):
                guard i >= 0 && i < inputs.count else {
                    throw IRError.at(layer: node.layer, "lowering \(node.op): \(call.name) names input \(i) of \(inputs.count)")
                }
                base = inputs[i]
            case .output: base = output
            case .workspace: base = workspace
            case .randomCounter: base = UnsafeMutableRawPointer(counter)
            case .absent: base = nil
            }
            operands[j] = base.map { $0 + o.byteOffset }
        }
        return Launch(entry: entry, row: table + call.kernel, params: UnsafeRawPointer(memory), operands: UnsafePointer(operands))
    }

    /// Calls step `i`'s kernel; 0, or its failure code.
    @inline(__always) private func launch(_ i: Int) -> Int64 {
        let l = launches[i]
        return l.entry(l.row, l.params, l.operands)
    }

    /// What a failure code from step `i` means (gather and scatter_add count
    /// indices out of range; gather also names the first one).
    private func failureMessage(_ i: Int, code: Int64) -> String {
        let step = steps[i], op = graph.nodes[step.node].op
        let family = KernelTable.rows[step.kernel.kernel].family
        if family == CK_FAMILY_COLLECTIVE.rawValue {
            return "\(op): the allreduce across processes failed: " + (Collectives.lastError.map { "\($0)" } ?? "code \(code)")
        }
        guard family == CK_FAMILY_GATHER.rawValue || family == CK_FAMILY_SCATTER_ADD.rawValue else {
            return "\(op) failed with code \(code)"
        }
        let p = launches[i].params.load(as: ck_index_call.self)
        var first = ""
        if family == CK_FAMILY_GATHER.rawValue, let idx = launches[i].operands[0]?.assumingMemoryBound(to: Int32.self) {
            for k in 0..<Int(p.nidx) where idx[k] < 0 || Int64(idx[k]) >= p.rows { first = "index \(idx[k]) at position \(k); "; break }
        }
        return "\(op): \(first)\(code) of \(p.nidx) indices out of range [0, \(p.rows))"
    }

    // MARK: Running

    public var inputNames: [String] { graph.inputs.map { graph[$0].name ?? "v\($0.id)" } }

    public func inputType(_ name: String) -> TensorType? { inputIndex[name].map { graph.nodes[$0].type } }

    /// The position of input `name` in the hot-path tables (a loop, not a dictionary: no allocation).
    private func inputPosition(_ name: String) throws -> Int {
        var k = 0
        while k < inputNameList.count && inputNameList[k] != name { k += 1 }
        guard k < inputNameList.count else {
            throw IRError("plan for @\(graph.name) has no input %\(name) (inputs: \(inputNames.joined(separator: ", ")))")
        }
        return k
    }

    /// Copies raw 4-byte elements into an input; the byte count must match.
    public func setInput(_ name: String, bytes: UnsafeRawBufferPointer) throws {
        try fillInput(name, bytes: bytes.count) { dst in
            if bytes.count > 0 { dst.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        }
    }

    /// Lets `body` write input `name` where the run reads it (its bytes in
    /// the feed block), so a caller that gathers a batch needs no buffer of
    /// its own and no second copy. `bytes`, what the caller will write, must
    /// be the input's size. The input counts as fed once `body` returns; if it
    /// throws, the input is not fed.
    public func fillInput(_ name: String, bytes: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> Void) throws {
        let k = try inputPosition(name), i = inputNodes[k]
        guard bytes == inputByteCounts[k] else {
            let t = graph.nodes[i].type
            throw IRError("input %\(name) expects \(t) (\(t.elementCount!) values), got \(bytes / 4) values")
        }
        fed[i] = false
        try body(UnsafeMutableRawBufferPointer(start: pointers[i], count: bytes))
        fed[i] = true
    }

    public func setInput(_ name: String, _ t: Tensor) throws {
        if let i = inputIndex[name], graph.nodes[i].type != t.type {
            throw IRError("input %\(name) expects \(graph.nodes[i].type), got \(t.type)")
        }
        try t.withRawBytes { try setInput(name, bytes: $0) }
    }

    /// Runs every step once. Fails, before any parameter is written, if an
    /// input was never fed or a kernel reports bad data.
    public func run() throws {
        var k = 0
        while k < inputNodes.count {
            if !fed[inputNodes[k]] { throw IRError("input %\(inputNameList[k]) of @\(graph.name) was not fed") }
            k += 1
        }
        var i = 0
        let n = steps.count
        while i < n {
            let code = launch(i)
            if code != 0 {
                throw IRError.at(layer: graph.nodes[steps[i].node].layer, failureMessage(i, code: code))
            }
            i += 1
        }
        counter.pointee &+= 1
    }

    /// One kernel call's share of a profiled run: its median time over the
    /// runs and its node's cost (a node lowered to several calls splits it).
    public struct StepTime {
        public var step: Int
        public var op: String
        public var kernel: String
        public var layer: String?
        public var seconds: Double
        public var flops: Int
        public var bytes: Int
    }

    /// Runs the plan `runs` times, timing every kernel call; returns each
    /// call's median time, slowest first. For finding where a plan spends its
    /// time (keras-bench --profile); the timers cost a few nanoseconds per call.
    public func profile(runs: Int) throws -> [StepTime] {
        let n = max(runs, 1)
        var samples = [[Double]](repeating: [], count: steps.count)
        let clock = ContinuousClock()
        for _ in 0..<n {
            for i in steps.indices {
                let t0 = clock.now
                let code = launch(i)
                let d = clock.now - t0
                samples[i].append(Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
                if code != 0 { throw IRError("\(failureMessage(i, code: code)) while profiling") }
            }
            counter.pointee &+= 1
        }
        var callsPerNode: [Int: Int] = [:]
        for s in steps { callsPerNode[s.node, default: 0] += 1 }
        return steps.enumerated().map { i, s in
            let node = graph.nodes[s.node]
            let c = registry[node.op]?.cost(node.inputs.map { graph.type(of: $0) }, node.type, node.attrs) ?? Cost(flops: 0, bytes: 0)
            let share = callsPerNode[s.node]!
            let sorted = samples[i].sorted()
            return StepTime(step: i, op: node.op, kernel: s.kernel.name, layer: node.layer, seconds: sorted[sorted.count / 2],
                            flops: c.flops / share, bytes: c.bytes / share)
        }.sorted { $0.seconds > $1.seconds }
    }

    public var outputCount: Int { graph.outputs.count }

    public func outputType(_ i: Int) -> TensorType { graph.type(of: graph.outputs[i]) }

    /// Storage of output `i`, valid until the next run.
    public func outputPointer(_ i: Int) -> UnsafeRawPointer { UnsafeRawPointer(pointers[graph.outputs[i].id]) }

    /// The first element of output `i` (for scalars such as a loss); allocation-free.
    public func scalarOutput(_ i: Int) -> Float {
        let p = outputPointers[i]
        return outputIsF32[i] ? p.load(as: Float.self) : Float(p.load(as: Int32.self))
    }

    public func output(_ i: Int) -> Tensor { Tensor(type: outputType(i), copying: outputPointer(i)) }

    /// Feeds, runs, and returns copies of all outputs.
    public func run(_ feeds: [String: Tensor]) throws -> [Tensor] {
        for (name, t) in feeds { try setInput(name, t) }
        try run()
        return (0..<outputCount).map(output)
    }

    /// The kernel list, one line per step, then the memory plan.
    public var listing: String {
        let names = GraphPrinter(graph)
        var lines = ["plan @\(graph.name) isa=\(String(cString: ck_isa_name(isa))) steps=\(steps.count) workspace=\(workspaceBytes) bytes"]
        for (k, s) in steps.enumerated() {
            let n = graph.nodes[s.node]
            lines.append("  \(k): \(names.ref(Value(s.node))) = \(n.op) -> \(s.kernel)" + (n.layer.map { "  # \($0)" } ?? ""))
        }
        lines.append(memory.description)
        return lines.joined(separator: "\n")
    }

    /// FLOPs and bytes of one run, from the ops' cost rules.
    public var cost: Cost {
        var total = Cost(flops: 0, bytes: 0)
        for s in steps {
            let n = graph.nodes[s.node]
            if let c = registry[n.op]?.cost(n.inputs.map { graph.type(of: $0) }, n.type, n.attrs) {
                total.flops += c.flops
                total.bytes += c.bytes
            }
        }
        return total
    }
}

/// KERAS_ISA caps the kernels' instruction set and KERAS_GEMM_BLOCKING sets
/// the GEMM's cache blocks; a value the C side would ignore is a mistake
/// worth reporting before anything runs.
func checkISASetting() throws {
    if let p = getenv("KERAS_ISA") {
        let v = String(cString: p)
        guard ["ref", "avx2", "avx512"].contains(v) else {
            throw IRError("KERAS_ISA='\(abbreviated(v, limit: 40))' is not one of ref, avx2, avx512")
        }
    }
    if let p = getenv("KERAS_GEMM_BLOCKING") {
        var b = ck_gemm_blocking()
        guard ck_gemm_parse_blocking(p, &b) == 0 else {
            throw IRError("KERAS_GEMM_BLOCKING='\(abbreviated(String(cString: p), limit: 40))' is not MC,KC,NC "
                          + "(MC 1...4096, KC 8...4096, NC 1...65536)")
        }
    }
}
