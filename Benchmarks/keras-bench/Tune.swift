import CKernels
import Keras
#if canImport(Glibc)
import Glibc
#endif

/// `keras-bench --tune`: searches the GEMM's cache blocking (MC, KC, NC) on
/// this machine and prints what it would choose next to what the defaults
/// (derived from the caches, or KERAS_GEMM_BLOCKING) choose. A coordinate
/// search: each parameter in turn over its candidates with the others held,
/// twice; the score is the geometric mean of GFLOP/s over sgemm 1024³ and the
/// MLP shapes. The winner and the defaults are then measured alternately three
/// times, so the comparison is not one noisy sample. Nothing is saved: the
/// result is a KERAS_GEMM_BLOCKING line to try.

/// This core, as ck_cpu_describe reads it: one line for notes and tables.
func cpuLine() -> String {
    var c = ck_cpu_info()
    ck_cpu_describe(&c)
    let vendor = withUnsafeBytes(of: c.vendor) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    func kib(_ b: Int64) -> String { b > 0 ? "\(b / 1024) KiB" : "?" }
    return "\(vendor) family \(c.family) model \(c.model); L1d \(kib(c.l1d_bytes)), L2 \(kib(c.l2_bytes)) (shared by \(c.l2_shared_by)), "
        + "L3 \(kib(c.l3_bytes)) (shared by \(c.l3_shared_by))"
}

func blockingText(_ b: ck_gemm_blocking) -> String { "MC \(b.mc) KC \(b.kc) NC \(b.nc)" }

struct TuneResult {
    var isa: String
    var threads: Int
    var defaults: ck_gemm_blocking, chosen: ck_gemm_blocking
    var defaultScore: Double, chosenScore: Double
    var json: JSON {
        func obj(_ b: ck_gemm_blocking) -> JSON { .object([("mc", JSON(Int(b.mc))), ("kc", JSON(Int(b.kc))), ("nc", JSON(Int(b.nc)))]) }
        return .object([("isa", .string(isa)), ("threads", JSON(threads)), ("defaults", obj(defaults)), ("chosen", obj(chosen)),
                        ("default_gflops", JSON((defaultScore * 10).rounded() / 10)), ("chosen_gflops", JSON((chosenScore * 10).rounded() / 10))])
    }
}

func runTune(threadCounts: [Int]) -> [TuneResult] {
    print("cpu: \(cpuLine())")
    var isas: [ck_isa] = []
    if ck_cpu_has_avx2_fma() != 0 { isas.append(CK_ISA_AVX2) }
    if ck_cpu_has_avx512f() != 0 { isas.append(CK_ISA_AVX512) }
    let shapes = [GemmCase(name: "sgemm_square", m: 1024, n: 1024, k: 1024, ta: false, tb: false),
                  GemmCase(name: "sgemm_mlp", m: 128, n: 512, k: 784, ta: false, tb: false),
                  GemmCase(name: "sgemm_mlp", m: 128, n: 512, k: 784, ta: true, tb: false),
                  GemmCase(name: "sgemm_mlp", m: 128, n: 512, k: 512, ta: false, tb: true)]
    var results: [TuneResult] = []
    for isa in isas {
        let mr: Int32 = isa == CK_ISA_AVX512 ? 14 : 6, nr: Int32 = isa == CK_ISA_AVX512 ? 32 : 16
        let kcs: [Int32] = [128, 192, 256, 320, 384, 512, 768, 1024]
        let mcs: [Int32] = [2, 4, 8, 12, 18, 24, 36, 48, 72].map { $0 * mr }.filter { $0 <= 1020 }
        let ncs: [Int32] = [512, 1024, 2048, 4096, 8192].filter { $0 % nr == 0 }
        let defaults = ck_gemm_get_blocking(isa)
        defer { _ = ck_gemm_set_blocking(isa, defaults) }
        for threads in threadCounts {
            func score(_ b: ck_gemm_blocking) -> Double {
                guard ck_gemm_set_blocking(isa, b) == 0 else { return 0 }
                let logs = shapes.map { log(benchGemm($0, isa: isa, threads: threads, peak: 1).gflops) }
                return exp(logs.reduce(0, +) / Double(logs.count))
            }
            var best = defaults, bestScore = score(defaults)
            print("\(isaName(isa)) threads=\(threads): defaults \(blockingText(defaults)): \(fmt(bestScore)) GFLOP/s (geometric mean)")
            for _ in 0..<2 {
                for axis in 0..<3 {
                    for v in [mcs, kcs, ncs][axis] {
                        var b = best
                        switch axis { case 0: b.mc = v; case 1: b.kc = v; default: b.nc = v }
                        if b.mc == best.mc && b.kc == best.kc && b.nc == best.nc { continue }
                        let s = score(b)
                        if s > bestScore { best = b; bestScore = s }
                    }
                }
            }
            // The winner against the defaults, alternately, so drift hits both.
            var d: [Double] = [], c: [Double] = []
            for _ in 0..<3 { d.append(score(defaults)); c.append(score(best)) }
            let dm = d.sorted()[1], cm = c.sorted()[1]
            print("\(isaName(isa)) threads=\(threads): chosen \(blockingText(best)): \(fmt(cm)) GFLOP/s against the defaults' \(fmt(dm)) "
                  + "(median of 3 alternated; \(fmt(100 * (cm / dm - 1)))%)")
            print("  try: KERAS_GEMM_BLOCKING=\(best.mc),\(best.kc),\(best.nc)")
            results.append(TuneResult(isa: isaName(isa), threads: threads, defaults: defaults, chosen: best, defaultScore: dm, chosenScore: cm))
            _ = ck_gemm_set_blocking(isa, defaults)
        }
    }
    return results
}
