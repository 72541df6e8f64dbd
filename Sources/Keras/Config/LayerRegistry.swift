import KerasIR

/// Keras class names (and Keras 2 aliases) to layer types, for building
/// layers and models from configs.
public enum LayerRegistry {
    nonisolated(unsafe) static var types: [String: Layer.Type] = {
        var t: [String: Layer.Type] = [:]
        for type in [InputLayer.self, Dense.self, Activation.self, Dropout.self, GaussianNoise.self, GaussianDropout.self,
                     ActivityRegularization.self, Flatten.self, Reshape.self, Permute.self, RepeatVector.self, Masking.self,
                     Embedding.self, Lambda.self, ReLU.self, ELU.self, LeakyReLU.self, PReLU.self, Softmax.self,
                     Conv1D.self, Conv2D.self, Conv3D.self, DepthwiseConv2D.self, SeparableConv2D.self, Conv2DTranspose.self,
                     MaxPooling1D.self, MaxPooling2D.self, MaxPooling3D.self, AveragePooling1D.self, AveragePooling2D.self,
                     AveragePooling3D.self, GlobalMaxPooling1D.self, GlobalMaxPooling2D.self, GlobalMaxPooling3D.self,
                     GlobalAveragePooling1D.self, GlobalAveragePooling2D.self, GlobalAveragePooling3D.self,
                     Cropping1D.self, Cropping2D.self, Cropping3D.self, ZeroPadding1D.self, ZeroPadding2D.self, ZeroPadding3D.self,
                     UpSampling1D.self, UpSampling2D.self, UpSampling3D.self,
                     Add.self, Subtract.self, Multiply.self, Average.self, Maximum.self, Minimum.self, Concatenate.self, Dot.self,
                     LayerNormalization.self, BatchNormalization.self, ThresholdedReLU.self,
                     SpatialDropout1D.self, SpatialDropout2D.self, SpatialDropout3D.self, AlphaDropout.self, TimeDistributed.self,
                     SimpleRNN.self, LSTM.self, GRU.self, Bidirectional.self, LocallyConnected1D.self, LocallyConnected2D.self,
                     Sequential.self, Model.self] as [Layer.Type] {
            t[type.kerasClassName] = type
        }
        t["Functional"] = Model.self
        t["Model"] = Model.self  // Keras 2 wrote functional models as "Model"
        // Keras 2 names
        t["Convolution1D"] = Conv1D.self; t["Convolution2D"] = Conv2D.self; t["Convolution3D"] = Conv3D.self
        t["Deconvolution2D"] = Conv2DTranspose.self; t["SeparableConvolution2D"] = SeparableConv2D.self
        t["MaxPool1D"] = MaxPooling1D.self; t["MaxPool2D"] = MaxPooling2D.self; t["MaxPool3D"] = MaxPooling3D.self
        t["AvgPool1D"] = AveragePooling1D.self; t["AvgPool2D"] = AveragePooling2D.self; t["AvgPool3D"] = AveragePooling3D.self
        t["GlobalMaxPool1D"] = GlobalMaxPooling1D.self; t["GlobalMaxPool2D"] = GlobalMaxPooling2D.self
        t["GlobalAvgPool1D"] = GlobalAveragePooling1D.self; t["GlobalAvgPool2D"] = GlobalAveragePooling2D.self
        return t
    }()

    /// Registers a custom layer type under its Keras class name.
    public static func register(_ type: Layer.Type, as name: String? = nil) { types[name ?? type.kerasClassName] = type }

    /// Every registered class name (Keras 2 aliases included), sorted.
    public static var classNames: [String] { types.keys.sorted() }

    /// The registered classes, each once under its own Keras class name.
    public static var canonicalClassNames: [String] { types.filter { $0.key == $0.value.kerasClassName }.keys.sorted() }

    /// A layer from a serialized object ({"class_name", "config", ...}).
    public static func deserialize(_ json: JSON) throws -> Layer {
        guard let cls = json["class_name"]?.stringValue else {
            throw KerasError("cannot read a layer from \(json.serialized().prefix(200))")
        }
        // Keras 1's Merge layer names its operation in `mode`.
        if cls == "Merge" && types[cls] == nil { return try LegacyMerge.from(config: json["config"] ?? .object([])) }
        guard let type = types[cls] else {
            throw KerasError("unknown layer class '\(cls)' (registered: \(types.keys.sorted().joined(separator: ", "))); a custom layer is registered with LayerRegistry.register(MyLayer.self) or passed to modelFromJSON/loadModel as customObjects")
        }
        let config = keras1Normalized(json["config"] ?? .object([]), className: cls)
        let layer = try type.from(config: config)
        // Every layer and nested model honours "trainable" in its config, whatever its own from(config:) reads.
        layer.trainable = try config.bool("trainable", default: layer.trainable)
        return layer
    }

    /// A Keras 1 config's keys under their Keras 2/3 names, where the newer
    /// name is absent: init, W_/b_ regularizers and constraints, bias, Dense's
    /// output_dim, convolutions' nb_filter, nb_row/nb_col, filter_length,
    /// border_mode, subsample(_length) and dim_ordering, pooling's
    /// pool_length and stride, Embedding's init and W_* (its weights are
    /// "embeddings"), PReLU's init; the recurrent layers' output_dim,
    /// inner_init, inner_activation, U_* and dropout_W/U (and LSTM's
    /// forget_bias_init "one"), Convolution3D's kernel_dim1-3, atrous_rate,
    /// the dropouts' p, GaussianNoise's sigma, BatchNormalization's
    /// beta_init and gamma_init, UpSampling1D's length.
    static func keras1Normalized(_ config: JSON, className: String) -> JSON {
        var c = config
        func move(_ old: String, _ new: String, _ transform: (JSON) -> JSON = { $0 }) {
            guard let v = c[old], c[new] == nil else { return }
            c.remove(old)
            c.set(new, transform(v))
        }
        let weights = className == "Embedding" ? "embeddings" : className == "PReLU" ? "alpha" : "kernel"
        move("init", "\(weights)_initializer")
        move("W_regularizer", "\(weights)_regularizer"); move("b_regularizer", "bias_regularizer")
        move("W_constraint", "\(weights)_constraint"); move("b_constraint", "bias_constraint")
        move("bias", "use_bias")
        if className == "Dense" { move("output_dim", "units") }
        if ["SimpleRNN", "LSTM", "GRU"].contains(className) {
            move("output_dim", "units")
            move("inner_init", "recurrent_initializer"); move("inner_activation", "recurrent_activation")
            move("U_regularizer", "recurrent_regularizer"); move("U_constraint", "recurrent_constraint")
            move("dropout_W", "dropout"); move("dropout_U", "recurrent_dropout")
            move("forget_bias_init", "unit_forget_bias") { v in .bool(v.stringValue == "one") }
        }
        if ["Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout", "AlphaDropout"].contains(className) {
            move("p", "rate")
        }
        if className == "GaussianNoise" { move("sigma", "stddev") }
        if className == "BatchNormalization" { move("beta_init", "beta_initializer"); move("gamma_init", "gamma_initializer") }
        if className == "UpSampling1D" { move("length", "size") }
        if let d1 = c["kernel_dim1"]?.intValue, let d2 = c["kernel_dim2"]?.intValue, let d3 = c["kernel_dim3"]?.intValue, c["kernel_size"] == nil {
            c.remove("kernel_dim1"); c.remove("kernel_dim2"); c.remove("kernel_dim3")
            c.set("kernel_size", JSON([d1, d2, d3]))
        }
        move("atrous_rate", "dilation_rate")
        move("nb_filter", "filters")
        if let r = c["nb_row"]?.intValue, let col = c["nb_col"]?.intValue, c["kernel_size"] == nil {
            c.remove("nb_row"); c.remove("nb_col")
            c.set("kernel_size", JSON([r, col]))
        }
        move("filter_length", "kernel_size") { v in v.intValue.map { JSON([$0]) } ?? v }
        move("pool_length", "pool_size") { v in v.intValue.map { JSON([$0]) } ?? v }
        move("border_mode", "padding")
        move("subsample_length", "strides") { v in v.intValue.map { JSON([$0]) } ?? v }
        move("subsample", "strides")
        move("stride", "strides") { v in v.intValue.map { JSON([$0]) } ?? v }
        move("dim_ordering", "data_format") { v in
            switch v.stringValue { case "th"?: return "channels_first"; case "tf"?: return "channels_last"; default: return v }
        }
        return c
    }
}
