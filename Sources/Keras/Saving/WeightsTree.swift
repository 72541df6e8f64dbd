/// Keras 3's layout of a model's variables in a .weights.h5 (its saving
/// library walks layers the same way): a node per layer with the layer's own
/// variables as datasets `vars/0`, `vars/1`, ... and its nested trackables as
/// child groups. A container's layers are keyed by their class name in
/// snake_case, made unique in layer order (`dense`, `dense_1`), not by layer
/// name.
public struct WeightsTree {
    public var variables: [Variable]
    public var children: [(key: String, tree: WeightsTree)]
    /// False for a plain container of layers (a model's `layers`), which has no `vars` group.
    public var hasVars: Bool
    /// The name Keras writes as the `vars` group's `name` attribute (informational).
    public var name: String

    public init(variables: [Variable], children: [(key: String, tree: WeightsTree)], hasVars: Bool = true, name: String = "") {
        self.variables = variables
        self.children = children
        self.hasVars = hasVars
        self.name = name
    }

    /// The layers of a container under Keras's keys.
    static func keyed(_ layers: [Layer]) -> [(key: String, tree: WeightsTree)] {
        var used: [String: Int] = [:]
        return layers.map { l in
            let base = kerasSnakeCase(l.kerasClassName)
            let n = used[base, default: 0]
            used[base] = n + 1
            return (n == 0 ? base : "\(base)_\(n)", l.weightsTree)
        }
    }

    /// Every variable with its dataset path ("layers/lstm/cell/vars/0").
    public func datasets(prefix: String = "") -> [(path: String, variable: Variable)] {
        let here = variables.enumerated().map { (prefix + "vars/\($0.offset)", $0.element) }
        return here + children.flatMap { $0.tree.datasets(prefix: prefix + $0.key + "/") }
    }

    /// Every group path that holds a `vars` group, this one first ("", "layers/dense/", ...).
    public func groups(prefix: String = "") -> [String] {
        (hasVars ? [prefix] : []) + children.flatMap { $0.tree.groups(prefix: prefix + $0.key + "/") }
    }
}
