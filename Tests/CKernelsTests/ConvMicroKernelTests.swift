import CKernels
import XCTest

/// Every indirect-convolution micro-kernel row of the kernel table, called by
/// itself, against the reference micro-kernel: rows through a pointer table
/// (with rows past mr pointing at row 0, as the convolution fills them) and
/// through a pixel stride, every partial tile (mr 1 ... MR, nr around each
/// vector), one and several taps, depths around the vector width, storing
/// and accumulating, C with a leading dimension past the tile and guard words.
final class ConvMicroKernelTests: XCTestCase {
    func testEveryMicroKernelMatchesItsReferenceAroundItsTile() throws {
        let rows = microKernelRows(CK_FAMILY_CONV_UKR)
        XCTAssertEqual(rows.count, 3, "indirect micro-kernel rows in the table")
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var rng = TestRNG(29)
        for row in rows where row.runs {
            guard let ukr = ck_f32_conv_ukr_kernel(row.isa, Int32(row.mr), Int32(row.nr)) else {
                XCTFail("\(row.name): no kernel behind its table row"); continue
            }
            let nrs = columnsAround(row.nr)
            for (taps, kc) in [(1, 1), (1, 16), (3, 5), (9, 33)] {
                // source rows: the table form points each (tap, row) at its own row of `a`; the stride form at one base per tap
                let rowLen = kc + 3
                let a = Guarded(rng.floats(taps * (row.mr + 1) * rowLen, -1, 1))
                let w = UnsafeMutableRawPointer.allocate(byteCount: taps * kc * row.nr * 4, alignment: 64).assumingMemoryBound(to: Float.self)
                defer { w.deallocate() }
                for i in 0..<(taps * kc * row.nr) { w[i] = rng.float(-1, 1) }
                for mr in 1...row.mr { for nr in nrs { for ps in [0, rowLen] { for accumulate in [Int32(0), 1] {
                    var ind = [UnsafePointer<Float>?](repeating: nil, count: taps * row.mr)
                    for t in 0..<taps { for r in 0..<row.mr {
                        let src = r < mr ? r : 0  // rows past mr repeat row 0, as conv_task fills them
                        ind[t * row.mr + r] = UnsafePointer(a.pointer + (t * (row.mr + 1) + src) * rowLen)
                    } }
                    let ldc = row.nr + 3
                    let c0 = rng.floats(row.mr * ldc, -1, 1)
                    let c = Guarded(c0), r = Guarded(c0)
                    ind.withUnsafeBufferPointer { p in
                        ukr(Int64(taps), Int64(kc), p.baseAddress, Int64(ps), w, c.pointer, Int64(ldc), Int64(mr), Int64(nr), accumulate)
                        ck_f32_conv_ukr__ref(Int32(row.mr), Int32(row.nr), Int64(taps), Int64(kc), p.baseAddress, Int64(ps), w, r.pointer,
                                             Int64(ldc), Int64(mr), Int64(nr), accumulate)
                    }
                    let what = "\(row.name) taps=\(taps) kc=\(kc) mr=\(mr) nr=\(nr) ps=\(ps) accumulate=\(accumulate)"
                    XCTAssertTrue(c.intactCanaries, "\(what): wrote outside C")
                    let bad = tileMismatches(c.values, r.values, before: c0, rows: row.mr, ldc: ldc, mr: mr, nr: nr, depth: taps * kc)
                    XCTAssertEqual(bad, 0, "\(what): \(bad) elements wrong or written outside mr x nr")
                } } } }
            }
        }
    }

    /// Every filter-gradient micro-kernel row against its reference: pixels
    /// whose source is a row of x or the zero row (offset -1), every partial
    /// tile, depths 1 to 37, storing and accumulating.
    func testEveryFilterGradientMicroKernelMatchesItsReference() throws {
        let rows = microKernelRows(CK_FAMILY_CONV_BF_UKR)
        XCTAssertEqual(rows.count, 8, "filter-gradient micro-kernel rows in the table")
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var rng = TestRNG(37)
        for row in rows where row.runs {
            let MR = row.mr, NR = row.nr, name = row.name
            guard let ukr = ck_f32_conv_bf_ukr_kernel(row.isa, Int32(MR), Int32(NR)) else { XCTFail("\(name): no kernel"); continue }
            let nrs = columnsAround(NR)
            for kc in [1, 6, 37] {
                let ldx = MR + 5, ldy = NR + 2
                let x = Guarded(rng.floats(kc * ldx, -1, 1)), dy = Guarded(rng.floats(kc * ldy, -1, 1))
                let zero = [Float](repeating: 0, count: MR + 16)
                let offs: [Int64] = (0..<kc).map { $0 % 4 == 3 ? -1 : Int64($0 * ldx) }  // every fourth pixel from the zero row
                for mr in 1...MR { for nr in nrs { for accumulate in [Int32(0), 1] {
                    let ldc = NR + 3
                    let c0 = rng.floats(MR * ldc, -1, 1)
                    let c = Guarded(c0), r = Guarded(c0)
                    ukr(Int64(kc), offs, x.pointer, zero, dy.pointer, Int64(ldy), c.pointer, Int64(ldc), Int64(mr), Int64(nr), accumulate)
                    ck_f32_conv_bf_ukr__ref(Int32(MR), Int32(NR), Int64(kc), offs, x.pointer, zero, dy.pointer, Int64(ldy), r.pointer,
                                            Int64(ldc), Int64(mr), Int64(nr), accumulate)
                    let what = "\(name) kc=\(kc) mr=\(mr) nr=\(nr) accumulate=\(accumulate)"
                    XCTAssertTrue(c.intactCanaries, "\(what): wrote outside C")
                    let bad = tileMismatches(c.values, r.values, before: c0, rows: MR, ldc: ldc, mr: mr, nr: nr, depth: kc)
                    XCTAssertEqual(bad, 0, "\(what): \(bad) elements wrong or written outside mr x nr")
                } } }
            }
        }
    }
}
