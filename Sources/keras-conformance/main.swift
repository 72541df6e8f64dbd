import KerasConformance
#if canImport(Glibc)
import Glibc
#endif

// keras-conformance DIR [--filter TEXT]: one line per case, then "N passed, N failed, N skipped".
let usage = "usage: keras-conformance DIR [--filter TEXT]\n"
var args = Array(CommandLine.arguments.dropFirst())
if args.contains("-h") || args.contains("--help") {
    print(usage, terminator: "")
    exit(0)
}
var filter: String? = nil
if let i = args.firstIndex(of: "--filter") {
    guard i + 1 < args.count else { fputs("keras-conformance: --filter needs a value\n", stderr); exit(2) }
    filter = args[i + 1]
    args.removeSubrange(i...(i + 1))
}
guard args.count == 1, !args[0].hasPrefix("-") else {
    if let flag = args.first(where: { $0.hasPrefix("-") }) { fputs("keras-conformance: unknown option '\(flag)'\n", stderr) }
    fputs(usage, stderr)
    exit(2)
}
do {
    let report = try ConformanceRunner(root: args[0], filter: filter).run { line in
        print(line)
        fflush(stdout)
    }
    print(report.summary)
    exit(report.failed == 0 ? 0 : 1)
} catch {
    fputs("keras-conformance: \(error)\n", stderr)
    exit(2)
}
