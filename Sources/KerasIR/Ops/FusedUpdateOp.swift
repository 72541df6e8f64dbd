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

let fusedUpdateOps: [OpDef] = [fusedUpdateOp()]

private func fusedUpdateOp() -> OpDef {
    var d = OpDef("fused_update", arity: .atLeast(1), isPure: false,
          shape: { ctx in
              for i in ctx.inputs.indices { try ctx.requireDType(i, [.f32]) }
              let program = try UpdateProgram(try ctx.attrs.string("program"), inputs: ctx.inputs.count)
              guard program.jobs.first?.stores.first?.target == 0 else { throw ctx.fail("must store into its first input first") }
              for (j, job) in program.jobs.enumerated() {
                  let t = ctx.inputs[job.stores[0].target]
                  guard t.isFullyKnown else { throw ctx.fail("job \(j) stores into \(t), which is not fully known") }
                  for s in job.stores where ctx.inputs[s.target] != t {
                      throw ctx.fail("job \(j) stores into \(t) and \(ctx.inputs[s.target]); a job's targets share one shape")
                  }
                  let read = job.program.instructions.flatMap { $0.args.filter(\.input).map(\.index) }
                      + job.stores.filter(\.value.input).map(\.value.index)
                  if let bad = read.first(where: { !fusedOperandFits(ctx.inputs[$0], t) }) {
                      throw ctx.fail("job \(j) over \(t) reads x\(bad) \(ctx.inputs[bad]), which is neither that shape, one value nor a trailing part of it")
                  }
              }
              return ctx.inputs[0]
          },
          differentiability: .notDifferentiable(reason: "an update of state, not a function of its inputs"),
          reference: { ctx in
              // The new value of input 0: the first store of the first job.
              let program = try UpdateProgram(try ctx.attrs.string("program"), inputs: ctx.inputs.count)
              let job = program.jobs[0], store = job.stores[0]
              var results: [RefTensor] = []
              for ins in job.program.instructions {
                  let args = ins.args.map { $0.input ? ctx.inputs[$0.index] : results[$0.index] }
                  let def = try OpRegistry.standard.lookup(ins.op)
                  let type = try def.shape(ShapeContext(op: ins.op, inputs: args.map(\.type), attrs: job.program.attrs(ins), declared: nil))
                  results.append(try def.reference(ReferenceContext(inputs: args, attrs: job.program.attrs(ins), type: type)))
              }
              let v = store.value.input ? ctx.inputs[store.value.index] : results[store.value.index]
              let n = ctx.inputs[0].data.count
              return RefTensor(.f32, ctx.inputs[0].shape, v.data.count == n ? v.data : (0..<n).map { v.data[$0 % v.data.count] })
          },
          lowering: .inPlace { ctx in
              let program = try UpdateProgram(try ctx.node.attrs.string("program"), inputs: ctx.inputTypes.count)
              let buffers = UpdateBuffers(program, inputs: ctx.inputTypes.count)
              for k in ctx.inputTypes.indices {
                  buffers.inputs[k] = ctx.f32(k)
                  buffers.counts[k] = Int64(elementCount(ctx.inputTypes[k]))
              }
              var first: Int32 = 0, storeFirst: Int32 = 0, instrs = 0
              for (j, job) in program.jobs.enumerated() {
                  for (i, ins) in job.program.instructions.enumerated() { buffers.instrs[instrs + i] = try fusedInstruction(ins, job.program) }
                  for (s, st) in job.stores.enumerated() {
                      buffers.stores[Int(storeFirst) + s] = ck_update_store(target: Int32(st.target), kind: st.value.input ? 0 : 1, index: Int32(st.value.index))
                  }
                  let n = Int64(elementCount(ctx.inputTypes[job.stores[0].target]))
                  buffers.jobs[j] = ck_update_job(n: n, first: first, count: Int32(job.program.instructions.count),
                                                  store_first: storeFirst, store_count: Int32(job.stores.count))
                  first += Int32(job.program.instructions.count); instrs += job.program.instructions.count
                  storeFirst += Int32(job.stores.count)
              }
              let keep = ParamsBox(ck_fused_update(jobs: Int32(program.jobs.count), job: buffers.jobs, instrs: buffers.instrs, stores: buffers.stores,
                                                   inputs: buffers.inputs, counts: buffers.counts, uniform_values: buffers.uniformValues,
                                                   uniform: buffers.uniform, tile_start: buffers.tileStart))
              let p = keep.pointer, isa = ctx.vectorISA
              let ops = program.jobs.map(\.program.instructions.count).reduce(0, +)
              return Kernel(name: "ck_f32_fused_update__\(isaSuffix(isa)) \(program.jobs.count) jobs, \(ops) ops, \(program.targets.count) stores") {
                  _ = buffers; _ = keep
                  ck_f32_fused_update(isa, p)
                  return 0
              }
          },
          cost: { ins, _, attrs in
              guard let program = try? UpdateProgram(try attrs.string("program"), inputs: ins.count) else { return Cost(flops: 0, bytes: 0) }
              var flops = 0, bytes = 0
              var read = Set<Int>()
              for job in program.jobs {
                  let n = elementCount(ins[job.stores[0].target])
                  flops += job.program.instructions.count * n
                  bytes += job.stores.count * n * 4
                  for i in job.program.instructions.flatMap({ $0.args.filter(\.input).map(\.index) }) + job.stores.filter(\.value.input).map(\.value.index)
                  where read.insert(i).inserted { bytes += elementCount(ins[i]) * 4 }
              }
              return Cost(flops: flops, bytes: bytes)
          })
    d.writtenParameters = { node in try UpdateProgram(try node.attrs.string("program"), inputs: node.inputs.count).targets }
    return d
}

/// The C form of one instruction (shared with fused_elementwise).
func fusedInstruction(_ i: FusedProgram.Instruction, _ program: FusedProgram) throws -> ck_fused_instr {
    let a = i.args[0], b = i.args.count > 1 ? i.args[1] : (input: false, index: 0), c = i.args.count > 2 ? i.args[2] : (input: false, index: 0)
    var instr = ck_fused_instr(binary: 0, op: 0, a_kind: a.input ? 0 : 1, a_index: Int32(a.index),
                               b_kind: b.input ? 0 : 1, b_index: Int32(b.index), alpha: 0, c_kind: c.input ? 0 : 1, c_index: Int32(c.index))
    if i.op == "select" {
        instr.binary = 2
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

/// The arrays a fused_update kernel reads and its per-call state, freed with the plan.
final class UpdateBuffers {
    let jobs: UnsafeMutablePointer<ck_update_job>
    let instrs: UnsafeMutablePointer<ck_fused_instr>
    let stores: UnsafeMutablePointer<ck_update_store>
    let inputs: UnsafeMutablePointer<UnsafeMutablePointer<Float>?>
    let counts: UnsafeMutablePointer<Int64>
    let uniformValues: UnsafeMutablePointer<Float>
    let uniform: UnsafeMutablePointer<UInt8>
    let tileStart: UnsafeMutablePointer<Int64>

    init(_ p: UpdateProgram, inputs n: Int) {
        let instrCount = max(p.jobs.map(\.program.instructions.count).reduce(0, +), 1)
        jobs = .allocate(capacity: p.jobs.count)
        instrs = .allocate(capacity: instrCount)
        stores = .allocate(capacity: max(p.targets.count, 1))
        inputs = .allocate(capacity: n)
        counts = .allocate(capacity: n)
        uniformValues = .allocate(capacity: instrCount)
        uniform = .allocate(capacity: instrCount)
        tileStart = .allocate(capacity: p.jobs.count + 1)
        uniformValues.initialize(repeating: 0, count: instrCount)
        uniform.initialize(repeating: 0, count: instrCount)
    }
    deinit {
        jobs.deallocate(); instrs.deallocate(); stores.deallocate(); inputs.deallocate(); counts.deallocate()
        uniformValues.deallocate(); uniform.deallocate(); tileStart.deallocate()
    }
}
