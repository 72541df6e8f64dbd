import CKernels
import XCTest

/// The blocked GEMM against the plain-loop reference around its micro-tile
/// and cache blocks, in every transpose combination, with leading dimensions
/// larger than the rows, alpha/beta, and canaries after C.
final class GemmKernelTests: XCTestCase {
    static func run(_ isa: ck_isa, ta: Bool, tb: Bool, m: Int, n: Int, k: Int, alpha: Float, beta: Float,
             pad: Int, rng: inout TestRNG) -> String? {
        let rowsA = ta ? k : m, colsA = ta ? m : k
        let rowsB = tb ? n : k, colsB = tb ? k : n
        let lda = colsA + pad, ldb = colsB + pad, ldc = n + pad
        let a = Guarded(rng.floats(rowsA * lda, -1, 1)), b = Guarded(rng.floats(rowsB * ldb, -1, 1))
        let c0 = rng.floats(m * ldc, -1, 1)
        let c = Guarded(c0), r = Guarded(c0)
        var args = ck_gemm_args()
        args.trans_a = ta ? 1 : 0; args.trans_b = tb ? 1 : 0
        args.m = Int64(m); args.n = Int64(n); args.k = Int64(k)
        args.alpha = alpha; args.beta = beta
        args.a = UnsafePointer(a.pointer); args.lda = Int64(lda)
        args.b = UnsafePointer(b.pointer); args.ldb = Int64(ldb)
        args.ldc = Int64(ldc)
        args.c = c.pointer
        ck_f32_gemm_kernel(isa)(&args, nil)
        args.c = r.pointer
        ck_f32_gemm_kernel(CK_ISA_REF)(&args, nil)
        if !c.intactCanaries { return "wrote outside C" }
        // padding columns of C must be untouched
        let got = c.values, want = r.values
        for i in 0..<m { for j in n..<ldc where got[i * ldc + j] != c0[i * ldc + j] { return "wrote into C's padding at row \(i)" } }
        if let msg = compare(got, want, tol: 2e-7 * Float(k + 1)) { return msg }
        return nil
    }

    /// Optimized GEMMs in the kernel table that this CPU runs.
    static var optimizedISAs: [ck_isa] {
        var n = 0
        let t = ck_kernel_table(&n)!
        return (0..<n).map { t[$0] }.filter { $0.family == CK_FAMILY_GEMM && $0.isa != CK_ISA_REF }.map(\.isa).filter {
            $0 == CK_ISA_AVX2 ? hasAVX2 : ck_cpu_has_avx512f() != 0
        }
    }

    func testGemmAroundTheTileInEveryTransposeCombination() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        XCTAssertFalse(Self.optimizedISAs.isEmpty)
        for isa in Self.optimizedISAs {
            var mr: Int32 = 0, nr: Int32 = 0, kc: Int32 = 0
            ck_f32_gemm_tile(isa, &mr, &nr, &kc)
            var rng = TestRNG(6)
            // AVX-512 runs 8-row tiles where 14 would leave a mostly empty last tile (1, 15, 29, 16, 64 here).
            let ms = [1, Int(mr) - 1, Int(mr), Int(mr) + 1, 2 * Int(mr) + 1] + (isa == CK_ISA_AVX512 ? [16, 64] : [])
            let ns = [1, 7, Int(nr) - 1, Int(nr), Int(nr) + 1, 33]
            let ks = [1, 5, Int(kc) - 1, Int(kc) + 1]
            for ta in [false, true] { for tb in [false, true] {
                for m in ms { for n in ns { for k in ks {
                    let pad = (m + n + k) % 3  // includes non-contiguous leading dimensions
                    if let msg = Self.run(isa, ta: ta, tb: tb, m: m, n: n, k: k, alpha: 1, beta: 0, pad: pad, rng: &rng) {
                        XCTFail("gemm \(String(cString: ck_isa_name(isa))) ta=\(ta) tb=\(tb) m=\(m) n=\(n) k=\(k) pad=\(pad): \(msg)")
                    }
                } } }
            } }
        }
    }

    /// C narrower than a tile takes the transposed path with exact-height tiles (n = 1 ... 14).
    func testNarrowOutputsTakeTheTransposedPath() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var rng = TestRNG(8)
        for isa in Self.optimizedISAs {
            for n in 1...14 {
                for (ta, tb) in [(false, false), (true, true), (false, true)] {
                    for (alpha, beta) in [(Float(1), Float(0)), (0.5, 2)] {
                        if let msg = Self.run(isa, ta: ta, tb: tb, m: 70, n: n, k: 37, alpha: alpha, beta: beta, pad: n % 2, rng: &rng) {
                            XCTFail("gemm \(String(cString: ck_isa_name(isa))) narrow n=\(n) ta=\(ta) tb=\(tb) alpha=\(alpha) beta=\(beta): \(msg)")
                        }
                    }
                }
            }
        }
    }

    /// A few rows of A (m <= 4: prediction at batch 1) stream B without
    /// packing; around its 256-column task, the 16-wide dot loop (k = 17) and m = 5
    /// where the blocked path takes over, with alpha/beta and padding.
    func testShortAStreamsB() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var rng = TestRNG(11)
        for isa in Self.optimizedISAs {
            for m in 1...5 { for n in [1, 255, 257, 513] { for k in [1, 17, 300] {
                for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                    let (alpha, beta): (Float, Float) = (m + n + k) % 2 == 0 ? (1, 0) : (0.5, -1)
                    if let msg = Self.run(isa, ta: ta, tb: tb, m: m, n: n, k: k, alpha: alpha, beta: beta, pad: (n + k) % 3, rng: &rng) {
                        XCTFail("gemm short \(String(cString: ck_isa_name(isa))) m=\(m) n=\(n) k=\(k) ta=\(ta) tb=\(tb): \(msg)")
                    }
                }
            } } }
        }
    }

    /// The same products on 1 and 2 threads are bitwise identical.
    func testOneAndTwoThreadsAreBitwiseIdentical() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        let saved = ck_threads_get()
        defer { _ = ck_threads_set(saved) }
        var rng = TestRNG(9)
        for isa in Self.optimizedISAs {
            for (m, n, k) in [(97, 131, 300), (60, 200, 1100), (128, 10, 512), (8, 300, 64), (300, 7, 33), (1, 600, 784), (4, 1000, 300)] {
                let a = rng.floats(m * k, -1, 1), b = rng.floats(k * n, -1, 1)
                var results: [[Float]] = []
                for threads: Int32 in [1, 2] {
                    _ = ck_threads_set(threads)
                    var c = [Float](repeating: 0, count: m * n)
                    a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                        var args = ck_gemm_args(trans_a: 0, trans_b: 0, m: Int64(m), n: Int64(n), k: Int64(k), alpha: 1, beta: 0,
                                                a: pa.baseAddress, lda: Int64(k), b: pb.baseAddress, ldb: Int64(n), c: pc.baseAddress, ldc: Int64(n), user_pack_a: nil, user_pack_ctx: nil, bias: nil, residual: nil, ld_residual: 0, activation: 0, act_params: ck_unary_params(), accumulate_into: nil, ld_accumulate: 0, packed_b: nil)
                        ck_f32_gemm_kernel(isa)(&args, nil)
                    } } }
                    results.append(c)
                }
                XCTAssertEqual(results[0].map(\.bitPattern), results[1].map(\.bitPattern), "\(m)x\(n)x\(k) at \(String(cString: ck_isa_name(isa)))")
            }
        }
    }

    /// B packed once (ck_f32_gemm_pack_b, a recurrent kernel reused every
    /// step) gives the bits of packing it per call: K over one block, N not
    /// a multiple of the tile, B transposed, 1 and 2 threads, every path
    /// (short A and narrow outputs ignore the packing and read B).
    func testPrepackedBGivesTheSameBits() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        let saved = ck_threads_get()
        defer { _ = ck_threads_set(saved) }
        var rng = TestRNG(19)
        for isa in Self.optimizedISAs {
            for (m, n, k, tb) in [(32, 512, 128, false), (97, 131, 700, false), (45, 37, 600, true), (3, 200, 64, false), (64, 10, 96, false)] {
                let a = rng.floats(m * k, -1, 1), b = rng.floats(k * n, -1, 1), c0 = rng.floats(m * n, -1, 1)
                let packedCount = Int(ck_f32_gemm_packed_b_floats(Int64(k), Int64(n)))
                let packed = UnsafeMutableRawPointer.allocate(byteCount: packedCount * 4, alignment: 64).bindMemory(to: Float.self, capacity: packedCount)
                defer { packed.deallocate() }
                var results: [[UInt32]] = []
                for (threads, usePacked): (Int32, Bool) in [(1, false), (1, true), (2, true)] {
                    _ = ck_threads_set(threads)
                    var c = c0
                    a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                        do {
                            var args = ck_gemm_args()
                            args.trans_b = tb ? 1 : 0
                            args.m = Int64(m); args.n = Int64(n); args.k = Int64(k); args.alpha = 1; args.beta = 1
                            args.a = pa.baseAddress; args.lda = Int64(k)
                            args.b = pb.baseAddress; args.ldb = Int64(tb ? k : n)
                            args.c = pc.baseAddress; args.ldc = Int64(n)
                            if usePacked {
                                ck_f32_gemm_pack_b(isa, &args, packed)
                                args.packed_b = UnsafePointer(packed)
                            }
                            ck_f32_gemm_kernel(isa)(&args, nil)
                        }
                    } } }
                    results.append(c.map(\.bitPattern))
                }
                let what = "\(m)x\(n)x\(k) tb=\(tb) at \(String(cString: ck_isa_name(isa)))"
                XCTAssertEqual(results[1], results[0], "packed B, \(what)")
                XCTAssertEqual(results[2], results[0], "packed B on two threads, \(what)")
            }
        }
    }

    func testGemmAlphaBetaAndLargeBlocks() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var rng = TestRNG(7)
        for (m, n, k) in [(73, 2049, 3), (150, 40, 600), (97, 131, 257), (60, 200, 1100)] {  // the last: two K blocks, A transposed
            for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1), (-2, 0.25)] {
                for isa in Self.optimizedISAs where isa != CK_ISA_AVX2 {
                    if let msg = Self.run(isa, ta: m % 2 == 0, tb: n % 2 == 0, m: m, n: n, k: k, alpha: alpha, beta: beta, pad: 1, rng: &rng) {
                        XCTFail("gemm avx512 m=\(m) n=\(n) k=\(k) alpha=\(alpha) beta=\(beta): \(msg)")
                    }
                }
                if let msg = Self.run(CK_ISA_AVX2, ta: m % 2 == 0, tb: n % 2 == 0, m: m, n: n, k: k, alpha: alpha, beta: beta, pad: 1, rng: &rng) {
                    XCTFail("gemm m=\(m) n=\(n) k=\(k) alpha=\(alpha) beta=\(beta): \(msg)")
                }
            }
        }
    }

    /// Epilogues (bias, residual, activation) agree with the reference on the
    /// blocked, narrow and transposed paths.
    func testEpiloguesMatchReference() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var rng = TestRNG(10)
        for isa in Self.optimizedISAs {
            // 14- and 8-row tiles (bias and relu in their store step when there is no residual), K over
            // several blocks (the store step on the last one adds to C), narrow, transposed and short paths
            for (m, n, k, ta, tb) in [(37, 45, 29, false, false), (64, 45, 29, false, false), (30, 70, 1100, true, false),
                                      (64, 10, 40, false, true), (64, 7, 33, true, false), (40, 3, 20, false, false),
                                      (1, 300, 40, false, false), (3, 260, 21, false, true)] {
                let rowsA = ta ? k : m, colsA = ta ? m : k, rowsB = tb ? n : k, colsB = tb ? k : n
                let a = rng.floats(rowsA * colsA, -1, 1), b = rng.floats(rowsB * colsB, -1, 1)
                let bias = rng.floats(n, -1, 1), res = rng.floats(m * n, -1, 1)
                // with a residual, and without (bias and relu then take the one-pass tile epilogue)
                for act in [Int32(0), Int32(CK_UNARY_RELU.rawValue) + 1, Int32(CK_UNARY_TANH.rawValue) + 1] { for withResidual in [true, false] {
                    var outs: [[Float]] = []
                    for which in [CK_ISA_REF, isa] {
                        var c = [Float](repeating: 0, count: m * n)
                        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                            bias.withUnsafeBufferPointer { pbias in res.withUnsafeBufferPointer { pres in
                                var args = ck_gemm_args()
                                args.trans_a = ta ? 1 : 0; args.trans_b = tb ? 1 : 0
                                args.m = Int64(m); args.n = Int64(n); args.k = Int64(k); args.alpha = 1; args.beta = 0
                                args.a = pa.baseAddress; args.lda = Int64(colsA); args.b = pb.baseAddress; args.ldb = Int64(colsB)
                                args.c = pc.baseAddress; args.ldc = Int64(n)
                                args.bias = pbias.baseAddress; args.residual = withResidual ? pres.baseAddress : nil; args.ld_residual = Int64(n)
                                args.activation = act
                                ck_f32_gemm_kernel(which)(&args, nil)
                            } }
                        } } }
                        outs.append(c)
                    }
                    if let msg = compare(outs[1], outs[0], tol: 2e-7 * Float(k + 1)) {
                        XCTFail("gemm epilogue \(String(cString: ck_isa_name(isa))) \(m)x\(n)x\(k) ta=\(ta) tb=\(tb) act=\(act) residual=\(withResidual): \(msg)")
                    }
                } }
            }
        }
    }

    /// The momentum update's epilogue: C = -lr * AB + mu * C, then D += C, on
    /// the blocked (K over several blocks), narrow and transposed paths,
    /// against the reference; both C and D checked.
    func testAccumulateIntoEpilogueMatchesReference() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var rng = TestRNG(12)
        for isa in Self.optimizedISAs {
            for (m, n, k, ta) in [(37, 45, 29, true), (64, 10, 40, true), (70, 7, 600, true), (3, 260, 21, false), (33, 70, 1100, false)] {
                let rowsA = ta ? k : m, colsA = ta ? m : k
                let a = rng.floats(rowsA * colsA, -1, 1), b = rng.floats(k * n, -1, 1)
                let c0 = rng.floats(m * n, -1, 1), d0 = rng.floats(m * n, -1, 1)
                var outs: [[Float]] = []
                for which in [CK_ISA_REF, isa] {
                    var c = c0, d = d0
                    a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in d.withUnsafeMutableBufferPointer { pd in
                        var args = ck_gemm_args()
                        args.trans_a = ta ? 1 : 0
                        args.m = Int64(m); args.n = Int64(n); args.k = Int64(k); args.alpha = -0.1; args.beta = 0.9
                        args.a = pa.baseAddress; args.lda = Int64(colsA); args.b = pb.baseAddress; args.ldb = Int64(n)
                        args.c = pc.baseAddress; args.ldc = Int64(n)
                        args.accumulate_into = pd.baseAddress; args.ld_accumulate = Int64(n)
                        ck_f32_gemm_kernel(which)(&args, nil)
                    } } } }
                    outs.append(c + d)
                }
                if let msg = compare(outs[1], outs[0], tol: 2e-7 * Float(k + 1)) {
                    XCTFail("gemm accumulate_into \(String(cString: ck_isa_name(isa))) \(m)x\(n)x\(k) ta=\(ta): \(msg)")
                }
                // D really moved by C: d = d0 + c
                XCTAssertEqual(outs[1][m * n], d0[0] + outs[1][0], accuracy: 1e-6)
            }
        }
    }

    /// beta == 0 must not read C: NaN garbage in C stays out of the result.
    func testBetaZeroIgnoresC() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        let m = 7, n = 17, k = 9
        let a = [Float](repeating: 1, count: m * k), b = [Float](repeating: 2, count: k * n)
        var c = [Float](repeating: .nan, count: m * n)
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
            var args = ck_gemm_args(trans_a: 0, trans_b: 0, m: Int64(m), n: Int64(n), k: Int64(k), alpha: 1, beta: 0,
                                    a: pa.baseAddress, lda: Int64(k), b: pb.baseAddress, ldb: Int64(n), c: pc.baseAddress, ldc: Int64(n), user_pack_a: nil, user_pack_ctx: nil, bias: nil, residual: nil, ld_residual: 0, activation: 0, act_params: ck_unary_params(), accumulate_into: nil, ld_accumulate: 0, packed_b: nil)
            ck_f32_gemm_kernel(CK_ISA_AVX2)(&args, nil)
        } } }
        XCTAssertTrue(c.allSatisfy { $0 == 18 })
    }
}
