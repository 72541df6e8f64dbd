import Keras
import KerasIR
import KerasRuntime
#if canImport(Glibc)
import Glibc
#endif

/// One tensor file of a conformance case: raw little-endian f32 or i32, row-major.
struct TensorFile {
    var file: String
    var shape: [Int]
    var dtype: DType

    init(_ json: JSON) throws {
        guard let f = json["file"]?.stringValue, let s = json["shape"]?.arrayValue else {
            throw KerasError("tensor descriptor needs file and shape, got \(abbreviated(json.serialized(), limit: 200))")
        }
        guard !f.isEmpty, !f.hasPrefix("/"), !f.split(separator: "/").contains("..") else {
            throw KerasError("tensor file '\(abbreviated(f, limit: 100))' must be a path inside the case folder")
        }
        file = f
        shape = try s.map { d in
            guard let i = d.intValue, i >= 0, i <= TensorType.maxDimension else {
                throw KerasError("bad dimension \(abbreviated(d.serialized(), limit: 40)) in the shape of \(f)")
            }
            return i
        }
        switch json["dtype"]?.stringValue ?? "float32" {
        case "float32": dtype = .f32
        case "int32": dtype = .i32
        case let other:
            throw KerasError("\(f): dtype '\(abbreviated(other, limit: 40))' is not one of the formats' dtypes (float32, int32)")
        }
    }

    func load(from dir: String) throws -> Tensor {
        let path = dir + "/" + file
        guard let f = fopen(path, "rb") else { throw KerasError("\(path): cannot open") }
        defer { fclose(f) }
        // The declared shape must match the file's size before anything is allocated for it.
        let n = try MemoryLimit.elementCount(shape, path)
        let (want, overflow) = n.multipliedReportingOverflow(by: 4)
        guard fseek(f, 0, SEEK_END) == 0 else { throw KerasError("\(path): cannot seek") }
        let size = ftell(f)
        rewind(f)
        guard !overflow, size == want else {
            throw KerasError("\(path): the file has \(size) bytes, shape \(shape) of \(dtype) needs \(overflow ? "more than 8 EiB" : String(want))")
        }
        try MemoryLimit.check(path, shape: shape, copies: 2)  // the bytes read and the tensor made from them
        var bytes = [UInt8](repeating: 0, count: want)
        let read = bytes.withUnsafeMutableBytes { fread($0.baseAddress, 1, want, f) }
        guard read == want else { throw KerasError("\(path): expected \(want) bytes for shape \(shape), read \(read)") }
        if dtype == .i32 {
            let v = bytes.withUnsafeBytes { raw in (0..<n).map { Int32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) } }
            return try Tensor(v, shape: shape)
        }
        let v = bytes.withUnsafeBytes { raw in (0..<n).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) } }
        return try Tensor(v, shape: shape)
    }
}

/// The outcome of one case.
public enum CaseResult: Equatable {
    case pass
    case fail(String)
    case skip(String)
}

/// A mismatch measure: max |a - e| against tol * (1 + max |e|), per the
/// conformance README.
func compare(_ got: Tensor, _ want: Tensor, tol: Float, what: String) -> String? {
    guard got.shape == want.shape else { return "shape \(got.shape) != \(want.shape) (\(what))" }
    if want.dtype == .i32 {
        return (try? got.ints) == (try? want.ints) ? nil : "values differ (\(what))"
    }
    let g = got.floats, w = want.floats
    var maxErr: Float = 0, scale: Float = 0
    for i in 0..<w.count {
        let e = abs(g[i] - w[i])
        if e.isNaN || e > maxErr { maxErr = e.isNaN ? .infinity : e }
        scale = max(scale, abs(w[i]))
    }
    if maxErr <= tol * (1 + scale) { return nil }
    return "max_abs_err=\(formatFloat(maxErr)) (\(what))"
}

func readJSON(_ path: String) throws -> JSON {
    guard let bytes = try readBinaryFile(path) else { throw KerasError("\(path): cannot open") }
    do { return try JSON.parse(String(decoding: bytes, as: UTF8.self)) } catch {
        throw KerasError("\(path): \(error)")
    }
}
