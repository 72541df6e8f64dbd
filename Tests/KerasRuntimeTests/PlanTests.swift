import CKernels
import KerasIR
import KerasRuntime
import XCTest

final class PlanTests: XCTestCase {
    func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "no error"
    }

    /// No two arena buffers that are live at the same time overlap, every
    /// buffer is aligned, and sharing reduces the arena.
    func testMemoryPlanNeverOverlapsLiveBuffers() throws {
        let g = try MLPTrainingTests.mlpGraph(learningRate: 0.1)
        for batch in [1, 7, 64] {
            let plan = try ExecutionPlan(g, batchSize: batch, store: ParameterStore())
            let bufs = Array(plan.memory.buffers.values)
            XCTAssertGreaterThan(bufs.count, 10)
            for b in bufs {
                XCTAssertEqual(b.offset % MemoryPlan.alignment, 0)
                XCTAssertLessThanOrEqual(b.offset + b.bytes, plan.memory.arenaBytes)
            }
            for i in 0..<bufs.count {
                for j in (i + 1)..<bufs.count {
                    let a = bufs[i], b = bufs[j]
                    let timeOverlap = a.first <= b.last && b.first <= a.last
                    let spaceOverlap = a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes
                    XCTAssertFalse(timeOverlap && spaceOverlap, "buffers of values \(a.value) and \(b.value) overlap")
                }
            }
            XCTAssertLessThan(plan.memory.arenaBytes, plan.memory.unsharedBytes)
            XCTAssertTrue(plan.memory.description.contains("reduced from \(plan.memory.unsharedBytes) to \(plan.memory.arenaBytes) bytes"))
        }
    }

    /// A plan listing shows every kernel call and the buffers.
    func testListing() throws {
        let b = GraphBuilder(name: "tiny")
        let x = try b.input("x", .f32([-1, 3]))
        b.setOutputs([try b.withLayer("act") { try b.relu(x) }])
        let plan = try ExecutionPlan(b.graph, batchSize: 2, store: ParameterStore(), isa: CK_ISA_REF)
        XCTAssertEqual(plan.listing, """
        plan @tiny isa=ref steps=1 workspace=0 bytes
          0: %0 = relu -> ck_f32_vrelu__ref(in0, out)  # act
        %x -> feed[0x0000, +64)
        %0 -> arena[0x0000, +64) live [1,2]
        arena: 64 bytes in 1 buffers, reduced from 64 to 64 bytes; feeds: 64 bytes
        """)
    }

    /// Bad input to a plan is an error, and a failed run writes no parameter.
    func testBadInputsAreErrorsAndFailedRunsChangeNothing() throws {
        let b = GraphBuilder(name: "emb")
        let ids = try b.input("ids", .i32([-1]))
        let table = try b.parameter("embedding.embeddings", .f32([4, 2]))
        let rows = try b.withLayer("embedding") { try b.emit("gather", [table, ids]) }
        let loss = try b.reduceSum(rows, axes: [0, 1])
        var g = b.graph
        let grad = try Autodiff.gradients(of: loss, wrt: [table], in: &g)[0]
        let ub = GraphBuilder(extending: g)
        _ = try ub.assign(table, ub.sub(table, grad))
        ub.setOutputs([loss])
        let store = ParameterStore()
        let plan = try ExecutionPlan(ub.graph, batchSize: 3, store: store)
        let initial: [Float] = [1, 2, 3, 4, 5, 6, 7, 8]
        try store.set("embedding.embeddings", initial)

        XCTAssertEqual(message { try plan.run() }, "input %ids of @emb was not fed")
        XCTAssertEqual(message { try plan.setInput("ids", Tensor([Float(1), 2], shape: [2])) }, "input %ids expects i32[3], got f32[2]")
        XCTAssertEqual(message { try plan.setInput("nope", Tensor([Int32(1)], shape: [1])) }, "plan for @emb has no input %nope (inputs: ids)")
        try plan.setInput("ids", Tensor([Int32(0), 9, 2], shape: [3]))
        XCTAssertEqual(message { try plan.run() }, "embedding: gather: index 9 at position 1; 1 of 3 indices out of range [0, 4)")
        XCTAssertEqual(try store.tensor("embedding.embeddings").floats, initial, "a failed run changed a parameter")

        try plan.setInput("ids", Tensor([Int32(0), 3, 0], shape: [3]))
        try plan.run()
        XCTAssertEqual(try store.tensor("embedding.embeddings").floats, [-1, 0, 3, 4, 5, 6, 6, 7])

        XCTAssertEqual(message { try store.set("embedding.embeddings", [1, 2]) }, "tensor of shape [4, 2] needs 8 values, got 2")
        XCTAssertEqual(message { try store.set("embedding.embeddings", Tensor([Float(1), 2], shape: [2])) },
                       "parameter %embedding.embeddings is f32[4,2], cannot store f32[2]")
        XCTAssertEqual(try store.tensor("embedding.embeddings").floats, [-1, 0, 3, 4, 5, 6, 6, 7])
        XCTAssertEqual(message { _ = try ExecutionPlan(ub.graph, batchSize: 0, store: store) }, "batch size must be positive, got 0")

        // A store holding a parameter of another shape cannot back the plan.
        let other = ParameterStore()
        try other.set("embedding.embeddings", Tensor([Float(1), 2, 3], shape: [3]))
        XCTAssertEqual(message { _ = try ExecutionPlan(ub.graph, batchSize: 3, store: other) },
                       "parameter %embedding.embeddings is stored as f32[3], the graph wants f32[4,2]")
    }

    /// Random ops draw afresh on every run but repeat for the same seed and step.
    func testRandomOpsAdvancePerRun() throws {
        let b = GraphBuilder(name: "dropout")
        let x = try b.input("x", .f32([-1, 8]))
        let keep = try b.emit("random_bernoulli", [x], ["seed": .int(7), "p": .float(0.5)])
        b.setOutputs([try b.mul(x, keep)])
        let feed = ["x": try Tensor([Float](repeating: 1, count: 32), shape: [4, 8])]
        let p1 = try ExecutionPlan(b.graph, batchSize: 4, store: ParameterStore())
        let p2 = try ExecutionPlan(b.graph, batchSize: 4, store: ParameterStore())
        let a1 = try p1.run(feed)[0], a2 = try p1.run(feed)[0]
        let b1 = try p2.run(feed)[0]
        XCTAssertNotEqual(a1, a2)
        XCTAssertEqual(a1, b1)
        let ref = try ReferenceEvaluator(randomCounter: 0).evaluate(b.graph, feeds: ["x": RefTensor(.f32, [4, 8], Array(repeating: 1, count: 32))])[0]
        XCTAssertEqual(a1.floats.map(Double.init), ref.data)

        // Plans sharing one counter (a model's training plans at two batch sizes) continue one
        // stream: the batch-4 plan's run after a batch-2 plan's draws as a plan's second run does.
        let counter = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        defer { counter.deallocate() }
        counter.initialize(to: 0)
        let small = try ExecutionPlan(b.graph, batchSize: 2, store: ParameterStore(), randomCounter: counter)
        let large = try ExecutionPlan(b.graph, batchSize: 4, store: ParameterStore(), randomCounter: counter)
        _ = try small.run(["x": try Tensor([Float](repeating: 1, count: 16), shape: [2, 8])])
        XCTAssertEqual(counter.pointee, 1)
        XCTAssertEqual(try large.run(feed)[0], a2, "the shared count, not the plan's own")
        XCTAssertEqual(counter.pointee, 2)
    }
}
