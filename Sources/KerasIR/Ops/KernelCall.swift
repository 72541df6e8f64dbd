import CKernels

/// Where one operand address of a kernel call comes from; the runtime
/// resolves it when it builds the plan (calls.c gives each family's order).
public struct KernelOperand: Hashable, Sendable, Codable, CustomStringConvertible {
    public enum Buffer: Hashable, Sendable, Codable {
        /// The node's input at this position.
        case input(Int)
        /// The node's result.
        case output
        /// The plan's scratch memory, shared by all calls, valid during this one.
        case workspace
        /// The plan's run counter (uint64), which random draws read.
        case randomCounter
        /// An optional operand left out (NULL).
        case absent
    }
    public var buffer: Buffer
    public var byteOffset: Int

    public static func input(_ i: Int, element: Int = 0) -> KernelOperand { KernelOperand(buffer: .input(i), byteOffset: element * 4) }
    public static func output(element: Int) -> KernelOperand { KernelOperand(buffer: .output, byteOffset: element * 4) }
    public static let output = KernelOperand(buffer: .output, byteOffset: 0)
    public static func workspace(byte: Int = 0) -> KernelOperand { KernelOperand(buffer: .workspace, byteOffset: byte) }
    public static let randomCounter = KernelOperand(buffer: .randomCounter, byteOffset: 0)
    public static let absent = KernelOperand(buffer: .absent, byteOffset: 0)

    public var description: String {
        let base: String
        switch buffer {
        case .input(let i): base = "in\(i)"
        case .output: base = "out"
        case .workspace: base = "ws"
        case .randomCounter: base = "counter"
        case .absent: return "-"
        }
        return byteOffset == 0 ? base : "\(base)+\(byteOffset)"
    }
}

/// One lowered kernel call as data: a row of the C kernel table, the
/// family's parameter block (a pointer-free C struct, see CKernels.h) and
/// where each operand address comes from. Plans are lists of these, so
/// they print, compare and serialize, and KerasIR holds no runtime state.
public struct KernelCall: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The row of `ck_kernel_table` this call runs.
    public var kernel: Int
    public var params: [UInt8]
    public var operands: [KernelOperand]
    /// Scratch bytes the call needs at `.workspace` (64-byte aligned).
    public var workspaceBytes: Int
    /// What the listing adds after the table name ("+bias+relu", " x4").
    public var detail: String

    public init(kernel: Int, params: [UInt8], operands: [KernelOperand], workspaceBytes: Int, detail: String) {
        self.kernel = kernel
        self.params = params
        self.operands = operands
        self.workspaceBytes = workspaceBytes
        self.detail = detail
    }

    /// The kernel table's name for the row, then the detail.
    public var name: String {
        (KernelTable.rows.indices.contains(kernel) ? KernelTable.rows[kernel].name : "no kernel-table row \(kernel)") + detail
    }

    public var description: String {
        "\(name)(\(operands.map(\.description).joined(separator: ", ")))"
            + (workspaceBytes > 0 ? " workspace \(workspaceBytes) B" : "")
    }
}

/// The C kernel table, read once: the ids and names lowering uses.
public enum KernelTable {
    public struct Row: Sendable {
        public var name: String
        public var family: UInt32
        public var op: Int32
        public var isa: UInt32
        public var tile: Int32
    }

    public static let rows: [Row] = {
        var n = 0
        let table = ck_kernel_table(&n)!
        return (0..<n).map { i in
            Row(name: String(cString: table[i].name), family: table[i].family.rawValue, op: table[i].op,
                isa: table[i].isa.rawValue, tile: table[i].tile)
        }
    }()

    /// The row of a family's op at an ISA (and micro-tile rows, where a family has several).
    static func id(_ family: ck_family, op: Int32 = 0, isa: ck_isa, tile: Int32? = nil) throws -> Int {
        guard let i = rows.firstIndex(where: { $0.family == family.rawValue && $0.op == op && $0.isa == isa.rawValue && (tile == nil || $0.tile == tile) }) else {
            throw IRError("no kernel in the table for family \(family.rawValue) op \(op) at \(isaSuffix(isa))" + (tile.map { " with tile \($0)" } ?? ""))
        }
        return i
    }
}

/// A parameter block: a header struct, then arrays at 8-byte-aligned
/// offsets that the header records (fused programs, update jobs).
struct ParamBlock {
    private(set) var bytes: [UInt8]

    init<Header>(_ header: Header) {
        bytes = withUnsafeBytes(of: header) { Array($0) }
        pad()
    }

    /// Appends an array; returns its byte offset for the header.
    mutating func append<T>(_ array: [T]) -> Int64 {
        let at = bytes.count
        array.withUnsafeBytes { bytes += $0 }
        pad()
        return Int64(at)
    }

    mutating func setHeader<Header>(_ header: Header) {
        withUnsafeBytes(of: header) { h in bytes.replaceSubrange(0..<h.count, with: h) }
    }

    private mutating func pad() { while bytes.count % 8 != 0 { bytes.append(0) } }
}

/// What lowering sees: the node at concrete types and the ISA the plan
/// runs. No buffers: a lowering names operands, the runtime binds them.
public struct LoweringContext {
    public var isa: ck_isa
    public var node: Node
    public var inputTypes: [TensorType]
    /// Positions of the inputs the memory planner already put where this
    /// node's kernel would copy them (OpDef.inputOffsets): nothing to move.
    public var placedInputs: Set<Int>

    public init(isa: ck_isa, node: Node, inputTypes: [TensorType], placedInputs: Set<Int> = []) {
        self.isa = isa
        self.node = node
        self.inputTypes = inputTypes
        self.placedInputs = placedInputs
    }

    var outputType: TensorType { node.type }
    var outCount: Int { elementCount(node.type) }
    /// The ISA elementwise families run at (they have no AVX-512 variant).
    var vectorISA: ck_isa { isa == CK_ISA_REF ? CK_ISA_REF : CK_ISA_AVX2 }

    /// A call of a family's kernel with a parameter struct (or block bytes).
    func call<Params>(_ family: ck_family, op: Int32 = 0, isa: ck_isa? = nil, tile: Int32? = nil, params: Params,
                      _ operands: [KernelOperand], workspace: Int = 0, detail: String = "") throws -> KernelCall {
        let bytes = (params as? ParamBlock)?.bytes ?? ParamBlock(params).bytes
        return KernelCall(kernel: try KernelTable.id(family, op: op, isa: isa ?? vectorISA, tile: tile), params: bytes,
                          operands: operands, workspaceBytes: workspace, detail: detail)
    }

    /// Operands 0..<count of the node's inputs, in order.
    func inputs(_ count: Int) -> [KernelOperand] { (0..<count).map { .input($0) } }
}

func isaSuffix(_ isa: ck_isa) -> String { String(cString: ck_isa_name(isa)) }
