import KerasIR
import KerasRuntime

/// NumPy's .npy format (version 1.0) and .npz archives: what `np.save`,
/// `np.savez` and `np.savez_compressed` write (this writes stored entries).
public enum NumPy {
    // MARK: .npy

    public static func encode(_ t: Tensor) -> [UInt8] {
        let descr = t.dtype == .f32 ? "<f4" : "<i4"
        let shape = t.shape.isEmpty ? "()" : t.shape.count == 1 ? "(\(t.shape[0]),)" : "(" + t.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
        let total = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let n = UInt16(header.utf8.count)
        out += [UInt8(n & 0xff), UInt8(n >> 8)]
        out += Array(header.utf8)
        t.withRawBytes { out += Array($0) }
        return out
    }

    /// Reads a .npy: little-endian f4, i4 (as is), f8, i8, u1, b1 (converted), C order.
    public static func decode(_ bytes: [UInt8], name: String = "array") throws -> Tensor {
        func fail(_ m: String) -> KerasError { KerasError("\(name): not a valid .npy file: \(m)") }
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else { throw fail("bad magic") }
        let major = bytes[6]
        var headerLen: Int, start: Int
        if major == 1 {
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8
            start = 10
        } else if major == 2 || major == 3 {
            guard bytes.count >= 12 else { throw fail("truncated header") }
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            start = 12
        } else { throw fail("unsupported version \(major)") }
        guard start + headerLen <= bytes.count else { throw fail("truncated header") }
        let header = String(decoding: bytes[start..<(start + headerLen)], as: UTF8.self)
        func field(_ key: String) -> String? {
            guard let r = header.range(of: "'\(key)':") else { return nil }
            return String(header[r.upperBound...]).trimmingLeadingSpaces()
        }
        guard let d = field("descr"), let q1 = d.firstIndex(of: "'"),
              let q2 = d[d.index(after: q1)...].firstIndex(of: "'") else { throw fail("no descr") }
        let descr = String(d[d.index(after: q1)..<q2])
        if let f = field("fortran_order"), f.hasPrefix("True") { throw fail("Fortran-ordered arrays are not supported") }
        guard let s = field("shape"), let open = s.firstIndex(of: "("), let close = s.firstIndex(of: ")"), open < close else {
            throw fail("no shape tuple in the header \(abbreviated(header, limit: 120))")
        }
        let dims = try s[s.index(after: open)..<close].split(separator: ",").map { $0.trimmingCharacters() }.filter { !$0.isEmpty }.map { p -> Int in
            guard let v = Int(p), v >= 0 else { throw fail("bad shape \(abbreviated(String(s[open...close]), limit: 120))") }
            return v
        }
        let width: Int
        switch descr {
        case "<f4", "<i4": width = 4
        case "<f8", "<i8": width = 8
        case "|u1", "|b1", "<u1", "|i1": width = 1
        default: throw fail("unsupported dtype '\(abbreviated(descr, limit: 40))' (float32, int32, float64, int64, uint8, bool)")
        }
        // The file must hold the data before anything is allocated for it.
        let count = try MemoryLimit.elementCount(dims, name)
        let dataStart = start + headerLen, available = bytes.count - dataStart
        guard count <= available / width else {
            throw fail("holds \(available) data bytes, shape \(dims) needs \(count.multipliedReportingOverflow(by: width).overflow ? "more than 8 EiB" : String(count * width))")
        }
        try MemoryLimit.check(name, count: count, elementBytes: 4, shape: dims)
        do { try TensorType(.f32, dims).checkSize() } catch let e as ShapeError { throw fail(e.message) }
        return try bytes.withUnsafeBytes { whole -> Tensor in
            let raw = UnsafeRawBufferPointer(rebasing: whole[dataStart...])
            switch descr {
            case "<f4": return try Tensor((0..<count).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self).littleEndian) }, shape: dims)
            case "<i4": return try Tensor((0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self).littleEndian }, shape: dims)
            case "<f8": return try Tensor((0..<count).map { Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self).littleEndian)) }, shape: dims)
            case "<i8": return try Tensor((0..<count).map { Int32(clamping: raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self).littleEndian) }, shape: dims)
            case "|i1": return try Tensor((0..<count).map { Int32(Int8(bitPattern: raw[$0])) }, shape: dims)
            default: return try Tensor((0..<count).map { Int32(raw[$0]) }, shape: dims)
            }
        }
    }

    // MARK: .npz

    /// A zip of stored (uncompressed) `<name>.npy` entries, in the given order.
    /// Sizes past the classic zip fields (4 GiB, 65,535 entries or name
    /// bytes) are an error: this writer does not write ZIP64.
    public static func encodeArchive(_ arrays: [(String, Tensor)]) throws -> [UInt8] {
        var total = 0
        for (name, t) in arrays {
            total = MemoryLimit.saturatingSum(total, MemoryLimit.saturatingSum(t.count.multipliedReportingOverflow(by: 4).partialValue, 256 + 2 * name.utf8.count))
        }
        guard total < Int(UInt32.max) else {
            throw KerasError("npz: \(formatBytes(total)) of arrays, more than the 4 GiB a zip without ZIP64 holds")
        }
        return try ZipArchive.write(arrays.map { ($0.0 + ".npy", encode($0.1)) }, kind: "npz")
    }

    /// The arrays of an .npz, in archive order: stored entries (`np.savez`) and
    /// deflated ones (`np.savez_compressed`), each checked against its CRC-32.
    public static func decodeArchive(_ bytes: [UInt8], name: String = "archive") throws -> [(String, Tensor)] {
        try ZipArchive.read(bytes, name: name, kind: "npz").map { entry, data in
            let key = entry.hasSuffix(".npy") ? String(entry.dropLast(4)) : entry
            return (key, try decode(data, name: "\(name)[\(key)]"))
        }
    }

    public static func crc32(_ data: [UInt8]) -> UInt32 { ZipArchive.crc32(data) }
}

private extension String {
    func trimmingLeadingSpaces() -> String { String(drop { $0 == " " }) }
}
private extension Substring {
    func trimmingCharacters() -> String {
        var s = self
        while let f = s.first, f == " " { s.removeFirst() }
        while let l = s.last, l == " " { s.removeLast() }
        return String(s)
    }
}

/// The whole file as bytes.
func readFileBytes(_ path: String) throws -> [UInt8] {
    guard let text = try readBinaryFile(path) else { throw KerasError("\(path): cannot read the file") }
    return text
}
