import CKernels
import Foundation

/// The pointwise part of an LSTM step, fused: z [batch, 4*units] holds the
/// pre-activations in Keras's gate order i, f, c, o (input and recurrent
/// products and bias already added).
///   lstm_cell_state(z, c_prev) = sigmoid(z_f) * c_prev + sigmoid(z_i) * tanh(z_c)
///   lstm_hidden(z, c)          = sigmoid(z_o) * tanh(c)
/// One kernel each instead of four slices, three activations and four
/// products; their VJPs are written with ordinary ops, so second derivatives
/// and the backward graph use the usual kernels.
private func lstmShape(_ ctx: ShapeContext) throws -> TensorType {
    try ctx.requireDType(0, [.f32])
    try ctx.requireDType(1, [.f32])
    let z = ctx.inputs[0], s = ctx.inputs[1]
    guard z.rank == 2, s.rank == 2, s.shape[1] != TensorType.unknown,
          z.shape[1] == 4 * s.shape[1] || z.shape[1] == TensorType.unknown,
          z.shape[0] == s.shape[0] || z.shape[0] == TensorType.unknown || s.shape[0] == TensorType.unknown else {
        throw ctx.fail("expects gates [batch, 4*units] and a state [batch, units], got \(z) and \(s)")
    }
    return s
}

/// Gate block k of z as a [batch, units] value.
private func gate(_ b: GraphBuilder, _ z: Value, _ k: Int, _ units: Int) throws -> Value {
    try b.emit("slice", [z], ["begin": .ints([0, k * units]), "size": .ints([-1, units])])
}

/// sigmoid'(x) from s = sigmoid(x): s (1 - s).
private func sigmoidSlope(_ b: GraphBuilder, _ s: Value) throws -> Value { try b.mul(s, b.sub(b.scalar(1), s)) }

private func lstmReference(_ ctx: ReferenceContext, hidden: Bool) -> RefTensor {
    let z = ctx.inputs[0], s = ctx.inputs[1]
    let rows = s.shape[0], units = s.shape[1]
    func sg(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }
    var out = [Double](repeating: 0, count: rows * units)
    for r in 0..<rows {
        for j in 0..<units {
            let zr = r * 4 * units
            out[r * units + j] = hidden
                ? sg(z.data[zr + 3 * units + j]) * Foundation.tanh(s.data[r * units + j])
                : sg(z.data[zr + units + j]) * s.data[r * units + j] + sg(z.data[zr + j]) * Foundation.tanh(z.data[zr + 2 * units + j])
        }
    }
    return RefTensor(.f32, [rows, units], out)
}

private func lstmLowering(op: Int32) -> Lowering {
    .kernel { ctx in
        try ctx.call(CK_FAMILY_LSTM, op: op, params: ck_rows_call(rows: Int64(ctx.outputType.shape[0]), cols: Int64(ctx.outputType.shape[1])),
                     [.input(0), .input(1), .output])
    }
}

private let lstmCost: CostRule = { ins, out, _ in
    Cost(flops: 24 * elementCount(out), bytes: (elementCount(ins[0]) + elementCount(ins[1]) + elementCount(out)) * 4)
}

let recurrentOps: [OpDef] = [
    OpDef("lstm_cell_state", arity: .exactly(2), shape: lstmShape,
          differentiability: .vjp { b, args, g in
              let z = args.inputs[0], cPrev = args.inputs[1]
              let units = b.type(of: cPrev).shape[1]
              let i = try b.sigmoid(gate(b, z, 0, units)), f = try b.sigmoid(gate(b, z, 1, units))
              let t = try b.tanh(gate(b, z, 2, units))
              // dc/dz_i = sigmoid'(z_i) tanh(z_c); dc/dz_f = sigmoid'(z_f) c_prev; dc/dz_c = i (1 - tanh^2); z_o does not enter.
              let dzi = try b.mul(g, b.mul(t, sigmoidSlope(b, i)))
              let dzf = try b.mul(g, b.mul(cPrev, sigmoidSlope(b, f)))
              let dzc = try b.mul(g, b.mul(i, b.sub(b.scalar(1), b.square(t))))
              let dzo = try b.mul(g, b.scalar(0))
              let dz = try b.emit("concat", [dzi, dzf, dzc, dzo], ["axis": .int(1)])
              return [dz, try b.mul(g, f)]
          },
          reference: { ctx in lstmReference(ctx, hidden: false) },
          lowering: lstmLowering(op: 0), cost: lstmCost),
    OpDef("lstm_hidden", arity: .exactly(2), shape: lstmShape,
          differentiability: .vjp { b, args, g in
              let z = args.inputs[0], c = args.inputs[1]
              let units = b.type(of: c).shape[1]
              let o = try b.sigmoid(gate(b, z, 3, units)), t = try b.tanh(c)
              let zero = try b.mul(g, b.scalar(0))
              let dzo = try b.mul(g, b.mul(t, sigmoidSlope(b, o)))
              let dz = try b.emit("concat", [zero, zero, zero, dzo], ["axis": .int(1)])
              return [dz, try b.mul(g, b.mul(o, b.sub(b.scalar(1), b.square(t))))]
          },
          reference: { ctx in lstmReference(ctx, hidden: true) },
          lowering: lstmLowering(op: 1), cost: lstmCost),
]
