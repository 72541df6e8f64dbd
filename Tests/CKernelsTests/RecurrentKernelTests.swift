import CKernels
import XCTest

/// The whole-sequence recurrent kernels at AVX2 and AVX-512 against their
/// scalar twin, for every cell, units around both vector widths, masked and
/// not, forward and go_backwards; outputs guarded by canaries.
final class RecurrentKernelTests: XCTestCase {
    func testSequenceKernelsMatchReference() throws {
        try XCTSkipUnless(ck_cpu_has_avx2_fma() != 0, "no AVX2 on this CPU")
        let isas = [CK_ISA_AVX2] + (ck_cpu_has_avx512f() != 0 ? [CK_ISA_AVX512] : [])
        var rng = TestRNG(31)
        let cells: [(ck_rnn_cell, String)] = [(CK_RNN_SIMPLE, "simple_rnn"), (CK_RNN_LSTM, "lstm"), (CK_RNN_GRU, "gru"),
                                              (CK_RNN_GRU_RESET_BEFORE, "gru_reset_before")]
        let batch = 3, time = 4
        var checked = 0
        for (cell, cellName) in cells {
            for units in sizesAround(16) where units <= 34 {
                for (masked, backwards) in [(false, false), (true, true)] {
                    var d = ck_rnn_desc(cell: Int32(cell.rawValue), go_backwards: backwards ? 1 : 0, batch: Int64(batch),
                                        time: Int64(time), units: Int64(units))
                    let gn = Int(ck_rnn_gates(d.cell)) * units, s = Int(ck_rnn_state_width(d.cell)) * units
                    let w = Int(ck_rnn_grad_width(d.cell)) * units
                    // Wide pre-activations reach both branches of tanh and the saturated ends of sigmoid.
                    let xp = Guarded(rng.floats(batch * time * gn, -8, 8)), u = Guarded(rng.floats(units * gn, -0.4, 0.4))
                    let rb = Guarded(rng.floats(gn, -0.5, 0.5)), h0 = Guarded(rng.floats(batch * units, -1, 1))
                    let c0 = Guarded(rng.floats(batch * units, -1, 1)), dstates = Guarded(rng.floats(batch * time * s, -1, 1))
                    let mask = Guarded([1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0] as [Float])
                    let m: UnsafePointer<Float>? = masked ? UnsafePointer(mask.pointer) : nil
                    let bias: UnsafePointer<Float>? = cell == CK_RNN_GRU ? UnsafePointer(rb.pointer) : nil
                    let wsBytes = max(ck_f32_rnn_forward_workspace_bytes(&d), ck_f32_rnn_backward_workspace_bytes(&d))
                    let ws = UnsafeMutableRawPointer.allocate(byteCount: wsBytes, alignment: 64)
                    defer { ws.deallocate() }
                    func run(_ isa: ck_isa) -> (Guarded, Guarded) {
                        let states = Guarded(batch * time * s), grad = Guarded(batch * (time + 1) * w)
                        ck_f32_rnn_forward(isa, &d, xp.pointer, u.pointer, bias, h0.pointer, c0.pointer, m, states.pointer, ws)
                        ck_f32_rnn_backward(isa, &d, xp.pointer, u.pointer, bias, h0.pointer, c0.pointer, m, states.pointer,
                                            dstates.pointer, grad.pointer, ws)
                        return (states, grad)
                    }
                    let (refStates, refGrad) = run(CK_ISA_REF)
                    XCTAssertFalse(refStates.values.contains { $0.isNaN } || refGrad.values.contains { $0.isNaN },
                                   "ck_f32_rnn__ref \(cellName) units \(units) left outputs unwritten")
                    for isa in isas {
                        let (states, grad) = run(isa)
                        let label = "ck_f32_rnn__\(String(cString: ck_isa_name(isa))) \(cellName) units \(units)\(masked ? " masked backwards" : "")"
                        if let e = compare(states.values, refStates.values, tol: 2e-5) { XCTFail("\(label) forward: \(e)") }
                        if let e = compare(grad.values, refGrad.values, tol: 1e-4) { XCTFail("\(label) backward: \(e)") }
                        XCTAssertTrue(states.intactCanaries && grad.intactCanaries, "\(label) wrote outside its outputs")
                        checked += 1
                    }
                }
            }
        }
        XCTAssertGreaterThanOrEqual(checked, 4 * 2 * 20)
    }

    /// The rows split over two threads (the forward pass's 16-row groups, a
    /// short last one included; the backward pass's rows per step) give
    /// bitwise the results of one thread.
    func testSequenceKernelsAreBitwiseTheSameOnOneAndTwoThreads() throws {
        let isa = ck_best_isa()
        var rng = TestRNG(32)
        let batch = 37
        for cell in [CK_RNN_SIMPLE, CK_RNN_LSTM, CK_RNN_GRU, CK_RNN_GRU_RESET_BEFORE] {
            // batch * gates * units well above the size the rows start splitting at
            var d = ck_rnn_desc(cell: Int32(cell.rawValue), go_backwards: 0, batch: Int64(batch), time: 5, units: 40)
            let gn = Int(ck_rnn_gates(d.cell)) * 40, s = Int(ck_rnn_state_width(d.cell)) * 40, w = Int(ck_rnn_grad_width(d.cell)) * 40
            let xp = rng.floats(batch * 5 * gn, -2, 2), u = rng.floats(40 * gn, -0.3, 0.3), rb = rng.floats(gn, -0.5, 0.5)
            let h0 = rng.floats(batch * 40, -1, 1), c0 = rng.floats(batch * 40, -1, 1), ds = rng.floats(batch * 5 * s, -1, 1)
            let ws = UnsafeMutableRawPointer.allocate(byteCount: max(ck_f32_rnn_forward_workspace_bytes(&d), ck_f32_rnn_backward_workspace_bytes(&d)), alignment: 64)
            defer { ws.deallocate() }
            func run(threads: Int32) -> [Float] {
                let saved = ck_threads_set(threads)
                defer { _ = ck_threads_set(saved) }
                var states = [Float](repeating: 0, count: batch * 5 * s), grad = [Float](repeating: 0, count: batch * 6 * w)
                rb.withUnsafeBufferPointer { rbp in
                    ck_f32_rnn_forward(isa, &d, xp, u, cell == CK_RNN_GRU ? rbp.baseAddress : nil, h0, c0, nil, &states, ws)
                    ck_f32_rnn_backward(isa, &d, xp, u, cell == CK_RNN_GRU ? rbp.baseAddress : nil, h0, c0, nil, states, ds, &grad, ws)
                }
                return states + grad
            }
            XCTAssertEqual(run(threads: 1), run(threads: 2), "ck_f32_rnn__\(String(cString: ck_isa_name(isa))) cell \(cell.rawValue)")
        }
    }
}
