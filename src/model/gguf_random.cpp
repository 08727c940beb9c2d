// `moe convert --random`: a Mixtral-style GGUF with random weights, made tensor by tensor while
// the file is written (include/moe/gguf_model.h, gguf_write_random_model), so that a model
// larger than the memory (olmoe-shape: 6.4 G parameters, 26 GB in f32) can be written.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "moe/error.h"
#include "moe/gguf_model.h"
#include "moe/rng.h"

namespace moe {
namespace {

constexpr const char* kOp = "convert --random";

uint64_t mix64(uint64_t x) {  // splitmix64's finaliser
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// n values N(0, stddev): Box-Muller as Rng::normal, keeping both values of each pair (the
// cosine and the sine), which halves the cost of the logarithms and the trigonometry.
void fill_normal_pairs(Rng& rng, float* x, int64_t n, float stddev) {
    for (int64_t i = 0; i < n; i += 2) {
        const double u1 = (double(rng.next_u64() >> 11) + 1.0) * (1.0 / 9007199254740992.0);  // (0, 1]
        const double u2 = double(rng.next_u64() >> 11) * (1.0 / 9007199254740992.0);
        const double r = std::sqrt(-2.0 * std::log(u1)), a = 6.283185307179586 * u2;
        x[i] = float(r * std::cos(a)) * stddev;
        if (i + 1 < n) x[i + 1] = float(r * std::sin(a)) * stddev;
    }
}

}  // namespace

std::vector<std::string> gguf_write_random_model(const std::string& out, const ModelConfig& c,
                                                 const GgufRandomOptions& o) {
    model_validate(c);
    const std::vector<GgufTensorSpec> specs = gguf_model_tensor_specs(c);  // throws unless gguf_model_supported
    gguf_file_type(o.outtype);  // an unsupported outtype fails here, naming the ones supported
    GgufConvertOptions meta;
    meta.outtype = o.outtype;
    meta.name = o.name;
    ModelFileInfo info;
    info.max_position_embeddings = o.context_length;
    GgufWriter w;
    gguf_write_model_metadata(w, c, info, meta);
    w.add_string("tokenizer.ggml.model", "no_vocab");  // as moe convert without tokenizer.json

    std::vector<std::string> notes;
    int64_t total = 0;
    for (const GgufTensorSpec& s : specs) {
        int64_t numel = 1;
        for (int64_t d : s.shape) numel *= d;
        total += numel;
    }
    int64_t done = 0;  // values written so far (the fills run in w.write below)
    const uint64_t seed = mix64(o.seed);
    for (size_t ti = 0; ti < specs.size(); ++ti) {
        const GgufTensorSpec& s = specs[ti];
        const GgmlType type = gguf_tensor_type(s, o.outtype, &notes);
        const int64_t row = s.shape.back();
        int64_t rows = 1;
        for (size_t d = 0; d + 1 < s.shape.size(); ++d) rows *= s.shape[d];
        // Norms 1; the embedding N(0, 1); every other matrix (the router too) N(0, 1 / sqrt(fan_in)).
        const bool ones = s.shape.size() == 1;
        const float stddev = s.name == "token_embd.weight" ? 1.0f : 1.0f / std::sqrt(float(row));
        const uint64_t tensor_seed = mix64(seed + ti);
        w.add_tensor_lazy(s.name, type, s.shape, [=, &o, &done](char* dst) {
            const int64_t row_bytes = ggml_row_bytes(type, row);
            const int64_t block = std::max<int64_t>(1, (int64_t(1) << 22) / row);  // rows between progress calls
            for (int64_t r0 = 0; r0 < rows; r0 += block) {
                const int64_t r1 = std::min(rows, r0 + block);
#pragma omp parallel
                {
                    std::vector<float> x(size_t(row), 1.0f);
#pragma omp for schedule(static)
                    for (int64_t r = r0; r < r1; ++r) {
                        if (!ones) {
                            Rng rng(mix64(tensor_seed + uint64_t(r)));
                            fill_normal_pairs(rng, x.data(), row, stddev);
                        }
                        quantize_row(type, x.data(), dst + r * row_bytes, row);
                    }
                }
                done += (r1 - r0) * row;
                if (o.progress) o.progress(done, total);
            }
        });
    }

    const uint64_t bytes = w.header().size() + w.data_bytes();
    std::error_code ec;
    const std::filesystem::path dir = std::filesystem::absolute(std::filesystem::path(out), ec).parent_path();
    const std::filesystem::space_info sp = std::filesystem::space(dir, ec);
    MOE_CHECK(ec || sp.available >= bytes, kOp,
              out + " will take " + std::to_string(bytes / 1000000) + " MB but " + dir.string() + " has " +
                  std::to_string(sp.available / 1000000) + " MB free");
    w.write(out);
    return notes;
}

}  // namespace moe
