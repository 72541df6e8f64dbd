import CKernels
import Foundation

/// rnn_sequence and rnn_sequence_grad in double precision, one step and one
/// row at a time as the cells' definitions read: the reference the kernels
/// and the finite-difference checks are held to.
struct RNNReference {
    let spec: RNNSequenceSpec
    let xp: RefTensor, u: RefTensor, h0: RefTensor
    let c0: RefTensor?, mask: RefTensor?, rb: RefTensor?
    let batch: Int, time: Int, units: Int

    init(_ ctx: ReferenceContext, first: Int) throws {
        spec = try RNNSequenceSpec(ctx.attrs, op: "rnn_sequence")
        func input(_ i: Int?) -> RefTensor? { i.map { ctx.inputs[first + $0] } }
        xp = input(0)!; u = input(1)!; h0 = input(2)!
        c0 = input(spec.c0); mask = input(spec.mask); rb = input(spec.rb)
        batch = xp.shape[0]; time = xp.shape[1]; units = u.shape[0]
    }

    private var gn: Int { spec.gates * units }
    private func timeOf(step k: Int) -> Int { spec.goBackwards ? time - 1 - k : k }
    private func on(_ b: Int, _ t: Int) -> Bool { mask.map { $0.data[b * time + t] != 0 } ?? true }
    private func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

    /// v [rows of length units] times columns [col, col + cols) of u.
    private func times(_ v: [Double], col: Int, cols: Int) -> [Double] {
        (0..<cols).map { j in (0..<units).reduce(0.0) { $0 + v[$1] * u.data[$1 * gn + col + j] } }
    }
    /// v [cols] times the transpose of columns [col, col + cols) of u: [units].
    private func timesTransposed(_ v: [Double], col: Int) -> [Double] {
        (0..<units).map { i in v.indices.reduce(0.0) { $0 + v[$1] * u.data[i * gn + col + $1] } }
    }

    /// A step's activations, recomputed from the state it read.
    private struct Step {
        var gates: [Double]     // post-activation gates, gn values
        var rec: [Double] = []  // GRU reset_after: the recurrent product with its bias
        var h: [Double], c: [Double] = []
    }

    private func step(_ b: Int, _ t: Int, hp: [Double], cp: [Double]) -> Step {
        let n = units
        let x = Array(xp.data[(b * time + t) * gn ..< (b * time + t + 1) * gn])
        switch spec.cell {
        case CK_RNN_SIMPLE:
            let h = zip(x, times(hp, col: 0, cols: n)).map { tanh($0 + $1) }
            return Step(gates: h, h: h)
        case CK_RNN_LSTM:
            let z = zip(x, times(hp, col: 0, cols: gn)).map(+)
            var g = z
            for j in 0..<gn { g[j] = j / n == 2 ? tanh(z[j]) : sigmoid(z[j]) }
            let c = (0..<n).map { g[n + $0] * cp[$0] + g[$0] * g[2 * n + $0] }
            return Step(gates: g, h: (0..<n).map { g[3 * n + $0] * tanh(c[$0]) }, c: c)
        case CK_RNN_GRU:
            var rec = times(hp, col: 0, cols: gn)
            for j in 0..<gn { rec[j] += rb!.data[j] }
            var g = [Double](repeating: 0, count: gn)
            for j in 0..<n {
                g[j] = sigmoid(x[j] + rec[j]); g[n + j] = sigmoid(x[n + j] + rec[n + j])
                g[2 * n + j] = tanh(x[2 * n + j] + g[n + j] * rec[2 * n + j])
            }
            return Step(gates: g, rec: rec, h: (0..<n).map { g[2 * n + $0] + g[$0] * (hp[$0] - g[2 * n + $0]) })
        default: // reset_before
            let zr = zip(x[0..<(2 * n)], times(hp, col: 0, cols: 2 * n)).map { sigmoid($0 + $1) }
            let rh = (0..<n).map { zr[n + $0] * hp[$0] }
            let hh = zip(x[(2 * n)...], times(rh, col: 2 * n, cols: n)).map { tanh($0 + $1) }
            return Step(gates: zr + hh, h: (0..<n).map { hh[$0] + zr[$0] * (hp[$0] - hh[$0]) })
        }
    }

    private func row(_ t: RefTensor, _ b: Int, _ k: Int, width: Int, offset: Int) -> [Double] {
        let start = (b * t.shape[1] + k) * t.shape[2] + offset
        return Array(t.data[start ..< start + width])
    }

    /// The states (h, c) the step k of row b read.
    private func previous(_ states: [Double], _ b: Int, _ k: Int) -> (h: [Double], c: [Double]) {
        let n = units, s = spec.stateWidth * n
        if k == 0 {
            return (Array(h0.data[b * n ..< (b + 1) * n]), c0.map { Array($0.data[b * n ..< (b + 1) * n]) } ?? [])
        }
        let start = (b * time + k - 1) * s
        return (Array(states[start ..< start + n]), spec.stateWidth == 2 ? Array(states[start + n ..< start + 2 * n]) : [])
    }

    func forward() throws -> RefTensor {
        let n = units, s = spec.stateWidth * n
        var states = [Double](repeating: 0, count: batch * time * s)
        for b in 0..<batch {
            for k in 0..<time {
                let t = timeOf(step: k), (hp, cp) = previous(states, b, k)
                let out = on(b, t) ? step(b, t, hp: hp, cp: cp) : Step(gates: [], h: hp, c: cp)
                let start = (b * time + k) * s
                states.replaceSubrange(start ..< start + n, with: out.h)
                if spec.stateWidth == 2 { states.replaceSubrange(start + n ..< start + 2 * n, with: out.c) }
            }
        }
        return RefTensor(.f32, [batch, time, s], states)
    }

    func backward(states: RefTensor, cotangent: RefTensor) throws -> RefTensor {
        let n = units, w = spec.gradWidth * n
        var grad = [Double](repeating: 0, count: batch * (time + 1) * w)
        for b in 0..<batch {
            var dh = [Double](repeating: 0, count: n), dc = dh
            for k in stride(from: time - 1, through: 0, by: -1) {
                let t = timeOf(step: k), (hp, cp) = previous(states.data, b, k)
                let base = (b * (time + 1) + t) * w
                grad.replaceSubrange(base + gn ..< base + gn + n, with: hp)
                let ds = row(cotangent, b, k, width: spec.stateWidth * n, offset: 0)
                for j in 0..<n { dh[j] += ds[j] }
                if spec.stateWidth == 2 { for j in 0..<n { dc[j] += ds[n + j] } }
                let s = step(b, t, hp: hp, cp: cp)
                // The step's own results come from `states`, as the kernel reads them.
                let hs = row(states, b, k, width: n, offset: 0), cs = spec.stateWidth == 2 ? row(states, b, k, width: n, offset: n) : []
                if spec.cell == CK_RNN_GRU_RESET_BEFORE {
                    grad.replaceSubrange(base + gn + n ..< base + gn + 2 * n, with: (0..<n).map { s.gates[n + $0] * hp[$0] })
                }
                guard on(b, t) else { continue }
                var dz = [Double](repeating: 0, count: gn), next = [Double](repeating: 0, count: n)
                let g = s.gates
                switch spec.cell {
                case CK_RNN_SIMPLE:
                    for j in 0..<n { dz[j] = dh[j] * (1 - hs[j] * hs[j]) }
                    next = timesTransposed(dz, col: 0)
                case CK_RNN_LSTM:
                    for j in 0..<n {
                        let i = g[j], f = g[n + j], gg = g[2 * n + j], o = g[3 * n + j], tc = tanh(cs[j])
                        let dct = dc[j] + dh[j] * o * (1 - tc * tc)
                        dz[j] = dct * gg * i * (1 - i); dz[n + j] = dct * cp[j] * f * (1 - f)
                        dz[2 * n + j] = dct * i * (1 - gg * gg); dz[3 * n + j] = dh[j] * tc * o * (1 - o)
                        dc[j] = dct * f
                    }
                    next = timesTransposed(dz, col: 0)
                case CK_RNN_GRU:
                    var drec = dz
                    for j in 0..<n {
                        let zg = g[j], r = g[n + j], hh = g[2 * n + j]
                        let dhh = dh[j] * (1 - zg) * (1 - hh * hh)
                        dz[j] = dh[j] * (hp[j] - hh) * zg * (1 - zg)
                        dz[n + j] = dhh * s.rec[2 * n + j] * r * (1 - r)
                        dz[2 * n + j] = dhh
                        drec[j] = dz[j]; drec[n + j] = dz[n + j]; drec[2 * n + j] = dhh * r
                    }
                    grad.replaceSubrange(base + gn + n ..< base + 2 * gn + n, with: drec)
                    next = zip(timesTransposed(drec, col: 0), 0..<n).map { $0 + dh[$1] * g[$1] }
                default:
                    for j in 0..<n {
                        let zg = g[j], hh = g[2 * n + j]
                        dz[j] = dh[j] * (hp[j] - hh) * zg * (1 - zg)
                        dz[2 * n + j] = dh[j] * (1 - zg) * (1 - hh * hh)
                    }
                    let tr = timesTransposed(Array(dz[(2 * n)...]), col: 2 * n)
                    for j in 0..<n { dz[n + j] = tr[j] * hp[j] * g[n + j] * (1 - g[n + j]) }
                    let viaGates = timesTransposed(Array(dz[0..<(2 * n)]), col: 0)
                    next = (0..<n).map { viaGates[$0] + tr[$0] * g[n + $0] + dh[$0] * g[$0] }
                }
                grad.replaceSubrange(base ..< base + gn, with: dz)
                dh = next
            }
            let last = (b * (time + 1) + time) * w
            grad.replaceSubrange(last ..< last + n, with: dh)
            if spec.stateWidth == 2 { grad.replaceSubrange(last + n ..< last + 2 * n, with: dc) }
        }
        return RefTensor(.f32, [batch, time + 1, w], grad)
    }
}
