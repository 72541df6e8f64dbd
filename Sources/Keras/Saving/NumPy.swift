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
        guard arrays.count <= 0xFFFF else { throw KerasError("npz: \(arrays.count) arrays, more than the 65535 a zip without ZIP64 holds") }
        var total = 0
        for (name, t) in arrays {
            guard name.utf8.count + 4 <= 0xFFFF else { throw KerasError("npz: an array name of \(name.utf8.count) bytes is too long") }
            total = MemoryLimit.saturatingSum(total, MemoryLimit.saturatingSum(t.count.multipliedReportingOverflow(by: 4).partialValue, 256 + 2 * name.utf8.count))
        }
        guard total < Int(UInt32.max) else {
            throw KerasError("npz: \(formatBytes(total)) of arrays, more than the 4 GiB a zip without ZIP64 holds")
        }
        var out: [UInt8] = [], central: [UInt8] = []
        func u16(_ v: Int, _ a: inout [UInt8]) { a += [UInt8(v & 0xff), UInt8((v >> 8) & 0xff)] }
        func u32(_ v: UInt32, _ a: inout [UInt8]) { a += (0..<4).map { UInt8((v >> (8 * $0)) & 0xff) } }
        for (name, t) in arrays {
            let file = Array((name + ".npy").utf8), data = encode(t)
            let crc = crc32(data), offset = UInt32(out.count)
            u32(0x04034b50, &out); u16(20, &out); u16(0, &out); u16(0, &out); u16(0, &out); u16(0x21, &out)
            u32(crc, &out); u32(UInt32(data.count), &out); u32(UInt32(data.count), &out); u16(file.count, &out); u16(0, &out)
            out += file + data
            u32(0x02014b50, &central); u16(20, &central); u16(20, &central); u16(0, &central); u16(0, &central); u16(0, &central)
            u16(0x21, &central); u32(crc, &central); u32(UInt32(data.count), &central); u32(UInt32(data.count), &central)
            u16(file.count, &central); u16(0, &central); u16(0, &central); u16(0, &central); u16(0, &central)
            u32(0, &central); u32(offset, &central)
            central += file
        }
        let cdOffset = out.count
        out += central
        u32(0x06054b50, &out); u16(0, &out); u16(0, &out); u16(arrays.count, &out); u16(arrays.count, &out)
        u32(UInt32(central.count), &out); u32(UInt32(cdOffset), &out); u16(0, &out)
        return out
    }

    /// The arrays of an .npz, in archive order: stored entries (`np.savez`) and
    /// deflated ones (`np.savez_compressed`), each checked against its CRC-32.
    public static func decodeArchive(_ bytes: [UInt8], name: String = "archive") throws -> [(String, Tensor)] {
        func fail(_ m: String) -> KerasError { KerasError("\(name): not a valid .npz file: \(m)") }
        func u16(_ i: Int) throws -> Int {
            guard i >= 0 && i + 2 <= bytes.count else { throw fail("truncated") }
            return Int(bytes[i]) | Int(bytes[i + 1]) << 8
        }
        func u32(_ i: Int) throws -> Int {
            guard i >= 0 && i + 4 <= bytes.count else { throw fail("truncated") }
            return Int(bytes[i]) | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2]) << 16 | Int(bytes[i + 3]) << 24
        }
        guard bytes.count >= 22 else { throw fail("too short for a zip archive") }
        var eocd = bytes.count - 22
        while try eocd >= 0 && u32(eocd) != 0x06054b50 { eocd -= 1 }
        guard eocd >= 0 else { throw fail("no end-of-central-directory record") }
        let entries = try u16(eocd + 10)
        var p = try u32(eocd + 16)
        var out: [(String, Tensor)] = []
        for _ in 0..<entries {
            guard try u32(p) == 0x02014b50 else { throw fail("bad central directory entry") }
            let method = try u16(p + 10), crc = try u32(p + 16), compressed = try u32(p + 20), size = try u32(p + 24)
            let nameLen = try u16(p + 28), extraLen = try u16(p + 30), commentLen = try u16(p + 32), local = try u32(p + 42)
            guard p + 46 + nameLen <= bytes.count else { throw fail("truncated") }
            let entry = String(decoding: bytes[(p + 46)..<(p + 46 + nameLen)], as: UTF8.self)
            p += 46 + nameLen + extraLen + commentLen
            guard method == 0 || method == 8 else {
                throw fail("entry \(entry) uses compression method \(method); stored (0) and deflate (8) entries are read")
            }
            guard try u32(local) == 0x04034b50 else { throw fail("bad local header for \(entry)") }
            let start = local + 30 + (try u16(local + 26)) + (try u16(local + 28))
            guard start + compressed <= bytes.count, method == 8 || compressed == size else { throw fail("entry \(entry) is truncated") }
            let data: [UInt8]
            if method == 8 {
                // DEFLATE expands at most 1032:1 (258-byte matches in about two bits each);
                // a larger declared size is corrupt, and nothing is allocated for it.
                let (bound, o) = compressed.multipliedReportingOverflow(by: Inflate.maxRatio)
                guard !o, size <= bound + 64 else {
                    throw fail("entry \(entry) declares \(size) bytes from \(compressed) compressed bytes, more than DEFLATE can expand to")
                }
                // The inflated bytes and the array decoded from them exist together.
                try MemoryLimit.check("\(name)[\(entry)] inflated", count: size, elementBytes: 1, copies: 2)
                do { data = try Inflate.decompress(bytes, start: start, end: start + compressed, size: size) } catch let e as Inflate.Failure {
                    throw fail("entry \(entry) does not inflate: \(e.message)")
                }
            } else {
                data = Array(bytes[start..<(start + size)])
            }
            guard crc32(data) == UInt32(crc) else { throw fail("entry \(entry) fails its CRC-32 check (corrupt data)") }
            let key = entry.hasSuffix(".npy") ? String(entry.dropLast(4)) : entry
            out.append((key, try decode(data, name: "\(name)[\(key)]")))
        }
        return out
    }

    static let crcTable: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func crc32(_ data: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFFFFFF
        for b in data { c = crcTable[Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
        return c ^ 0xFFFFFFFF
    }
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
