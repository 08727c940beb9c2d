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

// The one list of a model's tensors, in llama.cpp's order: add(spec, view), the view empty
// when p is null (shapes only). Which tensors a layer has follows the architecture (moe/arch.h).
template <class Add> void each_model_tensor(const ModelConfig& c, const ModelParams* p, Add add) {
    std::string why;
    MOE_CHECK(gguf_model_supported(c, &why), kOp, why);
    const int64_t V = c.vocab_size, D = c.hidden(), H = c.attn.n_heads, Hkv = c.attn.n_kv_heads, hd = c.attn.hd();
    const int64_t E = c.moe.n_experts, F = c.moe.d_ff, Fs = c.moe.d_ff_shared;
    const bool llama = c.arch == ModelArch::mixtral;  // only llama's q / k rows are permuted (NORM RoPE)
    const int64_t qn = c.attn.q_norm_len(), kn = c.attn.k_norm_len();
    auto at = [](const TensorView* v) { return v ? *v : TensorView{}; };
    add(GgufTensorSpec{"token_embd.weight", {V, D}, 0, false}, at(p ? &p->embed : nullptr));
    for (int64_t l = 0; l < c.num_layers; ++l) {
        const ModelLayerParams* L = p ? &p->layers[size_t(l)] : nullptr;
        const std::string b = "blk." + std::to_string(l) + ".";
        add(GgufTensorSpec{b + "attn_norm.weight", {D}, 0, true}, at(L ? &L->input_norm : nullptr));
        add(GgufTensorSpec{b + "attn_q.weight", {H * hd, D}, llama ? H : 0, false}, at(L ? &L->attn.q_proj : nullptr));
        add(GgufTensorSpec{b + "attn_k.weight", {Hkv * hd, D}, llama ? Hkv : 0, false}, at(L ? &L->attn.k_proj : nullptr));
        add(GgufTensorSpec{b + "attn_v.weight", {Hkv * hd, D}, 0, false}, at(L ? &L->attn.v_proj : nullptr));
        if (c.attn.qkv_bias) {
            add(GgufTensorSpec{b + "attn_q.bias", {H * hd}, 0, true}, at(L ? &L->attn.q_bias : nullptr));
            add(GgufTensorSpec{b + "attn_k.bias", {Hkv * hd}, 0, true}, at(L ? &L->attn.k_bias : nullptr));
            add(GgufTensorSpec{b + "attn_v.bias", {Hkv * hd}, 0, true}, at(L ? &L->attn.v_bias : nullptr));
        }
        if (c.attn.qk_norm != QkNorm::none) {
            add(GgufTensorSpec{b + "attn_q_norm.weight", {qn}, 0, true}, at(L ? &L->attn.q_norm : nullptr));
            add(GgufTensorSpec{b + "attn_k_norm.weight", {kn}, 0, true}, at(L ? &L->attn.k_norm : nullptr));
        }
        add(GgufTensorSpec{b + "attn_output.weight", {D, H * hd}, 0, false}, at(L ? &L->attn.o_proj : nullptr));
        add(GgufTensorSpec{b + "ffn_norm.weight", {D}, 0, true}, at(L ? &L->post_norm : nullptr));
        add(GgufTensorSpec{b + "ffn_gate_inp.weight", {E, D}, 0, true}, at(L ? &L->moe.router : nullptr));
        add(GgufTensorSpec{b + "ffn_gate_exps.weight", {E, F, D}, 0, false}, at(L ? &L->moe.w1 : nullptr));
        add(GgufTensorSpec{b + "ffn_up_exps.weight", {E, F, D}, 0, false}, at(L ? &L->moe.w3 : nullptr));
        add(GgufTensorSpec{b + "ffn_down_exps.weight", {E, D, F}, 0, false}, at(L ? &L->moe.w2 : nullptr));
        if (c.moe.n_shared > 0) {  // Qwen2-MoE's one gated shared expert: (1, D) gate, as HF stores it
            auto one = [](const TensorView* v) {
                return v ? TensorView{v->data, v->dtype, Shape{v->shape[1], v->shape[2]}} : TensorView{};
            };
            add(GgufTensorSpec{b + "ffn_gate_inp_shexp.weight", {1, D}, 0, true}, at(L ? &L->moe.ws_gate : nullptr));
            add(GgufTensorSpec{b + "ffn_gate_shexp.weight", {Fs, D}, 0, false}, one(L ? &L->moe.ws1 : nullptr));
            add(GgufTensorSpec{b + "ffn_up_shexp.weight", {Fs, D}, 0, false}, one(L ? &L->moe.ws3 : nullptr));
            add(GgufTensorSpec{b + "ffn_down_shexp.weight", {D, Fs}, 0, false}, one(L ? &L->moe.ws2 : nullptr));
        }
    }
    add(GgufTensorSpec{"output_norm.weight", {D}, 0, true}, at(p ? &p->final_norm : nullptr));
    if (!c.tie_word_embeddings) add(GgufTensorSpec{"output.weight", {V, D}, 0, false}, at(p ? &p->lm_head : nullptr));
}

}  // namespace

bool gguf_model_supported(const ModelConfig& c, std::string* why) {
    const MoeLayerConfig& m = c.moe;
    const RouterConfig& r = m.router;
    const char* name = arch_info(c.arch).name;
    auto no = [&](const std::string& reason) {
        if (why) *why = std::string("this ") + name + " model has no GGUF form llama.cpp runs: " + reason;
        return false;
    };
    if (c.attn.mla || arch_uses_mla(c.arch))
        return no("DeepSeek's GGUF (llama.cpp's deepseek2) is not implemented in moe yet");
    if (c.arch == ModelArch::mixtral)
        return model_is_mixtral(c) ||
               no("llama's architecture with experts needs every layer MoE with a softmax top-k router, renormalised "
                  "weights, no shared experts, no capacity, head_dim = D / H");
    for (int64_t l = 0; l < c.num_layers; ++l)
        if (!c.is_moe_layer(l)) return no("layer " + std::to_string(l) + " is dense; llama.cpp makes every layer MoE");
    if (r.kind != RouterKind::topk || m.capacity_factor != 0 || r.norm_p != 1 || r.routed_scaling_factor != 1 || r.n_group != 1)
        return no("the router must be plain softmax top-k without capacity");
    // llama.cpp fixes these per architecture instead of reading them from the file.
    const bool renorm = c.arch == ModelArch::qwen3_moe;
    if (m.renormalize != renorm)
        return no(std::string("llama.cpp ") + (renorm ? "renormalises" : "does not renormalise") +
                  " the top-k weights (norm_topk_prob) for this architecture");
    if ((c.arch == ModelArch::qwen2_moe) != (m.n_shared == 1 && m.shared_gate) || m.n_shared > 1)
        return no("Qwen2-MoE has exactly one gated shared expert, the others none");
    if (c.arch != ModelArch::qwen3_moe && c.attn.hd() * c.attn.n_heads != c.attn.d_model)
        return no("head_dim must be hidden_size / num_attention_heads");
    if (c.attn.clip_qkv != 0) return no("clip_qkv is not applied by llama.cpp");
    if (c.arch == ModelArch::olmoe && c.attn.n_kv_heads != c.attn.n_heads)
        return no("llama.cpp's OLMoE takes k_norm of hidden_size: num_key_value_heads must equal num_attention_heads");
    return true;
}

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
    ModelConfig c;
    bool known = false;
    for (ModelArch a : {ModelArch::mixtral, ModelArch::qwen2_moe, ModelArch::qwen3_moe, ModelArch::olmoe})
        if (arch == arch_info(a).gguf_arch) c.arch = a, known = true;
    MOE_CHECK(known, kOp,
              path + ": general.architecture is \"" + arch +
                  "\"; supported: \"llama\" with experts (Mixtral), \"qwen2moe\", \"qwen3moe\", \"olmoe\"");
    const std::string k = arch + ".";
    auto need = [&](const std::string& key) {
        MOE_CHECK(f.has(k + key), kOp, path + " has no " + k + key + "; it is required for a " + arch + " GGUF");
        return f.get_int(k + key);
    };
    auto int_or = [&](const std::string& key, int64_t fallback) { return f.has(k + key) ? f.get_int(k + key) : fallback; };
    auto f32_or = [&](const std::string& key, float fallback) { return f.has(k + key) ? f.get<float>(k + key) : fallback; };
    const int64_t experts = int_or("expert_count", 0);
    MOE_CHECK(experts > 0, kOp,
              path + ": a dense model (" + k + "expert_count absent or 0); only MoE models load here");
    c.num_layers = need("block_count");
    c.attn.d_model = need("embedding_length");
    c.attn.n_heads = need("attention.head_count");
    c.attn.n_kv_heads = int_or("attention.head_count_kv", c.attn.n_heads);
    c.attn.head_dim = int_or("attention.key_length", 0);
    c.attn.rope_theta = f32_or("rope.freq_base", 10000.0f);
    c.rms_norm_eps = f32_or("attention.layer_norm_rms_epsilon", 1e-5f);
    const int64_t hd = c.attn.head_dim > 0 ? c.attn.head_dim : c.attn.n_heads > 0 ? c.attn.d_model / c.attn.n_heads : 0;
    MOE_CHECK(int_or("attention.value_length", hd) == hd, kOp,
              path + ": " + k + "attention.value_length differs from key_length; not implemented");
    const int64_t rope = int_or("rope.dimension_count", hd);
    MOE_CHECK(rope == hd, kOp,
              path + ": " + k + "rope.dimension_count " + std::to_string(rope) + " differs from the head size " +
                  std::to_string(hd) + "; partial RoPE is not implemented");
    MOE_CHECK(f.has_tensor("token_embd.weight"), kOp, path + " has no tensor 'token_embd.weight'; the file is incomplete");
    const GgufTensor& embd = f.tensor("token_embd.weight");
    c.vocab_size = int_or("vocab_size", embd.ne[1]);
    c.tie_word_embeddings = !f.has_tensor("output.weight");
    MoeLayerConfig& m = c.moe;
    m.d_model = c.attn.d_model;
    m.n_experts = experts;
    m.top_k = need("expert_used_count");
    m.router.training = false;
    // What llama.cpp's graph for the architecture does (the file does not say): the top-k weights
    // renormalised for llama (Mixtral) and qwen3moe only; q/k biases when the tensors are there.
    c.attn.qkv_bias = f.has_tensor("blk.0.attn_q.bias");
    switch (c.arch) {
        case ModelArch::mixtral:
            m.d_ff = need("feed_forward_length");
            m.renormalize = true;
            break;
        case ModelArch::qwen2_moe:
            m.d_ff = need("expert_feed_forward_length");
            m.d_ff_shared = int_or("expert_shared_feed_forward_length", int_or("feed_forward_length", 0));
            m.n_shared = 1;
            m.shared_gate = true;
            m.renormalize = false;
            break;
        case ModelArch::qwen3_moe:
            m.d_ff = need("expert_feed_forward_length");
            m.renormalize = true;
            c.attn.qk_norm = QkNorm::head;
            break;
        case ModelArch::olmoe:
            m.d_ff = need("feed_forward_length");
            m.renormalize = false;
            c.attn.qk_norm = QkNorm::full;
            break;
        case ModelArch::deepseek_v2:
        case ModelArch::deepseek_v3:  // not in the list above: llama.cpp's deepseek2 is not mapped
            fail(kOp, path + ": DeepSeek's GGUF (deepseek2) is not supported yet; load the Hugging Face directory");
    }
    if (info) info->max_position_embeddings = int_or("context_length", 4096);
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
                  path + " has no tensor '" + name + "'; the file is incomplete or of another configuration");
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
    w.rope_pairs = c.arch == ModelArch::mixtral;  // the other architectures use NEOX RoPE: HF's order
    const int64_t qn = c.attn.q_norm_len(), kn = c.attn.k_norm_len();
    auto view = [&](float* data, Shape shape) { return TensorView{data, DType::f32, shape}; };
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
        if (c.attn.qkv_bias) {
            L.q_bias = f32(b + "attn_q.bias", {qw});
            L.k_bias = f32(b + "attn_k.bias", {kw});
            L.v_bias = f32(b + "attn_v.bias", {kw});
        }
        if (c.attn.qk_norm != QkNorm::none) {
            L.q_norm = f32(b + "attn_q_norm.weight", {qn});
            L.k_norm = f32(b + "attn_k_norm.weight", {kn});
        }
        if (m.n_shared > 0) {  // one gated shared expert (Qwen2-MoE), dequantized to f32
            const int64_t Fs = m.d_ff_shared;
            const std::string gate = b + "ffn_gate_inp_shexp.weight";
            const bool flat = f.has_tensor(gate) && f.tensor(gate).shape().size() == 1;
            L.ffn.ws_gate = view(f32(gate, flat ? std::vector<int64_t>{D} : std::vector<int64_t>{1, D}), Shape{1, D});
            L.ffn.ws1 = view(f32(b + "ffn_gate_shexp.weight", {Fs, D}), Shape{1, Fs, D});
            L.ffn.ws3 = view(f32(b + "ffn_up_shexp.weight", {Fs, D}), Shape{1, Fs, D});
            L.ffn.ws2 = view(f32(b + "ffn_down_shexp.weight", {D, Fs}), Shape{1, D, Fs});
        }
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
