/// One object (group or dataset) of an HDF5 file: its header messages,
/// children, attributes and data.
public struct HDF5Object {
    let file: HDF5File
    public let path: String
    /// (message type, byte range of its body) in header order.
    let messages: [(type: Int, body: Range<Int>)]

    /// Message types this reader interprets.
    enum Message {
        static let dataspace = 0x1, linkInfo = 0x2, datatype = 0x3, fillValueOld = 0x4, fillValue = 0x5, link = 0x6
        static let external = 0x7, layout = 0x8, filters = 0xB, attribute = 0xC, continuation = 0x10, symbolTable = 0x11
    }

    /// Bounds a header walk: no real Keras file comes near it.
    static let maxMessages = 1 << 16

    init(file: HDF5File, address: Int, path: String) throws {
        self.file = file
        self.path = path
        var c = try file.cursor(at: address, object: path)
        if address + 4 <= file.bytes.count, Array(file.bytes[address..<address + 4]) == Array("OHDR".utf8) {
            messages = try HDF5Object.version2Messages(file, address, path)
            return
        }
        let version = try c.u8()
        guard version == 1 else { throw c.fail("object header version \(version) is not supported") }
        c.skip(1)
        let count = try c.u16()
        c.skip(4)
        let size = try c.u32()
        c.skip(4)  // header messages start 8-byte aligned, 16 bytes in
        var found: [(Int, Range<Int>)] = []
        var blocks = [(c.position, size)]
        var visited: Set<Int> = [c.position]
        while let (start, length) = blocks.first, found.count < count {
            blocks.removeFirst()
            guard start >= 0, length >= 0, start <= file.bytes.count - length else {
                throw c.fail("a header block of \(length) bytes at \(start) runs past the end of the file")
            }
            var m = try file.cursor(at: start, object: path)
            while m.position + 8 <= start + length, found.count < count {
                let type = try m.u16(), bodySize = try m.u16()
                m.skip(4)
                let body = m.position ..< m.position + bodySize
                guard body.upperBound <= start + length else {
                    throw m.fail("message of type \(type) (\(bodySize) bytes) overruns its header block")
                }
                found.append((type, body))
                if found.count > HDF5Object.maxMessages { throw m.fail("more than \(HDF5Object.maxMessages) header messages") }
                if type == Message.continuation {
                    var cc = try file.cursor(at: body.lowerBound, object: path)
                    let next = try cc.offset(), nextLength = try cc.length()
                    guard visited.insert(next).inserted else { throw m.fail("its header continuation chain loops back to byte \(next)") }
                    blocks.append((next, nextLength))
                }
                m.position = body.upperBound
            }
        }
        messages = found
    }

    /// A version-2 header ("OHDR", then "OCHK" continuation chunks), each
    /// chunk ending in a checksum; messages have a one-byte type.
    static func version2Messages(_ file: HDF5File, _ address: Int, _ path: String) throws -> [(type: Int, body: Range<Int>)] {
        var c = try file.cursor(at: address, object: path)
        try c.signature("OHDR")
        guard try c.u8() == 2 else { throw c.fail("version-2 object header with another version number") }
        let flags = try c.u8()
        if flags & 0x20 != 0 { c.skip(16) }  // access, modification, change, birth times
        if flags & 0x10 != 0 { c.skip(4) }   // attribute storage phase change values
        let chunkSize = try c.size(1 << (flags & 3))
        let orderTracked = flags & 0x4 != 0
        var found: [(Int, Range<Int>)] = []
        var chunks = [(c.position, chunkSize)]
        var visited: Set<Int> = [address]
        while let (start, length) = chunks.first {
            chunks.removeFirst()
            guard start >= 0, length >= 0, start <= file.bytes.count - length - 4 else {
                throw c.fail("a header chunk of \(length) bytes at \(start) runs past the end of the file")
            }
            var m = try file.cursor(at: start, object: path)
            let prefix = 4 + (orderTracked ? 2 : 0)
            while m.position + prefix <= start + length {
                let type = try m.u8(), bodySize = try m.u16()
                m.skip(1 + (orderTracked ? 2 : 0))
                let body = m.position ..< m.position + bodySize
                guard body.upperBound <= start + length else { throw m.fail("message of type \(type) (\(bodySize) bytes) overruns its header chunk") }
                if type != 0 { found.append((type, body)) }
                if found.count > HDF5Object.maxMessages { throw m.fail("more than \(HDF5Object.maxMessages) header messages") }
                if type == Message.continuation {
                    var cc = try file.cursor(at: body.lowerBound, object: path)
                    let next = try cc.offset(), nextLength = try cc.length()
                    guard visited.insert(next).inserted else { throw m.fail("its header continuation chain loops back to byte \(next)") }
                    var sig = try file.cursor(at: next, object: path)
                    try sig.signature("OCHK")
                    chunks.append((next + 4, nextLength - 8))
                }
                m.position = body.upperBound
            }
        }
        return found
    }

    func message(_ type: Int) -> Range<Int>? { messages.first { $0.type == type }?.body }

    public var isGroup: Bool { message(Message.symbolTable) != nil || message(Message.link) != nil || message(Message.linkInfo) != nil }
    public var isDataset: Bool { message(Message.layout) != nil }

    // MARK: - Groups

    /// The group's links: name -> object header address.
    public func links() throws -> [String: Int] {
        if let st = message(Message.symbolTable) {
            var c = try file.cursor(at: st.lowerBound, object: path)
            let btree = try c.offset(), heap = try c.offset()
            let names = try LocalHeap(file: file, address: heap, path: path)
            var out: [String: Int] = [:]
            var visited = Set<Int>()
            try walkGroupTree(btree, names, &out, &visited, depth: 0)
            return out
        }
        if let info = message(Message.linkInfo) {
            // Dense storage puts the links in a fractal heap; compact storage (undefined heap address) in link messages.
            var c = try file.cursor(at: info.lowerBound, object: path)
            c.skip(1)
            if try c.u8() & 1 != 0 { c.skip(8) }
            if try c.offset() != -1 { throw c.fail("stores its links densely (fractal heap), which this reader does not support") }
        }
        var out: [String: Int] = [:]
        for (type, body) in messages where type == Message.link {
            var c = try file.cursor(at: body.lowerBound, object: path)
            guard try c.u8() == 1 else { throw c.fail("link message version is not 1") }
            let flags = try c.u8()
            let linkType = flags & 0x8 != 0 ? try c.u8() : 0
            if flags & 0x4 != 0 { c.skip(8) }
            if flags & 0x10 != 0 { c.skip(1) }
            let nameLength = try c.size(1 << (flags & 3))
            let name = String(decoding: try c.take(nameLength), as: UTF8.self)
            guard linkType == 0 else { continue }  // soft and external links are not followed
            out[name] = try c.offset()
        }
        return out
    }

    private func walkGroupTree(_ address: Int, _ names: LocalHeap, _ out: inout [String: Int], _ visited: inout Set<Int>, depth: Int) throws {
        guard visited.insert(address).inserted, depth < 64 else {
            throw KerasError("\(file.name): \(path): the group's B-tree revisits node \(address) (a cycle)")
        }
        var c = try file.cursor(at: address, object: path)
        try c.signature("TREE")
        guard try c.u8() == 0 else { throw c.fail("B-tree at \(address) is not a group node") }
        let level = try c.u8(), entries = try c.u16()
        _ = try c.offset(); _ = try c.offset()  // siblings
        _ = try c.length()  // key 0
        for _ in 0..<entries {
            let child = try c.offset()
            _ = try c.length()
            if level > 0 {
                try walkGroupTree(child, names, &out, &visited, depth: depth + 1)
            } else {
                guard visited.insert(child).inserted else { throw c.fail("symbol node \(child) is referenced twice") }
                var s = try file.cursor(at: child, object: path)
                try s.signature("SNOD")
                s.skip(2)
                let symbols = try s.u16()
                for _ in 0..<symbols {
                    let nameOffset = try s.offset(), header = try s.offset()
                    s.skip(4 + 4 + 16)
                    out[try names.string(at: nameOffset)] = header
                }
            }
        }
    }

    /// The child object called `name`.
    public func child(_ name: String) throws -> HDF5Object {
        let l = try links()
        guard let address = l[name] else {
            throw KerasError("\(file.name): \(path) has no member '\(name)' (members: \(l.keys.sorted().prefix(20).joined(separator: ", ")))")
        }
        return try HDF5Object(file: file, address: address, path: path == "/" ? "/" + name : path + "/" + name)
    }

    public func childNames() throws -> [String] { try links().keys.sorted() }
}

/// A group's local heap: the link names.
struct LocalHeap {
    let file: HDF5File
    let data: Range<Int>
    let path: String

    init(file: HDF5File, address: Int, path: String) throws {
        self.file = file
        self.path = path
        var c = try file.cursor(at: address, object: path)
        try c.signature("HEAP")
        c.skip(4)
        let size = try c.length()
        _ = try c.uint(file.lengthSize)  // free-list head: an offset, 1 or undefined when there is none
        let start = try c.offset()
        guard start >= 0, start <= file.bytes.count - size else { throw c.fail("local heap data (\(size) bytes at \(start)) is past the end of the file") }
        data = start ..< start + size
    }

    func string(at offset: Int) throws -> String {
        guard offset >= 0, offset < data.count else { throw KerasError("\(file.name): \(path): link name offset \(offset) is outside the local heap (\(data.count) bytes)") }
        let from = data.lowerBound + offset
        let end = file.bytes[from..<data.upperBound].firstIndex(of: 0) ?? data.upperBound
        return String(decoding: file.bytes[from..<end], as: UTF8.self)
    }
}
