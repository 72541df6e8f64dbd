/// Writes HDF5 files in the dialect h5py writes for Keras by default, which
/// is also what HDF5Reader reads: superblock v0 with 8-byte offsets and
/// lengths, version-1 object headers, symbol-table groups (v1 B-tree over
/// symbol nodes of at most 8 links, names in a local heap), contiguous
/// little-endian datasets and version-1 attributes with variable-length
/// strings in one global heap collection.
public enum HDF5Writer {
    /// An attribute value.
    public enum Attribute {
        /// Variable-length strings; `scalar` writes one string as a rank-0 attribute.
        case strings([String], scalar: Bool, utf8: Bool)
        /// A float64 array (Keras writes an empty one for a layer without weights).
        case float64s([Double])
    }

    /// A dataset's contents.
    public enum Data {
        case f32([Float])
        case i32([Int32])
    }

    /// A node of the file tree.
    public indirect enum Node {
        case group(attributes: [(String, Attribute)], children: [(String, Node)])
        case dataset(shape: [Int], data: Data, attributes: [(String, Attribute)])
    }

    static let undefined: UInt64 = .max

    /// The file's bytes.
    public static func write(_ root: Node) throws -> [UInt8] {
        var w = Buffer()
        w.bytes = [UInt8](repeating: 0, count: 96)  // superblock, patched last
        var heap = GlobalHeapBuilder()
        // The global heap's strings are collected while writing and placed at the end;
        // attribute data refers to it by a placeholder address patched afterwards.
        let (rootHeader, rootBTree, rootHeap) = try writeGroupContents(root, &w, &heap, path: "/")
        let heapAddress = w.bytes.count
        heap.append(to: &w)
        for p in heap.patches { w.patch(u64: UInt64(heapAddress), at: p) }
        // Superblock v0.
        var s: [UInt8] = HDF5File.signature
        s += [0, 0, 0, 0, 0, 8, 8, 0]
        s += le(4, 2) + le(16, 2) + le(0, 4)
        s += le(0, 8) + le(undefined, 8) + le(UInt64(w.bytes.count), 8) + le(undefined, 8)
        s += le(0, 8) + le(UInt64(rootHeader), 8) + le(1, 4) + le(0, 4) + le(UInt64(rootBTree), 8) + le(UInt64(rootHeap), 8)
        precondition(s.count == 96)
        w.bytes.replaceSubrange(0..<96, with: s)
        return w.bytes
    }

    struct Buffer {
        var bytes: [UInt8] = []
        mutating func align8() { while bytes.count % 8 != 0 { bytes.append(0) } }
        mutating func patch(u64 v: UInt64, at p: Int) { bytes.replaceSubrange(p..<p + 8, with: le(v, 8)) }
    }

    /// Strings of every variable-length attribute, in one collection.
    struct GlobalHeapBuilder {
        var objects: [[UInt8]] = []
        /// Byte positions of collection addresses to patch.
        var patches: [Int] = []

        mutating func add(_ s: [UInt8]) -> Int { objects.append(s); return objects.count }

        func append(to w: inout Buffer) {
            var body: [UInt8] = []
            for (i, o) in objects.enumerated() {
                body += le(UInt64(i + 1), 2) + le(1, 2) + le(0, 4) + le(UInt64(o.count), 8) + o
                while body.count % 8 != 0 { body.append(0) }
            }
            // HDF5 allocates collections of at least 4096 bytes; the rest is free space (object 0).
            let used = 16 + body.count
            let size = max(4096, (used + 16 + 7) / 8 * 8)
            body += le(0, 2) + le(0, 2) + le(0, 4) + le(UInt64(size - used), 8)
            let head = Array("GCOL".utf8) + [1, 0, 0, 0] + le(UInt64(size), 8)
            w.bytes += head + body
            w.bytes += [UInt8](repeating: 0, count: size - head.count - body.count)
        }
    }

    // MARK: - Objects

    /// Writes a group's children, its local heap, symbol nodes and B-tree, then
    /// its object header; returns (header, B-tree, heap) addresses.
    static func writeGroupContents(_ node: Node, _ w: inout Buffer, _ gheap: inout GlobalHeapBuilder, path: String) throws -> (Int, Int, Int) {
        guard case .group(let attributes, let children) = node else { throw KerasError("HDF5 writer: \(path) is not a group") }
        let sorted = children.sorted { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
        for i in sorted.indices.dropFirst() where sorted[i].0 == sorted[i - 1].0 {
            throw KerasError("HDF5 writer: \(path) has two members named '\(sorted[i].0)'")
        }
        var entries: [(name: String, header: Int, btree: Int, heap: Int)] = []
        for (name, child) in sorted {
            guard !name.isEmpty, !name.contains("/"), !name.utf8.contains(0) else { throw KerasError("HDF5 writer: bad member name '\(name)' in \(path)") }
            switch child {
            case .group:
                let (h, b, hp) = try writeGroupContents(child, &w, &gheap, path: path + name + "/")
                entries.append((name, h, b, hp))
            case .dataset(let shape, let data, let attrs):
                entries.append((name, try writeDataset(shape, data, attrs, &w, &gheap, path: path + name), -1, -1))
            }
        }
        // Local heap: "" at offset 0, then each name, 8-byte padded.
        var heapData: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0]
        var nameOffsets: [Int] = []
        for e in entries {
            nameOffsets.append(heapData.count)
            heapData += Array(e.name.utf8) + [0]
            while heapData.count % 8 != 0 { heapData.append(0) }
        }
        w.align8()
        let heapAddress = w.bytes.count
        let heapHeaderSize = 32
        // No free block: HDF5 marks the end of the free list with offset 1 (H5HL_FREE_NULL).
        w.bytes += Array("HEAP".utf8) + [0, 0, 0, 0] + le(UInt64(heapData.count), 8) + le(1, 8)
            + le(UInt64(heapAddress + heapHeaderSize), 8)
        w.bytes += heapData
        // Symbol nodes of up to 8 entries (2 x leaf K), as many as needed (none for an empty group).
        var leaves: [(address: Int, lastName: Int)] = []
        var i = 0
        while i < entries.count {
            let chunk = Array(entries.indices[i..<min(i + 8, entries.count)])
            w.align8()
            leaves.append((w.bytes.count, nameOffsets[chunk.last!]))
            w.bytes += Array("SNOD".utf8) + [1, 0] + le(UInt64(chunk.count), 2)
            for k in 0..<8 {
                if k < chunk.count {
                    let e = entries[chunk[k]]
                    let cached = e.btree >= 0
                    w.bytes += le(UInt64(nameOffsets[chunk[k]]), 8) + le(UInt64(e.header), 8) + le(cached ? 1 : 0, 4) + le(0, 4)
                    w.bytes += cached ? le(UInt64(e.btree), 8) + le(UInt64(e.heap), 8) : [UInt8](repeating: 0, count: 16)
                } else {
                    w.bytes += [UInt8](repeating: 0, count: 40)
                }
            }
            i += 8
        }
        // B-tree levels of up to 32 children (2 x internal K) until one root; an empty group's root has none, as h5py writes it.
        var level = 0
        var nodes = leaves
        repeat {
            var parents: [(address: Int, lastName: Int)] = []
            var j = 0
            repeat {
                let chunk = Array(nodes[j..<min(j + 32, nodes.count)])
                w.align8()
                parents.append((w.bytes.count, chunk.last?.lastName ?? 0))
                w.bytes += Array("TREE".utf8) + [0, UInt8(level)] + le(UInt64(chunk.count), 2) + le(undefined, 8) + le(undefined, 8)
                w.bytes += le(0, 8)  // key 0: the empty name
                for c in chunk { w.bytes += le(UInt64(c.address), 8) + le(UInt64(c.lastName), 8) }
                // Unused child slots: a B-tree node is allocated at its full size.
                w.bytes += [UInt8](repeating: 0, count: (32 - chunk.count) * 16)
                j += 32
            } while j < nodes.count
            nodes = parents
            level += 1
        } while nodes.count > 1
        let btree = nodes[0].address
        var messages: [Message] = [Message(type: 0x11, body: le(UInt64(btree), 8) + le(UInt64(heapAddress), 8))]
        messages += try attributes.map { try attributeMessage($0.0, $0.1, &gheap) }
        let header = writeHeader(messages, &w, &gheap)
        return (header, btree, heapAddress)
    }

    static func writeDataset(_ shape: [Int], _ data: Data, _ attrs: [(String, Attribute)], _ w: inout Buffer,
                             _ gheap: inout GlobalHeapBuilder, path: String) throws -> Int {
        let raw: [UInt8], type: [UInt8], count: Int
        switch data {
        case .f32(let v): raw = v.flatMap { le(UInt64($0.bitPattern), 4) }; type = float32Type; count = v.count
        case .i32(let v): raw = v.flatMap { le(UInt64(UInt32(bitPattern: $0)), 4) }; type = int32Type; count = v.count
        }
        guard shape.reduce(1, *) == count, shape.allSatisfy({ $0 >= 0 }) else {
            throw KerasError("HDF5 writer: \(path) has shape \(shape) and \(count) values")
        }
        w.align8()
        let dataAddress = w.bytes.count
        w.bytes += raw
        var messages: [Message] = [
            Message(type: 0x1, body: dataspace(shape)), Message(type: 0x3, body: type), Message(type: 0x5, body: [2, 2, 2, 0]),
            Message(type: 0x8, body: [3, 1] + le(UInt64(dataAddress), 8) + le(UInt64(raw.count), 8)),
        ]
        messages += try attrs.map { try attributeMessage($0.0, $0.1, &gheap) }
        return writeHeader(messages, &w, &gheap)
    }

    /// A header message: its type, body, and where in the body global-heap
    /// addresses go (patched once the heap's place is known).
    struct Message {
        var type: Int
        var body: [UInt8]
        var heapAddressOffsets: [Int] = []
    }

    /// A version-1 object header holding `messages`.
    static func writeHeader(_ messages: [Message], _ w: inout Buffer, _ gheap: inout GlobalHeapBuilder) -> Int {
        w.align8()
        let address = w.bytes.count
        let bodies = messages.map { m -> [UInt8] in
            var b = m.body
            while b.count % 8 != 0 { b.append(0) }
            return b
        }
        let size = bodies.reduce(0) { $0 + 8 + $1.count }
        w.bytes += [1, 0] + le(UInt64(messages.count), 2) + le(1, 4) + le(UInt64(size), 4) + [0, 0, 0, 0]
        for (m, b) in zip(messages, bodies) {
            let start = w.bytes.count + 8
            w.bytes += le(UInt64(m.type), 2) + le(UInt64(b.count), 2) + [0, 0, 0, 0] + b
            gheap.patches += m.heapAddressOffsets.map { start + $0 }
        }
        return address
    }

    // MARK: - Messages

    static let float32Type: [UInt8] = [0x11, 0x20, 0x1f, 0x00] + le(4, 4) + le(0, 2) + le(32, 2) + [23, 8, 0, 23] + le(127, 4)
    static let float64Type: [UInt8] = [0x11, 0x20, 0x3f, 0x00] + le(8, 4) + le(0, 2) + le(64, 2) + [52, 11, 0, 52] + le(1023, 4)
    static let int32Type: [UInt8] = [0x10, 0x08, 0x00, 0x00] + le(4, 4) + le(0, 2) + le(32, 2)
    static func vlStringType(utf8: Bool) -> [UInt8] {
        [0x19, 0x01, utf8 ? 0x01 : 0x00, 0x00] + le(16, 4) + [0x10, 0x00, 0x00, 0x00] + le(1, 4) + le(0, 2) + le(8, 2)
    }

    static func dataspace(_ shape: [Int]) -> [UInt8] {
        [1, UInt8(shape.count), shape.isEmpty ? 0 : 1, 0, 0, 0, 0, 0] + shape.flatMap { le(UInt64($0), 8) } + shape.flatMap { le(UInt64($0), 8) }
    }

    static func attributeMessage(_ name: String, _ value: Attribute, _ gheap: inout GlobalHeapBuilder) throws -> Message {
        let nameBytes = Array(name.utf8) + [0]
        let type: [UInt8], space: [UInt8]
        var data: [UInt8] = [], heapOffsets: [Int] = []
        switch value {
        case .strings(let strings, let scalar, let utf8):
            guard !scalar || strings.count == 1 else { throw KerasError("HDF5 writer: scalar attribute \(name) needs one string") }
            type = vlStringType(utf8: utf8)
            space = dataspace(scalar ? [] : [strings.count])
            for s in strings {
                let b = Array(s.utf8)
                let index = gheap.add(b)
                heapOffsets.append(data.count + 4)
                data += le(UInt64(b.count), 4) + le(0, 8) + le(UInt64(index), 4)
            }
        case .float64s(let v):
            type = float64Type
            space = dataspace([v.count])
            data = v.flatMap { le($0.bitPattern, 8) }
        }
        func pad(_ b: [UInt8]) -> [UInt8] { b + [UInt8](repeating: 0, count: (8 - b.count % 8) % 8) }
        let head = [1, 0] + le(UInt64(nameBytes.count), 2) + le(UInt64(type.count), 2) + le(UInt64(space.count), 2)
            + pad(nameBytes) + pad(type) + pad(space)
        return Message(type: 0xC, body: head + data, heapAddressOffsets: heapOffsets.map { head.count + $0 })
    }
}

/// `v` as `n` little-endian bytes.
func le(_ v: UInt64, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
