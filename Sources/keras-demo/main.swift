import CKernels
import Foundation
import Keras

/// keras-demo: trains a small CNN (or an MLP) on the digits data shipped in
/// the repository, prints Keras's summary and progress bar and the held-out
/// accuracy, and writes the training history and the model as pictures.
let usage = """
usage: keras-demo [--model cnn|mlp] [--epochs N] [--batch-size N] [--threads N] [--data PATH] [--out DIR] [--distributed]

  --data PATH   CSV (last column the label), MNIST-format IDX images (labels found
                beside them), .npz with x and y arrays (stored or compressed), or
                x....npy with y....npy beside it. Default: Data/digits/digits.csv
  --out DIR     where history.svg, model.svg, model.dot, weights.npz, model.keras, model.weights.h5 and model.h5 go
                (default: keras-demo-output)
  --distributed data parallelism over the processes of an MPI job
                (mpirun -np N keras-demo --distributed): each trains on its
                shard of every batch; rank 0 prints and writes the outputs
"""

struct DemoError: Error, CustomStringConvertible { var description: String }

func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("keras-demo: \(message)\n".utf8))
    exit(code)
}

var options: [String: String] = [:]
var distributed = false
var args = Array(CommandLine.arguments.dropFirst())
while !args.isEmpty {
    let flag = args.removeFirst()
    if flag == "-h" || flag == "--help" { print(usage); exit(0) }
    if flag == "--distributed" { distributed = true; continue }
    guard ["--model", "--epochs", "--batch-size", "--threads", "--data", "--out"].contains(flag) else { fail("unknown option '\(flag)'\n\(usage)", code: 2) }
    guard !args.isEmpty else { fail("\(flag) needs a value", code: 2) }
    options[flag] = args.removeFirst()
}

func positive(_ flag: String, _ def: Int) -> Int {
    guard let raw = options[flag] else { return def }
    guard let v = Int(raw), v > 0 else { fail("\(flag) must be a positive integer, got '\(raw)'", code: 2) }
    return v
}

let modelName = options["--model"] ?? "cnn"
guard modelName == "cnn" || modelName == "mlp" else { fail("unknown model '\(modelName)' (cnn or mlp)", code: 2) }
let epochs = positive("--epochs", modelName == "cnn" ? 30 : 40)
let batchSize = positive("--batch-size", 32)
if options["--threads"] != nil {
    let t = positive("--threads", 1)
    do { try KernelThreads.set(t) } catch { fail("--threads must be between 1 and \(KernelThreads.maximum), got \(t)", code: 2) }
}
let outDir = options["--out"] ?? "keras-demo-output"

/// The default data: the repository's Data/digits, found from the working
/// directory or next to the executable's checkout.
func defaultDataPath() -> String {
    var candidates = ["Data/digits/digits.csv"]
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<5 {
        candidates.append(dir.appendingPathComponent("Data/digits/digits.csv").path)
        dir = dir.deletingLastPathComponent()
    }
    return candidates.first { FileManager.default.fileExists(atPath: $0) } ?? candidates[0]
}

/// A class label read as a number: a whole number from 0 to 9999.
func classLabel(_ v: Float, _ path: String) throws -> Int {
    guard v.isFinite, v == v.rounded(), v >= 0, v < 10000 else {
        throw DemoError(description: "\(path): a label is \(v); labels must be whole numbers from 0 (class indices)")
    }
    return Int(v)
}

/// Images as [n, side, side, 1] in [0, 1] and integer labels.
func loadData(_ path: String) throws -> (Tensor, [Int]) {
    guard FileManager.default.fileExists(atPath: path) else { throw DemoError(description: "\(path): no such file") }
    var features: [Float], labels: [Int], n: Int, width: Int
    if path.hasSuffix(".npz") {
        let arrays = try Datasets.readNPZ(path)
        guard let x = arrays.first(where: { ["x", "x_train", "images"].contains($0.0) })?.1,
              let y = arrays.first(where: { ["y", "y_train", "labels"].contains($0.0) })?.1 else {
            throw DemoError(description: "\(path): needs arrays named x and y (or x_train and y_train), has \(arrays.map(\.0))")
        }
        n = x.shape.first ?? 0
        width = x.count / max(n, 1)
        features = x.floats
        labels = try y.floats.map { try classLabel($0, path) }
    } else if path.hasSuffix(".npy") {
        // images in one .npy, labels in its sibling named with y for x (x_train.npy -> y_train.npy)
        let url = URL(fileURLWithPath: path)
        let file = url.lastPathComponent
        guard file.hasPrefix("x") else { throw DemoError(description: "\(path): cannot tell where the labels are (name the images x....npy and the labels y....npy)") }
        // Only the leading x becomes y: x_xnan.npy -> y_xnan.npy.
        let labelPath = url.deletingLastPathComponent().appendingPathComponent("y" + file.dropFirst()).path
        guard FileManager.default.fileExists(atPath: labelPath) else { throw DemoError(description: "\(path): no labels file \(labelPath) beside it") }
        let x = try Datasets.readNPY(path), y = try Datasets.readNPY(labelPath)
        n = x.shape.first ?? 0
        width = x.count / max(n, 1)
        features = x.floats
        labels = try y.floats.map { try classLabel($0, path) }
    } else if path.hasSuffix(".csv") {
        let csv = try Datasets.readCSV(path)
        guard csv.columns >= 2 else { throw DemoError(description: "\(path): needs feature columns and a label column") }
        n = csv.rows
        width = csv.columns - 1
        features = []
        labels = []
        for r in 0..<n {
            features += csv.values[(r * csv.columns)..<(r * csv.columns + width)]
            labels.append(try classLabel(csv.values[r * csv.columns + width], path))
        }
    } else {
        let images = try Datasets.readIDX(path)
        let labelPath = path.replacingOccurrences(of: "images-idx3", with: "labels-idx1").replacingOccurrences(of: "images", with: "labels")
        guard labelPath != path else { throw DemoError(description: "\(path): cannot tell where the labels file is (expected 'images' in the name)") }
        let l = try Datasets.readIDX(labelPath)
        n = images.shape.first ?? 0
        width = images.count / max(n, 1)
        features = images.floats
        labels = try l.floats.map { try classLabel($0, labelPath) }
    }
    guard labels.count == n, n > 0 else { throw DemoError(description: "\(path): \(n) images but \(labels.count) labels") }
    if let bad = features.firstIndex(where: { !$0.isFinite }) {
        // CSV rows are counted from the first data row; columns from 1.
        throw DemoError(description: "\(path): sample \(bad / max(width, 1)) (row \(bad / max(width, 1) + 1)), feature column \(bad % max(width, 1) + 1) is \(features[bad]); the data must be finite numbers")
    }
    let side = Int(Double(width).squareRoot().rounded())
    guard side * side == width else { throw DemoError(description: "\(path): \(width) features per sample is not a square image") }
    let maxValue = max(features.max() ?? 1, 1)
    return (try Tensor(features.map { $0 / maxValue }, shape: [n, side, side, 1]), labels)
}

func buildModel(_ kind: String, side: Int, classes: Int) throws -> Sequential {
    if kind == "mlp" {
        return try Sequential([Flatten(inputShape: [side, side, 1]), Dense(128, activation: "relu"), Dropout(0.2),
                               Dense(classes, activation: "softmax")], name: "digits_mlp")
    }
    return try Sequential([
        Conv2D(32, 3, activation: "relu", inputShape: [side, side, 1]),
        Conv2D(64, 3, activation: "relu"),
        MaxPooling2D(2),
        Dropout(0.25),
        Flatten(),
        Dense(128, activation: "relu"),
        Dropout(0.5),
        Dense(classes, activation: "softmax"),
    ], name: "digits_cnn")
}

/// Checks before training that `dir` can take the output files: creates it and
/// writes and removes a probe file, so a bad --out fails in a second, not after training.
func checkOutputFolder(_ dir: String) throws {
    do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
        throw DemoError(description: "--out \(dir): cannot create the folder (\((error as NSError).localizedDescription))")
    }
    let probe = dir + "/.keras-demo-probe-\(getpid())"
    guard FileManager.default.createFile(atPath: probe, contents: Data()) else {
        throw DemoError(description: "--out \(dir): the folder is not writable")
    }
    try? FileManager.default.removeItem(atPath: probe)
}

/// Writes every output file into a staging folder inside `dir`, then renames
/// each into place: a failure leaves the folder as it was.
func writeOutputs(_ dir: String, _ write: (String) throws -> Void) throws {
    let staging = dir + "/.keras-demo-staging-\(getpid())"
    try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: staging) }
    try write(staging)
    for name in try FileManager.default.contentsOfDirectory(atPath: staging) {
        guard rename(staging + "/" + name, dir + "/" + name) == 0 else {
            throw DemoError(description: "\(dir)/\(name): cannot move into place (\(String(cString: strerror(errno))))")
        }
    }
}

do {
    let start = Date()
    // --distributed: data parallelism over the MPI job's processes; rank 0 alone prints and writes
    if distributed { setDistribution(try DataParallel()) }
    let isRoot = (try distribution()?.rank ?? 0) == 0
    func say(_ text: String) { if isRoot { print(text) } }
    if isRoot { try checkOutputFolder(outDir) }
    RandomSeed.set(42)
    let path = options["--data"] ?? defaultDataPath()
    let (x, labels) = try loadData(path)
    let classes = (labels.max() ?? 0) + 1
    let y = try toCategorical(labels, numClasses: classes)
    let split = try trainValidationSplit(x: x, y: y, validationFraction: 0.2, seed: 7)
    say("data: \(path), \(x.shape[0]) images of \(x.shape[1])x\(x.shape[2]), \(classes) classes; \(split.xTrain.shape[0]) to train, \(split.xVal.shape[0]) held out")
    let model = try buildModel(modelName, side: x.shape[1], classes: classes)
    if isRoot { model.summary() }
    try model.compile(optimizer: Adam(learningRate: 1e-3), loss: "categorical_crossentropy", metrics: ["accuracy"])
    let history = try model.fit(split.xTrain, split.yTrain, batchSize: batchSize, epochs: epochs, verbose: 1,
                                validationData: (split.xVal, split.yVal))
    let result = try model.evaluateDict(x: [split.xVal], y: [split.yVal])
    let seconds = Date().timeIntervalSince(start)
    if isRoot { try writeOutputs(outDir) { dir in
        try HistoryChart.write(history, to: dir + "/history.svg", title: "\(model.name) on \(URL(fileURLWithPath: path).lastPathComponent)")
        try plotModel(model, to: dir + "/model.svg")
        try plotModel(model, to: dir + "/model.dot")
        try model.saveWeights(dir + "/weights.npz")
        // The trained model as Keras opens it: a .keras archive, Keras 3 weights, a Keras 2 whole-model .h5.
        try model.save(to: dir + "/model.keras")
        try model.saveWeights(to: dir + "/model.weights.h5")
        try model.save(to: dir + "/model.h5")
    } }
    let ranks = try distribution()?.size ?? 1
    say("held-out accuracy: \(formatFixedDemo(Double(result["accuracy"]!) * 100))% (loss \(formatFixedDemo(Double(result["loss"]!), 4))) after \(epochs) epochs in \(formatFixedDemo(seconds, 1)) s on \(ck_threads_get()) thread(s)" + (ranks > 1 ? " per process, \(ranks) processes" : ""))
    say("wrote \(outDir)/history.svg, model.svg, model.dot, weights.npz, model.keras, model.weights.h5, model.h5")
} catch {
    fail("\(error)")
}

func formatFixedDemo(_ v: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", v) }
