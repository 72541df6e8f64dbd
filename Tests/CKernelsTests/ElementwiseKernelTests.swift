import Foundation
import CKernels
import XCTest

/// Optimized elementwise, select, copy, cast, reduce, softmax, gather and
/// random kernels against their reference twins, driven by the kernel table.
final class ElementwiseKernelTests: XCTestCase {
    /// Per-op tolerance: the AVX2 math (ck_internal.h) states its accuracy;
    /// the rest must agree to rounding.
    static func unaryTolerance(_ op: ck_unary_op) -> Float {
        switch op {
        case CK_UNARY_EXP, CK_UNARY_LOG, CK_UNARY_SIGMOID, CK_UNARY_SOFTPLUS, CK_UNARY_SWISH: return 1e-6
        case CK_UNARY_TANH, CK_UNARY_ERF, CK_UNARY_GELU, CK_UNARY_GELU_TANH, CK_UNARY_ELU, CK_UNARY_SELU: return 1e-6
        default: return 1e-7
        }
    }

    static func unaryRange(_ op: ck_unary_op) -> (Float, Float) {
        switch op {
        case CK_UNARY_LOG, CK_UNARY_SQRT, CK_UNARY_RSQRT: return (1e-3, 50)
        case CK_UNARY_EXP: return (-80, 80)
        default: return (-12, 12)
        }
    }

    func table(_ family: ck_family) -> [ck_kernel_info] {
        var n = 0
        let t = ck_kernel_table(&n)!
        return (0..<n).map { t[$0] }.filter { $0.family == family && $0.isa != CK_ISA_REF }
    }

    func testUnaryKernelsMatchReference() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        let kernels = table(CK_FAMILY_UNARY)
        XCTAssertEqual(kernels.count, Int(CK_UNARY_COUNT.rawValue))
        var rng = TestRNG(1)
        for info in kernels {
            let op = ck_unary_op(UInt32(info.op))
            let fast = ck_f32_unary_kernel(op, info.isa)!, ref = ck_f32_unary_kernel(op, CK_ISA_REF)!
            var params = ck_unary_params(alpha: 0.7, beta: 0)
            let (lo, hi) = Self.unaryRange(op)
            for n in sizesAround(Int(info.tile)) {
                var xs = rng.floats(n, lo, hi)
                if n > 3 { xs[0] = 0; xs[1] = -0.0 }
                let x = Guarded(xs), y = Guarded(n), r = Guarded(n)
                fast(n, x.pointer, y.pointer, &params)
                ref(n, x.pointer, r.pointer, &params)
                if let msg = compare(y.values, r.values, tol: Self.unaryTolerance(op)) {
                    XCTFail("\(kernelName(info)) n=\(n): \(msg)")
                }
                XCTAssertTrue(y.intactCanaries, "\(kernelName(info)) n=\(n) wrote outside its output")
                // in place
                fast(n, x.pointer, x.pointer, &params)
                if let msg = compare(x.values, r.values, tol: Self.unaryTolerance(op)) {
                    XCTFail("\(kernelName(info)) in place n=\(n): \(msg)")
                }
            }
        }
    }

    /// The AVX2 math functions against libm over wide ranges, with the
    /// accuracy stated in ck_internal.h.
    func testVectorMathAccuracy() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        let n = 20000
        let cases: [(ck_unary_op, Float, Float, (Double) -> Double, Double, Bool)] = [
            (CK_UNARY_EXP, -87, 88, { Foundation.exp($0) }, 2.5e-7, true),
            (CK_UNARY_LOG, 1e-30, 1e30, { Foundation.log($0) }, 2.5e-7, true),
            (CK_UNARY_TANH, -10, 10, { Foundation.tanh($0) }, 2e-7, false),
            (CK_UNARY_ERF, -5, 5, { Foundation.erf($0) }, 4e-7, false),
        ]
        var params = ck_unary_params(alpha: 0, beta: 0)
        for (op, lo, hi, f, bound, relative) in cases {
            let fn = ck_f32_unary_kernel(op, CK_ISA_AVX2)!
            var xs = [Float](repeating: 0, count: n)
            for i in 0..<n {
                let t = Double(i) / Double(n - 1)
                xs[i] = op == CK_UNARY_LOG ? Float(Foundation.exp(Foundation.log(Double(lo)) * (1 - t) + Foundation.log(Double(hi)) * t))
                                           : Float(Double(lo) * (1 - t) + Double(hi) * t)
            }
            var ys = [Float](repeating: 0, count: n)
            fn(n, xs, &ys, &params)
            var worst = 0.0
            for i in 0..<n {
                let exact = f(Double(xs[i]))
                let err = abs(Double(ys[i]) - exact) / (relative ? abs(exact) : 1)
                worst = max(worst, err)
            }
            XCTAssertLessThanOrEqual(worst, bound, "\(String(cString: ck_unary_op_name(op))) max \(relative ? "relative" : "absolute") error \(worst)")
        }
    }

    func testBinaryKernelsMatchReferenceInEveryStrideCombination() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var rng = TestRNG(2)
        for info in table(CK_FAMILY_BINARY_F32) {
            let op = ck_binary_op(UInt32(info.op))
            let fast = ck_f32_binary_kernel(op, info.isa)!, ref = ck_f32_binary_kernel(op, CK_ISA_REF)!
            for n in sizesAround(Int(info.tile)) {
                for (sa, sb) in [(1, 1), (1, 0), (0, 1), (0, 0)] {
                    var av = rng.floats(n, op == CK_BINARY_POW ? 0.1 : -4, 4)
                    let bv = op == CK_BINARY_POW ? rng.floats(n, -2, 2) : rng.floats(n, -4, 4)
                    if n > 2 { av[1] = bv[1] }  // equal operands for the comparisons
                    let a = Guarded(av), b = Guarded(bv), y = Guarded(n), r = Guarded(n)
                    fast(n, a.pointer, sa, b.pointer, sb, y.pointer)
                    ref(n, a.pointer, sa, b.pointer, sb, r.pointer)
                    if let msg = compare(y.values, r.values, tol: 1e-7) {
                        XCTFail("\(kernelName(info)) n=\(n) strides=(\(sa),\(sb)): \(msg)")
                    }
                    XCTAssertTrue(y.intactCanaries, "\(kernelName(info)) n=\(n) wrote outside its output")
                }
            }
        }
        for info in table(CK_FAMILY_BINARY_I32) {
            let op = ck_binary_op(UInt32(info.op))
            let fast = ck_i32_binary_kernel(op, info.isa)!, ref = ck_i32_binary_kernel(op, CK_ISA_REF)!
            for n in sizesAround(Int(info.tile)) {
                for (sa, sb) in [(1, 1), (1, 0), (0, 1)] {
                    let a = (0..<n).map { _ in Int32(truncatingIfNeeded: rng.next() % 7) - 3 }
                    let b = (0..<n).map { _ in Int32(truncatingIfNeeded: rng.next() % 7) - 3 }
                    var y = [Int32](repeating: 99, count: n + 4), r = [Int32](repeating: 99, count: n + 4)
                    fast(n, a, sa, b, sb, &y)
                    ref(n, a, sa, b, sb, &r)
                    XCTAssertEqual(y, r, "\(kernelName(info)) n=\(n) strides=(\(sa),\(sb))")
                }
            }
        }
    }

    func testSelectCopyFillCastMatchReference() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var rng = TestRNG(3)
        for n in sizesAround(8) {
            // select, f32 and i32 conditions, every stride combination
            for condF32 in [true, false] {
                let fast = ck_x32_select_kernel(condF32 ? 1 : 0, CK_ISA_AVX2)!, ref = ck_x32_select_kernel(condF32 ? 1 : 0, CK_ISA_REF)!
                let condF = (0..<n).map { _ in Float(rng.next() % 2) }
                let condI = condF.map { Int32($0) }
                let a = (0..<n).map { _ in UInt32(truncatingIfNeeded: rng.next()) }
                let b = (0..<n).map { _ in UInt32(truncatingIfNeeded: rng.next()) }
                for (sc, sa, sb) in [(1, 1, 1), (0, 1, 1), (1, 0, 1), (1, 1, 0), (1, 0, 0)] {
                    var y = [UInt32](repeating: canary, count: n + 8), r = [UInt32](repeating: canary, count: n + 8)
                    condF.withUnsafeBytes { cf in condI.withUnsafeBytes { ci in
                        let c = condF32 ? cf.baseAddress! : ci.baseAddress!
                        fast(n, c, sc, a, sa, b, sb, &y)
                        ref(n, c, sc, a, sa, b, sb, &r)
                    } }
                    XCTAssertEqual(y, r, "select cond \(condF32 ? "f32" : "i32") n=\(n) strides=(\(sc),\(sa),\(sb))")
                }
            }
            // fill
            var y = [UInt32](repeating: canary, count: n + 8), r = y
            ck_x32_fill_kernel(CK_ISA_AVX2)(n, 7, &y)
            ck_x32_fill_kernel(CK_ISA_REF)(n, 7, &r)
            XCTAssertEqual(y, r, "fill n=\(n)")
            // casts
            // NaN and infinities at the front reach the vector loop, at the end the scalar tail.
            let fs: [Float] = [.nan, .infinity, -.infinity, .nan, 1, 2, 3, 4] + rng.floats(n, -3e9, 3e9) + [.nan, 2.5, -2.5]
            var i1 = [Int32](repeating: 0, count: fs.count), i2 = i1
            ck_cast_kernel(1, CK_ISA_AVX2)(fs.count, fs, &i1)
            ck_cast_kernel(1, CK_ISA_REF)(fs.count, fs, &i2)
            XCTAssertEqual(i1, i2, "cast f32->i32 n=\(n)")
            XCTAssertEqual(Array(i2.prefix(3)), [Int32.min, Int32.max, Int32.min], "NaN is Int32.min (never a valid index), infinities saturate")
            var f1 = [Float](repeating: 0, count: i1.count), f2 = f1
            ck_cast_kernel(0, CK_ISA_AVX2)(i1.count, i1, &f1)
            ck_cast_kernel(0, CK_ISA_REF)(i1.count, i1, &f2)
            XCTAssertEqual(f1, f2, "cast i32->f32 n=\(n)")
        }
        // strided N-d copy: transposes, slices with odd strides, broadcasts
        let shapes: [[Int]] = [[1], [7], [3, 5], [4, 9, 2], [2, 3, 17], [5, 1, 33]]
        for shape in shapes {
            let n = shape.reduce(1, *)
            for mode in 0..<3 {
                var d = ck_copy_desc()
                d.rank = Int32(shape.count)
                var src = [Int](repeating: 0, count: shape.count), dst = src
                var s = 1
                for i in stride(from: shape.count - 1, through: 0, by: -1) { dst[i] = s; s *= shape[i] }
                switch mode {
                case 0: // reversed axis order as source strides (a transpose)
                    var t = 1
                    for i in 0..<shape.count { src[i] = t; t *= shape[i] }
                case 1: src = dst.map { $0 * 3 }  // every third element
                default: src = dst.enumerated().map { $0.offset == 0 ? 0 : $0.element }  // broadcast over axis 0
                }
                withUnsafeMutableBytes(of: &d.shape) { p in for (i, v) in shape.enumerated() { p.storeBytes(of: Int64(v), toByteOffset: i * 8, as: Int64.self) } }
                withUnsafeMutableBytes(of: &d.src_stride) { p in for (i, v) in src.enumerated() { p.storeBytes(of: Int64(v), toByteOffset: i * 8, as: Int64.self) } }
                withUnsafeMutableBytes(of: &d.dst_stride) { p in for (i, v) in dst.enumerated() { p.storeBytes(of: Int64(v), toByteOffset: i * 8, as: Int64.self) } }
                let source = (0..<(n * 3 + 8)).map { UInt32($0) }
                var y = [UInt32](repeating: canary, count: n + 8), r = y
                ck_x32_copy_kernel(CK_ISA_AVX2)(&d, source, &y)
                ck_x32_copy_kernel(CK_ISA_REF)(&d, source, &r)
                XCTAssertEqual(y, r, "copy_nd shape \(shape) mode \(mode)")
                XCTAssertEqual(y[n...].allSatisfy { $0 == canary }, true, "copy_nd wrote past its output")
            }
        }
    }

    func testReduceAndSoftmaxMatchReference() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var rng = TestRNG(4)
        let views: [(Int, Int, Int)] = [(1, 1, 1), (3, 7, 1), (2, 33, 1), (1, 257, 1), (4, 5, 8), (3, 9, 11), (2, 1, 17), (5, 64, 3)]
        for (outer, n, inner) in views {
            let x = Guarded(rng.floats(outer * n * inner, -5, 5))
            for info in table(CK_FAMILY_REDUCE) where info.op != 100 {  // 100: moments, tested below
                let op = ck_reduce_op(UInt32(info.op))
                let y = Guarded(outer * inner), r = Guarded(outer * inner)
                ck_f32_reduce_kernel(op, info.isa)(outer, n, inner, x.pointer, y.pointer)
                ck_f32_reduce_kernel(op, CK_ISA_REF)(outer, n, inner, x.pointer, r.pointer)
                if let msg = compare(y.values, r.values, tol: 1e-6 * Float(n)) {
                    XCTFail("\(kernelName(info)) [\(outer),\(n),\(inner)]: \(msg)")
                }
                XCTAssertTrue(y.intactCanaries, "\(kernelName(info)) wrote outside its output")
            }
            let ai = [Int32](repeating: -1, count: outer * inner), ar = ai
            var aiv = ai, arv = ar
            ck_f32_argmax_kernel(CK_ISA_AVX2)(outer, n, inner, x.pointer, &aiv)
            ck_f32_argmax_kernel(CK_ISA_REF)(outer, n, inner, x.pointer, &arv)
            XCTAssertEqual(aiv, arv, "argmax [\(outer),\(n),\(inner)]")
            for log: Int32 in [0, 1] {
                let y = Guarded(outer * n * inner), r = Guarded(outer * n * inner)
                ck_f32_softmax_kernel(CK_ISA_AVX2)(outer, n, inner, x.pointer, y.pointer, log)
                ck_f32_softmax_kernel(CK_ISA_REF)(outer, n, inner, x.pointer, r.pointer, log)
                if let msg = compare(y.values, r.values, tol: 2e-6) {
                    XCTFail("softmax log=\(log) [\(outer),\(n),\(inner)]: \(msg)")
                }
                XCTAssertTrue(y.intactCanaries, "softmax wrote outside its output")
            }
        }
    }

    /// Views large enough to be split over threads (rows, and column chunks
    /// of whole lines when rows are few; 64-column passes, their 8-column and
    /// scalar tails): against the reference, and bitwise the same on 1 and 2
    /// threads.
    func testReduceAndSoftmaxSplitOverThreads() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var rng = TestRNG(12)
        let saved = ck_threads_get()
        defer { _ = ck_threads_set(saved) }
        for (outer, n, inner) in [(1, 1100, 64), (1, 700, 100), (3, 300, 100), (600, 130, 1), (2, 40, 1000), (5, 2000, 7)] {
            let x = Guarded(rng.floats(outer * n * inner, -5, 5))
            for info in table(CK_FAMILY_REDUCE) where info.op != 100 && info.isa != CK_ISA_REF {
                let op = ck_reduce_op(UInt32(info.op))
                let r = Guarded(outer * inner)
                ck_f32_reduce_kernel(op, CK_ISA_REF)(outer, n, inner, x.pointer, r.pointer)
                var bits: [[UInt32]] = []
                for threads: Int32 in [1, 2] {
                    _ = ck_threads_set(threads)
                    let y = Guarded(outer * inner)
                    ck_f32_reduce_kernel(op, info.isa)(outer, n, inner, x.pointer, y.pointer)
                    if let msg = compare(y.values, r.values, tol: 1e-6 * Float(n)) {
                        XCTFail("\(kernelName(info)) [\(outer),\(n),\(inner)] on \(threads) threads: \(msg)")
                    }
                    XCTAssertTrue(y.intactCanaries, "\(kernelName(info)) [\(outer),\(n),\(inner)] wrote outside its output")
                    bits.append(y.values.map(\.bitPattern))
                }
                XCTAssertEqual(bits[0], bits[1], "\(kernelName(info)) [\(outer),\(n),\(inner)]: 1 and 2 threads")
            }
            for log: Int32 in [0, 1] {
                let r = Guarded(outer * n * inner)
                ck_f32_softmax_kernel(CK_ISA_REF)(outer, n, inner, x.pointer, r.pointer, log)
                var bits: [[UInt32]] = []
                for threads: Int32 in [1, 2] {
                    _ = ck_threads_set(threads)
                    let y = Guarded(outer * n * inner)
                    ck_f32_softmax_kernel(CK_ISA_AVX2)(outer, n, inner, x.pointer, y.pointer, log)
                    if let msg = compare(y.values, r.values, tol: 2e-6) {
                        XCTFail("softmax log=\(log) [\(outer),\(n),\(inner)] on \(threads) threads: \(msg)")
                    }
                    XCTAssertTrue(y.intactCanaries, "softmax [\(outer),\(n),\(inner)] wrote outside its output")
                    bits.append(y.values.map(\.bitPattern))
                }
                XCTAssertEqual(bits[0], bits[1], "softmax log=\(log) [\(outer),\(n),\(inner)]: 1 and 2 threads")
            }
        }
    }

    /// Column moments against the two-pass reference around the 64-row
    /// block, with canaries, and bitwise the same on 1 and 2 threads.
    func testMomentsMatchReference() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var rng = TestRNG(44)
        let saved = ck_threads_get()
        defer { _ = ck_threads_set(saved) }
        for (rows, cols) in [(1, 1), (63, 7), (64, 33), (65, 3), (1000, 16), (4099, 5)] {
            let x = Guarded(rng.floats(rows * cols, -3, 5))
            let mr = Guarded(cols), vr = Guarded(cols)
            ck_f32_moments_kernel(CK_ISA_REF)(Int64(rows), Int64(cols), x.pointer, mr.pointer, vr.pointer)
            var bits: [[UInt32]] = []
            for threads: Int32 in [1, 2] {
                _ = ck_threads_set(threads)
                let m = Guarded(cols), v = Guarded(cols)
                ck_f32_moments_kernel(CK_ISA_AVX2)(Int64(rows), Int64(cols), x.pointer, m.pointer, v.pointer)
                if let msg = compare(m.values + v.values, mr.values + vr.values, tol: 2e-6) { XCTFail("ck_f32_moments__avx2 [\(rows),\(cols)]: \(msg)") }
                XCTAssertTrue(m.intactCanaries && v.intactCanaries, "ck_f32_moments__avx2 [\(rows),\(cols)] wrote outside its outputs")
                bits.append((m.values + v.values).map(\.bitPattern))
            }
            XCTAssertEqual(bits[0], bits[1], "ck_f32_moments__avx2 [\(rows),\(cols)]: 1 and 2 threads")
        }
    }

    func testGatherScatterAndRandomMatchReference() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var rng = TestRNG(5)
        for width in sizesAround(8) {
            let rows = 11
            let table = Guarded(rng.floats(rows * width, -1, 1))
            var idx = (0..<9).map { _ in Int32(rng.next() % UInt64(rows)) }
            idx[3] = -1; idx[5] = Int32(rows)  // out of range: zeros, counted
            let y = Guarded(idx.count * width), r = Guarded(idx.count * width)
            let bad1 = ck_f32_gather_kernel(CK_ISA_AVX2)(idx.count, idx, table.pointer, rows, width, y.pointer)
            let bad2 = ck_f32_gather_kernel(CK_ISA_REF)(idx.count, idx, table.pointer, rows, width, r.pointer)
            XCTAssertEqual(bad1, 2); XCTAssertEqual(bad2, 2)
            XCTAssertEqual(y.values, r.values, "gather width \(width)")
            XCTAssertTrue(y.intactCanaries)
            let s = Guarded(rows * width), sr = Guarded(rows * width)
            _ = ck_f32_scatter_add_kernel(CK_ISA_AVX2)(idx.count, idx, y.pointer, rows, width, s.pointer)
            _ = ck_f32_scatter_add_kernel(CK_ISA_REF)(idx.count, idx, y.pointer, rows, width, sr.pointer)
            XCTAssertNil(compare(s.values, sr.values, tol: 1e-7), "scatter_add width \(width)")
            XCTAssertTrue(s.intactCanaries)
        }
        for info in table(CK_FAMILY_RANDOM) {
            let dist = ck_random_dist(UInt32(info.op))
            for n in sizesAround(8) {
                let y = Guarded(n), r = Guarded(n)
                ck_f32_random_kernel(dist, info.isa)(n, 1234, 7, 0.3, 2.0, y.pointer)
                ck_f32_random_kernel(dist, CK_ISA_REF)(n, 1234, 7, 0.3, 2.0, r.pointer)
                if let msg = compare(y.values, r.values, tol: 1e-6) { XCTFail("\(kernelName(info)) n=\(n): \(msg)") }
                XCTAssertTrue(y.intactCanaries)
            }
        }
    }

    /// Draws are deterministic per (seed, counter), differ across counters,
    /// and have the right moments.
    func testRandomDrawsStatistics() {
        let n = 100_000
        var u = [Float](repeating: 0, count: n), u2 = u, g = u, b = u
        ck_f32_random_kernel(CK_RANDOM_UNIFORM, ck_best_isa())(n, 9, 0, -1, 3, &u)
        ck_f32_random_kernel(CK_RANDOM_UNIFORM, ck_best_isa())(n, 9, 1, -1, 3, &u2)
        ck_f32_random_kernel(CK_RANDOM_NORMAL, ck_best_isa())(n, 9, 0, 2, 0.5, &g)
        ck_f32_random_kernel(CK_RANDOM_BERNOULLI, ck_best_isa())(n, 9, 0, 0.3, 0, &b)
        func mean(_ v: [Float]) -> Double { v.reduce(0.0) { $0 + Double($1) } / Double(v.count) }
        func sd(_ v: [Float]) -> Double { let m = mean(v); return (v.reduce(0.0) { $0 + (Double($1) - m) * (Double($1) - m) } / Double(v.count)).squareRoot() }
        XCTAssertEqual(mean(u), 1.0, accuracy: 0.02)
        XCTAssertTrue(u.allSatisfy { $0 >= -1 && $0 < 3 })
        XCTAssertNotEqual(u, u2)
        XCTAssertEqual(mean(g), 2.0, accuracy: 0.01)
        XCTAssertEqual(sd(g), 0.5, accuracy: 0.01)
        XCTAssertEqual(mean(b), 0.3, accuracy: 0.01)
        XCTAssertTrue(b.allSatisfy { $0 == 0 || $0 == 1 })
    }

    /// The LSTM cell kernels (cell state, hidden state) against their
    /// reference around the vector width, with unaligned buffers and canaries.
    func testLSTMCellKernelsMatchReference() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var rng = TestRNG(21)
        for op: Int32 in [0, 1] {
            let name = op == 0 ? "ck_f32_lstm_cell_state" : "ck_f32_lstm_hidden"
            for units in sizesAround(8) where units <= 40 {
                for rows in [1, 3] {
                    let z = Guarded(rng.floats(rows * 4 * units, -6, 6)), state = Guarded(rng.floats(rows * units, -3, 3))
                    let y = Guarded(rows * units), r = Guarded(rows * units)
                    ck_f32_lstm_kernel(op, CK_ISA_AVX2)(Int64(rows), Int64(units), z.pointer, state.pointer, y.pointer)
                    ck_f32_lstm_kernel(op, CK_ISA_REF)(Int64(rows), Int64(units), z.pointer, state.pointer, r.pointer)
                    if let m = compare(y.values, r.values, tol: 2e-6) { XCTFail("\(name)__avx2 rows \(rows) units \(units): \(m)") }
                    XCTAssertTrue(y.intactCanaries, "\(name)__avx2 rows \(rows) units \(units) wrote outside its output")
                    // The reference against the definition in double precision.
                    let zv = z.values, sv = state.values, rv = r.values
                    for row in 0..<rows {
                        for j in 0..<units {
                            func sg(_ x: Float) -> Double { 1 / (1 + Foundation.exp(-Double(x))) }
                            let zr = row * 4 * units
                            let want = op == 0
                                ? sg(zv[zr + units + j]) * Double(sv[row * units + j]) + sg(zv[zr + j]) * Foundation.tanh(Double(zv[zr + 2 * units + j]))
                                : sg(zv[zr + 3 * units + j]) * Foundation.tanh(Double(sv[row * units + j]))
                            XCTAssertEqual(Double(rv[row * units + j]), want, accuracy: (abs(want) + 1) * 1e-6, "\(name)__ref row \(row) unit \(j)")
                        }
                    }
                }
            }
        }
    }

    /// The fused elementwise kernel at AVX2 against its scalar twin, around
    /// its tile (ck_fused_tile), with whole, single-value and trailing-row
    /// operands, an alpha, and outputs guarded by canaries; 1 and 2 threads alike.
    func testFusedElementwiseMatchesReference() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var rng = TestRNG(41)
        // y = max(elu_0.5(x0 * s + row) / x1, row)
        let instrs = [ck_fused_instr(binary: 1, op: Int32(CK_BINARY_MUL.rawValue), a_kind: 0, a_index: 0, b_kind: 0, b_index: 1, alpha: 0, c_kind: 0, c_index: 0),
                      ck_fused_instr(binary: 1, op: Int32(CK_BINARY_ADD.rawValue), a_kind: 1, a_index: 0, b_kind: 0, b_index: 2, alpha: 0, c_kind: 0, c_index: 0),
                      ck_fused_instr(binary: 0, op: Int32(CK_UNARY_ELU.rawValue), a_kind: 1, a_index: 1, b_kind: 0, b_index: 0, alpha: 0.5, c_kind: 0, c_index: 0),
                      ck_fused_instr(binary: 1, op: Int32(CK_BINARY_DIV.rawValue), a_kind: 1, a_index: 2, b_kind: 0, b_index: 3, alpha: 0, c_kind: 0, c_index: 0),
                      ck_fused_instr(binary: 1, op: Int32(CK_BINARY_MAX.rawValue), a_kind: 1, a_index: 3, b_kind: 0, b_index: 2, alpha: 0, c_kind: 0, c_index: 0)]
        let t = Int(ck_fused_tile())
        for n in [1, 7, t - 1, t, t + 1, 2 * t + 1, 70_001, 70_007] {
            let row = n % 7 == 0 ? 7 : 1
            let x0 = Guarded(rng.floats(n, -3, 3)), s = Guarded([rng.float(0.5, 2)]), r = Guarded(rng.floats(row, -1, 1)), x1 = Guarded(rng.floats(n, 0.5, 2))
            var results: [[Float]] = []
            for (isa, threads) in [(CK_ISA_REF, Int32(1)), (CK_ISA_AVX2, Int32(1)), (CK_ISA_AVX2, Int32(2))] {
                let y = Guarded(n)
                let saved = ck_threads_set(threads)
                instrs.withUnsafeBufferPointer { ip in
                    var prog = ck_fused_program(count: Int32(ip.count), instrs: ip.baseAddress)
                    let ins: [UnsafePointer<Float>?] = [UnsafePointer(x0.pointer), UnsafePointer(s.pointer), UnsafePointer(r.pointer), UnsafePointer(x1.pointer)]
                    let counts: [Int64] = [Int64(n), 1, Int64(row), Int64(n)]
                    ck_f32_fused_elementwise(isa, &prog, 0, Int64(n), ins, counts, y.pointer)
                }
                _ = ck_threads_set(saved)
                XCTAssertTrue(y.intactCanaries, "ck_f32_fused_elementwise n \(n) wrote outside its output")
                results.append(y.values)
            }
            if let m = compare(results[1], results[0], tol: 2e-6) { XCTFail("ck_f32_fused_elementwise__avx2 n \(n): \(m)") }
            XCTAssertEqual(results[1], results[2], "ck_f32_fused_elementwise__avx2 n \(n): 1 and 2 threads")
        }
    }

    /// The fused update kernel at AVX2 against its scalar twin: a momentum
    /// job over sizes around the tile, a bias-row job, a step counter and a
    /// sum of squares of the gradient (clipping's norm) stored by a job in
    /// one call; targets guarded by canaries; 1 and 2 threads bitwise alike.
    func testFusedUpdateMatchesReference() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var rng = TestRNG(43)
        let t = Int(ck_fused_tile())
        func instr(_ binary: Int32, _ op: Int32, _ a: (Int32, Int32), _ b: (Int32, Int32) = (0, 0), alpha: Float = 0) -> ck_fused_instr {
            ck_fused_instr(binary: binary, op: op, a_kind: a.0, a_index: a.1, b_kind: b.0, b_index: b.1, alpha: alpha, c_kind: 0, c_index: 0)
        }
        let mul = Int32(CK_BINARY_MUL.rawValue), sub = Int32(CK_BINARY_SUB.rawValue), add = Int32(CK_BINARY_ADD.rawValue)
        // inputs: 0 w, 1 m, 2 g, 3 lr, 4 mu, 5 b, 6 gb, 7 step, 8 one
        // job 0: m' = m*mu - g*lr; w' = w + sqrt(|m'|) ... (sqrt of a uniform: lr*2 computed once)
        let instrs = [instr(1, mul, (0, 1), (0, 4)), instr(1, mul, (0, 2), (0, 3)), instr(1, sub, (1, 0), (1, 1)),
                      instr(1, add, (0, 3), (0, 3)), instr(0, Int32(CK_UNARY_SQRT.rawValue), (1, 3)), instr(1, mul, (1, 2), (1, 4)),
                      instr(1, add, (0, 0), (1, 5)),
                      instr(1, mul, (0, 6), (0, 3)), instr(1, sub, (0, 5), (1, 0)),
                      instr(1, add, (0, 7), (0, 8))]
        let stores = [ck_update_store(target: 1, kind: 1, index: 2), ck_update_store(target: 0, kind: 1, index: 6),
                      ck_update_store(target: 5, kind: 1, index: 1), ck_update_store(target: 7, kind: 1, index: 0),
                      ck_update_store(target: 10, kind: 0, index: 9)]
        for n in [1, 5, t - 1, t, t + 1, 3 * t + 7, 40_000] {
            let rowN = 13
            let w0 = rng.floats(n, -1, 1), m0 = rng.floats(n, -1, 1), g0 = rng.floats(n, -1, 1), b0 = rng.floats(rowN, -1, 1), gb0 = rng.floats(rowN, -1, 1)
            var results: [[Float]] = []
            for (isa, threads) in [(CK_ISA_REF, Int32(1)), (CK_ISA_AVX2, Int32(1)), (CK_ISA_AVX2, Int32(2))] {
                let w = Guarded(w0), m = Guarded(m0), g = Guarded(g0), lr = Guarded([0.1]), mu = Guarded([0.9]), b = Guarded(b0), gb = Guarded(gb0)
                let step = Guarded([4]), one = Guarded([1]), norm = Guarded([0]), normOut = Guarded([0])
                let saved = ck_threads_set(threads)
                var inputs: [UnsafeMutablePointer<Float>?] = [w.pointer, m.pointer, g.pointer, lr.pointer, mu.pointer, b.pointer, gb.pointer, step.pointer, one.pointer,
                                                              norm.pointer, normOut.pointer]
                var counts: [Int64] = [Int64(n), Int64(n), Int64(n), 1, 1, Int64(rowN), Int64(rowN), 1, 1, 1, 1]
                let jobs = [ck_update_job(n: Int64(n), first: 0, count: 7, store_first: 0, store_count: 2),
                            ck_update_job(n: Int64(rowN), first: 7, count: 2, store_first: 2, store_count: 1),
                            ck_update_job(n: 1, first: 9, count: 1, store_first: 3, store_count: 1),
                            ck_update_job(n: 1, first: 10, count: 0, store_first: 4, store_count: 1)]
                var uniformValues = [Float](repeating: 0, count: instrs.count), uniform = [UInt8](repeating: 0, count: instrs.count)
                var tileStart = [Int64](repeating: 0, count: jobs.count + 1)
                var reduceInputs: [Int32] = [2], reduceStart = [Int64](repeating: 0, count: 2)
                var partials = [Double](repeating: 0, count: (n + t - 1) / t)
                instrs.withUnsafeBufferPointer { ip in jobs.withUnsafeBufferPointer { jp in stores.withUnsafeBufferPointer { sp in
                    inputs.withUnsafeMutableBufferPointer { inp in counts.withUnsafeMutableBufferPointer { cp in
                        uniformValues.withUnsafeMutableBufferPointer { uvp in uniform.withUnsafeMutableBufferPointer { up in
                            tileStart.withUnsafeMutableBufferPointer { tp in
                                reduceInputs.withUnsafeMutableBufferPointer { rp in reduceStart.withUnsafeMutableBufferPointer { rsp in
                                    partials.withUnsafeMutableBufferPointer { pp in
                                        var u = ck_fused_update(jobs: Int32(jp.count), job: jp.baseAddress, instrs: ip.baseAddress, stores: sp.baseAddress,
                                                                inputs: inp.baseAddress, counts: cp.baseAddress, uniform_values: uvp.baseAddress,
                                                                uniform: up.baseAddress, tile_start: tp.baseAddress, reductions: 1, reduce_first: 9,
                                                                reduce_inputs: rp.baseAddress, reduce_start: rsp.baseAddress, partials: pp.baseAddress)
                                        ck_f32_fused_update(isa, &u)
                                    }
                                } }
                            }
                        } }
                    } }
                } } }
                _ = ck_threads_set(saved)
                for (name, x) in [("w", w), ("m", m), ("b", b), ("step", step), ("norm", norm), ("normOut", normOut)] { XCTAssertTrue(x.intactCanaries, "ck_f32_fused_update n \(n) wrote outside \(name)") }
                XCTAssertEqual(g.values, g0, "the gradient is read, not written")
                XCTAssertEqual(step.values, [5], "the step counter is stored once, after every job read it")
                // every job read the step's old value: m' and w' use lr only, and b' reads the old gb
                let sumSquares = g0.reduce(0.0) { $0 + Double($1) * Double($1) }
                XCTAssertEqual(Double(normOut.values[0]), sumSquares, accuracy: 1e-5 * max(sumSquares, 1), "sum of squares, n \(n) \(isa)")
                results.append(w.values + m.values + b.values + normOut.values)
            }
            if let msg = compare(results[1], results[0], tol: 2e-6) { XCTFail("ck_f32_fused_update__avx2 n \(n): \(msg)") }
            XCTAssertEqual(results[1], results[2], "ck_f32_fused_update__avx2 n \(n): 1 and 2 threads")
            // spot-check against the formulas
            let mw = m0[0] * 0.9 - g0[0] * Float(0.1)
            XCTAssertEqual(results[1][n], mw, accuracy: 1e-6, "m'[0]")
            XCTAssertEqual(results[1][0], w0[0] + mw * Float(0.2).squareRoot(), accuracy: 1e-6, "w'[0]")
        }
    }

    /// The allreduce's kernels: with no hook (one process) y is x, in place
    /// or not; with a hook, y is x handed to it (here a stand-in that halves
    /// the buffer and counts its calls) and its failure code comes back.
    func testAllreduceMeanCopiesAndCallsTheHook() throws {
        final class Calls { var count = 0; var lastN: Int64 = 0; var fail: Int64 = 0 }
        let calls = Calls()
        let context = Unmanaged.passUnretained(calls).toOpaque()
        let hook: ck_allreduce_hook = { ctx, data, n in
            let c = Unmanaged<Calls>.fromOpaque(ctx!).takeUnretainedValue()
            c.count += 1
            c.lastN = n
            for i in 0..<Int(n) { data![i] *= 0.5 }
            return c.fail
        }
        defer { ck_set_allreduce_hook(nil, nil) }
        var rng = TestRNG(41)
        for isa in [CK_ISA_REF, CK_ISA_AVX2] where isa == CK_ISA_REF || hasAVX2 {
            let f = ck_f32_allreduce_mean_kernel(isa)!
            for n in [0, 1, 7, 33, 1000] {
                let x = Guarded(rng.floats(n, -3, 3)), y = Guarded(n)
                ck_set_allreduce_hook(nil, nil)
                XCTAssertEqual(f(n, x.pointer, y.pointer), 0)
                XCTAssertEqual(y.values, x.values, "allreduce_mean \(String(cString: ck_isa_name(isa))) n \(n) without a hook")
                XCTAssertTrue(y.intactCanaries)
                ck_set_allreduce_hook(hook, context)
                calls.count = 0
                XCTAssertEqual(f(n, x.pointer, y.pointer), 0)
                XCTAssertEqual(y.values, x.values.map { $0 * 0.5 }, "allreduce_mean \(String(cString: ck_isa_name(isa))) n \(n) with a hook")
                XCTAssertEqual(calls.count, n == 0 ? 0 : 1)
                XCTAssertTrue(y.intactCanaries)
                // in place
                let z = Guarded(x.values)
                XCTAssertEqual(f(n, z.pointer, z.pointer), 0)
                XCTAssertEqual(z.values, x.values.map { $0 * 0.5 })
                if n > 0 { XCTAssertEqual(calls.lastN, Int64(n)) }
            }
            calls.fail = 7
            let x = Guarded([1, 2, 3]), y = Guarded(3)
            XCTAssertEqual(f(3, x.pointer, y.pointer), 7, "the hook's failure code is the kernel's")
            calls.fail = 0
        }
    }

    /// Every optimized kernel in the table belongs to a family these tests drive.
    func testEveryTableKernelIsCovered() {
        var n = 0
        let t = ck_kernel_table(&n)!
        let covered: Set<UInt32> = [CK_FAMILY_UNARY, CK_FAMILY_BINARY_F32, CK_FAMILY_BINARY_I32, CK_FAMILY_SELECT,
                                    CK_FAMILY_COPY, CK_FAMILY_FILL, CK_FAMILY_CAST, CK_FAMILY_REDUCE, CK_FAMILY_SOFTMAX,
                                    CK_FAMILY_GATHER, CK_FAMILY_SCATTER_ADD, CK_FAMILY_RANDOM, CK_FAMILY_GEMM, CK_FAMILY_ARGMAX, CK_FAMILY_CONV, CK_FAMILY_POOL, CK_FAMILY_LSTM, CK_FAMILY_RNN, CK_FAMILY_FUSED_ELEMENTWISE, CK_FAMILY_GEMM_UKR, CK_FAMILY_CONV_UKR, CK_FAMILY_CONV_BF_UKR, CK_FAMILY_COLLECTIVE].map(\.rawValue).reduce(into: []) { $0.insert($1) }
        for i in 0..<n {
            XCTAssertTrue(covered.contains(t[i].family.rawValue), "\(kernelName(t[i])) is in no tested family")
            // every optimized kernel has a reference twin in the table
            if t[i].isa != CK_ISA_REF {
                // (each micro-kernel family's one reference takes any tile shape)
                let twin = (0..<n).contains { t[$0].family == t[i].family && (t[$0].op == t[i].op || t[i].family == CK_FAMILY_GEMM_UKR || t[i].family == CK_FAMILY_CONV_UKR
                                              || t[i].family == CK_FAMILY_CONV_BF_UKR)
                                              && t[$0].isa == CK_ISA_REF }
                XCTAssertTrue(twin, "\(kernelName(t[i])) has no __ref twin")
            }
        }
    }
}
