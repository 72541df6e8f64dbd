/// A read-only view of an HDF5 file in the dialect Keras and h5py write by
/// default (Tests/Fixtures/conformance/FORMATS.md): superblock v0/v1,
/// version-1 object headers with continuation chunks, symbol-table groups
/// (v1 B-tree, symbol nodes, local heap); and what h5py writes with
/// `track_order` or `libver="latest"`: superblock v2/v3, version-2 object
/// headers, link messages of compact new-style groups; contiguous and compact datasets of floats,
/// integers and booleans; attributes, with variable-length strings from the
/// global heap. Anything else (chunked or filtered data, dense link storage)
/// is an error naming the feature and the object.
/// Every address and size is checked against the file before it is followed,
/// and every walk (continuation chains, B-trees) refuses to revisit a node.
public struct HDF5File {
    let bytes: [UInt8]
    let name: String
    let offsetSize: Int
    let lengthSize: Int
    let rootAddress: Int

    static let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]

    public init(bytes: [UInt8], name: String) throws {
        self.bytes = bytes
        self.name = name
        guard bytes.count >= 8, Array(bytes[0..<8]) == HDF5File.signature else {
            throw KerasError("\(name): not an HDF5 file (no HDF5 signature at byte 0)")
        }
        var r = HDF5Cursor(bytes: bytes, at: 8, file: name, object: "superblock")
        let version = try r.u8()
        if version == 2 || version == 3 {
            // h5py's libver="latest" files: sizes, flags, then four addresses and a checksum.
            offsetSize = try r.u8()
            lengthSize = try r.u8()
            guard [4, 8].contains(offsetSize), [4, 8].contains(lengthSize) else {
                throw KerasError("\(name): superblock declares \(offsetSize)-byte offsets and \(lengthSize)-byte lengths; only 4 and 8 are valid")
            }
            r.skip(1)
            r.offsetSize = offsetSize; r.lengthSize = lengthSize
            _ = try r.offset()  // base address
            _ = try r.offset()  // superblock extension
            let eof = try r.offset()
            guard eof <= bytes.count else {
                throw KerasError("\(name): truncated: the superblock says the file ends at byte \(eof), it has \(bytes.count) bytes")
            }
            rootAddress = try r.offset()
            return
        }
        guard version <= 1 else { throw KerasError("\(name): superblock version \(version) is not supported (versions 0 to 3 are read)") }
        r.skip(4)
        offsetSize = try r.u8()
        lengthSize = try r.u8()
        guard [4, 8].contains(offsetSize), [4, 8].contains(lengthSize) else {
            throw KerasError("\(name): superblock declares \(offsetSize)-byte offsets and \(lengthSize)-byte lengths; only 4 and 8 are valid")
        }
        r.skip(1 + 2 + 2 + 4 + (version == 1 ? 4 : 0))
        r.offsetSize = offsetSize; r.lengthSize = lengthSize
        _ = try r.offset()  // base address
        _ = try r.offset()  // free-space info
        let eof = try r.offset()
        guard eof <= bytes.count else {
            throw KerasError("\(name): truncated: the superblock says the file ends at byte \(eof), it has \(bytes.count) bytes")
        }
        _ = try r.offset()  // driver info
        _ = try r.offset()  // root entry: link name offset
        rootAddress = try r.offset()
    }

    func cursor(at address: Int, object: String) throws -> HDF5Cursor {
        guard address >= 0, address <= bytes.count else {
            throw KerasError("\(name): \(object): address \(address) is past the end of the file (\(bytes.count) bytes)")
        }
        var c = HDF5Cursor(bytes: bytes, at: address, file: name, object: object)
        c.offsetSize = offsetSize
        c.lengthSize = lengthSize
        return c
    }

    /// The root group.
    public func root() throws -> HDF5Object { try HDF5Object(file: self, address: rootAddress, path: "/") }

    /// The object at a slash-separated path from the root ("layers/dense/vars/0").
    public func object(at path: String) throws -> HDF5Object {
        var o = try root()
        for part in path.split(separator: "/") { o = try o.child(String(part)) }
        return o
    }

    /// The object at `path`, or nil when a link on the way is absent; a
    /// damaged structure on the way is still an error.
    public func objectIfPresent(at path: String) throws -> HDF5Object? {
        var o = try root()
        for part in path.split(separator: "/") {
            guard o.isGroup, try o.links()[String(part)] != nil else { return nil }
            o = try o.child(String(part))
        }
        return o
    }
}

/// Bounds-checked little-endian reads; every failure names the file and object.
struct HDF5Cursor {
    let bytes: [UInt8]
    var position: Int
    let file: String
    let object: String
    var offsetSize = 8
    var lengthSize = 8

    init(bytes: [UInt8], at position: Int, file: String, object: String) {
        self.bytes = bytes
        self.position = position
        self.file = file
        self.object = object
    }

    func fail(_ message: String) -> KerasError { KerasError("\(file): \(object): \(message)") }

    mutating func skip(_ n: Int) { position += n }

    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, position >= 0, position <= bytes.count - n else {
            throw fail("truncated: \(n) bytes wanted at byte \(position), the file has \(bytes.count)")
        }
        defer { position += n }
        return bytes[position ..< position + n]
    }

    mutating func uint(_ n: Int) throws -> UInt64 {
        try take(n).reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }
    mutating func u8() throws -> Int { Int(try uint(1)) }
    mutating func u16() throws -> Int { Int(try uint(2)) }
    mutating func u32() throws -> Int { Int(try uint(4)) }

    /// An `n`-byte size field, which can be no larger than the file.
    mutating func size(_ n: Int) throws -> Int {
        let v = try uint(n)
        guard v <= UInt64(bytes.count) else { throw fail("declared size \(v) is larger than the whole file (\(bytes.count) bytes)") }
        return Int(v)
    }

    /// An address; the all-ones "undefined address" reads as -1.
    mutating func offset() throws -> Int {
        let v = try uint(offsetSize)
        if v == (offsetSize == 8 ? UInt64.max : UInt64(UInt32.max)) { return -1 }
        guard v <= UInt64(Int.max) else { throw fail("address \(v) is out of range") }
        return Int(v)
    }

    mutating func length() throws -> Int {
        let v = try uint(lengthSize)
        guard v <= UInt64(bytes.count) else { throw fail("declared size \(v) is larger than the whole file (\(bytes.count) bytes)") }
        return Int(v)
    }

    mutating func signature(_ s: String) throws {
        let got = try take(4)
        guard Array(got) == Array(s.utf8) else {
            throw fail("expected a \(s) block at byte \(position - 4), found \(String(decoding: got.map { $0 < 32 || $0 > 126 ? 46 : $0 }, as: UTF8.self).debugDescription)")
        }
    }
}
