// `import Keras` brings the IR and runtime types (Tensor, DType, Graph, ...) with it.
@_exported import KerasIR
@_exported import KerasRuntime
