import CKernels
import KerasIR
import XCTest

/// Sizes around a vector width or tile: 1 ... tile+1, multiples and odd sizes.
func sizesAround(_ tile: Int) -> [Int] {
    var s = Set(1...(tile + 1))
    for m in [2, 3, 4] { s.insert(m * tile); s.insert(m * tile - 1); s.insert(m * tile + 1) }
    for odd in [7, 33, 257] { s.insert(odd) }
    return s.sorted()
}

/// Deterministic test data.
struct TestRNG {
    var base: SplitMix64
    init(_ seed: UInt64) { base = SplitMix64(seed: seed) }
    mutating func next() -> UInt64 { base.next() }
    mutating func float(_ lo: Float, _ hi: Float) -> Float { base.uniform(lo, hi) }
    mutating func floats(_ n: Int, _ lo: Float, _ hi: Float) -> [Float] { (0..<n).map { _ in float(lo, hi) } }
}

let canary: UInt32 = 0xDEADBEEF

/// A float buffer with an odd offset from a 64-byte boundary (unaligned for
/// vector loads) and canary words after its end.
final class Guarded {
    let raw: UnsafeMutableRawPointer
    let count: Int
    let offset = 1  // floats past the aligned start
    static let guardWords = 16
    var pointer: UnsafeMutablePointer<Float> { raw.assumingMemoryBound(to: Float.self) + offset }
    var words: UnsafeMutablePointer<UInt32> { raw.assumingMemoryBound(to: UInt32.self) + offset }

    init(_ count: Int, fill: Float = .nan) {
        self.count = count
        raw = .allocate(byteCount: (count + offset + Guarded.guardWords) * 4, alignment: 64)
        let w = raw.assumingMemoryBound(to: UInt32.self)
        for i in 0..<(count + offset + Guarded.guardWords) { w[i] = canary }
        for i in 0..<count { pointer[i] = fill }
    }
    convenience init(_ values: [Float]) {
        self.init(values.count)
        for (i, v) in values.enumerated() { pointer[i] = v }
    }
    deinit { raw.deallocate() }

    var values: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
    var intactCanaries: Bool {
        let w = raw.assumingMemoryBound(to: UInt32.self)
        let before = (0..<offset).allSatisfy { w[$0] == canary }
        let after = (0..<Guarded.guardWords).allSatisfy { w[offset + count + $0] == canary }
        return before && after
    }
}

/// Elementwise comparison |y - ref| <= (|ref| + 1) * tol, NaN only where ref is NaN.
/// Returns a message describing the first mismatches, or nil.
func compare(_ y: [Float], _ ref: [Float], tol: Float) -> String? {
    var bad: [String] = []
    for i in 0..<ref.count {
        let a = y[i], r = ref[i]
        if r.isNaN { if !a.isNaN { bad.append("[\(i)] \(a) vs NaN") }; continue }
        if r.isInfinite { if a != r { bad.append("[\(i)] \(a) vs \(r)") }; continue }
        if !(abs(a - r) <= (abs(r) + 1) * tol) { bad.append("[\(i)] \(a) vs \(r) (diff \(abs(a - r)))") }
        if bad.count >= 4 { break }
    }
    return bad.isEmpty ? nil : bad.joined(separator: ", ")
}

func kernelName(_ info: ck_kernel_info) -> String { String(cString: info.name) }

var hasAVX2: Bool { ck_cpu_has_avx2_fma() != 0 }

/// A micro-kernel's own row of the kernel table: tile = MR rows, op = NR columns.
struct MicroKernelRow {
    var name: String, isa: ck_isa, mr: Int, nr: Int
    /// Whether this CPU runs it.
    var runs: Bool { isa == CK_ISA_AVX512 ? ck_cpu_has_avx512f() != 0 : hasAVX2 }
}

/// The optimized micro-kernel rows of a family.
func microKernelRows(_ family: ck_family) -> [MicroKernelRow] {
    var n = 0
    let t = ck_kernel_table(&n)!
    return (0..<n).map { t[$0] }.filter { $0.family == family && $0.isa != CK_ISA_REF }.map {
        MicroKernelRow(name: String(cString: $0.name), isa: $0.isa, mr: Int($0.tile), nr: Int($0.op))
    }
}

/// Column counts around a tile of NR: each vector's edges and the full width.
func columnsAround(_ nr: Int) -> [Int] { Set([1, 7, 8, 9, 15, 16, 17, nr - 1, nr].filter { $0 >= 1 && $0 <= nr }).sorted() }

/// Elements of an MR x ldc tile of C that are wrong inside mr x nr (beyond
/// 2e-7 per term of a `depth`-term sum, relative) or changed outside it.
func tileMismatches(_ got: [Float], _ want: [Float], before: [Float], rows: Int, ldc: Int, mr: Int, nr: Int, depth: Int) -> Int {
    var bad = 0
    for i in 0..<rows { for j in 0..<ldc {
        let k = i * ldc + j
        if i < mr && j < nr {
            if abs(got[k] - want[k]) > 2e-7 * Float(depth + 1) * (abs(want[k]) + 1) { bad += 1 }
        } else if got[k].bitPattern != before[k].bitPattern { bad += 1 }
    } }
    return bad
}
