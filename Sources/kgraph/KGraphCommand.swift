import CKernels
import Foundation
import Keras
import KerasIR
import KerasRuntime

/// `kgraph`: read, transform and compile graph files in the dump notation.
/// Every error is a message on stderr and a non-zero exit, never a trap.
enum KGraphCommand {
    static let usage = """
    usage: kgraph <command> [options]

      dump FILE                 parse, verify and print a graph (FILE may be -)
      dump MODEL [--train] [--batch N] [--after PASS|all] [--format text|dot|json]
                                a Keras model's step graph (inference, or the training
                                step with --train), symbolic or at batch size N, before
                                the passes or after them; dot draws fusion groups as
                                clusters
      plan MODEL [--train] [--batch N] [--json FILE] [--svg FILE]
                                compile a Keras model's step; print its kernels, the
                                memory plan and the arena against its bounds; --svg
                                draws the arena over time
                                MODEL: mlp, mnist_cnn, cifar_cnn, imdb_lstm, or a
                                model .json, .keras or .h5 file
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
            case "dump" where isModel(rest.first):
                try dumpModel(rest)
            case "plan" where isModel(rest.first):
                try planModel(rest)
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

    // MARK: Keras models

    /// A benchmark model's name, a model file, or a bare word that is no file
    /// (taken as a model name, so a misspelt one is reported as such).
    static func isModel(_ arg: String?) -> Bool {
        guard let arg else { return false }
        let bareWord = !arg.contains(".") && !arg.contains("/") && arg != "-" && !arg.hasPrefix("-")
            && !FileManager.default.fileExists(atPath: arg)
        return BenchmarkModel.suite.contains { $0.name == arg } || [".json", ".keras", ".h5"].contains { arg.hasSuffix($0) } || bareWord
    }

    /// The model an argument names, with a batch of sample data for its training step.
    static func model(_ name: String, batch: Int?) throws -> (Model, x: Tensor?, y: Tensor?) {
        do {
            if let spec = BenchmarkModel.suite.first(where: { $0.name == name }) {
                RandomSeed.set(1234)
                let m = try spec.build()
                var rng = SplitMix64(seed: 42)
                let (x, y) = try spec.data(batch ?? spec.batchSize, &rng)
                return (m, x, y)
            }
            guard [".json", ".keras", ".h5"].contains(where: { name.hasSuffix($0) }) else {
                throw Failure(message: "unknown model '\(name)' (benchmark models: \(BenchmarkModel.suite.map(\.name).joined(separator: ", ")); or a model .json, .keras or .h5 file)")
            }
            let m: Model
            if name.hasSuffix(".json") {
                guard let bytes = try MemoryLimit.readFile(name) else { throw Failure(message: "\(name): cannot read the file") }
                m = try modelFromJSON(String(decoding: bytes, as: UTF8.self))
            } else {
                m = try loadModel(from: name)
            }
            return (m, nil, nil)
        } catch let e as KerasError { throw Failure(message: e.message) }
    }

    /// Flags without values (--train) and options with values.
    static func modelOptions(_ args: [String], allowed: Set<String>) throws -> (train: Bool, [String: String]) {
        let train = args.contains("--train")
        return (train, try options(args.filter { $0 != "--train" }, allowed: allowed))
    }

    static func dumpModel(_ args: [String]) throws {
        let (train, opts) = try modelOptions(Array(args.dropFirst()), allowed: ["--after", "--format", "--batch"])
        let format = opts["--format"] ?? "text"
        guard ["text", "dot", "json"].contains(format) else { throw Failure(message: "--format must be text, dot or json, got '\(format)'") }
        let batch = try opts["--batch"].map { try positiveInt($0, "--batch") }
        let (m, _, _) = try model(args[0], batch: nil)
        let after = opts["--after"].map { $0.split(separator: ",").map(String.init) }
        do {
            if format == "text" { print(try m.dumpGraph(training: train, batchSize: batch, after: after), terminator: ""); return }
            // dot and json draw one graph: before the passes, or after all of them with --after.
            var g = try m.stepGraph(training: train, batchSize: batch)
            if after != nil {
                var pipeline = PassPipeline.standard()
                pipeline.dumpAfter = []
                try pipeline.run(&g)
            }
            print(format == "dot" ? GraphFormats.dot(g) : GraphFormats.json(g), terminator: "")
        } catch let e as KerasError {  // IRError too: KerasError is its alias
            throw Failure(message: e.message)
        }
    }

    static func planModel(_ args: [String]) throws {
        let (train, opts) = try modelOptions(Array(args.dropFirst()), allowed: ["--batch", "--json", "--svg"])
        let batch = try opts["--batch"].map { try positiveInt($0, "--batch") }
        let (m, x, y) = try model(args[0], batch: batch)
        let plan: ExecutionPlan
        do {
            if train {
                guard m.isCompiled else { throw Failure(message: "\(args[0]): the model is not compiled; --train needs a compiled model (a benchmark model, or a file saved compiled)") }
                let n = batch ?? x?.shape.first ?? 32
                let xs = try x.map { [$0] } ?? m.inputs.map { try Tensor(zeros: TensorType($0.dtype, [n] + $0.shape.dropFirst().map { $0 ?? 1 })) }
                let ys = try y.map { [$0] } ?? m.outputs.map { try Tensor(zeros: .f32([n] + $0.shape.dropFirst().map { $0 ?? 1 })) }
                plan = try m.trainingPlan(x: xs, y: ys)
            } else {
                plan = try m.predictionPlan(batchSize: batch ?? x?.shape.first ?? 32)
            }
        } catch let e as KerasError { throw Failure(message: e.message) }
        for r in plan.passLog { print("// \(r)") }
        print(plan.listing)
        let memory = plan.memory
        print("kernels: \(plan.steps.count); arena \(memory.arenaBytes) B, naive sum \(memory.unsharedBytes) B, live lower bound \(memory.liveLowerBound) B; feeds \(memory.feedBytes) B")
        if let path = opts["--svg"] {
            let svg = memory.svg(steps: plan.graph.nodes.count, title: "\(args[0]) \(train ? "training" : "inference") step")
            do { try writeFileAtomically(path, svg) } catch { throw Failure(message: "\(path): \(error)") }
        }
        if let path = opts["--json"] {
            let kernels: [JSON] = plan.steps.map { s in
                let n = plan.graph.nodes[s.node]
                let def = plan.registry[n.op]
                let cost = def?.cost(n.inputs.map { plan.graph.type(of: $0) }, n.type, n.attrs)
                return ["name": .string(s.kernel.name), "op": .string(n.op), "layer": n.layer.map { JSON.string($0) } ?? .null,
                        "fused_ops": .array((def?.sourceOps(n.attrs) ?? [n.op]).map { JSON.string($0) }),
                        "kernel_id": JSON(s.kernel.kernel), "operands": .array(s.kernel.operands.map { JSON.string($0.description) }),
                        "params_bytes": JSON(s.kernel.params.count), "workspace_bytes": JSON(s.kernel.workspaceBytes),
                        "flops": JSON(cost?.flops ?? 0), "bytes": JSON(cost?.bytes ?? 0)]
            }
            let doc: JSON = ["model": .string(args[0]), "training": .bool(train), "kernels": .array(kernels),
                             "arena_bytes": JSON(memory.arenaBytes), "naive_bytes": JSON(memory.unsharedBytes),
                             "lower_bound_bytes": JSON(memory.liveLowerBound), "feed_bytes": JSON(memory.feedBytes)]
            do { try writeFileAtomically(path, doc.serialized(indent: 1) + "\n") } catch { throw Failure(message: "\(path): \(error)") }
        }
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
