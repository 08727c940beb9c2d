// MpiExchange over MPI (include/moe/mpi_exchange.h has the protocol). no_mpi.cpp is the
// single-process twin.
#include "moe/mpi_exchange.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <string>
#include <unordered_map>

#include "moe/error.h"
#include "mpi_internal.h"

namespace moe {
namespace {

constexpr const char* kOp = "mpi_exchange";

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// MPI counts and displacements are int. They count rows (one datatype = D floats), so a rank
// may send or receive up to 2^31 - 1 rows per call.
int to_mpi_count(int64_t rows, const char* what) {
    MOE_CHECK(rows >= 0 && rows <= INT_MAX, kOp,
              std::string(what) + " = " + std::to_string(rows) +
                  " rows does not fit an MPI count (int); split the batch into smaller micro-batches");
    return int(rows);
}

// The layout of one plan's exchange: who sends how many rows of which expert to whom. Kept
// per plan (one per layer's cache) so that backward moves the gradients exactly like the
// forward moved the rows, even when several layers share this exchange.
struct ExchangeLayout {
    std::vector<int64_t> sent_expert_rows;  // (E,) this rank's rows per expert, as negotiated
    std::vector<int64_t> recv_rows;         // (N, n_local) rows from source s for local expert l
    std::vector<int> send_counts, send_displs, recv_counts, recv_displs;  // (N,) in rows
    std::vector<int64_t> local_offsets;     // (n_local + 1,) the regrouped rows per local expert
};

// Block b = s * L + l holds the rows of source s for local expert l. MPI delivers them source
// by source; the experts want them expert by expert. by_source[b] / by_expert[b]: where block
// b starts (in rows) in either order.
void block_starts(const ExchangeLayout& lay, int64_t N, int64_t L, std::vector<int64_t>& by_source,
                  std::vector<int64_t>& by_expert) {
    by_source.resize(size_t(N * L));
    by_expert.resize(size_t(N * L));
    for (int64_t s = 0, at = 0; s < N; ++s)
        for (int64_t l = 0; l < L; ++l) by_source[size_t(s * L + l)] = at, at += lay.recv_rows[size_t(s * L + l)];
    for (int64_t l = 0, at = 0; l < L; ++l)
        for (int64_t s = 0; s < N; ++s) by_expert[size_t(s * L + l)] = at, at += lay.recv_rows[size_t(s * L + l)];
}

// dst block b (at dst_at[b]) := src block b (at src_at[b]), blocks of lay.recv_rows[b] rows.
void copy_blocks(float* dst, const std::vector<int64_t>& dst_at, const float* src,
                 const std::vector<int64_t>& src_at, const ExchangeLayout& lay, int64_t D) {
    const int64_t n = int64_t(lay.recv_rows.size());
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t b = 0; b < n; ++b)
        std::memcpy(dst + dst_at[size_t(b)] * D, src + src_at[size_t(b)] * D,
                    sizeof(float) * size_t(lay.recv_rows[size_t(b)] * D));
}

}  // namespace

struct MpiExchange::Impl {
    MPI_Datatype row_type = MPI_DATATYPE_NULL;
    int64_t row_D = 0;
    std::unordered_map<const RoutePlan*, ExchangeLayout> layouts;
    const RoutePlan* backward_plan = nullptr;  // set by prepare_backward, used by to_experts
    bool in_backward = false;                  // the last to_experts was backward's
    std::vector<float> staging;                // rows in source-rank order, as MPI delivers them
    std::vector<float> grouped;                // rows grouped by local expert, for the experts

    ~Impl() {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (row_type != MPI_DATATYPE_NULL && !finalized) MPI_Type_free(&row_type);
    }
    MPI_Datatype row(int64_t D) {
        if (D == row_D) return row_type;
        if (row_type != MPI_DATATYPE_NULL) MPI_Type_free(&row_type);
        dist::mpi_check(MPI_Type_contiguous(to_mpi_count(D, "D"), MPI_FLOAT, &row_type), kOp,
                        "MPI_Type_contiguous");
        dist::mpi_check(MPI_Type_commit(&row_type), kOp, "MPI_Type_commit");
        row_D = D;
        return row_type;
    }
};

MpiExchange::MpiExchange(const dist::Comm& comm, int64_t n_experts)
    : comm_(comm), n_experts_(n_experts), impl_(std::make_unique<Impl>()) {
    rank_ = comm.rank();
    ranks_ = comm.size();
    MOE_CHECK(n_experts > 0 && n_experts % ranks_ == 0, kOp,
              "n_experts = " + std::to_string(n_experts) + " is not divisible by the " +
                  std::to_string(ranks_) + " ranks of the expert group; experts are split " +
                  "contiguously, E / N per rank: launch a number of ranks that divides E");
    n_local_ = n_experts / ranks_;
}

MpiExchange::~MpiExchange() = default;

int64_t MpiExchange::expert_begin(const RoutePlan&) const { return rank_ * n_local_; }
int64_t MpiExchange::expert_end(const RoutePlan&) const { return (rank_ + 1) * n_local_; }
bool MpiExchange::in_place() const { return false; }

void MpiExchange::prepare_backward(const RoutePlan& plan) { impl_->backward_plan = &plan; }

float* MpiExchange::to_experts(const RoutePlan& plan, float* rows, int64_t D,
                               std::vector<int64_t>& local_offsets) {
    MOE_CHECK(plan.n_experts == n_experts_, kOp,
              "the plan routes to " + std::to_string(plan.n_experts) + " experts but this exchange splits " +
                  std::to_string(n_experts_) + "; build one exchange per expert count");
    const bool backward = impl_->backward_plan == &plan;
    impl_->backward_plan = nullptr;
    impl_->in_backward = backward;
    const int phase = int(backward ? ExchangePhase::bwd_dispatch : ExchangePhase::fwd_dispatch);
    const int64_t N = ranks_, L = n_local_;
    double t0 = now_s();
    if (measure_wait_) {
        comm_.barrier();
        traffic_.seconds_wait[phase] += now_s() - t0;
        t0 = now_s();
    }

    ExchangeLayout& lay = impl_->layouts[&plan];
    std::vector<int64_t> expert_rows(static_cast<size_t>(n_experts_));
    for (int64_t e = 0; e < n_experts_; ++e) expert_rows[size_t(e)] = plan.count(e);
    if (backward) {
        // Same plan as the forward: the layout negotiated then still holds. A rank whose plan
        // changed in between would send rows its peers do not expect, so refuse.
        MOE_CHECK(lay.sent_expert_rows == expert_rows, kOp,
                  "backward's plan differs from the forward's; call backward right after its forward");
    } else {
        // 1. Counts: rank r tells rank s how many rows of each of s's experts are coming.
        lay.sent_expert_rows = expert_rows;
        lay.recv_rows.assign(size_t(N * L), 0);
        dist::mpi_check(MPI_Alltoall(expert_rows.data(), int(L), MPI_INT64_T, lay.recv_rows.data(), int(L),
                                     MPI_INT64_T, dist::mpi_comm(comm_)),
                        kOp, "MPI_Alltoall");
        traffic_.count_bytes += (N - 1) * L * int64_t(sizeof(int64_t));
        lay.send_counts.assign(size_t(N), 0), lay.send_displs.assign(size_t(N), 0);
        lay.recv_counts.assign(size_t(N), 0), lay.recv_displs.assign(size_t(N), 0);
        int64_t recv_total = 0;
        for (int64_t s = 0; s < N; ++s) {
            // The plan is grouped by expert: destination s's rows are one contiguous slice.
            const int64_t first = plan.expert_offsets[size_t(s * L)], last = plan.expert_offsets[size_t((s + 1) * L)];
            lay.send_counts[size_t(s)] = to_mpi_count(last - first, "rows sent to one rank");
            lay.send_displs[size_t(s)] = to_mpi_count(first, "rows of this rank");
            int64_t from_s = 0;
            for (int64_t l = 0; l < L; ++l) from_s += lay.recv_rows[size_t(s * L + l)];
            lay.recv_counts[size_t(s)] = to_mpi_count(from_s, "rows received from one rank");
            lay.recv_displs[size_t(s)] = to_mpi_count(recv_total, "rows received");
            recv_total += from_s;
        }
        lay.local_offsets.assign(size_t(L + 1), 0);
        for (int64_t l = 0; l < L; ++l) {
            int64_t n = 0;
            for (int64_t s = 0; s < N; ++s) n += lay.recv_rows[size_t(s * L + l)];
            lay.local_offsets[size_t(l + 1)] = lay.local_offsets[size_t(l)] + n;
        }
    }
    const int64_t A_local = lay.local_offsets[size_t(L)];

    // 2. Rows: plan order in, source-rank order out.
    if (int64_t(impl_->staging.size()) < A_local * D) impl_->staging.resize(size_t(A_local * D));
    dist::mpi_check(MPI_Alltoallv(rows, lay.send_counts.data(), lay.send_displs.data(), impl_->row(D),
                                  impl_->staging.data(), lay.recv_counts.data(), lay.recv_displs.data(),
                                  impl_->row(D), dist::mpi_comm(comm_)),
                    kOp, "MPI_Alltoallv");
    double t1 = now_s();

    // 3. Regroup by local expert: (source, expert) blocks -> (expert, source) blocks. With one
    //    expert per rank (or one rank) both orders are the same: no copy.
    float* grouped = impl_->staging.data();
    if (L > 1 && N > 1) {
        std::vector<int64_t> by_source, by_expert;
        block_starts(lay, N, L, by_source, by_expert);
        if (int64_t(impl_->grouped.size()) < A_local * D) impl_->grouped.resize(size_t(A_local * D));
        grouped = impl_->grouped.data();
        copy_blocks(grouped, by_expert, impl_->staging.data(), by_source, lay, D);
    }
    local_offsets = lay.local_offsets;

    const int64_t self = lay.send_counts[size_t(rank_)];
    traffic_.rows_self[phase] += self;
    traffic_.rows_remote[phase] += plan.n_assignments() - self;
    traffic_.seconds_alltoall[phase] += t1 - t0;
    traffic_.seconds_regroup[phase] += now_s() - t1;
    return grouped;
}

void MpiExchange::from_experts(const RoutePlan& plan, const float* local_rows, int64_t D, float* rows) {
    auto it = impl_->layouts.find(&plan);
    MOE_CHECK(it != impl_->layouts.end(), kOp, "from_experts before to_experts for this plan");
    const ExchangeLayout& lay = it->second;
    const int phase = int(impl_->in_backward ? ExchangePhase::bwd_combine : ExchangePhase::fwd_combine);
    const int64_t N = ranks_, L = n_local_;
    const int64_t A_local = lay.local_offsets[size_t(L)];
    double t0 = now_s();

    // Undo the regrouping: (expert, source) blocks -> (source, expert) blocks.
    const float* send = local_rows;
    if (L > 1 && N > 1) {
        if (int64_t(impl_->staging.size()) < A_local * D) impl_->staging.resize(size_t(A_local * D));
        std::vector<int64_t> by_source, by_expert;
        block_starts(lay, N, L, by_source, by_expert);
        copy_blocks(impl_->staging.data(), by_source, local_rows, by_expert, lay, D);
        send = impl_->staging.data();
    }
    double t1 = now_s();
    traffic_.seconds_regroup[phase] += t1 - t0;
    if (measure_wait_) {
        comm_.barrier();
        traffic_.seconds_wait[phase] += now_s() - t1;
        t1 = now_s();
    }

    // Back to the sources, each into its own plan order: the forward's counts, reversed.
    dist::mpi_check(MPI_Alltoallv(send, lay.recv_counts.data(), lay.recv_displs.data(), impl_->row(D), rows,
                                  lay.send_counts.data(), lay.send_displs.data(), impl_->row(D),
                                  dist::mpi_comm(comm_)),
                    kOp, "MPI_Alltoallv");
    const int64_t self = lay.recv_counts[size_t(rank_)];
    traffic_.rows_self[phase] += self;
    traffic_.rows_remote[phase] += A_local - self;
    traffic_.seconds_alltoall[phase] += now_s() - t1;
    impl_->in_backward = false;
}

}  // namespace moe
