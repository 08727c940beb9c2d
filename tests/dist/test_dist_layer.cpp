// Expert parallelism under mpirun (ctest DistLayer_np2 / _np4): the layer with MpiExchange, each
// rank holding only its E / N experts, against the single-process layer.
//
// Every rank builds the same full weights (same seed) and its own tokens (seed 1000 + rank).
// The reference runs in every rank: the local layer on each rank's tokens in turn (all ranks
// can regenerate all tokens from the seeds). Then on rank r:
//   y, dx            == the local layer on rank r's tokens,
//   d w1 / w3 / w2   == the sum over all ranks' tokens of the local gradients of r's experts,
//   d router, shared == (after dist_allreduce_replicated_grads) the same sum.
// Tolerances: max |diff| <= tol * max |reference| over each tensor.
//   y, dx with bf16 compute: 0, bit-identical. The bf16 grouped GEMM computes every output row
//     in the same order whatever the number of rows beside it.
//   y, dx with f32 compute: 1e-5. OpenBLAS picks its kernel and blocking by the GEMM's M, the
//     number of rows of an expert; the distributed expert sees the rows of all ranks at once,
//     so a row's dot products are summed in another order (observed <= 3e-7 of max |y|).
//   gradients: 1e-5. The reference adds each rank's contribution in turn (backward
//     accumulates +=); the distributed experts sum all ranks' rows in one GEMM and MPI sums the
//     replicated gradients in its own tree order: the same sum, reordered (observed <= 5e-7).
// A misplaced row, expert or rank is an error of order 1, not 1e-5.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <tuple>
#include <string>
#include <vector>

#include "moe/dist.h"
#include "moe/error.h"
#include "moe/moe_layer.h"
#include "moe/mpi_exchange.h"
#include "moe/rng.h"

using namespace moe;

namespace {

dist::Comm world() { return dist::Comm::world(); }

struct LayerState {
    Arena pa, ga;
    MoeLayerParams p, g;
    LayerState(const MoeLayerConfig& c, int64_t n_local) {
        MoeLayerParamSlots ps = moe_layer_params_reserve(pa, c, n_local);
        MoeLayerParamSlots gs = moe_layer_params_reserve(ga, c, n_local);
        pa.allocate();
        ga.allocate();
        p = moe_layer_params_point(pa, ps);
        g = moe_layer_params_point(ga, gs);
    }
};

struct Tokens {
    std::vector<float> x, dy;
};
Tokens make_tokens(int rank, int64_t T, int64_t D) {
    Tokens t;
    t.x.resize(size_t(T * D));
    t.dy.resize(size_t(T * D));
    Rng r(1000 + uint64_t(rank));
    r.fill_normal(t.x.data(), T * D, 0, 1);
    r.fill_normal(t.dy.data(), T * D, 0, 1);
    return t;
}

TensorView view(std::vector<float>& v, int64_t T, int64_t D) { return {v.data(), DType::f32, {T, D}}; }

// Copies the replicated tensors whole and experts [e0, e0 + n) of w1 / w3 / w2.
void copy_slice(const MoeLayerParams& to, const MoeLayerParams& from, int64_t e0, int64_t n) {
    const TensorView* dst[] = {&to.router, &to.router_noise, &to.router_bias, &to.router_proj, &to.router_temp,
                               &to.ws1, &to.ws3, &to.ws2, &to.ws_gate};
    const TensorView* src[] = {&from.router, &from.router_noise, &from.router_bias, &from.router_proj,
                               &from.router_temp, &from.ws1, &from.ws3, &from.ws2, &from.ws_gate};
    for (size_t i = 0; i < std::size(dst); ++i) std::memcpy(dst[i]->data, src[i]->data, src[i]->nbytes());
    for (auto [d, s] : {std::pair{&to.w1, &from.w1}, {&to.w3, &from.w3}, {&to.w2, &from.w2}}) {
        const int64_t per = s->numel() / s->shape[0];
        std::memcpy(d->f32(), s->f32() + e0 * per, sizeof(float) * size_t(n * per));
    }
}

// max |a - b| <= tol * max |b| (tol = 0: bit-identical). Prints the observed error on failure.
void expect_close(const float* a, const float* b, int64_t n, double tol, const std::string& what) {
    double diff = 0, ref = 0;
    int64_t first_diff = -1;
    for (int64_t i = 0; i < n; ++i) {
        double d = std::fabs(double(a[i]) - double(b[i]));
        if (d > 0 && first_diff < 0) first_diff = i;
        diff = std::max(diff, d);
        ref = std::max(ref, std::fabs(double(b[i])));
    }
    ASSERT_GT(ref, 0) << what << ": the reference is all zeros, the comparison would prove nothing";
    EXPECT_LE(diff, tol * ref) << what << " on rank " << world().rank() << ": max |diff| " << diff
                               << " = " << diff / ref << " of max |ref| " << ref << " (first at " << first_diff
                               << ")";
}

struct Case {
    std::string name;
    MoeLayerConfig cfg;
    int64_t T = 48;  // tokens per rank
};

MoeLayerConfig base_config() {
    MoeLayerConfig c;
    c.d_model = 32, c.d_ff = 40, c.n_experts = 8, c.top_k = 2;
    return c;
}

// `between` runs between the forward and the backward (another layer's traffic, say).
void run_case(const Case& k, MpiExchange& ex, const std::function<void()>& between = {}) {
    const MoeLayerConfig& c = k.cfg;
    dist::Comm comm = world();
    const int rank = comm.rank(), N = comm.size();
    const int64_t T = k.T, D = c.d_model;
    ex.reset_traffic();
    const int64_t L = ex.n_local_experts(), e0 = rank * L;
    ASSERT_EQ(L * N, c.n_experts);
    const MoeLossCoefs coefs{0.01f, 0.001f, 0};

    // The single-process reference on every rank's tokens; gradients summed over ranks.
    LayerState full(c, 0);
    moe_layer_params_init(full.p, 7);
    std::vector<float> y_ref, dx_ref;
    MoeLayerLosses losses_ref;
    for (int s = 0; s < N; ++s) {
        Tokens t = make_tokens(s, T, D);
        std::vector<float> y(size_t(T * D)), dx(size_t(T * D), 0.0f);
        MoeLayerCache cache;
        MoeLayerLosses losses;
        moe_layer_forward(view(y, T, D), losses, cache, c, full.p, view(t.x, T, D));
        moe_layer_backward(view(dx, T, D), full.g, view(t.dy, T, D), coefs, cache, c, full.p, view(t.x, T, D));
        if (s == rank) y_ref = y, dx_ref = dx, losses_ref = losses;
    }

    // Expert parallel: this rank's tokens, this rank's experts only.
    LayerState mine(c, L);
    copy_slice(mine.p, full.p, e0, L);
    Tokens t = make_tokens(rank, T, D);
    std::vector<float> y(size_t(T * D)), dx(size_t(T * D), 0.0f);
    MoeLayerCache cache;
    MoeLayerLosses losses;
    moe_layer_forward(view(y, T, D), losses, cache, c, mine.p, view(t.x, T, D), &ex);
    if (between) between();
    moe_layer_backward(view(dx, T, D), mine.g, view(t.dy, T, D), coefs, cache, c, mine.p, view(t.x, T, D), &ex);
    dist::dist_allreduce_replicated_grads(comm, mine.g);

    const double tol = 1e-5, tol_out = c.dtype == DType::bf16 ? 0 : tol;
    const std::string at = k.name + ": ";
    EXPECT_EQ(losses.aux, losses_ref.aux) << at << "the router sees the same tokens and weights";
    expect_close(y.data(), y_ref.data(), T * D, tol_out, at + "y");
    expect_close(dx.data(), dx_ref.data(), T * D, tol_out, at + "dx");
    for (auto [d, r, name] : {std::tuple{&mine.g.w1, &full.g.w1, "d w1"}, {&mine.g.w3, &full.g.w3, "d w3"},
                              {&mine.g.w2, &full.g.w2, "d w2"}}) {
        const int64_t per = r->numel() / c.n_experts;
        ASSERT_EQ(d->numel(), L * per) << at << name << " holds only this rank's experts";
        expect_close(d->f32(), r->f32() + e0 * per, L * per, tol, at + name);
    }
    expect_close(mine.g.router.f32(), full.g.router.f32(), full.g.router.numel(), tol, at + "d router");
    if (c.n_shared > 0) {
        expect_close(mine.g.ws1.f32(), full.g.ws1.f32(), full.g.ws1.numel(), tol, at + "d ws1");
        expect_close(mine.g.ws2.f32(), full.g.ws2.f32(), full.g.ws2.numel(), tol, at + "d ws2");
    }

    // Traffic: every row this rank dispatched is either remote or its own; what all ranks sent
    // remotely in the forward dispatch, they received and sent back in the combine.
    if (between) return;  // its traffic is in the counters too
    const ExchangeTraffic& tr = ex.traffic();
    const int fd = int(ExchangePhase::fwd_dispatch), fc = int(ExchangePhase::fwd_combine);
    const int bd = int(ExchangePhase::bwd_dispatch), bc = int(ExchangePhase::bwd_combine);
    EXPECT_EQ(tr.rows_remote[fd] + tr.rows_self[fd], cache.plan.n_assignments()) << at;
    EXPECT_EQ(tr.rows_remote[bd], tr.rows_remote[fd]) << at << "backward moves what forward moved";
    EXPECT_EQ(tr.rows_remote[bc], tr.rows_remote[fc]) << at;
    double sums[2] = {double(tr.rows_remote[fd]), double(tr.rows_remote[fc])};
    comm.allreduce_sum(sums, 2);
    EXPECT_EQ(sums[0], sums[1]) << at << "rows sent out come back";
}

TEST(DistLayer, DroplessTopKWithSharedExperts) {
    Case k{"dropless+shared", base_config()};
    k.cfg.n_shared = 1, k.cfg.d_ff_shared = 24;
    MpiExchange ex(world(), k.cfg.n_experts);
    run_case(k, ex);
    k.T = 17;  // a second step of another batch size through the same exchange
    run_case(k, ex);
}

TEST(DistLayer, CapacityFactorDrops) {
    Case k{"capacity 1.0", base_config()};
    k.cfg.capacity_factor = 1.0;  // C = ceil(T K / E) per rank: the busiest experts drop
    MpiExchange ex(world(), k.cfg.n_experts);
    run_case(k, ex);
}

TEST(DistLayer, Bf16ComputeWithGatedSharedExpert) {
    Case k{"bf16", base_config()};
    k.cfg.dtype = DType::bf16;
    k.cfg.n_shared = 1, k.cfg.d_ff_shared = 24, k.cfg.shared_gate = true;
    MpiExchange ex(world(), k.cfg.n_experts);
    run_case(k, ex);
}

TEST(DistLayer, AnotherLayersForwardBetweenForwardAndBackward) {
    // Two layers sharing one exchange (forward 1, forward 2, backward 2, backward 1), or an
    // evaluation forward in between: backward must still move rows by its own forward's layout.
    Case k{"interleaved", base_config()};
    dist::Comm comm = world();
    MpiExchange ex(comm, k.cfg.n_experts);
    LayerState other(k.cfg, ex.n_local_experts());
    moe_layer_params_init(other.p, 3);
    Tokens t = make_tokens(comm.rank() + 50, 16, k.cfg.d_model);
    std::vector<float> y(t.x.size());
    MoeLayerCache cache;
    MoeLayerLosses losses;
    run_case(k, ex, [&] {
        moe_layer_forward(view(y, 16, k.cfg.d_model), losses, cache, k.cfg, other.p, view(t.x, 16, k.cfg.d_model),
                          &ex);
    });
}

TEST(DistLayer, ExpertsNotDivisibleByRanksIsAClearError) {
    dist::Comm comm = world();
    const int N = comm.size();
    if (N == 1) GTEST_SKIP() << "every E is divisible by one rank";
    try {
        MpiExchange ex(comm, N + 1);
        FAIL() << "E = " << N + 1 << " over " << N << " ranks must be refused";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("n_experts = " + std::to_string(N + 1) + " is not divisible by the " +
                                             std::to_string(N) + " ranks"),
                  std::string::npos)
            << e.what();
    }
}

TEST(DistLayer, WeightsForTheWrongExpertCountAreRefused) {
    dist::Comm comm = world();
    if (comm.size() == 1) GTEST_SKIP() << "with one rank the local experts are all experts";
    MoeLayerConfig c = base_config();
    MpiExchange ex(comm, c.n_experts);
    LayerState s(c, 1);  // one expert, but this rank owns n_local = E / N > 1... unless N = E
    if (ex.n_local_experts() == 1) GTEST_SKIP() << "one expert per rank is the right count here";
    Tokens t = make_tokens(comm.rank(), 8, c.d_model);
    std::vector<float> y(t.x.size());
    MoeLayerCache cache;
    MoeLayerLosses losses;
    try {
        moe_layer_forward(view(y, 8, c.d_model), losses, cache, c, s.p, view(t.x, 8, c.d_model), &ex);
        FAIL() << "w1 with 1 expert must be refused";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("expected w1 to hold all E = 8 experts or this rank's " +
                                             std::to_string(ex.n_local_experts())),
                  std::string::npos)
            << e.what();
    }
}

TEST(DistGroups, SplitIntoExpertAndDataGroups) {
    dist::Comm comm = world();
    const int N = comm.size(), r = comm.rank();
    for (int G = 1; G <= N; ++G) {
        if (N % G != 0) {
            EXPECT_THROW(dist::dist_split_groups(comm, G), Error) << G << " does not divide " << N;
            continue;
        }
        dist::ParallelGroups g = dist::dist_split_groups(comm, G);
        EXPECT_EQ(g.experts.size(), G);
        EXPECT_EQ(g.experts.rank(), r % G) << "position inside the replica = expert shard";
        EXPECT_EQ(g.data.size(), N / G);
        EXPECT_EQ(g.data.rank(), r / G) << "replica index";
        // Sum the world ranks over each group: the members are who the layout says.
        float v[2] = {float(r), float(r)};
        g.experts.allreduce_sum(v, 1);
        g.data.allreduce_sum(v + 1, 1);
        const int replica = r / G, shard = r % G;
        float experts_sum = 0, data_sum = 0;
        for (int p = 0; p < G; ++p) experts_sum += float(replica * G + p);
        for (int q = 0; q < N / G; ++q) data_sum += float(q * G + shard);
        EXPECT_EQ(v[0], experts_sum);
        EXPECT_EQ(v[1], data_sum);

        // Gradients: the replicated ones over the world, the expert shard's over `data` only.
        MoeLayerConfig c = base_config();
        c.n_experts = 2 * G;  // two experts per shard
        LayerState s(c, 2);
        for (const TensorView* t : {&s.g.router, &s.g.w1, &s.g.w3, &s.g.w2})
            std::fill_n(t->f32(), t->numel(), float(r + 1));
        dist::dist_allreduce_replicated_grads(comm, s.g);
        dist::dist_allreduce_expert_grads(g.data, s.g);
        EXPECT_EQ(s.g.router.f32()[0], float(N * (N + 1) / 2)) << "sum of rank + 1 over the world";
        EXPECT_EQ(s.g.w2.f32()[s.g.w2.numel() - 1], data_sum + float(N / G)) << "over the shard's data group";
        EXPECT_EQ(s.g.w1.f32()[0], data_sum + float(N / G));
    }
}

class FailurePrinter : public ::testing::EmptyTestEventListener {
public:
    explicit FailurePrinter(int rank) : rank_(rank) {}
    void OnTestPartResult(const ::testing::TestPartResult& r) override {
        if (r.failed())
            std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank_, r.file_name() ? r.file_name() : "?",
                         r.line_number(), r.summary());
    }

private:
    int rank_;
};

}  // namespace

int main(int argc, char** argv) {
    dist::Session session(&argc, &argv);
    ::testing::InitGoogleTest(&argc, argv);
    // One progress log (rank 0's); the other ranks print their failures only.
    const int rank = dist::Comm::world().rank();
    if (rank != 0) {
        auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
        delete listeners.Release(listeners.default_result_printer());
        listeners.Append(new FailurePrinter(rank));
    }
    return RUN_ALL_TESTS();
}
