#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A graph-to-graph pass. `run` returns whether it changed anything;
/// `notes` are the decisions of its last run that the log and dumps show.
public protocol GraphPass {
    var name: String { get }
    func run(_ graph: inout Graph, registry: OpRegistry) throws -> Bool
    var notes: [String] { get }
}

extension GraphPass {
    public var notes: [String] { [] }
}

/// The base of the fusion passes: each run's decisions, taken or refused,
/// with their reasons, which the pipeline reports as the pass's notes.
open class DecisionRecordingPass {
    public internal(set) var decisions: [String] = []
    public var notes: [String] { decisions }
    public init() {}
}

/// What the fusion passes ask of a graph: each value's users, whether it is
/// a graph output, and its printed name for decisions.
struct GraphUses {
    let users: [[Value]]
    let outputs: Set<Int>
    let printer: GraphPrinter

    init(_ g: Graph) {
        users = g.users()
        outputs = Set(g.outputs.map(\.id))
        printer = GraphPrinter(g)
    }

    func ref(_ i: Int) -> String { printer.ref(Value(i)) }
    /// The assigns the update passes may rewrite (those that are not graph outputs).
    func rewritableAssigns(_ g: Graph) -> [Int] { g.nodes.indices.filter { g.nodes[$0].kind == .assign && !outputs.contains($0) } }
    /// Used once, and not a graph output.
    func singleUse(_ i: Int) -> Bool { users[i].count == 1 && !outputs.contains(i) }
}

/// One entry of a pipeline's log.
public struct PassRecord: Sendable, CustomStringConvertible {
    public var pass: String
    public var changed: Bool
    public var nodesBefore: Int
    public var nodesAfter: Int
    /// Decisions the pass reported (fusion: what was fused and why not).
    public var notes: [String] = []
    public var description: String {
        "\(pass): " + (changed ? "changed, \(nodesBefore) -> \(nodesAfter) nodes" : "no change (\(nodesAfter) nodes)")
            + notes.map { "\n//   \($0)" }.joined()
    }
}

/// Runs passes in order, verifying after each (when `verify` is on), dumping
/// the graph after the passes named in `dumpAfter` ("all" for every one), and
/// skipping passes named in `disabled`. The environment sets the defaults:
/// KERAS_DUMP=all|pass,pass  KERAS_DISABLE_PASSES=pass,pass.
public struct PassPipeline {
    public var passes: [GraphPass]
    public var disabled: Set<String>
    public var dumpAfter: Set<String>
    public var verify: Bool
    public var registry: OpRegistry
    /// Where dumps go (stderr by default).
    public var dumpSink: (String) -> Void
    public private(set) var log: [PassRecord] = []

    public init(passes: [GraphPass], registry: OpRegistry = .standard, verify: Bool? = nil) {
        self.passes = passes
        self.registry = registry
        #if DEBUG
        self.verify = verify ?? true
        #else
        self.verify = verify ?? false
        #endif
        self.disabled = PassPipeline.environmentList("KERAS_DISABLE_PASSES")
        self.dumpAfter = PassPipeline.environmentList("KERAS_DUMP")
        self.dumpSink = { text in
            fputs(text, stderr)
        }
    }

    public static func environmentList(_ key: String) -> Set<String> {
        guard let raw = getenv(key) else { return [] }
        return Set(String(cString: raw).split(separator: ",").map { String($0) })
    }

    /// The standard pipeline: canonicalize to a fixed point, fuse GEMM
    /// epilogues, fuse elementwise chains, then schedule.
    public static func standard(registry: OpRegistry = .standard) -> PassPipeline {
        PassPipeline(passes: [Canonicalize(), LossFusion(), MomentsFusion(), Fusion(), ConvPoolFusion(), GemmUpdateFusion(), UpdateFusion(), PoolReluGradFusion(), ElementwiseFusion(), AllreduceBucketing(), Schedule()], registry: registry)
    }

    /// Every name KERAS_DUMP and KERAS_DISABLE_PASSES may use; "in-place" is
    /// the memory planner's reuse of a dying input's storage.
    public var knownPassNames: [String] {
        passes.map(\.name) + (passes.contains { $0 is Canonicalize } ? Canonicalize.subpassNames : []) + ["in-place"]
    }

    public mutating func run(_ graph: inout Graph) throws {
        // A misspelt pass name would silently dump or disable nothing.
        let known = Set(knownPassNames)
        for (setting, names) in [("KERAS_DISABLE_PASSES", disabled), ("KERAS_DUMP", dumpAfter.subtracting(["all"]))] {
            if let bad = names.sorted().first(where: { !known.contains($0) }) {
                throw IRError("\(setting) names an unknown pass '\(abbreviated(bad, limit: 40))' (passes: \(knownPassNames.joined(separator: ", "))\(setting == "KERAS_DUMP" ? ", all" : ""))")
            }
        }
        if verify { try Verifier.verify(graph, registry: registry) }
        for pass in passes where !disabled.contains(pass.name) {
            let before = graph.nodes.count
            let changed = try pass.run(&graph, registry: registry)
            let notes = pass.notes
            log.append(PassRecord(pass: pass.name, changed: changed, nodesBefore: before, nodesAfter: graph.nodes.count, notes: notes))
            if verify {
                do { try Verifier.verify(graph, registry: registry) } catch let e as IRError {
                    throw IRError("after pass \(pass.name): \(e.message)")
                }
            }
            if dumpAfter.contains("all") || dumpAfter.contains(pass.name) {
                dumpSink("// after \(pass.name)\n" + notes.map { "//   \($0)\n" }.joined() + "\(graph)")
            }
        }
    }
}

/// Canonicalization: simplify, fold constants, CSE and DCE, repeated until
/// nothing changes (at most `maxRounds`). Its sub-passes can be disabled by
/// name like any other pass.
public struct Canonicalize: GraphPass {
    public var name: String { "canonicalize" }
    public var maxRounds = 4
    public var disabled: Set<String> = PassPipeline.environmentList("KERAS_DISABLE_PASSES")
    public init() {}

    static let subpasses: [GraphPass] = [Simplify(), ConstantFolding(), CommonSubexpressionElimination(), DeadCodeElimination()]
    static var subpassNames: [String] { subpasses.map(\.name) }

    public func run(_ graph: inout Graph, registry: OpRegistry) throws -> Bool {
        let subpasses = Canonicalize.subpasses
        var any = false
        for _ in 0..<maxRounds {
            var changed = false
            for p in subpasses where !disabled.contains(p.name) {
                changed = try p.run(&graph, registry: registry) || changed
            }
            any = any || changed
            if !changed { break }
        }
        return any
    }
}

// MARK: - Rewriting helper

/// Applies replacements (old value -> earlier value) and drops the nodes in
/// `drop`, renumbering what stays. Names of dropped nodes move to their
/// replacement when it has none, so graph outputs keep their names.
func rewrite(_ g: Graph, replace: [Int: Int], drop: Set<Int>) -> Graph {
    func resolve(_ id: Int) -> Int {
        var x = id
        while let r = replace[x] { x = r }
        return x
    }
    var newIndex = [Int](repeating: -1, count: g.nodes.count)
    var out = Graph(name: g.name)
    var nameMoves: [Int: String] = [:]
    for (i, n) in g.nodes.enumerated() where replace[i] != nil {
        if let name = n.name, g.nodes[resolve(i)].name == nil, nameMoves[resolve(i)] == nil { nameMoves[resolve(i)] = name }
    }
    for (i, n) in g.nodes.enumerated() {
        if replace[i] != nil || drop.contains(i) { continue }
        var m = n
        m.inputs = n.inputs.map { Value(newIndex[resolve($0.id)]) }
        if m.name == nil, let moved = nameMoves[i] { m.name = moved }
        newIndex[i] = out.nodes.count
        out.nodes.append(m)
    }
    out.outputs = g.outputs.map { Value(newIndex[resolve($0.id)]) }
    return out
}

/// The nodes in an order where every input comes before its user, keeping
/// the existing order wherever it already is one (a node moves only to
/// follow an input placed after it). Returns nil when the inputs form a cycle.
func topologicallyOrdered(_ g: Graph) -> Graph? {
    var state = [UInt8](repeating: 0, count: g.nodes.count)  // 0 new, 1 on the stack, 2 placed
    var order: [Int] = []
    order.reserveCapacity(g.nodes.count)
    for root in g.nodes.indices where state[root] == 0 {
        var stack: [(node: Int, next: Int)] = [(root, 0)]
        state[root] = 1
        while let top = stack.last {
            let inputs = g.nodes[top.node].inputs
            if top.next < inputs.count {
                stack[stack.count - 1].next += 1
                let v = inputs[top.next].id
                if state[v] == 1 { return nil }
                if state[v] == 0 { state[v] = 1; stack.append((v, 0)) }
            } else {
                state[top.node] = 2
                order.append(top.node)
                stack.removeLast()
            }
        }
    }
    var newIndex = [Int](repeating: 0, count: g.nodes.count)
    for (k, i) in order.enumerated() { newIndex[i] = k }
    var out = Graph(name: g.name)
    for i in order {
        var n = g.nodes[i]
        n.inputs = n.inputs.map { Value(newIndex[$0.id]) }
        out.nodes.append(n)
    }
    out.outputs = g.outputs.map { Value(newIndex[$0.id]) }
    return out
}
