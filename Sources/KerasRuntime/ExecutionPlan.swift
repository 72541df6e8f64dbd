import CKernels
import Foundation
import KerasIR

/// A graph compiled at concrete shapes: a flat list of kernel calls over
/// preassigned buffers (one arena for intermediates, the parameter store for
/// persistent state, a constant pool, a shared workspace). `run()` walks the
/// list and allocates nothing.
public final class ExecutionPlan {
    public struct Step {
        public var node: Int
        public var kernel: Kernel
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
    private var constants: [UnsafeMutableRawPointer] = []
    private let workspace = Workspace()
    private let counter: UnsafeMutablePointer<UInt64>
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
    public init(_ graph: Graph, inputShapes: [String: [Int]], store: ParameterStore,
                isa: ck_isa = ck_best_isa(), registry: OpRegistry = .standard, pipeline: PassPipeline? = .standard()) throws {
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
        // The arena, constants and the parameters this plan adds, together.
        var planBytes = memory.arenaBytes
        for v in g.nodes.indices where g.nodes[v].kind == .constant { planBytes = MemoryLimit.saturatingSum(planBytes, g.nodes[v].type.byteCount ?? 0) }
        try MemoryLimit.check("plan @\(g.name) (arena and constants)", count: planBytes, elementBytes: 1)
        arena = alignedAllocate(bytes: memory.arenaBytes)
        counter = .allocate(capacity: 1)
        counter.initialize(to: 0)
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
                            isa: ck_isa = ck_best_isa(), registry: OpRegistry = .standard, pipeline: PassPipeline? = .standard()) throws {
        guard batchSize > 0 else { throw IRError("batch size must be positive, got \(batchSize)") }
        try self.init(graph, inputShapes: batchShapes(graph, batchSize), store: store, isa: isa, registry: registry, pipeline: pipeline)
    }

    deinit {
        arena.deallocate()
        for c in constants { c.deallocate() }
        workspace.base?.deallocate()
        counter.deallocate()
    }

    private final class Context: LoweringContext {
        let isa: ck_isa
        let node: Node
        let inputTypes: [TensorType]
        let inputs: [UnsafeMutableRawPointer]
        let output: UnsafeMutableRawPointer
        let randomCounter: UnsafeMutablePointer<UInt64>
        let shared: Workspace
        var workspaceRequest = 0
        init(isa: ck_isa, node: Node, inputTypes: [TensorType], inputs: [UnsafeMutableRawPointer],
             output: UnsafeMutableRawPointer, counter: UnsafeMutablePointer<UInt64>, workspace: Workspace) {
            self.isa = isa; self.node = node; self.inputTypes = inputTypes; self.inputs = inputs
            self.output = output; self.randomCounter = counter; self.shared = workspace
        }
        func input(_ i: Int) -> UnsafeMutableRawPointer { inputs[i] }
        func workspace(bytes: Int) -> Workspace {
            workspaceRequest = max(workspaceRequest, bytes)
            return shared
        }
    }

    private func lower() throws {
        let g = graph
        pointers = []
        pointers.reserveCapacity(g.nodes.count)
        for (i, node) in g.nodes.enumerated() {
            let def = try registry.lookup(node.op)
            let ins = node.inputs.map { pointers[$0.id] }
            let types = node.inputs.map { g.type(of: $0) }
            func context(_ out: UnsafeMutableRawPointer) -> Context {
                Context(isa: isa, node: node, inputTypes: types, inputs: ins, output: out, counter: counter, workspace: workspace)
            }
            func addKernel(_ make: (LoweringContext) throws -> Kernel, _ out: UnsafeMutableRawPointer) throws {
                let ctx = context(out)
                let k: Kernel
                do { k = try make(ctx) } catch let e as IRError {
                    throw IRError.at(layer: node.layer, "lowering \(node.op): \(e.message)")
                } catch let e as AttributeError {
                    throw IRError.at(layer: node.layer, "lowering \(node.op): \(e)")
                }
                workspaceBytes = max(workspaceBytes, ctx.workspaceRequest)
                steps.append(Step(node: i, kernel: k))
            }
            switch def.lowering {
            case .storage:
                switch node.kind {
                case .parameter?:
                    pointers.append(store.buffer(node.name ?? "v\(i)")!.pointer)
                case .input?:
                    pointers.append(arena + memory.offset(of: i)!)
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
                try addKernel(make, ins[0])
            case .kernel(let make):
                let out = arena + memory.offset(of: i)!
                pointers.append(out)
                try addKernel(make, out)
            }
        }
        if workspaceBytes > 0 {
            try MemoryLimit.check("plan @\(g.name) workspace", count: workspaceBytes, elementBytes: 1)
            workspace.base = alignedAllocate(bytes: workspaceBytes)
        }
    }

    // MARK: Running

    public var inputNames: [String] { graph.inputs.map { graph[$0].name ?? "v\($0.id)" } }

    public func inputType(_ name: String) -> TensorType? { inputIndex[name].map { graph.nodes[$0].type } }

    /// Copies raw 4-byte elements into an input; the byte count must match.
    public func setInput(_ name: String, bytes: UnsafeRawBufferPointer) throws {
        var k = 0
        while k < inputNameList.count && inputNameList[k] != name { k += 1 }
        guard k < inputNameList.count else {
            throw IRError("plan for @\(graph.name) has no input %\(name) (inputs: \(inputNames.joined(separator: ", ")))")
        }
        let i = inputNodes[k]
        guard bytes.count == inputByteCounts[k] else {
            let t = graph.nodes[i].type
            throw IRError("input %\(name) expects \(t) (\(t.elementCount!) values), got \(bytes.count / 4) values")
        }
        if bytes.count > 0 { pointers[i].copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
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
            let code = steps[i].kernel.run()
            if code != 0 {
                let step = steps[i]
                let node = graph.nodes[step.node]
                throw IRError.at(layer: node.layer, step.kernel.failure?(code) ?? "\(node.op) failed with code \(code)")
            }
            i += 1
        }
        counter.pointee &+= 1
    }

    /// One step's share of a profiled run.
    public struct StepTime {
        public var step: Int
        public var op: String
        public var kernel: String
        public var layer: String?
        public var seconds: Double
    }

    /// Runs the plan `runs` times, timing every step; returns each step's
    /// mean time, slowest first. For finding where a plan spends its time
    /// (keras-bench --profile); the timers cost a few nanoseconds per step.
    public func profile(runs: Int) throws -> [StepTime] {
        var totals = [Double](repeating: 0, count: steps.count)
        let clock = ContinuousClock()
        for _ in 0..<max(runs, 1) {
            for (i, s) in steps.enumerated() {
                let t0 = clock.now
                let code = s.kernel.run()
                let d = clock.now - t0
                totals[i] += Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
                if code != 0 { throw IRError("\(graph.nodes[s.node].op) failed with code \(code) while profiling") }
            }
            counter.pointee &+= 1
        }
        return steps.enumerated().map { i, s in
            let n = graph.nodes[s.node]
            return StepTime(step: i, op: n.op, kernel: s.kernel.name, layer: n.layer, seconds: totals[i] / Double(max(runs, 1)))
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
            lines.append("  \(k): \(names.ref(Value(s.node))) = \(n.op) -> \(s.kernel.name)" + (n.layer.map { "  # \($0)" } ?? ""))
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

/// KERAS_ISA caps the kernels' instruction set; a value the C dispatcher
/// would ignore is a mistake worth reporting before anything runs.
func checkISASetting() throws {
    guard let p = getenv("KERAS_ISA") else { return }
    let v = String(cString: p)
    guard ["ref", "avx2", "avx512"].contains(v) else {
        throw IRError("KERAS_ISA='\(abbreviated(v, limit: 40))' is not one of ref, avx2, avx512")
    }
}
