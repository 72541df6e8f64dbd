import CKernels
import KerasIR
import KerasRuntime
import XCTest

typealias CaseRNG = SplitMix64

/// Values for a case's inputs, at f32 precision so kernels and the reference see the same numbers.
func makeFeeds(_ c: OpCase, seed: UInt64) -> [String: RefTensor] {
    var rng = CaseRNG(seed: seed)
    var feeds: [String: RefTensor] = [:]
    for (i, spec) in c.inputs.enumerated() {
        let n = spec.type.shape.reduce(1, *)
        var data: [Double]
        switch spec.values {
        case .uniform(let lo, let hi): data = (0..<n).map { _ in lo + (hi - lo) * rng.unit() }
        case .awayFromZero(let lo, let hi): data = (0..<n).map { _ in (lo + (hi - lo) * rng.unit()) * (rng.next() & 1 == 0 ? 1 : -1) }
        case .exactly(let v): data = v
        }
        feeds["x\(i)"] = RefTensor(spec.type.dtype, spec.type.shape, data.map { Double(Float($0)) })
    }
    return feeds
}

/// The case's op applied to inputs %x0, %x1, ...
func buildCase(_ c: OpCase) throws -> (GraphBuilder, [Value], Value) {
    let b = GraphBuilder(name: "case")
    let xs = try c.inputs.enumerated().map { try b.input("x\($0.offset)", $0.element.type) }
    let y = try b.emit(c.op, xs, c.attrs)
    return (b, xs, y)
}

func toTensor(_ r: RefTensor) throws -> Tensor {
    r.dtype == .f32 ? try Tensor(r.data.map { Float($0) }, shape: r.shape)
                    : try Tensor(r.data.map { Int32($0) }, shape: r.shape)
}

/// |got - want| <= tol * (1 + max|want|) over the whole tensor (the
/// conformance README's rule), or a message with the first mismatch.
func mismatch(_ got: [Double], _ want: [Double], tol: Double) -> String? {
    guard got.count == want.count else { return "\(got.count) values, want \(want.count)" }
    let scale = 1 + (want.map { abs($0) }.max() ?? 0)
    for i in 0..<got.count where !(abs(got[i] - want[i]) <= tol * scale) {
        return "[\(i)] got \(got[i]), want \(want[i]) (tolerance \(tol * scale))"
    }
    return nil
}

final class OpCheckTests: XCTestCase {
    /// OpDef's initializer requires every part (shape, VJP or a reason there
    /// is none, reference, lowering, cost), so the compiler checks that; here,
    /// OpKind lists the registered ops, each entry is registered under its own
    /// name, and every op without a VJP says why.
    func testRegistryEntriesAreComplete() {
        let reg = OpRegistry.standard
        XCTAssertGreaterThanOrEqual(reg.names.count, 60)
        // OpKind, what the passes compare against, names exactly the registered ops.
        XCTAssertEqual(OpKind.allCases.map(\.rawValue).sorted(), reg.names)
        for name in reg.names {
            let d = reg[name]!
            XCTAssertEqual(d.name, name)
            if case .notDifferentiable(let reason) = d.differentiability {
                XCTAssertGreaterThan(reason.count, 10, "\(name) does not say why it has no VJP")
            }
        }
    }

    /// Every op has a row in the op table, and every differentiable op with
    /// inputs has a row the gradient check runs on.
    func testOpTableCoversTheRegistry() {
        let reg = OpRegistry.standard
        let tested = Set(opCases.map(\.op))
        for name in reg.names where !structuralOps.contains(name) {
            XCTAssertTrue(tested.contains(name), "op \(name) has no row in the op table")
            if case .vjp = reg[name]!.differentiability {
                XCTAssertTrue(opCases.contains { $0.op == name && $0.inputs.contains(where: \.differentiate) },
                              "differentiable op \(name) has no gradient-check row")
            }
        }
    }

    /// Each row compiled to kernels (at the best ISA and at ref) agrees with
    /// the double-precision reference within 1e-5 of its scale.
    func testLoweredKernelsMatchReference() throws {
        var compiled = 0
        defer { XCTAssertEqual(compiled, 2 * opCases.count) }
        for (k, c) in opCases.enumerated() {
            let (b, _, y) = try buildCase(c)
            b.setOutputs([y])
            let feeds = makeFeeds(c, seed: UInt64(k + 1))
            let want = try ReferenceEvaluator().evaluate(b.graph, feeds: feeds)[0]
            for isa in [ck_best_isa(), CK_ISA_REF] {
                let plan = try ExecutionPlan(b.graph, inputShapes: feeds.mapValues(\.shape), store: ParameterStore(), isa: isa)
                let got = try plan.run(try feeds.mapValues(toTensor))[0]
                compiled += 1
                XCTAssertEqual(got.shape, want.shape, "\(c): shape")
                let gotD = got.dtype == .f32 ? got.floats.map(Double.init) : (try got.ints).map(Double.init)
                if let m = mismatch(gotD, want.data, tol: 1e-5) {
                    XCTFail("\(c) at \(String(cString: ck_isa_name(isa))): \(m)")
                }
            }
        }
    }

    /// Central finite differences in double precision against each VJP,
    /// evaluated with the reference rules: |analytic - numeric| <= 1e-6 (1 + max|numeric|).
    /// Then the gradient graph compiled to kernels agrees with it within 1e-4.
    func testGradientsMatchFiniteDifferences() throws {
        let eps = 1e-6
        var checked = 0
        for (k, c) in opCases.enumerated() {
            guard case .vjp = OpRegistry.standard[c.op]!.differentiability, c.inputs.contains(where: \.differentiate) else { continue }
            let (b, xs, y) = try buildCase(c)
            let feeds = makeFeeds(c, seed: UInt64(1000 + k))
            // loss = sum(y * C) for a fixed random cotangent C
            let yType = b.type(of: y)
            var rng = CaseRNG(seed: UInt64(77 + k))
            let cot = (0..<yType.shape.reduce(1, *)).map { _ in Float(rng.unit() * 2 - 1) }
            let cv = try b.constant(cot, shape: yType.shape)
            let loss = try b.reduceSum(b.mul(y, cv), axes: Array(0..<yType.rank))
            var g = b.graph
            let wrt = xs.enumerated().filter { c.inputs[$0.offset].differentiate }
            let grads = try Autodiff.gradients(of: loss, wrt: wrt.map(\.element), in: &g)
            g.outputs = [loss] + grads
            let evaluator = ReferenceEvaluator()
            let analytic = try evaluator.evaluate(g, feeds: feeds)
            for (j, (index, _)) in wrt.enumerated() {
                let name = "x\(index)"
                var numeric = [Double](repeating: 0, count: feeds[name]!.count)
                for e in 0..<numeric.count {
                    var plus = feeds, minus = feeds
                    plus[name]!.data[e] += eps
                    minus[name]!.data[e] -= eps
                    let lp = try evaluator.evaluate(g, feeds: plus)[0].data[0]
                    let lm = try evaluator.evaluate(g, feeds: minus)[0].data[0]
                    numeric[e] = (lp - lm) / (2 * eps)
                }
                if let m = mismatch(analytic[1 + j].data, numeric, tol: 1e-6) {
                    XCTFail("\(c): gradient of input \(index): \(m)")
                }
            }
            // The backward graph through the kernels.
            let plan = try ExecutionPlan(g, inputShapes: feeds.mapValues(\.shape), store: ParameterStore())
            let outs = try plan.run(try feeds.mapValues(toTensor))
            for j in 0..<grads.count {
                if let m = mismatch(outs[1 + j].floats.map(Double.init), analytic[1 + j].data, tol: 1e-4) {
                    XCTFail("\(c): compiled gradient of input \(wrt[j].offset): \(m)")
                }
            }
            checked += 1
        }
        XCTAssertGreaterThan(checked, 60)
    }
}
