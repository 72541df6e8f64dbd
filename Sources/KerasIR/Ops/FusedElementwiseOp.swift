import CKernels

/// fused_elementwise(x0, x1, ...) {program="mul(x0,x1);sqrt(t0);..."}: a
/// chain of f32 elementwise ops (unary, binary, comparisons writing 1 or 0,
/// select) made by the elementwise fusion pass, run as
/// one kernel (fused_elementwise.c). Each instruction is an op name with
/// operands `x<k>` (the k-th input) or `t<k>` (instruction k's result); a
/// unary op with an alpha writes it as `name@<float bits in hex>`. The last
/// instruction is the result. Every input is the result's shape, a single
/// value, or a trailing part of the result's shape (a bias row), repeated.
/// `random_bernoulli@<p bits>#<seed in hex>()` draws the result-sized mask
/// of a dropout where it is used (element i is element i of the plan's draw
/// for that seed), so the mask is recomputed rather than stored;
/// `#<seed>+<k>` draws shard k's part, as random_bernoulli's `shard`.
struct FusedProgram {
    struct Instruction {
        var op: String
        var alpha: Float?
        var args: [(input: Bool, index: Int)]
        /// A random draw's seed, and its shard (see random_bernoulli).
        var seed: UInt64? = nil
        var shard = 0
    }
    /// Random draws a program may make (no operands, result-sized).
    static let randomOps: [String: ck_random_dist] = ["random_bernoulli": CK_RANDOM_BERNOULLI]
    var instructions: [Instruction]

    /// Binary f32 kernels a program may use; comparisons write 1 or 0 as f32.
    static let binaryOps: [String: ck_binary_op] = ["add": CK_BINARY_ADD, "sub": CK_BINARY_SUB, "mul": CK_BINARY_MUL, "div": CK_BINARY_DIV,
                                                    "maximum": CK_BINARY_MAX, "minimum": CK_BINARY_MIN, "pow": CK_BINARY_POW,
                                                    "equal": CK_BINARY_EQ, "not_equal": CK_BINARY_NE, "less": CK_BINARY_LT,
                                                    "less_equal": CK_BINARY_LE, "greater": CK_BINARY_GT, "greater_equal": CK_BINARY_GE]

    /// Operands an op takes in a program: select(c, a, b) three, binary ops two, unary one.
    static func arity(_ op: String) -> Int { op == "select" ? 3 : binaryOps[op] != nil ? 2 : randomOps[op] != nil ? 0 : 1 }

    var drawsRandomNumbers: Bool { instructions.contains { FusedProgram.randomOps[$0.op] != nil } }

    init(_ instructions: [Instruction]) { self.instructions = instructions }

    init(_ text: String, inputs: Int) throws {
        instructions = []
        for part in text.split(separator: ";") {
            guard let open = part.firstIndex(of: "("), part.last == ")" else { throw IRError("fused_elementwise: bad instruction '\(part)'") }
            var name = String(part[..<open])
            var alpha: Float? = nil, seed: UInt64? = nil, shard = 0
            if let hash = name.firstIndex(of: "#") {
                let fields = name[name.index(after: hash)...].split(separator: "+", omittingEmptySubsequences: false)
                guard let s = UInt64(fields[0], radix: 16), fields.count <= 2 else { throw IRError("fused_elementwise: bad seed in '\(part)'") }
                if fields.count == 2 {
                    guard let k = Int(fields[1]), k >= 0, k <= Int(Int32.max) else { throw IRError("fused_elementwise: bad shard in '\(part)'") }
                    shard = k
                }
                seed = s
                name = String(name[..<hash])
            }
            if let at = name.firstIndex(of: "@") {
                guard let bits = UInt32(name[name.index(after: at)...], radix: 16) else { throw IRError("fused_elementwise: bad alpha in '\(part)'") }
                alpha = Float(bitPattern: bits)
                name = String(name[..<at])
            }
            let args = try part[part.index(after: open)..<part.index(before: part.endIndex)].split(separator: ",").map { a -> (Bool, Int) in
                guard let k = Int(a.dropFirst()), k >= 0, a.first == "x" ? k < inputs : (a.first == "t" && k < instructions.count) else {
                    throw IRError("fused_elementwise: bad operand '\(a)' in '\(part)'")
                }
                return (a.first == "x", k)
            }
            let arity = FusedProgram.arity(name)
            guard args.count == arity, arity >= 2 || unaryKernel(name, [:]) != nil || (arity == 0 && seed != nil && alpha != nil) else {
                throw IRError("fused_elementwise: '\(part)' is not a fusible op with \(arity) operand(s)" + (arity == 0 ? ", p and seed" : ""))
            }
            guard seed == nil || arity == 0 else { throw IRError("fused_elementwise: '\(part)' is not a random draw but has a seed") }
            instructions.append(Instruction(op: name, alpha: alpha, args: args, seed: seed, shard: shard))
        }
        guard !instructions.isEmpty else { throw IRError("fused_elementwise: empty program") }
    }

    var text: String {
        instructions.map { i in
            i.op + (i.alpha.map { "@" + String($0.bitPattern, radix: 16) } ?? "") + (i.seed.map { "#" + String($0, radix: 16) + (i.shard != 0 ? "+\(i.shard)" : "") } ?? "")
                + "(" + i.args.map { ($0.input ? "x" : "t") + String($0.index) }.joined(separator: ",") + ")"
        }.joined(separator: ";")
    }

    /// The attributes the unfused op had.
    func attrs(_ i: Instruction) -> Attributes {
        if let seed = i.seed { return ["p": .float(i.alpha ?? 0.5), "seed": .int(Int(Int64(bitPattern: seed))), "shard": .int(i.shard)] }
        guard let a = i.alpha, let key = unaryAlphaKey(i.op) else { return [:] }
        return [key: .float(a)]
    }
}

/// Whether `input` can feed an elementwise result of shape `out` in the fused kernel.
func fusedOperandFits(_ input: TensorType, _ out: TensorType) -> Bool {
    if input.shape == out.shape { return true }
    if input.elementCount == 1 { return true }
    var s = input.shape
    while s.first == 1 { s.removeFirst() }
    return !s.contains(TensorType.unknown) && s.count <= out.rank && Array(out.shape.suffix(s.count)) == s
}

let fusedElementwiseOps: [OpDef] = [fusedElementwiseOp()]

/// Each output element comes from input elements at its own index (or a
/// repeated row), so the output may take a dying input's storage.
private func fusedElementwiseOp() -> OpDef {
    var d = OpDef("fused_elementwise", arity: .atLeast(1),
          shape: { ctx in
              for i in ctx.inputs.indices { try ctx.requireDType(i, [.f32]) }
              _ = try FusedProgram(try ctx.attrs.string("program"), inputs: ctx.inputs.count)  // parses, or names the bad instruction
              // The result has the shape of the largest input; every other input fits it.
              guard let out = ctx.inputs.max(by: { $0.rank < $1.rank || ($0.rank == $1.rank && ($0.elementCount ?? Int.max) < ($1.elementCount ?? Int.max)) }),
                    ctx.inputs.allSatisfy({ fusedOperandFits($0, out) }) else {
                  throw ctx.fail("expects inputs shaped like the result, single values or trailing parts of it, got \(ctx.inputs)")
              }
              return out
          },
          differentiability: .notDifferentiable(reason: "made by the fusion pass after differentiation"),
          reference: { ctx in
              let program = try FusedProgram(try ctx.attrs.string("program"), inputs: ctx.inputs.count)
              var results: [RefTensor] = []
              for ins in program.instructions {
                  let args = ins.args.map { $0.input ? ctx.inputs[$0.index] : results[$0.index] }
                  let def = try OpRegistry.standard.lookup(ins.op)
                  let types = args.map(\.type)
                  // A random draw has the result's shape; it reads the run's counter.
                  let type = ins.seed != nil ? ctx.type : try def.shape(ShapeContext(op: ins.op, inputs: types, attrs: program.attrs(ins), declared: nil))
                  results.append(try def.reference(ReferenceContext(inputs: args, attrs: program.attrs(ins), type: type, randomCounter: ctx.randomCounter)))
              }
              return results.last!
          },
          lowering: .kernel { ctx in
              let program = try FusedProgram(try ctx.node.attrs.string("program"), inputs: ctx.inputTypes.count)
              let instrs = try program.instructions.map { try fusedInstruction($0, program) }
              var header = ck_fused_call(n: Int64(ctx.outCount), count: Int32(instrs.count), inputs: Int32(ctx.inputTypes.count),
                                         instrs_at: 0, counts_at: 0)
              var block = ParamBlock(header)
              header.instrs_at = block.append(instrs)
              header.counts_at = block.append(ctx.inputTypes.map { Int64(elementCount($0)) })
              block.setHeader(header)
              return try ctx.call(CK_FAMILY_FUSED_ELEMENTWISE, params: block, ctx.inputs(ctx.inputTypes.count) + [.output, .randomCounter],
                                  detail: " " + program.instructions.map(\.op).joined(separator: ","))
          },
          cost: { ins, out, attrs in
              let count = ((try? attrs.string("program")) ?? "").split(separator: ";").count
              return Cost(flops: count * elementCount(out), bytes: (ins.map(elementCount).reduce(0, +) + elementCount(out)) * 4)
          })
    d.writesInPlaceOfInput = true
    d.drawsRandomNumbers = { attrs in (try? FusedProgram(try attrs.string("program"), inputs: Int.max).drawsRandomNumbers) ?? false }
    d.fusedOps = { attrs in try FusedProgram(try attrs.string("program"), inputs: Int.max).instructions.map(\.op) }
    return d
}
