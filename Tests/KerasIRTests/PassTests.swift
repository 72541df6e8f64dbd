import KerasIR
import KerasRuntime
import TestSupport
import XCTest

/// Pass tests are text in, text out: parse a graph, run one pass, compare the print.
final class PassTests: XCTestCase {
    func check(_ pass: GraphPass, _ input: String, _ expected: String, changed: Bool = true,
               file: StaticString = #filePath, line: UInt = #line) throws {
        var g = try GraphParser.parse(input)
        let did = try pass.run(&g, registry: .standard)
        XCTAssertEqual(did, changed, "\(pass.name) changed", file: file, line: line)
        try Verifier.verify(g)
        XCTAssertEqual(g.description, expected, file: file, line: line)
        XCTAssertEqual(try GraphParser.parse(g.description).description, expected, "round trip", file: file, line: line)
    }

    func testDeadCodeElimination() throws {
        try check(DeadCodeElimination(), """
        graph @g(%x: f32[4], %unused: f32[4]) -> (f32[4]) {
          %0 = exp(%x) : f32[4]
          %1 = log(%x) : f32[4]
          %2 = neg(%0) : f32[4]
          return %2
        }
        """, """
        graph @g(%x: f32[4], %unused: f32[4]) -> (f32[4]) {
          %0 = exp(%x) : f32[4]
          %1 = neg(%0) : f32[4]
          return %1
        }

        """)
    }

    func testCommonSubexpressionElimination() throws {
        try check(CommonSubexpressionElimination(), """
        graph @g(%x: f32[4]) -> (f32[4]) {
          %0 = exp(%x) : f32[4]
          %1 = exp(%x) : f32[4]
          %2 = add(%0, %1) : f32[4]
          %3 = random_uniform(%x) {seed=1} : f32[4]
          %4 = random_uniform(%x) {seed=1} : f32[4]
          %5 = add(%3, %4) : f32[4]
          %6 = add(%2, %5) : f32[4]
          return %6
        }
        """, """
        graph @g(%x: f32[4]) -> (f32[4]) {
          %0 = exp(%x) : f32[4]
          %1 = add(%0, %0) : f32[4]
          %2 = random_uniform(%x) {seed=1} : f32[4]
          %3 = random_uniform(%x) {seed=1} : f32[4]
          %4 = add(%2, %3) : f32[4]
          %5 = add(%1, %4) : f32[4]
          return %5
        }

        """)
    }

    func testConstantFoldingAndDimSize() throws {
        try check(ConstantFolding(), """
        graph @g(%x: f32[3,4]) -> (f32[3,4]) {
          %a = constant {value=[2.0]} : f32[]
          %b = constant {value=[1.0,2.0,3.0,4.0]} : f32[4]
          %0 = mul(%a, %b) : f32[4]
          %1 = dim_size(%x) {axes=[0]} : f32[]
          %2 = div(%x, %1) : f32[3,4]
          %3 = add(%2, %0) : f32[3,4]
          return %3
        }
        """, """
        graph @g(%x: f32[3,4]) -> (f32[3,4]) {
          %a = constant {value=[2.0]} : f32[]
          %b = constant {value=[1.0,2.0,3.0,4.0]} : f32[4]
          %0 = constant {value=[2.0,4.0,6.0,8.0]} : f32[4]
          %1 = constant {value=[3.0]} : f32[]
          %2 = div(%x, %1) : f32[3,4]
          %3 = add(%2, %0) : f32[3,4]
          return %3
        }

        """)
    }

    func testSimplify() throws {
        try check(Simplify(), """
        graph @g(%x: f32[2,3]) -> (f32[2,3], f32[3,2], f32[6]) {
          %one = constant {value=[1.0]} : f32[]
          %zero = constant {value=[0.0]} : f32[]
          %0 = mul(%x, %one) : f32[2,3]
          %1 = add(%zero, %0) : f32[2,3]
          %2 = neg(%1) : f32[2,3]
          %3 = neg(%2) : f32[2,3]
          %4 = transpose(%3) {perm=[1,0]} : f32[3,2]
          %5 = transpose(%4) {perm=[1,0]} : f32[2,3]
          %6 = transpose(%5) {perm=[1,0]} : f32[3,2]
          %7 = reshape(%x) {shape=[3,2]} : f32[3,2]
          %8 = reshape(%7) {shape=[6]} : f32[6]
          return %3, %6, %8
        }
        """, """
        graph @g(%x: f32[2,3]) -> (f32[2,3], f32[3,2], f32[6]) {
          %one = constant {value=[1.0]} : f32[]
          %zero = constant {value=[0.0]} : f32[]
          %0 = neg(%x) : f32[2,3]
          %1 = transpose(%x) {perm=[1,0]} : f32[3,2]
          %2 = transpose(%x) {perm=[1,0]} : f32[3,2]
          %3 = reshape(%x) {shape=[3,2]} : f32[3,2]
          %4 = reshape(%x) {shape=[6]} : f32[6]
          return %x, %2, %4
        }

        """)
    }

    func testFusionFoldsBiasAndActivationAndSaysWhyNot() throws {
        let fusion = Fusion()
        try check(fusion, """
        graph @g(%x: f32[?,4], %w: f32[4,3] param, %b: f32[3] param, %v: f32[3,2] param) -> (f32[?,3], f32[?,2]) {
          %0 = matmul(%x, %w) {transpose_a=false, transpose_b=false} : f32[?,3]  # dense
          %1 = add(%0, %b) : f32[?,3]  # dense
          %2 = relu(%1) : f32[?,3]  # dense
          %3 = matmul(%2, %v) {transpose_a=false, transpose_b=false} : f32[?,2]  # out
          %4 = exp(%3) : f32[?,2]
          %5 = add(%3, %4) : f32[?,2]
          return %2, %5
        }
        """, """
        graph @g(%x: f32[?,4], %w: f32[4,3] param, %b: f32[3] param, %v: f32[3,2] param) -> (f32[?,3], f32[?,2]) {
          %0 = gemm_bias_act(%x, %w, %b) {act="relu", bias=true, residual=false, transpose_b=false} : f32[?,3]  # dense
          %1 = matmul(%0, %v) {transpose_a=false, transpose_b=false} : f32[?,2]  # out
          %2 = exp(%1) : f32[?,2]
          %3 = add(%1, %2) : f32[?,2]
          return %0, %3
        }

        """)
        XCTAssertEqual(fusion.decisions, ["fused matmul %0 + bias %1 + relu %2 -> gemm_bias_act",
                                          "not fused %3 -> %5: producer has 2 consumers"])
    }

    func testFusionFoldsConvolutionEpilogues() throws {
        let fusion = Fusion()
        try check(fusion, """
        graph @g(%x: f32[?,6,6,2], %w: f32[3,3,2,4] param, %b: f32[4] param, %y: f32[2,6,6,2], %r: f32[2,4,4,4], %s: f32[?,4,4,4]) -> (f32[?,4,4,4], f32[2,4,4,4], f32[?,4,4,4]) {
          %0 = conv(%x, %w) {dilation=[1,1], groups=1, pads=[0,0,0,0], strides=[1,1]} : f32[?,4,4,4]  # conv2d
          %1 = add(%0, %b) : f32[?,4,4,4]  # conv2d
          %2 = relu(%1) : f32[?,4,4,4]  # conv2d
          %3 = conv(%y, %w) {dilation=[1,1], groups=1, pads=[0,0,0,0], strides=[1,1]} : f32[2,4,4,4]  # conv2d_1
          %4 = add(%r, %3) : f32[2,4,4,4]  # add
          %5 = conv(%x, %w) {dilation=[1,1], groups=1, pads=[0,0,0,0], strides=[1,1]} : f32[?,4,4,4]  # conv2d_2
          %6 = add(%5, %s) : f32[?,4,4,4]  # add_1
          return %2, %4, %6
        }
        """, """
        graph @g(%x: f32[?,6,6,2], %w: f32[3,3,2,4] param, %b: f32[4] param, %y: f32[2,6,6,2], %r: f32[2,4,4,4], %s: f32[?,4,4,4]) -> (f32[?,4,4,4], f32[2,4,4,4], f32[?,4,4,4]) {
          %0 = conv_bias_act(%x, %w, %b) {act="relu", bias=true, dilation=[1,1], groups=1, pads=[0,0,0,0], residual=false, strides=[1,1]} : f32[?,4,4,4]  # conv2d
          %1 = conv_bias_act(%y, %w, %r) {act="none", bias=false, dilation=[1,1], groups=1, pads=[0,0,0,0], residual=true, strides=[1,1]} : f32[2,4,4,4]  # add
          %2 = conv(%x, %w) {dilation=[1,1], groups=1, pads=[0,0,0,0], strides=[1,1]} : f32[?,4,4,4]  # conv2d_2
          %3 = add(%2, %s) : f32[?,4,4,4]  # add_1
          return %0, %1, %3
        }

        """)
        XCTAssertEqual(fusion.decisions, ["fused conv %0 + bias %1 + relu %2 -> conv_bias_act",
                                          "fused conv %3 + residual %4 -> conv_bias_act",
                                          "not fused %5 -> %6: the residual f32[?,4,4,4] has unknown dimensions, so the kernel cannot know it matches the result row for row"])
    }

    /// A 2x2, stride-2 max pooling folds into the convolution before it when
    /// nothing else reads the convolution (inference); a training step's
    /// second reader, a padded window and few input channels keep them apart.
    func testConvPoolFusion() throws {
        let pass = ConvPoolFusion()
        try check(pass, """
        graph @g(%x: f32[?,8,8,6], %w: f32[3,3,6,4] param, %b: f32[4] param, %v: f32[3,3,2,4] param, %z: f32[?,8,8,2]) -> (f32[?,3,3,4], f32[?,6,6,4], f32[?,3,3,4], f32[?,3,3,4]) {
          %0 = conv_bias_act(%x, %w, %b) {act="relu", bias=true, dilation=[1,1], groups=1, pads=[0,0,0,0], residual=false, strides=[1,1]} : f32[?,6,6,4]  # conv2d
          %1 = max_pool(%0) {pads=[0,0,0,0], pool=[2,2], strides=[2,2]} : f32[?,3,3,4]  # max_pooling2d
          %2 = conv_bias_act(%x, %w, %b) {act="relu", bias=true, dilation=[1,1], groups=1, pads=[0,0,0,0], residual=false, strides=[1,1]} : f32[?,6,6,4]  # conv2d_1
          %3 = max_pool(%2) {pads=[0,0,0,0], pool=[2,2], strides=[2,2]} : f32[?,3,3,4]  # max_pooling2d_1
          %4 = conv_bias_act(%x, %w, %b) {act="none", bias=true, dilation=[1,1], groups=1, pads=[0,0,0,0], residual=false, strides=[1,1]} : f32[?,6,6,4]  # conv2d_2
          %5 = max_pool(%4) {pads=[1,0,1,0], pool=[2,2], strides=[2,2]} : f32[?,3,3,4]  # max_pooling2d_2
          %6 = conv_bias_act(%z, %v, %b) {act="none", bias=true, dilation=[1,1], groups=1, pads=[0,0,0,0], residual=false, strides=[1,1]} : f32[?,6,6,4]  # conv2d_3
          %7 = max_pool(%6) {pads=[0,0,0,0], pool=[2,2], strides=[2,2]} : f32[?,3,3,4]  # max_pooling2d_3
          return %1, %2, %5, %7
        }
        """, """
        graph @g(%x: f32[?,8,8,6], %w: f32[3,3,6,4] param, %b: f32[4] param, %v: f32[3,3,2,4] param, %z: f32[?,8,8,2]) -> (f32[?,3,3,4], f32[?,6,6,4], f32[?,3,3,4], f32[?,3,3,4]) {
          %0 = conv_bias_act(%x, %w, %b) {act="relu", bias=true, dilation=[1,1], groups=1, max_pool=[2,2], pads=[0,0,0,0], residual=false, strides=[1,1]} : f32[?,3,3,4]  # conv2d
          %1 = conv_bias_act(%x, %w, %b) {act="relu", bias=true, dilation=[1,1], groups=1, pads=[0,0,0,0], residual=false, strides=[1,1]} : f32[?,6,6,4]  # conv2d_1
          %2 = max_pool(%1) {pads=[0,0,0,0], pool=[2,2], strides=[2,2]} : f32[?,3,3,4]  # max_pooling2d_1
          %3 = conv_bias_act(%x, %w, %b) {act="none", bias=true, dilation=[1,1], groups=1, pads=[0,0,0,0], residual=false, strides=[1,1]} : f32[?,6,6,4]  # conv2d_2
          %4 = max_pool(%3) {pads=[1,0,1,0], pool=[2,2], strides=[2,2]} : f32[?,3,3,4]  # max_pooling2d_2
          %5 = conv_bias_act(%z, %v, %b) {act="none", bias=true, dilation=[1,1], groups=1, pads=[0,0,0,0], residual=false, strides=[1,1]} : f32[?,6,6,4]  # conv2d_3
          %6 = max_pool(%5) {pads=[0,0,0,0], pool=[2,2], strides=[2,2]} : f32[?,3,3,4]  # max_pooling2d_3
          return %0, %1, %4, %6
        }

        """)
        XCTAssertEqual(pass.decisions, ["fused conv_bias_act %0 + max_pool %1 -> conv_bias_act {max_pool=[2,2]}",
                                        "not fused %2 -> %3: the convolution's result is a graph output",
                                        "not fused %4 -> %5: the kernel pools 2x2 windows at stride 2 without padding, not pool [2, 2] strides [2, 2] pads [1, 0, 1, 0]",
                                        "not fused %6 -> %7: the fused kernel has no fast path for this convolution (2 input channels, groups 1)"])
    }

    /// The loss and its gradient become one call; the loss's readers move after it.
    func testLossFusionPairsTheLossWithItsGradient() throws {
        let fusion = LossFusion()
        try check(fusion, """
        graph @g(%z: f32[4,3], %y: f32[4,3]) -> (f32[], f32[4,3]) {
          %0 = softmax_cross_entropy(%z, %y) {from_logits=false} : f32[4]  # loss
          %1 = reduce_sum(%0) {axes=[0], keepdims=false} : f32[]  # loss
          %c = constant {value=[0.25]} : f32[4]
          %2 = softmax_cross_entropy_grad(%z, %y, %c) {from_logits=false} : f32[4,3]  # loss
          %3 = relu(%2) : f32[4,3]
          return %1, %3
        }
        """, """
        graph @g(%z: f32[4,3], %y: f32[4,3]) -> (f32[], f32[4,3]) {
          %c = constant {value=[0.25]} : f32[4]
          %0 = softmax_cross_entropy_fused(%z, %y, %c) {from_logits=false} : f32[16]  # loss
          %1 = view(%0) {offset=12, shape=[4]} : f32[4]  # loss
          %2 = reduce_sum(%1) {axes=[0], keepdims=false} : f32[]  # loss
          %3 = view(%0) {offset=0, shape=[4,3]} : f32[4,3]  # loss
          %4 = relu(%3) : f32[4,3]
          return %2, %4
        }

        """)
        XCTAssertEqual(fusion.decisions, ["fused softmax_cross_entropy %0 + softmax_cross_entropy_grad %2 -> softmax_cross_entropy_fused"])
        // A cotangent computed from the loss values cannot wait for them.
        let cyclic = """
        graph @g(%z: f32[4,3], %y: f32[4,3]) -> (f32[4,3]) {
          %0 = softmax_cross_entropy(%z, %y) {from_logits=true} : f32[4]
          %1 = softmax_cross_entropy_grad(%z, %y, %0) {from_logits=true} : f32[4,3]
          return %1
        }
        """
        try check(fusion, cyclic, cyclic + "\n", changed: false)
        XCTAssertEqual(fusion.decisions, ["not fused %0, %1: the cotangent %0 depends on the loss values"])
    }

    /// Batch-normalization statistics: a mean and a squared-deviation mean become one moments call.
    func testMomentsFusion() throws {
        let fusion = MomentsFusion()
        try check(fusion, """
        graph @g(%x: f32[?,4,4,3]) -> (f32[1,1,1,3], f32[1,1,1,3]) {
          %0 = reduce_mean(%x) {axes=[0,1,2], keepdims=true} : f32[1,1,1,3]  # bn
          %1 = sub(%x, %0) : f32[?,4,4,3]  # bn
          %2 = square(%1) : f32[?,4,4,3]  # bn
          %3 = reduce_mean(%2) {axes=[0,1,2], keepdims=true} : f32[1,1,1,3]  # bn
          return %0, %3
        }
        """, """
        graph @g(%x: f32[?,4,4,3]) -> (f32[1,1,1,3], f32[1,1,1,3]) {
          %0 = moments(%x) : f32[2,3]  # bn
          %1 = view(%0) {offset=0, shape=[1,1,1,3]} : f32[1,1,1,3]  # bn
          %2 = view(%0) {offset=3, shape=[1,1,1,3]} : f32[1,1,1,3]  # bn
          return %1, %2
        }

        """)
        XCTAssertEqual(fusion.decisions, ["fused reduce_mean %0 + sub %1, square %2, reduce_mean %3 -> moments"])
        // Statistics over the last axis (LayerNormalization's) are left alone, with the reason.
        let perRow = """
        graph @g(%x: f32[2,3]) -> (f32[2,1]) {
          %0 = reduce_mean(%x) {axes=[1], keepdims=true} : f32[2,1]
          %1 = sub(%x, %0) : f32[2,3]
          %2 = square(%1) : f32[2,3]
          %3 = reduce_mean(%2) {axes=[1], keepdims=true} : f32[2,1]
          return %3
        }
        """
        try check(fusion, perRow, perRow + "\n", changed: false)
        XCTAssertEqual(fusion.decisions, ["not fused %0, %3: moments reduce every axis but the last of f32[2,3], not axes [1]"])
    }

    func testScheduleMovesAssignsLast() throws {
        try check(Schedule(), """
        graph @g(%w: f32[2] param, %x: f32[2]) -> (f32[2]) {
          %0 = sub(%w, %x) : f32[2]
          %1 = assign(%w, %0) : f32[2]
          %2 = mul(%w, %x) : f32[2]
          return %2
        }
        """, """
        graph @g(%w: f32[2] param, %x: f32[2]) -> (f32[2]) {
          %0 = sub(%w, %x) : f32[2]
          %1 = mul(%w, %x) : f32[2]
          %2 = assign(%w, %0) : f32[2]
          return %1
        }

        """)
    }

    /// The pipeline logs every pass, can disable one by name, and dumps after passes.
    func testPipelineLogDisableAndDump() throws {
        var g = try TestGraphs.mlpTraining()
        let before = g.nodes.count
        var dumps: [String] = []
        var p = PassPipeline.standard()
        p.dumpAfter = ["canonicalize"]
        p.dumpSink = { dumps.append($0) }
        try p.run(&g)
        XCTAssertEqual(p.log.map(\.pass), ["canonicalize", "fuse-loss", "fuse-moments", "fusion", "fuse-conv-pool", "fuse-gemm-updates", "fuse-updates", "fuse-pool-relu-grad", "fuse-elementwise", "bucket-allreduce", "schedule"])
        XCTAssertTrue(p.log[3].notes.contains("fused matmul %0 + bias %1 + relu %2 -> gemm_bias_act"), "\(p.log[3].notes)")
        XCTAssertTrue(p.log[0].changed)
        XCTAssertLessThan(g.nodes.count, before)
        XCTAssertEqual(dumps.count, 1)
        XCTAssertTrue(dumps[0].hasPrefix("// after canonicalize\ngraph @mlp_train("))

        var h = try TestGraphs.mlpTraining()
        var q = PassPipeline.standard()
        q.disabled = ["canonicalize", "fuse-loss", "fuse-moments", "fusion", "fuse-conv-pool", "fuse-gemm-updates", "fuse-updates", "fuse-pool-relu-grad", "fuse-elementwise", "bucket-allreduce"]
        try q.run(&h)
        XCTAssertEqual(q.log.map(\.pass), ["schedule"])
        XCTAssertEqual(h.nodes.count, before)
    }

    /// Elementwise fusion, text in, text out: a tree over one shape becomes one
    /// fused_elementwise (a bias row and a scalar as operands); an op whose
    /// result has a second user, or an operand broadcast along another axis,
    /// stays out, with the reason recorded.
    func testElementwiseFusion() throws {
        var g = try GraphParser.parse("""
        graph @g(%x: f32[?,4], %y: f32[?,4], %b: f32[4], %c: f32[?,1]) -> (f32[?,4], f32[?,4], f32[?,4]) {
          %s = constant() {value=[0.5]} : f32[]
          %0 = mul(%x, %s) : f32[?,4]
          %1 = add(%0, %b) : f32[?,4]
          %2 = sqrt(%1) : f32[?,4]
          %3 = sub(%2, %y) : f32[?,4]
          %4 = exp(%x) : f32[?,4]
          %5 = neg(%4) : f32[?,4]
          %6 = mul(%y, %c) : f32[?,4]
          %7 = relu(%6) : f32[?,4]
          return %3, %5, %4
        }
        """)
        let pass = ElementwiseFusion()
        XCTAssertTrue(try pass.run(&g, registry: .standard))
        XCTAssertEqual(g.description, """
        graph @g(%x: f32[?,4], %y: f32[?,4], %b: f32[4], %c: f32[?,1]) -> (f32[?,4], f32[?,4], f32[?,4]) {
          %s = constant {value=[0.5]} : f32[]
          %0 = fused_elementwise(%x, %s, %b, %y) {program="mul(x0,x1);add(t0,x2);sqrt(t1);sub(t2,x3)"} : f32[?,4]
          %1 = exp(%x) : f32[?,4]
          %2 = neg(%1) : f32[?,4]
          %3 = mul(%y, %c) : f32[?,4]
          %4 = relu(%3) : f32[?,4]
          return %0, %2, %1
        }

        """)
        XCTAssertTrue(pass.decisions.contains { $0.contains("operand %c f32[?,1] broadcasts") }, "\(pass.decisions)")
    }

    /// A dropout mask is drawn inside both trees that read it (forward and
    /// backward) instead of being stored between them.
    func testElementwiseFusionRecomputesDropoutMasks() throws {
        let pass = ElementwiseFusion()
        try check(pass, """
        graph @g(%x: f32[2,8], %g: f32[2,8]) -> (f32[2,8], f32[2,8]) {
          %k = constant {value=[2.0]} : f32[]
          %0 = random_bernoulli(%x) {p=0.5, seed=7} : f32[2,8]  # dropout
          %1 = mul(%0, %k) : f32[2,8]  # dropout
          %2 = mul(%x, %1) : f32[2,8]  # dropout
          %3 = mul(%g, %1) : f32[2,8]  # dropout
          return %2, %3
        }
        """, """
        graph @g(%x: f32[2,8], %g: f32[2,8]) -> (f32[2,8], f32[2,8]) {
          %k = constant {value=[2.0]} : f32[]
          %0 = fused_elementwise(%k, %x) {program="random_bernoulli@3f000000#7();mul(t0,x0);mul(x1,t1)"} : f32[2,8]  # dropout
          %1 = fused_elementwise(%k, %g) {program="random_bernoulli@3f000000#7();mul(t0,x0);mul(x1,t1)"} : f32[2,8]  # dropout
          return %0, %1
        }

        """)
        XCTAssertEqual(pass.decisions, ["fused random_bernoulli %0, mul %1, mul %2 -> fused_elementwise (recomputing %1 instead of storing it)",
                                        "fused random_bernoulli %0, mul %1, mul %3 -> fused_elementwise (recomputing %1 instead of storing it)"])
    }

    func testPoolReluGradFusion() throws {
        let pass = PoolReluGradFusion()
        try check(pass, """
        graph @g(%y: f32[1,4,4,2], %dy: f32[1,2,2,2]) -> (f32[1,4,4,2]) {
          %z = constant {value=[0]} : f32[]
          %0 = max_pool_backward(%y, %dy) {pads=[0,0,0,0], pool=[2,2], strides=[2,2]} : f32[1,4,4,2]  # pool
          %1 = greater(%y, %z) : f32[1,4,4,2]  # conv
          %2 = select(%1, %0, %z) : f32[1,4,4,2]  # conv
          return %2
        }
        """, """
        graph @g(%y: f32[1,4,4,2], %dy: f32[1,2,2,2]) -> (f32[1,4,4,2]) {
          %z = constant {value=[0]} : f32[]
          %0 = max_pool_backward(%y, %dy) {pads=[0,0,0,0], pool=[2,2], relu_mask=true, strides=[2,2]} : f32[1,4,4,2]  # conv
          return %0
        }

        """)
        XCTAssertEqual(pass.decisions, ["fused max_pool_backward %0 + greater %1, select %2 -> max_pool_backward {relu_mask}"])
        // Overlapping windows would need gradients summed where windows meet: left alone.
        let overlapping = """
        graph @g(%y: f32[1,4,4,2], %dy: f32[1,3,3,2]) -> (f32[1,4,4,2]) {
          %z = constant {value=[0]} : f32[]
          %0 = max_pool_backward(%y, %dy) {pads=[0,0,0,0], pool=[2,2], strides=[1,1]} : f32[1,4,4,2]
          %1 = greater(%y, %z) : f32[1,4,4,2]
          %2 = select(%1, %0, %z) : f32[1,4,4,2]
          return %2
        }
        """
        try check(pass, overlapping, overlapping + "\n", changed: false)
        XCTAssertEqual(pass.decisions, ["not fused %0, %2: pooling windows overlap (stride 1 < pool 2 on axis 0)"])
    }

    /// A value larger than its operands (a weight gradient of two small
    /// activations) is made just before its reader; a reader of an updated
    /// parameter stays before the update.
    func testScheduleSinksLargeResultsToTheirReaders() throws {
        try check(Schedule(), """
        graph @g(%w: f32[16,16] param, %a: f32[2,16], %b: f32[2,16], %c: f32[16,16]) -> (f32[16,16]) {
          %0 = matmul(%a, %b) {transpose_a=true} : f32[16,16]
          %1 = matmul(%w, %c) : f32[16,16]
          %2 = exp(%1) : f32[16,16]
          %3 = add(%0, %2) : f32[16,16]
          %4 = assign(%w, %3) : f32[16,16]
          return %2
        }
        """, """
        graph @g(%w: f32[16,16] param, %a: f32[2,16], %b: f32[2,16], %c: f32[16,16]) -> (f32[16,16]) {
          %0 = matmul(%w, %c) : f32[16,16]
          %1 = exp(%0) : f32[16,16]
          %2 = matmul(%a, %b) {transpose_a=true} : f32[16,16]
          %3 = add(%2, %1) : f32[16,16]
          %4 = assign(%w, %3) : f32[16,16]
          return %1
        }

        """)
    }

    func testVerifierRejectsBrokenGraphs() throws {
        var g = try GraphParser.parse("graph @g(%x: f32[2]) {\n  %0 = exp(%x) : f32[2]\n  return %0\n}")
        g.nodes[1].type = .f32([3])
        XCTAssertThrowsError(try Verifier.verify(g)) { XCTAssertTrue("\($0)".contains("has type f32[3] but its shape rule gives f32[2]")) }
        g.nodes[1].type = .f32([2])
        g.nodes[1].inputs = [Value(5)]
        XCTAssertThrowsError(try Verifier.verify(g)) { XCTAssertTrue("\($0)".contains("is not defined before it")) }
    }

    /// Per-tensor allreduces become one over a pack; one whose input is
    /// computed from another's result stays (packing it would be a cycle).
    func testAllreduceBucketing() throws {
        let bucketing = AllreduceBucketing()
        try check(bucketing, """
        graph @g(%x: f32[2,3], %y: f32[3]) -> (f32[2,3], f32[3], f32[]) {
          %0 = exp(%x) : f32[2,3]
          %1 = neg(%y) : f32[3]
          %2 = allreduce_mean(%0) : f32[2,3]
          %3 = allreduce_mean(%1) : f32[3]
          %4 = reduce_sum(%2) {axes=[0,1]} : f32[]
          %5 = allreduce_mean(%4) : f32[]
          return %2, %3, %5
        }
        """, """
        graph @g(%x: f32[2,3], %y: f32[3]) -> (f32[2,3], f32[3], f32[]) {
          %0 = exp(%x) : f32[2,3]
          %1 = neg(%y) : f32[3]
          %2 = pack(%0, %1) : f32[9]
          %3 = allreduce_mean(%2) : f32[9]
          %4 = view(%3) {offset=0, shape=[2,3]} : f32[2,3]
          %5 = view(%3) {offset=6, shape=[3]} : f32[3]
          %6 = reduce_sum(%4) {axes=[0,1]} : f32[]
          %7 = allreduce_mean(%6) : f32[]
          return %4, %5, %7
        }

        """)
        XCTAssertEqual(bucketing.decisions, ["not bucketed %5: its input is computed from another allreduce's result",
                                             "bucketed 2 allreduce_mean (%2, %3) -> one allreduce_mean of a pack of 9 floats (36 bytes)"])
        // A bucket holds at most bucketBytes: 24 + 12 bytes do not fit in 32, and a bucket of one is left alone.
        let small = AllreduceBucketing(bucketBytes: 32)
        let two = """
        graph @g(%x: f32[2,3], %y: f32[3]) -> (f32[2,3], f32[3]) {
          %0 = allreduce_mean(%x) : f32[2,3]
          %1 = allreduce_mean(%y) : f32[3]
          return %0, %1
        }
        """
        try check(small, two, two + "\n", changed: false)
    }
}

/// In-place reuse: an elementwise op's output takes a same-typed input's
/// storage when no later step reads that input; never a graph input's,
/// an output's, or an input still read later.
final class InPlaceMemoryTests: XCTestCase {
    /// A pack's inputs that it alone reads are written straight into its
    /// result (no copy kernel); the rest are copied. Same numbers either way.
    func testPackPlacesTheInputsItAloneReads() throws {
        let g = try GraphParser.parse("""
        graph @g(%x: f32[2,3], %y: f32[5]) -> (f32[16], f32[2,3]) {
          %0 = exp(%x) : f32[2,3]
          %1 = neg(%y) : f32[5]
          %2 = sqrt(%0) : f32[2,3]
          %3 = pack(%1, %0, %y) : f32[16]
          %4 = abs(%3) : f32[16]
          %5 = mul(%2, %0) : f32[2,3]
          return %4, %5
        }
        """)
        let plan = try MemoryPlan(g)
        func id(_ op: String) -> Int { g.nodes.firstIndex { $0.op == op }! }
        XCTAssertEqual(plan.placed[id("neg")]?.pack, id("pack"), "neg's result is read by the pack alone")
        XCTAssertEqual(plan.placed[id("neg")]?.byteOffset, 0)
        XCTAssertNil(plan.placed[id("exp")], "exp's result is read after the pack too")
        XCTAssertNil(plan.placed[id("input")], "a graph input lives in the feed block")
        XCTAssertEqual(plan.storageRoot[id("neg")], id("pack"))
        XCTAssertEqual(plan.buffers[id("pack")]?.first, id("neg"), "the pack's buffer is live from neg's kernel on")
        var rng = SplitMix64(seed: 5)
        let feeds = ["x": try Tensor((0..<6).map { _ in rng.uniform(-1, 1) }, shape: [2, 3]),
                     "y": try Tensor((0..<5).map { _ in rng.uniform(-1, 1) }, shape: [5])]
        let placed = try ExecutionPlan(g, inputShapes: ["x": [2, 3], "y": [5]], store: ParameterStore())
        let packSteps = placed.steps.filter { placed.graph.nodes[$0.node].op == "pack" }.map(\.kernel.name)
        XCTAssertEqual(packSteps, ["ck_x32_copy_nd__avx2 2 of 3", "ck_x32_copy_nd__avx2 3 of 3"], "only the inputs not placed are copied")
        let a = try placed.run(feeds)
        let refFeeds = feeds.mapValues { RefTensor(.f32, $0.shape, $0.floats.map(Double.init)) }
        let want = try ReferenceEvaluator().evaluate(g, feeds: refFeeds)
        for (got, ref) in zip(a, want) {
            for (u, v) in zip(got.floats, ref.data) { XCTAssertEqual(Double(u), v, accuracy: 1e-6 * (1 + abs(v))) }
        }
        setenv("KERAS_DISABLE_PASSES", "in-place", 1)
        defer { unsetenv("KERAS_DISABLE_PASSES") }
        let copied = try ExecutionPlan(g, inputShapes: ["x": [2, 3], "y": [5]], store: ParameterStore())
        XCTAssertEqual(copied.steps.filter { copied.graph.nodes[$0.node].op == "pack" }.count, 3)
        XCTAssertEqual(try copied.run(feeds).map(\.floats), a.map(\.floats))
    }

    func testOutputsReuseDyingInputs() throws {
        let g = try GraphParser.parse("""
        graph @g(%x: f32[4,8], %b: f32[8]) -> (f32[4,8], f32[4,8]) {
          %0 = exp(%x) : f32[4,8]
          %1 = add(%0, %b) : f32[4,8]
          %2 = neg(%1) : f32[4,8]
          %3 = mul(%2, %0) : f32[4,8]
          %4 = relu(%3) : f32[4,8]
          return %4, %2
        }
        """)
        let plan = try MemoryPlan(g)
        // The value each op makes (every op appears once here).
        func id(_ op: String) -> Int { g.nodes.firstIndex { $0.op == op }! }
        func root(_ op: String) -> Int { plan.storageRoot[id(op)] }
        XCTAssertEqual(root("exp"), id("exp"), "exp cannot overwrite the graph input %x")
        XCTAssertEqual(root("add"), id("add"), "add cannot overwrite %0: mul reads it later")
        XCTAssertEqual(root("neg"), root("add"), "neg overwrites %1, read nowhere else")
        XCTAssertNotEqual(root("mul"), root("neg"), "mul cannot overwrite %2: it is a graph output")
        XCTAssertEqual(root("mul"), root("exp"), "mul overwrites %0, whose last reader it is")
        XCTAssertEqual(root("relu"), root("mul"), "relu overwrites %3")
        let separate = try MemoryPlan(g, inPlace: false)
        XCTAssertLessThan(plan.buffers.count, separate.buffers.count)
        XCTAssertEqual(plan.unsharedBytes, separate.unsharedBytes, "the naive sum counts one buffer per value either way")
        // Through kernels: the same numbers with and without reuse.
        var rng = SplitMix64(seed: 2)
        let feeds = ["x": try Tensor((0..<32).map { _ in rng.uniform(-1, 1) }, shape: [4, 8]), "b": try Tensor((0..<8).map { _ in rng.uniform(-1, 1) }, shape: [8])]
        let a = try ExecutionPlan(g, inputShapes: ["x": [4, 8], "b": [8]], store: ParameterStore()).run(feeds)
        setenv("KERAS_DISABLE_PASSES", "in-place", 1)
        defer { unsetenv("KERAS_DISABLE_PASSES") }
        let b = try ExecutionPlan(g, inputShapes: ["x": [4, 8], "b": [8]], store: ParameterStore()).run(feeds)
        XCTAssertEqual(a.map(\.floats), b.map(\.floats))
    }
}
