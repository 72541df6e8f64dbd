import KerasIR
import KerasRuntime

/// Update formulas exactly as Keras 3 writes them.

public final class SGD: Optimizer {
    public let momentum: Float
    public let nesterov: Bool
    public override var kerasSlotGroups: [[String]]? { momentum != 0 ? [["momentum"]] : [] }
    public init(learningRate: Float = 0.01, momentum: Float = 0, nesterov: Bool = false, clipnorm: Float? = nil, clipvalue: Float? = nil,
                globalClipnorm: Float? = nil, name: String = "SGD") {
        self.momentum = momentum
        self.nesterov = nesterov
        super.init(name: name, learningRate: .constant(learningRate), clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm)
    }
    public init(schedule: LearningRateSchedule, momentum: Float = 0, nesterov: Bool = false, name: String = "SGD") {
        self.momentum = momentum
        self.nesterov = nesterov
        super.init(name: name, learningRate: .schedule(schedule))
    }
    public override func update(gradient g: Value, variable w: Value, context c: UpdateContext) throws -> (variable: Value, slots: [(Value, Value)]) {
        let b = c.builder
        let step = try b.mul(g, c.learningRate)
        guard momentum != 0 else { return (try b.sub(w, step), []) }
        let m = try c.slot("momentum", 0)
        let newM = try b.sub(b.mul(m, momentum), step)
        let newW = nesterov ? try b.add(w, b.sub(b.mul(newM, momentum), step)) : try b.add(w, newM)
        return (newW, [(m, newM)])
    }
    public override var config: JSON {
        var c = super.config
        c.set("momentum", JSON(momentum))
        c.set("nesterov", JSON(nesterov))
        return c
    }
}

public final class RMSprop: Optimizer {
    public let rho: Float, momentum: Float, epsilon: Float, centered: Bool
    public override var kerasSlotGroups: [[String]]? { [["velocity"]] + (momentum > 0 ? [["momentum"]] : []) + (centered ? [["average_gradient"]] : []) }
    public init(learningRate: Float = 0.001, rho: Float = 0.9, momentum: Float = 0, epsilon: Float = 1e-7, centered: Bool = false,
                clipnorm: Float? = nil, clipvalue: Float? = nil, name: String = "RMSprop") {
        self.rho = rho; self.momentum = momentum; self.epsilon = epsilon; self.centered = centered
        super.init(name: name, learningRate: .constant(learningRate), clipnorm: clipnorm, clipvalue: clipvalue)
    }
    public override func update(gradient g: Value, variable w: Value, context c: UpdateContext) throws -> (variable: Value, slots: [(Value, Value)]) {
        let b = c.builder
        let v = try c.slot("velocity", 0)
        let newV = try b.add(b.mul(v, rho), b.mul(b.square(g), 1 - rho))
        var slots = [(v, newV)]
        var denom: Value
        if centered {
            let ag = try c.slot("average_gradient", 0)
            let newAg = try b.add(b.mul(ag, rho), b.mul(g, 1 - rho))
            slots.append((ag, newAg))
            denom = try b.add(b.sub(newV, b.square(newAg)), epsilon)
        } else {
            denom = try b.add(newV, epsilon)
        }
        let increment = try b.div(b.mul(g, c.learningRate), b.sqrt(denom))
        if momentum > 0 {
            let m = try c.slot("momentum", 0)
            let newM = try b.add(b.mul(m, momentum), increment)
            slots.append((m, newM))
            return (try b.sub(w, newM), slots)
        }
        return (try b.sub(w, increment), slots)
    }
    public override var config: JSON {
        var c = super.config
        c.set("rho", JSON(rho)); c.set("momentum", JSON(momentum)); c.set("epsilon", JSON(epsilon)); c.set("centered", JSON(centered))
        return c
    }
}

public final class Adagrad: Optimizer {
    public let initialAccumulatorValue: Float, epsilon: Float
    public override var kerasSlotGroups: [[String]]? { [["accumulator"]] }
    public init(learningRate: Float = 0.001, initialAccumulatorValue: Float = 0.1, epsilon: Float = 1e-7,
                clipnorm: Float? = nil, clipvalue: Float? = nil, name: String = "Adagrad") {
        self.initialAccumulatorValue = initialAccumulatorValue; self.epsilon = epsilon
        super.init(name: name, learningRate: .constant(learningRate), clipnorm: clipnorm, clipvalue: clipvalue)
    }
    public override func update(gradient g: Value, variable w: Value, context c: UpdateContext) throws -> (variable: Value, slots: [(Value, Value)]) {
        let b = c.builder
        let acc = try c.slot("accumulator", initialAccumulatorValue)
        let newAcc = try b.add(acc, b.square(g))
        return (try b.sub(w, b.div(b.mul(g, c.learningRate), b.sqrt(b.add(newAcc, epsilon)))), [(acc, newAcc)])
    }
    public override var config: JSON {
        var c = super.config
        c.set("initial_accumulator_value", JSON(initialAccumulatorValue)); c.set("epsilon", JSON(epsilon))
        return c
    }
}

public final class Adadelta: Optimizer {
    public let rho: Float, epsilon: Float
    public override var kerasSlotGroups: [[String]]? { [["accumulated_grad", "accumulated_delta_var"]] }
    public init(learningRate: Float = 0.001, rho: Float = 0.95, epsilon: Float = 1e-7, clipnorm: Float? = nil, clipvalue: Float? = nil,
                name: String = "Adadelta") {
        self.rho = rho; self.epsilon = epsilon
        super.init(name: name, learningRate: .constant(learningRate), clipnorm: clipnorm, clipvalue: clipvalue)
    }
    public override func update(gradient g: Value, variable w: Value, context c: UpdateContext) throws -> (variable: Value, slots: [(Value, Value)]) {
        let b = c.builder
        let ag = try c.slot("accumulated_grad", 0), ad = try c.slot("accumulated_delta_var", 0)
        let newAg = try b.add(b.mul(ag, rho), b.mul(b.square(g), 1 - rho))
        let delta = try b.neg(b.div(b.mul(b.sqrt(b.add(ad, epsilon)), g), b.sqrt(b.add(newAg, epsilon))))
        let newAd = try b.add(b.mul(ad, rho), b.mul(b.square(delta), 1 - rho))
        return (try b.add(w, b.mul(delta, c.learningRate)), [(ag, newAg), (ad, newAd)])
    }
    public override var config: JSON {
        var c = super.config
        c.set("rho", JSON(rho)); c.set("epsilon", JSON(epsilon))
        return c
    }
}

public final class Adam: Optimizer {
    public let beta1: Float, beta2: Float, epsilon: Float, amsgrad: Bool
    public override var kerasSlotGroups: [[String]]? { [["momentum", "velocity"]] + (amsgrad ? [["velocity_hat"]] : []) }
    public init(learningRate: Float = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7, amsgrad: Bool = false,
                clipnorm: Float? = nil, clipvalue: Float? = nil, globalClipnorm: Float? = nil, name: String = "adam") {
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.amsgrad = amsgrad
        super.init(name: name, learningRate: .constant(learningRate), clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm)
    }
    public init(schedule: LearningRateSchedule, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7, amsgrad: Bool = false, name: String = "adam") {
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.amsgrad = amsgrad
        super.init(name: name, learningRate: .schedule(schedule))
    }
    public override func update(gradient g: Value, variable w: Value, context c: UpdateContext) throws -> (variable: Value, slots: [(Value, Value)]) {
        let b = c.builder
        let b1p = try b.pow(b.scalar(beta1), c.localStep), b2p = try b.pow(b.scalar(beta2), c.localStep)
        let alpha = try b.div(b.mul(c.learningRate, b.sqrt(b.sub(b.scalar(1), b2p))), b.sub(b.scalar(1), b1p))
        let m = try c.slot("momentum", 0), v = try c.slot("velocity", 0)
        let newM = try b.add(m, b.mul(b.sub(g, m), 1 - beta1))
        let newV = try b.add(v, b.mul(b.sub(b.square(g), v), 1 - beta2))
        var slots = [(m, newM), (v, newV)]
        var vUsed = newV
        if amsgrad {
            let vh = try c.slot("velocity_hat", 0)
            vUsed = try b.maximum(vh, newV)
            slots.append((vh, vUsed))
        }
        return (try b.sub(w, b.div(b.mul(newM, alpha), b.add(b.sqrt(vUsed), epsilon))), slots)
    }
    public override var config: JSON {
        var c = super.config
        c.set("beta_1", JSON(beta1)); c.set("beta_2", JSON(beta2)); c.set("epsilon", JSON(epsilon)); c.set("amsgrad", JSON(amsgrad))
        return c
    }
}

public final class Adamax: Optimizer {
    public let beta1: Float, beta2: Float, epsilon: Float
    public override var kerasSlotGroups: [[String]]? { [["m", "u"]] }
    public init(learningRate: Float = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7,
                clipnorm: Float? = nil, clipvalue: Float? = nil, name: String = "adamax") {
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
        super.init(name: name, learningRate: .constant(learningRate), clipnorm: clipnorm, clipvalue: clipvalue)
    }
    public override func update(gradient g: Value, variable w: Value, context c: UpdateContext) throws -> (variable: Value, slots: [(Value, Value)]) {
        let b = c.builder
        let b1p = try b.pow(b.scalar(beta1), c.localStep)
        let m = try c.slot("m", 0), u = try c.slot("u", 0)
        let newM = try b.add(m, b.mul(b.sub(g, m), 1 - beta1))
        let newU = try b.maximum(b.mul(u, beta2), b.abs(g))
        let denom = try b.mul(b.sub(b.scalar(1), b1p), b.add(newU, epsilon))
        return (try b.sub(w, b.div(b.mul(newM, c.learningRate), denom)), [(m, newM), (u, newU)])
    }
    public override var config: JSON {
        var c = super.config
        c.set("beta_1", JSON(beta1)); c.set("beta_2", JSON(beta2)); c.set("epsilon", JSON(epsilon))
        return c
    }
}

/// Adam with Nesterov momentum and Keras's momentum schedule (decay 0.96).
public final class Nadam: Optimizer {
    public let beta1: Float, beta2: Float, epsilon: Float
    let uProductBuffer = ParameterStore.Buffer.scalar()

    /// Keras saves Nadam's momentum product too, at a place this library does not reproduce yet.
    public override var kerasSlotGroups: [[String]]? { nil }
    public init(learningRate: Float = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7,
                clipnorm: Float? = nil, clipvalue: Float? = nil, name: String = "nadam") {
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
        super.init(name: name, learningRate: .constant(learningRate), clipnorm: clipnorm, clipvalue: clipvalue)
        uProductBuffer.pointer.storeBytes(of: Float(1), as: Float.self)
        slots["\(name)/u_product"] = uProductBuffer
    }

    func momentumCache(_ step: Value, _ b: GraphBuilder) throws -> Value {
        try b.mul(b.sub(b.scalar(1), b.mul(b.pow(b.scalar(0.96), b.mul(step, 0.004)), 0.5)), beta1)
    }

    /// u_product <- u_product * u_t, once per step.
    public override func stepState(builder b: GraphBuilder, localStep: Value,
                                   parameter: (String, ParameterStore.Buffer) throws -> Value) throws -> (values: [String: Value], assigns: [(Value, Value)]) {
        let u = try parameter("\(name)/u_product", uProductBuffer)
        let uProductT = try b.mul(u, momentumCache(localStep, b))
        return (["u_product_t": uProductT], [(u, uProductT)])
    }

    public override func update(gradient g: Value, variable w: Value, context c: UpdateContext) throws -> (variable: Value, slots: [(Value, Value)]) {
        let b = c.builder
        let uT = try momentumCache(c.localStep, b)
        let uT1 = try momentumCache(b.add(c.localStep, 1), b)
        let uProductT = c.shared["u_product_t"]!
        let uProductT1 = try b.mul(uProductT, uT1)
        let b2p = try b.pow(b.scalar(beta2), c.localStep)
        let m = try c.slot("momentum", 0), v = try c.slot("velocity", 0)
        let newM = try b.add(m, b.mul(b.sub(g, m), 1 - beta1))
        let newV = try b.add(v, b.mul(b.sub(b.square(g), v), 1 - beta2))
        let mHat = try b.add(b.div(b.mul(newM, uT1), b.sub(b.scalar(1), uProductT1)),
                             b.div(b.mul(g, b.sub(b.scalar(1), uT)), b.sub(b.scalar(1), uProductT)))
        let vHat = try b.div(newV, b.sub(b.scalar(1), b2p))
        return (try b.sub(w, b.div(b.mul(mHat, c.learningRate), b.add(b.sqrt(vHat), epsilon))), [(m, newM), (v, newV)])
    }

    public override var config: JSON {
        var c = super.config
        c.set("beta_1", JSON(beta1)); c.set("beta_2", JSON(beta2)); c.set("epsilon", JSON(epsilon))
        return c
    }
}

/// An optimizer by name with Keras's defaults ("sgd", "adam", ...).
public enum Optimizers {
    public static func get(_ name: String) throws -> Optimizer {
        switch canonicalName(name) {
        case "sgd": return SGD()
        case "rmsprop": return RMSprop()
        case "adagrad": return Adagrad()
        case "adadelta": return Adadelta()
        case "adam": return Adam()
        case "adamax": return Adamax()
        case "nadam": return Nadam()
        default: throw KerasError("unknown optimizer '\(name)'")
        }
    }

    /// From a serialized optimizer ({"class_name": "SGD", "config": {...}}).
    public static func get(_ json: JSON) throws -> Optimizer {
        if let s = json.stringValue { return try get(s) }
        let (cls, c) = try classAndConfig(json, what: "an optimizer")
        let lr = try c.float("learning_rate", default: 0.001)
        let clipnorm = try c.optionalFloat("clipnorm"), clipvalue = try c.optionalFloat("clipvalue")
        switch canonicalName(cls) {
        case "sgd": return SGD(learningRate: lr, momentum: try c.float("momentum", default: 0), nesterov: try c.bool("nesterov", default: false),
                               clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: try c.optionalFloat("global_clipnorm"))
        case "rmsprop": return RMSprop(learningRate: lr, rho: try c.float("rho", default: 0.9), momentum: try c.float("momentum", default: 0),
                                       epsilon: try c.float("epsilon", default: 1e-7), centered: try c.bool("centered", default: false),
                                       clipnorm: clipnorm, clipvalue: clipvalue)
        case "adagrad": return Adagrad(learningRate: lr, initialAccumulatorValue: try c.float("initial_accumulator_value", default: 0.1),
                                       epsilon: try c.float("epsilon", default: 1e-7), clipnorm: clipnorm, clipvalue: clipvalue)
        case "adadelta": return Adadelta(learningRate: lr, rho: try c.float("rho", default: 0.95), epsilon: try c.float("epsilon", default: 1e-7),
                                         clipnorm: clipnorm, clipvalue: clipvalue)
        case "adam": return Adam(learningRate: lr, beta1: try c.float("beta_1", default: 0.9), beta2: try c.float("beta_2", default: 0.999),
                                 epsilon: try c.float("epsilon", default: 1e-7), amsgrad: try c.bool("amsgrad", default: false),
                                 clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: try c.optionalFloat("global_clipnorm"))
        case "adamax": return Adamax(learningRate: lr, beta1: try c.float("beta_1", default: 0.9), beta2: try c.float("beta_2", default: 0.999),
                                     epsilon: try c.float("epsilon", default: 1e-7), clipnorm: clipnorm, clipvalue: clipvalue)
        case "nadam": return Nadam(learningRate: lr, beta1: try c.float("beta_1", default: 0.9), beta2: try c.float("beta_2", default: 0.999),
                                   epsilon: try c.float("epsilon", default: 1e-7), clipnorm: clipnorm, clipvalue: clipvalue)
        default: throw KerasError("unknown optimizer '\(cls)'")
        }
    }
}

/// Something that names or is an optimizer.
public protocol OptimizerConvertible { func resolveOptimizer() throws -> Optimizer }
extension String: OptimizerConvertible { public func resolveOptimizer() throws -> Optimizer { try Optimizers.get(self) } }
extension Optimizer: OptimizerConvertible { public func resolveOptimizer() -> Optimizer { self } }
