import CKernels
import Foundation
import Keras
#if canImport(Glibc)
import Glibc
#endif

/// The model suite of keras-bench: Keras's four reference models
/// (`BenchmarkModel.suite`, shared with kgraph) with random data and fixed
/// seeds, timed through the public Keras API (trainOnBatch and predict), so
/// the figures include everything a user's step pays for.
typealias ModelSpec = BenchmarkModel

let modelSuite = BenchmarkModel.suite

/// One model's figures at one thread count.
struct ModelRecord {
    var model: String
    var threads: Int
    var batch: Int
    var status = "ok"
    var trainMs: (p10: Double, median: Double, p90: Double) = (0, 0, 0)
    var predictMs = 0.0
    var predict1Ms = 0.0
    var trainFlops = 0
    var gflops = 0.0
    var pctPeak = 0.0
    var compileMs = 0.0
    var arenaBytes = 0
    var peakRSS = 0
    var steps = 0
    /// --profile: every kernel call of the training step and of batch predict.
    var trainProfile: [ExecutionPlan.StepTime] = []
    var predictProfile: [ExecutionPlan.StepTime] = []

    var json: JSON {
        func r(_ v: Double, _ d: Double = 1000) -> JSON { JSON((v * d).rounded() / d) }
        var o: [(String, JSON)] = [("model", .string(model)), ("threads", JSON(threads)), ("batch_size", JSON(batch)),
                                   ("status", .string(status))]
        guard status == "ok" else { return .object(o) }
        o += [("steps", JSON(steps)), ("train_ms_median", r(trainMs.median)), ("train_ms_p10", r(trainMs.p10)),
              ("train_ms_p90", r(trainMs.p90)), ("predict_ms_median", r(predictMs)), ("predict1_ms_median", r(predict1Ms)),
              ("train_flops", JSON(trainFlops)), ("gflops", r(gflops, 10)), ("pct_peak", r(pctPeak, 10)),
              ("compile_ms", r(compileMs)), ("arena_bytes", JSON(arenaBytes)), ("peak_rss_bytes", JSON(peakRSS))]
        if !trainProfile.isEmpty {
            func rows(_ p: [ExecutionPlan.StepTime]) -> JSON {
                .array(p.map { t in
                    ["step": JSON(t.step), "op": .string(t.op), "kernel": .string(t.kernel), "layer": t.layer.map { JSON.string($0) } ?? .null,
                     "ms": r(t.seconds * 1e3, 1e6), "flops": JSON(t.flops), "bytes": JSON(t.bytes)]
                })
            }
            o.append(("profile", ["train": rows(trainProfile), "predict": rows(predictProfile)]))
        }
        return .object(o)
    }
}

/// Resets the kernel's peak-RSS mark for this process (Linux: writing 5 to
/// /proc/self/clear_refs), so each model's peak is its own.
func resetPeakRSS() {
    let fd = open("/proc/self/clear_refs", O_WRONLY)
    guard fd >= 0 else { return }
    _ = "5".withCString { write(fd, $0, 1) }
    close(fd)
}

/// Peak resident memory in bytes: VmHWM from /proc/self/status, else getrusage.
func peakRSSBytes() -> Int {
    if let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
       let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
       let kb = Int(line.split(separator: " ").dropFirst().first ?? "") {
        return kb * 1024
    }
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Int(u.ru_maxrss) * 1024
}

/// Times one model at one thread count: `steps` training steps after three
/// warm-up steps, then batch and single-sample prediction.
func benchModel(_ spec: ModelSpec, threads: Int, steps: Int, peak: Double) -> ModelRecord {
    var rec = ModelRecord(model: spec.name, threads: threads, batch: spec.batchSize)
    _ = ck_threads_set(Int32(threads))
    resetPeakRSS()
    RandomSeed.set(1234)
    var rng = SplitMix64(seed: 42)
    do {
        let model = try spec.build()
        let (x, y) = try spec.data(spec.batchSize, &rng)
        let t0 = now()
        let plan = try model.trainingPlan(x: [x], y: [y])
        rec.compileMs = (now() - t0) * 1e3
        rec.arenaBytes = plan.memory.arenaBytes
        rec.trainFlops = plan.cost.flops
        for _ in 0..<3 { _ = try model.trainOnBatch(x, y) }
        var times: [Double] = []
        for _ in 0..<steps {
            let s = now()
            _ = try model.trainOnBatch(x, y)
            times.append(now() - s)
        }
        times.sort()
        func pick(_ q: Double) -> Double { times[min(times.count - 1, Int(q * Double(times.count - 1) + 0.5))] * 1e3 }
        rec.steps = steps
        rec.trainMs = (pick(0.1), pick(0.5), pick(0.9))
        rec.gflops = Double(rec.trainFlops) / (rec.trainMs.median * 1e-3) / 1e9
        rec.pctPeak = 100 * rec.gflops / (peak * Double(threads))
        let reps = max(10, steps)
        rec.predictMs = try medianTime(reps: reps) { _ = try model.predict(x, batchSize: spec.batchSize) } * 1e3
        let one = try x.gatherRows([0])
        rec.predict1Ms = try medianTime(reps: reps) { _ = try model.predict(one, batchSize: 1) } * 1e3
        rec.peakRSS = peakRSSBytes()
        if profileKernels {
            rec.trainProfile = try plan.profile(runs: steps)
            printProfile(rec.trainProfile, what: "train", model: spec.name, threads: threads, stepMs: rec.trainMs.median, peak: peak)
            rec.predictProfile = try model.predictionPlan(batchSize: spec.batchSize).profile(runs: reps)
            printProfile(rec.predictProfile, what: "predict", model: spec.name, threads: threads, stepMs: rec.predictMs, peak: peak)
        }
    } catch {
        rec.status = "error: \(error)"
    }
    return rec
}

/// Runs the suite (or one model) at each thread count, printing a line per run.
func runModelSuite(models: [ModelSpec], threadCounts: [Int], steps: Int) -> (records: [ModelRecord], peak: Double, isa: String) {
    let isa = ck_best_isa()
    let peak = measurePeak(isa, threads: 1)
    print("fma peak (\(isaName(isa)), 1 core): \(fmt(peak)) GFLOP/s")
    var records: [ModelRecord] = []
    for spec in models {
        for t in threadCounts {
            let r = benchModel(spec, threads: t, steps: steps, peak: peak)
            records.append(r)
            print(modelLine(r))
        }
    }
    return (records, peak, isaName(isa))
}

/// Every kernel call of a plan, slowest first: median time, share of the
/// kernels' total, GFLOP/s against the FMA peak of the threads used, GB/s;
/// then the time by layer, and how much of the measured step the kernels are.
func printProfile(_ times: [ExecutionPlan.StepTime], what: String, model: String, threads: Int, stepMs: Double, peak: Double) {
    let total = times.reduce(0) { $0 + $1.seconds } * 1e3
    print("profile \(model) \(what) threads=\(threads): kernels \(fmt(total, 3)) ms of a \(fmt(stepMs, 3)) ms step, \(times.count) calls")
    print("  " + ["ms", "share", "GFLOP/s", "% peak", "GB/s", "call"].joined(separator: "\t"))
    for t in times {
        let gflops = t.seconds > 0 ? Double(t.flops) / t.seconds / 1e9 : 0
        let gbs = t.seconds > 0 ? Double(t.bytes) / t.seconds / 1e9 : 0
        print("  " + [fmt(t.seconds * 1e3, 3), fmt(100 * t.seconds * 1e3 / max(total, 1e-12)) + "%", fmt(gflops), fmt(100 * gflops / (peak * Double(threads))),
                     fmt(gbs), "#\(t.step) \(t.op) -> \(t.kernel)" + (t.layer.map { "  # \($0)" } ?? "")].joined(separator: "\t"))
    }
    var byLayer: [String: Double] = [:]
    for t in times { byLayer[t.layer ?? "-", default: 0] += t.seconds * 1e3 }
    print("  by layer: " + byLayer.sorted { $0.value > $1.value }.map { "\($0.key) \(fmt($0.value, 3)) ms" }.joined(separator: ", "))
}

func modelLine(_ r: ModelRecord) -> String {
    guard r.status == "ok" else { return "\(r.model) threads=\(r.threads): \(r.status)" }
    return "\(r.model) threads=\(r.threads) batch=\(r.batch): train \(fmt(r.trainMs.median, 2)) ms (p10 \(fmt(r.trainMs.p10, 2)), p90 \(fmt(r.trainMs.p90, 2))), "
        + "\(fmt(r.gflops)) GFLOP/s = \(fmt(r.pctPeak))% of peak; predict batch \(fmt(r.predictMs, 2)) ms, one sample \(fmt(r.predict1Ms, 3)) ms; "
        + "compile \(fmt(r.compileMs)) ms; arena \(r.arenaBytes) B; peak RSS \(r.peakRSS / (1 << 20)) MiB"
}

func modelMarkdownTable(_ records: [ModelRecord], peak: Double, isa: String, command: String) -> String {
    var out = "Produced by `\(command)` (FMA peak \(fmt(peak)) GFLOP/s per core, \(isa)).\n\n"
    out += "| model | batch | threads | train ms median (p10–p90) | GFLOP/s | % of peak | predict batch ms | predict 1 ms | compile ms | arena MiB | peak RSS MiB |\n"
    out += "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n"
    for r in records {
        guard r.status == "ok" else {
            out += "| \(r.model) | \(r.batch) | \(r.threads) | \(r.status) | | | | | | | |\n"
            continue
        }
        out += "| \(r.model) | \(r.batch) | \(r.threads) | \(fmt(r.trainMs.median, 2)) (\(fmt(r.trainMs.p10, 2))–\(fmt(r.trainMs.p90, 2))) | \(fmt(r.gflops)) | \(fmt(r.pctPeak)) | "
            + "\(fmt(r.predictMs, 2)) | \(fmt(r.predict1Ms, 3)) | \(fmt(r.compileMs)) | \(fmt(Double(r.arenaBytes) / 1048576, 1)) | \(fmt(Double(r.peakRSS) / 1048576, 0)) |\n"
    }
    return out
}
