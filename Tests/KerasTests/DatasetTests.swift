import Foundation
import XCTest
@testable import Keras

/// Data loading: round trips, and corrupt or truncated files named in the error.
final class DatasetTests: XCTestCase {
    func temp(_ suffix: String) -> String { NSTemporaryDirectory() + "keras-data-\(UUID().uuidString)" + suffix }

    func write(_ bytes: [UInt8], _ suffix: String) throws -> String {
        let path = temp(suffix)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func assertThrows(_ body: @autoclosure () throws -> Any, contains parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            let m = "\(error)"
            for p in parts { XCTAssertTrue(m.contains(p), "'\(m)' does not mention '\(p)'", file: file, line: line) }
        }
    }

    /// An IDX file as MNIST stores it: ubyte images [2, 2, 3].
    func idxBytes() -> [UInt8] { [0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3] + (0..<12).map { UInt8($0 * 20) } }

    func testIDXReadsMNISTLayout() throws {
        let t = try Datasets.readIDX(try write(idxBytes(), "-images-idx3-ubyte"))
        XCTAssertEqual(t.shape, [2, 2, 3])
        XCTAssertEqual(t.floats, (0..<12).map { Float($0 * 20) })
        // big-endian 32-bit floats (type 0x0D)
        let floats: [Float] = [1.5, -2.25]
        var b: [UInt8] = [0, 0, 0x0D, 1, 0, 0, 0, 2]
        for f in floats { let u = f.bitPattern; b += [UInt8(u >> 24), UInt8(u >> 16 & 255), UInt8(u >> 8 & 255), UInt8(u & 255)] }
        XCTAssertEqual(try Datasets.readIDX(try write(b, ".idx")).floats, floats)
    }

    func testIDXErrorsNameTheFileAndProblem() throws {
        let truncated = try write(Array(idxBytes().dropLast(5)), ".idx")
        assertThrows(try Datasets.readIDX(truncated), contains: [truncated, "truncated", "12 data bytes", "has 7"])
        let magic = try write([1, 2, 3, 4, 5, 6, 7, 8], ".idx")
        assertThrows(try Datasets.readIDX(magic), contains: [magic, "bad magic"])
        let header = try write([0, 0, 8, 3, 0, 0, 0], ".idx")
        assertThrows(try Datasets.readIDX(header), contains: [header, "truncated IDX header"])
        let type = try write([0, 0, 0x42, 1, 0, 0, 0, 1, 0], ".idx")
        assertThrows(try Datasets.readIDX(type), contains: [type, "unknown IDX data type 0x42"])
        assertThrows(try Datasets.readIDX("/nonexistent/file.idx"), contains: ["/nonexistent/file.idx", "cannot read"])
    }

    func testCSVSkipsAHeaderAndReportsBadLines() throws {
        let good = temp(".csv")
        try "a,b,label\n1,2,0\n3.5, 4 ,1\r\n\n".write(toFile: good, atomically: true, encoding: .utf8)
        let csv = try Datasets.readCSV(good)
        XCTAssertEqual(csv.rows, 2)
        XCTAssertEqual(csv.columns, 3)
        XCTAssertEqual(csv.values, [1, 2, 0, 3.5, 4, 1])
        let ragged = temp(".csv")
        try "1,2,3\n4,5\n".write(toFile: ragged, atomically: true, encoding: .utf8)
        assertThrows(try Datasets.readCSV(ragged), contains: [ragged, "line 2 has 2 fields", "have 3"])
        let word = temp(".csv")
        try "1,2\n3,x\n".write(toFile: word, atomically: true, encoding: .utf8)
        assertThrows(try Datasets.readCSV(word), contains: [word, "line 2", "not a number"])
        let empty = temp(".csv")
        try "only,a,header\n".write(toFile: empty, atomically: true, encoding: .utf8)
        assertThrows(try Datasets.readCSV(empty), contains: [empty, "no rows"])
    }

    func testNPYAndNPZRoundTripAndCorruption() throws {
        let a = try Tensor([1, -2, 3.5, 4, 5, 6], shape: [2, 3])
        let b = try Tensor([Int32(7), 8, 9], shape: [3])
        let npy = temp(".npy")
        try Datasets.writeNPY(a, to: npy)
        XCTAssertEqual(try Datasets.readNPY(npy), a)
        let npz = temp(".npz")
        try Datasets.writeNPZ([("x", a), ("y", b)], to: npz)
        let back = try Datasets.readNPZ(npz)
        XCTAssertEqual(back.map(\.0), ["x", "y"])
        XCTAssertEqual(back[0].1, a)
        XCTAssertEqual(back[1].1, b)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: npy)))
        let cut = try write(Array(bytes.dropLast(4)), ".npy")
        assertThrows(try Datasets.readNPY(cut), contains: [cut])
        let zbytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: npz)))
        let zcut = try write(Array(zbytes.prefix(zbytes.count / 2)), ".npz")
        assertThrows(try Datasets.readNPZ(zcut), contains: [zcut, "not a valid .npz"])
    }

    func testToCategoricalSplitAndShuffle() throws {
        let y = try toCategorical([2, 0, 1])
        XCTAssertEqual(y.shape, [3, 3])
        XCTAssertEqual(y.floats, [0, 0, 1, 1, 0, 0, 0, 1, 0])
        XCTAssertEqual(try toCategorical([1], numClasses: 4).floats, [0, 1, 0, 0])
        assertThrows(try toCategorical([0, 5], numClasses: 3), contains: ["label 5 at index 1", "[0, 3)"])
        assertThrows(try toCategorical([-1]), contains: ["to_categorical"])

        let order = try shuffledIndices(50, seed: 3)
        XCTAssertEqual(order, try shuffledIndices(50, seed: 3), "a seed fixes the order")
        XCTAssertNotEqual(order, try shuffledIndices(50, seed: 4))
        XCTAssertEqual(order.sorted(), Array(0..<50))

        let x = try Tensor((0..<20).map { Float($0) }, shape: [10, 2])
        let labels = try Tensor((0..<10).map { Float($0) }, shape: [10, 1])
        let s = try trainValidationSplit(x: x, y: labels, validationFraction: 0.2, seed: 1)
        XCTAssertEqual(s.xTrain.shape, [8, 2])
        XCTAssertEqual(s.xVal.shape, [2, 2])
        // rows stay paired and together cover every sample once
        let ids = (s.yTrain.floats + s.yVal.floats).map { Int($0) }
        XCTAssertEqual(ids.sorted(), Array(0..<10))
        for (r, id) in s.yTrain.floats.enumerated() { XCTAssertEqual(s.xTrain.floats[2 * r], Float(2 * Int(id))) }
        assertThrows(try trainValidationSplit(x: x, y: labels, validationFraction: 1.5, seed: 1), contains: ["(0, 1)", "1.5"])
        assertThrows(try trainValidationSplit(x: x, y: try labels.gatherRows([0, 1]), validationFraction: 0.2, seed: 1),
                     contains: ["same number of rows"])
    }

    func testPicturesAreWellFormedSVGAndDOT() throws {
        let m = try Sequential([Dense(4, activation: "relu", inputShape: [3]), Dense(2)], name: "pic")
        let dot = ModelPlot.dot(m)
        XCTAssertTrue(dot.hasPrefix("digraph"), dot)
        for l in m.layers { XCTAssertTrue(dot.contains(l.name), "DOT lacks \(l.name)") }
        let svg = ModelPlot.svg(m)
        XCTAssertTrue(svg.contains("<svg") && svg.hasSuffix("</svg>\n"), svg)
        XCTAssertTrue(svg.contains("(None, 4)") && svg.contains("Dense"), svg)
        let chart = HistoryChart.svg(["loss": [1, 0.5, 0.25], "val_loss": [1.1, 0.7, 0.6], "accuracy": [0.5, 0.8, 0.9]])
        XCTAssertTrue(chart.contains("<svg") && chart.contains("polyline"), chart)
        XCTAssertTrue(chart.contains(">validation<") && chart.contains(">training<") && chart.contains(">accuracy<"), chart)
        // round ticks covering the data (loss 0.25 to 1.1: 0.2 to 1.2 in steps of 0.2), gridlines, epoch labels
        XCTAssertEqual(HistoryChart.niceTicks(0.25, 1.1), [0.2, 0.4, 0.6, 0.8, 1.0, 1.2])
        XCTAssertEqual(HistoryChart.niceTicks(0, 2300), [0, 500, 1000, 1500, 2000, 2500])
        XCTAssertEqual(HistoryChart.tickDecimals([0.2, 0.4]), 1)
        XCTAssertEqual(HistoryChart.epochTicks(3), [1, 2, 3])
        XCTAssertEqual(HistoryChart.epochTicks(50), [1, 10, 20, 30, 40, 50])
        for label in [">0.2<", ">1.2<", ">1<", ">3<"] { XCTAssertTrue(chart.contains(label), "no tick \(label)") }
        XCTAssertTrue(chart.contains("stroke=\"#e5e5e5\""), "gridlines")
        try m.compile(optimizer: "sgd", loss: "mse", metrics: ["mae"])
        let h = try m.fit(try Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]), try Tensor([0, 1, 1, 0], shape: [2, 2]), epochs: 2, verbose: 0)
        let only = temp(".svg")
        try plotHistory(h, to: only, metrics: ["mae"])
        let text = try String(contentsOfFile: only, encoding: .utf8)
        XCTAssertTrue(text.contains(">mae<") && !text.contains(">loss<"), text)
        assertThrows(try plotHistory(h, to: temp(".svg"), metrics: ["accuracy"]), contains: ["no metric 'accuracy'", "loss, mae"])
        let path = temp(".svg")
        try plotModel(m, to: path)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), svg)
        assertThrows(try plotModel(m, to: temp(".png")), contains: [".png"])
    }
}

/// np.savez_compressed files (DEFLATE): fixed, dynamic and stored blocks, and
/// corrupt data caught by the decoder or the CRC.
final class CompressedNPZTests: XCTestCase {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/npz").path

    func testReadsSavezCompressed() throws {
        let arrays = try Datasets.readNPZ(Self.dir + "/compressed.npz")
        XCTAssertEqual(arrays.map(\.0), ["x", "big", "labels"])
        let x = arrays[0].1, big = arrays[1].1, labels = arrays[2].1
        XCTAssertEqual(x.shape, [2, 3, 4])
        XCTAssertEqual(x.floats.map(\.bitPattern), (0..<24).map { (Float($0) / 7).bitPattern })
        XCTAssertEqual(big.shape, [300, 50])
        XCTAssertEqual(big.floats.reduce(0, +), 112304)
        XCTAssertEqual(Array(big.floats[0..<5]), [13, 10, 8, 4, 4])
        XCTAssertEqual(Array(big.floats.suffix(3)), [2, 12, 0])
        XCTAssertEqual(labels.shape, [5])
        XCTAssertEqual(labels.floats, [3, 1, 4, 1, 5])
    }

    func testReadsDeflateStoredBlocks() throws {
        let arrays = try Datasets.readNPZ(Self.dir + "/stored-blocks.npz")
        XCTAssertEqual(arrays.map(\.0), ["ramp"])
        XCTAssertEqual(arrays[0].1.floats, (0..<5000).map(Float.init))
    }

    func testCorruptCompressedEntriesAreNamed() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.dir + "/compressed.npz")))
        // flip bits inside big.npy's compressed stream (it starts after x.npy's local header and data)
        for offset in [400, 2000, 9000] {
            var bad = bytes
            bad[offset] ^= 0x5A
            let path = NSTemporaryDirectory() + "keras-npz-\(UUID().uuidString).npz"
            try Data(bad).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try Datasets.readNPZ(path)) { error in
                let m = "\(error)"
                XCTAssertTrue(m.contains(path) && m.contains("big.npy"), m)
                XCTAssertTrue(m.contains("does not inflate") || m.contains("CRC-32"), m)
            }
        }
    }
}
