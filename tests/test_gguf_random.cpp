// `moe convert --random` (gguf_write_random_model) and the lazy tensors of GgufWriter: a random
// "tiny" model loads with gguf_model_config / gguf_model_load_weights, has the tensor types of
// `moe convert` and the statistics of model_params_init (norms 1, embedding N(0, 1), matrices
// N(0, 1 / sqrt(fan_in))); a seed gives the same bytes whatever the threads; a failing lazy
// tensor leaves no file; the shape table has the sizes it claims; bad input fails clearly.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "layer_fixture.h"
#include "model_fixture.h"
#include "moe/error.h"
#include "moe/gguf_model.h"
#include "moe/model_shapes.h"

using namespace moe;
using moe::test::error_of;
using moe::test::TestModel;

namespace {

// A file per test and name: ctest runs the tests in parallel processes.
std::string temp_path(const std::string& name) {
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    return (std::filesystem::temp_directory_path() / ("moe_test_random_" + test + "_" + name)).string();
}

std::string file_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

ModelConfig tiny() { return model_shape_config(*find_model_shape("tiny")); }

struct Stats {
    double mean = 0, std = 0;
};
Stats stats(const std::vector<float>& v) {
    double s = 0, s2 = 0;
    for (float x : v) s += x, s2 += double(x) * x;
    const double n = double(v.size()), mean = s / n;
    return {mean, std::sqrt(s2 / n - mean * mean)};
}

}  // namespace

TEST(GgufRandom, TinyModelLoadsWithConvertsTypesAndInitStatistics) {
    const ModelConfig c = tiny();
    for (GgmlType type : {GgmlType::f32, GgmlType::f16, GgmlType::bf16, GgmlType::q8_0, GgmlType::q4_0}) {
        SCOPED_TRACE(ggml_type_name(type));
        const std::string path = temp_path(std::string(ggml_type_name(type)) + ".gguf");
        GgufRandomOptions o;
        o.outtype = type;
        o.seed = 7;
        o.name = "tiny-random";
        o.context_length = 256;
        int64_t calls = 0, last_done = 0, last_total = 0;
        o.progress = [&](int64_t done, int64_t total) {
            EXPECT_GT(done, last_done);
            ++calls, last_done = done, last_total = total;
        };
        EXPECT_TRUE(gguf_write_random_model(path, c, o).empty());  // every row a whole number of blocks
        EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

        GgufFile f(path);
        ModelFileInfo info;
        const ModelConfig g = gguf_model_config(f, &info);
        EXPECT_EQ(g.vocab_size, 256);
        EXPECT_EQ(g.num_layers, 2);
        EXPECT_EQ(g.hidden(), 64);
        EXPECT_EQ(g.attn.n_heads, 4);
        EXPECT_EQ(g.attn.n_kv_heads, 2);
        EXPECT_EQ(g.moe.n_experts, 4);
        EXPECT_EQ(g.moe.top_k, 2);
        EXPECT_EQ(g.moe.d_ff, 64);
        EXPECT_FALSE(g.tie_word_embeddings);
        EXPECT_EQ(info.max_position_embeddings, 256);
        EXPECT_EQ(f.get<std::string>("general.architecture"), "llama");
        EXPECT_EQ(f.get<std::string>("general.name"), "tiny-random");
        EXPECT_EQ(f.get<uint32_t>("general.file_type"), gguf_file_type(type));
        EXPECT_EQ(f.get<std::string>("tokenizer.ggml.model"), "no_vocab");
        EXPECT_FALSE(gguf_has_tokenizer(f));

        // The names, order, shapes and types `moe convert` gives the same config.
        const std::vector<GgufTensorSpec> specs = gguf_model_tensor_specs(c);
        ASSERT_EQ(f.tensors().size(), specs.size());
        int64_t numel = 0;
        for (size_t i = 0; i < specs.size(); ++i) {
            const GgufTensorSpec& s = specs[i];
            const GgufTensor& t = f.tensors()[i];
            EXPECT_EQ(t.name, s.name);
            EXPECT_EQ(t.shape(), s.shape) << s.name;
            const bool f32 = s.shape.size() == 1 || s.keep_f32;
            EXPECT_EQ(t.type, f32 ? GgmlType::f32 : type) << s.name;
            const std::vector<float> v = f.dequantize(s.name);
            numel += int64_t(v.size());
            if (s.shape.size() == 1) {  // norms
                EXPECT_EQ(v, std::vector<float>(v.size(), 1.0f)) << s.name;
                continue;
            }
            const double want = s.name == "token_embd.weight" ? 1.0 : 1.0 / std::sqrt(double(s.shape.back()));
            const Stats st = stats(v);
            // Sampling error of the std ~ 1 / sqrt(2 n) (n >= 4096 here: 1.1 %); Q4_0's rounding
            // (a step of max / 8 per block of 32) adds about 1 %.
            EXPECT_NEAR(st.std / want, 1.0, 0.06) << s.name;
            EXPECT_LT(std::fabs(st.mean), 5 * want / std::sqrt(double(v.size()))) << s.name;
        }
        EXPECT_EQ(last_done, numel);
        EXPECT_EQ(last_total, numel);
        EXPECT_GE(calls, int64_t(specs.size()));

        TestModel m(g);
        gguf_model_load_weights(f, g, m.p);
        for (float x : m.logits({1, 2, 3, 200})) ASSERT_TRUE(std::isfinite(x));
        std::filesystem::remove(path);
    }
}

TEST(GgufRandom, SameSeedSameBytesWhateverTheThreads) {
    const ModelConfig c = tiny();
    GgufRandomOptions o;
    o.outtype = GgmlType::q4_0;
    o.seed = 3;
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    gguf_write_random_model(temp_path("t1.gguf"), c, o);
    omp_set_num_threads(3);
    gguf_write_random_model(temp_path("t3.gguf"), c, o);
    o.seed = 4;
    gguf_write_random_model(temp_path("s4.gguf"), c, o);
    omp_set_num_threads(threads);
    const std::string a = file_bytes(temp_path("t1.gguf"));
    EXPECT_GT(a.size(), 80000u);  // 156480 values at 18 bytes per 32
    EXPECT_EQ(a, file_bytes(temp_path("t3.gguf")));
    EXPECT_NE(a, file_bytes(temp_path("s4.gguf")));
    for (const char* n : {"t1.gguf", "t3.gguf", "s4.gguf"}) std::filesystem::remove(temp_path(n));
}

TEST(GgufRandom, ShapeTableHasTheClaimedSizes) {
    auto params = [](const char* name) {
        int64_t n = 0;
        for (const GgufTensorSpec& s : gguf_model_tensor_specs(model_shape_config(*find_model_shape(name)))) {
            int64_t k = 1;
            for (int64_t d : s.shape) k *= d;
            n += k;
        }
        return n;
    };
    EXPECT_EQ(params("mixtral-mini"), 640'238'592);
    EXPECT_EQ(params("olmoe-shape"), 6'844'123'136);  // 27.4 GB in f32: more than this 24 GB machine
    for (const ModelShape& s : kModelShapes) {
        const ModelConfig c = model_shape_config(s);
        EXPECT_NO_THROW(model_validate(c)) << s.name;
        EXPECT_TRUE(model_is_mixtral(c)) << s.name;
    }
    EXPECT_EQ(find_model_shape("nope"), nullptr);
    EXPECT_EQ(model_shape_names(), "mixtral-mini, olmoe-shape, tiny");
}

TEST(GgufRandom, BadInputFailsBeforeWritingAnything) {
    const std::string path = temp_path("bad.gguf");
    GgufRandomOptions o;
    ModelConfig c = tiny();
    c.decoder_sparse_step = 2;  // dense / MoE interleave: not Mixtral-style
    EXPECT_NE(error_of([&] { gguf_write_random_model(path, c, o); }).find("has no GGUF form llama.cpp runs"),
              std::string::npos);
    o.outtype = GgmlType::q4_k;
    EXPECT_NE(error_of([&] { gguf_write_random_model(path, tiny(), o); })
                  .find("outtype Q4_K is not supported; use f32, f16, bf16, q8_0 or q4_0"),
              std::string::npos);
    o.outtype = GgmlType::f32;
    EXPECT_NE(error_of([&] { gguf_write_random_model("/nonexistent/dir/x.gguf", tiny(), o); })
                  .find("cannot create /nonexistent/dir/x.gguf.tmp"),
              std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(GgufWriteLazy, FillsInOrderAtWriteAndAFailureLeavesTheOldFile) {
    const std::string path = temp_path("lazy.gguf");
    std::vector<std::string> order;
    GgufWriter w;
    w.add_u32("a", 1);
    w.add_tensor_lazy("x", GgmlType::f32, {3}, [&](char* dst) {
        order.push_back("x");
        const float v[3] = {1, 2, 3};
        std::memcpy(dst, v, sizeof v);
    });
    w.add_tensor("y", GgmlType::f32, {1}, std::string(4, '\0'));
    std::vector<float> q(64);  // integers with 127 in each block: Q8_0's scale is exactly 1
    for (size_t j = 0; j < q.size(); ++j) q[j] = float(127 - 8 * int(j % 32));
    w.add_tensor_lazy("z", GgmlType::q8_0, {2, 32}, [&](char* dst) {
        order.push_back("z");
        for (int r = 0; r < 2; ++r) quantize_row(GgmlType::q8_0, q.data(), dst + r * 34, 32);
    });
    EXPECT_TRUE(order.empty());  // nothing made before write()
    EXPECT_EQ(w.data_bytes(), 32u + 32u + 96u);  // 12, 4 and 68 bytes, each padded to 32
    w.write(path);
    EXPECT_EQ(order, (std::vector<std::string>{"x", "z"}));
    {
        GgufFile f(path);
        EXPECT_EQ(f.dequantize("x"), (std::vector<float>{1, 2, 3}));
        EXPECT_EQ(f.dequantize("z"), q);
        EXPECT_EQ(f.tensor("z").offset, 64u);
    }
    const std::string before = file_bytes(path);

    GgufWriter bad;
    bad.add_tensor_lazy("x", GgmlType::f32, {4}, [](char*) { fail("test", "the fill failed"); });
    EXPECT_NE(error_of([&] { bad.write(path); }).find("the fill failed"), std::string::npos);
    EXPECT_EQ(file_bytes(path), before);  // the old file stays, the temporary one is gone
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
    EXPECT_NE(error_of([&] { bad.add_tensor_lazy("w", GgmlType::q8_0, {2, 48}, [](char*) {}); })
                  .find("tensor 'w': rows of 48 values are not whole Q8_0 blocks of 32"),
              std::string::npos);
    std::filesystem::remove(path);
}
