import KerasIR

/// Wraps a function of KerasTensors as a layer. The function is traced on
/// placeholders each time the layer is emitted, and the operations it
/// records are replayed into the graph, so its gradient comes for free.
public final class Lambda: Layer {
    public typealias Function = ([KerasTensor]) throws -> KerasTensor
    let function: Function
    /// Output shape (without the batch) or a function of the input shape; kept for the config and checked against the trace.
    public let outputShapeSpec: OutputShape?
    /// Keras's `mask=`: the output mask as a function of the input and its
    /// mask (traced like the function); nil drops masks, as Keras does.
    public typealias MaskFunction = (KerasTensor, KerasTensor?) throws -> KerasTensor?
    let maskFunction: MaskFunction?
    public let arguments: [String: JSON]

    public enum OutputShape {
        case shape([Int?])
        case function((Shape) -> Shape)
    }

    public init(_ function: @escaping (KerasTensor) throws -> KerasTensor, outputShape: OutputShape? = nil,
                mask: MaskFunction? = nil, arguments: [String: JSON] = [:], name: String? = nil) {
        self.function = { xs in try function(xs[0]) }
        self.outputShapeSpec = outputShape
        self.maskFunction = mask
        self.arguments = arguments
        super.init(name: name)
    }

    public init(multiple function: @escaping Function, outputShape: OutputShape? = nil, arguments: [String: JSON] = [:], name: String? = nil) {
        self.function = function
        self.outputShapeSpec = outputShape
        self.maskFunction = nil
        self.arguments = arguments
        super.init(name: name)
    }

    public convenience init(_ function: @escaping (KerasTensor) throws -> KerasTensor, outputShape: @escaping (Shape) -> Shape, name: String? = nil) {
        self.init(function, outputShape: .function(outputShape), name: name)
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        let placeholders = inputs.map { v in
            InputLayer(shape: Array(kerasShape(b.type(of: v).shape).dropFirst()), batchSize: kerasShape(b.type(of: v).shape).first ?? nil,
                       dtype: b.type(of: v).dtype, name: "\(name)_arg").tensor
        }
        let result = try function(placeholders)
        if case .shape(let s)? = outputShapeSpec, Array(result.shape.dropFirst()) != s,
           !zip(result.shape.dropFirst(), s).allSatisfy({ $0 == nil || $1 == nil || $0 == $1 }) || s.count != result.rank - 1 {
            throw KerasError("\(name): the function returns shape \(formatShape(result.shape)), output_shape says \(formatShape([nil] + s))")
        }
        if case .function(let f)? = outputShapeSpec {
            let expected = f(placeholders[0].shape)
            if expected.count != result.rank || !zip(expected, result.shape).allSatisfy({ $0 == nil || $1 == nil || $0 == $1 }) {
                throw KerasError("\(name): the function returns shape \(formatShape(result.shape)), output_shape gives \(formatShape(expected))")
            }
        }
        let graph = try FunctionalGraph(inputs: placeholders, outputs: [result])
        let (outs, _) = try graph.emit(inputValues: inputs, inputMasks: inputs.map { _ in nil }, context: context)
        return outs
    }

    public override func computeMask(_ inputs: [Value], outputs: [Value], masks: [Value?], context: CallContext) throws -> [Value?] {
        guard let maskFunction else { return outputs.map { _ in nil } }
        let b = context.builder
        func placeholder(_ v: Value, _ suffix: String) -> KerasTensor {
            let s = kerasShape(b.type(of: v).shape)
            return InputLayer(shape: Array(s.dropFirst()), batchSize: s.first ?? nil, dtype: b.type(of: v).dtype, name: "\(name)_\(suffix)").tensor
        }
        let x = placeholder(inputs[0], "arg"), m = (masks.first ?? nil).map { placeholder($0, "mask") }
        guard let result = try maskFunction(x, m) else { return outputs.map { _ in nil } }
        let graph = try FunctionalGraph(inputs: [x] + (m.map { [$0] } ?? []), outputs: [result])
        let values = [inputs[0]] + ((masks.first ?? nil).map { [$0] } ?? [])
        let (outs, _) = try graph.emit(inputValues: values, inputMasks: values.map { _ in nil }, context: context)
        return [outs[0]] + outputs.dropFirst().map { _ in nil }
    }

    public override var config: JSON {
        var c = super.config
        c.set("function", .string("<swift closure>"))
        switch outputShapeSpec {
        case .shape(let s)?: c.set("output_shape", JSON(shape: s))
        case .function?: c.set("output_shape", .string("<swift closure>"))
        case nil: c.set("output_shape", .null)
        }
        c.set("arguments", .object(arguments.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        throw KerasError("Lambda layer '\(c["name"]?.stringValue ?? "?")' holds a Python function and cannot be rebuilt in Swift; rebuild it with Lambda(function)")
    }
}
