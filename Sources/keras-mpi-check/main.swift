// keras-mpi-check: whether this machine's MPI carries a data-parallel
// training step. Run it as the training will run, e.g.
//     mpirun -np 2 keras-mpi-check
//     mpirun -np 2 keras-mpi-check --train mlp --steps 20
// Every rank loads MPI the way training does (KERAS_MPI_LIBRARY, else
// libmpi.so.40, else libmpi.so). Without arguments it checks the
// collectives a step uses against values it can work out alone: an
// allreduce sum and average (a short buffer and one of 3M floats),
// broadcasts from the first and last rank, a barrier. With --train it
// trains a suite model (DataParallel, each rank starting from different
// weights, which rank 0's replace; with --warm-up, also from optimizer state
// of its own, made by one step alone on data of its own) for the given steps
// on batches every rank draws alike, then checks that every rank holds bitwise the same weights
// and that they are within 1e-5 (all weights as one vector, relative to
// its norm) of a one-process run on the same global batches. Prints a line per rank;
// exit 0 when all agree, 1 when a value is wrong, 2 on bad arguments or
// when MPI cannot be loaded or a call fails.
import Foundation
import Keras
import KerasRuntime

func fail(_ message: String, status: Int32) -> Never {
    FileHandle.standardError.write(Data("keras-mpi-check: \(message)\n".utf8))
    exit(status)
}

let usage = "usage: mpirun -np N keras-mpi-check [--train MODEL [--steps N] [--exit-rank R [--exit-status S]] [--hang-rank R] [--files DIR] [--warm-up]]   "
    + "(the collectives, or a data-parallel training run, across the N ranks; --exit-rank: rank R exits halfway with status S (default 3), "
    + "--hang-rank: rank R stops making progress halfway, to see that the others stop; --files: a checkpoint and a CSV log per epoch in DIR, "
    + "named by rank, to see that rank 0 alone writes; --warm-up: each rank first trains one step alone on data of its own)"
var trainModel: String? = nil, trainSteps = 20, exitRank: Int? = nil, exitStatus: Int32 = 3, hangRank: Int? = nil, filesDirectory: String? = nil, warmUp = false
var args = Array(CommandLine.arguments.dropFirst())
if args.first == "-h" || args.first == "--help" { print(usage); exit(0) }
while !args.isEmpty {
    let flag = args.removeFirst()
    if flag == "--warm-up" {
        warmUp = true
        continue
    }
    guard ["--train", "--steps", "--exit-rank", "--exit-status", "--hang-rank", "--files"].contains(flag), let value = args.first else {
        fail("unknown argument '\(flag)' or a flag without its value; \(usage)", status: 2)
    }
    args.removeFirst()
    switch flag {
    case "--exit-rank", "--hang-rank":
        guard let r = Int(value), r >= 0 else { fail("\(flag) must be a rank, got '\(value)'", status: 2) }
        if flag == "--exit-rank" { exitRank = r } else { hangRank = r }
    case "--exit-status":
        guard let s = Int32(value), (0...255).contains(s) else { fail("--exit-status must be 0...255, got '\(value)'", status: 2) }
        exitStatus = s
    case "--train": trainModel = value
    case "--files": filesDirectory = value
    default:
        guard let n = Int(value), n >= 1 else { fail("--steps must be a positive integer, got '\(value)'", status: 2) }
        trainSteps = n
    }
}

/// Trains `name` for `steps` global batches with DataParallel over `comm`, and
/// the same in one process; checks the ranks agree bitwise and match it.
func checkTraining(_ name: String, steps: Int, comm: Communicator) throws {
    let bm = try BenchmarkModel.named(name)
    var rng = SplitMix64(seed: 7)
    let (x, y) = try bm.data(bm.batchSize * steps, &rng)  // the same on every rank
    // one step alone on data of the rank's own gives each rank its own optimizer state (slots, step
    // count), which the distributed fit must replace with rank 0's, as it does the weights
    func warmUpData(rank: Int) throws -> (Tensor, Tensor) {
        var own = SplitMix64(seed: UInt64(99 + rank))
        return try bm.data(bm.batchSize, &own)
    }
    setDistribution(nil)
    RandomSeed.set(1234)
    let alone = try bm.build()  // rank 0's initial weights (and state), trained in one process
    if warmUp {
        let (zx, zy) = try warmUpData(rank: 0)
        try alone.fit(zx, zy, batchSize: bm.batchSize, epochs: 1, verbose: 0, shuffle: false)
    }
    try alone.fit(x, y, batchSize: bm.batchSize, epochs: 1, verbose: 0, shuffle: false)
    RandomSeed.set(UInt64(1234 + comm.rank))  // other ranks start elsewhere: the broadcast must replace them
    let model = try bm.build()
    if warmUp {
        let (wx, wy) = try warmUpData(rank: comm.rank)
        try model.fit(wx, wy, batchSize: bm.batchSize, epochs: 1, verbose: 0, shuffle: false)
    }
    setDistribution(DataParallel(communicator: comm))
    defer { setDistribution(nil) }
    // --exit-rank and --hang-rank: that rank leaves or stops halfway through, as a crashed or stuck machine would
    let fault = LambdaCallback(onBatchEnd: { batch, _ in
        guard batch == steps / 2 else { return }
        if comm.rank == exitRank {
            FileHandle.standardError.write(Data("keras-mpi-check: rank \(comm.rank) exits at step \(batch) with status \(exitStatus) (--exit-rank)\n".utf8))
            exit(exitStatus)  // any status mid-fit: the exit handler aborts the job
        }
        if comm.rank == hangRank {
            FileHandle.standardError.write(Data("keras-mpi-check: rank \(comm.rank) stops at step \(batch) (--hang-rank)\n".utf8))
            while true { sleep(60) }
        }
    })
    var callbacks: [Callback] = [fault]
    if let dir = filesDirectory {  // named by rank: a file from any rank but 0 is one written twice
        callbacks += [try ModelCheckpoint("\(dir)/rank\(comm.rank)-{epoch}.weights.h5"), CSVLogger("\(dir)/rank\(comm.rank).csv")]
    }
    try model.fit(x, y, batchSize: bm.batchSize, epochs: 1, verbose: 0, callbacks: callbacks, shuffle: false)
    var worst: Float = 0, worstTensor = "", sumDiff = 0.0, sumNorm = 0.0
    var outside = 0, count = 0, largest = 0.0  // element by element, numpy's allclose(rtol=1e-5, atol=1e-8)
    for (k, (mine, ref)) in zip(model.getWeights(), alone.getWeights()).enumerated() {
        var values = mine.floats
        var first = values
        try first.withUnsafeMutableBytes { try comm.broadcast($0, root: 0) }
        if first.map(\.bitPattern) != values.map(\.bitPattern) {
            fail("rank \(comm.rank): \(name)'s weights differ from rank 0's after \(steps) steps", status: 1)
        }
        let r = ref.floats
        // the tensor's difference in norm, relative to its norm (Adam divides by each weight's own
        // gradient scale, so a weight whose gradients are near zero can move by lr either way)
        let norm = r.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
        let diff = zip(values, r).reduce(0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
        let relative = Float(norm > 0 ? diff / norm : diff)
        if relative > worst { worst = relative; worstTensor = model.weights[k].path }
        sumDiff += diff * diff
        sumNorm += norm * norm
        for (a, b) in zip(values, r) {
            let d = abs(Double(a) - Double(b))
            largest = max(largest, d)
            if d > 1e-8 + 1e-5 * abs(Double(b)) { outside += 1 }
        }
        count += r.count
        values.removeAll()
    }
    // all the weights together, as one vector: within 1e-5 of one process's, relative to its norm
    let overall = Float(sumNorm > 0 ? (sumDiff / sumNorm).squareRoot() : sumDiff.squareRoot())
    if !(overall <= 1e-5) {
        fail("rank \(comm.rank): \(name)'s weights after \(steps) steps differ from one process's by \(overall) of their norm "
             + "(the most, \(worstTensor), by \(worst) of its own)", status: 1)
    }
    print("rank \(comm.rank) of \(comm.size): \(name) trained \(steps) steps of \(bm.batchSize): weights bitwise the same on every rank, "
          + "within \(overall) of one process's (relative to their norm; the most, \(worstTensor), within \(worst) of its own; "
          + "element by element \(outside) of \(count) outside allclose(rtol 1e-5, atol 1e-8), the largest difference \(Float(largest)))")
}

do {
    let comm = try MPICommunicator.world()
    if let name = trainModel {
        try checkTraining(name, steps: trainSteps, comm: comm)
        exit(0)
    }
    let r = comm.rank, n = comm.size
    // every element is a small integer times (rank + 1): sums over the ranks are exact
    for count in [1000, 3_000_000] {
        var x = (0..<count).map { Float($0 % 7) * Float(r + 1) }
        try x.withUnsafeMutableBufferPointer { try comm.allreduceSum($0) }
        let ranks = Float(n * (n + 1) / 2)
        if let i = x.indices.first(where: { x[$0] != Float($0 % 7) * ranks }) {
            fail("rank \(r): allreduce sum of \(count) floats: element \(i) is \(x[i]), expected \(Float(i % 7) * ranks)", status: 1)
        }
        var y = (0..<count).map { _ in Float(2 * (r + 1)) }
        try y.withUnsafeMutableBufferPointer { try comm.allreduceAverage($0) }
        if let i = y.indices.first(where: { y[$0] != Float(n + 1) }) {
            fail("rank \(r): allreduce average of \(count) floats: element \(i) is \(y[i]), expected \(Float(n + 1))", status: 1)
        }
    }
    for root in n > 1 ? [0, n - 1] : [0] {  // the same order on every rank (a Set's is per process)
        var bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: r), count: 4099)
        if r == root { for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ root) } }
        try bytes.withUnsafeMutableBytes { try comm.broadcast($0, root: root) }
        if let i = bytes.indices.first(where: { bytes[$0] != UInt8(truncatingIfNeeded: $0 &* 31 &+ root) }) {
            fail("rank \(r): broadcast from rank \(root): byte \(i) is \(bytes[i])", status: 1)
        }
    }
    try comm.barrier()
    print("rank \(r) of \(n): allreduce (sum, average), broadcast and barrier agree (\(comm.library))")
} catch let e as CommunicatorError {
    fail(e.description, status: 2)
} catch let e as KerasError {
    fail("\(e)", status: 2)
} catch {
    fail("\(error)", status: 2)
}
