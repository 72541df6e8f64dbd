import KerasIR

/// Graphs shared by the text, pass and runtime tests.
public enum TestGraphs {
    /// The 784 -> hidden -> 10 MLP training graph of `ExampleGraphs`.
    public static func mlpTraining(learningRate: Float = 0.1, hidden: Int = 64) throws -> Graph {
        try ExampleGraphs.mlpTraining(learningRate: learningRate, hidden: hidden)
    }
}
