// The parts of moe::dist built the same with or without MPI: they only use Comm.
#include <cstdlib>
#include <string>

#include "moe/dist.h"
#include "moe/error.h"
#include "moe/moe_layer.h"

namespace moe::dist {

int launcher_world_size() {
    // OpenMPI's mpirun, MPICH / Intel MPI (Hydra's PMI), MVAPICH. Each sets its variable in
    // every process it starts; a process started by hand has none of them.
    for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"}) {
        const char* v = std::getenv(var);
        if (v != nullptr && std::atoi(v) > 0) return std::atoi(v);
    }
    return 0;
}

ParallelGroups dist_split_groups(const Comm& world, int expert_group_size) {
    const int n = world.size(), r = world.rank();
    MOE_CHECK(expert_group_size > 0 && n % expert_group_size == 0, "dist_split_groups",
              "the expert group size " + std::to_string(expert_group_size) + " must divide the " +
                  std::to_string(n) + " ranks (each data-parallel replica holds one full set of experts)");
    // Replica i = ranks [i G, (i + 1) G); position p inside it owns expert shard p.
    const int replica = r / expert_group_size, position = r % expert_group_size;
    return {world.split(replica, position), world.split(position, replica)};
}

void dist_allreduce_replicated_grads(const Comm& comm, const MoeLayerParams& grads) {
    // Every rank computed these on its own tokens from the same replicated weights: the sum is
    // the gradient of the summed loss. w1 / w3 / w2 are sharded, not replicated: not here.
    for (const TensorView* t : {&grads.router, &grads.router_noise, &grads.router_proj,
                                &grads.router_temp, &grads.ws1, &grads.ws3, &grads.ws2, &grads.ws_gate})
        if (t->numel() > 0) comm.allreduce_sum(t->f32(), t->numel());
}

void dist_allreduce_expert_grads(const Comm& data, const MoeLayerParams& grads) {
    for (const TensorView* t : {&grads.w1, &grads.w3, &grads.w2})
        if (t->numel() > 0) data.allreduce_sum(t->f32(), t->numel());
}

}  // namespace moe::dist
