import CKernels
import Foundation

/// A recurrent layer's whole sequence as one op (rnn_sequence.c), so a step
/// costs one GEMM on the state and one pass of the cell's pointwise body
/// instead of a dozen graph nodes, and the backward pass recomputes all
/// pre-activations with one large GEMM.
///
///   rnn_sequence(xp, u, h0, [c0], [mask], [rb]) -> states [batch, time, S*units]
///
/// xp holds every step's input projection (bias included); states holds h
/// (and c for LSTM) after each step in processing order. Attributes: cell
/// ("simple_rnn", "lstm", "gru" = reset_after, "gru_reset_before"),
/// go_backwards, masked. c0 is present for LSTM, mask when masked, rb (the
/// recurrent bias) for "gru". `rnn_sequence_grad` is its VJP's packed
/// cotangent, laid out as CKernels.h describes.
struct RNNSequenceSpec {
    let cell: ck_rnn_cell
    let goBackwards: Bool
    let masked: Bool
    let c0: Int?, mask: Int?, rb: Int?
    let inputCount: Int

    static let cells: [String: ck_rnn_cell] = ["simple_rnn": CK_RNN_SIMPLE, "lstm": CK_RNN_LSTM, "gru": CK_RNN_GRU,
                                               "gru_reset_before": CK_RNN_GRU_RESET_BEFORE]

    init(_ attrs: Attributes, op: String) throws {
        let name = try attrs.string("cell")
        guard let cell = Self.cells[name] else {
            throw ShapeError("\(op): unknown cell '\(name)' (expected one of \(Self.cells.keys.sorted().joined(separator: ", ")))")
        }
        self.cell = cell
        goBackwards = try attrs.bool("go_backwards", default: false)
        masked = try attrs.bool("masked", default: false)
        var i = 3
        func next(_ present: Bool) -> Int? { defer { if present { i += 1 } }; return present ? i : nil }
        c0 = next(cell == CK_RNN_LSTM)
        mask = next(masked)
        rb = next(cell == CK_RNN_GRU)
        inputCount = i
    }

    var gates: Int { Int(ck_rnn_gates(Int32(cell.rawValue))) }
    var stateWidth: Int { Int(ck_rnn_state_width(Int32(cell.rawValue))) }
    var gradWidth: Int { Int(ck_rnn_grad_width(Int32(cell.rawValue))) }

    func desc(batch: Int, time: Int, units: Int) -> ck_rnn_desc {
        ck_rnn_desc(cell: Int32(cell.rawValue), go_backwards: goBackwards ? 1 : 0, batch: Int64(batch), time: Int64(time), units: Int64(units))
    }
}

private let unknown = TensorType.unknown

/// Checks the forward inputs starting at `first` and returns (units, time).
private func checkSequenceInputs(_ ctx: ShapeContext, _ spec: RNNSequenceSpec, first: Int) throws -> (units: Int, time: Int) {
    guard ctx.inputs.count == first + spec.inputCount else {
        throw ctx.fail("expects \(first + spec.inputCount) inputs for this cell, got \(ctx.inputs.count)")
    }
    for i in first..<ctx.inputs.count { try ctx.requireDType(i, [.f32]) }
    let xp = ctx.inputs[first], u = ctx.inputs[first + 1], h0 = ctx.inputs[first + 2]
    let units = u.rank == 2 ? u.shape[0] : unknown, gn = spec.gates * units
    func dims(_ t: TensorType, _ want: [Int]) -> Bool {
        t.rank == want.count && zip(t.shape, want).allSatisfy { $0 == $1 || $0 == unknown || $1 == unknown }
    }
    guard units != unknown, units > 0, dims(u, [units, gn]), xp.rank == 3, xp.shape[1] != unknown, xp.shape[1] > 0,
          dims(xp, [unknown, xp.shape[1], gn]) else {
        throw ctx.fail("expects projections [batch, time, \(spec.gates)*units] and a recurrent kernel [units, \(spec.gates)*units], got \(xp) and \(u)")
    }
    let batch = xp.shape[0], time = xp.shape[1]
    var states = [h0]
    if let c = spec.c0 { states.append(ctx.inputs[first + c]) }
    for s in states where !dims(s, [batch, units]) { throw ctx.fail("expects initial states [batch, \(units)], got \(s)") }
    if let m = spec.mask, !dims(ctx.inputs[first + m], [batch, time]) {
        throw ctx.fail("expects a mask [batch, \(time)], got \(ctx.inputs[first + m])")
    }
    if let r = spec.rb, !dims(ctx.inputs[first + r], [gn]) {
        throw ctx.fail("expects a recurrent bias [\(gn)], got \(ctx.inputs[first + r])")
    }
    return (units, time)
}

private let sequenceShape: ShapeRule = { ctx in
    let spec = try RNNSequenceSpec(ctx.attrs, op: ctx.op)
    let (units, time) = try checkSequenceInputs(ctx, spec, first: 0)
    return .f32([ctx.inputs[0].shape[0], time, spec.stateWidth * units])
}

private let sequenceGradShape: ShapeRule = { ctx in
    let spec = try RNNSequenceSpec(ctx.attrs, op: ctx.op)
    let (units, time) = try checkSequenceInputs(ctx, spec, first: 2)
    let states = TensorType.f32([ctx.inputs[2].shape[0], time, spec.stateWidth * units])
    for i in 0..<2 where ctx.inputs[i].rank != 3 || ctx.inputs[i].shape[1...] != states.shape[1...] {
        throw ctx.fail("expects states and their cotangent shaped \(states), got \(ctx.inputs[i])")
    }
    return .f32([ctx.inputs[2].shape[0], time + 1, spec.gradWidth * units])
}

/// All rows of a rank-3 value, `steps` steps from `step`, `cols` columns from `col`.
private func block(_ b: GraphBuilder, _ v: Value, step: Int, steps: Int, col: Int, cols: Int) throws -> Value {
    try b.emit("slice", [v], ["begin": .ints([0, step, col]), "size": .ints([-1, steps, cols])])
}

private let sequenceVJP: VJPRule = { b, args, g in
    let spec = try RNNSequenceSpec(args.attrs, op: "rnn_sequence")
    let u = b.type(of: args.inputs[1])
    let units = u.shape[0], gn = u.shape[1], time = b.type(of: args.inputs[0]).shape[1]
    let packed = try b.emit("rnn_sequence_grad", [args.output, g] + args.inputs, args.attrs)
    let dxp = try block(b, packed, step: 0, steps: time, col: 0, cols: gn)
    let hprev = try b.reshape(block(b, packed, step: 0, steps: time, col: gn, cols: units), [-1, units])
    var grads = [Value?](repeating: nil, count: args.inputs.count)
    grads[0] = dxp
    switch spec.cell {
    case CK_RNN_GRU:
        let drec = try b.reshape(block(b, packed, step: 0, steps: time, col: gn + units, cols: gn), [-1, gn])
        grads[1] = try b.matmul(hprev, drec, transposeA: true)
        grads[spec.rb!] = try b.reduceSum(drec, axes: [0])
    case CK_RNN_GRU_RESET_BEFORE:
        let rh = try b.reshape(block(b, packed, step: 0, steps: time, col: gn + units, cols: units), [-1, units])
        let dzr = try b.reshape(block(b, dxp, step: 0, steps: time, col: 0, cols: 2 * units), [-1, 2 * units])
        let dzh = try b.reshape(block(b, dxp, step: 0, steps: time, col: 2 * units, cols: units), [-1, units])
        grads[1] = try b.emit("concat", [b.matmul(hprev, dzr, transposeA: true), b.matmul(rh, dzh, transposeA: true)], ["axis": .int(1)])
    default:
        grads[1] = try b.matmul(hprev, b.reshape(dxp, [-1, gn]), transposeA: true)
    }
    grads[2] = try b.reshape(block(b, packed, step: time, steps: 1, col: 0, cols: units), [-1, units])
    if let c = spec.c0 { grads[c] = try b.reshape(block(b, packed, step: time, steps: 1, col: units, cols: units), [-1, units]) }
    return grads
}

private func sequenceLowering(backward: Bool) -> Lowering {
    .kernel { ctx in
        let spec = try RNNSequenceSpec(ctx.node.attrs, op: ctx.node.op)
        let first = backward ? 2 : 0
        let xpType = ctx.inputTypes[first], units = ctx.inputTypes[first + 1].shape[0]
        var desc = spec.desc(batch: xpType.shape[0], time: xpType.shape[1], units: units)
        let bytes = backward ? ck_f32_rnn_backward_workspace_bytes(&desc) : ck_f32_rnn_forward_workspace_bytes(&desc)
        func operand(_ i: Int?) -> KernelOperand { i.map { .input(first + $0) } ?? .absent }
        let shared = [operand(0), operand(1), operand(spec.rb), operand(2), operand(spec.c0), operand(spec.mask)]
        let operands = backward ? shared + [.input(0), .input(1), .output, .workspace()] : shared + [.output, .workspace()]
        return try ctx.call(CK_FAMILY_RNN, op: backward ? 1 : 0, isa: ctx.isa, params: desc, operands, workspace: max(Int(bytes), 64),
                            detail: " \((try? ctx.node.attrs.string("cell")) ?? "")")
    }
}

/// The forward runs one [batch, units] x [units, gates*units] product per
/// step; the backward three (the recomputation, dh, and the weight gradient).
private let sequenceCost: CostRule = { ins, out, _ in
    let backward = ins[1].rank == 3
    let xp = ins[backward ? 2 : 0], u = ins[backward ? 3 : 1]
    let rows = Swift.max(xp.shape[0], 1) * Swift.max(xp.shape[1], 1)
    return Cost(flops: (backward ? 3 : 1) * 2 * rows * elementCount(u) + 30 * elementCount(xp),
                bytes: (ins.map(elementCount).reduce(0, +) + elementCount(out)) * 4)
}

let recurrentSequenceOps: [OpDef] = [
    OpDef("rnn_sequence", arity: .range(3, 6), shape: sequenceShape, differentiability: .vjp(sequenceVJP),
          reference: { ctx in try RNNReference(ctx, first: 0).forward() },
          lowering: sequenceLowering(backward: false), cost: sequenceCost),
    OpDef("rnn_sequence_grad", arity: .range(5, 8), shape: sequenceGradShape,
          differentiability: .notDifferentiable(reason: "the backward pass of rnn_sequence; its own gradient is not needed for training"),
          reference: { ctx in try RNNReference(ctx, first: 2).backward(states: ctx.inputs[0], cotangent: ctx.inputs[1]) },
          lowering: sequenceLowering(backward: true), cost: sequenceCost),
]
