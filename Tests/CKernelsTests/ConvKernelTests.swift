import CKernels
import XCTest

/// Optimized convolutions against the reference loops, for every conv entry
/// in the kernel table that this CPU runs: channel counts around the
/// micro-tile, odd sizes, strides, dilation, asymmetric padding, groups and
/// depthwise, 1D to 3D, with canaries after every output.
final class ConvKernelTests: XCTestCase {
    struct Geometry {
        var rank: Int
        var batch: Int, c: Int, oc: Int, groups: Int
        var input: [Int], kernel: [Int], stride: [Int], dilation: [Int], pad: [Int], padAfter: [Int]

        var desc: ck_conv_desc {
            var d = ck_conv_desc()
            d.rank = Int32(rank)
            d.batch = Int64(batch); d.in_channels = Int64(c); d.out_channels = Int64(oc); d.groups = Int64(groups)
            func t(_ v: [Int], _ def: Int) -> (Int64, Int64, Int64) {
                let x = (0..<3).map { $0 < v.count ? Int64(v[$0]) : Int64(def) }
                return (x[0], x[1], x[2])
            }
            d.in_size = t(input, 1); d.kernel = t(kernel, 1); d.stride = t(stride, 1); d.dilation = t(dilation, 1); d.pad = t(pad, 0)
            d.out_size = t(out, 1)
            return d
        }
        var out: [Int] {
            (0..<rank).map { a in (input[a] + pad[a] + padAfter[a] - ((kernel[a] - 1) * dilation[a] + 1)) / stride[a] + 1 }
        }
        var xCount: Int { batch * input.reduce(1, *) * c }
        var yCount: Int { batch * out.reduce(1, *) * oc }
        var wCount: Int { kernel.reduce(1, *) * (c / groups) * oc }
    }

    static let geometries: [Geometry] = {
        var g: [Geometry] = []
        for (c, oc) in [(1, 1), (5, 16), (6, 17), (7, 15), (14, 32), (15, 33), (3, 64)] {
            g.append(Geometry(rank: 2, batch: 2, c: c, oc: oc, groups: 1, input: [6, 5], kernel: [3, 3], stride: [1, 1],
                              dilation: [1, 1], pad: [1, 1], padAfter: [1, 1]))
        }
        g.append(Geometry(rank: 1, batch: 3, c: 4, oc: 9, groups: 1, input: [11], kernel: [3], stride: [2], dilation: [2], pad: [4], padAfter: [0]))
        g.append(Geometry(rank: 2, batch: 2, c: 8, oc: 12, groups: 4, input: [7, 6], kernel: [2, 3], stride: [2, 1], dilation: [1, 2],
                          pad: [0, 2], padAfter: [1, 1]))
        g.append(Geometry(rank: 2, batch: 1, c: 16, oc: 16, groups: 16, input: [5, 5], kernel: [3, 3], stride: [1, 1], dilation: [1, 1],
                          pad: [1, 1], padAfter: [1, 1]))
        g.append(Geometry(rank: 3, batch: 1, c: 3, oc: 5, groups: 1, input: [4, 5, 3], kernel: [2, 2, 2], stride: [1, 2, 1],
                          dilation: [1, 1, 2], pad: [1, 0, 1], padAfter: [0, 1, 1]))
        g.append(Geometry(rank: 2, batch: 1, c: 33, oc: 7, groups: 1, input: [3, 3], kernel: [1, 1], stride: [1, 1], dilation: [1, 1],
                          pad: [0, 0], padAfter: [0, 0]))
        g.append(Geometry(rank: 3, batch: 2, c: 8, oc: 10, groups: 1, input: [5, 6, 4], kernel: [2, 3, 2], stride: [2, 1, 1],
                          dilation: [1, 1, 2], pad: [1, 1, 1], padAfter: [0, 1, 1]))
        g.append(Geometry(rank: 1, batch: 2, c: 9, oc: 5, groups: 1, input: [13], kernel: [3], stride: [3], dilation: [2], pad: [2], padAfter: [1]))
        g.append(Geometry(rank: 2, batch: 2, c: 6, oc: 7, groups: 1, input: [7, 8], kernel: [3, 2], stride: [1, 1],
                          dilation: [2, 3], pad: [2, 1], padAfter: [1, 2]))
        // lines longer than the tile (6 rows at AVX2, 12 at AVX-512): full tiles whose windows (forward) or taps (the
        // data gradient at stride 1) are all inside read their rows at a fixed stride (stride 1 and 2, dilation, 2-D
        // and along a 3-D input's last axis), next to tiles reaching into the padding or wrapping onto the next line
        g.append(Geometry(rank: 2, batch: 2, c: 8, oc: 40, groups: 1, input: [4, 40], kernel: [3, 3], stride: [1, 1], dilation: [1, 2],
                          pad: [1, 2], padAfter: [1, 2]))
        g.append(Geometry(rank: 2, batch: 1, c: 6, oc: 33, groups: 1, input: [3, 61], kernel: [2, 3], stride: [1, 2], dilation: [1, 1],
                          pad: [0, 0], padAfter: [0, 0]))
        g.append(Geometry(rank: 3, batch: 1, c: 5, oc: 8, groups: 1, input: [2, 2, 30], kernel: [1, 2, 3], stride: [1, 1, 1],
                          dilation: [1, 1, 1], pad: [0, 0, 0], padAfter: [0, 0, 0]))
        // weight panels larger than the L1 share (CONV_L1_PANEL): taps in groups, each added to the tile,
        // forward at AVX-512, backward-data at both; partial row and column tiles
        g.append(Geometry(rank: 2, batch: 2, c: 40, oc: 72, groups: 1, input: [6, 7], kernel: [3, 3], stride: [1, 1], dilation: [1, 1],
                          pad: [1, 1], padAfter: [1, 1]))
        // few input channels, 2-D (a zero-padded copy of each image, tiles along output rows): rows longer and
        // shorter than the tile, strides, dilation, uneven padding, output channels not a multiple of the tile
        g.append(Geometry(rank: 2, batch: 3, c: 3, oc: 37, groups: 1, input: [9, 31], kernel: [3, 5], stride: [2, 1], dilation: [1, 2],
                          pad: [1, 4], padAfter: [2, 3]))
        g.append(Geometry(rank: 2, batch: 2, c: 4, oc: 5, groups: 1, input: [6, 5], kernel: [2, 2], stride: [1, 3], dilation: [2, 1],
                          pad: [0, 1], padAfter: [0, 0]))
        // ... and with output channels a multiple of 16 and 32 (the filter gradient's register blocks), a batch
        // that leaves a partial chunk of images, more dW rows than one block
        g.append(Geometry(rank: 2, batch: 9, c: 3, oc: 64, groups: 1, input: [9, 13], kernel: [3, 3], stride: [2, 1], dilation: [1, 2],
                          pad: [1, 2], padAfter: [0, 1]))
        g.append(Geometry(rank: 2, batch: 5, c: 2, oc: 16, groups: 1, input: [5, 20], kernel: [2, 3], stride: [1, 2], dilation: [1, 1],
                          pad: [1, 0], padAfter: [1, 1]))
        // ... stride 1 (the data gradient from transposed, zero-padded dy planes): dilation, uneven padding,
        // rows and columns not multiples of the vector or the row block
        g.append(Geometry(rank: 2, batch: 3, c: 3, oc: 20, groups: 1, input: [10, 19], kernel: [3, 2], stride: [1, 1], dilation: [2, 1],
                          pad: [2, 0], padAfter: [1, 1]))
        g.append(Geometry(rank: 2, batch: 2, c: 1, oc: 7, groups: 1, input: [17, 33], kernel: [2, 4], stride: [1, 1], dilation: [1, 1],
                          pad: [0, 3], padAfter: [1, 0]))
        // ... stride 1 with output channels 16, 32, 48 (the AVX-512 data gradient over dy's channel vectors,
        // 16 / C pixels per group): dilation, uneven and wide padding, rows not a multiple of the group
        g.append(Geometry(rank: 2, batch: 2, c: 1, oc: 32, groups: 1, input: [11, 19], kernel: [3, 3], stride: [1, 1], dilation: [2, 1],
                          pad: [2, 0], padAfter: [1, 2]))
        g.append(Geometry(rank: 2, batch: 2, c: 2, oc: 48, groups: 1, input: [7, 9], kernel: [2, 4], stride: [1, 1], dilation: [1, 1],
                          pad: [0, 3], padAfter: [1, 0]))
        g.append(Geometry(rank: 2, batch: 3, c: 4, oc: 16, groups: 1, input: [5, 6], kernel: [3, 3], stride: [1, 1], dilation: [1, 1],
                          pad: [1, 1], padAfter: [1, 1]))
        g.append(Geometry(rank: 2, batch: 2, c: 3, oc: 32, groups: 1, input: [4, 17], kernel: [5, 5], stride: [1, 1], dilation: [1, 1],
                          pad: [2, 2], padAfter: [2, 2]))
        // ... read in place (edges of at most two pixels a group): rows not a multiple of the group (the last group overlaps)
        g.append(Geometry(rank: 2, batch: 2, c: 2, oc: 32, groups: 1, input: [6, 13], kernel: [3, 3], stride: [1, 1], dilation: [1, 1],
                          pad: [1, 1], padAfter: [1, 1]))
        g.append(Geometry(rank: 2, batch: 2, c: 1, oc: 16, groups: 1, input: [5, 21], kernel: [3, 3], stride: [1, 1], dilation: [1, 1],
                          pad: [0, 0], padAfter: [0, 0]))
        // more few-channel 2-D cases: more pixels than a task, strides, padding (1-D and 3-D few-channel cases, above, take the patch-packing GEMM)
        g.append(Geometry(rank: 2, batch: 6, c: 2, oc: 40, groups: 1, input: [24, 23], kernel: [3, 3], stride: [1, 1], dilation: [1, 1],
                          pad: [1, 1], padAfter: [1, 1]))
        g.append(Geometry(rank: 2, batch: 3, c: 1, oc: 32, groups: 1, input: [28, 28], kernel: [3, 3], stride: [2, 2], dilation: [1, 1],
                          pad: [0, 0], padAfter: [1, 1]))
        g.append(Geometry(rank: 2, batch: 2, c: 5, oc: 8, groups: 1, input: [9, 9], kernel: [3, 3], stride: [1, 1], dilation: [1, 1],
                          pad: [1, 1], padAfter: [1, 1]))
        return g
    }()

    func optimized(_ op: Int32) -> [ck_isa] {
        var n = 0
        let t = ck_kernel_table(&n)!
        return (0..<n).map { t[$0] }.filter { $0.family == CK_FAMILY_CONV && $0.op == op && $0.isa != CK_ISA_REF }.map(\.isa)
            .filter { $0 == CK_ISA_AVX2 ? hasAVX2 : ck_cpu_has_avx512f() != 0 }
    }

    func testConvolutionsMatchReference() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var rng = TestRNG(21)
        for g in Self.geometries {
            var d = g.desc
            let x = Guarded(rng.floats(g.xCount, -1, 1)), w = Guarded(rng.floats(g.wCount, -1, 1)), dy = Guarded(rng.floats(g.yCount, -1, 1))
            let k = Float(g.kernel.reduce(1, *) * max(g.c, g.oc))
            let yRef = Guarded(g.yCount), dxRef = Guarded(g.xCount), dwRef = Guarded(g.wCount)
            ck_f32_conv_forward_kernel(CK_ISA_REF)(&d, x.pointer, w.pointer, yRef.pointer)
            ck_f32_conv_backward_data_kernel(CK_ISA_REF)(&d, dy.pointer, w.pointer, dxRef.pointer)
            ck_f32_conv_backward_filter_kernel(CK_ISA_REF)(&d, x.pointer, dy.pointer, dwRef.pointer)
            // Forward plain, and with the epilogue (bias, residual, activation) in its store step, each against the reference.
            let bias = Guarded(rng.floats(g.oc, -1, 1)), residual = Guarded(rng.floats(g.yCount, -1, 1))
            var e = d
            e.bias = UnsafePointer(bias.pointer); e.residual = UnsafePointer(residual.pointer)
            e.activation = Int32(CK_UNARY_ELU.rawValue) + 1
            e.act_params = ck_unary_params(alpha: 0.7, beta: 0)
            let zRef = Guarded(g.yCount)
            ck_f32_conv_forward_kernel(CK_ISA_REF)(&e, x.pointer, w.pointer, zRef.pointer)
            // ... and bias + relu, the one-pass epilogue
            var br = d
            br.bias = UnsafePointer(bias.pointer); br.activation = Int32(CK_UNARY_RELU.rawValue) + 1
            let brRef = Guarded(g.yCount)
            ck_f32_conv_forward_kernel(CK_ISA_REF)(&br, x.pointer, w.pointer, brRef.pointer)
            for (label, desc, want) in [("conv forward", d, yRef), ("conv forward+bias+residual+elu", e, zRef), ("conv forward+bias+relu", br, brRef)] {
                var desc = desc
                for isa in optimized(0) {
                    let y = Guarded(g.yCount)
                    ck_f32_conv_forward_kernel(isa)(&desc, x.pointer, w.pointer, y.pointer)
                    if let m = compare(y.values, want.values, tol: 1e-6 * k) { XCTFail("\(label) \(String(cString: ck_isa_name(isa))) \(g): \(m)") }
                    XCTAssertTrue(y.intactCanaries, "\(label) wrote outside y")
                }
            }
            for isa in optimized(1) {
                let dx = Guarded(g.xCount)
                ck_f32_conv_backward_data_kernel(isa)(&d, dy.pointer, w.pointer, dx.pointer)
                if let m = compare(dx.values, dxRef.values, tol: 1e-6 * k) { XCTFail("conv backward data \(String(cString: ck_isa_name(isa))) \(g): \(m)") }
                XCTAssertTrue(dx.intactCanaries, "conv backward data wrote outside dx")
            }
            for isa in optimized(2) {
                let dw = Guarded(g.wCount)
                ck_f32_conv_backward_filter_kernel(isa)(&d, x.pointer, dy.pointer, dw.pointer)
                let pixels = Float(g.batch * g.out.reduce(1, *))
                if let m = compare(dw.values, dwRef.values, tol: 1e-6 * pixels) { XCTFail("conv backward filter \(String(cString: ck_isa_name(isa))) \(g): \(m)") }
                XCTAssertTrue(dw.intactCanaries, "conv backward filter wrote outside dw")
            }
        }
    }

    /// Forward with 2x2 max pooling (max_pool_2x2) on its fast path is the
    /// unfused pair, a convolution with its epilogue then the pooling
    /// kernel, bit for bit, at every ISA and on 1 and 2 threads (the fused
    /// kernel's runs of row pairs depend on the thread count); the shapes that
    /// take the reference's loops (few channels, groups) match it within the
    /// convolution tests' tolerance.
    func testConvolutionWithPoolingIsTheUnfusedPair() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        let saved = ck_threads_get()
        defer { _ = ck_threads_set(saved) }
        var rng = TestRNG(23)
        let extra = [Geometry(rank: 2, batch: 1, c: 9, oc: 40, groups: 1, input: [23, 30], kernel: [3, 3], stride: [1, 1], dilation: [1, 1],
                              pad: [0, 0], padAfter: [0, 0]),
                     Geometry(rank: 2, batch: 5, c: 16, oc: 33, groups: 1, input: [9, 13], kernel: [3, 3], stride: [2, 1], dilation: [1, 1],
                              pad: [1, 1], padAfter: [1, 1])]
        var fast = 0
        for g in Self.geometries.filter({ $0.rank == 2 }) + extra where g.out.allSatisfy({ $0 >= 2 }) {
            let x = Guarded(rng.floats(g.xCount, -1, 1)), w = Guarded(rng.floats(g.wCount, -1, 1)), bias = Guarded(rng.floats(g.oc, -1, 1))
            let ph = g.out[0] / 2, pw = g.out[1] / 2, pooled = g.batch * ph * pw * g.oc
            var pool = ck_conv_desc()
            pool.rank = 2; pool.batch = Int64(g.batch); pool.in_channels = Int64(g.oc); pool.out_channels = Int64(g.oc); pool.groups = 1
            pool.in_size = (Int64(g.out[0]), Int64(g.out[1]), 1); pool.out_size = (Int64(ph), Int64(pw), 1)
            pool.kernel = (2, 2, 1); pool.stride = (2, 2, 1); pool.dilation = (1, 1, 1)
            for act in [CK_UNARY_RELU, CK_UNARY_ELU] {
                var d = g.desc
                d.bias = UnsafePointer(bias.pointer); d.activation = Int32(act.rawValue) + 1
                d.act_params = ck_unary_params(alpha: 0.7, beta: 0)
                let isFast = ck_conv_pool_fast(&d) != 0
                if isFast { fast += 1 }
                let k = Float(g.kernel.reduce(1, *) * max(g.c, g.oc))
                for isa in [CK_ISA_REF] + optimized(0) {
                    let name = "conv forward+max_pool \(String(cString: ck_isa_name(isa))) act \(act.rawValue) \(g)"
                    _ = ck_threads_set(1)
                    let y = Guarded(g.yCount), want = Guarded(pooled)
                    ck_f32_conv_forward_kernel(isa)(&d, x.pointer, w.pointer, y.pointer)
                    ck_f32_max_pool_kernel(isa)(&pool, y.pointer, want.pointer)
                    var f = d
                    f.max_pool_2x2 = 1
                    for threads: Int32 in [1, 2] {
                        _ = ck_threads_set(threads)
                        let got = Guarded(pooled)
                        ck_f32_conv_forward_kernel(isa)(&f, x.pointer, w.pointer, got.pointer)
                        if isFast || isa == CK_ISA_REF {
                            XCTAssertEqual(got.values.map(\.bitPattern), want.values.map(\.bitPattern), "\(name) on \(threads) threads")
                        } else if let m = compare(got.values, want.values, tol: 1e-6 * k) {
                            XCTFail("\(name) on \(threads) threads: \(m)")
                        }
                        XCTAssertTrue(got.intactCanaries, "\(name) wrote outside y")
                    }
                }
            }
        }
        XCTAssertGreaterThanOrEqual(fast, 10, "geometries on the fused fast path")
    }

    /// A layer with enough pixels (18000: three chunks of 6144, the last
    /// short) that the filter gradient splits them into chunks, each summed
    /// into its own partial dW, the partials added in chunk order: against
    /// the reference, and bitwise the same on 1 and 2 threads.
    func testFilterGradientOverPixelChunks() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        let saved = ck_threads_get()
        defer { _ = ck_threads_set(saved) }
        var rng = TestRNG(23)
        let g = Geometry(rank: 2, batch: 5, c: 8, oc: 32, groups: 1, input: [60, 60], kernel: [3, 3], stride: [1, 1], dilation: [1, 1],
                         pad: [1, 1], padAfter: [1, 1])
        var d = g.desc
        let x = Guarded(rng.floats(g.xCount, -1, 1)), dy = Guarded(rng.floats(g.yCount, -1, 1))
        let dwRef = Guarded(g.wCount)
        ck_f32_conv_backward_filter_kernel(CK_ISA_REF)(&d, x.pointer, dy.pointer, dwRef.pointer)
        for isa in optimized(2) {
            var outs: [[UInt32]] = []
            for threads: Int32 in [1, 2] {
                _ = ck_threads_set(threads)
                let dw = Guarded(g.wCount)
                ck_f32_conv_backward_filter_kernel(isa)(&d, x.pointer, dy.pointer, dw.pointer)
                if let m = compare(dw.values, dwRef.values, tol: 2e-4) {
                    XCTFail("conv backward-filter \(String(cString: ck_isa_name(isa))) \(threads) threads, 18000 pixels: \(m)")
                }
                XCTAssertTrue(dw.intactCanaries, "conv backward-filter wrote outside dw")
                outs.append(dw.values.map(\.bitPattern))
            }
            XCTAssertEqual(outs[0], outs[1], "conv backward-filter \(String(cString: ck_isa_name(isa))) over pixel chunks: 1 and 2 threads")
        }
    }

    func testConvolutionsAreBitwiseIdenticalOnOneAndTwoThreads() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        let saved = ck_threads_get()
        defer { _ = ck_threads_set(saved) }
        var rng = TestRNG(22)
        for g in [Geometry(rank: 2, batch: 4, c: 16, oc: 24, groups: 1, input: [12, 10], kernel: [3, 3], stride: [1, 1], dilation: [1, 1],
                           pad: [1, 1], padAfter: [1, 1]),
                  Geometry(rank: 2, batch: 8, c: 1, oc: 32, groups: 1, input: [28, 28], kernel: [3, 3], stride: [1, 1], dilation: [1, 1],
                           pad: [0, 0], padAfter: [0, 0]),
                  Geometry(rank: 2, batch: 3, c: 40, oc: 72, groups: 1, input: [9, 8], kernel: [3, 3], stride: [1, 1], dilation: [1, 1],
                           pad: [1, 1], padAfter: [1, 1])] {
        var d = g.desc
        let x = rng.floats(g.xCount, -1, 1), w = rng.floats(g.wCount, -1, 1), dy = rng.floats(g.yCount, -1, 1)
        let bias = rng.floats(g.oc, -1, 1)
        for isa in optimized(0) {
            var outs: [[UInt32]] = []
            for threads: Int32 in [1, 2] {
                _ = ck_threads_set(threads)
                var y = [Float](repeating: 0, count: g.yCount), dx = [Float](repeating: 0, count: g.xCount), dw = [Float](repeating: 0, count: g.wCount)
                var z = y
                ck_f32_conv_forward_kernel(isa)(&d, x, w, &y)
                bias.withUnsafeBufferPointer { b in
                    var e = d
                    e.bias = b.baseAddress; e.activation = Int32(CK_UNARY_RELU.rawValue) + 1
                    ck_f32_conv_forward_kernel(isa)(&e, x, w, &z)
                }
                ck_f32_conv_backward_data_kernel(isa)(&d, dy, w, &dx)
                ck_f32_conv_backward_filter_kernel(isa)(&d, x, dy, &dw)
                outs.append((y + z + dx + dw).map(\.bitPattern))
            }
            XCTAssertEqual(outs[0], outs[1], "conv at \(String(cString: ck_isa_name(isa))) c=\(g.c)")
        }
        }
    }
}

final class PoolKernelTests: XCTestCase {
    func testPoolingMatchesReference() throws {
        try XCTSkipUnless(hasAVX2, "no AVX2 on this CPU")
        var rng = TestRNG(31)
        struct Case { var rank: Int; var input: [Int]; var pool: [Int]; var stride: [Int]; var pad: [Int]; var padAfter: [Int]; var c: Int }
        let cases: [Case] = [
            Case(rank: 2, input: [6, 7], pool: [2, 2], stride: [2, 2], pad: [0, 0], padAfter: [0, 1], c: 9),
            Case(rank: 2, input: [5, 5], pool: [3, 3], stride: [1, 1], pad: [1, 1], padAfter: [1, 1], c: 17),
            Case(rank: 1, input: [9], pool: [3], stride: [2], pad: [1], padAfter: [1], c: 8),
            Case(rank: 3, input: [4, 5, 3], pool: [2, 2, 2], stride: [1, 2, 1], pad: [0, 1, 0], padAfter: [1, 0, 1], c: 3),
            Case(rank: 2, input: [8, 8], pool: [2, 2], stride: [2, 2], pad: [0, 0], padAfter: [0, 0], c: 16),
            Case(rank: 2, input: [7, 9], pool: [3, 3], stride: [2, 1], pad: [1, 1], padAfter: [1, 0], c: 32),
            Case(rank: 2, input: [7, 6], pool: [3, 2], stride: [1, 2], pad: [1, 0], padAfter: [1, 0], c: 11),
            // 2x2 stride 2 unpadded (its own AVX-512 path), an odd input whose last row and column no window reaches
            Case(rank: 2, input: [7, 9], pool: [2, 2], stride: [2, 2], pad: [0, 0], padAfter: [0, 0], c: 32),
        ]
        for (caseIndex, c) in cases.enumerated() {
            var out: [Int] = []
            for a in 0..<c.rank { out.append((c.input[a] + c.pad[a] + c.padAfter[a] - c.pool[a]) / c.stride[a] + 1) }
            let g = ConvKernelTests.Geometry(rank: c.rank, batch: 3, c: c.c, oc: c.c, groups: 1, input: c.input, kernel: c.pool,
                                             stride: c.stride, dilation: [Int](repeating: 1, count: c.rank), pad: c.pad, padAfter: c.padAfter)
            var d = g.desc
            XCTAssertEqual(g.out, out)
            var xs = rng.floats(g.xCount, -1, 1)
            if caseIndex >= 4 {
                // ties (values on a coarse grid) and NaNs: the argmax rule must match exactly
                xs = xs.enumerated().map { $0.offset % 13 == 5 ? .nan : ($0.element * 2).rounded() / 2 }
            }
            let x = Guarded(xs), dy = Guarded(rng.floats(g.yCount, -1, 1))
            var kinds: [(String, ck_f32_pool_fn, ck_f32_pool_fn)] = [
                ("max", ck_f32_max_pool_kernel(CK_ISA_AVX2)!, ck_f32_max_pool_kernel(CK_ISA_REF)!),
                ("avg", ck_f32_avg_pool_kernel(CK_ISA_AVX2)!, ck_f32_avg_pool_kernel(CK_ISA_REF)!),
            ]
            if ck_cpu_has_avx512f() != 0 { kinds.append(("max", ck_f32_max_pool_kernel(CK_ISA_AVX512)!, ck_f32_max_pool_kernel(CK_ISA_REF)!)) }
            for (name, fast, ref) in kinds {
                let y = Guarded(g.yCount), r = Guarded(g.yCount)
                fast(&d, x.pointer, y.pointer)
                ref(&d, x.pointer, r.pointer)
                if caseIndex >= 4 && name == "max" {
                    let bad = zip(y.values, r.values).filter { $0.bitPattern != $1.bitPattern }.count
                    XCTAssertEqual(bad, 0, "max pool with ties and NaNs \(c): \(bad) of \(y.values.count) outputs differ (a NaN in a window must win)")
                } else if let m = compare(y.values, r.values, tol: 1e-6) { XCTFail("\(name) pool \(c): \(m)") }
                XCTAssertTrue(y.intactCanaries)
            }
            let dx = Guarded(g.xCount), dr = Guarded(g.xCount)
            let vectorISAs = [CK_ISA_AVX2] + (ck_cpu_has_avx512f() != 0 ? [CK_ISA_AVX512] : [])
            ck_f32_max_pool_backward_kernel(CK_ISA_REF)(&d, x.pointer, dy.pointer, dr.pointer)
            for isa in vectorISAs {
                ck_f32_max_pool_backward_kernel(isa)(&d, x.pointer, dy.pointer, dx.pointer)
                let badGrad = zip(dx.values, dr.values).filter { $0.bitPattern != $1.bitPattern }.count
                XCTAssertEqual(badGrad, 0, "max pool backward at \(String(cString: ck_isa_name(isa))) \(c): \(badGrad) of \(dx.values.count) input gradients differ")
            }
            ck_f32_avg_pool_backward_kernel(CK_ISA_AVX2)(&d, dy.pointer, dx.pointer)
            ck_f32_avg_pool_backward_kernel(CK_ISA_REF)(&d, dy.pointer, dr.pointer)
            XCTAssertEqual(dx.values, dr.values, "avg pool backward \(c)")
            XCTAssertTrue(dx.intactCanaries)
            // With relu's gradient (windows that do not overlap only), written over x itself:
            // bitwise select(x > 0, max_pool_backward(x, dy), 0) at both ISAs.
            if ck_pool_windows_overlap(&d) == 0 {
                let plain = Guarded(g.xCount)
                ck_f32_max_pool_backward_kernel(CK_ISA_REF)(&d, x.pointer, dy.pointer, plain.pointer)
                let want = zip(xs, plain.values).map { $0 > 0 ? $1 : 0 }
                for isa in [CK_ISA_REF] + vectorISAs {
                    let inPlace = Guarded(xs)
                    ck_f32_max_pool_backward_relu_kernel(isa)(&d, inPlace.pointer, dy.pointer, inPlace.pointer)
                    let bad = zip(inPlace.values, want).filter { $0.bitPattern != $1.bitPattern }.count
                    XCTAssertEqual(bad, 0, "ck_f32_max_pool_backward_relu__\(String(cString: ck_isa_name(isa))) in place \(c): \(bad) of \(want.count) differ")
                    XCTAssertTrue(inPlace.intactCanaries)
                }
            }
        }
    }
}
