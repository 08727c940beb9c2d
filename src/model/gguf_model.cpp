// A Mixtral-style model from a GGUF (include/moe/gguf_model.h): the tensor names shared with the
// writer (gguf_convert.cpp), the q/k permutation, the hyper-parameters from llama.* metadata,
// the weights dequantized to f32, and the tokenizer (gpt2 byte-level or llama SentencePiece BPE).
#include <cstring>
#include <string>
#include <vector>

#include "moe/error.h"
#include "moe/gguf_model.h"
#include "moe/pretokenize.h"

namespace moe {
namespace {

constexpr const char* kOp = "gguf_model";

std::string dims_str(const std::vector<int64_t>& s) {
    std::string o = "(";
    for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
    return o + ")";
}

// The one list of a Mixtral-style model's tensors, in llama.cpp's order: add(spec, view), the
// view empty when p is null (shapes only).
template <class Add> void each_model_tensor(const ModelConfig& c, const ModelParams* p, Add add) {
    MOE_CHECK(model_is_mixtral(c), kOp,
              "only Mixtral-style models map to GGUF (llama architecture with experts): every layer MoE with a "
              "softmax top-k router, renormalised weights, no shared experts, no capacity, head_dim = D / H");
    const int64_t V = c.vocab_size, D = c.hidden(), H = c.attn.n_heads, Hkv = c.attn.n_kv_heads, hd = c.attn.hd();
    const int64_t E = c.moe.n_experts, F = c.moe.d_ff;
    auto at = [](const TensorView* v) { return v ? *v : TensorView{}; };
    add(GgufTensorSpec{"token_embd.weight", {V, D}, 0, false}, at(p ? &p->embed : nullptr));
    for (int64_t l = 0; l < c.num_layers; ++l) {
        const ModelLayerParams* L = p ? &p->layers[size_t(l)] : nullptr;
        const std::string b = "blk." + std::to_string(l) + ".";
        add(GgufTensorSpec{b + "attn_norm.weight", {D}, 0, true}, at(L ? &L->input_norm : nullptr));
        add(GgufTensorSpec{b + "attn_q.weight", {H * hd, D}, H, false}, at(L ? &L->attn.q_proj : nullptr));
        add(GgufTensorSpec{b + "attn_k.weight", {Hkv * hd, D}, Hkv, false}, at(L ? &L->attn.k_proj : nullptr));
        add(GgufTensorSpec{b + "attn_v.weight", {Hkv * hd, D}, 0, false}, at(L ? &L->attn.v_proj : nullptr));
        add(GgufTensorSpec{b + "attn_output.weight", {D, H * hd}, 0, false}, at(L ? &L->attn.o_proj : nullptr));
        add(GgufTensorSpec{b + "ffn_norm.weight", {D}, 0, true}, at(L ? &L->post_norm : nullptr));
        add(GgufTensorSpec{b + "ffn_gate_inp.weight", {E, D}, 0, true}, at(L ? &L->moe.router : nullptr));
        add(GgufTensorSpec{b + "ffn_gate_exps.weight", {E, F, D}, 0, false}, at(L ? &L->moe.w1 : nullptr));
        add(GgufTensorSpec{b + "ffn_up_exps.weight", {E, F, D}, 0, false}, at(L ? &L->moe.w3 : nullptr));
        add(GgufTensorSpec{b + "ffn_down_exps.weight", {E, D, F}, 0, false}, at(L ? &L->moe.w2 : nullptr));
    }
    add(GgufTensorSpec{"output_norm.weight", {D}, 0, true}, at(p ? &p->final_norm : nullptr));
    if (!c.tie_word_embeddings) add(GgufTensorSpec{"output.weight", {V, D}, 0, false}, at(p ? &p->lm_head : nullptr));
}

}  // namespace

std::vector<GgufTensorSpec> gguf_model_tensor_specs(const ModelConfig& c) {
    std::vector<GgufTensorSpec> out;
    each_model_tensor(c, nullptr, [&](GgufTensorSpec s, const TensorView&) { out.push_back(std::move(s)); });
    return out;
}

std::vector<GgufModelTensor> gguf_model_tensors(const ModelParams& p, const ModelConfig& c) {
    std::vector<GgufModelTensor> out;
    each_model_tensor(c, &p, [&](const GgufTensorSpec& s, const TensorView& v) {
        const std::vector<int64_t> have(v.shape.dims, v.shape.dims + v.shape.ndim);
        MOE_CHECK(have == s.shape, kOp,
                  "tensor '" + s.name + "' has shape " + dims_str(have) + ", the config implies " + dims_str(s.shape));
        out.push_back({s.name, v, s.rope_heads, s.keep_f32});
    });
    return out;
}

void gguf_rope_permute(float* out, const float* x, int64_t heads, int64_t hd, int64_t cols) {
    const int64_t half = hd / 2;
    for (int64_t h = 0; h < heads; ++h)
        for (int64_t s = 0; s < 2; ++s)
            for (int64_t j = 0; j < half; ++j)
                std::memcpy(out + (h * hd + 2 * j + s) * cols, x + (h * hd + s * half + j) * cols, size_t(cols) * 4);
}

void gguf_rope_unpermute(float* out, const float* x, int64_t heads, int64_t hd, int64_t cols) {
    const int64_t half = hd / 2;
    for (int64_t h = 0; h < heads; ++h)
        for (int64_t s = 0; s < 2; ++s)
            for (int64_t j = 0; j < half; ++j)
                std::memcpy(out + (h * hd + s * half + j) * cols, x + (h * hd + 2 * j + s) * cols, size_t(cols) * 4);
}

ModelConfig gguf_model_config(const GgufFile& f, ModelFileInfo* info) {
    const std::string& path = f.path();
    MOE_CHECK(f.has("general.architecture"), kOp,
              path + " has no general.architecture; is it a model GGUF (llama.cpp's convert_hf_to_gguf.py, moe convert)?");
    const std::string arch = f.get<std::string>("general.architecture");
    MOE_CHECK(arch == "llama", kOp,
              path + ": general.architecture is \"" + arch +
                  "\"; only \"llama\" with experts (Mixtral, as convert_hf_to_gguf.py writes it) is supported");
    auto need = [&](const std::string& key) {
        MOE_CHECK(f.has(key), kOp, path + " has no " + key + "; it is required for a llama GGUF");
        return f.get_int(key);
    };
    auto f32_or = [&](const std::string& key, float fallback) {
        return f.has(key) ? f.get<float>(key) : fallback;
    };
    const int64_t experts = f.has("llama.expert_count") ? f.get_int("llama.expert_count") : 0;
    MOE_CHECK(experts > 0, kOp,
              path + ": a dense llama (llama.expert_count absent or 0); only Mixtral-style MoE models load here");
    ModelConfig c;
    c.num_layers = need("llama.block_count");
    c.attn.d_model = need("llama.embedding_length");
    c.attn.n_heads = need("llama.attention.head_count");
    c.attn.n_kv_heads = f.has("llama.attention.head_count_kv") ? f.get_int("llama.attention.head_count_kv") : c.attn.n_heads;
    c.attn.rope_theta = f32_or("llama.rope.freq_base", 10000.0f);
    c.rms_norm_eps = f32_or("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    if (c.attn.n_heads > 0 && f.has("llama.rope.dimension_count")) {
        const int64_t rope = f.get_int("llama.rope.dimension_count");
        MOE_CHECK(rope == c.attn.d_model / c.attn.n_heads, kOp,
                  path + ": llama.rope.dimension_count " + std::to_string(rope) + " differs from the head size " +
                      std::to_string(c.attn.d_model / c.attn.n_heads) + "; partial RoPE is not implemented");
    }
    MOE_CHECK(f.has_tensor("token_embd.weight"), kOp, path + " has no tensor 'token_embd.weight'; the file is incomplete");
    const GgufTensor& embd = f.tensor("token_embd.weight");
    c.vocab_size = f.has("llama.vocab_size") ? f.get_int("llama.vocab_size") : embd.ne[1];
    c.tie_word_embeddings = !f.has_tensor("output.weight");
    MoeLayerConfig& m = c.moe;
    m.d_model = c.attn.d_model;
    m.d_ff = need("llama.feed_forward_length");
    m.n_experts = experts;
    m.top_k = need("llama.expert_used_count");
    m.renormalize = true;
    m.router.training = false;
    if (info) info->max_position_embeddings = f.has("llama.context_length") ? f.get_int("llama.context_length") : 4096;
    try {
        model_validate(c);
    } catch (const Error& e) {
        fail(kOp, path + " describes an impossible model: " + e.what());
    }
    return c;
}

void gguf_model_load_weights(const GgufFile& f, const ModelConfig& c, const ModelParams& p) {
    const std::string& path = f.path();
    std::vector<float> tmp;
    for (const GgufModelTensor& t : gguf_model_tensors(p, c)) {
        MOE_CHECK(f.has_tensor(t.name), kOp,
                  path + " has no tensor '" + t.name + "'; the file is incomplete or not a Mixtral-style llama GGUF");
        const std::vector<int64_t> got = f.tensor(t.name).shape();
        const std::vector<int64_t> want(t.view.shape.dims, t.view.shape.dims + t.view.shape.ndim);
        MOE_CHECK(got == want, kOp,
                  path + ": tensor '" + t.name + "' has shape " + dims_str(got) + " (PyTorch order), the metadata implies " +
                      dims_str(want) + "; the tensors belong to another configuration");
        std::vector<float> v = f.dequantize(t.name);
        if (t.rope_heads > 0) {
            tmp.resize(v.size());
            gguf_rope_unpermute(tmp.data(), v.data(), t.rope_heads, c.attn.hd(), c.hidden());
            v.swap(tmp);
        }
        std::memcpy(t.view.data, v.data(), v.size() * sizeof(float));
    }
}

InferWeights gguf_infer_weights(std::shared_ptr<const GgufFile> file, const ModelConfig& c) {
    const GgufFile& f = *file;
    const std::string& path = f.path();
    struct Keep {
        std::shared_ptr<const GgufFile> file;
        std::vector<std::vector<float>> owned;  // F16 / BF16 vectors and routers, dequantized
    };
    auto keep = std::make_shared<Keep>();
    keep->file = file;
    auto get = [&](const std::string& name, std::vector<int64_t> want) -> const GgufTensor& {
        MOE_CHECK(f.has_tensor(name), kOp,
                  path + " has no tensor '" + name + "'; the file is incomplete or not a Mixtral-style llama GGUF");
        const GgufTensor& t = f.tensor(name);
        MOE_CHECK(t.shape() == want, kOp,
                  path + ": tensor '" + name + "' has shape " + dims_str(t.shape()) + " (PyTorch order), the metadata implies " +
                      dims_str(want) + "; the tensors belong to another configuration");
        return t;
    };
    auto matrix = [&](const std::string& name, int64_t rows, int64_t cols) {
        const GgufTensor& t = get(name, {rows, cols});
        MOE_CHECK(qmatmul_supports(t.type), kOp,
                  path + ": tensor '" + name + "' is " + ggml_type_name(t.type) +
                      ", which has no quantized product here; supported: F32 F16 BF16 Q8_0 Q4_0 Q4_K Q5_K Q6_K");
        return QMatrix{t.type, rows, cols, f.tensor_data(t)};
    };
    auto experts = [&](const std::string& name, int64_t E, int64_t rows, int64_t cols) {
        const GgufTensor& t = get(name, {E, rows, cols});
        MOE_CHECK(qmatmul_supports(t.type), kOp,
                  path + ": tensor '" + name + "' is " + ggml_type_name(t.type) + ", which has no quantized product here");
        return QMatrix{t.type, E * rows, cols, f.tensor_data(t)};
    };
    auto f32 = [&](const std::string& name, std::vector<int64_t> shape) -> float* {
        const GgufTensor& t = get(name, shape);
        if (t.type == GgmlType::f32) return reinterpret_cast<float*>(const_cast<uint8_t*>(f.tensor_data(t)));
        keep->owned.push_back(f.dequantize(name));
        return keep->owned.back().data();
    };
    const int64_t D = c.hidden(), V = c.vocab_size, qw = c.attn.n_heads * c.attn.hd(), kw = c.attn.n_kv_heads * c.attn.hd();
    const MoeLayerConfig& m = c.moe;
    InferWeights w;
    w.rope_pairs = true;
    w.embed = matrix("token_embd.weight", V, D);
    w.final_norm = f32("output_norm.weight", {D});
    w.lm_head = c.tie_word_embeddings ? w.embed : matrix("output.weight", V, D);
    for (int64_t l = 0; l < c.num_layers; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        InferLayerWeights L;
        L.input_norm = f32(b + "attn_norm.weight", {D});
        L.post_norm = f32(b + "ffn_norm.weight", {D});
        L.q = matrix(b + "attn_q.weight", qw, D);
        L.k = matrix(b + "attn_k.weight", kw, D);
        L.v = matrix(b + "attn_v.weight", kw, D);
        L.o = matrix(b + "attn_output.weight", D, qw);
        L.ffn.router = TensorView{f32(b + "ffn_gate_inp.weight", {m.n_experts, D}), DType::f32, Shape{m.n_experts, D}};
        L.ffn.quant.w1 = experts(b + "ffn_gate_exps.weight", m.n_experts, m.d_ff, D);
        L.ffn.quant.w3 = experts(b + "ffn_up_exps.weight", m.n_experts, m.d_ff, D);
        L.ffn.quant.w2 = experts(b + "ffn_down_exps.weight", m.n_experts, D, m.d_ff);
        w.layers.push_back(L);
    }
    w.keep = keep;
    return w;
}

bool gguf_has_tokenizer(const GgufFile& f) {
    if (!f.has("tokenizer.ggml.model")) return false;
    const std::string model = f.get<std::string>("tokenizer.ggml.model");
    return model != "no_vocab" && model != "none";
}

BpeTokenizer gguf_tokenizer(const GgufFile& f) {
    const std::string& path = f.path();
    MOE_CHECK(gguf_has_tokenizer(f), kOp, path + " carries no tokenizer (tokenizer.ggml.model absent or \"no_vocab\")");
    GgufTokenizerVocab v;
    v.model = f.get<std::string>("tokenizer.ggml.model");
    MOE_CHECK(v.model == "gpt2" || v.model == "llama", kOp,
              path + ": tokenizer.ggml.model is \"" + v.model +
                  "\"; supported: \"gpt2\" (byte-level BPE) and \"llama\" (SentencePiece BPE)");
    MOE_CHECK(f.has("tokenizer.ggml.tokens"), kOp, path + ": a " + v.model + " tokenizer needs tokenizer.ggml.tokens");
    MOE_CHECK(v.model != "gpt2" || f.has("tokenizer.ggml.merges"), kOp,
              path + ": a gpt2 tokenizer needs tokenizer.ggml.tokens and tokenizer.ggml.merges");
    v.tokens = f.get_array<std::string>("tokenizer.ggml.tokens");
    if (f.has("tokenizer.ggml.token_type")) v.types = f.get_array<int32_t>("tokenizer.ggml.token_type");
    if (v.model == "gpt2") {
        // The pre-tokenizer (GPT-2's regex, qwen2, llama-bpe, deepseek-v3, ...: include/moe/pretokenize.h);
        // files from before llama.cpp named them have none, and were split as GPT-2.
        v.pre = f.has("tokenizer.ggml.pre") ? f.get<std::string>("tokenizer.ggml.pre") : "gpt-2";
        v.merges = f.get_array<std::string>("tokenizer.ggml.merges");
    }
    if (v.model == "llama" && f.has("tokenizer.ggml.scores")) {
        if (f.value("tokenizer.ggml.scores").elem_type == GgufType::i32) {
            for (int32_t s : f.get_array<int32_t>("tokenizer.ggml.scores")) v.scores.push_back(float(s));
        } else {
            v.scores = f.get_array<float>("tokenizer.ggml.scores");
        }
    }
    // llama.cpp's defaults for an SPM vocabulary: <unk> 0, <s> 1, </s> 2, BOS added, a space prefix.
    const bool spm = v.model == "llama";
    const int64_t n = int64_t(v.tokens.size());
    auto id = [&](const char* key, int32_t fallback) {
        const int64_t x = f.has(key) ? f.get_int(key) : fallback;
        return x >= 0 && x < n ? int32_t(x) : int32_t(-1);
    };
    v.bos = id("tokenizer.ggml.bos_token_id", spm ? 1 : -1);
    v.eos = id("tokenizer.ggml.eos_token_id", spm ? 2 : -1);
    v.unk = id("tokenizer.ggml.unknown_token_id", spm ? 0 : -1);
    v.pad = id("tokenizer.ggml.padding_token_id", -1);
    // llama.cpp's default when the key is absent: SPM and Llama-3's pre-tokenizer add BOS.
    v.add_bos = f.has("tokenizer.ggml.add_bos_token") ? f.get<bool>("tokenizer.ggml.add_bos_token")
                                                      : spm || text::gguf_pre_tokenizer(v.pre, path).add_bos;
    v.add_eos = f.has("tokenizer.ggml.add_eos_token") && f.get<bool>("tokenizer.ggml.add_eos_token");
    v.add_space_prefix = f.has("tokenizer.ggml.add_space_prefix") ? f.get<bool>("tokenizer.ggml.add_space_prefix") : spm;
    return BpeTokenizer::from_gguf_vocab(v, path);
}

}  // namespace moe
