import KerasIR

/// Where intermediate values live: liveness intervals over the schedule,
/// packed into one 64-byte-aligned arena by greedy-by-size placement (largest
/// buffer first, lowest offset that no buffer live at the same time uses).
/// The graph's inputs are not intermediates: they are filled from outside
/// before a run and live through all of it, so they get a feed block of
/// their own (as XLA keeps entry parameters out of its temp allocation), which
/// the caller fills in place. An analysis after scheduling: it rewrites nothing.
public struct MemoryPlan: CustomStringConvertible {
    public struct Buffer: Sendable {
        /// The value that defines the buffer (aliases share it).
        public var value: Int
        public var offset: Int
        public var bytes: Int
        /// First and last schedule positions at which the buffer is live.
        public var first: Int
        public var last: Int
    }

    public static let alignment = 64
    static func aligned(_ bytes: Int) -> Int { (max(bytes, 1) + alignment - 1) / alignment * alignment }

    /// Buffers in the arena, by defining value.
    public private(set) var buffers: [Int: Buffer] = [:]
    /// For each value, the value whose storage it uses (itself unless it aliases).
    public private(set) var storageRoot: [Int] = []
    /// For each value, whether its storage is in the arena (not a parameter or constant).
    public private(set) var inArena: [Bool] = []
    /// Values written straight into their block of a pack's result (the
    /// pack is their only reader): the pack and the block's byte offset.
    public private(set) var placed: [Int: (pack: Int, byteOffset: Int)] = [:]
    public private(set) var arenaBytes = 0
    /// What the arena would take with one buffer per value a kernel writes
    /// (no sharing over time, no in-place reuse): the naive sum.
    public private(set) var unsharedBytes = 0
    /// Each input's offset in the feed block, and the block's size.
    public private(set) var feedOffsets: [Int: Int] = [:]
    public private(set) var feedBytes = 0
    private var feedSizes: [Int: Int] = [:]
    private var names: GraphPrinter

    /// `inPlace`: an op whose output element depends only on input elements
    /// at its index (OpDef.writesInPlaceOfInput), or whose kernel reads an
    /// input before writing over it (OpDef.overwritableInput), may take the
    /// storage of that input of its own type when no later step reads it; an
    /// op whose result is its inputs end to end (OpDef.inputOffsets) has
    /// each input it alone reads written in place in its result.
    public init(_ g: Graph, registry: OpRegistry = .standard, inPlace: Bool = true) throws {
        names = GraphPrinter(g)
        let n = g.nodes.count
        storageRoot = Array(0..<n)
        inArena = [Bool](repeating: false, count: n)
        // Whether a value starts where its storage does (a view further in cannot be overwritten in place).
        var atRootStart = [Bool](repeating: true, count: n)
        var first = [Int](repeating: 0, count: n), last = [Int](repeating: -1, count: n)
        // Each value's last reader (n: read after the run), and the same over every value sharing a storage.
        var lastUse = [Int](repeating: -1, count: n)
        for (i, node) in g.nodes.enumerated() {
            for v in node.inputs { lastUse[v.id] = max(lastUse[v.id], i) }
            if node.kind == .input { lastUse[i] = n }
        }
        for v in g.outputs { lastUse[v.id] = n }
        var rootLastUse = lastUse
        if inPlace { try placeInputs(g, registry: registry) }
        var firstPlaced: [Int: Int] = [:]  // each pack's first placed input's position
        for (i, node) in g.nodes.enumerated() {
            let def = try registry.lookup(node.op)
            switch def.lowering {
            case .alias, .inPlace:
                storageRoot[i] = storageRoot[node.inputs[0].id]
                inArena[i] = inArena[storageRoot[i]]
                atRootStart[i] = atRootStart[node.inputs[0].id]
            case .view(let offset):
                storageRoot[i] = storageRoot[node.inputs[0].id]
                inArena[i] = inArena[storageRoot[i]]
                let start = try offset(node) == 0
                atRootStart[i] = atRootStart[node.inputs[0].id] && start
            case .storage:
                if node.kind == .input {
                    guard let bytes = node.type.byteCount else {
                        throw IRError("memory plan: input \(names.ref(Value(i))) has unknown type \(node.type)")
                    }
                    feedOffsets[i] = feedBytes
                    feedSizes[i] = MemoryPlan.aligned(bytes)
                    feedBytes += MemoryPlan.aligned(bytes)
                }
            default:
                if let (pack, byteOffset) = placed[i] {
                    storageRoot[i] = pack  // the pack comes later: its buffer starts here
                    inArena[i] = true
                    atRootStart[i] = byteOffset == 0
                    firstPlaced[pack] = min(firstPlaced[pack] ?? i, i)
                    unsharedBytes += MemoryPlan.aligned(node.type.byteCount ?? 0)
                    break
                }
                let candidates = def.writesInPlaceOfInput ? node.inputs : def.overwritableInput?(node).map { [node.inputs[$0]] } ?? []
                if inPlace, let v = candidates.first(where: { g.nodes[$0.id].type == node.type && inArena[storageRoot[$0.id]] && atRootStart[$0.id]
                                                              && rootLastUse[storageRoot[$0.id]] == i }) {
                    // The input's storage dies here: the output overwrites it.
                    storageRoot[i] = storageRoot[v.id]
                    inArena[i] = true
                } else {
                    inArena[i] = true
                    first[i] = i
                }
                unsharedBytes += MemoryPlan.aligned(node.type.byteCount ?? 0)
            }
            rootLastUse[storageRoot[i]] = max(rootLastUse[storageRoot[i]], lastUse[i])
            last[storageRoot[i]] = max(last[storageRoot[i]], i)
            for v in node.inputs { last[storageRoot[v.id]] = max(last[storageRoot[v.id]], i) }
        }
        for v in g.outputs { last[storageRoot[v.id]] = n }  // outputs are read after the run
        for (pack, position) in firstPlaced { first[pack] = min(first[pack], position) }

        var order: [Buffer] = []
        for i in 0..<n where storageRoot[i] == i && inArena[i] {
            guard let bytes = g.nodes[i].type.byteCount else {
                throw IRError("memory plan: value \(names.ref(Value(i))) has unknown type \(g.nodes[i].type)")
            }
            order.append(Buffer(value: i, offset: 0, bytes: MemoryPlan.aligned(bytes), first: first[i], last: max(last[i], first[i])))
        }
        order.sort { $0.bytes != $1.bytes ? $0.bytes > $1.bytes : $0.value < $1.value }
        // Placed buffers are indexed by the blocks of `blockSteps` schedule
        // positions they are live in, so finding the ones live at the same time
        // as a new buffer looks at its own blocks only (linear in practice,
        // where comparing with every placed buffer was quadratic).
        let blockSteps = 64
        var blocks = [[Int]](repeating: [], count: n / blockSteps + 2)
        var placed: [Buffer] = []
        var seen = [Int](repeating: -1, count: order.count)
        for (k, var b) in order.enumerated() {
            var conflicts: [Buffer] = []
            for blk in (b.first / blockSteps)...(b.last / blockSteps) {
                for j in blocks[blk] where seen[j] != k {
                    seen[j] = k
                    let c = placed[j]
                    if c.first <= b.last && b.first <= c.last { conflicts.append(c) }
                }
            }
            conflicts.sort { $0.offset < $1.offset }
            var offset = 0
            for c in conflicts {
                if offset + b.bytes <= c.offset { break }
                offset = max(offset, c.offset + c.bytes)
            }
            b.offset = offset
            for blk in (b.first / blockSteps)...(b.last / blockSteps) { blocks[blk].append(placed.count) }
            placed.append(b)
            buffers[b.value] = b
            arenaBytes = max(arenaBytes, offset + b.bytes)
        }
    }

    /// Chooses the values written into their block of a pack's result: those
    /// the pack alone reads, once, that a kernel of their own writes (not an
    /// argument, a view or an in-place update of another value's storage).
    private mutating func placeInputs(_ g: Graph, registry: OpRegistry) throws {
        var readers = [Int](repeating: 0, count: g.nodes.count)
        for node in g.nodes { for v in node.inputs { readers[v.id] += 1 } }
        for v in g.outputs { readers[v.id] += 1 }
        for (p, node) in g.nodes.enumerated() {
            guard let offsets = try registry.lookup(node.op).inputOffsets?(node, node.inputs.map { g.type(of: $0) }) else { continue }
            for (k, x) in node.inputs.enumerated() where readers[x.id] == 1 && placed[x.id] == nil {
                let def = try registry.lookup(g.nodes[x.id].op)
                guard case .kernels = def.lowering, def.inputOffsets == nil else { continue }
                placed[x.id] = (p, offsets[k] * 4)
            }
        }
    }

    /// Byte offset of a value's storage in the arena, if it lives there.
    public func offset(of v: Int) -> Int? {
        guard inArena[v], let b = buffers[storageRoot[v]] else { return nil }
        return b.offset + (placed[v]?.byteOffset ?? 0)
    }

    /// Byte offset of an input in the feed block.
    public func feedOffset(of v: Int) -> Int? { feedOffsets[v] }

    /// The arena over time as SVG: each buffer a box from its first to its
    /// last step (x) at its offset (y), so gaps and peaks show at a glance.
    public func svg(steps: Int, title: String) -> String {
        let w = 900.0, h = 500.0, left = 70.0, top = 30.0
        let xs = w / Double(max(steps, 1)), ys = h / Double(max(arenaBytes, 1))
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w + left + 20))\" height=\"\(Int(h + top + 40))\" font-family=\"Helvetica\" font-size=\"11\">\n"
        func esc(_ s: String) -> String { s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;") }
        out += "<text x=\"\(left)\" y=\"18\">\(esc(title)): arena \(arenaBytes) B, live lower bound \(liveLowerBound) B, naive \(unsharedBytes) B</text>\n"
        out += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(w)\" height=\"\(h)\" fill=\"none\" stroke=\"#888\"/>\n"
        for b in buffers.values.sorted(by: { $0.value < $1.value }) {
            let x = left + Double(b.first) * xs, y = top + Double(b.offset) * ys
            let bw = max(Double(b.last - b.first + 1) * xs, 1), bh = max(Double(b.bytes) * ys, 0.5)
            let hue = (b.value * 47) % 360
            out += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(bw)\" height=\"\(bh)\" fill=\"hsl(\(hue),60%,70%)\" stroke=\"#333\" stroke-width=\"0.3\">"
            out += "<title>\(esc(names.ref(Value(b.value)))): \(b.bytes) B at \(b.offset), live [\(b.first),\(b.last)]</title></rect>\n"
        }
        out += "<text x=\"\(left)\" y=\"\(top + h + 16)\">step 0</text><text x=\"\(left + w - 60)\" y=\"\(top + h + 16)\">step \(steps)</text>\n"
        out += "<text x=\"4\" y=\"\(top + 10)\">offset 0</text><text x=\"4\" y=\"\(top + h)\">\(arenaBytes) B</text>\n"
        return out + "</svg>\n"
    }

    /// The most bytes live at any one step: no placement can use less arena.
    public var liveLowerBound: Int {
        var events: [(step: Int, delta: Int)] = []
        for b in buffers.values { events.append((b.first, b.bytes)); events.append((b.last + 1, -b.bytes)) }
        events.sort { $0.step != $1.step ? $0.step < $1.step : $0.delta < $1.delta }
        var live = 0, best = 0
        for e in events { live += e.delta; best = max(best, live) }
        return best
    }

    public var summary: String {
        "arena: \(arenaBytes) bytes in \(buffers.count) buffers, reduced from \(unsharedBytes) to \(arenaBytes) bytes; feeds: \(feedBytes) bytes"
    }

    public var description: String {
        func hex(_ o: Int) -> String { "0x" + String(o, radix: 16).leftPadded(to: 4) }
        var lines = feedOffsets.sorted { $0.key < $1.key }.map { v, o in
            "\(names.ref(Value(v))) -> feed[\(hex(o)), +\(feedSizes[v] ?? 0))"
        }
        lines += buffers.values.sorted { $0.value < $1.value }.map { b in
            "\(names.ref(Value(b.value))) -> arena[\(hex(b.offset)), +\(b.bytes)) live [\(b.first),\(b.last)]"
        }
        lines += placed.sorted { $0.key < $1.key }.map { v, p in
            "\(names.ref(Value(v))) -> in \(names.ref(Value(p.pack))) at +\(p.byteOffset) (written in place)"
        }
        lines.append(summary)
        return lines.joined(separator: "\n")
    }
}

extension String {
    func leftPadded(to n: Int, with c: Character = "0") -> String {
        count >= n ? self : String(repeating: c, count: n - count) + self
    }
}
