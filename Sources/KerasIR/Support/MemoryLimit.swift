#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one gate every allocation sized by a user goes through: a weight's
/// shape, a tensor read from a file, a plan's arena, an inflated archive
/// entry. Sizes are multiplied with overflow checks and compared with the
/// machine's physical memory before anything is allocated, so a hostile size
/// is a thrown error naming the thing, never an abort inside malloc.
public enum MemoryLimit {
    /// Physical memory of this machine in bytes.
    public static let physicalBytes: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return Int.max }
        let (b, o) = pages.multipliedReportingOverflow(by: size)
        return o ? Int.max : b
    }()

    /// `KERAS_MEMORY_LIMIT=BYTES` (a whole number, optionally with K, M or G
    /// for KiB, MiB, GiB) lowers the limit, e.g. to share a machine or to try
    /// the error paths; a value that does not read is reported by every check.
    static let environment: (bytes: Int?, error: String?) = {
        guard let p = getenv("KERAS_MEMORY_LIMIT") else { return (nil, nil) }
        let text = String(cString: p)
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        var digits = Substring(text), scale = 1
        if let u = digits.last, let m = units[u] { scale = m; digits = digits.dropLast() }
        guard let v = Int(digits), v > 0, case let (b, o) = v.multipliedReportingOverflow(by: scale), !o else {
            return (nil, "KERAS_MEMORY_LIMIT='\(abbreviated(text, limit: 40))' is not a positive number of bytes (e.g. 8G)")
        }
        return (b, nil)
    }()

    /// The limit in force: physical memory, or less when KERAS_MEMORY_LIMIT
    /// or a test (`withLimit`) asks for less.
    public private(set) nonisolated(unsafe) static var bytes: Int = min(physicalBytes, environment.bytes ?? Int.max)

    /// How the limit is named in errors.
    static var limitName: String {
        bytes == physicalBytes ? "this machine's \(formatBytes(bytes))" : "the memory limit of \(formatBytes(bytes))"
    }

    /// Runs `body` with a lower limit (tests only; not thread-safe).
    public static func withLimit<T>(_ limit: Int, _ body: () throws -> T) rethrows -> T {
        let saved = bytes
        bytes = limit
        defer { bytes = saved }
        return try body()
    }

    /// The element count of `shape`, checked: every dimension non-negative
    /// and the product without overflow. `what` names the tensor in errors.
    public static func elementCount(_ shape: [Int], _ what: String) throws -> Int {
        var n = 1
        for d in shape {
            guard d >= 0 else { throw IRError("\(what): shape \(formatDims(shape)) has a negative dimension") }
            let (p, o) = n.multipliedReportingOverflow(by: d)
            guard !o else { throw IRError("\(what): shape \(formatDims(shape)) has more elements than a 64-bit count holds") }
            n = p
        }
        return n
    }

    /// Checks that `count` elements of `elementBytes` bytes fit in memory and
    /// returns the byte count. The error reads
    /// "dense/kernel: 784×2147483647 floats is 6.1 TiB, more than this machine's 23.4 GiB".
    /// `copies` counts the copies alive at once while the thing is made (a
    /// weight's initial values beside its buffer): all of them must fit.
    @discardableResult
    public static func check(_ what: String, count: Int, elementBytes: Int = 4, shape: [Int]? = nil, copies: Int = 1) throws -> Int {
        let (b, o) = count.multipliedReportingOverflow(by: elementBytes)
        let described = shape.map { formatDims($0, separator: "×") } ?? String(count)
        let unit = elementBytes == 1 ? "bytes" : elementBytes == 4 ? "floats" : "elements of \(elementBytes) bytes"
        if let e = environment.error { throw IRError(e) }
        guard count >= 0, !o, b <= bytes else {
            let size = o ? "more than 8 EiB" : "is " + formatBytes(b)
            throw IRError("\(what): \(described) \(unit) \(size), more than \(limitName)")
        }
        let (all, o2) = b.multipliedReportingOverflow(by: max(copies, 1))
        guard !o2, all <= bytes else {
            throw IRError("\(what): \(described) \(unit) is \(formatBytes(b)), and making it takes \(copies) copies (\(o2 ? "more than 8 EiB" : formatBytes(all))), more than \(limitName)")
        }
        return b
    }

    /// a + b, or Int.max where it overflows (a total that is then too large).
    public static func saturatingSum(_ a: Int, _ b: Int) -> Int {
        let (s, o) = a.addingReportingOverflow(b)
        return o ? Int.max : s
    }

    /// Checks a shape of 4-byte elements; returns its element count.
    @discardableResult
    public static func check(_ what: String, shape: [Int], copies: Int = 1) throws -> Int {
        let n = try elementCount(shape, what)
        try check(what, count: n, elementBytes: 4, shape: shape, copies: copies)
        return n
    }
}

extension MemoryLimit {
    /// The whole file (or standard input for "-") as bytes, or nil when it
    /// cannot be opened. Reading stops with an error past half the memory
    /// limit, so a device (/dev/zero) or an endless pipe cannot exhaust memory.
    public static func readFile(_ path: String) throws -> [UInt8]? {
        let f: UnsafeMutablePointer<FILE>
        if path == "-" { f = stdin } else {
            guard let opened = fopen(path, "rb") else { return nil }
            f = opened
        }
        defer { if path != "-" { fclose(f) } }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            guard bytes.count + n <= MemoryLimit.bytes / 2 else {
                throw IRError("\(path == "-" ? "standard input" : path): larger than half the memory limit (\(formatBytes(MemoryLimit.bytes / 2))); it cannot be read whole")
            }
            bytes.append(contentsOf: buf[0..<n])
        }
        return bytes
    }
}

/// "6.1 TiB", "23.4 GiB", "512 bytes".
public func formatBytes(_ b: Int) -> String {
    if b < 1024 { return "\(b) bytes" }
    let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    var v = Double(b) / 1024, u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    let tenths = (v * 10).rounded() / 10
    let text = tenths == tenths.rounded() ? String(Int(tenths)) : String(tenths)
    return "\(text) \(units[u])"
}

func formatDims(_ shape: [Int], separator: String = ", ") -> String {
    let shown = shape.prefix(8).map(String.init).joined(separator: separator)
    return separator == ", " ? "[\(shown)\(shape.count > 8 ? ", …" : "")]" : shown + (shape.count > 8 ? "×…" : "")
}

/// Error text from user data is bounded: lists and strings longer than
/// `limit` characters keep their start and end around a count of what was cut.
public func abbreviated(_ s: String, limit: Int = 400) -> String {
    guard s.count > limit else { return s }
    let head = s.prefix(limit * 3 / 4), tail = s.suffix(limit / 8)
    return "\(head) … (\(s.count - head.count - tail.count) characters omitted) … \(tail)"
}
