// The dispatch / combine boundary: an exchange that is not in place (as MPI expert parallelism
// will be) must give bit-identical results to the local one. CopyExchange moves the rows into
// its own buffers, scrambling the old contents first, so any read of a stale buffer shows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "moe/expert_exchange.h"
#include "moe/moe_layer.h"
#include "moe/rng.h"

using namespace moe;

namespace {

class CopyExchange final : public ExpertExchange {
public:
    int64_t expert_begin(const RoutePlan&) const override { return 0; }
    int64_t expert_end(const RoutePlan& plan) const override { return plan.n_experts; }
    bool in_place() const override { return false; }
    float* to_experts(const RoutePlan& plan, float* rows, int64_t D,
                      std::vector<int64_t>& local_offsets) override {
        local_offsets = plan.expert_offsets;
        size_t n = size_t(plan.n_assignments() * D);
        buffer_.assign(n + 16, std::numeric_limits<float>::quiet_NaN());
        std::memcpy(buffer_.data(), rows, n * 4);
        ++calls;
        return buffer_.data();
    }
    void from_experts(const RoutePlan& plan, const float* local_rows, int64_t D,
                      float* rows) override {
        std::memcpy(rows, local_rows, size_t(plan.n_assignments() * D) * 4);
        ++calls;
    }
    int calls = 0;

private:
    std::vector<float> buffer_;
};

}  // namespace

TEST(ExpertExchange, NotInPlaceExchangeGivesIdenticalResults) {
    for (DType dtype : {DType::f32, DType::bf16}) {
        MoeLayerConfig c;
        c.d_model = 16, c.d_ff = 24, c.n_experts = 6, c.top_k = 2, c.n_shared = 1, c.d_ff_shared = 8;
        c.capacity_factor = 1.0;
        c.dtype = dtype;
        const int64_t T = 40;
        auto run = [&](ExpertExchange* ex, std::vector<float>& y, std::vector<float>& dx,
                       std::vector<float>& dw1) {
            Arena pa, ga;
            auto ps = moe_layer_params_reserve(pa, c);
            auto gs = moe_layer_params_reserve(ga, c);
            pa.allocate();
            ga.allocate();
            MoeLayerParams p = moe_layer_params_point(pa, ps), g = moe_layer_params_point(ga, gs);
            moe_layer_params_init(p, 11);
            Buffer x(DType::f32, {T, c.d_model}), dy(DType::f32, {T, c.d_model});
            Buffer yb(DType::f32, {T, c.d_model}), dxb(DType::f32, {T, c.d_model});
            Rng r(12);
            r.fill_normal(x.f32(), x.numel(), 0, 1);
            r.fill_normal(dy.f32(), dy.numel(), 0, 1);
            MoeLayerCache cache;
            MoeLayerLosses losses;
            moe_layer_forward(yb.view(), losses, cache, c, p, x.view(), ex);
            moe_layer_backward(dxb.view(), g, dy.view(), {0.01f, 0.001f}, cache, c, p, x.view(), ex);
            y.assign(yb.f32(), yb.f32() + yb.numel());
            dx.assign(dxb.f32(), dxb.f32() + dxb.numel());
            dw1.assign(g.w1.f32(), g.w1.f32() + g.w1.numel());
        };
        std::vector<float> y1, dx1, w1, y2, dx2, w2;
        run(nullptr, y1, dx1, w1);
        CopyExchange copy;
        run(&copy, y2, dx2, w2);
        EXPECT_EQ(copy.calls, 4) << "forward and backward each dispatch and combine once";
        EXPECT_EQ(y1, y2) << dtype_name(dtype);
        EXPECT_EQ(dx1, dx2) << dtype_name(dtype);
        EXPECT_EQ(w1, w2) << dtype_name(dtype);
    }
}
