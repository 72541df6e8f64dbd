import KerasIR
import KerasRuntime

/// Reading data sets: CSV, IDX (MNIST / Fashion-MNIST), NumPy .npy/.npz.
/// Every failure is an error naming the file and what is wrong with it.
public enum Datasets {
    /// A numeric CSV file: rows of comma-separated numbers. The first line is
    /// a header (and skipped) only when every field in it is a non-empty
    /// non-number; a UTF-8 byte-order mark is dropped. Returns the values and
    /// the column count.
    public static func readCSV(_ path: String) throws -> (values: [Float], rows: Int, columns: Int) {
        guard let bytes = try readBinaryFile(path) else { throw KerasError("\(path): cannot read the file") }
        return try parseCSV(bytes, name: path)
    }

    /// CSV from bytes; errors name `name`, the line and the column. Empty
    /// fields, non-numbers, NaN and infinities are errors, not silent values.
    public static func parseCSV(_ bytes: [UInt8], name: String) throws -> (values: [Float], rows: Int, columns: Int) {
        var body = bytes[...]
        if body.starts(with: [0xEF, 0xBB, 0xBF]) { body = body.dropFirst(3) }
        var values: [Float] = []
        var columns = -1, rows = 0, lineNo = 0, sawFirst = false
        for rawLine in body.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNo += 1
            guard let line = String(validating: rawLine, as: UTF8.self) else {
                throw KerasError("\(name): line \(lineNo) is not valid UTF-8 text")
            }
            let trimmed = Substring(line).trimmingCharacters(in: " \r\t")
            if trimmed.isEmpty { continue }
            let fields = trimmed.split(separator: ",", omittingEmptySubsequences: false).map { Substring($0).trimmingCharacters(in: " \t") }
            let isFirst = !sawFirst
            sawFirst = true
            if isFirst && fields.allSatisfy({ !$0.isEmpty && Float($0) == nil }) { continue }  // header
            if columns < 0 { columns = fields.count }
            guard fields.count == columns else {
                throw KerasError("\(name): line \(lineNo) has \(fields.count) fields, earlier lines have \(columns)")
            }
            for (c, f) in fields.enumerated() {
                guard !f.isEmpty else { throw KerasError("\(name): line \(lineNo), column \(c + 1) is empty") }
                guard let v = Float(f) else {
                    throw KerasError("\(name): line \(lineNo), column \(c + 1) is not a number: '\(abbreviated(f, limit: 40))'")
                }
                guard v.isFinite else {
                    throw KerasError("\(name): line \(lineNo), column \(c + 1) is \(f); the data must be finite numbers")
                }
                values.append(v)
            }
            rows += 1
        }
        guard rows > 0 else { throw KerasError("\(name): no rows of numbers") }
        return (values, rows, columns)
    }

    /// An IDX file (MNIST format): magic 0x0000 TT DD, big-endian dimensions,
    /// then data of type TT (0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int, 0x0D float, 0x0E double).
    public static func readIDX(_ path: String) throws -> Tensor {
        guard let b = try readBinaryFile(path) else { throw KerasError("\(path): cannot read the file") }
        return try parseIDX(b, name: path)
    }

    /// IDX from bytes; errors name `name`.
    public static func parseIDX(_ b: [UInt8], name path: String) throws -> Tensor {
        guard b.count >= 4, b[0] == 0, b[1] == 0 else { throw KerasError("\(path): not an IDX file (bad magic number)") }
        let type = b[2], rank = Int(b[3])
        guard rank >= 1, b.count >= 4 + 4 * rank else { throw KerasError("\(path): truncated IDX header") }
        var shape: [Int] = []
        for d in 0..<rank {
            let o = 4 + 4 * d
            shape.append(Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3]))
        }
        do { try TensorType(.f32, shape).checkSize() } catch let e as ShapeError { throw KerasError("\(path): \(e.message)") }
        let width: Int
        switch type {
        case 0x08, 0x09: width = 1
        case 0x0B: width = 2
        case 0x0C, 0x0D: width = 4
        case 0x0E: width = 8
        default: throw KerasError("\(path): unknown IDX data type 0x\(String(type, radix: 16))")
        }
        let count = shape.reduce(1, *), start = 4 + 4 * rank
        guard b.count >= start + count * width else {
            throw KerasError("\(path): truncated: shape \(shape) needs \(count * width) data bytes, the file has \(b.count - start)")
        }
        try MemoryLimit.check(path, shape: shape)
        func be(_ o: Int, _ n: Int) -> UInt64 { (0..<n).reduce(UInt64(0)) { $0 << 8 | UInt64(b[o + $1]) } }
        var out = [Float](repeating: 0, count: count)
        for i in 0..<count {
            let o = start + i * width
            switch type {
            case 0x08: out[i] = Float(b[o])
            case 0x09: out[i] = Float(Int8(bitPattern: b[o]))
            case 0x0B: out[i] = Float(Int16(bitPattern: UInt16(be(o, 2))))
            case 0x0C: out[i] = Float(Int32(bitPattern: UInt32(be(o, 4))))
            case 0x0D: out[i] = Float(bitPattern: UInt32(be(o, 4)))
            default: out[i] = Float(Double(bitPattern: be(o, 8)))
            }
        }
        return try Tensor(out, shape: shape)
    }

    public static func readNPY(_ path: String) throws -> Tensor {
        try NumPy.decode(try readFileBytes(path), name: path)
    }

    public static func readNPZ(_ path: String) throws -> [(String, Tensor)] {
        try NumPy.decodeArchive(try readFileBytes(path), name: path)
    }

    public static func writeNPY(_ t: Tensor, to path: String) throws { try writeFileAtomically(path, NumPy.encode(t)) }
    public static func writeNPZ(_ arrays: [(String, Tensor)], to path: String) throws { try writeFileAtomically(path, try NumPy.encodeArchive(arrays)) }
}

/// Keras's to_categorical: integer labels to one-hot rows.
public func toCategorical(_ labels: [Int], numClasses: Int? = nil) throws -> Tensor {
    if let bad = labels.enumerated().first(where: { $0.element < 0 }) {
        throw KerasError("to_categorical: label \(bad.element) at index \(bad.offset) is negative")
    }
    let k = numClasses ?? MemoryLimit.saturatingSum(labels.max() ?? -1, 1)
    guard k > 0 else { throw KerasError("to_categorical: no classes (num_classes \(k))") }
    let n = try MemoryLimit.elementCount([labels.count, k], "to_categorical")
    try MemoryLimit.check("to_categorical", count: n, shape: [labels.count, k])
    var out = [Float](repeating: 0, count: n)
    for (i, l) in labels.enumerated() {
        guard l >= 0 && l < k else { throw KerasError("to_categorical: label \(l) at index \(i) is outside [0, \(k))") }
        out[i * k + l] = 1
    }
    return try Tensor(out, shape: [labels.count, k])
}

extension Tensor {
    /// The rows in `order` (a permutation or any selection of row indices).
    public func gatherRows(_ order: [Int]) throws -> Tensor {
        guard let n = shape.first else { throw KerasError("cannot take rows of a scalar") }
        let row = shape.dropFirst().reduce(1, *)
        for i in order where i < 0 || i >= n { throw KerasError("row \(i) is outside an array of \(n) rows") }
        switch storage {
        case .f32(let v): return try Tensor(order.flatMap { v[($0 * row)..<(($0 + 1) * row)] }, shape: [order.count] + shape.dropFirst())
        case .i32(let v): return try Tensor(order.flatMap { v[($0 * row)..<(($0 + 1) * row)] }, shape: [order.count] + shape.dropFirst())
        }
    }

    /// The same values with a new shape of the same size.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        guard try MemoryLimit.elementCount(newShape, "reshape") == count else { throw KerasError("cannot reshape an array of shape \(shape) to \(newShape)") }
        switch storage {
        case .f32(let v): return try Tensor(v, shape: newShape)
        case .i32(let v): return try Tensor(v, shape: newShape)
        }
    }
}

/// A seeded permutation of 0..<n (Fisher-Yates on SplitMix64).
public func shuffledIndices(_ n: Int, seed: UInt64) throws -> [Int] {
    guard n >= 0 else { throw KerasError("shuffledIndices: the count must not be negative, got \(n)") }
    try MemoryLimit.check("shuffledIndices", count: n, elementBytes: MemoryLayout<Int>.size)
    var g = SplitMix64(seed: seed)
    var order = Array(0..<n)
    for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, Int(g.next() % UInt64(i + 1))) }
    return order
}

/// Shuffles the rows of x and y together (seeded) and splits off the last
/// `validationFraction` as held-out data.
public func trainValidationSplit(x: Tensor, y: Tensor, validationFraction: Float, seed: UInt64) throws
    -> (xTrain: Tensor, yTrain: Tensor, xVal: Tensor, yVal: Tensor) {
    guard let n = x.shape.first, y.shape.first == n else { throw KerasError("x and y must have the same number of rows, got \(x.shape) and \(y.shape)") }
    guard validationFraction > 0 && validationFraction < 1 else { throw KerasError("the validation fraction must be in (0, 1), got \(validationFraction)") }
    let order = try shuffledIndices(n, seed: seed)
    let split = n - max(1, Int(Float(n) * validationFraction))
    guard split > 0 else { throw KerasError("\(n) rows are too few to split") }
    let train = Array(order[0..<split]), val = Array(order[split...])
    return (try x.gatherRows(train), try y.gatherRows(train), try x.gatherRows(val), try y.gatherRows(val))
}

private extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var s = self
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
