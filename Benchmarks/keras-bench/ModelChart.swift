import Keras

/// The model table as an SVG bar chart (`--svg FILE`): one group per model
/// and thread count, a bar for this library's training step and one per
/// peer given with `--peers FILE` (Benchmarks/peers/peers.py's JSON), each
/// group scaled to its slowest bar and every bar labelled in milliseconds.
struct PeerTime { var peer: String, model: String, threads: Int, trainMs: Double }

/// Peer records from peers.py's JSON: [{peer, model, threads, train_ms_median, ...}].
func readPeerTimes(_ path: String) throws -> [PeerTime] {
    guard let bytes = try readBinaryFile(path) else { throw KerasError("cannot read the peers file \(path)") }
    guard let records = try JSON.parse(String(decoding: bytes, as: UTF8.self)).arrayValue else {
        throw KerasError("\(path): expected a JSON array of peer records")
    }
    return try records.map { r in
        guard let peer = r["peer"]?.stringValue, let model = r["model"]?.stringValue, let threads = r["threads"]?.intValue,
              let ms = r["train_ms_median"]?.doubleValue else {
            throw KerasError("\(path): a peer record needs peer, model, threads and train_ms_median, got \(r.serialized())")
        }
        return PeerTime(peer: peer, model: model, threads: threads, trainMs: ms)
    }
}

func modelChartSVG(_ records: [ModelRecord], peers: [PeerTime], title: String) -> String {
    let names = ["this library"] + Array(Set(peers.map(\.peer))).sorted()
    let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]
    let groups = records.filter { $0.status == "ok" }
    let barH = 16.0, gap = 18.0, labelW = 150.0, plotW = 460.0, top = 70.0
    let groupH = Double(names.count) * barH + gap
    let height = top + Double(groups.count) * groupH + 30
    var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(labelW + plotW + 140))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
    out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    out += "<text x=\"10\" y=\"22\" font-size=\"16\">\(xmlEscape(title))</text>\n"
    out += "<text x=\"10\" y=\"40\" fill=\"#555\">training step, milliseconds (shorter is faster; each group scaled to its slowest bar)</text>\n"
    for (i, name) in names.enumerated() {  // the legend, above the bars
        let x = 10 + Double(i) * 130
        out += "<rect x=\"\(x)\" y=\"50\" width=\"12\" height=\"10\" fill=\"\(colors[i % colors.count])\"/><text x=\"\(x + 16)\" y=\"59\">\(xmlEscape(name))</text>\n"
    }
    for (g, r) in groups.enumerated() {
        let y0 = top + Double(g) * groupH
        let times = [r.trainMs.median] + names.dropFirst().map { peer in
            peers.first { $0.peer == peer && $0.model == r.model && $0.threads == r.threads }?.trainMs ?? .nan
        }
        let longest = times.filter(\.isFinite).max() ?? 1
        out += "<text x=\"\(labelW - 8)\" y=\"\(y0 + Double(names.count) * barH / 2 + 4)\" text-anchor=\"end\">\(xmlEscape(r.model)), \(r.threads) thread\(r.threads == 1 ? "" : "s")</text>\n"
        for (i, t) in times.enumerated() where t.isFinite {
            let w = max(t / longest * plotW, 1), y = y0 + Double(i) * barH
            out += "<rect x=\"\(labelW)\" y=\"\(y)\" width=\"\(w)\" height=\"\(barH - 3)\" fill=\"\(colors[i % colors.count])\"><title>\(xmlEscape(names[i])): \(fmt(t, t < 10 ? 2 : 1)) ms</title></rect>"
            out += "<text x=\"\(labelW + w + 4)\" y=\"\(y + barH - 5)\">\(fmt(t, t < 10 ? 2 : 1)) ms</text>\n"
        }
    }
    return out + "</svg>\n"
}

private func xmlEscape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
}
