import KerasIR
import KerasRuntime
#if canImport(Glibc)
import Glibc
#endif

/// The whole file as bytes, or nil when it cannot be opened; bounded by the
/// memory limit (`MemoryLimit.readFile`).
public func readBinaryFile(_ path: String) throws -> [UInt8]? {
    try MemoryLimit.readFile(path == "-" ? "./-" : path)  // a file named "-", not standard input
}

extension Layer {
    /// Reads weights written by saveWeights (or np.savez with arrays in
    /// getWeights() order), or any file `loadWeights(from:)` reads.
    public func loadWeights(_ path: String) throws { try loadWeights(from: path) }

    /// The assignments an .npz gives: by variable path when every path is
    /// there, else in getWeights() order.
    func npzAssignments(_ bytes: [UInt8], path: String) throws -> [(Variable, Tensor)] {
        let arrays = try NumPy.decodeArchive(bytes, name: path)
        let ws = weights
        let byName = Dictionary(arrays.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
        let values = ws.allSatisfy({ byName[$0.path] != nil }) ? ws.map { byName[$0.path]! } : arrays.map(\.1)
        guard values.count == ws.count else {
            throw KerasError("\(name): \(path) holds \(values.count) arrays, the layer has \(ws.count) weights")
        }
        for (w, v) in zip(ws, values) where w.shape != v.shape || w.dtype != v.dtype {
            throw KerasError("\(name): \(path): weight \(w.path) has shape \(formatShape(w.shape.map { $0 })), the file's array \(formatShape(v.shape.map { $0 }))")
        }
        return Array(zip(ws, values))
    }
}

/// Saves the model's weights after every epoch (or only when `monitor`
/// improves) to `filepath`, where `{epoch}`, `{epoch:02d}` and `{name:.4f}`
/// are filled in: the weights (`saveWeightsOnly`, any format saveWeights(to:)
/// writes) or the whole model (.keras or .h5). Files are written through a
/// temporary and a rename; in a distributed fit, by rank 0 only.
public final class ModelCheckpoint: Callback {
    public let filepath: String, monitor: String, verbose: Int, saveBestOnly: Bool, saveWeightsOnly: Bool
    let mode: MonitorMode
    var best: Float

    public init(_ filepath: String, monitor: String = "val_loss", verbose: Int = 0, saveBestOnly: Bool = false,
                saveWeightsOnly: Bool = true, mode: String = "auto") throws {
        if !saveWeightsOnly && !(filepath.hasSuffix(".keras") || filepath.hasSuffix(".h5")) {
            throw KerasError("ModelCheckpoint: a whole model is saved as .keras or .h5, got '\(filepath)' (or pass saveWeightsOnly: true)")
        }
        if saveWeightsOnly && !(filepath.hasSuffix(".weights.h5") || filepath.hasSuffix(".h5") || filepath.hasSuffix(".npz")) {
            throw KerasError("ModelCheckpoint: weights are saved as .weights.h5, .h5 or .npz, got '\(filepath)'")
        }
        self.filepath = filepath; self.monitor = monitor; self.verbose = verbose
        self.saveBestOnly = saveBestOnly; self.saveWeightsOnly = saveWeightsOnly
        self.mode = try MonitorMode.resolve(mode, monitor: monitor)
        best = self.mode == .min ? .infinity : -.infinity
    }

    public override func onEpochEnd(_ epoch: Int, logs: Logs) throws {
        guard let model, Distribution.writesFiles else { return }  // rank 0 saves the one copy
        if saveBestOnly {
            guard let current = logs[monitor] else { return }
            guard mode.better(current, than: best, minDelta: 0) else { return }
            if verbose > 0 { print("\nEpoch \(epoch + 1): \(monitor) improved from \(best) to \(current), saving model to \(path(epoch, logs))") }
            best = current
        }
        if saveWeightsOnly { try model.saveWeights(to: path(epoch, logs)) } else { try model.save(to: path(epoch, logs)) }
    }

    /// The file name for this epoch (epochs count from 1, as Keras prints them).
    func path(_ epoch: Int, _ logs: Logs) -> String {
        var out = "", i = filepath.startIndex
        while i < filepath.endIndex {
            if filepath[i] == "{", let close = filepath[i...].firstIndex(of: "}") {
                let spec = filepath[filepath.index(after: i)..<close]
                let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
                let key = parts.first ?? ""
                let fmt = parts.count > 1 ? parts[1] : ""
                if key == "epoch" {
                    // A file name holds at most 255 bytes: wider fields cannot name a file.
                    let width = min(Int(fmt.drop { $0 == "0" }.dropLast()) ?? 0, 255)
                    let s = String(epoch + 1)
                    out += String(repeating: "0", count: max(0, width - s.count)) + s
                } else if let v = logs[key] {
                    let digits = min(max(fmt.hasPrefix(".") ? Int(fmt.dropFirst().dropLast()) ?? 4 : 4, 0), 17)
                    out += formatFixed(Double(v), digits)
                } else {
                    out += String(filepath[i...close])
                }
                i = filepath.index(after: close)
                continue
            }
            out.append(filepath[i])
            i = filepath.index(after: i)
        }
        return out
    }
}
