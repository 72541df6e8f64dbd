import CKernels
import Keras
#if canImport(Glibc)
import Glibc
#endif

/// keras-bench: kernel figures (--kernels) against this machine's FMA peak,
/// written as a table and optionally as JSON (--json FILE).
let usage = """
usage: keras-bench --kernels [--threads N] [--quick] [--json FILE] [--markdown FILE]
"""

var args = Array(CommandLine.arguments.dropFirst())
func take(_ flag: String) -> String? {
    guard let i = args.firstIndex(of: flag) else { return nil }
    guard i + 1 < args.count else { fputs("keras-bench: \(flag) needs a value\n", stderr); exit(2) }
    let v = args[i + 1]
    args.removeSubrange(i...(i + 1))
    return v
}
let jsonPath = take("--json")
let markdownPath = take("--markdown")
let threadArg = take("--threads")
let kernels = args.contains("--kernels")
let quick = args.contains("--quick")
args.removeAll { $0 == "--kernels" || $0 == "--quick" }
guard args.isEmpty else { fputs("keras-bench: unknown arguments \(args)\n\(usage)\n", stderr); exit(2) }
var threadCounts = [1, Int(ck_threads_get())]
if let t = threadArg {
    guard let n = Int(t), n >= 1, n <= Int(ck_threads_max()) else {
        fputs("keras-bench: --threads must be between 1 and \(ck_threads_max()), got '\(t)'\n", stderr)
        exit(2)
    }
    threadCounts = [n]
}
threadCounts = Array(Set(threadCounts)).sorted()
guard kernels else { fputs(usage + "\n(the model suite arrives with the benchmark-runner issue)\n", stderr); exit(2) }
let records = runKernelSuite(threadCounts: threadCounts, quick: quick)
if let path = markdownPath {
    do { try writeFileAtomically(path, markdownTable(records, command: "swift run -c release keras-bench " + CommandLine.arguments.dropFirst().joined(separator: " "))) } catch {
        fputs("keras-bench: \(error)\n", stderr)
        exit(1)
    }
}
if let path = jsonPath {
    do { try writeFileAtomically(path, JSON.array(records.map(\.json)).serialized(indent: 1) + "\n") } catch {
        fputs("keras-bench: \(error)\n", stderr)
        exit(1)
    }
}
