import KerasIR
import KerasRuntime
import XCTest

/// Graph files a hostile user writes (issue 9): each is an error naming the
/// op and the numbers, at parse time or at plan time, never a trap, an
/// out-of-bounds read or an abort in malloc.
final class HostileGraphTests: XCTestCase {
    func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "no error"
    }

    func assertRejected(_ text: String, mentions parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        let m = message { _ = try GraphParser.parse(text) }
        XCTAssertNotEqual(m, "no error", "expected an error mentioning \(parts)", file: file, line: line)
        for p in parts { XCTAssertTrue(m.contains(p), "'\(m)' does not mention '\(p)'", file: file, line: line) }
    }

    func testResidualMustHaveTheOutputsShape() {
        // A residual f32[1,1] for an f32[64,64] result was read past its end by the kernel.
        assertRejected("""
        graph @g(%a: f32[64,64], %w: f32[64,64] param, %r: f32[1,1]) {
          %0 = gemm_bias_act(%a, %w, %r) {residual=true} : f32[64,64]
          return %0
        }
        """, mentions: ["gemm_bias_act", "residual shaped like f32[64,64]", "f32[1,1]"])
        assertRejected("""
        graph @g(%a: f32[?,8], %w: f32[8,4] param, %r: i32[?,4]) {
          %0 = gemm_bias_act(%a, %w, %r) {residual=true} : f32[?,4]
          return %0
        }
        """, mentions: ["residual", "i32[?,4]"])
        // The honest residual still parses, and an unknown batch dimension matches.
        XCTAssertNoThrow(try GraphParser.parse("""
        graph @g(%a: f32[?,8], %w: f32[8,4] param, %r: f32[?,4]) {
          %0 = gemm_bias_act(%a, %w, %r) {residual=true} : f32[?,4]
          return %0
        }
        """))
    }

    func testIntegerValuesOutsideInt32AreRejected() {
        assertRejected("""
        graph @g() {
          %0 = constant {value=[99999999999]} : i32[]
          return %0
        }
        """, mentions: ["constant", "99999999999", "i32[]"])
        for value in ["1e20", "nan", "2.5", "-inf"] {
            assertRejected("""
            graph @g(%x: i32[2]) {
              %0 = pad(%x) {pads=[1,1], value=\(value)} : i32[4]
              return %0
            }
            """, mentions: ["pad", "not an int32"])
        }
    }

    func testHugeGroupsAreRejectedWithoutOverflow() {
        assertRejected("""
        graph @g(%x: f32[1,8,4], %w: f32[3,2,4] param) {
          %0 = conv(%x, %w) {groups=9223372036854775807} : f32[1,6,4]
          return %0
        }
        """, mentions: ["conv", "groups"])
        assertRejected("""
        graph @g(%dy: f32[1,6,4], %w: f32[3,2,4] param) {
          %0 = conv_backward_data(%dy, %w) {groups=9223372036854775807, input_shape=[8]} : f32[1,8,4]
          return %0
        }
        """, mentions: ["conv_backward_data", "groups"])
    }

    func testHugeParametersAndConstantsFailAtPlanTimeNamingThem() throws {
        // 2^40 - 2^20 elements pass the type checks but are 4 TiB: the plan says so, even for an unused parameter.
        let g = try GraphParser.parse("""
        graph @g(%x: f32[?,2], %big: f32[1048576,1048575] param) {
          %0 = relu(%x) : f32[?,2]
          return %0
        }
        """)
        XCTAssertTrue(message { _ = try ExecutionPlan(g, batchSize: 1, store: ParameterStore()) }
            .contains("parameter %big: 1048576×1048575 floats is 4 TiB, more than this machine's"))
        // A constant fill folded by constant folding is not expanded in full.
        let fill = try GraphParser.parse("""
        graph @g(%x: f32[2]) {
          %0 = constant {value=[1]} : f32[1048576,1048575]
          %1 = neg(%0) : f32[1048576,1048575]
          %2 = reduce_sum(%1) {axes=[0,1], keepdims=false} : f32[]
          %3 = add(%x, %2) : f32[2]
          return %3
        }
        """)
        let m = message { _ = try ExecutionPlan(fill, batchSize: 1, store: ParameterStore()) }
        XCTAssertTrue(m.contains("more than this machine's"), m)
        // Under a small limit an ordinary plan reports its arena.
        try MemoryLimit.withLimit(1000) {
            let small = try GraphParser.parse("""
            graph @g(%x: f32[?,64]) {
              %0 = relu(%x) : f32[?,64]
              return %0
            }
            """)
            XCTAssertTrue(message { _ = try ExecutionPlan(small, batchSize: 8, store: ParameterStore()) }.contains("plan @g (arena, feeds and constants)"))
        }
    }

    func testParameterBuffersAndRefTensorsCheckTheirSize() {
        XCTAssertTrue(message { _ = try ParameterStore.Buffer(.f32([-1, 3])) }.contains("known shape"))
        XCTAssertTrue(message { _ = try ParameterStore().declare("w", .f32([1 << 20, 1 << 20])) }.contains("%w"))
    }

    func testMemoryPlanOfALongChainIsNotQuadratic() throws {
        // 40,000 values in a chain: each buffer meets a handful of others. The
        // figure is in the note (no test asserts a time); this checks the plan is right.
        let b = GraphBuilder(name: "chain")
        var v = try b.input("x", .f32([16]))
        for i in 0..<40_000 { v = try (i % 2 == 0 ? b.neg(v) : b.relu(v)) }
        b.setOutputs([v])
        // In-place reuse would fold the whole chain into one buffer; the placement is what this checks.
        let plan = try MemoryPlan(b.graph, inPlace: false)
        XCTAssertEqual(plan.buffers.count, 40_000, "one per op; the input is in the feed block")
        XCTAssertEqual(plan.feedBytes, 64)
        let reused = try MemoryPlan(b.graph)
        XCTAssertEqual(reused.buffers.count, 1, "in place: one buffer every op of the chain but the first overwrites")
        XCTAssertLessThanOrEqual(plan.arenaBytes, 2 * 64, "a chain needs two alternating buffers")
        // No two buffers live at the same time overlap in the arena.
        let bufs = plan.buffers.values.sorted { $0.first < $1.first }
        for (i, a) in bufs.enumerated() {
            for c in bufs[(i + 1)...].prefix(8) where c.first <= a.last && a.first <= c.last {
                XCTAssertTrue(a.offset + a.bytes <= c.offset || c.offset + c.bytes <= a.offset, "buffers \(a.value) and \(c.value) overlap")
            }
        }
    }

    func testLongAttributeListsAreAbbreviatedInErrors() {
        let list = (0..<200_000).map(String.init).joined(separator: ",")
        let m = message { _ = try GraphParser.parse("graph @g(%x: f32[2]) {\n  %0 = reduce_sum(%x) {axes=[\(list)], keepdims=false} : f32[]\n  return %0\n}") }
        XCTAssertNotEqual(m, "no error")
        XCTAssertLessThan(m.count, 2100, "error text is bounded")
    }

    func testUnknownISASettingIsReported() throws {
        let g = try GraphParser.parse("graph @g(%x: f32[2]) {\n  %0 = relu(%x) : f32[2]\n  return %0\n}")
        setenv("KERAS_ISA", "bogus", 1)
        defer { unsetenv("KERAS_ISA") }
        XCTAssertEqual(message { _ = try ExecutionPlan(g, batchSize: 1, store: ParameterStore()) },
                       "KERAS_ISA='bogus' is not one of ref, avx2, avx512")
        setenv("KERAS_ISA", "avx2", 1)
        XCTAssertNoThrow(try ExecutionPlan(g, batchSize: 1, store: ParameterStore()))
    }

    func testMalformedGemmBlockingSettingIsReported() throws {
        let g = try GraphParser.parse("graph @g(%x: f32[2]) {\n  %0 = relu(%x) : f32[2]\n  return %0\n}")
        defer { unsetenv("KERAS_GEMM_BLOCKING") }
        for bad in ["112,512", "112;512;2048", "0,512,2048"] {
            setenv("KERAS_GEMM_BLOCKING", bad, 1)
            XCTAssertEqual(message { _ = try ExecutionPlan(g, batchSize: 1, store: ParameterStore()) },
                           "KERAS_GEMM_BLOCKING='\(bad)' is not MC,KC,NC (MC 1...4096, KC 8...4096, NC 1...65536)")
        }
        setenv("KERAS_GEMM_BLOCKING", "112,512,2048", 1)
        XCTAssertNoThrow(try ExecutionPlan(g, batchSize: 1, store: ParameterStore()))
    }

    func testUnknownPassNamesInTheEnvironmentAreReported() throws {
        let g = try GraphParser.parse("graph @g(%x: f32[2]) {\n  %0 = relu(%x) : f32[2]\n  return %0\n}")
        for key in ["KERAS_DUMP", "KERAS_DISABLE_PASSES"] {
            setenv(key, "cse,fusoin", 1)
            defer { unsetenv(key) }
            XCTAssertEqual(message { _ = try ExecutionPlan(g, batchSize: 1, store: ParameterStore()) },
                           "\(key) names an unknown pass 'fusoin' (passes: canonicalize, fuse-loss, fuse-moments, fusion, fuse-conv-pool, fuse-gemm-updates, fuse-updates, fuse-pool-relu-grad, fuse-elementwise, bucket-allreduce, schedule, simplify, constant-fold, cse, dce, in-place\(key == "KERAS_DUMP" ? ", all" : ""))")
        }
        setenv("KERAS_DISABLE_PASSES", "cse", 1)
        defer { unsetenv("KERAS_DISABLE_PASSES") }
        XCTAssertNoThrow(try ExecutionPlan(g, batchSize: 1, store: ParameterStore()))
    }
}
