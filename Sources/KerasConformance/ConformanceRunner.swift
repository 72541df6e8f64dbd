import Keras
import KerasIR
#if canImport(Glibc)
import Glibc
#endif

/// Runs every case under a folder in the format of the conformance README
/// and reports PASS / FAIL / SKIP per case and a closing count.
public struct ConformanceRunner {
    public var root: String
    public var filter: String?
    public var tolerance: Float = 1e-4
    /// Training runs compare at this tolerance (the README allows 1e-3 for blocked products).
    public var trainingTolerance: Float = 1e-3

    public init(root: String, filter: String? = nil) {
        self.root = root
        self.filter = filter
    }

    public struct Report {
        public var lines: [String] = []
        public var passed = 0, failed = 0, skipped = 0
        public var results: [String: CaseResult] = [:]
        public var summary: String { "\(passed) passed, \(failed) failed, \(skipped) skipped" }
    }

    /// Case folders (relative paths) in index.json order, or found by walking two levels.
    public func casePaths() throws -> [String] {
        if fileExists(root + "/index.json") {
            let index = try readJSON(root + "/index.json")
            guard let cases = index["cases"]?.arrayValue else { throw KerasError("\(root)/index.json: needs a list 'cases'") }
            return try cases.enumerated().map { k, c in
                guard let p = c["path"]?.stringValue, !p.isEmpty, !p.hasPrefix("/"), !p.split(separator: "/").contains("..") else {
                    throw KerasError("\(root)/index.json: cases[\(k)] needs a 'path' string inside the folder, got \(abbreviated(c.serialized(), limit: 120))")
                }
                return p
            }
        }
        var paths: [String] = []
        for family in listDirectory(root).sorted() {
            for c in listDirectory(root + "/" + family).sorted() where fileExists(root + "/" + family + "/" + c + "/case.json") {
                paths.append(family + "/" + c)
            }
        }
        if paths.isEmpty { throw KerasError("\(root): no conformance cases (no index.json and no */*/case.json)") }
        return paths
    }

    public func run(progress: (String) -> Void = { _ in }) throws -> Report {
        var report = Report()
        for path in try casePaths() where filter.map({ path.contains($0) }) ?? true {
            let (result, details) = runCaseWithDetails(path)
            report.results[path] = result
            let line: String
            switch result {
            case .pass: report.passed += 1; line = "PASS \(path)"
            case .fail(let why): report.failed += 1; line = "FAIL \(path) \(why)"
            case .skip(let why): report.skipped += 1; line = "SKIP \(path): \(why)"
            }
            report.lines.append(line)
            progress(line)
            for d in details { report.lines.append(d); progress(d) }
        }
        return report
    }

    public func runCase(_ path: String) -> CaseResult { runCaseWithDetails(path).0 }

    /// The case's result and, for model cases, one line per file checked.
    func runCaseWithDetails(_ path: String) -> (CaseResult, [String]) {
        let dir = root + "/" + path
        var details: [String] = []
        do {
            Naming.reset()
            let json = try readJSON(dir + "/case.json")
            if json["family"]?.stringValue == "models" || json["training"]?.objectValue != nil && json["predict"] != nil {
                var runner = ModelCaseRunner(dir: dir, json: json, tolerance: tolerance, trainingTolerance: trainingTolerance)
                defer { details = runner.fileLines }
                let r = try runner.run()
                return (r, runner.fileLines)
            }
            return (try LayerCaseRunner(dir: dir, json: json, tolerance: tolerance).run(), [])
        } catch {
            let msg = "\(error)"
            if msg.contains("unknown layer class") { return (.skip(msg.replacingOccurrences(of: "unknown layer class", with: "not implemented:")), details) }
            return (.fail("error: \(msg)"), details)
        }
    }
}

func listDirectory(_ path: String) -> [String] {
    guard let d = opendir(path) else { return [] }
    defer { closedir(d) }
    var out: [String] = []
    while let e = readdir(d) {
        let name = withUnsafePointer(to: e.pointee.d_name) { p in p.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
        if name != "." && name != ".." { out.append(name) }
    }
    return out
}

func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }
