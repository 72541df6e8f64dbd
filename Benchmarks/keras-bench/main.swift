import CKernels
import Keras
import KerasRuntime
#if canImport(Glibc)
import Glibc
#endif

/// keras-bench: the model suite (default) or the kernel figures (--kernels),
/// against this machine's FMA peak, as a table and optionally as JSON.
let usage = """
usage: keras-bench [--model NAME] [--threads N] [--steps N] [--profile] [--json FILE] [--markdown FILE]
                   [--svg FILE [--peers FILE]]
       keras-bench --kernels [--threads N] [--quick] [--json FILE] [--markdown FILE]
       keras-bench --tune [--threads N] [--json FILE]
       mpirun -np N keras-bench --distributed [--model NAME] [--steps N] [--json FILE] [--markdown FILE]

  models: \(modelSuite.map(\.name).joined(separator: ", ")) (default: all)
  --threads N   run at N threads only (default: 1 and all cores)
  --steps N     timed training steps after warm-up (default 30, at least 1)
  --profile     also time every kernel call of the training step and of batch
                predict: median ms, share, GFLOP/s, % of peak, GB/s (and in --json)
  --svg FILE    the model table as a bar chart; --peers FILE adds the peers'
                times (Benchmarks/peers/peers.py --json output)
  --tune        search the GEMM's cache blocking (MC, KC, NC) on this machine
                and print the choice against the defaults derived from its caches
  --distributed under mpirun: each model's training step with DataParallel over
                the job (one thread and the suite's batch per rank) against
                the same step in one process: allreduce time and efficiency
"""

func usageError(_ message: String) -> Never {
    fputs("keras-bench: \(message)\n\(usage)\n", stderr)
    exit(2)
}

var args = Array(CommandLine.arguments.dropFirst())
if args.contains("-h") || args.contains("--help") { print(usage); exit(0) }
func take(_ flag: String) -> String? {
    guard let i = args.firstIndex(of: flag) else { return nil }
    guard i + 1 < args.count else { usageError("\(flag) needs a value") }
    let v = args[i + 1]
    args.removeSubrange(i...(i + 1))
    return v
}
let jsonPath = take("--json")
let markdownPath = take("--markdown")
let threadArg = take("--threads")
let modelArg = take("--model")
let stepsArg = take("--steps")
let svgPath = take("--svg")
let peersPath = take("--peers")
let kernels = args.contains("--kernels")
let quick = args.contains("--quick")
let profileKernels = args.contains("--profile")
let tune = args.contains("--tune")
let distributedBench = args.contains("--distributed")
args.removeAll { $0 == "--kernels" || $0 == "--quick" || $0 == "--profile" || $0 == "--tune" || $0 == "--distributed" }
guard args.isEmpty else { usageError("unknown arguments \(args)") }
var threadCounts = [1, Int(ck_threads_get())]
if let t = threadArg {
    guard let n = Int(t), n >= 1, n <= Int(ck_threads_max()) else {
        usageError("--threads must be between 1 and \(ck_threads_max()), got '\(t)'")
    }
    threadCounts = [n]
}
threadCounts = Array(Set(threadCounts)).sorted()
let command = "swift run -c release keras-bench " + CommandLine.arguments.dropFirst().joined(separator: " ")

func writeOutputs(markdown: () -> String, json: () -> JSON) {
    do {
        if let path = markdownPath { try writeFileAtomically(path, markdown()) }
        if let path = jsonPath { try writeFileAtomically(path, json().serialized(indent: 1) + "\n") }
    } catch {
        fputs("keras-bench: \(error)\n", stderr)
        exit(1)
    }
}

/// --steps (default 30, at least 1) for the model runs.
func stepsOption() -> Int {
    guard let s = stepsArg else { return 30 }
    guard let n = Int(s), n >= 1 else { usageError("--steps must be a positive integer, got '\(s)'") }
    return n
}

/// --model's one model, else `default`.
func modelsOption(default all: [ModelSpec]) -> [ModelSpec] {
    guard let name = modelArg else { return all }
    guard let spec = modelSuite.first(where: { $0.name == name }) else {
        usageError("unknown model '\(name)'; the suite has \(modelSuite.map(\.name).joined(separator: ", "))")
    }
    return [spec]
}

if distributedBench {
    guard !kernels, !tune, !profileKernels, threadArg == nil, svgPath == nil, peersPath == nil else {
        usageError("--distributed takes only --model, --steps, --json and --markdown (one thread per rank)")
    }
    let steps = stepsOption()
    let models = modelsOption(default: modelSuite.filter { $0.name == "mlp" || $0.name == "mnist_cnn" })
    do {
        let records = try runDistributedBench(models: models, steps: steps)
        if try MPICommunicator.world().rank == 0 {
            let table = distributedMarkdownTable(records, command: command.replacingOccurrences(of: "swift run -c release ", with: ""))
            print("\n" + table)
            writeOutputs(markdown: { table }, json: { .array(records.map(\.json)) })
        }
    } catch {
        fputs("keras-bench: \(error)\n", stderr)
        exit(2)
    }
} else if tune {
    guard !kernels, modelArg == nil, stepsArg == nil, svgPath == nil, peersPath == nil, markdownPath == nil else {
        usageError("--tune takes only --threads and --json")
    }
    let results = runTune(threadCounts: threadCounts)
    writeOutputs(markdown: { "" }, json: { .object([("cpu", .string(cpuLine())), ("tune", .array(results.map(\.json)))]) })
} else if kernels {
    guard modelArg == nil, stepsArg == nil, svgPath == nil, peersPath == nil else {
        usageError("--model, --steps, --svg and --peers belong to the model suite, not --kernels")
    }
    let records = runKernelSuite(threadCounts: threadCounts, quick: quick)
    writeOutputs(markdown: { markdownTable(records, command: command) }, json: { .array(records.map(\.json)) })
} else {
    let steps = stepsOption()
    let models = modelsOption(default: modelSuite)
    if peersPath != nil && svgPath == nil { usageError("--peers goes with --svg") }
    // Read the peers before the (long) run, so a bad file fails fast.
    var peerTimes: [PeerTime] = []
    if let p = peersPath {
        do { peerTimes = try readPeerTimes(p) } catch { fputs("keras-bench: \(error)\n", stderr); exit(1) }
    }
    let run = runModelSuite(models: models, threadCounts: threadCounts, steps: steps)
    if let path = svgPath {
        do {
            try writeFileAtomically(path, modelChartSVG(run.records, peers: peerTimes, title: "Training step, keras-bench (\(run.isa))"))
        } catch { fputs("keras-bench: \(error)\n", stderr); exit(1) }
    }
    let table = modelMarkdownTable(run.records, peak: run.peak, isa: run.isa, command: command)
    print("\n" + table)
    writeOutputs(markdown: { table }, json: { .array(run.records.map(\.json)) })
}
