import Keras
import KerasIR
import KerasRuntime

/// Runs a whole-model case: builds the model from its JSON, loads the
/// initial weights, compares predictions, then replays the training run:
/// one step from the initial weights (loss and weights), and the full fit
/// (per-epoch losses within 1e-4 relative, final weights within the
/// training tolerance).
struct ModelCaseRunner {
    let dir: String
    let json: JSON
    let tolerance: Float
    let trainingTolerance: Float
    /// One line per file checked ("  ok model.keras", "  FAIL model.legacy.h5: ...").
    var fileLines: [String] = []

    func load(_ list: JSON?) throws -> [Tensor] {
        try (list?.arrayValue ?? []).map { try TensorFile($0).load(from: dir) }
    }

    func buildModel() throws -> Model {
        guard let ser = json["keras_serialized"] else { throw KerasError("model case has no keras_serialized") }
        guard let m = try LayerRegistry.deserialize(ser) as? Model else { throw KerasError("keras_serialized is not a model") }
        try m.setWeights(try load(json["weights"]))
        return m
    }

    /// Runs one file's check (its mismatches, or an error): an "ok" or
    /// "FAIL" line for the report, and the failure for the case if any.
    func checkFile(_ label: String, _ body: () throws -> [String]) -> (line: String, failure: String?) {
        var bad: [String]
        do { bad = try body() } catch { bad = ["\(error)"] }
        if bad.isEmpty { return ("  ok \(label)", nil) }
        return ("  FAIL \(label): \(bad.joined(separator: "; "))", "\(label): \(bad.joined(separator: "; "))")
    }

    func text(_ path: String) throws -> String {
        guard let b = try readBinaryFile(path) else { throw KerasError("\(path): cannot open") }
        return String(decoding: b, as: UTF8.self)
    }

    mutating func run() throws -> CaseResult {
        let model: Model
        do { model = try buildModel() } catch let e as KerasError where e.message.hasPrefix("unknown layer class") {
            let missing = e.message.split(separator: "'").dropFirst().first.map(String.init) ?? "a layer"
            return .skip("\(missing) not implemented")
        }
        var failures: [String] = []

        // Predictions on the initial weights, from the case's arrays and from each file Keras wrote.
        if let p = json["predict"] {
            let xs = try load(p["inputs"]), want = try load(p["outputs"])
            let files = json["files"]
            func check(_ label: String, _ build: () throws -> Model) {
                let r = checkFile(label) {
                    Naming.reset()
                    let got = try build().predict(xs, batchSize: max(xs.first?.shape.first ?? 1, 1))
                    return zip(got, want).enumerated().compactMap { k, gw in compare(gw.0, gw.1, tol: tolerance, what: "predict_output_\(k)") }
                }
                fileLines.append(r.line)
                if let f = r.failure { failures.append(f) }
            }
            if let j = files?["model_json"]?.stringValue, let w = files?["weights_h5"]?.stringValue {
                check("\(j) + \(w)") {
                    let m = try modelFromJSON(try text(dir + "/" + j))
                    try m.loadWeights(from: dir + "/" + w)
                    return m
                }
            }
            if let j = files?["model_json"]?.stringValue, let w = files?["legacy_weights_h5"]?.stringValue {
                check("\(j) + \(w)") {
                    let m = try modelFromJSON(try text(dir + "/" + j))
                    try m.loadWeights(from: dir + "/" + w)
                    return m
                }
            }
            if let k = files?["keras_archive"]?.stringValue {
                check(k) { try loadModel(from: dir + "/" + k) }
            }
        }
        if let p = json["predict"] {
            let xs = try load(p["inputs"])
            let want = try load(p["outputs"])
            let got = try model.predict(xs, batchSize: max(xs.first?.shape.first ?? 1, 1))
            for (k, (g, w)) in zip(got, want).enumerated() {
                if let f = compare(g, w, tol: tolerance, what: "predict_output_\(k)") { failures.append(f) }
            }
        }

        guard let t = json["training"] else { return failures.isEmpty ? .pass : .fail(failures.joined(separator: "; ")) }
        guard let opt = t["optimizer"], let lossName = t["loss"]?.stringValue else { return .fail("training block lacks optimizer or loss") }
        let x = try load(t["x"]), y = try load(t["y"])
        guard let n = x.first?.shape.first, n > 0, !y.isEmpty else {
            return .fail("training: 'x' and 'y' must be non-empty lists of arrays with at least one sample")
        }
        let batch = try t.int("batch_size", default: 32), epochs = try t.int("epochs", default: 1)
        guard batch > 0 else { return .fail("training: batch_size must be positive, got \(batch)") }
        guard epochs >= 0 && epochs <= 10_000 else { return .fail("training: epochs must be in [0, 10000], got \(epochs)") }

        // One step from the initial weights.
        if let first = t["first_step"] {
            let m = try buildModel()
            try m.compile(optimizer: try Optimizers.get(opt), loss: lossName)
            let n = min(batch, n)
            let out = try m.trainOnBatch(x: try x.map { try $0.rows(0..<n) }, y: try y.map { try $0.rows(0..<n) })
            if let wantLoss = first["loss"]?.doubleValue, abs(Double(out[0]) - wantLoss) > 1e-4 * max(1, abs(wantLoss)) {
                failures.append("first step loss \(out[0]) != \(wantLoss)")
            }
            for (k, (g, w)) in zip(m.getWeights(), try load(first["weights"])).enumerated() {
                if let f = compare(g, w, tol: tolerance, what: "step1 weight \(k)") { failures.append(f) }
            }
        }

        // The whole run.
        let m = try buildModel()
        try m.compile(optimizer: try Optimizers.get(opt), loss: lossName)
        let history = try m.fit(x: x, y: y, batchSize: batch, epochs: epochs, verbose: 0, shuffle: t["shuffle"]?.boolValue ?? false)
        let losses = history.history["loss"] ?? []
        for (e, want) in (t["epoch_loss"]?.arrayValue ?? []).enumerated() {
            guard let w = want.doubleValue, e < losses.count else { failures.append("missing epoch \(e) loss"); continue }
            if abs(Double(losses[e]) - w) > 1e-4 * max(1, abs(w)) {
                failures.append("epoch \(e + 1) loss \(losses[e]) != \(w) (rel err \(abs(Double(losses[e]) - w) / abs(w)))")
            }
        }
        for (k, (g, w)) in zip(m.getWeights(), try load(t["final_weights"])).enumerated() {
            if let f = compare(g, w, tol: trainingTolerance, what: "final weight \(k)") { failures.append(f) }
        }

        // trained.keras: Keras's final weights and optimizer state; one more
        // epoch from it must land where one more uninterrupted epoch does.
        if let trained = json["files"]?["trained_keras_archive"]?.stringValue {
            let r = checkFile("\(trained) (resumed)") {
                Naming.reset()
                let r = try loadModel(from: dir + "/" + trained)
                var bad: [String] = []
                for (k, (g, w)) in zip(r.getWeights(), try load(t["final_weights"])).enumerated() {
                    if let f = compare(g, w, tol: tolerance, what: "weight \(k) as saved") { bad.append(f) }
                }
                let steps = (n + batch - 1) / batch * epochs
                if r.optimizer?.iterations != steps { bad.append("optimizer iterations \(r.optimizer?.iterations ?? -1) != \(steps)") }
                _ = try r.fit(x: x, y: y, batchSize: batch, epochs: 1, verbose: 0, shuffle: t["shuffle"]?.boolValue ?? false)
                _ = try m.fit(x: x, y: y, batchSize: batch, epochs: 1, verbose: 0, shuffle: t["shuffle"]?.boolValue ?? false)
                for (k, (g, w)) in zip(r.getWeights(), m.getWeights()).enumerated() {
                    if let f = compare(g, w, tol: trainingTolerance, what: "weight \(k) one epoch after resuming vs uninterrupted") { bad.append(f) }
                }
                return bad
            }
            fileLines.append(r.line)
            if let f = r.failure { failures.append(f) }
        }
        return failures.isEmpty ? .pass : .fail(failures.joined(separator: "; "))
    }
}
