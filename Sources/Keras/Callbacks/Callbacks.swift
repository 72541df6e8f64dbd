import KerasIR
import KerasRuntime
#if canImport(Glibc)
import Glibc
#endif

/// Epoch or batch logs: "loss", metric names, "val_" ones.
public typealias Logs = [String: Float]

/// The base of every callback; override the hooks you need.
open class Callback {
    public weak var model: Model?
    public init() {}
    open func onTrainBegin(logs: Logs) throws {}
    open func onTrainEnd(logs: Logs) throws {}
    open func onEpochBegin(_ epoch: Int, logs: Logs) throws {}
    open func onEpochEnd(_ epoch: Int, logs: Logs) throws {}
    open func onTrainBatchBegin(_ batch: Int, logs: Logs) throws {}
    open func onTrainBatchEnd(_ batch: Int, logs: Logs) throws {}
}

/// Per-epoch logs of a fit() call (Keras's History, returned by fit).
public final class History: Callback {
    public private(set) var epoch: [Int] = []
    public private(set) var history: [String: [Float]] = [:]

    public override func onEpochEnd(_ epoch: Int, logs: Logs) throws {
        self.epoch.append(epoch)
        for (k, v) in logs { history[k, default: []].append(v) }
    }
}

enum MonitorMode {
    case min, max
    static func resolve(_ mode: String, monitor: String) throws -> MonitorMode {
        switch mode {
        case "min": return .min
        case "max": return .max
        case "auto": return monitor.contains("acc") || monitor.hasPrefix("fmeasure") || monitor.contains("auc") ? .max : .min
        default: throw KerasError("unknown mode '\(mode)' (auto, min or max)")
        }
    }
    func better(_ a: Float, than b: Float, minDelta: Float) -> Bool {
        self == .min ? a < b - minDelta : a > b + minDelta
    }
}

/// Stops training when `monitor` stops improving for `patience` epochs.
public final class EarlyStopping: Callback {
    public let monitor: String, minDelta: Float, patience: Int, verbose: Int, baseline: Float?, restoreBestWeights: Bool, startFromEpoch: Int
    let mode: MonitorMode
    public private(set) var stoppedEpoch = 0
    var wait = 0
    var best: Float
    var bestWeights: [Tensor]?
    var bestEpoch = 0

    public init(monitor: String = "val_loss", minDelta: Float = 0, patience: Int = 0, verbose: Int = 0, mode: String = "auto",
                baseline: Float? = nil, restoreBestWeights: Bool = false, startFromEpoch: Int = 0) throws {
        self.monitor = monitor; self.minDelta = abs(minDelta); self.patience = patience; self.verbose = verbose
        self.baseline = baseline; self.restoreBestWeights = restoreBestWeights; self.startFromEpoch = startFromEpoch
        self.mode = try MonitorMode.resolve(mode, monitor: monitor)
        best = self.mode == .min ? .infinity : -.infinity
    }

    public override func onTrainBegin(logs: Logs) throws {
        wait = 0; stoppedEpoch = 0; bestWeights = nil; bestEpoch = 0
        best = mode == .min ? .infinity : -.infinity
    }

    public override func onEpochEnd(_ epoch: Int, logs: Logs) throws {
        guard let current = logs[monitor], epoch >= startFromEpoch else { return }
        if restoreBestWeights && bestWeights == nil { bestWeights = model?.getWeights() }
        wait += 1
        if mode.better(current, than: best, minDelta: minDelta) {
            best = current
            bestEpoch = epoch
            if restoreBestWeights { bestWeights = model?.getWeights() }
            if baseline == nil || mode.better(current, than: baseline!, minDelta: minDelta) { wait = 0 }
            return
        }
        if wait >= patience && epoch > 0 {
            stoppedEpoch = epoch
            model?.stopTraining = true
            if restoreBestWeights, let w = bestWeights {
                if verbose > 0 { print("Restoring model weights from the end of the best epoch: \(bestEpoch + 1).") }
                try model?.setWeights(w)
            }
        }
    }

    public override func onTrainEnd(logs: Logs) throws {
        if stoppedEpoch > 0 && verbose > 0 { print("Epoch \(stoppedEpoch + 1): early stopping") }
    }
}

/// Multiplies the learning rate by `factor` when `monitor` stops improving.
public final class ReduceLROnPlateau: Callback {
    public let monitor: String, factor: Float, patience: Int, verbose: Int, minDelta: Float, cooldown: Int, minLR: Float
    let mode: MonitorMode
    var wait = 0, cooldownCounter = 0
    var best: Float

    public init(monitor: String = "val_loss", factor: Float = 0.1, patience: Int = 10, verbose: Int = 0, mode: String = "auto",
                minDelta: Float = 1e-4, cooldown: Int = 0, minLR: Float = 0) throws {
        guard factor < 1 else { throw KerasError("ReduceLROnPlateau does not support a factor >= 1.0, got \(factor)") }
        self.monitor = monitor; self.factor = factor; self.patience = patience; self.verbose = verbose
        self.minDelta = minDelta; self.cooldown = cooldown; self.minLR = minLR
        self.mode = try MonitorMode.resolve(mode, monitor: monitor)
        best = self.mode == .min ? .infinity : -.infinity
    }

    public override func onEpochEnd(_ epoch: Int, logs: Logs) throws {
        guard let current = logs[monitor], let opt = model?.optimizer else { return }
        if cooldownCounter > 0 { cooldownCounter -= 1; wait = 0 }
        if mode.better(current, than: best, minDelta: minDelta) {
            best = current
            wait = 0
        } else if cooldownCounter <= 0 {
            wait += 1
            if wait >= patience {
                let old = opt.currentLearningRate
                if old > minLR {
                    let new = max(old * factor, minLR)
                    opt.currentLearningRate = new
                    if verbose > 0 { print("\nEpoch \(epoch + 1): ReduceLROnPlateau reducing learning rate to \(new).") }
                    cooldownCounter = cooldown
                    wait = 0
                }
            }
        }
    }
}

/// Sets the learning rate at the start of each epoch from `schedule(epoch, lr)`.
public final class LearningRateScheduler: Callback {
    let schedule: (Int, Float) -> Float
    public let verbose: Int
    public init(_ schedule: @escaping (Int, Float) -> Float, verbose: Int = 0) {
        self.schedule = schedule
        self.verbose = verbose
    }
    public override func onEpochBegin(_ epoch: Int, logs: Logs) throws {
        guard let opt = model?.optimizer else { return }
        let lr = schedule(epoch, opt.currentLearningRate)
        guard lr.isFinite else { throw KerasError("LearningRateScheduler: the schedule returned \(lr) for epoch \(epoch)") }
        opt.currentLearningRate = lr
        if verbose > 0 { print("\nEpoch \(epoch + 1): LearningRateScheduler setting learning rate to \(lr).") }
    }
}

/// Stops training as soon as a batch loss is NaN or infinite.
public final class TerminateOnNaN: Callback {
    public override func onTrainBatchEnd(_ batch: Int, logs: Logs) throws {
        if let l = logs["loss"], !l.isFinite {
            print("Batch \(batch): Invalid loss, terminating training")
            model?.stopTraining = true
        }
    }
}

/// Writes epoch logs as CSV rows: `epoch,<keys in sorted order>` (in a
/// distributed fit, on rank 0 only).
public final class CSVLogger: Callback {
    public let filename: String, separator: String, append: Bool
    var rows: [String] = []
    var keys: [String]? = nil

    public init(_ filename: String, separator: String = ",", append: Bool = false) {
        self.filename = filename; self.separator = separator; self.append = append
    }

    public override func onTrainBegin(logs: Logs) throws {
        rows = []
        keys = nil
        if append, let existing = readTextFile(filename) {
            rows = existing.split(separator: "\n").map(String.init)
            if let header = rows.first { keys = header.split(separator: Character(separator)).dropFirst().map(String.init) }
        }
    }

    public override func onEpochEnd(_ epoch: Int, logs: Logs) throws {
        guard Distribution.writesFiles else { return }  // rank 0 writes the one file
        if keys == nil {
            keys = logs.keys.sorted()
            rows.append((["epoch"] + keys!).joined(separator: separator))
        }
        rows.append(([String(epoch)] + keys!.map { logs[$0].map { "\($0)" } ?? "" }).joined(separator: separator))
        try writeFileAtomically(filename, rows.joined(separator: "\n") + "\n")
    }
}

/// Calls the given closures at the matching points.
public final class LambdaCallback: Callback {
    let epochBegin: ((Int, Logs) -> Void)?, epochEnd: ((Int, Logs) -> Void)?
    let batchBegin: ((Int, Logs) -> Void)?, batchEnd: ((Int, Logs) -> Void)?
    let trainBegin: ((Logs) -> Void)?, trainEnd: ((Logs) -> Void)?

    public init(onEpochBegin: ((Int, Logs) -> Void)? = nil, onEpochEnd: ((Int, Logs) -> Void)? = nil,
                onBatchBegin: ((Int, Logs) -> Void)? = nil, onBatchEnd: ((Int, Logs) -> Void)? = nil,
                onTrainBegin: ((Logs) -> Void)? = nil, onTrainEnd: ((Logs) -> Void)? = nil) {
        epochBegin = onEpochBegin; epochEnd = onEpochEnd; batchBegin = onBatchBegin; batchEnd = onBatchEnd
        trainBegin = onTrainBegin; trainEnd = onTrainEnd
    }
    public override func onEpochBegin(_ epoch: Int, logs: Logs) { epochBegin?(epoch, logs) }
    public override func onEpochEnd(_ epoch: Int, logs: Logs) { epochEnd?(epoch, logs) }
    public override func onTrainBatchBegin(_ batch: Int, logs: Logs) { batchBegin?(batch, logs) }
    public override func onTrainBatchEnd(_ batch: Int, logs: Logs) { batchEnd?(batch, logs) }
    public override func onTrainBegin(logs: Logs) { trainBegin?(logs) }
    public override func onTrainEnd(logs: Logs) { trainEnd?(logs) }
}

/// Writes `contents` to a temporary file beside `path`, then renames it
/// over `path`: a crash never leaves a half-written file.
public func writeFileAtomically(_ path: String, _ contents: String) throws {
    try writeFileAtomically(path, Array(contents.utf8))
}

public func writeFileAtomically(_ path: String, _ bytes: [UInt8]) throws {
    let tmp = path + ".tmp-\(getpid())"
    guard let f = fopen(tmp, "wb") else { throw KerasError("\(path): cannot create \(tmp) (\(String(cString: strerror(errno))))") }
    let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, bytes.count, f) }
    let flushed = fflush(f) == 0 && fsync(fileno(f)) == 0
    fclose(f)
    guard written == bytes.count, flushed else {
        unlink(tmp)
        throw KerasError("\(path): writing \(tmp) failed (\(String(cString: strerror(errno))))")
    }
    guard rename(tmp, path) == 0 else {
        let err = String(cString: strerror(errno))
        unlink(tmp)
        throw KerasError("\(path): cannot rename \(tmp) into place (\(err))")
    }
}
