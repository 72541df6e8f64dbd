import CKernels
import Keras
import KerasRuntime
import XCTest

/// Plans name their kernels with the kernel table's names (what tests and
/// benchmarks report), followed only by what the call adds: an epilogue
/// ("+bias+relu"), the fused ops, a repeat count.
final class PlanNameTests: XCTestCase {
    func testEveryPlanStepIsNamedByTheKernelTable() throws {
        var n = 0
        let table = ck_kernel_table(&n)!
        let names = Set((0..<n).map { String(cString: table[$0].name) })
        for spec in BenchmarkModel.suite {
            let model = try spec.build()
            var rng = SplitMix64(seed: 1)
            let (x, y) = try spec.data(8, &rng)
            for plan in [try model.trainingPlan(x: [x], y: [y]), try model.predictionPlan(batchSize: 8)] {
                for step in plan.steps {
                    let head = String(step.kernel.name.prefix { $0 != " " && $0 != "+" })
                    XCTAssertTrue(names.contains(head), "\(spec.name): step \(step.kernel.name) (\(plan.graph.nodes[step.node].op)) is not a kernel table name")
                }
            }
        }
    }
}
