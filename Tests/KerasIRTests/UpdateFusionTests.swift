import CKernels
import KerasIR
import KerasRuntime
import XCTest

/// The update fusion pass, text in and text out, its refusals, and the
/// fused_update kernel against the unfused kernels, bitwise, on sizes around
/// its tile (many tiles, partial tiles) and on one and two threads.
final class UpdateFusionTests: XCTestCase {
    /// Random gradients g0, g1, ... of these shapes.
    static func gradients(_ shapes: [[Int]], seed: UInt64) -> [String: Tensor] {
        var rng = SplitMix64(seed: seed)
        return Dictionary(uniqueKeysWithValues: shapes.enumerated().map { i, s in
            ("g\(i)", try! Tensor((0..<s.reduce(1, *)).map { _ in Float(rng.unit() * 2 - 1) }, shape: s))
        })
    }

    /// The parameters after `runs` runs of the compiled graph, with some
    /// passes disabled and on `threads` threads, every parameter but
    /// `skipping` set to a fixed pattern first; and the plan's kernel names.
    static func steps(_ build: () throws -> Graph, feeds: [String: Tensor], runs: Int, disable: String?, threads: Int32, skipping: String,
                      setUp: (ParameterStore) throws -> Void = { _ in }) throws -> (ParameterStore, [String]) {
        let saved = ck_threads_get()
        _ = ck_threads_set(threads)
        defer { _ = ck_threads_set(saved) }
        if let d = disable { setenv("KERAS_DISABLE_PASSES", d, 1) }
        defer { unsetenv("KERAS_DISABLE_PASSES") }
        let store = ParameterStore()
        let plan = try ExecutionPlan(try build(), inputShapes: feeds.mapValues(\.shape), store: store)
        try setUp(store)
        for name in store.names where name != skipping {
            try store.set(name, (0..<store.buffer(name)!.count).map { Float(($0 * 37 + name.count) % 11) / 10 })
        }
        for _ in 0..<runs { _ = try plan.run(feeds) }
        return (store, plan.steps.map(\.kernel.name))
    }

    func testMomentumUpdatesAndStepCounterBecomeOneCall() throws {
        var g = try GraphParser.parse("""
        graph @g(%w: f32[3,2] param, %m: f32[3,2] param, %b: f32[2] param, %it: f32[] param, %lr: f32[] param, %gw: f32[3,2], %gb: f32[2]) -> (f32[3,2]) {
          %one = constant {value=[1]} : f32[]
          %mu = constant {value=[0.9]} : f32[]
          %0 = add(%it, %one) : f32[]  # sgd
          %1 = mul(%m, %mu) : f32[3,2]  # sgd
          %2 = mul(%gw, %lr) : f32[3,2]  # sgd
          %3 = sub(%1, %2) : f32[3,2]  # sgd
          %4 = add(%w, %3) : f32[3,2]  # sgd
          %5 = mul(%gb, %lr) : f32[2]  # sgd
          %6 = sub(%b, %5) : f32[2]  # sgd
          %7 = assign(%m, %3) : f32[3,2]  # sgd
          %8 = assign(%w, %4) : f32[3,2]  # sgd
          %9 = assign(%b, %6) : f32[2]  # sgd
          %10 = assign(%it, %0) : f32[]  # sgd
          return %gw
        }
        """)
        let pass = UpdateFusion()
        XCTAssertTrue(try pass.run(&g, registry: .standard))
        try Verifier.verify(g)
        let expected = """
        graph @g(%w: f32[3,2] param, %m: f32[3,2] param, %b: f32[2] param, %it: f32[] param, %lr: f32[] param, %gw: f32[3,2], %gb: f32[2]) -> (f32[3,2]) {
          %one = constant {value=[1]} : f32[]
          %mu = constant {value=[0.9]} : f32[]
          %0 = fused_update(%m, %mu, %gw, %lr, %w, %gb, %b, %it, %one) {program="mul(x0,x1);mul(x2,x3);sub(t0,t1);add(x4,t2);store(x0,t2);store(x4,t3)|mul(x5,x3);sub(x6,t0);store(x6,t1)|add(x7,x8);store(x7,t0)"} : f32[3,2]  # sgd
          return %gw
        }

        """
        XCTAssertEqual(g.description, expected)
        XCTAssertEqual(try GraphParser.parse(g.description).description, expected, "round trip")
        XCTAssertEqual(pass.notes.last, "3 jobs, 4 stores -> one fused_update")
    }

    func testJobsThatReadAnotherJobsParameterOrSwapAreLeftAlone() throws {
        let text = """
        graph @g(%a: f32[4] param, %b: f32[4] param, %c: f32[4] param, %d: f32[4] param, %k: f32[]) -> (f32[]) {
          %0 = mul(%b, %k) : f32[4]
          %1 = add(%a, %k) : f32[4]
          %2 = assign(%a, %0) : f32[4]
          %3 = assign(%b, %1) : f32[4]
          %4 = assign(%c, %d) : f32[4]
          %5 = assign(%d, %c) : f32[4]
          return %k
        }
        """
        var g = try GraphParser.parse(text)
        let pass = UpdateFusion()
        XCTAssertFalse(try pass.run(&g, registry: .standard))
        XCTAssertEqual(g.description, try GraphParser.parse(text).description)
        XCTAssertEqual(pass.notes, ["not fused assign %2: another update reads %a, which this job writes",
                                    "not fused assign %3: another update reads %b, which this job writes",
                                    "not fused assign %4: another update reads %c, which this job writes",
                                    "not fused assign %5: another update reads %d, which this job writes"])
    }

    /// Adam-shaped updates for parameters of 1, 5, 1023, 1024, 1025 and 2 x 1031
    /// elements and a step counter: three steps with the pass, three without, every
    /// parameter bitwise equal; and the fused plan gives the same bits on 1 and 2 threads.
    func testFusedUpdateMatchesUnfusedKernelsBitwise() throws {
        let shapes: [[Int]] = [[1], [5], [1023], [1024], [1025], [2, 1031]]
        func build() throws -> Graph {
            let b = GraphBuilder(name: "adam")
            let it = try b.parameter("it", .f32([]))
            let step = try b.add(it, 1)
            let alpha = try b.div(b.mul(b.scalar(0.01), b.sqrt(b.sub(b.scalar(1), b.pow(b.scalar(0.999), step)))),
                                  b.sub(b.scalar(1), b.pow(b.scalar(0.9), step)))
            var outs: [Value] = []
            for (i, s) in shapes.enumerated() {
                let w = try b.parameter("w\(i)", .f32(s)), m = try b.parameter("m\(i)", .f32(s)), v = try b.parameter("v\(i)", .f32(s))
                let g = try b.input("g\(i)", .f32(s))
                let m2 = try b.add(m, b.mul(b.sub(g, m), 0.1))
                let v2 = try b.add(v, b.mul(b.sub(b.square(g), v), 0.001))
                let w2 = try b.sub(w, b.div(b.mul(m2, alpha), b.add(b.sqrt(v2), 1e-7)))
                _ = try b.assign(m, m2); _ = try b.assign(v, v2); _ = try b.assign(w, w2)
                outs.append(g)
            }
            _ = try b.assign(it, step)
            b.setOutputs([outs[0]])
            return b.graph
        }
        let feeds = Self.gradients(shapes, seed: 5)
        func run(disable: String?, threads: Int32) throws -> (ParameterStore, [String]) {
            try Self.steps(build, feeds: feeds, runs: 3, disable: disable, threads: threads, skipping: "it")
        }
        let (unfused, plain) = try run(disable: "fuse-updates", threads: 1)
        let (fused, kernels) = try run(disable: nil, threads: 1)
        let (fused2, _) = try run(disable: nil, threads: 2)
        XCTAssertEqual(kernels.filter { $0.hasPrefix("ck_f32_fused_update") }.count, 1, "\(kernels)")
        XCTAssertGreaterThan(plain.count, kernels.count)
        XCTAssertEqual(try fused.tensor("it").floats, [3])
        for name in unfused.names {
            let want = try unfused.tensor(name).floats.map(\.bitPattern)
            XCTAssertEqual(try fused.tensor(name).floats.map(\.bitPattern), want, "\(name): fused against unfused")
            XCTAssertEqual(try fused2.tensor(name).floats.map(\.bitPattern), want, "\(name): two threads")
        }
    }

    /// Clipping by norm in the same call: per-variable clipnorm and a global
    /// norm over two gradients, their sums of squares computed by the fused
    /// update before any store. Against the unfused kernels within float
    /// rounding of a reordered sum; one and two threads bitwise alike.
    func testClippingNormsAreComputedByTheFusedUpdate() throws {
        let shapes: [[Int]] = [[5], [1025], [2, 1031], [300]]
        let c: Float = 1
        func build() throws -> Graph {
            let b = GraphBuilder(name: "clipped")
            let lr = try b.parameter("lr", .f32([]))
            let grads = try shapes.indices.map { try b.input("g\($0)", .f32(shapes[$0])) }
            func sumSquares(_ g: Value) throws -> Value { try b.reduceSum(b.square(g), axes: Array(0..<b.type(of: g).rank)) }
            var clipped: [Value] = []
            for g in grads.prefix(2) {  // clipnorm
                let norm = try b.sqrt(b.maximum(sumSquares(g), b.scalar(0)))
                clipped.append(try b.div(b.mul(g, c), b.maximum(norm, b.scalar(c))))
            }
            let total = try b.add(sumSquares(grads[2]), sumSquares(grads[3]))  // global_clipnorm
            let scale = try b.div(b.scalar(c), b.maximum(b.sqrt(total), b.scalar(c)))
            clipped += try grads.suffix(2).map { try b.mul($0, scale) }
            for (i, g) in clipped.enumerated() {
                let w = try b.parameter("w\(i)", .f32(shapes[i]))
                _ = try b.assign(w, b.sub(w, b.mul(g, lr)))
            }
            b.setOutputs([grads[0]])
            return b.graph
        }
        let feeds = Self.gradients(shapes, seed: 9)
        func run(disable: String?, threads: Int32) throws -> (ParameterStore, [String]) {
            try Self.steps(build, feeds: feeds, runs: 2, disable: disable, threads: threads, skipping: "lr") { try $0.set("lr", [0.5]) }
        }
        let (unfused, plain) = try run(disable: "fuse-updates", threads: 1)
        let (fused, kernels) = try run(disable: nil, threads: 1)
        let (fused2, _) = try run(disable: nil, threads: 2)
        XCTAssertEqual(kernels.count, 1, "\(kernels)")
        XCTAssertTrue(kernels[0].hasPrefix("ck_f32_fused_update") && kernels[0].hasSuffix("4 norms"), "\(kernels)")
        XCTAssertGreaterThan(plain.filter { $0.hasPrefix("ck_f32_reduce_sum") }.count, 3, "\(plain)")
        for name in unfused.names {
            let want = try unfused.tensor(name).floats
            let got = try fused.tensor(name).floats
            for (k, (a, e)) in zip(got, want).enumerated() {
                XCTAssertEqual(a, e, accuracy: 2e-6 * max(abs(e), 1), "\(name)[\(k)]: fused against unfused")
            }
            XCTAssertEqual(try fused2.tensor(name).floats.map(\.bitPattern), got.map(\.bitPattern), "\(name): two threads")
        }
    }

    /// SGD on a weight-gradient matmul goes into the GEMM's store step:
    /// plain (w - lr * g) and with momentum (m' = m * mu - lr * g, w + m').
    func testSGDUpdatesOfMatmulGradientsBecomeGemmUpdates() throws {
        var g = try GraphParser.parse("""
        graph @g(%w: f32[3,2] param, %v: f32[3,2] param, %m: f32[3,2] param, %lr: f32[] param, %x: f32[4,3], %dy: f32[4,2]) -> (f32[4,2]) {
          %mu = constant {value=[0.9]} : f32[]
          %0 = matmul(%x, %dy) {transpose_a=true, transpose_b=false} : f32[3,2]
          %1 = mul(%0, %lr) : f32[3,2]
          %2 = sub(%w, %1) : f32[3,2]
          %3 = assign(%w, %2) : f32[3,2]
          %4 = matmul(%x, %dy) {transpose_a=true, transpose_b=false} : f32[3,2]
          %5 = mul(%4, %lr) : f32[3,2]
          %6 = mul(%m, %mu) : f32[3,2]
          %7 = sub(%6, %5) : f32[3,2]
          %8 = add(%v, %7) : f32[3,2]
          %9 = assign(%m, %7) : f32[3,2]
          %10 = assign(%v, %8) : f32[3,2]
          return %dy
        }
        """)
        let pass = GemmUpdateFusion()
        XCTAssertTrue(try pass.run(&g, registry: .standard))
        try Verifier.verify(g)
        let expected = """
        graph @g(%w: f32[3,2] param, %v: f32[3,2] param, %m: f32[3,2] param, %lr: f32[] param, %x: f32[4,3], %dy: f32[4,2]) -> (f32[4,2]) {
          %0 = gemm_update(%w, %x, %dy, %lr) {transpose_a=true, transpose_b=false} : f32[3,2]
          %1 = gemm_update(%m, %v, %x, %dy, %lr) {momentum=0.9, transpose_a=true, transpose_b=false} : f32[3,2]
          return %dy
        }

        """
        XCTAssertEqual(g.description, expected)
        XCTAssertEqual(try GraphParser.parse(g.description).description, expected, "round trip")

        // Through kernels, against the unfused update (rounding differs: the GEMM scales its sum once).
        func run(disable: String?) throws -> ParameterStore {
            if let d = disable { setenv("KERAS_DISABLE_PASSES", d, 1) }
            defer { unsetenv("KERAS_DISABLE_PASSES") }
            let b = GraphBuilder(name: "sgd")
            let x = try b.input("x", .f32([-1, 37])), dy = try b.input("dy", .f32([-1, 29])), x2 = try b.input("x2", .f32([-1, 37]))
            let w = try b.parameter("w", .f32([37, 29])), v = try b.parameter("v", .f32([37, 29])), m = try b.parameter("m", .f32([37, 29]))
            let lr = try b.parameter("lr", .f32([]))
            _ = try b.assign(w, b.sub(w, b.mul(b.matmul(x, dy, transposeA: true), lr)))
            let m2 = try b.sub(b.mul(m, 0.9), b.mul(b.matmul(x2, dy, transposeA: true), lr))
            _ = try b.assign(m, m2); _ = try b.assign(v, b.add(v, m2))
            b.setOutputs([dy])
            let store = ParameterStore()
            var rng = SplitMix64(seed: 9)
            let plan = try ExecutionPlan(b.graph, inputShapes: ["x": [50, 37], "x2": [50, 37], "dy": [50, 29]], store: store)
            for name in ["w", "v", "m"] { try store.set(name, (0..<37 * 29).map { _ in Float(rng.unit() - 0.5) }) }
            try store.set("lr", [0.05])
            let feeds = ["x": try Tensor((0..<50 * 37).map { _ in Float(rng.unit() - 0.5) }, shape: [50, 37]),
                         "x2": try Tensor((0..<50 * 37).map { _ in Float(rng.unit() - 0.5) }, shape: [50, 37]),
                         "dy": try Tensor((0..<50 * 29).map { _ in Float(rng.unit() - 0.5) }, shape: [50, 29])]
            for _ in 0..<2 { _ = try plan.run(feeds) }
            XCTAssertEqual(plan.steps.filter { $0.kernel.name.contains("w-=lr*AB") || $0.kernel.name.contains("w+=m") }.count, disable == nil ? 2 : 0)
            return store
        }
        let fused = try run(disable: nil), unfused = try run(disable: "fuse-gemm-updates")
        for name in ["w", "v", "m"] {
            let a = try fused.tensor(name).floats, b = try unfused.tensor(name).floats
            XCTAssertEqual(zip(a, b).map { abs($0 - $1) }.max()!, 0, accuracy: 2e-6, name)
        }
    }
}
