/// The structural invariants h5py (the HDF5 library) relies on when it opens
/// a file in the dialect Keras writes, checked over every reachable object:
/// the end-of-file address, version-1 header messages 8-byte aligned,
/// B-tree node signatures, types, levels and fill, keys in name order
/// bracketing each child's names, symbol nodes sorted and within their
/// capacity, local heaps 8-byte sized with names inside them. Used by the tests on every file this library writes.
extension HDF5File {
    public func structuralProblems() throws -> [String] {
        var problems: [String] = []
        var eofCursor = try cursor(at: 40, object: "superblock")
        let eof = try eofCursor.offset()
        if eof != bytes.count { problems.append("superblock end-of-file address \(eof), file size \(bytes.count)") }
        var visited = Set<Int>()
        func visit(_ address: Int, _ path: String, depth: Int) throws {
            guard visited.insert(address).inserted, depth < 32 else { return }
            let o = try HDF5Object(file: self, address: address, path: path)
            // Version-1 headers keep every message 8-byte aligned: sizes are multiples of 8.
            if bytes[address] == 1 {
                for (type, body) in o.messages where body.count % 8 != 0 || (body.lowerBound - address) % 8 != 0 {
                    problems.append("\(path): message of type \(type) at \(body.lowerBound) (\(body.count) bytes) is not 8-byte aligned")
                }
            }
            guard let st = o.message(HDF5Object.Message.symbolTable) else { return }
            var c = try cursor(at: st.lowerBound, object: path)
            let btree = try c.offset(), heapAddress = try c.offset()
            let heap = try LocalHeap(file: self, address: heapAddress, path: path)
            if heap.data.count % 8 != 0 { problems.append("\(path): local heap data of \(heap.data.count) bytes is not a multiple of 8") }
            var names: [String] = []
            try checkNode(btree, heap, path, right: nil, expectedLevel: nil, root: true, &names, &problems)
            if names != names.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) || Set(names).count != names.count {
                problems.append("\(path): links are not in strictly increasing name order: \(names.prefix(10))")
            }
            for (name, child) in try o.links() { try visit(child, path == "/" ? "/" + name : path + "/" + name, depth: depth + 1) }
        }
        try visit(rootAddress, "/", depth: 0)
        return problems
    }

    /// One group B-tree node: its keys bracket its children; leaves' symbol nodes hold sorted names.
    private func checkNode(_ address: Int, _ heap: LocalHeap, _ path: String, right: String?, expectedLevel: Int?,
                           root: Bool = false, _ names: inout [String], _ problems: inout [String]) throws {
        var c = try cursor(at: address, object: path)
        try c.signature("TREE")
        if try c.u8() != 0 { problems.append("\(path): B-tree node \(address) is not a group node") }
        let level = try c.u8(), entries = try c.u16()
        if let e = expectedLevel, e != level { problems.append("\(path): B-tree node \(address) at level \(level), expected \(e)") }
        // An empty group's root holds no children (h5py writes it so); any other node 1 to 32.
        if entries > 32 || (entries < 1 && !(root && level == 0)) {
            problems.append("\(path): B-tree node \(address) holds \(entries) children (\(root ? 0 : 1) to 32 allowed)")
        }
        _ = try c.offset(); _ = try c.offset()
        var keys = [try heap.string(at: try c.length())]
        var children: [Int] = []
        for _ in 0..<entries {
            children.append(try c.offset())
            keys.append(try heap.string(at: try c.length()))
        }
        func less(_ a: String, _ b: String) -> Bool { Array(a.utf8).lexicographicallyPrecedes(Array(b.utf8)) }
        for k in 1..<keys.count where less(keys[k], keys[k - 1]) { problems.append("\(path): B-tree node \(address) keys out of order at \(k)") }
        if let right, keys.last != right { problems.append("\(path): B-tree node \(address) ends at key '\(keys.last ?? "")', its parent says '\(right)'") }
        for (k, child) in children.enumerated() {
            if level > 0 {
                try checkNode(child, heap, path, right: keys[k + 1], expectedLevel: level - 1, &names, &problems)
                continue
            }
            var s = try cursor(at: child, object: path)
            try s.signature("SNOD")
            s.skip(2)
            let count = try s.u16()
            if count < 1 || count > 8 { problems.append("\(path): symbol node \(child) holds \(count) entries (1 to 8 allowed)") }
            for _ in 0..<count {
                let name = try heap.string(at: try s.offset())
                _ = try s.offset()
                s.skip(24)
                if !less(keys[k], name) && !(keys[k].isEmpty && name.isEmpty) { problems.append("\(path): '\(name)' is not after key '\(keys[k])'") }
                if less(keys[k + 1], name) { problems.append("\(path): '\(name)' is after key '\(keys[k + 1])'") }
                names.append(name)
            }
        }
    }
}
