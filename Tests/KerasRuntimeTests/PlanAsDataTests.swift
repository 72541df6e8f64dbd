import CKernels
import Foundation
import KerasIR
import KerasRuntime
import XCTest

/// Lowering produces data (KernelCall: a kernel-table row, a parameter
/// block, operand slots), so plans compare, serialize and print.
final class PlanAsDataTests: XCTestCase {
    func calls(_ plan: ExecutionPlan) -> [KernelCall] { plan.steps.map(\.kernel) }

    /// Compiling one graph twice gives the same calls, byte for byte; the
    /// reference and the vector plans differ only in the rows they run.
    func testPlansCompareAndDifferOnlyInKernelRowsAcrossISAs() throws {
        let g = try MLPTrainingTests.mlpGraph(learningRate: 0.1)
        let a = try ExecutionPlan(g, batchSize: 8, store: ParameterStore(), isa: ck_best_isa())
        let b = try ExecutionPlan(g, batchSize: 8, store: ParameterStore(), isa: ck_best_isa())
        XCTAssertEqual(calls(a), calls(b))
        XCTAssertGreaterThan(calls(a).count, 5)
        let ref = try ExecutionPlan(g, batchSize: 8, store: ParameterStore(), isa: CK_ISA_REF)
        XCTAssertEqual(ref.steps.count, a.steps.count)
        for (r, v) in zip(calls(ref), calls(a)) {
            XCTAssertEqual(r.operands, v.operands, "\(r.name) vs \(v.name)")
            XCTAssertEqual(r.params, v.params, "\(r.name) vs \(v.name)")
            XCTAssertTrue(r.name.contains("__ref"), r.name)
            let row = KernelTable.rows[r.kernel], vrow = KernelTable.rows[v.kernel]
            XCTAssertEqual(row.family, vrow.family, "\(r.name) vs \(v.name)")
            XCTAssertEqual(row.op, vrow.op, "\(r.name) vs \(v.name)")
        }
    }

    /// Every call survives a JSON round trip; every table row a plan can name
    /// has an entry, and the micro-kernel rows (called directly, never by a
    /// plan) have none.
    func testCallsSerializeAndEveryRowHasAnEntry() throws {
        let g = try MLPTrainingTests.mlpGraph(learningRate: 0.1)
        let plan = try ExecutionPlan(g, batchSize: 4, store: ParameterStore())
        let data = try JSONEncoder().encode(calls(plan))
        XCTAssertEqual(try JSONDecoder().decode([KernelCall].self, from: data), calls(plan))
        XCTAssertNil(ck_kernel_entry(-1))
        XCTAssertNil(ck_kernel_entry(Int32(KernelTable.rows.count)))
        for (i, row) in KernelTable.rows.enumerated() {
            if row.family == CK_FAMILY_GEMM_UKR.rawValue || row.family == CK_FAMILY_CONV_UKR.rawValue
                || row.family == CK_FAMILY_CONV_BF_UKR.rawValue {
                XCTAssertNil(ck_kernel_entry(Int32(i)), "micro-kernel row \(i) \(row.name) has an entry")
            } else {
                XCTAssertNotNil(ck_kernel_entry(Int32(i)), "row \(i) \(row.name) has no entry")
            }
        }
    }

    /// One registry goes through specialization, passes, planning and
    /// lowering: an op defined only in a custom registry compiles and runs,
    /// and a lowering that names a missing input is an error naming the op.
    func testCustomRegistryOpLowersThroughTheSameCalls() throws {
        func twice(_ input: Int) -> OpDef {
            OpDef("twice", arity: .exactly(1),
                  shape: { $0.inputs[0] },
                  differentiability: .notDifferentiable(reason: "test op"),
                  reference: { ctx in RefTensor(.f32, ctx.type.shape, ctx.inputs[0].data.map { 2 * $0 }) },
                  lowering: .kernels { ctx in
                      // y = x + x through the broadcasting binary kernel's entry.
                      var walk = ck_nd3()
                      walk.rank = 1
                      withUnsafeMutableBytes(of: &walk.shape) { $0.storeBytes(of: Int64(ctx.node.type.elementCount!), as: Int64.self) }
                      for k in [\ck_nd3.stride_a, \ck_nd3.stride_b, \ck_nd3.stride_c] {
                          withUnsafeMutableBytes(of: &walk[keyPath: k]) { $0.storeBytes(of: Int64(1), as: Int64.self) }
                      }
                      let row = KernelTable.rows.firstIndex { $0.name == "ck_f32_vadd__ref" }!
                      let params = withUnsafeBytes(of: walk) { Array($0) }
                      return [KernelCall(kernel: row, params: params, operands: [.input(0), .input(input), .output], workspaceBytes: 0, detail: "")]
                  },
                  cost: { _, _, _ in Cost(flops: 0, bytes: 0) })
        }
        func graph() throws -> Graph {
            let b = GraphBuilder(name: "custom", registry: OpRegistry(OpRegistry.standard.ops.values.map { $0 } + [twice(0)]))
            let x = try b.input("x", .f32([-1, 3]))
            b.setOutputs([try b.emit("twice", [x])])
            return b.graph
        }
        let good = OpRegistry(OpRegistry.standard.ops.values.map { $0 } + [twice(0)])
        let plan = try ExecutionPlan(try graph(), batchSize: 2, store: ParameterStore(), registry: good)
        XCTAssertEqual(try plan.run(["x": Tensor([1, 2, 3, -4, 5, 6], shape: [2, 3])])[0].floats, [2, 4, 6, -8, 10, 12])
        let bad = OpRegistry(OpRegistry.standard.ops.values.map { $0 } + [twice(5)])
        XCTAssertThrowsError(try ExecutionPlan(try graph(), batchSize: 2, store: ParameterStore(), registry: bad)) { e in
            XCTAssertTrue("\(e)".contains("twice") && "\(e)".contains("input 5 of 1"), "\(e)")
        }
    }
}
