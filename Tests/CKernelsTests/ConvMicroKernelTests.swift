import CKernels
import XCTest

/// Every indirect-convolution micro-kernel row of the kernel table, called by
/// itself, against the reference micro-kernel: rows through a pointer table
/// (with rows past mr pointing at row 0, as the convolution fills them) and
/// through a pixel stride, every partial tile (mr 1 ... MR, nr around each
/// vector), one and several taps, depths around the vector width, storing
/// and accumulating, C with a leading dimension past the tile and guard words.
final class ConvMicroKernelTests: XCTestCase {
    struct Row { var name: String; var isa: ck_isa; var mr: Int; var nr: Int }

    static var rows: [Row] {
        var n = 0
        let t = ck_kernel_table(&n)!
        return (0..<n).map { t[$0] }.filter { $0.family == CK_FAMILY_CONV_UKR && $0.isa != CK_ISA_REF }.map {
            Row(name: String(cString: $0.name), isa: $0.isa, mr: Int($0.tile), nr: Int($0.op))
        }
    }

    func testEveryMicroKernelMatchesItsReferenceAroundItsTile() throws {
        let rows = Self.rows
        XCTAssertEqual(rows.count, 3, "indirect micro-kernel rows in the table")
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var rng = TestRNG(29)
        for row in rows where row.isa == CK_ISA_AVX2 || ck_cpu_has_avx512f() != 0 {
            guard let ukr = ck_f32_conv_ukr_kernel(row.isa, Int32(row.mr), Int32(row.nr)) else {
                XCTFail("\(row.name): no kernel behind its table row"); continue
            }
            let nrs = Set([1, 7, 8, 9, 15, 16, 17, row.nr - 1, row.nr].filter { $0 >= 1 && $0 <= row.nr }).sorted()
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
                    let got = c.values, want = r.values
                    var bad = 0
                    for i in 0..<row.mr { for j in 0..<ldc {
                        let k = i * ldc + j
                        if i < mr && j < nr {
                            if abs(got[k] - want[k]) > 2e-7 * Float(taps * kc + 1) * (abs(want[k]) + 1) { bad += 1 }
                        } else if got[k].bitPattern != c0[k].bitPattern { bad += 1 }
                    } }
                    XCTAssertEqual(bad, 0, "\(what): \(bad) elements wrong or written outside mr x nr")
                } } } }
            }
        }
    }

    /// Every filter-gradient micro-kernel row against its reference: pixels
    /// whose source is a row of x or the zero row (offset -1), every partial
    /// tile, depths 1 to 37, storing and accumulating.
    func testEveryFilterGradientMicroKernelMatchesItsReference() throws {
        var n = 0
        let t = ck_kernel_table(&n)!
        let rows = (0..<n).map { t[$0] }.filter { $0.family == CK_FAMILY_CONV_BF_UKR && $0.isa != CK_ISA_REF }
        XCTAssertEqual(rows.count, 8, "filter-gradient micro-kernel rows in the table")
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var rng = TestRNG(37)
        for row in rows where row.isa == CK_ISA_AVX2 || ck_cpu_has_avx512f() != 0 {
            let MR = Int(row.tile), NR = Int(row.op), name = String(cString: row.name)
            guard let ukr = ck_f32_conv_bf_ukr_kernel(row.isa, row.tile, row.op) else { XCTFail("\(name): no kernel"); continue }
            let nrs = Set([1, 7, 8, 9, 15, 16, 17, NR - 1, NR].filter { $0 >= 1 && $0 <= NR }).sorted()
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
                    let got = c.values, want = r.values
                    var bad = 0
                    for i in 0..<MR { for j in 0..<ldc {
                        let k = i * ldc + j
                        if i < mr && j < nr {
                            if abs(got[k] - want[k]) > 2e-7 * Float(kc + 1) * (abs(want[k]) + 1) { bad += 1 }
                        } else if got[k].bitPattern != c0[k].bitPattern { bad += 1 }
                    } }
                    XCTAssertEqual(bad, 0, "\(what): \(bad) elements wrong or written outside mr x nr")
                } } }
            }
        }
    }
}
