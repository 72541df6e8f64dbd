import KerasIR
import KerasRuntime

/// Compile state of a model: optimizer, losses, metrics and the plans
/// compiled from them (filled in by compile()).
final class TrainingState {
    func invalidatePlans() {}
}
