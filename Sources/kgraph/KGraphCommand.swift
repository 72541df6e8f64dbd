import CKernels
import Foundation
import KerasIR
import KerasRuntime

/// `kgraph`: read, transform and compile graph files in the dump notation.
/// Every error is a message on stderr and a non-zero exit, never a trap.
enum KGraphCommand {
    static let usage = """
    usage: kgraph <command> [options]

      dump FILE                 parse, verify and print a graph (FILE may be -)
      passes FILE               run the standard pipeline; print its log and the result
      grad FILE --of V --wrt V[,V...]
                                append gradients of scalar %V; print the graph
      plan FILE --batch N       compile at batch size N; print kernels and the memory plan
      example [--steps N] [--batch N]
                                build an MLP (784-64-10, softmax cross-entropy, SGD)
                                against the IR, show every stage, and train it on
                                synthetic data

    Environment: KERAS_DUMP=all|PASS,...  KERAS_DISABLE_PASSES=PASS,...  KERAS_ISA=ref|avx2|avx512
                 KERAS_MEMORY_LIMIT=BYTES[K|M|G] (default: physical memory)
    """

    struct Failure: Error { var message: String }

    static func run(_ args: [String]) -> Int32 {
        do {
            guard let command = args.first else { throw Failure(message: usage) }
            let rest = Array(args.dropFirst())
            switch command {
            case "dump":
                let (g, _) = try load(rest)
                print(g, terminator: "")
            case "passes":
                var (g, _) = try load(rest)
                var pipeline = PassPipeline.standard()
                try pipeline.run(&g)
                for r in pipeline.log { print("// \(r)") }
                print(g, terminator: "")
            case "grad":
                var (g, opts) = try load(rest)
                guard let of = opts["--of"], let wrt = opts["--wrt"] else { throw Failure(message: "grad needs --of VALUE and --wrt VALUE[,VALUE...]") }
                let y = try lookup(g, of)
                let xs = try wrt.split(separator: ",").map { try lookup(g, String($0)) }
                let grads = try Autodiff.gradients(of: y, wrt: xs, in: &g)
                g.outputs += grads
                print(g, terminator: "")
            case "plan":
                let (g, opts) = try load(rest)
                guard let raw = opts["--batch"], let batch = Int(raw) else { throw Failure(message: "plan needs --batch N") }
                guard batch > 0 else { throw Failure(message: "--batch must be positive, got \(batch)") }
                let plan = try ExecutionPlan(g, batchSize: batch, store: ParameterStore())
                for r in plan.passLog { print("// \(r)") }
                print(plan.graph, terminator: "")
                print(plan.listing)
            case "example":
                let opts = try options(rest, allowed: ["--steps", "--batch"])
                let steps = try positiveInt(opts["--steps"] ?? "200", "--steps")
                let batch = try positiveInt(opts["--batch"] ?? "64", "--batch")
                try Example.run(steps: steps, batch: batch)
            case "-h", "--help", "help":
                print(usage)
            default:
                throw Failure(message: "unknown command '\(command)'\n\n\(usage)")
            }
            return 0
        } catch let e as Failure {
            FileHandle.standardError.write(Data(("kgraph: " + e.message + "\n").utf8))
        } catch let e as ParseError {
            FileHandle.standardError.write(Data(("kgraph: " + e.description + "\n").utf8))
        } catch {
            FileHandle.standardError.write(Data("kgraph: error: \(error)\n".utf8))
        }
        return 1
    }

    static func positiveInt(_ s: String, _ flag: String) throws -> Int {
        guard let v = Int(s), v > 0 else { throw Failure(message: "\(flag) must be a positive integer, got '\(s)'") }
        return v
    }

    static func lookup(_ g: Graph, _ name: String) throws -> Value {
        let n = name.hasPrefix("%") ? String(name.dropFirst()) : name
        if let v = g.value(named: n) { return v }
        let printer = GraphPrinter(g)
        if let i = printer.names.firstIndex(of: n) { return Value(i) }
        throw Failure(message: "no value %\(n) in @\(g.name)")
    }

    static func options(_ args: [String], allowed: Set<String>) throws -> [String: String] {
        var out: [String: String] = [:]
        var i = 0
        while i < args.count {
            let a = args[i]
            guard allowed.contains(a) else { throw Failure(message: "unknown option '\(a)'") }
            guard i + 1 < args.count else { throw Failure(message: "\(a) needs a value") }
            out[a] = args[i + 1]
            i += 2
        }
        return out
    }

    /// Reads FILE (first argument) and parses it; errors read FILE:LINE:COL: message.
    static func load(_ args: [String]) throws -> (Graph, [String: String]) {
        guard let path = args.first else { throw Failure(message: "missing graph FILE") }
        let opts = try options(Array(args.dropFirst()), allowed: ["--of", "--wrt", "--batch"])
        let text: String
        let bytes: [UInt8]?
        do { bytes = try MemoryLimit.readFile(path) } catch let e as IRError { throw Failure(message: e.message) }
        guard let bytes else { throw Failure(message: "\(path): cannot read the file") }
        guard let s = String(validating: bytes, as: UTF8.self) else { throw Failure(message: "\(path): not UTF-8 text") }
        text = s
        do {
            let g = try GraphParser.parse(text)
            do { try Verifier.verify(g) } catch let e as IRError { throw Failure(message: "\(path): \(e.message)") }
            return (g, opts)
        } catch let e as ParseError {
            throw Failure(message: "\(path):\(e.line):\(e.column): error: \(e.message)")
        }
    }
}
