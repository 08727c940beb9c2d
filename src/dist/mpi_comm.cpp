// moe::dist over MPI (-DMOE_MPI=ON). no_mpi.cpp is the single-process twin.
#include <algorithm>
#include <climits>
#include <cstdlib>
#include <string>

#include "moe/error.h"
#include "mpi_internal.h"

namespace moe::dist {

bool mpi_built() { return true; }

void mpi_check(int rc, const char* op, const char* call) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING] = {0};
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    fail(op, std::string(call) + " failed: " + std::string(msg, size_t(len)));
}

MPI_Comm mpi_comm(const Comm& c) {
    MOE_CHECK(c.handle() != nullptr, "dist", "this Comm is empty; use Comm::world() or Comm::split()");
    return c.handle()->comm;
}

CommHandle::~CommHandle() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owned && !finalized && comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
}

Session::Session(int* argc, char*** argv) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return;
    // FUNNELED: OpenMP workers compute, only the main thread calls MPI.
    int provided = 0;
    mpi_check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "dist", "MPI_Init_thread");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

Session::~Session() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
}

Comm Comm::world() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    MOE_CHECK(initialized, "dist", "MPI is not initialised; create a moe::dist::Session in main first");
    static const std::shared_ptr<CommHandle> world = [] {
        auto h = std::make_shared<CommHandle>();
        h->comm = MPI_COMM_WORLD;  // not owned: MPI_Finalize ends it
        return h;
    }();
    Comm c;
    c.handle_ = world;
    return c;
}

int Comm::rank() const {
    int r = 0;
    mpi_check(MPI_Comm_rank(mpi_comm(*this), &r), "dist", "MPI_Comm_rank");
    return r;
}

int Comm::size() const {
    int n = 1;
    mpi_check(MPI_Comm_size(mpi_comm(*this), &n), "dist", "MPI_Comm_size");
    return n;
}

namespace {
template <typename T>
void allreduce_chunks(MPI_Comm comm, T* data, int64_t n, MPI_Datatype type) {
    // MPI counts are int: reduce in chunks of at most INT_MAX elements.
    for (int64_t i = 0; i < n; i += INT_MAX) {
        int len = int(std::min<int64_t>(INT_MAX, n - i));
        mpi_check(MPI_Allreduce(MPI_IN_PLACE, data + i, len, type, MPI_SUM, comm), "dist", "MPI_Allreduce");
    }
}
}  // namespace

void Comm::allreduce_sum(float* data, int64_t n) const { allreduce_chunks(mpi_comm(*this), data, n, MPI_FLOAT); }
void Comm::allreduce_sum(double* data, int64_t n) const { allreduce_chunks(mpi_comm(*this), data, n, MPI_DOUBLE); }

void Comm::barrier() const { mpi_check(MPI_Barrier(mpi_comm(*this)), "dist", "MPI_Barrier"); }

void Comm::broadcast(void* data, int64_t bytes, int root) const {
    auto* p = static_cast<char*>(data);
    for (int64_t i = 0; i < bytes; i += INT_MAX) {
        int len = int(std::min<int64_t>(INT_MAX, bytes - i));
        mpi_check(MPI_Bcast(p + i, len, MPI_BYTE, root, mpi_comm(*this)), "dist", "MPI_Bcast");
    }
}

void Comm::gather(const float* send, int64_t n, float* recv, int root) const {
    MOE_CHECK(n >= 0 && n <= INT_MAX, "dist",
              "gather of " + std::to_string(n) + " floats per rank does not fit an MPI count (int)");
    mpi_check(MPI_Gather(send, int(n), MPI_FLOAT, recv, int(n), MPI_FLOAT, root, mpi_comm(*this)), "dist",
              "MPI_Gather");
}

void Comm::abort(int code) const {
    MPI_Abort(mpi_comm(*this), code);
    std::abort();  // MPI_Abort does not return; this is for the compiler
}

Comm Comm::split(int color, int key) const {
    MPI_Comm out = MPI_COMM_NULL;
    mpi_check(MPI_Comm_split(mpi_comm(*this), color, key, &out), "dist", "MPI_Comm_split");
    MPI_Comm_set_errhandler(out, MPI_ERRORS_RETURN);
    Comm c;
    c.handle_ = std::make_shared<CommHandle>();
    c.handle_->comm = out;
    c.handle_->owned = true;
    return c;
}

}  // namespace moe::dist
