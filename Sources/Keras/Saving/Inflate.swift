/// A DEFLATE (RFC 1951) decoder for the compressed entries that
/// `np.savez_compressed` writes: stored, fixed-Huffman and dynamic-Huffman
/// blocks. Corrupt input is an error naming the entry, never a trap; the
/// output is bounded by the size the archive declares.
enum Inflate {
    struct Failure: Error { var message: String }

    /// The most DEFLATE can expand: a 258-byte match coded in one literal/length
    /// and one distance code of one bit each, about 1032:1.
    static let maxRatio = 1032

    /// Reads bits least-significant first, as DEFLATE packs them.
    private struct BitReader {
        let bytes: [UInt8]
        var position: Int
        let end: Int
        var bitBuffer: UInt64 = 0
        var bitCount = 0

        init(_ bytes: [UInt8], start: Int, end: Int) { self.bytes = bytes; position = start; self.end = end }

        mutating func bits(_ n: Int) throws -> Int {
            while bitCount < n {
                guard position < end else { throw Failure(message: "compressed data ends early") }
                bitBuffer |= UInt64(bytes[position]) << UInt64(bitCount)
                position += 1
                bitCount += 8
            }
            let v = Int(bitBuffer & ((1 << UInt64(n)) - 1))
            bitBuffer >>= UInt64(n)
            bitCount -= n
            return v
        }

        /// Drops the bits left in the current byte (before a stored block).
        mutating func alignToByte() { let drop = bitCount % 8; bitBuffer >>= UInt64(drop); bitCount -= drop }
    }

    /// A canonical Huffman code as counts per length and symbols in code order.
    private struct Huffman {
        var counts = [Int](repeating: 0, count: 16)
        var symbols: [Int]

        init(lengths: [Int]) throws {
            for l in lengths { counts[l] += 1 }
            var left = 1
            for len in 1...15 {
                left <<= 1
                left -= counts[len]
                guard left >= 0 else { throw Failure(message: "a Huffman table is over-subscribed") }
            }
            var offsets = [Int](repeating: 0, count: 16)
            for len in 1..<15 { offsets[len + 1] = offsets[len] + counts[len] }
            symbols = [Int](repeating: 0, count: lengths.count)
            for (symbol, l) in lengths.enumerated() where l != 0 {
                symbols[offsets[l]] = symbol
                offsets[l] += 1
            }
            counts[0] = 0
        }

        func decode(_ r: inout BitReader) throws -> Int {
            var code = 0, first = 0, index = 0
            for len in 1...15 {
                code |= try r.bits(1)
                let count = counts[len]
                if code - first < count { return symbols[index + code - first] }
                index += count
                first = (first + count) << 1
                code <<= 1
            }
            throw Failure(message: "an invalid Huffman code")
        }
    }

    private static let lengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    private static let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    private static let distanceBase = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
                                       4097, 6145, 8193, 12289, 16385, 24577]
    private static let distanceExtra = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
    private static let codeLengthOrder = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

    private static let fixedTables: (Huffman, Huffman) = {
        var lengths = [Int](repeating: 8, count: 288)
        for i in 144..<256 { lengths[i] = 9 }
        for i in 256..<280 { lengths[i] = 7 }
        return (try! Huffman(lengths: lengths), try! Huffman(lengths: [Int](repeating: 5, count: 30)))
    }()

    /// Decompresses `bytes[start..<end]`, which must inflate to exactly `size` bytes.
    static func decompress(_ bytes: [UInt8], start: Int, end: Int, size: Int) throws -> [UInt8] {
        var r = BitReader(bytes, start: start, end: end)
        var out: [UInt8] = []
        // Grown as data arrives: a corrupt stream fails before its declared size is reached.
        out.reserveCapacity(min(size, 4 * (end - start) + 1024))
        var last = 0
        while last == 0 {
            last = try r.bits(1)
            switch try r.bits(2) {
            case 0:
                r.alignToByte()
                let len = try r.bits(16), nlen = try r.bits(16)
                guard len == ~nlen & 0xffff else { throw Failure(message: "a stored block's length check fails") }
                guard out.count + len <= size else { throw Failure(message: "inflates past the declared \(size) bytes") }
                for _ in 0..<len { out.append(UInt8(try r.bits(8))) }
            case 1:
                try inflateBlock(&r, &out, fixedTables.0, fixedTables.1, size: size)
            case 2:
                let (lit, dist) = try dynamicTables(&r)
                try inflateBlock(&r, &out, lit, dist, size: size)
            default:
                throw Failure(message: "invalid block type 3")
            }
        }
        guard out.count == size else { throw Failure(message: "inflates to \(out.count) bytes, the archive declares \(size)") }
        return out
    }

    private static func dynamicTables(_ r: inout BitReader) throws -> (Huffman, Huffman) {
        let nlen = try r.bits(5) + 257, ndist = try r.bits(5) + 1, ncode = try r.bits(4) + 4
        guard nlen <= 286, ndist <= 30 else { throw Failure(message: "too many length or distance codes") }
        var codeLengths = [Int](repeating: 0, count: 19)
        for i in 0..<ncode { codeLengths[codeLengthOrder[i]] = try r.bits(3) }
        let lencode = try Huffman(lengths: codeLengths)
        var lengths: [Int] = []
        while lengths.count < nlen + ndist {
            let symbol = try lencode.decode(&r)
            switch symbol {
            case 0..<16: lengths.append(symbol)
            case 16:
                guard let prev = lengths.last else { throw Failure(message: "a repeat with no previous length") }
                lengths += [Int](repeating: prev, count: 3 + (try r.bits(2)))
            case 17: lengths += [Int](repeating: 0, count: 3 + (try r.bits(3)))
            default: lengths += [Int](repeating: 0, count: 11 + (try r.bits(7)))
            }
        }
        guard lengths.count == nlen + ndist else { throw Failure(message: "code lengths overrun their table") }
        guard lengths[256] != 0 else { throw Failure(message: "no end-of-block code") }
        return (try Huffman(lengths: Array(lengths[0..<nlen])), try Huffman(lengths: Array(lengths[nlen...])))
    }

    private static func inflateBlock(_ r: inout BitReader, _ out: inout [UInt8], _ lit: Huffman, _ dist: Huffman, size: Int) throws {
        while true {
            let symbol = try lit.decode(&r)
            if symbol < 256 {
                guard out.count < size else { throw Failure(message: "inflates past the declared \(size) bytes") }
                out.append(UInt8(symbol))
            } else if symbol == 256 {
                return
            } else {
                let li = symbol - 257
                guard li < 29 else { throw Failure(message: "invalid length code \(symbol)") }
                let length = lengthBase[li] + (try r.bits(lengthExtra[li]))
                let di = try dist.decode(&r)
                guard di < 30 else { throw Failure(message: "invalid distance code \(di)") }
                let distance = distanceBase[di] + (try r.bits(distanceExtra[di]))
                guard distance <= out.count else { throw Failure(message: "a back-reference reaches \(distance) bytes back, before the start") }
                guard out.count + length <= size else { throw Failure(message: "inflates past the declared \(size) bytes") }
                let from = out.count - distance
                for k in 0..<length { out.append(out[from + k]) }
            }
        }
    }
}
