#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Keras's progress bar. verbose 1 on a terminal redraws one line per step
/// (`12/50 ━━━━━━────────────── 1s 21ms/step - accuracy: 0.8125 - loss: 0.4321`);
/// verbose 1 elsewhere prints that line once per epoch; verbose 2 prints
/// `50/50 - 1s - 21ms/step - ...` once per epoch; 0 prints nothing.
final class Progbar {
    let target: Int
    let verbose: Int
    let isTerminal: Bool
    let write: (String) -> Void
    let start = Clock.now()
    var lastDraw = 0.0

    init(target: Int, verbose: Int, write: @escaping (String) -> Void = { fputs($0, stdout); fflush(stdout) }) {
        self.target = target
        self.verbose = verbose
        self.isTerminal = isatty(1) != 0
        self.write = write
    }

    static func formatValues(_ logs: [(String, Float)]) -> String {
        logs.map { " - \($0.0): \(formatMetric($0.1))" }.joined()
    }

    static func formatMetric(_ v: Float) -> String {
        if v.isNaN { return "nan" }
        if abs(v) >= 1e4 || (abs(v) < 1e-3 && v != 0) {
            return formatExponent(Double(v))
        }
        return formatFixed(Double(v), 4)
    }

    static func timePerStep(_ seconds: Double, _ steps: Int) -> String {
        let per = seconds / Double(max(steps, 1))
        if per >= 1 { return "\(Int(per.rounded()))s/step" }
        if per >= 1e-3 { return "\(Int((per * 1e3).rounded()))ms/step" }
        return "\(Int((per * 1e6).rounded()))us/step"
    }

    func bar(_ step: Int) -> String {
        let width = 20
        let done = target > 0 ? min(width, step * width / target) : width
        return String(repeating: "━", count: done) + String(repeating: "─", count: width - done)
    }

    /// Called after each step with the running logs.
    func update(_ step: Int, _ logs: [(String, Float)], final: Bool = false) {
        guard verbose > 0 else { return }
        let elapsed = Clock.now() - start
        if verbose == 1 && isTerminal {
            if !final && elapsed - lastDraw < 0.05 && step != target { return }
            lastDraw = elapsed
            let eta = step < target ? Double(target - step) * elapsed / Double(max(step, 1)) : elapsed
            write("\r\(step)/\(target) \(bar(step)) \(Int(eta.rounded()))s \(Progbar.timePerStep(elapsed, step))\(Progbar.formatValues(logs))\u{1B}[K" + (final ? "\n" : ""))
            return
        }
        guard final else { return }
        if verbose == 1 {
            write("\(step)/\(target) \(bar(step)) \(Int(elapsed.rounded()))s \(Progbar.timePerStep(elapsed, step))\(Progbar.formatValues(logs))\n")
        } else {
            write("\(step)/\(target) - \(Int(elapsed.rounded()))s - \(Progbar.timePerStep(elapsed, step))\(Progbar.formatValues(logs))\n")
        }
    }
}

/// Monotonic seconds.
enum Clock {
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

func cFormat(_ format: String, _ v: Double) -> String {
    var buf = [CChar](repeating: 0, count: 64)
    _ = withVaList([v]) { vsnprintf(&buf, 64, format, $0) }
    return String(cString: buf)
}

func formatFixed(_ v: Double, _ digits: Int) -> String { cFormat("%.\(digits)f", v) }
func formatExponent(_ v: Double) -> String { cFormat("%.4e", v) }
