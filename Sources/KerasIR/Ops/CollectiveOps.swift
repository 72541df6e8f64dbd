import CKernels

/// Collectives across the processes of a distributed job (issue 15).
///
/// `allreduce_mean(x)`: every process's x replaced by the mean of x over the
/// processes — what a data-parallel step applies to each gradient before the
/// optimizer's update. Within one process it is the identity, which is its
/// reference (the oracle a single-process plan is checked against); its
/// kernel copies x and calls the hook the runtime registers
/// (`ck_set_allreduce_hook`) when a distribution is set. The mean over
/// processes is linear with every process's weight 1/N, so its VJP is the
/// same mean of the cotangent.
let collectiveOps: [OpDef] = [
    OpDef("allreduce_mean", arity: .exactly(1),
          shape: { ctx in
              try ctx.requireDType(0, [.f32])
              return ctx.inputs[0]
          },
          differentiability: .vjp { b, _, g in [try b.allreduceMean(g)] },
          reference: { ctx in RefTensor(.f32, ctx.type.shape, ctx.inputs[0].data) },
          lowering: .kernel { ctx in
              try ctx.call(CK_FAMILY_COLLECTIVE, op: 0, params: ck_count_call(n: Int64(ctx.outCount)), [.input(0), .output])
          },
          cost: movementCost),
]

extension GraphBuilder {
    /// x averaged over the processes of a distributed job (the identity on one).
    public func allreduceMean(_ x: Value) throws -> Value { try emit("allreduce_mean", [x]) }
}
