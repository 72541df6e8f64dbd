import KerasIR
import KerasRuntime
import TestSupport
import XCTest

final class TextFormatTests: XCTestCase {
    /// print -> parse -> print gives the same text, for every graph the tests build.
    func testRoundTripOfEveryTestGraph() throws {
        var graphs: [Graph] = [try TestGraphs.mlpTraining()]
        for c in opCases {
            let (b, xs, y) = try buildCase(c)
            b.setOutputs([y])
            graphs.append(b.graph)
            if case .vjp = OpRegistry.standard[c.op]!.differentiability, c.inputs.contains(where: \.differentiate) {
                let t = b.type(of: y)
                let loss = try b.reduceSum(y, axes: Array(0..<t.rank))
                var g = b.graph
                let wrt = xs.enumerated().filter { c.inputs[$0.offset].differentiate }.map(\.element)
                g.outputs = try Autodiff.gradients(of: loss, wrt: wrt, in: &g)
                graphs.append(g)
            }
        }
        var optimized = try TestGraphs.mlpTraining()
        var pipeline = PassPipeline.standard()
        try pipeline.run(&optimized)
        graphs.append(optimized)
        for g in graphs {
            let text = g.description
            let parsed = try GraphParser.parse(text)
            XCTAssertEqual(parsed.description, text, "round trip of @\(g.name)")
            try Verifier.verify(parsed)
        }
        XCTAssertGreaterThan(graphs.count, 100)
    }

    func testDumpNotation() throws {
        let b = GraphBuilder(name: "mlp")
        let x = try b.input("x", .f32([-1, 784]))
        let w = try b.parameter("dense.kernel", .f32([784, 512]))
        let bias = try b.parameter("dense.bias", .f32([512]))
        let y = try b.withLayer("dense") { try b.relu(b.add(b.matmul(x, w), bias)) }
        b.setOutputs([y])
        XCTAssertEqual(b.graph.description, """
        graph @mlp(%x: f32[?,784], %dense.kernel: f32[784,512] param, %dense.bias: f32[512] param) -> (f32[?,512]) {
          %0 = matmul(%x, %dense.kernel) {transpose_a=false, transpose_b=false} : f32[?,512]  # dense
          %1 = add(%0, %dense.bias) : f32[?,512]  # dense
          %2 = relu(%1) : f32[?,512]  # dense
          return %2
        }

        """)
    }

    func testParsedAttributesAndConstantsRoundTrip() throws {
        let text = """
        graph @g(%a: f32[2,3], %i: i32[4]) -> (f32[2,3], i32[4]) {
          # a whole-line comment is ignored
          %c = constant {value=[0.1,-2.5,1e-07,inf,-inf,3.0]} : f32[2,3]
          %0 = add(%a, %c) : f32[2,3]  # some_layer
          %1 = pad(%0) {pads=[0,0,1,1], value=-0.5} : f32[2,5]
          %2 = slice(%1) {begin=[0,1], size=[-1,3]} : f32[2,3]
          %3 = cast(%i) {dtype="f32"} : f32[4]
          %4 = cast(%3) {dtype="i32"} : i32[4]
          return %2, %4
        }

        """
        let g = try GraphParser.parse(text)
        XCTAssertEqual(g[g.value(named: "c")!].attrs["value"], .floats([0.1, -2.5, 1e-7, .infinity, -.infinity, 3]))
        XCTAssertEqual(g.nodes.first { $0.op == "add" }?.layer, "some_layer")
        XCTAssertEqual(try GraphParser.parse(g.description).description, g.description)
    }

    /// String attributes with quotes, backslashes and control characters print
    /// escaped and parse back to the same string.
    func testStringEscapesRoundTrip() throws {
        let b = GraphBuilder(name: "s")
        let x = try b.input("x", .f32([2]))
        let weird = "a\"b\\c\nd\te\rf\u{1}g"
        let y = try b.emit("cast", [x], ["dtype": .string("f32"), "note": .string(weird)])
        b.setOutputs([y])
        let text = b.graph.description
        XCTAssertTrue(text.contains(#"note="a\"b\\c\nd\te\rf\u0001g""#), text)
        let back = try GraphParser.parse(text)
        XCTAssertEqual(back.nodes.first { $0.op == "cast" }?.attrs["note"], .string(weird))
    }

    /// Thousands of random mutations of a real dump: each either parses into a
    /// graph that verifies and prints stably, or fails with a ParseError.
    /// Nothing may trap.
    func testMutatedTextNeverCrashesTheParser() throws {
        let text = Array(try TestGraphs.mlpTraining().description)
        let alphabet = Array("%@{}[](),:=?#->\"0123456789.e-+abcfinqx_ \n")
        var rng = CaseRNG(seed: 99)
        var parsed = 0, rejected = 0
        for _ in 0..<3000 {
            var t = text
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let i = Int(rng.next() % UInt64(t.count))
                switch rng.next() % 3 {
                case 0: t.remove(at: i)
                case 1: t.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: i)
                default: t[i] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                }
            }
            do {
                let g = try GraphParser.parse(String(t))
                try Verifier.verify(g)
                XCTAssertEqual(try GraphParser.parse(g.description).description, g.description)
                parsed += 1
            } catch is ParseError {
                rejected += 1
            }
        }
        XCTAssertGreaterThan(rejected, 1000)
        XCTAssertGreaterThan(parsed, 10)
    }

    /// Dimensions too large to compute with are errors, not overflows.
    func testOversizedShapesAreErrors() {
        let cases: [(String, String)] = [
            ("graph @g(%x: f32[9223372036854775807]) {\n  return %x\n}", "expected a dimension"),
            ("graph @g(%x: f32[2147483647,2147483647]) {\n  return %x\n}", "has more than 1099511627776 elements"),
            ("graph @g(%x: f32[2]) {\n  %0 = pad(%x) {pads=[0,9223372036854775807]} : f32[2]\n  return %0\n}", "padding"),
            ("graph @g(%x: f32[2]) {\n  %0 = reshape(%x) {shape=[4611686018427387904,4,-1]} : f32[2]\n  return %0\n}", "reshape target"),
            ("graph @g(%x: f32[2]) {\n  %0 = broadcast_to(%x) {shape=[2147483647,2147483647,2]} : f32[2]\n  return %0\n}", "elements"),
        ]
        for (text, fragment) in cases {
            do {
                _ = try GraphParser.parse(text)
                XCTFail("accepted \(text)")
            } catch let e as ParseError {
                XCTAssertTrue(e.message.contains(fragment), "'\(e.message)' should contain '\(fragment)'")
            } catch {
                XCTFail("unexpected \(error)")
            }
        }
    }

    /// Malformed text names the line and column of the problem.
    func testParseErrorsNameLineAndColumn() {
        let cases: [(String, Int, String)] = [
            ("graph @g(%x: f32[2]) {\n  %0 = frobnicate(%x) : f32[2]\n  return %0\n}", 2, "unknown op 'frobnicate'"),
            ("graph @g(%x: f32[2]) {\n  %0 = exp(%y) : f32[2]\n  return %0\n}", 2, "unknown value %y"),
            ("graph @g(%x: f33[2]) {\n  return %x\n}", 1, "expected a type"),
            ("graph @g(%x: f32[2]) {\n  %0 = exp(%x) : f32[3]\n  return %0\n}", 2, "is written as f32[3] but exp gives f32[2]"),
            ("graph @g(%x: f32[2]) {\n  %0 = exp(%x) : f32[2]\n", 3, "expected a %value"),
            ("graph @g(%x: f32[2,3], %w: f32[4,5] param) {\n  %0 = matmul(%x, %w) : f32[2,5]  # dense_2\n  return %0\n}", 2,
             "dense_2: matmul expects inner dimensions to agree, got f32[2,3] and f32[4,5]"),
            ("graph @g(%x: f32[2]) {\n  %0 = exp(%x) {foo=} : f32[2]\n  return %0\n}", 2, "expected an attribute value"),
            ("graph @g(%x: f32[2]) {\n  %0 = exp(%x) : f32[2]\n  %0 = exp(%x) : f32[2]\n  return %0\n}", 3, "defined twice"),
            ("graph @g(%x: f32[2]) -> (f32[3]) {\n  return %x\n}", 2, "the header declares results"),
            ("graph @g(%x: f32[2]) {\n  %0 = exp(%x) : f32[2] $\n}", 2, "unexpected character '$'"),
            ("graph @g(%x: f32[2]) {\n  %s = constant {value=\"abc} : f32[]\n}", 2, "unterminated string"),
        ]
        for (text, line, fragment) in cases {
            do {
                _ = try GraphParser.parse(text)
                XCTFail("parsed malformed text: \(text)")
            } catch let e as ParseError {
                XCTAssertEqual(e.line, line, "line of '\(e.message)'")
                XCTAssertTrue(e.message.contains(fragment), "'\(e.message)' should contain '\(fragment)'")
            } catch {
                XCTFail("unexpected error \(error)")
            }
        }
    }
}

final class ShapeErrorTests: XCTestCase {
    func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "no error"
    }

    /// Shape and dtype mismatches are thrown errors naming layer, op and types.
    func testShapeErrorsNameLayerOpAndShapes() throws {
        let b = GraphBuilder(name: "g")
        let x = try b.input("x", .f32([-1, 780]))
        let w = try b.parameter("w", .f32([784, 512]))
        XCTAssertEqual(message { _ = try b.withLayer("dense_2") { try b.matmul(x, w) } },
                       "dense_2: matmul expects inner dimensions to agree, got f32[?,780] and f32[784,512]")
        let v = try b.input("v", .f32([3, 4]))
        XCTAssertEqual(message { _ = try b.add(v, b.input("u", .f32([5]))) }, "add cannot broadcast f32[3,4] and f32[5]")
        let i = try b.input("i", .i32([3]))
        XCTAssertEqual(message { _ = try b.exp(i) }, "exp expects f32 input, got i32[3]")
        XCTAssertEqual(message { _ = try b.reshape(v, [5, -1]) }, "reshape cannot reshape f32[3,4] (12 elements) into [5, -1]")
        XCTAssertEqual(message { _ = try b.transpose(v, [0, 0]) }, "transpose perm [0, 0] is not a permutation of the axes of f32[3,4]")
        XCTAssertEqual(message { _ = try b.reduceSum(v, axes: [2]) }, "reduce_sum axis 2 is out of range for rank 2")
        XCTAssertEqual(message { _ = try b.emit("concat", [v, x], ["axis": .int(0)]) },
                       "concat on axis 0 expects matching inputs, got f32[3,4], f32[?,780]")
        XCTAssertEqual(message { _ = try b.emit("nope", [v]) }, "unknown op 'nope'")
        XCTAssertEqual(message { _ = try b.emit("exp", [v, v]) }, "exp takes 1 inputs, got 2")
        XCTAssertEqual(message { _ = try b.emit("softmax", [v], ["axis": .string("x")]) },
                       "softmax: attribute 'axis' must be an integer, got \"x\"")
        XCTAssertEqual(message { _ = try b.assign(v, v) }, "assign: target must be a parameter, got input")
        XCTAssertEqual(message { _ = try b.emit("slice", [v], ["begin": .ints([0, 3]), "size": .ints([2, 2])]) },
                       "slice [3, 5) is outside axis 1 of f32[3,4]")
    }

    /// Unknown batch dimensions resolve at compile time; a shape that cannot
    /// work at that batch size is an error naming the input.
    func testSpecializationErrors() throws {
        let b = GraphBuilder(name: "g")
        let x = try b.input("x", .f32([-1, 4]))
        b.setOutputs([try b.reshape(x, [-1, 2])])
        XCTAssertEqual(message { _ = try specialize(b.graph, inputShapes: ["x": [3, 5]]) }, "input %x expects f32[?,4], got shape [3, 5]")
        XCTAssertEqual(message { _ = try specialize(b.graph, inputShapes: [:]) }, "no shape given for input %x f32[?,4]")
        let s = try specialize(b.graph, inputShapes: ["x": [3, 4]])
        XCTAssertEqual(s.type(of: s.outputs[0]), .f32([6, 2]))
    }
}

final class AutodiffTests: XCTestCase {
    /// Fan-out accumulates: d/dx (x*x + x) = 2x + 1; an unrelated input gets zeros.
    func testFanOutAndUnrelatedInputs() throws {
        let b = GraphBuilder(name: "g")
        let x = try b.input("x", .f32([3]))
        let z = try b.input("z", .f32([-1, 2]))
        let s = try b.reduceSum(b.add(b.mul(x, x), x), axes: [0])
        var g = b.graph
        let grads = try Autodiff.gradients(of: s, wrt: [x, z], in: &g)
        g.outputs = grads
        let out = try ReferenceEvaluator().evaluate(g, feeds: ["x": RefTensor(.f32, [3], [1, -2, 0.5]), "z": RefTensor(.f32, [4, 2], Array(repeating: 1, count: 8))])
        XCTAssertEqual(out[0].data, [3, -3, 2])
        XCTAssertEqual(out[1].shape, [4, 2])
        XCTAssertEqual(out[1].data, Array(repeating: 0, count: 8))
    }

    func testGradientsRejectNonScalarsAndIntegers() throws {
        let b = GraphBuilder(name: "g")
        let x = try b.input("x", .f32([3]))
        let i = try b.input("i", .i32([3]))
        var g = b.graph
        XCTAssertThrowsError(try Autodiff.gradients(of: x, wrt: [x], in: &g)) {
            XCTAssertEqual("\($0)", "gradients: the differentiated value must be an f32 scalar, got f32[3]")
        }
        let s = try b.reduceSum(x, axes: [0])
        g = b.graph
        XCTAssertThrowsError(try Autodiff.gradients(of: s, wrt: [i], in: &g)) {
            XCTAssertEqual("\($0)", "gradients: cannot differentiate with respect to i32[3] value %i")
        }
    }

    /// Gradients through an unknown batch dimension build and then compile.
    func testGradientsWithUnknownBatch() throws {
        let g = try TestGraphs.mlpTraining()
        try Verifier.verify(g)
        XCTAssertTrue(g.nodes.contains { $0.op == "assign" })
        XCTAssertEqual(g.type(of: g.outputs[0]), .f32([]))
    }
}
