import CKernels
import Keras
#if canImport(Glibc)
import Glibc
#endif

/// One benchmark figure, as printed and as written to --json.
struct Record {
    var name: String
    var isa: String
    var threads: Int
    var fields: [(String, JSON)] = []
    var gflops: Double
    var pctPeak: Double
    var msMedian: Double

    var json: JSON {
        var o: [(String, JSON)] = [("name", .string(name)), ("isa", .string(isa)), ("threads", JSON(threads))]
        o += fields
        o += [("gflops", JSON((gflops * 10).rounded() / 10)), ("pct_peak", JSON((pctPeak * 10).rounded() / 10)),
              ("ms_median", JSON((msMedian * 1000).rounded() / 1000))]
        return .object(o)
    }
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Median wall time of `body` over `reps` runs after one warm-up, in seconds.
func medianTime(reps: Int, _ body: () throws -> Void) rethrows -> Double {
    try body()
    var times: [Double] = []
    for _ in 0..<reps {
        let t0 = now()
        try body()
        times.append(now() - t0)
    }
    times.sort()
    return times[times.count / 2]
}

/// A 64-byte-aligned float buffer filled by `fill`.
func aligned(_ n: Int, _ fill: (Int) -> Float) -> UnsafeMutablePointer<Float> {
    let p = UnsafeMutableRawPointer.allocate(byteCount: max(n, 1) * 4, alignment: 64).assumingMemoryBound(to: Float.self)
    for i in 0..<n { p[i] = fill(i) }
    return p
}

func isaName(_ isa: ck_isa) -> String { String(cString: ck_isa_name(isa)) }

/// The FMA peak of one core at `isa` in GFLOP/s (best of several runs of
/// independent FMA chains), and of `threads` cores running it at once.
func measurePeak(_ isa: ck_isa, threads: Int) -> Double {
    let iterations: Int64 = 50_000_000
    let flops = Double(iterations) * ck_fma_peak_flops_per_iteration(isa)
    var best = 0.0
    final class Box { var isa: ck_isa; var iterations: Int64; init(_ i: ck_isa, _ n: Int64) { isa = i; iterations = n } }
    let box = Box(isa, iterations)
    for _ in 0..<3 {
        let t0 = now()
        _ = ck_threads_set(Int32(threads))
        withExtendedLifetime(box) {
            ck_parallel_for(Int64(threads), 0, { ctx, _, _, _ in
                let b = Unmanaged<Box>.fromOpaque(ctx!).takeUnretainedValue()
                _ = ck_fma_peak_run(b.isa, b.iterations)
            }, Unmanaged.passUnretained(box).toOpaque())
        }
        let t = now() - t0
        best = max(best, flops * Double(threads) / t / 1e9)
    }
    return best
}

struct GemmCase {
    var name: String
    var m: Int, n: Int, k: Int
    var ta: Bool, tb: Bool
}

func benchGemm(_ c: GemmCase, isa: ck_isa, threads: Int, peak: Double) -> Record {
    let rowsA = c.ta ? c.k : c.m, colsA = c.ta ? c.m : c.k
    let rowsB = c.tb ? c.n : c.k, colsB = c.tb ? c.k : c.n
    // 64-byte-aligned operands, as the runtime's arena and parameter store give them.
    var g = SplitMix64(seed: 1)
    let a = aligned(rowsA * colsA) { _ in g.uniform(-1, 1) }, b = aligned(rowsB * colsB) { _ in g.uniform(-1, 1) }
    let cbuf = aligned(c.m * c.n) { _ in 0 }
    defer { a.deallocate(); b.deallocate(); cbuf.deallocate() }
    _ = ck_threads_set(Int32(threads))
    let fn = ck_f32_gemm_kernel(isa)!
    let flops = 2.0 * Double(c.m) * Double(c.n) * Double(c.k)
    let reps = max(9, min(200, Int(4e10 / flops)))
    var args = ck_gemm_args()
    args.trans_a = c.ta ? 1 : 0; args.trans_b = c.tb ? 1 : 0
    args.m = Int64(c.m); args.n = Int64(c.n); args.k = Int64(c.k); args.alpha = 1; args.beta = 0
    args.a = UnsafePointer(a); args.lda = Int64(colsA); args.b = UnsafePointer(b); args.ldb = Int64(colsB)
    args.c = cbuf; args.ldc = Int64(c.n)
    let t = medianTime(reps: reps) { fn(&args, nil) }
    let gf = flops / t / 1e9
    return Record(name: c.name, isa: isaName(isa), threads: threads,
                  fields: [("m", JSON(c.m)), ("n", JSON(c.n)), ("k", JSON(c.k)), ("trans_a", JSON(c.ta)), ("trans_b", JSON(c.tb))],
                  gflops: gf, pctPeak: 100 * gf / (peak * Double(threads)), msMedian: t * 1e3)
}

/// One micro-kernel row: MR x NR tiles over kc = 256 packed panels (A and B in L1/L2), C in L1.
func benchMicroKernel(_ row: ck_kernel_info, peak: Double) -> Record {
    let mr = Int(row.tile), nr = Int(row.op), kc = 256
    let ukr = ck_f32_gemm_ukr_kernel(row.isa, row.tile, row.op)!
    var g = SplitMix64(seed: 2)
    let a = aligned(kc * mr) { _ in g.uniform(-1, 1) }, b = aligned(kc * nr) { _ in g.uniform(-1, 1) }, c = aligned(mr * nr) { _ in 0 }
    defer { a.deallocate(); b.deallocate(); c.deallocate() }
    let calls = 2000
    let t = medianTime(reps: 15) { for _ in 0..<calls { ukr(Int64(kc), a, b, c, Int64(nr), Int64(mr), Int64(nr), 1, 1) } }
    let gf = 2.0 * Double(mr * nr * kc * calls) / t / 1e9
    return Record(name: String(cString: row.name), isa: isaName(row.isa), threads: 1,
                  fields: [("mr", JSON(mr)), ("nr", JSON(nr)), ("kc", JSON(kc))], gflops: gf, pctPeak: 100 * gf / peak, msMedian: t * 1e3 / Double(calls))
}

/// One indirect micro-kernel row: 9 taps of 64 channels (a 3x3, 64-channel layer's depth) through a pointer table.
func benchConvMicroKernel(_ row: ck_kernel_info, peak: Double) -> Record {
    let mr = Int(row.tile), nr = Int(row.op), taps = 9, kc = 64
    let ukr = ck_f32_conv_ukr_kernel(row.isa, row.tile, row.op)!
    var g = SplitMix64(seed: 3)
    let a = aligned(taps * mr * kc) { _ in g.uniform(-1, 1) }, w = aligned(taps * kc * nr) { _ in g.uniform(-1, 1) }
    let c = aligned(mr * nr) { _ in 0 }
    defer { a.deallocate(); w.deallocate(); c.deallocate() }
    let ind: [UnsafePointer<Float>?] = (0..<(taps * mr)).map { UnsafePointer(a + $0 * kc) }
    let calls = 1000
    let t = ind.withUnsafeBufferPointer { p in
        medianTime(reps: 15) { for _ in 0..<calls { ukr(Int64(taps), Int64(kc), p.baseAddress, 0, w, c, Int64(nr), Int64(mr), Int64(nr), 0) } }
    }
    let gf = 2.0 * Double(mr * nr * taps * kc * calls) / t / 1e9
    return Record(name: String(cString: row.name), isa: isaName(row.isa), threads: 1,
                  fields: [("mr", JSON(mr)), ("nr", JSON(nr)), ("taps", JSON(taps)), ("kc", JSON(kc))], gflops: gf, pctPeak: 100 * gf / peak,
                  msMedian: t * 1e3 / Double(calls))
}

struct ConvCase {
    var name: String
    var batch: Int, size: Int, c: Int, oc: Int, k: Int
}

/// Forward, backward-data and backward-filter of a same-padded k x k convolution.
func benchConv(_ cc: ConvCase, isa: ck_isa, threads: Int, peak: Double) -> [Record] {
    var d = ck_conv_desc()
    d.rank = 2
    d.batch = Int64(cc.batch); d.in_channels = Int64(cc.c); d.out_channels = Int64(cc.oc); d.groups = 1
    d.in_size = (Int64(cc.size), Int64(cc.size), 1); d.out_size = d.in_size
    d.kernel = (Int64(cc.k), Int64(cc.k), 1); d.stride = (1, 1, 1); d.dilation = (1, 1, 1)
    d.pad = (Int64(cc.k / 2), Int64(cc.k / 2), 0)
    var g = SplitMix64(seed: 2)
    let pixels = cc.batch * cc.size * cc.size, wCount = cc.k * cc.k * cc.c * cc.oc
    let x = aligned(pixels * cc.c) { _ in g.uniform(-1, 1) }, w = aligned(wCount) { _ in g.uniform(-1, 1) }
    let dy = aligned(pixels * cc.oc) { _ in g.uniform(-1, 1) }
    let y = aligned(pixels * cc.oc) { _ in 0 }, dx = aligned(pixels * cc.c) { _ in 0 }, dw = aligned(wCount) { _ in 0 }
    defer { for p in [x, w, dy, y, dx, dw] { p.deallocate() } }
    _ = ck_threads_set(Int32(threads))
    let flops = 2.0 * Double(pixels) * Double(cc.oc) * Double(cc.k * cc.k * cc.c)
    let reps = max(5, min(50, Int(5e9 / flops)))
    let fwd = ck_f32_conv_forward_kernel(isa)!, bd = ck_f32_conv_backward_data_kernel(isa)!, bf = ck_f32_conv_backward_filter_kernel(isa)!
    let tf = medianTime(reps: reps) { fwd(&d, x, w, y) }
    let tb = medianTime(reps: reps) { bd(&d, dy, w, dx) }
    let tw = medianTime(reps: reps) { bf(&d, x, dy, dw) }
    let fields: [(String, JSON)] = [("batch", JSON(cc.batch)), ("height", JSON(cc.size)), ("width", JSON(cc.size)),
                                    ("in_channels", JSON(cc.c)), ("out_channels", JSON(cc.oc)), ("kernel", JSON(cc.k))]
    return [("forward", tf), ("backward_data", tb), ("backward_filter", tw)].map { pass, t in
        let gf = flops / t / 1e9
        return Record(name: "\(cc.name)_\(pass)", isa: isaName(isa), threads: threads, fields: fields,
                      gflops: gf, pctPeak: 100 * gf / (peak * Double(threads)), msMedian: t * 1e3)
    }
}

/// The kernel suite: FMA peaks, sgemm squares and the MLP shapes in all
/// four transpose combinations, on 1 thread and all threads.
func runKernelSuite(threadCounts: [Int], quick: Bool) -> [Record] {
    var records: [Record] = []
    var isas: [ck_isa] = []
    if ck_cpu_has_avx2_fma() != 0 { isas.append(CK_ISA_AVX2) }
    if ck_cpu_has_avx512f() != 0 { isas.append(CK_ISA_AVX512) }
    print("cpu: \(cpuLine())")
    for isa in isas { print("gemm blocking \(isaName(isa)): \(blockingText(ck_gemm_get_blocking(isa)))") }
    var peaks: [String: Double] = [:]
    for isa in isas {
        let p1 = measurePeak(isa, threads: 1)
        peaks[isaName(isa)] = p1
        for t in threadCounts {
            let p = t == 1 ? p1 : measurePeak(isa, threads: t)
            records.append(Record(name: "fma_peak", isa: isaName(isa), threads: t, gflops: p, pctPeak: 100 * p / (p1 * Double(t)), msMedian: 0))
            print("fma_peak \(isaName(isa)) threads=\(t): \(fmt(p)) GFLOP/s")
        }
    }
    // Each GEMM micro-kernel by itself (its own table row): full tiles over cache-resident panels.
    var tableCount = 0
    let table = ck_kernel_table(&tableCount)!
    for row in (0..<tableCount).map({ table[$0] }) where row.family == CK_FAMILY_GEMM_UKR && isas.contains(row.isa) {
        let r = benchMicroKernel(row, peak: peaks[isaName(row.isa)]!)
        records.append(r)
        print("\(r.name) \(r.isa) threads=1: \(fmt(r.gflops)) GFLOP/s, \(fmt(r.pctPeak))% of peak")
    }
    for row in (0..<tableCount).map({ table[$0] }) where row.family == CK_FAMILY_CONV_UKR && isas.contains(row.isa) {
        let r = benchConvMicroKernel(row, peak: peaks[isaName(row.isa)]!)
        records.append(r)
        print("\(r.name) \(r.isa) threads=1: \(fmt(r.gflops)) GFLOP/s, \(fmt(r.pctPeak))% of peak")
    }
    var cases: [GemmCase] = (quick ? [64, 256, 1024] : [64, 128, 256, 512, 1024, 2048]).map {
        GemmCase(name: "sgemm_square", m: $0, n: $0, k: $0, ta: false, tb: false)
    }
    for (m, n, k) in [(128, 512, 784), (128, 512, 512), (128, 10, 512)] {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            cases.append(GemmCase(name: "sgemm_mlp", m: m, n: n, k: k, ta: ta, tb: tb))
        }
    }
    // imdb_lstm's recurrent products (batch 32, 128 units): a forward step, a backward step's dh.
    cases.append(GemmCase(name: "sgemm_lstm_step", m: 32, n: 512, k: 128, ta: false, tb: false))
    cases.append(GemmCase(name: "sgemm_lstm_step", m: 32, n: 128, k: 512, ta: false, tb: true))
    for isa in isas {
        for t in threadCounts {
            for c in cases {
                let r = benchGemm(c, isa: isa, threads: t, peak: peaks[isaName(isa)]!)
                records.append(r)
                print("\(c.name) \(c.m)x\(c.n)x\(c.k) ta=\(c.ta ? 1 : 0) tb=\(c.tb ? 1 : 0) \(isaName(isa)) threads=\(t): \(fmt(r.gflops)) GFLOP/s, \(fmt(r.pctPeak))% of peak, \(fmt(r.msMedian, 3)) ms")
            }
        }
    }
    let convs = [ConvCase(name: "conv3x3_64_64_56x56_b8", batch: 8, size: 56, c: 64, oc: 64, k: 3),
                 ConvCase(name: "conv3x3_1_32_28x28_b128", batch: 128, size: 28, c: 1, oc: 32, k: 3)]
    for isa in isas {
        for t in threadCounts {
            for cc in convs {
                for r in benchConv(cc, isa: isaName(isa) == "avx512" ? CK_ISA_AVX512 : CK_ISA_AVX2, threads: t, peak: peaks[isaName(isa)]!) {
                    records.append(r)
                    print("\(r.name) \(isaName(isa)) threads=\(t): \(fmt(r.gflops)) GFLOP/s, \(fmt(r.pctPeak))% of peak, \(fmt(r.msMedian, 3)) ms")
                }
            }
        }
    }
    for isa in isas {
        for t in threadCounts {
            for (cell, name) in [(CK_RNN_LSTM, "lstm"), (CK_RNN_GRU, "gru")] {
                for r in benchRNN(cell: cell, name: name, isa: isa, threads: t, peak: peaks[isaName(isa)]!) {
                    records.append(r)
                    print("\(r.name) \(isaName(isa)) threads=\(t): \(fmt(r.gflops)) GFLOP/s, \(fmt(r.pctPeak))% of peak, \(fmt(r.msMedian, 3)) ms per step")
                }
            }
        }
    }
    _ = ck_threads_set(Int32(threadCounts.max() ?? 1))
    return records
}

/// One step of a whole-sequence recurrent kernel (imdb_lstm's shape: batch
/// 32, 80 steps, 128 units), forward and backward, timed over the sequence
/// and divided by its length. The flops counted are the step's recurrent
/// GEMMs (one forward; backward, the dh product and its share of the
/// recomputation), so the figure compares directly with sgemm_lstm_step.
func benchRNN(cell: ck_rnn_cell, name: String, isa: ck_isa, threads: Int, peak: Double) -> [Record] {
    let batch = 32, time = 80, units = 128
    var d = ck_rnn_desc(cell: Int32(cell.rawValue), go_backwards: 0, batch: Int64(batch), time: Int64(time), units: Int64(units))
    let gn = Int(ck_rnn_gates(d.cell)) * units, s = Int(ck_rnn_state_width(d.cell)) * units, w = Int(ck_rnn_grad_width(d.cell)) * units
    var g = SplitMix64(seed: 3)
    let xp = aligned(batch * time * gn) { _ in g.uniform(-1, 1) }, u = aligned(units * gn) { _ in g.uniform(-0.1, 0.1) }
    let rb = aligned(gn) { _ in g.uniform(-0.1, 0.1) }, h0 = aligned(2 * batch * units) { _ in 0 }
    let states = aligned(batch * time * s) { _ in 0 }, dstates = aligned(batch * time * s) { _ in g.uniform(-1, 1) }
    let grad = aligned(batch * (time + 1) * w) { _ in 0 }
    let wsBytes = max(ck_f32_rnn_forward_workspace_bytes(&d), ck_f32_rnn_backward_workspace_bytes(&d))
    let ws = UnsafeMutableRawPointer.allocate(byteCount: wsBytes, alignment: 64)
    defer { for p in [xp, u, rb, h0, states, dstates, grad] { p.deallocate() }; ws.deallocate() }
    _ = ck_threads_set(Int32(threads))
    let c0 = UnsafePointer(h0 + batch * units), bias: UnsafePointer<Float>? = cell == CK_RNN_GRU ? UnsafePointer(rb) : nil
    let tf = medianTime(reps: 20) { ck_f32_rnn_forward(isa, &d, xp, u, bias, h0, c0, nil, states, ws) }
    let tb = medianTime(reps: 20) { ck_f32_rnn_backward(isa, &d, xp, u, bias, h0, c0, nil, states, dstates, grad, ws) }
    let stepFlops = 2.0 * Double(batch * units * gn)
    let fields: [(String, JSON)] = [("batch", JSON(batch)), ("time", JSON(time)), ("units", JSON(units))]
    return [("forward", tf, stepFlops), ("backward", tb, 2 * stepFlops)].map { pass, t, flops in
        let perStep = t / Double(time), gf = flops / perStep / 1e9
        return Record(name: "rnn_\(name)_step_\(pass)", isa: isaName(isa), threads: threads, fields: fields,
                      gflops: gf, pctPeak: 100 * gf / (peak * Double(threads)), msMedian: perStep * 1e3)
    }
}

func fmt(_ v: Double, _ digits: Int = 1) -> String {
    var buf = [CChar](repeating: 0, count: 32)
    _ = withVaList([v]) { vsnprintf(&buf, 32, "%.\(digits)f", $0) }
    return String(cString: buf)
}

/// The records as a Markdown table (for docs/performance.md).
func markdownTable(_ records: [Record], command: String) -> String {
    let blocking = [CK_ISA_AVX2, CK_ISA_AVX512].filter { $0 == CK_ISA_AVX2 ? ck_cpu_has_avx2_fma() != 0 : ck_cpu_has_avx512f() != 0 }
        .map { "\(isaName($0)) \(blockingText(ck_gemm_get_blocking($0)))" }.joined(separator: "; ")
    var out = "Produced by `\(command)` on \(cpuLine()); GEMM blocking \(blocking).\n\n| kernel | shape | isa | threads | GFLOP/s | % of peak | ms (median) |\n|---|---|---|---:|---:|---:|---:|\n"
    for r in records {
        let shape = r.fields.filter { !["trans_a", "trans_b"].contains($0.0) }.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
        var name = r.name
        if let ta = r.fields.first(where: { $0.0 == "trans_a" })?.1, let tb = r.fields.first(where: { $0.0 == "trans_b" })?.1 {
            name += " (\(ta == .bool(true) ? "T" : "N")\(tb == .bool(true) ? "T" : "N"))"
        }
        out += "| \(name) | \(shape) | \(r.isa) | \(r.threads) | \(fmt(r.gflops)) | \(fmt(r.pctPeak)) | \(r.name == "fma_peak" ? "" : fmt(r.msMedian, 3)) |\n"
    }
    return out
}
