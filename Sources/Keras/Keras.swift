// Filled by the Keras front-end issue.
@_exported import KerasIR
@_exported import KerasRuntime
