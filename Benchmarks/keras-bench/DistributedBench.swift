import CKernels
import Foundation
import Keras
import KerasRuntime

/// `mpirun -np N keras-bench --distributed [--model M] [--steps S]`: each
/// model's training step with DataParallel over the job, one thread a rank,
/// each rank the suite's batch (so the global batch is N times it, as data
/// parallelism scales), against the same step in one process (every rank
/// times that too, at the same moment, so both share the machine alike).
/// Rank 0 prints, per model: the step alone, the step distributed, the
/// allreduce's part of it, and the efficiency (alone / distributed).
struct DistributedRecord {
    var model: String
    var ranks: Int
    var gradientBytes: Int
    var aloneMs = 0.0, distributedMs = 0.0, allreduceMs = 0.0
    var efficiency: Double { distributedMs > 0 ? aloneMs / distributedMs : 0 }
    var json: JSON {
        .object([("model", .string(model)), ("ranks", JSON(ranks)), ("threads_per_rank", JSON(1)), ("gradient_bytes", JSON(gradientBytes)),
                 ("alone_ms", JSON(aloneMs)), ("distributed_ms", JSON(distributedMs)), ("allreduce_ms", JSON(allreduceMs)),
                 ("efficiency", JSON(efficiency))])
    }
}

func runDistributedBench(models: [ModelSpec], steps: Int) throws -> [DistributedRecord] {
    let comm = try MPICommunicator.world()
    _ = ck_threads_set(1)
    var records: [DistributedRecord] = []
    func median(_ body: () throws -> Void) rethrows -> Double {
        var t: [Double] = []
        for _ in 0..<steps { let s = now(); try body(); t.append(now() - s) }
        return t.sorted()[t.count / 2] * 1e3
    }
    for spec in models {
        var rng = SplitMix64(seed: 42 &+ UInt64(comm.rank))  // each rank its own batch
        let (x, y) = try spec.data(spec.batchSize, &rng)
        setDistribution(nil)
        RandomSeed.set(1234)
        let alone = try spec.build()
        for _ in 0..<3 { _ = try alone.trainOnBatch(x, y) }
        try comm.barrier()
        let aloneMs = try median { _ = try alone.trainOnBatch(x, y) }
        setDistribution(DataParallel(communicator: comm))
        RandomSeed.set(1234)
        let model = try spec.build()
        let params = model.weights.filter(\.trainable).reduce(0) { $0 + $1.shape.reduce(1, *) }
        for _ in 0..<3 { _ = try model.trainOnBatch(x, y) }
        try comm.barrier()
        let before = Collectives.allreduceSeconds
        let distributedMs = try median { _ = try model.trainOnBatch(x, y) }
        let allreduceMs = (Collectives.allreduceSeconds - before) / Double(steps) * 1e3
        setDistribution(nil)
        var r = DistributedRecord(model: spec.name, ranks: comm.size, gradientBytes: params * 4)
        r.aloneMs = aloneMs; r.distributedMs = distributedMs; r.allreduceMs = allreduceMs
        if comm.rank == 0 {
            print("\(spec.name) ranks=\(comm.size) threads/rank=1 batch/rank=\(spec.batchSize): alone \(fmt(aloneMs, 2)) ms, distributed \(fmt(distributedMs, 2)) ms "
                  + "(allreduce of \(fmt(Double(params * 4) / 1e6, 2)) MB: \(fmt(allreduceMs, 2)) ms a step), efficiency \(fmt(100 * r.efficiency))%")
        }
        records.append(r)
    }
    return records
}

func distributedMarkdownTable(_ records: [DistributedRecord], command: String) -> String {
    var t = "Produced by `mpirun -np \(records.first?.ranks ?? 1) \(command)` (\(cpuLine())).\n\n"
    t += "| model | ranks | batch per rank | gradient MB | one process ms | distributed ms | allreduce ms | efficiency |\n"
    t += "|---|---:|---:|---:|---:|---:|---:|---:|\n"
    for r in records {
        let batch = (try? ModelSpec.named(r.model).batchSize) ?? 0
        t += "| \(r.model) | \(r.ranks) | \(batch) | \(fmt(Double(r.gradientBytes) / 1e6, 2)) | \(fmt(r.aloneMs, 2)) | \(fmt(r.distributedMs, 2)) | \(fmt(r.allreduceMs, 2)) | \(fmt(100 * r.efficiency))% |\n"
    }
    return t
}
