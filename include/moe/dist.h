// Processes working on one model: a thin wrapper over an MPI communicator. Built with MPI
// (-DMOE_MPI=ON, src/dist/mpi_comm.cpp) it talks to the other ranks; built without it
// (src/dist/no_mpi.cpp) there is exactly one process, rank 0 of 1, and every collective is the
// identity, so the single-process product needs no MPI at all.
#pragma once
#include <cstdint>
#include <memory>

namespace moe {

struct MoeLayerParams;

namespace dist {

// True when this build talks MPI (-DMOE_MPI=ON).
bool mpi_built();

// The number of processes an MPI launcher (mpirun / mpiexec / srun) says this job has, read
// from the environment it sets (OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_SIZE... ); 0 when this
// process was not started by one. Works without MPI built in, so that a build without MPI can
// refuse `mpirun -np 4 moe train` instead of running 4 independent trainings on one --out.
int launcher_world_size();

// MPI_Init on construction, MPI_Finalize on destruction (one per process, in main). Without
// MPI it does nothing. Threads: MPI_THREAD_FUNNELED (only the main thread calls MPI, OpenMP
// workers never do).
class Session {
public:
    Session(int* argc, char*** argv);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
};

struct CommHandle;  // the MPI_Comm (src/dist/mpi_internal.h); opaque so callers need no mpi.h

// A group of ranks. Comm::world() is every process; split() carves sub-groups out of it.
class Comm {
public:
    static Comm world();  // MPI_COMM_WORLD (or the single process)
    int rank() const;
    int size() const;
    // In place: data (n) := the element-wise sum of every rank's data. Reduction order is
    // MPI's, identical on every rank (so every rank ends with the same bits).
    void allreduce_sum(float* data, int64_t n) const;
    void allreduce_sum(double* data, int64_t n) const;
    void barrier() const;
    // data (bytes) := root's data on every rank (MPI_Bcast).
    void broadcast(void* data, int64_t bytes, int root) const;
    // Rank r's n floats land at recv + r n on root (MPI_Gather; recv is read on root only, and
    // holds size() n floats there).
    void gather(const float* send, int64_t n, float* recv, int root) const;
    // Ends every process of this communicator's job (MPI_Abort) with `code`: for an error on one
    // rank that the others, waiting in a collective, would never learn of.
    [[noreturn]] void abort(int code) const;
    // Ranks with the same color form one new communicator, ordered by key (MPI_Comm_split).
    Comm split(int color, int key) const;

    const CommHandle* handle() const { return handle_.get(); }

private:
    std::shared_ptr<CommHandle> handle_;
};

// Expert parallelism inside data parallelism: `world` is cut into data-parallel replicas of
// `expert_group_size` consecutive ranks each. Inside a replica the experts are partitioned
// (the `experts` communicator, what MpiExchange takes); the ranks holding the same expert shard
// in different replicas form `data`, over which expert gradients are averaged. Throws unless
// expert_group_size divides world.size().
struct ParallelGroups {
    Comm experts;  // ranks sharing one copy of all experts (the all-to-all group)
    Comm data;     // ranks holding the same expert shard (gradient allreduce of the experts)
};
ParallelGroups dist_split_groups(const Comm& world, int expert_group_size);

// Data parallelism for the replicated tensors of a layer: router (+ noise, proj, temp) and the
// shared experts' gradients are summed over `comm` (every rank computed them on its own
// tokens). Expert weight gradients (w1 / w3 / w2) are left alone: each rank owns its experts'.
void dist_allreduce_replicated_grads(const Comm& comm, const MoeLayerParams& grads);
// Expert parallelism inside data parallelism: the expert shard's gradients (w1 / w3 / w2)
// summed over `data` (ParallelGroups::data), the ranks holding the same shard.
void dist_allreduce_expert_grads(const Comm& data, const MoeLayerParams& grads);

}  // namespace dist
}  // namespace moe
