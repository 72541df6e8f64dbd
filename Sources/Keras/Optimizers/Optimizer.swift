import KerasIR
import KerasRuntime
#if canImport(Glibc)
import Glibc
#endif

/// A learning-rate schedule evaluated on the host before each step (its
/// value is written into the optimizer's learning-rate parameter, so the
/// compiled plan never changes).
public protocol LearningRateSchedule {
    static var className: String { get }
    func rate(at step: Int) -> Float
    var config: JSON { get }
}

/// step / decaySteps, floored when `staircase` (Keras's decay schedules).
private func decayProgress(_ step: Int, _ decaySteps: Int, _ staircase: Bool) -> Double {
    let p = Double(step) / Double(decaySteps)
    return staircase ? p.rounded(.down) : p
}

/// lr0 * rate^(step / decaySteps), the exponent floored when `staircase`.
public struct ExponentialDecay: LearningRateSchedule {
    public static let className = "ExponentialDecay"
    public var initialLearningRate: Float, decaySteps: Int, decayRate: Float, staircase: Bool
    public init(initialLearningRate: Float, decaySteps: Int, decayRate: Float, staircase: Bool = false) {
        self.initialLearningRate = initialLearningRate; self.decaySteps = max(decaySteps, 1)
        self.decayRate = decayRate; self.staircase = staircase
    }
    public func rate(at step: Int) -> Float {
        Float(Double(initialLearningRate) * pow(Double(decayRate), decayProgress(step, decaySteps, staircase)))
    }
    public var config: JSON {
        ["initial_learning_rate": JSON(initialLearningRate), "decay_steps": JSON(decaySteps), "decay_rate": JSON(decayRate),
         "staircase": JSON(staircase), "name": "ExponentialDecay"]
    }
}

/// values[i] while step <= boundaries[i] (and the last value after the last boundary).
public struct PiecewiseConstantDecay: LearningRateSchedule {
    public static let className = "PiecewiseConstantDecay"
    public var boundaries: [Int], values: [Float]
    public init(boundaries: [Int], values: [Float]) throws {
        guard values.count == boundaries.count + 1 else {
            throw KerasError("PiecewiseConstantDecay: values must have one more element than boundaries, got \(values.count) and \(boundaries.count)")
        }
        self.boundaries = boundaries; self.values = values
    }
    public func rate(at step: Int) -> Float {
        for (i, b) in boundaries.enumerated() where step <= b { return values[i] }
        return values.last!
    }
    public var config: JSON { ["boundaries": JSON(boundaries), "values": .array(values.map { JSON($0) }), "name": "PiecewiseConstant"] }
}

/// lr0 / (1 + rate * step / decaySteps), the ratio floored when `staircase`.
public struct InverseTimeDecay: LearningRateSchedule {
    public static let className = "InverseTimeDecay"
    public var initialLearningRate: Float, decaySteps: Int, decayRate: Float, staircase: Bool
    public init(initialLearningRate: Float, decaySteps: Int, decayRate: Float, staircase: Bool = false) {
        self.initialLearningRate = initialLearningRate; self.decaySteps = max(decaySteps, 1)
        self.decayRate = decayRate; self.staircase = staircase
    }
    public func rate(at step: Int) -> Float {
        Float(Double(initialLearningRate) / (1 + Double(decayRate) * decayProgress(step, decaySteps, staircase)))
    }
    public var config: JSON {
        ["initial_learning_rate": JSON(initialLearningRate), "decay_steps": JSON(decaySteps), "decay_rate": JSON(decayRate), "staircase": JSON(staircase)]
    }
}

/// The value an optimizer's learning rate takes: a number or a schedule.
public enum LearningRate {
    case constant(Float)
    case schedule(LearningRateSchedule)
}

/// Everything an update rule needs inside the training graph.
public struct UpdateContext {
    public let builder: GraphBuilder
    /// The learning rate (a scalar parameter).
    public let learningRate: Value
    /// The step number starting at 1, as f32 (Keras's local_step).
    public let localStep: Value
    /// A persistent per-variable slot (momentum, velocity, ...), created with `initial`.
    public let slot: (_ name: String, _ initial: Float) throws -> Value
    /// Values computed once per step for all variables (`stepState`).
    public let shared: [String: Value]
}

/// The base of every optimizer. An optimizer owns its step counter,
/// learning rate and per-variable slots as parameters; `emitUpdates` writes
/// the whole update as ops into the training graph, ending in assigns.
open class Optimizer {
    public let name: String
    public var learningRate: LearningRate
    public var clipnorm: Float?
    public var clipvalue: Float?
    public var globalClipnorm: Float?
    /// The number of steps taken (Keras's optimizer.iterations), as f32.
    public let iterationsBuffer = ParameterStore.Buffer.scalar()
    public let learningRateBuffer = ParameterStore.Buffer.scalar()
    var slots: [String: ParameterStore.Buffer] = [:]

    open class var kerasClassName: String { String(describing: self) }

    public init(name: String, learningRate: LearningRate, clipnorm: Float? = nil, clipvalue: Float? = nil, globalClipnorm: Float? = nil) {
        self.name = name
        self.learningRate = learningRate
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.globalClipnorm = globalClipnorm
        if case .constant(let v) = learningRate { learningRateBuffer.pointer.storeBytes(of: v, as: Float.self) }
    }

    /// Steps taken so far.
    public var iterations: Int { Int(exactly: iterationsBuffer.pointer.load(as: Float.self).rounded(.towardZero)) ?? 0 }

    /// The learning rate the next step uses.
    public var currentLearningRate: Float {
        get { learningRateBuffer.pointer.load(as: Float.self) }
        set { learningRateBuffer.pointer.storeBytes(of: newValue, as: Float.self) }
    }

    /// Writes a schedule's value for the coming step (called before each step).
    func prepareStep() {
        if case .schedule(let s) = learningRate { currentLearningRate = s.rate(at: iterations) }
    }

    /// Keras's order of the per-variable slots in a saved optimizer: groups
    /// laid out one after another, each interleaved per variable ([m0, v0,
    /// m1, v1, ...] for Adam's ["momentum", "velocity"]); nil where this
    /// library does not know Keras's layout.
    open var kerasSlotGroups: [[String]]? { [] }

    /// Parameter names of the optimizer's own state.
    var iterationsName: String { "\(name)/iteration" }
    var learningRateName: String { "\(name)/learning_rate" }

    /// Every buffer the training graph uses, to adopt into a model's store.
    var buffers: [(String, ParameterStore.Buffer)] {
        [(iterationsName, iterationsBuffer), (learningRateName, learningRateBuffer)] + slots.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// The update rule for one variable: returns the new values of the
    /// variable and of any slot it changed (slot parameter -> new value).
    open func update(gradient g: Value, variable w: Value, context: UpdateContext) throws -> (variable: Value, slots: [(Value, Value)]) {
        throw KerasError("\(Self.kerasClassName) does not implement update")
    }

    /// State updated once per step before the per-variable rules (Nadam's
    /// momentum product): values for `UpdateContext.shared` and their assigns.
    open func stepState(builder b: GraphBuilder, localStep: Value,
                        parameter: (String, ParameterStore.Buffer) throws -> Value) throws -> (values: [String: Value], assigns: [(Value, Value)]) {
        ([:], [])
    }

    /// Emits clipping, the update rule for every (variable, parameter,
    /// gradient), constraints, assigns, and the step counter increment.
    func emitUpdates(_ items: [(Variable, Value, Value)], builder b: GraphBuilder, parameter: @escaping (String, ParameterStore.Buffer) throws -> Value) throws {
        try b.withLayer(name) {
            let iter = try parameter(iterationsName, iterationsBuffer)
            let lr = try parameter(learningRateName, learningRateBuffer)
            let localStep = try b.add(iter, 1)
            var grads = items.map(\.2)
            if let c = clipvalue { grads = try grads.map { try b.minimum(b.maximum($0, b.scalar(-c)), b.scalar(c)) } }
            if let c = clipnorm { grads = try grads.map { try clipByNorm($0, c, b) } }
            if let c = globalClipnorm, !grads.isEmpty {
                var total = try sumAll(b.square(grads[0]), b)
                for g in grads.dropFirst() { total = try b.add(total, sumAll(b.square(g), b)) }
                let norm = try b.sqrt(total)
                let scale = try b.div(b.scalar(c), b.maximum(norm, b.scalar(c)))
                grads = try grads.map { try b.mul($0, scale) }
            }
            let (shared, sharedAssigns) = try stepState(builder: b, localStep: localStep, parameter: parameter)
            for ((v, w, _), g) in zip(items, grads) {
                let ctx = UpdateContext(builder: b, learningRate: lr, localStep: localStep, slot: { slotName, initial in
                    let key = "\(self.name)/\(v.path)/\(slotName)"
                    if self.slots[key] == nil {
                        let buf = try ParameterStore.Buffer(v.type)
                        if initial != 0 {
                            let p = buf.pointer.assumingMemoryBound(to: Float.self)
                            for i in 0..<buf.count { p[i] = initial }
                        }
                        self.slots[key] = buf
                    }
                    return try parameter(key, self.slots[key]!)
                }, shared: shared)
                var (newW, slotUpdates) = try update(gradient: g, variable: w, context: ctx)
                if let c = v.constraint { newW = try c.apply(newW, b) }
                for (slot, value) in slotUpdates { _ = try b.assign(slot, value) }
                _ = try b.assign(w, newW)
            }
            for (p, v) in sharedAssigns { _ = try b.assign(p, v) }
            _ = try b.assign(iter, localStep)
        }
    }

    /// Keras 3 accepts at most one of clipnorm, clipvalue and global_clipnorm.
    func checkClipping() throws {
        guard [clipnorm, clipvalue, globalClipnorm].compactMap({ $0 }).count <= 1 else {
            func show(_ v: Float?) -> String { v.map { "\($0)" } ?? "None" }
            throw KerasError("\(name): only one of clipnorm, clipvalue and global_clipnorm can be set; got clipnorm=\(show(clipnorm)), "
                             + "clipvalue=\(show(clipvalue)), global_clipnorm=\(show(globalClipnorm))")
        }
    }

    /// Keras's get_config().
    open var config: JSON {
        var lr: JSON
        switch learningRate {
        case .constant(let v): lr = JSON(v)
        case .schedule(let s): lr = serialized(module: "keras.optimizers.schedules", className: type(of: s).className, config: s.config)
        }
        return ["name": .string(name), "learning_rate": lr, "weight_decay": .null, "clipnorm": clipnorm.map { JSON($0) } ?? .null,
                "global_clipnorm": globalClipnorm.map { JSON($0) } ?? .null, "clipvalue": clipvalue.map { JSON($0) } ?? .null,
                "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": .null, "loss_scale_factor": .null,
                "gradient_accumulation_steps": .null]
    }
}

/// Keras's clip_by_norm: g * c / max(||g||, c), leaving zero gradients alone.
func clipByNorm(_ g: Value, _ c: Float, _ b: GraphBuilder) throws -> Value {
    let l2sum = try sumAll(b.square(g), b)
    let norm = try b.sqrt(b.maximum(l2sum, b.scalar(0)))
    return try b.div(b.mul(g, c), b.maximum(norm, b.scalar(c)))
}
