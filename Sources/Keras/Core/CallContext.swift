import KerasIR

/// What a layer's `call` emits into: the graph builder, the training flag,
/// the parameter node of each variable, losses added during the call
/// (activity regularization), and seeds for random ops.
public final class CallContext {
    /// State shared by every context of one graph (a layer called with an
    /// explicit training flag gets a derived context over the same state).
    final class State {
        var parameters: [ObjectIdentifier: Value] = [:]
        var variablesRead: [Variable] = []
        var addedLosses: [Value] = []
        var updates: [(Variable, Value)] = []
        var seedCounter: UInt64 = 0
    }

    public let builder: GraphBuilder
    public let training: Bool
    /// True while a call only infers output shapes.
    public let isTracing: Bool
    let baseSeed: UInt64
    let state: State

    /// A context for emitting real (non-tracing) graphs, e.g. to run one layer directly.
    public convenience init(builder: GraphBuilder, training: Bool, seed: UInt64 = 0) {
        self.init(builder: builder, training: training, isTracing: false, seed: seed)
    }

    init(builder: GraphBuilder, training: Bool, isTracing: Bool, seed: UInt64 = 0, state: State = State()) {
        self.builder = builder
        self.training = training
        self.isTracing = isTracing
        self.baseSeed = seed
        self.state = state
    }

    /// The same graph and parameters with another training flag.
    func with(training: Bool) -> CallContext {
        CallContext(builder: builder, training: training, isTracing: isTracing, seed: baseSeed, state: state)
    }

    /// Variables read so far, in first-read order.
    public var variablesRead: [Variable] { state.variablesRead }
    public var addedLosses: [Value] { state.addedLosses }

    /// The parameter node holding `v` in this graph (created on first use).
    public func read(_ v: Variable) throws -> Value {
        if let p = state.parameters[ObjectIdentifier(v)] { return p }
        let saved = builder.currentLayer
        builder.currentLayer = nil
        defer { builder.currentLayer = saved }
        let p = try builder.parameter(v.path, v.type)
        state.parameters[ObjectIdentifier(v)] = p
        state.variablesRead.append(v)
        return p
    }

    public func parameter(of v: Variable) -> Value? { state.parameters[ObjectIdentifier(v)] }

    /// Adds a scalar to the model's loss (activity regularization).
    public func addLoss(_ v: Value) { state.addedLosses.append(v) }

    /// Asks for `variable` to take `value` at the end of a training step
    /// (BatchNormalization's moving statistics). The training graph assigns
    /// it after the optimizer's updates, so a failed step changes nothing.
    public func addUpdate(_ variable: Variable, _ value: Value) throws {
        guard builder.type(of: value) == variable.type else {
            throw KerasError("\(variable.path): an update of type \(builder.type(of: value)) for a weight of type \(variable.type)")
        }
        state.updates.append((variable, value))
    }

    /// The updates asked for so far, in call order.
    public var updates: [(Variable, Value)] { state.updates }

    /// The value `v` has at this point of the step: its last pending update,
    /// or the stored value. A layer called several times in one step (inside
    /// TimeDistributed) builds each update on the previous one, as Keras's
    /// variables do.
    public func currentValue(_ v: Variable) throws -> Value {
        if let last = state.updates.last(where: { $0.0 === v }) { return last.1 }
        return try read(v)
    }

    /// One update per variable, its last value, in first-update order: what a step assigns.
    public var finalUpdates: [(Variable, Value)] {
        var seen = Set<ObjectIdentifier>()
        return state.updates.compactMap { v, _ in
            seen.insert(ObjectIdentifier(v)).inserted ? (v, state.updates.last { $0.0 === v }!.1) : nil
        }
    }

    /// Emits the final updates as assigns (into the graph being built).
    public func emitUpdates() throws {
        for (v, value) in finalUpdates { _ = try builder.assign(try read(v), value) }
    }

    /// A seed for a random op: fixed per position in the graph, so a
    /// retraced graph draws the same way; the layer's own seed when it has one.
    public func nextSeed(_ layerSeed: Int?) -> Int {
        state.seedCounter += 1
        let base = layerSeed.map { UInt64(bitPattern: Int64($0)) } ?? baseSeed
        var g = SplitMix64(seed: base &+ state.seedCounter &* 0x9e3779b97f4a7c15)
        return Int(truncatingIfNeeded: g.next() >> 2)
    }
}
