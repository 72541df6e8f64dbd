import CKernels

/// How many inputs an op takes.
public enum Arity: Sendable, CustomStringConvertible {
    case exactly(Int)
    case range(Int, Int)
    case atLeast(Int)

    public func accepts(_ n: Int) -> Bool {
        switch self {
        case .exactly(let k): return n == k
        case .range(let lo, let hi): return n >= lo && n <= hi
        case .atLeast(let k): return n >= k
        }
    }

    public var description: String {
        switch self {
        case .exactly(let k): return "\(k)"
        case .range(let lo, let hi): return "\(lo) to \(hi)"
        case .atLeast(let k): return "at least \(k)"
        }
    }
}

/// What a shape rule sees: the op, its input types and attributes, and the
/// declared type for ops whose type is given rather than inferred.
public struct ShapeContext {
    public var op: String
    public var inputs: [TensorType]
    public var attrs: Attributes
    public var declared: TensorType?

    public init(op: String, inputs: [TensorType], attrs: Attributes, declared: TensorType?) {
        self.op = op
        self.inputs = inputs
        self.attrs = attrs
        self.declared = declared
    }
}
public typealias ShapeRule = (ShapeContext) throws -> TensorType

/// What a VJP rule sees: the forward node's inputs, its result and attributes.
public struct VJPArguments {
    public var inputs: [Value]
    public var output: Value
    public var attrs: Attributes
}
/// Returns one cotangent per input (nil where no gradient flows), built from
/// other registered ops through the builder, so the backward graph goes
/// through the same passes and kernels as the forward one.
public typealias VJPRule = (GraphBuilder, VJPArguments, _ cotangent: Value) throws -> [Value?]

public enum Differentiability {
    case vjp(VJPRule)
    /// No gradient flows through this op (comparisons, random draws, casts to int...).
    case notDifferentiable(reason: String)
}

/// What a reference evaluation sees: concrete inputs in double precision.
public struct ReferenceContext {
    public var inputs: [RefTensor]
    public var attrs: Attributes
    public var type: TensorType
    /// Per-run counter of random draws (the plan's step number).
    public var randomCounter: UInt64

    public init(inputs: [RefTensor], attrs: Attributes, type: TensorType, randomCounter: UInt64 = 0) {
        self.inputs = inputs
        self.attrs = attrs
        self.type = type
        self.randomCounter = randomCounter
    }
}
public typealias ReferenceRule = (ReferenceContext) throws -> RefTensor

public enum Lowering {
    /// Kernel calls (usually one) that write the result.
    case kernels((LoweringContext) throws -> [KernelCall])
    /// The result shares its first input's buffer (reshape).
    case alias
    /// The result is a part of its first input's buffer starting this many
    /// elements in (one result of an op that packs several).
    case view(offset: (Node) throws -> Int)
    /// The planner binds storage directly (input, parameter, constant).
    case storage
    /// Kernel calls that write into the first input's buffer, which the
    /// result then names (assign writes the parameter's storage).
    case inPlace((LoweringContext) throws -> [KernelCall])

    /// One kernel call.
    static func kernel(_ make: @escaping (LoweringContext) throws -> KernelCall) -> Lowering { .kernels { [try make($0)] } }
}

public struct Cost: Sendable, Equatable {
    public var flops: Int
    public var bytes: Int
    public init(flops: Int, bytes: Int) { self.flops = flops; self.bytes = bytes }
}
public typealias CostRule = (_ inputs: [TensorType], _ output: TensorType, _ attrs: Attributes) -> Cost

/// Everything about one op, in one place: arity, shape and dtype rule, VJP,
/// reference evaluation, lowering and cost, every part required, so an op
/// without one does not compile.
public struct OpDef {
    public var name: String
    public var arity: Arity
    /// False for ops with effects or randomness: CSE and folding leave them alone.
    public var isPure: Bool
    public var shape: ShapeRule
    public var differentiability: Differentiability
    public var reference: ReferenceRule
    public var lowering: Lowering
    public var cost: CostRule
    /// The kernel computes each output element from the input elements at
    /// the same index only, so the memory planner may give the output the
    /// storage of an input of the same type that dies here.
    public var writesInPlaceOfInput = false
    /// For ops that update state (assign, fused_update): the positions of
    /// the inputs whose parameter storage the op overwrites. The verifier
    /// checks they are parameters written once; scheduling runs these ops
    /// last and dead-code elimination keeps them.
    public var writtenParameters: ((Node) throws -> [Int])?
    public var updatesParameters: Bool { writtenParameters != nil }
    /// For ops whose kernel can write the result over one input of the
    /// result's type (read before written, in the kernel's own order): that
    /// input's position for this node, or nil. The memory planner uses it
    /// when the input dies at this node.
    public var overwritableInput: ((Node) -> Int?)?

    /// For ops whose result is their inputs laid end to end (pack): each
    /// input's element offset in the result. The memory planner may have an
    /// input's producer write it there directly when this op is its only
    /// reader; the lowering then copies only the others
    /// (LoweringContext.placedInputs).
    public var inputOffsets: ((Node, [TensorType]) -> [Int])?

    /// For ops whose purity depends on the node (a fused program with a
    /// random draw): true when this node draws, so CSE and folding skip it.
    public var drawsRandomNumbers: ((Attributes) -> Bool)?

    /// Whether CSE may merge and folding may evaluate this node.
    public func isPure(_ node: Node) -> Bool { isPure && !(drawsRandomNumbers?(node.attrs) ?? false) }

    /// For ops a fusion pass makes: the ops a node stands for, in order
    /// (plans report them beside the kernel that runs them).
    public var fusedOps: ((Attributes) throws -> [String])?

    /// The ops a node computes: itself, or what fusion folded into it.
    public func sourceOps(_ attrs: Attributes) -> [String] { (try? fusedOps?(attrs)) ?? [name] }

    /// This op, whose result may overwrite the input `rule` names.
    func overwriting(_ rule: @escaping (Node) -> Int?) -> OpDef {
        var d = self
        d.overwritableInput = rule
        return d
    }

    /// This op, whose output may take the storage of a dying input of its type.
    func writingInPlace() -> OpDef {
        var d = self
        d.writesInPlaceOfInput = true
        return d
    }

    /// This op, whose inputs are the blocks of its result `offsets` gives.
    func placingInputs(_ offsets: @escaping (Node, [TensorType]) -> [Int]) -> OpDef {
        var d = self
        d.inputOffsets = offsets
        return d
    }

    /// This op, reporting `rule` as the ops its nodes stand for.
    func fusing(_ rule: @escaping (Attributes) throws -> [String]) -> OpDef {
        var d = self
        d.fusedOps = rule
        return d
    }

    public init(_ name: String, arity: Arity, isPure: Bool = true, shape: @escaping ShapeRule,
                differentiability: Differentiability, reference: @escaping ReferenceRule,
                lowering: Lowering, cost: @escaping CostRule) {
        self.name = name
        self.arity = arity
        self.isPure = isPure
        self.shape = shape
        self.differentiability = differentiability
        self.reference = reference
        self.lowering = lowering
        self.cost = cost
    }
}

/// All registered ops, by name.
public struct OpRegistry {
    public private(set) var ops: [String: OpDef] = [:]

    public init(_ defs: [OpDef]) {
        for d in defs {
            precondition(ops[d.name] == nil, "op \(d.name) registered twice")
            ops[d.name] = d
        }
    }

    public subscript(name: String) -> OpDef? { ops[name] }
    public var names: [String] { ops.keys.sorted() }

    public func lookup(_ name: String) throws -> OpDef {
        guard let d = ops[name] else {
            throw IRError("unknown op '\(name)'")
        }
        return d
    }

    /// The registry every graph uses.
    public static let standard = OpRegistry(
        sourceOps + elementwiseUnaryOps + elementwiseBinaryOps + comparisonOps + reductionOps
            + matmulOps + convOps + poolOps + fusedOps + convEpilogueOps + shapeOps + gatherOps + randomOps + recurrentOps + recurrentSequenceOps + fusedElementwiseOps + fusedUpdateOps + lossOps + momentsOps + collectiveOps)
}

// MARK: - Small helpers shared by op definitions

extension ShapeContext {
    func fail(_ message: String) -> ShapeError { ShapeError("\(op) \(message)") }

    func requireDType(_ i: Int, _ dtypes: Set<DType>) throws {
        if !dtypes.contains(inputs[i].dtype) {
            let want = dtypes.map(\.rawValue).sorted().joined(separator: " or ")
            throw fail("expects \(want) input, got \(inputs[i])")
        }
    }
}

func elementCount(_ t: TensorType) -> Int { t.shape.reduce(1) { $0 * max($1, 1) } }

/// Elementwise ops cost `flopsPerElement` per output element and move every
/// input and output once.
func elementwiseCost(_ flopsPerElement: Int) -> CostRule {
    return { inputs, out, _ in
        let n = elementCount(out)
        let bytes = (inputs.map(elementCount).reduce(0, +) + n) * 4
        return Cost(flops: n * flopsPerElement, bytes: bytes)
    }
}

let movementCost: CostRule = { inputs, out, _ in
    Cost(flops: 0, bytes: (inputs.map(elementCount).reduce(0, +) + elementCount(out)) * 4)
}

