// Named weights bound to layers by their PyTorch state_dict names, loaded strictly.

/// A loading problem: a tensor the model needs that is absent or mis-shaped, or one it does not know.
public enum WeightProblem: Hashable, CustomStringConvertible, Sendable {
    case missing(name: String, expected: [Int])
    case shapeMismatch(name: String, expected: [Int], actual: [Int])
    case unexpected(name: String, shape: [Int])

    public var description: String {
        switch self {
        case let .missing(name, expected): return "missing \(name) \(expected)"
        case let .shapeMismatch(name, expected, actual): return "mis-shaped \(name): model \(expected), checkpoint \(actual)"
        case let .unexpected(name, shape): return "unexpected \(name) \(shape)"
        }
    }
}

/// Thrown when a set of weights does not fit a model; lists every problem, not only the first.
public struct WeightLoadingError: Error, CustomStringConvertible, Sendable {
    public let problems: [WeightProblem]
    public var description: String {
        let missing = problems.filter { if case .missing = $0 { return true }; return false }.count
        let unexpected = problems.filter { if case .unexpected = $0 { return true }; return false }.count
        let misshaped = problems.count - missing - unexpected
        let head = "the checkpoint does not fit the model: \(missing) missing, \(unexpected) unexpected, \(misshaped) mis-shaped"
        let listed = problems.prefix(40).map { "  " + $0.description }.joined(separator: "\n")
        let more = problems.count > 40 ? "\n  ... and \(problems.count - 40) more" : ""
        return head + "\n" + listed + more
    }
}

/// The tensors of a checkpoint by name, with a record of which ones a model took.
///
/// Layers take their tensors through a `WeightScope`; a missing or mis-shaped tensor is recorded and a
/// zero tensor returned, so that building the model reports every problem at once through `verify()`.
public final class WeightStore: @unchecked Sendable {
    private var tensors: [String: Tensor]
    private var taken: Set<String> = []
    private var problems: [WeightProblem] = []

    public init(_ tensors: [String: Tensor]) {
        self.tensors = tensors
    }

    /// The scope at the root of the state_dict names.
    public var root: WeightScope { WeightScope(store: self, prefix: "") }

    public var names: [String] { tensors.keys.sorted() }

    func take(_ name: String, shape: [Int]) -> Tensor {
        taken.insert(name)
        guard let tensor = tensors[name] else {
            problems.append(.missing(name: name, expected: shape))
            return Tensor(shape: shape)
        }
        guard tensor.shape == shape else {
            problems.append(.shapeMismatch(name: name, expected: shape, actual: tensor.shape))
            return Tensor(shape: shape)
        }
        return tensor
    }

    /// Throws when any tensor was missing or mis-shaped, or when the store holds tensors no layer took.
    public func verify() throws {
        var all = problems
        for name in tensors.keys.sorted() where !taken.contains(name) {
            all.append(.unexpected(name: name, shape: tensors[name]!.shape))
        }
        if !all.isEmpty { throw WeightLoadingError(problems: all) }
    }

    /// Drops the store's references so that the layers hold the only copy of each tensor.
    public func release() {
        tensors.removeAll()
    }
}

/// A position in the state_dict name tree, like candle's `vb.pp("layer1")`.
public struct WeightScope {
    let store: WeightStore
    public let prefix: String

    /// The scope of a child module.
    public func callAsFunction(_ child: String) -> WeightScope {
        WeightScope(store: store, prefix: prefix.isEmpty ? child : prefix + "." + child)
    }

    public func callAsFunction(_ index: Int) -> WeightScope { self(String(index)) }

    /// The tensor `name` under this scope, which must have `shape`.
    public func tensor(_ name: String, _ shape: [Int]) -> Tensor {
        store.take(prefix.isEmpty ? name : prefix + "." + name, shape: shape)
    }
}
