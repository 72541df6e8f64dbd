/// The zip subset .npz and .keras files use: reading stored (0) and deflated
/// (8) entries through the central directory, every entry checked against its
/// CRC-32 and declared sizes; writing stored entries with a CRC-32 each and no
/// data descriptors, extra fields or ZIP64 records, as Python's zipfile writes
/// Keras's archives.
public enum ZipArchive {
    /// Entries in archive order: (name, contents). `kind` names the format in
    /// errors ("npz", "keras").
    public static func read(_ bytes: [UInt8], name: String, kind: String) throws -> [(String, [UInt8])] {
        func fail(_ m: String) -> KerasError { KerasError("\(name): not a valid .\(kind) file: \(m)") }
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
        var out: [(String, [UInt8])] = []
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
                // The inflated bytes and what is decoded from them exist together.
                try MemoryLimit.check("\(name)[\(entry)] inflated", count: size, elementBytes: 1, copies: 2)
                do { data = try Inflate.decompress(bytes, start: start, end: start + compressed, size: size) } catch let e as Inflate.Failure {
                    throw fail("entry \(entry) does not inflate: \(e.message)")
                }
            } else {
                data = Array(bytes[start..<(start + size)])
            }
            guard crc32(data) == UInt32(crc) else { throw fail("entry \(entry) fails its CRC-32 check (corrupt data)") }
            out.append((entry, data))
        }
        return out
    }

    /// A zip of stored entries in the given order. `dates` gives each entry's
    /// MS-DOS (time, date) fields (default: 1980-01-01 00:00, 0x0000/0x0021).
    public static func write(_ entries: [(String, [UInt8])], kind: String, dates: [(time: Int, date: Int)]? = nil) throws -> [UInt8] {
        guard entries.count <= 0xFFFF else { throw KerasError("\(kind): \(entries.count) entries, more than the 65535 a zip without ZIP64 holds") }
        var total = 0
        for (name, data) in entries {
            guard name.utf8.count <= 0xFFFF else { throw KerasError("\(kind): an entry name of \(name.utf8.count) bytes is too long") }
            total = MemoryLimit.saturatingSum(total, MemoryLimit.saturatingSum(data.count, 128 + 2 * name.utf8.count))
        }
        guard total < Int(UInt32.max) else {
            throw KerasError("\(kind): \(formatBytes(total)) of entries, more than the 4 GiB a zip without ZIP64 holds")
        }
        var out: [UInt8] = [], central: [UInt8] = []
        func u16(_ v: Int, _ a: inout [UInt8]) { a += [UInt8(v & 0xff), UInt8((v >> 8) & 0xff)] }
        func u32(_ v: UInt32, _ a: inout [UInt8]) { a += (0..<4).map { UInt8((v >> (8 * $0)) & 0xff) } }
        for (k, (name, data)) in entries.enumerated() {
            let file = Array(name.utf8)
            let crc = crc32(data), offset = UInt32(out.count)
            let (time, date) = dates.map { $0[k] } ?? (0, 0x21)
            u32(0x04034b50, &out); u16(20, &out); u16(0, &out); u16(0, &out); u16(time, &out); u16(date, &out)
            u32(crc, &out); u32(UInt32(data.count), &out); u32(UInt32(data.count), &out); u16(file.count, &out); u16(0, &out)
            out += file + data
            u32(0x02014b50, &central); u16(20, &central); u16(20, &central); u16(0, &central); u16(0, &central); u16(time, &central)
            u16(date, &central); u32(crc, &central); u32(UInt32(data.count), &central); u32(UInt32(data.count), &central)
            u16(file.count, &central); u16(0, &central); u16(0, &central); u16(0, &central); u16(0, &central)
            u32(0, &central); u32(offset, &central)
            central += file
        }
        let cdOffset = out.count
        out += central
        u32(0x06054b50, &out); u16(0, &out); u16(0, &out); u16(entries.count, &out); u16(entries.count, &out)
        u32(UInt32(central.count), &out); u32(UInt32(cdOffset), &out); u16(0, &out)
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
