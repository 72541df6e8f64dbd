/// Datatypes, dataspaces, dataset contents and attributes of HDF5 objects.

/// The element types this reader decodes.
enum HDF5Type: Equatable {
    case float(size: Int)
    case integer(size: Int, signed: Bool)
    case varString
    case fixedString(size: Int)

    var size: Int {
        switch self {
        case .float(let s), .integer(let s, _), .fixedString(let s): return s
        case .varString: return 16
        }
    }
}

/// What a dataset or attribute holds, flattened in row-major order.
public enum HDF5Values: Equatable {
    case numbers([Double])
    case strings([String])

    public var count: Int {
        switch self { case .numbers(let v): return v.count; case .strings(let v): return v.count }
    }
}

extension HDF5Cursor {
    /// A datatype message body.
    mutating func datatype() throws -> HDF5Type {
        let classAndVersion = try u8()
        let bits = try uint(3), size = try u32()
        switch classAndVersion & 0x0f {
        case 0:
            guard bits & 1 == 0 else { throw fail("big-endian integers are not supported") }
            guard [1, 2, 4, 8].contains(size) else { throw fail("integer of \(size) bytes is not supported") }
            skip(4)
            return .integer(size: size, signed: bits & 0x8 != 0)
        case 1:
            guard bits & 1 == 0, bits & 0x40 == 0 else { throw fail("big-endian floats are not supported") }
            guard size == 4 || size == 8 else { throw fail("a float of \(size) bytes is not supported") }
            skip(12)
            return .float(size: size)
        case 3:
            return .fixedString(size: size)
        case 8:
            // An enumeration (h5py's bool): read as its base integer type.
            let base = try datatype()
            guard case .integer = base else { throw fail("an enumeration over \(base) is not supported") }
            return base
        case 9:
            guard bits & 0xf == 1 else { throw fail("variable-length sequences other than strings are not supported") }
            return .varString
        default:
            throw fail("datatype class \(classAndVersion & 0x0f) is not supported (floats, integers, booleans and strings are)")
        }
    }

    /// A dataspace message body: the dimensions ([] for a scalar; nil for a null dataspace).
    mutating func dataspace() throws -> [Int]? {
        let version = try u8(), rank = try u8(), flags = try u8()
        guard rank <= 32 else { throw fail("dataspace of rank \(rank)") }
        if version == 1 { skip(5) } else {
            guard version == 2 else { throw fail("dataspace message version \(version) is not supported") }
            if try u8() == 2 { return nil }
        }
        var dims: [Int] = []
        for _ in 0..<rank { dims.append(try length()) }
        if flags & 1 != 0 { skip(rank * lengthSize) }
        return dims
    }
}

extension HDF5Object {
    /// Decodes `count` elements of `type` stored at `start`.
    func decode(_ type: HDF5Type, count: Int, at start: Int, what: String) throws -> HDF5Values {
        let bytes = file.bytes
        let (total, overflow) = count.multipliedReportingOverflow(by: type.size)
        guard !overflow, start >= 0, start <= bytes.count - total else {
            throw KerasError("\(file.name): \(path): \(what): \(count) elements of \(type.size) bytes at byte \(start) run past the end of the file (\(bytes.count) bytes)")
        }
        switch type {
        case .float(4):
            return .numbers((0..<count).map { i in
                let p = start + 4 * i
                let u = UInt32(bytes[p]) | UInt32(bytes[p + 1]) << 8 | UInt32(bytes[p + 2]) << 16 | UInt32(bytes[p + 3]) << 24
                return Double(Float(bitPattern: u))
            })
        case .float:
            var c = try file.cursor(at: start, object: path)
            return .numbers(try (0..<count).map { _ in Double(bitPattern: try c.uint(8)) })
        case .integer(let size, let signed):
            var c = try file.cursor(at: start, object: path)
            return .numbers(try (0..<count).map { _ in
                let u = try c.uint(size)
                if signed && size < 8 && u >> (8 * size - 1) == 1 { return Double(Int64(u) - (Int64(1) << (8 * size))) }
                return signed ? Double(Int64(bitPattern: u)) : Double(u)
            })
        case .fixedString(let size):
            return .strings((0..<count).map { i in
                let s = bytes[start + i * size ..< start + (i + 1) * size]
                return String(decoding: s.prefix { $0 != 0 }, as: UTF8.self)
            })
        case .varString:
            var c = try file.cursor(at: start, object: path)
            var heaps: [Int: GlobalHeap] = [:]
            return .strings(try (0..<count).map { _ in
                let length = try c.u32(), collection = try c.offset(), index = try c.u32()
                if length == 0 { return "" }
                if heaps[collection] == nil { heaps[collection] = try GlobalHeap(file: file, address: collection, path: path) }
                let obj = try heaps[collection]!.object(index)
                guard length <= obj.count else { throw c.fail("\(what): a string of \(length) bytes in a heap object of \(obj.count)") }
                return String(decoding: file.bytes[obj.lowerBound ..< obj.lowerBound + length], as: UTF8.self)
            })
        }
    }

    /// The dataset's shape and values.
    public func read() throws -> (shape: [Int], values: HDF5Values) {
        guard let layout = message(Message.layout), let typeBody = message(Message.datatype), let spaceBody = message(Message.dataspace) else {
            throw KerasError("\(file.name): \(path) is not a dataset")
        }
        if message(Message.filters) != nil {
            throw KerasError("\(file.name): \(path): filtered (compressed) datasets are not supported; Keras writes them uncompressed")
        }
        if message(Message.external) != nil {
            throw KerasError("\(file.name): \(path): data in external files is not supported; Keras writes it inside the file")
        }
        var tc = try file.cursor(at: typeBody.lowerBound, object: path), sc = try file.cursor(at: spaceBody.lowerBound, object: path)
        let type = try tc.datatype()
        let shape = try sc.dataspace() ?? [0]
        let (count, overflow) = shape.reduce((1, false)) { acc, d in
            let (v, o) = acc.0.multipliedReportingOverflow(by: d)
            return (v, acc.1 || o)
        }
        guard !overflow, count <= file.bytes.count else {
            throw KerasError("\(file.name): \(path): declares \(shape) elements, more than the file could hold")
        }
        var c = try file.cursor(at: layout.lowerBound, object: path)
        let version = try c.u8()
        guard version == 3 else { throw c.fail("data layout message version \(version) is not supported (Keras writes version 3)") }
        switch try c.u8() {
        case 0:
            let size = try c.u16()
            guard size >= count * type.size else { throw c.fail("compact data of \(size) bytes for \(count) elements") }
            return (shape, try decode(type, count: count, at: c.position, what: "data"))
        case 1:
            let address = try c.offset(), size = try c.length()
            if address == -1 { return (shape, .numbers([Double](repeating: 0, count: count))) }  // never written: the fill value
            guard size >= count * type.size else { throw c.fail("contiguous data of \(size) bytes for \(count) elements of \(type.size) bytes") }
            return (shape, try decode(type, count: count, at: address, what: "data"))
        case 2: throw c.fail("chunked datasets are not supported; Keras writes contiguous ones")
        case let other: throw c.fail("data layout class \(other) is not supported")
        }
    }

    /// The dataset as float32 values with its shape.
    public func floats() throws -> (shape: [Int], values: [Float]) {
        let (shape, v) = try read()
        guard case .numbers(let n) = v else { throw KerasError("\(file.name): \(path) holds strings, not numbers") }
        return (shape, n.map { Float($0) })
    }

    /// Attributes by name, each with its shape ([] for a scalar) and values.
    public func attributes() throws -> [String: (shape: [Int], values: HDF5Values)] {
        var out: [String: (shape: [Int], values: HDF5Values)] = [:]
        for (type, body) in messages where type == Message.attribute {
            var c = try file.cursor(at: body.lowerBound, object: path)
            let version = try c.u8()
            guard (1...3).contains(version) else { throw c.fail("attribute message version \(version) is not supported") }
            c.skip(1)
            let nameSize = try c.u16(), typeSize = try c.u16(), spaceSize = try c.u16()
            if version == 3 { c.skip(1) }
            func padded(_ n: Int) -> Int { version == 1 ? (n + 7) / 8 * 8 : n }
            let nameBytes = try c.take(nameSize)
            let name = String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)
            c.position = nameBytes.startIndex + padded(nameSize)
            let typeStart = c.position
            let elementType = try c.datatype()
            c.position = typeStart + padded(typeSize)
            let spaceStart = c.position
            let shape = try c.dataspace()
            c.position = spaceStart + padded(spaceSize)
            let (count, overflow) = (shape ?? [0]).reduce((1, false)) { acc, d in
                let (v, o) = acc.0.multipliedReportingOverflow(by: d)
                return (v, acc.1 || o)
            }
            guard !overflow, count >= 0, count <= file.bytes.count else { throw c.fail("attribute \(name) declares \(shape ?? []) elements, more than the file could hold") }
            out[name] = (shape ?? [0], try decode(elementType, count: count, at: c.position, what: "attribute \(name)"))
        }
        return out
    }

    /// A string attribute's values (a scalar gives one).
    public func stringAttribute(_ name: String) throws -> [String]? {
        guard let a = try attributes()[name] else { return nil }
        switch a.values {
        case .strings(let s): return s
        case .numbers(let n) where n.isEmpty: return []  // Keras writes an empty float64 array for no names
        default: throw KerasError("\(file.name): \(path): attribute \(name) holds numbers, not strings")
        }
    }
}

/// A global heap collection: the bodies of variable-length strings.
struct GlobalHeap {
    var objects: [Int: Range<Int>] = [:]

    init(file: HDF5File, address: Int, path: String) throws {
        var c = try file.cursor(at: address, object: path)
        try c.signature("GCOL")
        c.skip(4)
        let size = try c.length()
        guard size >= 16, address <= file.bytes.count - size else { throw c.fail("global heap of \(size) bytes at \(address) runs past the end of the file") }
        let end = address + size
        while c.position + 8 + file.lengthSize <= end {
            let index = try c.u16()
            c.skip(6)
            let objectSize = try c.length()
            if index == 0 { break }  // free space: the rest of the collection
            guard c.position <= end - objectSize else { throw c.fail("global heap object \(index) overruns its collection") }
            objects[index] = c.position ..< c.position + objectSize
            c.position += (objectSize + 7) / 8 * 8
        }
    }

    func object(_ index: Int) throws -> Range<Int> {
        guard let r = objects[index] else { throw KerasError("global heap has no object \(index)") }
        return r
    }
}
