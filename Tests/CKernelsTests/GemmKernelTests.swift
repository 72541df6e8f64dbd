import CKernels
import XCTest

/// The blocked GEMM against the plain-loop reference around its micro-tile
/// and cache blocks, in every transpose combination, with leading dimensions
/// larger than the rows, alpha/beta, and canaries after C.
final class GemmKernelTests: XCTestCase {
    func run(_ isa: ck_isa, ta: Bool, tb: Bool, m: Int, n: Int, k: Int, alpha: Float, beta: Float,
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
        let wsBytes = ck_f32_gemm_workspace_bytes(isa)
        let ws = UnsafeMutableRawPointer.allocate(byteCount: max(wsBytes, 64), alignment: 64)
        defer { ws.deallocate() }
        args.c = c.pointer
        ck_f32_gemm_kernel(isa)(&args, ws)
        args.c = r.pointer
        ck_f32_gemm_kernel(CK_ISA_REF)(&args, nil)
        if !c.intactCanaries { return "wrote outside C" }
        // padding columns of C must be untouched
        let got = c.values, want = r.values
        for i in 0..<m { for j in n..<ldc where got[i * ldc + j] != c0[i * ldc + j] { return "wrote into C's padding at row \(i)" } }
        if let msg = compare(got, want, tol: 2e-7 * Float(k + 1)) { return msg }
        return nil
    }

    func testGemmAroundTheTileInEveryTransposeCombination() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var mr: Int32 = 0, nr: Int32 = 0, kc: Int32 = 0
        ck_f32_gemm_tile(CK_ISA_AVX2, &mr, &nr, &kc)
        var rng = TestRNG(6)
        let ms = [1, Int(mr) - 1, Int(mr), Int(mr) + 1, 2 * Int(mr), 2 * Int(mr) + 1]
        let ns = [1, 7, Int(nr) - 1, Int(nr), Int(nr) + 1, 2 * Int(nr), 33]
        let ks = [1, 5, Int(kc) - 1, Int(kc), Int(kc) + 1]
        for ta in [false, true] { for tb in [false, true] {
            for m in ms { for n in ns { for k in ks {
                let pad = (m + n + k) % 3  // includes non-contiguous leading dimensions
                if let msg = run(CK_ISA_AVX2, ta: ta, tb: tb, m: m, n: n, k: k, alpha: 1, beta: 0, pad: pad, rng: &rng) {
                    XCTFail("ck_f32_gemm__avx2_6x16 ta=\(ta) tb=\(tb) m=\(m) n=\(n) k=\(k) pad=\(pad): \(msg)")
                }
            } } }
        } }
    }

    func testGemmAlphaBetaAndLargeBlocks() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var rng = TestRNG(7)
        for (m, n, k) in [(73, 2049, 3), (150, 40, 600), (97, 131, 257)] {
            for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1), (-2, 0.25)] {
                if let msg = run(CK_ISA_AVX2, ta: m % 2 == 0, tb: n % 2 == 0, m: m, n: n, k: k, alpha: alpha, beta: beta, pad: 1, rng: &rng) {
                    XCTFail("gemm m=\(m) n=\(n) k=\(k) alpha=\(alpha) beta=\(beta): \(msg)")
                }
            }
        }
    }

    /// beta == 0 must not read C: NaN garbage in C stays out of the result.
    func testBetaZeroIgnoresC() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        let m = 7, n = 17, k = 9
        let a = [Float](repeating: 1, count: m * k), b = [Float](repeating: 2, count: k * n)
        var c = [Float](repeating: .nan, count: m * n)
        let ws = UnsafeMutableRawPointer.allocate(byteCount: ck_f32_gemm_workspace_bytes(CK_ISA_AVX2), alignment: 64)
        defer { ws.deallocate() }
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
            var args = ck_gemm_args(trans_a: 0, trans_b: 0, m: Int64(m), n: Int64(n), k: Int64(k), alpha: 1, beta: 0,
                                    a: pa.baseAddress, lda: Int64(k), b: pb.baseAddress, ldb: Int64(n), c: pc.baseAddress, ldc: Int64(n))
            ck_f32_gemm_kernel(CK_ISA_AVX2)(&args, ws)
        } } }
        XCTAssertTrue(c.allSatisfy { $0 == 18 })
    }
}
