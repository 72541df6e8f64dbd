import CKernels

/// fused_update(p, x1, x2, ...) {program="job|job|..."}: every parameter
/// update of a step in one kernel call (fused_elementwise.c), made by the
/// update fusion pass from assigns and the elementwise trees that feed only
/// them: an optimizer's rule for every variable, moving statistics, the step
/// counter. A job is a fused_elementwise program (operands `x<k>` are this
/// node's inputs, `t<k>` the job's instructions) followed by stores
/// `store(x<target>,t<k>|x<k>)` into parameters of one shape. Every job reads
/// the parameters' values from before the call. The result names the first
/// job's first target (input 0), as assign names its parameter.
struct UpdateProgram {
    struct Store {
        var target: Int
        var value: (input: Bool, index: Int)
    }
    struct Job {
        var program: FusedProgram
        var stores: [Store]
    }
    var jobs: [Job]

    init(_ jobs: [Job]) { self.jobs = jobs }

    init(_ text: String, inputs: Int) throws {
        jobs = try text.split(separator: "|", omittingEmptySubsequences: false).map { jobText in
            let parts = jobText.split(separator: ";")
            let instructions = parts.filter { !$0.hasPrefix("store(") }
            guard parts.prefix(instructions.count).allSatisfy({ !$0.hasPrefix("store(") }) else {
                throw IRError("fused_update: stores must follow a job's instructions in '\(jobText)'")
            }
            let program = instructions.isEmpty ? FusedProgram([]) : try FusedProgram(instructions.joined(separator: ";"), inputs: inputs)
            let stores = try parts.dropFirst(instructions.count).map { part -> Store in
                let args = part.dropFirst("store(".count).dropLast().split(separator: ",")
                func operand(_ a: Substring, inputOnly: Bool) throws -> (Bool, Int) {
                    guard let k = Int(a.dropFirst()), k >= 0,
                          a.first == "x" ? k < inputs : (!inputOnly && a.first == "t" && k < program.instructions.count) else {
                        throw IRError("fused_update: bad operand '\(a)' in '\(part)'")
                    }
                    return (a.first == "x", k)
                }
                guard part.last == ")", args.count == 2 else { throw IRError("fused_update: bad store '\(part)'") }
                return Store(target: try operand(args[0], inputOnly: true).1, value: try operand(args[1], inputOnly: false))
            }
            guard !stores.isEmpty else { throw IRError("fused_update: job '\(jobText)' stores nothing") }
            return Job(program: program, stores: stores)
        }
    }

    var text: String {
        jobs.map { job in
            let stores = job.stores.map { "store(x\($0.target),\($0.value.input ? "x" : "t")\($0.value.index))" }
            return ((job.program.instructions.isEmpty ? [] : [job.program.text]) + stores).joined(separator: ";")
        }.joined(separator: "|")
    }

    var targets: [Int] { jobs.flatMap { $0.stores.map(\.target) } }
}

extension UpdateProgram.Job {
    /// The job with input operand k renamed to remap[k].
    func remappingInputs(_ remap: [Int]) -> UpdateProgram.Job {
        let instructions = program.instructions.map { i in
            FusedProgram.Instruction(op: i.op, alpha: i.alpha, args: i.args.map { $0.input ? (true, remap[$0.index]) : $0 })
        }
        return UpdateProgram.Job(program: FusedProgram(instructions), stores: stores.map { st in
            UpdateProgram.Store(target: remap[st.target], value: st.value.input ? (true, remap[st.value.index]) : st.value)
        })
    }
}

let fusedUpdateOps: [OpDef] = [fusedUpdateOp()]

/// A fused_update's program and {sum_squares}: the inputs whose sum of
/// squares the kernel computes first (clipping by norm); reduction r is the
/// single-value operand x<inputs + r> of every job.
func updateProgram(_ attrs: Attributes, inputs: Int) throws -> (program: UpdateProgram, sumSquares: [Int]) {
    let squares = try attrs.ints("sum_squares", default: [])
    guard squares.allSatisfy({ $0 >= 0 && $0 < inputs }) else {
        throw IRError("fused_update: sum_squares \(squares) names inputs outside 0..<\(inputs)")
    }
    return (try UpdateProgram(try attrs.string("program"), inputs: inputs + squares.count), squares)
}

private func fusedUpdateOp() -> OpDef {
    var d = OpDef("fused_update", arity: .atLeast(1), isPure: false,
          shape: { ctx in
              for i in ctx.inputs.indices { try ctx.requireDType(i, [.f32]) }
              let (program, squares) = try updateProgram(ctx.attrs, inputs: ctx.inputs.count)
              let operands = ctx.inputs + squares.map { _ in TensorType.f32([]) }
              guard program.jobs.first?.stores.first?.target == 0 else { throw ctx.fail("must store into its first input first") }
              if let bad = program.targets.first(where: { $0 >= ctx.inputs.count }) { throw ctx.fail("stores into x\(bad), a sum of squares") }
              for (j, job) in program.jobs.enumerated() {
                  let t = ctx.inputs[job.stores[0].target]
                  guard t.isFullyKnown else { throw ctx.fail("job \(j) stores into \(t), which is not fully known") }
                  for s in job.stores where ctx.inputs[s.target] != t {
                      throw ctx.fail("job \(j) stores into \(t) and \(ctx.inputs[s.target]); a job's targets share one shape")
                  }
                  let read = job.program.instructions.flatMap { $0.args.filter(\.input).map(\.index) }
                      + job.stores.filter(\.value.input).map(\.value.index)
                  if let bad = read.first(where: { !fusedOperandFits(operands[$0], t) }) {
                      throw ctx.fail("job \(j) over \(t) reads x\(bad) \(operands[bad]), which is neither that shape, one value nor a trailing part of it")
                  }
              }
              if program.jobs.contains(where: { $0.program.drawsRandomNumbers }) { throw ctx.fail("cannot draw random numbers in an update") }
              if let bad = squares.first(where: { !ctx.inputs[$0].isFullyKnown }) { throw ctx.fail("sums the squares of x\(bad) \(ctx.inputs[bad]), which is not fully known") }
              return ctx.inputs[0]
          },
          differentiability: .notDifferentiable(reason: "an update of state, not a function of its inputs"),
          reference: { ctx in
              // The new value of input 0: the first store of the first job.
              let (program, squares) = try updateProgram(ctx.attrs, inputs: ctx.inputs.count)
              let operands = ctx.inputs + squares.map { k in RefTensor.scalar(ctx.inputs[k].data.reduce(0) { $0 + $1 * $1 }) }
              let job = program.jobs[0], store = job.stores[0]
              var results: [RefTensor] = []
              for ins in job.program.instructions {
                  let args = ins.args.map { $0.input ? operands[$0.index] : results[$0.index] }
                  let def = try OpRegistry.standard.lookup(ins.op)
                  let type = try def.shape(ShapeContext(op: ins.op, inputs: args.map(\.type), attrs: job.program.attrs(ins), declared: nil))
                  results.append(try def.reference(ReferenceContext(inputs: args, attrs: job.program.attrs(ins), type: type)))
              }
              let v = store.value.input ? operands[store.value.index] : results[store.value.index]
              let n = ctx.inputs[0].data.count
              return RefTensor(.f32, ctx.inputs[0].shape, v.data.count == n ? v.data : (0..<n).map { v.data[$0 % v.data.count] })
          },
          lowering: .inPlace { ctx in
              let (program, squares) = try updateProgram(ctx.node.attrs, inputs: ctx.inputTypes.count)
              var jobs: [ck_update_job] = [], instrs: [ck_fused_instr] = [], stores: [ck_update_store] = []
              for job in program.jobs {
                  let n = Int64(elementCount(ctx.inputTypes[job.stores[0].target]))
                  jobs.append(ck_update_job(n: n, first: Int32(instrs.count), count: Int32(job.program.instructions.count),
                                            store_first: Int32(stores.count), store_count: Int32(job.stores.count)))
                  for ins in job.program.instructions { instrs.append(try fusedInstruction(ins, job.program)) }
                  for st in job.stores {
                      stores.append(ck_update_store(target: Int32(st.target), kind: st.value.input ? 0 : 1, index: Int32(st.value.index)))
                  }
              }
              // The sums of squares are inputs after the node's own, in the workspace.
              let tile = Int(ck_fused_tile())
              let reduceTiles = squares.map { (elementCount(ctx.inputTypes[$0]) + tile - 1) / tile }.reduce(0, +)
              var resultsOffset = 0
              let workspace = ck_fused_update_workspace(Int64(instrs.count), Int64(jobs.count), Int64(squares.count), Int64(reduceTiles), &resultsOffset)
              var header = ck_update_call()
              header.jobs = Int32(jobs.count); header.inputs = Int32(ctx.inputTypes.count + squares.count)
              header.instr_count = Int32(instrs.count); header.store_count = Int32(stores.count)
              header.reductions = Int32(squares.count); header.reduce_tiles = Int64(reduceTiles)
              var block = ParamBlock(header)
              header.jobs_at = block.append(jobs)
              header.instrs_at = block.append(instrs)
              header.stores_at = block.append(stores)
              header.counts_at = block.append(ctx.inputTypes.map { Int64(elementCount($0)) } + squares.map { _ in Int64(1) })
              header.reduce_at = block.append(squares.map { Int32($0) })
              block.setHeader(header)
              let results = squares.indices.map { KernelOperand.workspace(byte: Int(resultsOffset) + 4 * $0) }
              return [try ctx.call(CK_FAMILY_FUSED_ELEMENTWISE, op: 1, params: block, ctx.inputs(ctx.inputTypes.count) + results + [.workspace()],
                                   workspace: Int(workspace),
                                   detail: " \(jobs.count) jobs, \(instrs.count) ops, \(program.targets.count) stores"
                                       + (squares.isEmpty ? "" : ", \(squares.count) norms"))]
          },
          cost: { ins, _, attrs in
              guard let (program, squares) = try? updateProgram(attrs, inputs: ins.count) else { return Cost(flops: 0, bytes: 0) }
              var flops = squares.map { 2 * elementCount(ins[$0]) }.reduce(0, +), bytes = 0
              var read = Set<Int>(squares)
              for k in Set(squares) { bytes += elementCount(ins[k]) * 4 }
              let ins = ins + squares.map { _ in TensorType.f32([]) }
              for job in program.jobs {
                  let n = elementCount(ins[job.stores[0].target])
                  flops += job.program.instructions.count * n
                  bytes += job.stores.count * n * 4
                  for i in job.program.instructions.flatMap({ $0.args.filter(\.input).map(\.index) }) + job.stores.filter(\.value.input).map(\.value.index)
                  where read.insert(i).inserted { bytes += elementCount(ins[i]) * 4 }
              }
              return Cost(flops: flops, bytes: bytes)
          })
    d.writtenParameters = { node in try updateProgram(node.attrs, inputs: node.inputs.count).program.targets }
    d.fusedOps = { attrs in
        let (program, squares) = try updateProgram(attrs, inputs: Int.max / 2)
        return squares.flatMap { _ in ["square", "reduce_sum"] }
            + program.jobs.flatMap { job in job.program.instructions.map(\.op) + job.stores.map { _ in "assign" } }
    }
    return d
}

/// The C form of one instruction (shared with fused_elementwise).
func fusedInstruction(_ i: FusedProgram.Instruction, _ program: FusedProgram) throws -> ck_fused_instr {
    let none = (input: false, index: 0)
    let a = i.args.first ?? none, b = i.args.count > 1 ? i.args[1] : none, c = i.args.count > 2 ? i.args[2] : none
    var instr = ck_fused_instr(binary: 0, op: 0, a_kind: a.input ? 0 : 1, a_index: Int32(a.index),
                               b_kind: b.input ? 0 : 1, b_index: Int32(b.index), alpha: 0, c_kind: c.input ? 0 : 1, c_index: Int32(c.index))
    if i.op == "select" {
        instr.binary = 2
    } else if let dist = FusedProgram.randomOps[i.op], let seed = i.seed {
        instr.binary = 3
        instr.op = Int32(dist.rawValue)
        instr.alpha = i.alpha ?? 0.5
        instr.a_index = Int32(bitPattern: UInt32(truncatingIfNeeded: seed))
        instr.b_index = Int32(bitPattern: UInt32(truncatingIfNeeded: seed >> 32))
        instr.a_kind = 2; instr.b_kind = 2
        instr.c_kind = 2; instr.c_index = Int32(i.shard)
    } else if let binary = FusedProgram.binaryOps[i.op] {
        instr.binary = 1
        instr.op = Int32(binary.rawValue)
    } else {
        guard let (u, alpha) = unaryKernel(i.op, program.attrs(i)) else { throw IRError("fused program: no kernel for \(i.op)") }
        instr.op = Int32(u.rawValue)
        instr.alpha = alpha
    }
    return instr
}
