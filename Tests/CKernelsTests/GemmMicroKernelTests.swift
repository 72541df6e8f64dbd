import CKernels
import XCTest

/// Every GEMM micro-kernel row of the kernel table, called by itself on
/// packed panels, against the reference micro-kernel: every partial tile
/// (mr 1 ... MR, nr around each vector and the full width), depths around
/// the unrolled step, beta 0 (C not read: it holds NaN) and beta != 0, C with
/// a leading dimension past the tile and guard words after it.
final class GemmMicroKernelTests: XCTestCase {
    func testEveryMicroKernelMatchesItsReferenceAroundItsTile() throws {
        let rows = microKernelRows(CK_FAMILY_GEMM_UKR)
        XCTAssertEqual(rows.count, 8, "micro-kernel rows in the table")
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var rng = TestRNG(23)
        for row in rows where row.runs {
            guard let ukr = ck_f32_gemm_ukr_kernel(row.isa, Int32(row.mr), Int32(row.nr)) else {
                XCTFail("\(row.name): no kernel behind its table row"); continue
            }
            let nrs = columnsAround(row.nr)
            for kc in [1, 2, 7, 8, 33, 300] {
                // packed panels, 64-byte aligned as the packing routines write them
                let a = UnsafeMutablePointer<Float>.allocate(capacity: kc * row.mr + 16)
                let b = UnsafeMutableRawPointer.allocate(byteCount: (kc * row.nr + 16) * 4, alignment: 64).assumingMemoryBound(to: Float.self)
                defer { a.deallocate(); b.deallocate() }
                for i in 0..<(kc * row.mr) { a[i] = rng.float(-1, 1) }
                for i in 0..<(kc * row.nr) { b[i] = rng.float(-1, 1) }
                for mr in 1...row.mr { for nr in nrs { for (alpha, beta) in [(Float(1), Float(0)), (0.5, -1.5)] {
                    let ldc = row.nr + 3
                    let c0: [Float] = (0..<(row.mr * ldc)).map { _ in beta == 0 ? .nan : rng.float(-1, 1) }
                    let c = Guarded(c0), r = Guarded(c0)
                    ukr(Int64(kc), a, b, c.pointer, Int64(ldc), Int64(mr), Int64(nr), alpha, beta)
                    ck_f32_gemm_ukr__ref(Int32(row.mr), Int32(row.nr), Int64(kc), a, b, r.pointer, Int64(ldc), Int64(mr), Int64(nr), alpha, beta)
                    let what = "\(row.name) kc=\(kc) mr=\(mr) nr=\(nr) alpha=\(alpha) beta=\(beta)"
                    XCTAssertTrue(c.intactCanaries, "\(what): wrote outside C")
                    let bad = tileMismatches(c.values, r.values, before: c0, rows: row.mr, ldc: ldc, mr: mr, nr: nr, depth: kc)
                    XCTAssertEqual(bad, 0, "\(what): \(bad) elements wrong or written outside mr x nr")
                } } }
            }
        }
    }
}
