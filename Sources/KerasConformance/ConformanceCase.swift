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
            throw KerasError("tensor descriptor needs file and shape, got \(json.serialized())")
        }
        file = f
        shape = try s.map { d in
            guard let i = d.intValue, i >= 0 else { throw KerasError("bad dimension in \(json.serialized())") }
            return i
        }
        let dt = json["dtype"]?.stringValue ?? "float32"
        dtype = dt == "int32" ? .i32 : .f32
    }

    func load(from dir: String) throws -> Tensor {
        let path = dir + "/" + file
        guard let f = fopen(path, "rb") else { throw KerasError("\(path): cannot open") }
        defer { fclose(f) }
        let n = shape.reduce(1, *)
        var bytes = [UInt8](repeating: 0, count: n * 4)
        let read = bytes.withUnsafeMutableBytes { fread($0.baseAddress, 1, n * 4, f) }
        guard read == n * 4 else { throw KerasError("\(path): expected \(n * 4) bytes for shape \(shape), read \(read)") }
        var extra: UInt8 = 0
        guard fread(&extra, 1, 1, f) == 0 else { throw KerasError("\(path): longer than \(n * 4) bytes for shape \(shape)") }
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
        return got.ints == want.ints ? nil : "values differ (\(what))"
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
    guard let f = fopen(path, "rb") else { throw KerasError("\(path): cannot open") }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n <= 0 { break }
        bytes.append(contentsOf: buf[0..<n])
    }
    do { return try JSON.parse(String(decoding: bytes, as: UTF8.self)) } catch {
        throw KerasError("\(path): \(error)")
    }
}
