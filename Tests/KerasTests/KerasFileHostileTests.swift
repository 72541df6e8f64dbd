import Foundation
import Keras
import XCTest

/// Damaged and hostile Keras files: each is a thrown error naming the file,
/// the object and the problem; nothing crashes, nothing unbounded is
/// allocated, and a model given bad weights keeps the ones it had.
final class KerasFileHostileTests: XCTestCase {
    func tempPath(_ suffix: String) -> String { NSTemporaryDirectory() + "keras-\(UUID().uuidString)\(suffix)" }

    /// A small model and its .weights.h5 bytes, with a dataset's header address.
    func sample() throws -> (Model, [UInt8], datasetHeader: Int) {
        Naming.reset()
        let m = try Sequential([Dense(3, inputShape: [4]), Dense(2)], name: "m")
        let path = tempPath(".weights.h5")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try m.saveWeights(to: path)
        let bytes = try XCTUnwrap(readBinaryFile(path))
        let f = try HDF5File(bytes: bytes, name: "sample")
        let header = try XCTUnwrap(try f.object(at: "layers/dense/vars").links()["0"])
        return (m, bytes, header)
    }

    func assertLoadFails(_ bytes: [UInt8], into m: Model, contains words: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let path = tempPath(".weights.h5")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writeFileAtomically(path, bytes)
        let before = m.getWeights().map(\.floats)
        XCTAssertThrowsError(try m.loadWeights(from: path), file: file, line: line) { e in
            let text = "\(e)"
            for w in words + [path] { XCTAssertTrue(text.contains(w), "'\(w)' missing from: \(text)", file: file, line: line) }
        }
        XCTAssertEqual(m.getWeights().map(\.floats), before, "no weight changed", file: file, line: line)
    }

    func patch(_ bytes: inout [UInt8], at p: Int, _ value: UInt64, width: Int = 8) {
        for k in 0..<width { bytes[p + k] = UInt8(truncatingIfNeeded: value >> (8 * k)) }
    }

    func testDamagedHDF5() throws {
        let (m, good, header) = try sample()
        // Truncated: the superblock's end-of-file address is past the end.
        try assertLoadFails(Array(good.prefix(good.count / 2)), into: m, contains: ["truncated"])
        // A wrong signature is not HDF5 (nor anything else loadWeights reads).
        var sig = good; sig[1] = 0x58
        try assertLoadFails(sig, into: m, contains: ["not a weights file"])
        // The dataset's data address past the end of the file.
        let layout = try locateMessage(good, header: header, type: 0x8)
        var far = good; patch(&far, at: layout + 2, UInt64(good.count + 4096))
        try assertLoadFails(far, into: m, contains: ["/layers/dense/vars/0", "past the end"])
        // A huge declared size (dims of 2^40 x 3).
        let space = try locateMessage(good, header: header, type: 0x1)
        var huge = good; patch(&huge, at: space + 8, 1 << 40)
        try assertLoadFails(huge, into: m, contains: ["/layers/dense/vars/0", "larger than the whole file"])
        // A continuation chain that loops back to its own header block.
        var loop = good
        patch(&loop, at: header + 16, 0x10, width: 2)
        patch(&loop, at: header + 18, 16, width: 2)
        patch(&loop, at: header + 24, UInt64(header + 16))
        patch(&loop, at: header + 32, 64)
        try assertLoadFails(loop, into: m, contains: ["/layers/dense/vars/0", "loops back"])
        // A group B-tree whose node names itself as its child.
        let tree = try XCTUnwrap(firstIndex(of: "TREE", in: good))
        var cyclic = good
        cyclic[tree + 5] = 1  // level 1: children are B-tree nodes
        patch(&cyclic, at: tree + 32, UInt64(tree))
        try assertLoadFails(cyclic, into: m, contains: ["cycle"])
    }

    /// Inputs the fuzzers found, which once trapped.
    func testFuzzFoundInputs() throws {
        let path = ConformanceTests.root + "/../keras-files/fuzz-found/hdf5-v2-chunk-size.h5"
        let f = try HDF5File(bytes: try XCTUnwrap(readBinaryFile(path)), name: path)
        XCTAssertThrowsError(try f.object(at: "layers/x").read()) { e in XCTAssertTrue("\(e)".contains("declared size"), "\(e)") }
    }

    func testDamagedArchives() throws {
        Naming.reset()
        let m = try Sequential([Dense(2, inputShape: [3])], name: "z")
        let path = tempPath(".keras")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try m.save(to: path)
        let good = try XCTUnwrap(readBinaryFile(path))
        // A flipped byte inside config.json fails its CRC-32.
        let config = try XCTUnwrap(firstIndex(of: "\"class_name\"", in: good))
        var bad = good; bad[config + 2] ^= 0x20
        try writeFileAtomically(path, bad)
        XCTAssertThrowsError(try loadModel(from: path)) { e in XCTAssertTrue("\(e)".contains("config.json fails its CRC-32"), "\(e)") }
        // An entry declaring more bytes than it holds.
        var long = good
        let central = try XCTUnwrap(firstIndex(of: "PK\u{01}\u{02}", in: good))
        patch(&long, at: central + 24, 1 << 30, width: 4)
        try writeFileAtomically(path, long)
        XCTAssertThrowsError(try loadModel(from: path)) { e in XCTAssertTrue("\(e)".contains("is truncated"), "\(e)") }
    }

    func testBadJSONAndWrongModel() throws {
        XCTAssertThrowsError(try modelFromJSON("{\"class_name\": \"Sequential\", ")) { e in XCTAssertTrue("\(e)".hasPrefix("model JSON:"), "\(e)") }
        XCTAssertThrowsError(try modelFromJSON(#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "NoSuchLayer", "config": {}}]}}"#)) { e in
            XCTAssertTrue("\(e)".contains("unknown layer class 'NoSuchLayer'") && "\(e)".contains("LayerRegistry.register"), "\(e)")
        }
        // Weights of another model: every mismatch listed, nothing loaded.
        let (_, bytes, _) = try sample()
        Naming.reset()
        let other = try Sequential([Dense(3, inputShape: [5]), Dense(2), Dense(1)], name: "other")
        try assertLoadFails(bytes, into: other, contains: ["missing layers/dense_2/vars/0", "layers/dense/vars/0 has shape (4, 3)", "nothing was loaded"])
    }

    func firstIndex(of text: String, in bytes: [UInt8]) -> Int? {
        let t = Array(text.utf8)
        guard bytes.count >= t.count else { return nil }
        return (0...(bytes.count - t.count)).first { bytes[$0..<$0 + t.count].elementsEqual(t) }
    }

    /// The body offset of the first message of `type` in the v1 object header at `header`.
    func locateMessage(_ bytes: [UInt8], header: Int, type: Int) throws -> Int {
        var p = header + 16
        for _ in 0..<Int(bytes[header + 2]) {
            let t = Int(bytes[p]) | Int(bytes[p + 1]) << 8, size = Int(bytes[p + 2]) | Int(bytes[p + 3]) << 8
            if t == type { return p + 8 }
            p += 8 + size
        }
        throw KerasError("no message \(type)")
    }
}
