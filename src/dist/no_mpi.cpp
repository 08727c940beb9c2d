// moe::dist without MPI (-DMOE_MPI=OFF): one process, rank 0 of 1; every collective is the
// identity and MpiExchange is the local exchange. mpi_comm.cpp / mpi_exchange.cpp are the twins.
#include <cstdlib>
#include <cstring>
#include <string>

#include "moe/error.h"
#include "moe/mpi_exchange.h"

namespace moe {
namespace dist {

struct CommHandle {};

bool mpi_built() { return false; }

Session::Session(int*, char***) {}
Session::~Session() = default;

Comm Comm::world() {
    Comm c;
    c.handle_ = std::make_shared<CommHandle>();
    return c;
}
int Comm::rank() const { return 0; }
int Comm::size() const { return 1; }
void Comm::allreduce_sum(float*, int64_t) const {}
void Comm::allreduce_sum(double*, int64_t) const {}
void Comm::barrier() const {}
void Comm::broadcast(void*, int64_t, int) const {}
void Comm::gather(const float* send, int64_t n, float* recv, int) const {
    if (recv != send) std::memcpy(recv, send, size_t(n) * sizeof(float));
}
void Comm::abort(int code) const { std::exit(code); }
Comm Comm::split(int, int) const { return *this; }

}  // namespace dist

struct MpiExchange::Impl {};

MpiExchange::MpiExchange(const dist::Comm& comm, int64_t n_experts)
    : comm_(comm), n_experts_(n_experts), n_local_(n_experts) {
    MOE_CHECK(n_experts > 0, "mpi_exchange", "n_experts must be > 0, got " + std::to_string(n_experts));
}
MpiExchange::~MpiExchange() = default;

int64_t MpiExchange::expert_begin(const RoutePlan&) const { return 0; }
int64_t MpiExchange::expert_end(const RoutePlan&) const { return n_experts_; }
bool MpiExchange::in_place() const { return true; }

float* MpiExchange::to_experts(const RoutePlan& plan, float* rows, int64_t D,
                               std::vector<int64_t>& local_offsets) {
    return LocalExchange().to_experts(plan, rows, D, local_offsets);
}

void MpiExchange::from_experts(const RoutePlan& plan, const float* local_rows, int64_t D, float* rows) {
    LocalExchange().from_experts(plan, local_rows, D, rows);
}

void MpiExchange::prepare_backward(const RoutePlan&) {}

}  // namespace moe
