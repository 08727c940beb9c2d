// Multi-head latent attention (include/moe/mla.h) against transformers' own DeepseekV2Attention /
// DeepseekV3Attention (tools/gen_mla_fixtures.py: tiny random models, the layer-0 attention's
// input and output for 12 causal positions): the whole sequence at once, one position at a time
// and in chunks, on the naive and the absorbed path; the two paths against each other beyond the
// fixture; quantized weights against their dequantized values; and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "layer_fixture.h"
#include "moe/error.h"
#include "moe/mla.h"
#include "moe/quant.h"
#include "moe/rng.h"
#include "moe/safetensors.h"

using namespace moe;
using moe::test::error_of;
using moe::test::scaled_max_error;

namespace {

// f32 against transformers' f32, relative to max |out|.
constexpr double kTol = 1e-5;
const char* const kCases[] = {"v2_lite", "v2_yarn", "v3_yarn", "v3_half"};

const char* path_name(MlaPath p) {
    return p == MlaPath::naive ? "naive" : p == MlaPath::absorbed ? "absorbed" : "automatic";
}

// The fixture's configuration and weights as f32 views; set_type() re-stores the matrices in a
// ggml type (and dequantized(), their f32 values back).
struct MlaFixture {
    SafetensorsFile file;
    MlaConfig c;
    int64_t T = 0;
    std::vector<float> x, out, inv_freq, q_a_norm, kv_a_norm;
    std::vector<std::vector<uint8_t>> store;  // bytes of the matrices, in their current type
    MlaWeights w;

    explicit MlaFixture(const std::string& name)
        : file(std::string(MOE_FIXTURE_DIR) + "/mla_" + name + ".safetensors") {
        auto i = [&](const char* k) { return std::stoll(file.meta(k)); };
        auto d = [&](const char* k) { return std::stod(file.meta(k)); };
        T = i("T");
        c.d_model = i("hidden_size");
        c.n_heads = i("num_attention_heads");
        c.q_lora_rank = i("q_lora_rank");
        c.kv_lora_rank = i("kv_lora_rank");
        c.qk_nope_head_dim = i("qk_nope_head_dim");
        c.qk_rope_head_dim = i("qk_rope_head_dim");
        c.v_head_dim = i("v_head_dim");
        c.rope_theta = d("rope_theta");
        c.max_position_embeddings = i("max_position_embeddings");
        c.rope_interleave = i("rope_interleave") != 0;
        c.softmax_mscale = file.meta("family") == "v3";
        c.yarn.factor = d("yarn_factor");
        c.yarn.original_max_position_embeddings = i("yarn_original_max_position_embeddings");
        c.yarn.beta_fast = d("yarn_beta_fast");
        c.yarn.beta_slow = d("yarn_beta_slow");
        c.yarn.mscale = d("yarn_mscale");
        c.yarn.mscale_all_dim = d("yarn_mscale_all_dim");
        x = file.f32("x");
        out = file.f32("out");
        inv_freq = file.f32("inv_freq");
        kv_a_norm = file.f32("kv_a_layernorm.weight");
        w.kv_a_norm = kv_a_norm.data();
        if (c.q_lora_rank > 0) {
            q_a_norm = file.f32("q_a_layernorm.weight");
            w.q_a_norm = q_a_norm.data();
        }
        set_type(GgmlType::f32);
    }

    std::vector<const char*> names() const {
        if (c.q_lora_rank > 0) return {"q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"};
        return {"q_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"};
    }
    QMatrix& slot(const std::string& n) {
        if (n == "q_proj") return w.q_proj;
        if (n == "q_a_proj") return w.q_a_proj;
        if (n == "q_b_proj") return w.q_b_proj;
        if (n == "kv_a_proj_with_mqa") return w.kv_a_proj;
        if (n == "kv_b_proj") return w.kv_b_proj;
        return w.o_proj;
    }
    // Every matrix stored in `type`, from the fixture's f32 values.
    void set_type(GgmlType type) {
        store.clear();
        store.reserve(8);
        for (const char* n : names()) {
            const std::string key = std::string(n) + ".weight";
            const std::vector<int64_t> shape = file.shape(key);
            const std::vector<float> v = file.f32(key);
            const int64_t rows = shape[0], cols = shape[1], rb = ggml_row_bytes(type, cols);
            store.emplace_back(size_t(rows * rb));
            for (int64_t r = 0; r < rows; ++r) quantize_row(type, v.data() + r * cols, store.back().data() + r * rb, cols);
            slot(n) = QMatrix{type, rows, cols, store.back().data()};
        }
    }
    // Every matrix replaced by the f32 values of its current type.
    void dequantize_all() {
        std::vector<std::vector<uint8_t>> f32s;
        f32s.reserve(8);
        for (const char* n : names()) {
            QMatrix& m = slot(n);
            f32s.emplace_back(size_t(m.rows * m.cols * 4));
            float* p = reinterpret_cast<float*>(f32s.back().data());
            for (int64_t r = 0; r < m.rows; ++r) dequantize_row(m.type, m.row(r), p + r * m.cols, m.cols);
            m = QMatrix{GgmlType::f32, m.rows, m.cols, p};
        }
        store = std::move(f32s);
    }
};

// The outputs of x's rows fed in chunks of the given sizes (cycled) from position 0.
std::vector<float> run_chunks(const MlaConfig& c, const MlaWeights& w, const std::vector<float>& x, int64_t T,
                              const std::vector<int64_t>& chunks, MlaPath path, int64_t max_ctx = 0) {
    MlaAttention a(c, max_ctx > 0 ? max_ctx : T);
    QMatmulScratch s;
    const int64_t D = c.d_model;
    std::vector<float> out(size_t(T * D));
    for (int64_t pos = 0, k = 0; pos < T; ++k) {
        const int64_t n = std::min(chunks[size_t(k) % chunks.size()], T - pos);
        a.forward(w, x.data() + pos * D, out.data() + pos * D, n, pos, s, path);
        pos += n;
    }
    return out;
}

}  // namespace

TEST(Mla, RopeAndScalesMatchTransformers) {
    for (const char* name : kCases) {
        SCOPED_TRACE(name);
        MlaFixture f(name);
        const std::vector<float> inv = mla_rope_inv_freq(f.c);
        ASSERT_EQ(inv.size(), f.inv_freq.size());
        for (size_t j = 0; j < inv.size(); ++j) EXPECT_NEAR(inv[j], f.inv_freq[j], 1e-6 * f.inv_freq[j]) << "j " << j;
        EXPECT_NEAR(mla_rope_attention_factor(f.c), std::stod(f.file.meta("attention_scaling")), 1e-12);
        EXPECT_NEAR(mla_softmax_scale(f.c), std::stod(f.file.meta("softmax_scale")), 1e-12);
    }
}

// (a) all 12 positions at once, on every path.
TEST(Mla, PrefillMatchesTransformers) {
    for (const char* name : kCases) {
        MlaFixture f(name);
        for (MlaPath p : {MlaPath::automatic, MlaPath::naive, MlaPath::absorbed}) {
            SCOPED_TRACE(std::string(name) + " " + path_name(p));
            const std::vector<float> out = run_chunks(f.c, f.w, f.x, f.T, {f.T}, p);
            const double err = scaled_max_error(out.data(), f.out);
            std::printf("[mla] %-8s prefill %-9s max|err| / max|out| = %.3g\n", name, path_name(p), err);
            EXPECT_LT(err, kTol);
        }
    }
}

// (b) one position at a time (decode), and in chunks, on every path: the cache carries the rest.
TEST(Mla, DecodeAndChunksMatchTransformers) {
    const std::vector<std::vector<int64_t>> schedules = {{1}, {5, 4, 3}, {2, 7}, {3}};
    for (const char* name : kCases) {
        MlaFixture f(name);
        for (MlaPath p : {MlaPath::automatic, MlaPath::naive, MlaPath::absorbed})
            for (const auto& chunks : schedules) {
                SCOPED_TRACE(std::string(name) + " " + path_name(p) + " first chunk " + std::to_string(chunks[0]));
                const std::vector<float> out = run_chunks(f.c, f.w, f.x, f.T, chunks, p);
                const double err = scaled_max_error(out.data(), f.out);
                if (chunks.size() == 1 && chunks[0] == 1)
                    std::printf("[mla] %-8s decode  %-9s max|err| / max|out| = %.3g\n", name, path_name(p), err);
                EXPECT_LT(err, kTol);
            }
    }
}

// The automatic choice: absorbed for a decode step, naive for a prompt from an empty cache.
TEST(Mla, AutomaticPathChoice) {
    MlaFixture f("v3_yarn");
    MlaAttention a(f.c, 64);
    EXPECT_EQ(a.choose_path(1, 11), MlaPath::absorbed);
    EXPECT_EQ(a.choose_path(12, 0), MlaPath::naive);
    // DeepSeek-V3's sizes: decode absorbed as soon as there is context (at the first position
    // the two cost the same), a 4096-token prompt naive.
    MlaConfig v3;
    v3.d_model = 7168, v3.n_heads = 128, v3.q_lora_rank = 1536, v3.kv_lora_rank = 512;
    v3.qk_nope_head_dim = 128, v3.qk_rope_head_dim = 64, v3.v_head_dim = 128;
    MlaAttention big(v3, 1);
    EXPECT_EQ(big.choose_path(1, 8), MlaPath::absorbed);
    EXPECT_EQ(big.choose_path(4, 4000), MlaPath::absorbed);
    EXPECT_EQ(big.choose_path(4096, 0), MlaPath::naive);
}

// Beyond the fixture: a longer random sequence (past 12 positions, cache larger than the
// sequence), naive and absorbed and mixed chunkings agree with each other, and the cache rows
// are the same whichever path filled them.
TEST(Mla, AbsorbedEqualsNaive) {
    for (const char* name : kCases) {
        SCOPED_TRACE(name);
        MlaFixture f(name);
        const int64_t T = 37, D = f.c.d_model;
        std::vector<float> x(size_t(T * D));
        Rng rng(5);
        rng.fill_normal(x.data(), T * D, 0.0f, 1.0f);
        const std::vector<float> naive = run_chunks(f.c, f.w, x, T, {T}, MlaPath::naive, 64);
        const std::vector<float> absorbed = run_chunks(f.c, f.w, x, T, {T}, MlaPath::absorbed, 64);
        const std::vector<float> decode = run_chunks(f.c, f.w, x, T, {1}, MlaPath::absorbed, 64);
        const std::vector<float> mixed = run_chunks(f.c, f.w, x, T, {6, 1, 1, 9}, MlaPath::automatic, 64);
        EXPECT_LT(scaled_max_error(absorbed.data(), naive), kTol);
        EXPECT_LT(scaled_max_error(decode.data(), naive), kTol);
        EXPECT_LT(scaled_max_error(mixed.data(), naive), kTol);
        // The two paths must not agree by accident of both being wrong in the same way: the
        // output depends on the causal context (a changed first position changes the last).
        std::vector<float> x2 = x;
        x2[0] += 1.0f;
        const std::vector<float> other = run_chunks(f.c, f.w, x2, T, {T}, MlaPath::absorbed, 64);
        EXPECT_GT(std::fabs(other[size_t((T - 1) * D)] - absorbed[size_t((T - 1) * D)]), 1e-6f);
    }
}

// The cache: (L + R) floats a position; rows are the same for every path and chunking (up to the
// GEMM's rounding: a batch and a single row sum in different orders); a rewind overwrites.
TEST(Mla, CacheLayoutAndRewind) {
    MlaFixture f("v3_yarn");
    const int64_t L = f.c.kv_lora_rank, R = f.c.qk_rope_head_dim, D = f.c.d_model;
    MlaAttention a(f.c, 20), b(f.c, 20);
    EXPECT_EQ(a.cache_bytes(), 20 * (L + R) * 4);
    QMatmulScratch s;
    std::vector<float> out(size_t(f.T * D)), out2(size_t(f.T * D));
    a.forward(f.w, f.x.data(), out.data(), f.T, 0, s, MlaPath::naive);
    for (int64_t t = 0; t < f.T; ++t) b.forward(f.w, f.x.data() + t * D, out2.data() + t * D, 1, t, s, MlaPath::absorbed);
    EXPECT_EQ(a.positions(), f.T);
    for (int64_t t = 0; t < f.T; ++t)
        for (int64_t j = 0; j < L + R; ++j) ASSERT_NEAR(a.cache_row(t)[j], b.cache_row(t)[j], 1e-5) << "t " << t << " j " << j;
    // Rewind to position 5 and feed positions 5.. again: the same outputs as the first time.
    std::fill(out2.begin(), out2.end(), 0.0f);
    a.forward(f.w, f.x.data() + 5 * D, out2.data() + 5 * D, f.T - 5, 5, s);
    for (int64_t i = 5 * D; i < f.T * D; ++i) EXPECT_NEAR(out2[size_t(i)], out[size_t(i)], 1e-5) << i;
    // Rewind to 3 with other inputs: positions 3.. follow the new inputs, not the old cache.
    std::vector<float> y(static_cast<size_t>(D), 0.5f), o3(static_cast<size_t>(D));
    a.forward(f.w, y.data(), o3.data(), 1, 3, s);
    EXPECT_EQ(a.positions(), 4);
    std::vector<float> x4(f.x.begin(), f.x.begin() + 3 * D);
    x4.insert(x4.end(), y.begin(), y.end());
    const std::vector<float> fresh = run_chunks(f.c, f.w, x4, 4, {4}, MlaPath::naive);
    for (int64_t j = 0; j < D; ++j) EXPECT_NEAR(o3[size_t(j)], fresh[size_t(3 * D + j)], 1e-5);
}

// kv_b_proj's key half given pre-transposed (llama.cpp's attn_k_b), in f32 and quantized.
TEST(Mla, PretransposedKeyWeights) {
    for (const char* name : {"v2_yarn", "v3_yarn"}) {
        SCOPED_TRACE(name);
        MlaFixture f(name);
        std::vector<float> k_b = mla_k_b_from_kv_b(f.c, f.w.kv_b_proj);
        const int64_t H = f.c.n_heads, L = f.c.kv_lora_rank, Nd = f.c.qk_nope_head_dim;
        // Spot check of the layout: k_b[h L + l, j] = kv_b[h (Nd + Vd) + j, l].
        const float* kv_b = static_cast<const float*>(f.w.kv_b_proj.data);
        const int64_t h = H - 1, l = 3, j = Nd - 2, kd = Nd + f.c.v_head_dim;
        EXPECT_EQ(k_b[size_t((h * L + l) * Nd + j)], kv_b[(h * kd + j) * L + l]);
        MlaWeights w = f.w;
        w.k_b = QMatrix{GgmlType::f32, H * L, Nd, k_b.data()};
        for (const std::vector<int64_t>& chunks : {std::vector<int64_t>{f.T}, std::vector<int64_t>{1}}) {
            const std::vector<float> out = run_chunks(f.c, w, f.x, f.T, chunks, MlaPath::absorbed);
            EXPECT_LT(scaled_max_error(out.data(), f.out), kTol);
        }
        // bf16 k_b against the absorbed result with its dequantized values.
        std::vector<uint8_t> kb16(size_t(H * L * ggml_row_bytes(GgmlType::bf16, Nd)));
        for (int64_t r = 0; r < H * L; ++r)
            quantize_row(GgmlType::bf16, k_b.data() + r * Nd, kb16.data() + r * ggml_row_bytes(GgmlType::bf16, Nd), Nd);
        std::vector<float> kb_deq(k_b.size());
        for (int64_t r = 0; r < H * L; ++r)
            dequantize_row(GgmlType::bf16, kb16.data() + r * ggml_row_bytes(GgmlType::bf16, Nd), kb_deq.data() + r * Nd, Nd);
        MlaWeights wq = f.w, wd = f.w;
        wq.k_b = QMatrix{GgmlType::bf16, H * L, Nd, kb16.data()};
        wd.k_b = QMatrix{GgmlType::f32, H * L, Nd, kb_deq.data()};
        const std::vector<float> oq = run_chunks(f.c, wq, f.x, f.T, {1}, MlaPath::absorbed);
        const std::vector<float> od = run_chunks(f.c, wd, f.x, f.T, {1}, MlaPath::absorbed);
        EXPECT_LT(scaled_max_error(oq.data(), od), kTol);
    }
}

// kv_b_proj as its halves only (a deepseek2 GGUF's attn_k_b / attn_v_b): the absorbed path gives
// transformers' output in any chunking, automatic takes it, naive is refused (it needs kv_b_proj).
TEST(Mla, SplitKeyAndValueWeightsWithoutKvB) {
    for (const char* name : {"v2_lite", "v3_yarn"}) {
        SCOPED_TRACE(name);
        MlaFixture f(name);
        const int64_t H = f.c.n_heads, L = f.c.kv_lora_rank, Nd = f.c.qk_nope_head_dim, Vd = f.c.v_head_dim;
        const std::vector<float> k_b = mla_k_b_from_kv_b(f.c, f.w.kv_b_proj);
        const float* kv_b = static_cast<const float*>(f.w.kv_b_proj.data);
        std::vector<float> v_b(size_t(H * Vd * L));
        for (int64_t h = 0; h < H; ++h)
            std::copy_n(kv_b + (h * (Nd + Vd) + Nd) * L, Vd * L, v_b.data() + h * Vd * L);
        // mla_kv_b_set_keys undoes mla_k_b_from_kv_b.
        std::vector<float> keys(size_t(H * (Nd + Vd) * L), 0.0f);
        mla_kv_b_set_keys(f.c, k_b.data(), keys.data());
        for (int64_t h = 0; h < H; ++h)
            for (int64_t r = 0; r < Nd * L; ++r) ASSERT_EQ(keys[size_t(h * (Nd + Vd) * L + r)], kv_b[h * (Nd + Vd) * L + r]);
        MlaWeights w = f.w;
        w.kv_b_proj = QMatrix{};
        w.k_b = QMatrix{GgmlType::f32, H * L, Nd, k_b.data()};
        w.v_b = QMatrix{GgmlType::f32, H * Vd, L, v_b.data()};
        for (const std::vector<int64_t>& chunks :
             {std::vector<int64_t>{f.T}, std::vector<int64_t>{1}, std::vector<int64_t>{3, 2}})
            EXPECT_LT(scaled_max_error(run_chunks(f.c, w, f.x, f.T, chunks, MlaPath::automatic).data(), f.out), kTol);
        EXPECT_NE(error_of([&] { run_chunks(f.c, w, f.x, f.T, {f.T}, MlaPath::naive); }).find("lack (k_b / v_b only)"),
                  std::string::npos);
        w.v_b = QMatrix{};
        EXPECT_NE(error_of([&] { run_chunks(f.c, w, f.x, f.T, {f.T}, MlaPath::absorbed); })
                      .find("kv_b_proj is missing, and k_b and v_b (its halves) are not both given"),
                  std::string::npos);
    }
}

// Weights stored as bf16 / Q8_0 (the qmatmul path a GGUF takes): a prompt (n > 4: dequantize +
// GEMM) equals the f32 computation with the dequantized weights; a decode step (dot kernels on
// quantized activations for Q8_0) stays close; both stay near transformers' f32 output.
TEST(Mla, QuantizedWeights) {
    struct Case {
        GgmlType type;
        double decode_tol, ref_tol;
    };
    // bf16 activations stay f32; Q8_0 quantizes them (8 bits, blocks of 32) on the decode path.
    const Case types[] = {{GgmlType::bf16, kTol, 2e-2}, {GgmlType::q8_0, 2e-2, 4e-2}};
    for (const char* name : kCases) {
        for (const Case& tc : types) {
            SCOPED_TRACE(std::string(name) + " " + ggml_type_name(tc.type));
            MlaFixture q(name), d(name);
            q.set_type(tc.type);
            d.set_type(tc.type);
            d.dequantize_all();
            for (MlaPath p : {MlaPath::naive, MlaPath::absorbed}) {
                const std::vector<float> pq = run_chunks(q.c, q.w, q.x, q.T, {q.T}, p);
                const std::vector<float> pd = run_chunks(d.c, d.w, d.x, d.T, {d.T}, p);
                const std::vector<float> dq = run_chunks(q.c, q.w, q.x, q.T, {1}, p);
                const double e_prefill = scaled_max_error(pq.data(), pd), e_decode = scaled_max_error(dq.data(), pd);
                const double e_ref = scaled_max_error(dq.data(), q.out);
                std::printf("[mla] %-8s %-4s %-8s prefill vs dequantized %.3g, decode vs dequantized %.3g, decode vs f32 "
                            "transformers %.3g\n",
                            name, ggml_type_name(tc.type), path_name(p), e_prefill, e_decode, e_ref);
                EXPECT_LT(e_prefill, kTol);
                EXPECT_LT(e_decode, tc.decode_tol);
                EXPECT_LT(e_ref, tc.ref_tol);
            }
        }
    }
}

// (c) bad configurations and inputs give "[mla] ..." errors naming the problem.
TEST(Mla, BadConfigErrors) {
    const MlaConfig good = MlaFixture("v3_yarn").c;
    auto msg = [](const MlaConfig& c) { return error_of([&] { mla_validate(c); }); };
    EXPECT_EQ(msg(good), "");
    struct Bad {
        void (*edit)(MlaConfig&);
        const char* expect;
    };
    const Bad bad[] = {
        {[](MlaConfig& c) { c.d_model = 0; }, "hidden_size must be > 0"},
        {[](MlaConfig& c) { c.n_heads = -1; }, "num_attention_heads must be > 0"},
        {[](MlaConfig& c) { c.kv_lora_rank = 0; }, "kv_lora_rank must be > 0"},
        {[](MlaConfig& c) { c.qk_nope_head_dim = 0; }, "qk_nope_head_dim must be > 0"},
        {[](MlaConfig& c) { c.v_head_dim = 0; }, "v_head_dim must be > 0"},
        {[](MlaConfig& c) { c.qk_rope_head_dim = 7; }, "qk_rope_head_dim must be even"},
        {[](MlaConfig& c) { c.q_lora_rank = -2; }, "q_lora_rank must be >= 0"},
        {[](MlaConfig& c) { c.rope_theta = 0; }, "rope_theta must be > 0"},
        {[](MlaConfig& c) { c.lora_norm_eps = 0; }, "eps must be > 0"},
        {[](MlaConfig& c) { c.yarn.factor = -4; }, "rope_scaling.factor must be > 0"},
        {[](MlaConfig& c) { c.yarn.original_max_position_embeddings = 0, c.max_position_embeddings = 0; },
         "yarn rope_scaling needs original_max_position_embeddings"},
        {[](MlaConfig& c) { c.yarn.beta_fast = -1; }, "beta_fast and beta_slow must be >= 0"},
        {[](MlaConfig& c) { c.softmax_scale = -0.25; }, "the softmax scale must be >= 0"},
    };
    for (const Bad& b : bad) {
        MlaConfig c = good;
        b.edit(c);
        const std::string m = msg(c);
        EXPECT_NE(m.find("[mla]"), std::string::npos) << m;
        EXPECT_NE(m.find(b.expect), std::string::npos) << "got: " << m << "\nexpected: " << b.expect;
        EXPECT_NE(error_of([&] { MlaAttention a(c, 8); }), "");
    }
    EXPECT_NE(error_of([&] { MlaAttention a(good, 0); }).find("context size must be > 0"), std::string::npos);
}

TEST(Mla, BadInputErrors) {
    MlaFixture f("v3_yarn");
    const int64_t D = f.c.d_model;
    MlaAttention a(f.c, 8);
    QMatmulScratch s;
    std::vector<float> out(size_t(f.T * D));
    auto fwd = [&](const MlaWeights& w, int64_t n, int64_t pos) {
        return error_of([&] { a.forward(w, f.x.data(), out.data(), n, pos, s); });
    };
    EXPECT_NE(fwd(f.w, 9, 0).find("the context is full: 0 + 9 positions > 8"), std::string::npos) << fwd(f.w, 9, 0);
    EXPECT_NE(fwd(f.w, 0, 0).find("no positions"), std::string::npos);
    EXPECT_NE(fwd(f.w, 1, 2).find("position 2 would skip cached positions: 0 are held"), std::string::npos);
    EXPECT_EQ(fwd(f.w, 6, 0), "");
    EXPECT_NE(fwd(f.w, 3, 6).find("the context is full: 6 + 3 positions > 8"), std::string::npos);
    MlaWeights w = f.w;
    w.kv_b_proj.rows -= 1;
    EXPECT_NE(fwd(w, 1, 0).find("kv_b_proj is (127, 64), expected (H (qk_nope + v_head), kv_lora_rank) = (128, 64)"),
              std::string::npos)
        << fwd(w, 1, 0);
    w = f.w;
    w.q_a_norm = nullptr;
    EXPECT_NE(fwd(w, 1, 0).find("q_a_layernorm is missing"), std::string::npos);
    w = f.w;
    w.o_proj.data = nullptr;
    EXPECT_NE(fwd(w, 1, 0).find("o_proj has no data"), std::string::npos);
    w = f.w;
    w.kv_a_proj.type = GgmlType::q4_1;  // a type without a product (bytes irrelevant: rejected first)
    EXPECT_NE(fwd(w, 1, 0).find("kv_a_proj_with_mqa is Q4_1, which has no matrix product"), std::string::npos)
        << fwd(w, 1, 0);
    w = f.w;
    w.k_b = QMatrix{GgmlType::f32, 3, 3, f.x.data()};
    EXPECT_NE(fwd(w, 1, 0).find("k_b is (3, 3)"), std::string::npos);
    MlaFixture lite("v2_lite");
    MlaAttention b(lite.c, 4);
    w = lite.w;
    w.q_proj = QMatrix{};
    EXPECT_NE(error_of([&] { b.forward(w, lite.x.data(), out.data(), 1, 0, s); }).find("q_proj has no data"),
              std::string::npos);
}
