// A MoE model from a GGUF (include/moe/gguf_model.h): the tensor names shared with the writer
// (gguf_convert.cpp), the q/k permutation, the hyper-parameters from <arch>.* metadata (deepseek2's
// own in gguf_deepseek2.cpp), the weights dequantized to f32 or mapped, and the tokenizer (gpt2
// byte-level or llama SentencePiece BPE).
#include <cstring>
#include <string>
#include <vector>

#include "gguf_deepseek2.h"
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

// The attention's tensors of every architecture but DeepSeek's.
template <class Add>
void each_attention_tensor(const ModelConfig& c, const std::string& b, const AttentionParams* A, Add add) {
    const int64_t D = c.hidden(), H = c.attn.n_heads, Hkv = c.attn.n_kv_heads, hd = c.attn.hd();
    const bool llama = c.arch == ModelArch::mixtral;  // only llama's q / k rows are permuted (NORM RoPE)
    const int64_t qn = c.attn.q_norm_len(), kn = c.attn.k_norm_len();
    auto at = [](const TensorView* v) { return v ? *v : TensorView{}; };
    add(GgufTensorSpec{b + "attn_q.weight", {H * hd, D}, llama ? H : 0, false}, at(A ? &A->q_proj : nullptr));
    add(GgufTensorSpec{b + "attn_k.weight", {Hkv * hd, D}, llama ? Hkv : 0, false}, at(A ? &A->k_proj : nullptr));
    add(GgufTensorSpec{b + "attn_v.weight", {Hkv * hd, D}, 0, false}, at(A ? &A->v_proj : nullptr));
    if (c.attn.qkv_bias) {
        add(GgufTensorSpec{b + "attn_q.bias", {H * hd}, 0, true}, at(A ? &A->q_bias : nullptr));
        add(GgufTensorSpec{b + "attn_k.bias", {Hkv * hd}, 0, true}, at(A ? &A->k_bias : nullptr));
        add(GgufTensorSpec{b + "attn_v.bias", {Hkv * hd}, 0, true}, at(A ? &A->v_bias : nullptr));
    }
    if (c.attn.qk_norm != QkNorm::none) {
        add(GgufTensorSpec{b + "attn_q_norm.weight", {qn}, 0, true}, at(A ? &A->q_norm : nullptr));
        add(GgufTensorSpec{b + "attn_k_norm.weight", {kn}, 0, true}, at(A ? &A->k_norm : nullptr));
    }
    add(GgufTensorSpec{b + "attn_output.weight", {D, H * hd}, 0, false}, at(A ? &A->o_proj : nullptr));
}

// Multi-head latent attention's tensors (DeepSeek, llama.cpp's deepseek2), kv_b_proj as its halves.
template <class Add> void each_mla_tensor(const MlaConfig& m, const std::string& b, const MlaParams* P, Add add) {
    const int64_t D = m.d_model, H = m.n_heads, Qr = m.q_lora_rank, Lr = m.kv_lora_rank, R = m.qk_rope_head_dim;
    const int64_t Nd = m.qk_nope_head_dim, Vd = m.v_head_dim, qw = H * m.qk_head_dim();
    auto at = [](const TensorView* v) { return v ? *v : TensorView{}; };
    auto spec = [](std::string name, std::vector<int64_t> shape, bool f32 = false, GgufKvSplit split = GgufKvSplit::none) {
        return GgufTensorSpec{std::move(name), std::move(shape), 0, f32, split};
    };
    if (Qr > 0) {
        add(spec(b + "attn_q_a.weight", {Qr, D}), at(P ? &P->q_a_proj : nullptr));
        add(spec(b + "attn_q_a_norm.weight", {Qr}, true), at(P ? &P->q_a_norm : nullptr));
        add(spec(b + "attn_q_b.weight", {qw, Qr}), at(P ? &P->q_b_proj : nullptr));
    } else {
        add(spec(b + "attn_q.weight", {qw, D}), at(P ? &P->q_proj : nullptr));
    }
    add(spec(b + "attn_kv_a_mqa.weight", {Lr + R, D}), at(P ? &P->kv_a_proj : nullptr));
    add(spec(b + "attn_kv_a_norm.weight", {Lr}, true), at(P ? &P->kv_a_norm : nullptr));
    add(spec(b + "attn_k_b.weight", {H, Lr, Nd}, false, GgufKvSplit::k_b), at(P ? &P->kv_b_proj : nullptr));
    add(spec(b + "attn_v_b.weight", {H, Vd, Lr}, false, GgufKvSplit::v_b), at(P ? &P->kv_b_proj : nullptr));
    add(spec(b + "attn_output.weight", {D, H * Vd}), at(P ? &P->o_proj : nullptr));
}

// The one list of a model's tensors, in llama.cpp's order: add(spec, view), the view empty
// when p is null (shapes only). Which tensors a layer has follows the architecture (moe/arch.h).
template <class Add> void each_model_tensor(const ModelConfig& c, const ModelParams* p, Add add) {
    std::string why;
    MOE_CHECK(gguf_model_supported(c, &why), kOp, why);
    const int64_t V = c.vocab_size, D = c.hidden(), E = c.moe.n_experts, F = c.moe.d_ff, Fs = c.moe.d_ff_shared;
    auto at = [](const TensorView* v) { return v ? *v : TensorView{}; };
    // A stack of one (a dense FFN's or the merged shared expert's (1, A, B)) as the (A, B) matrix.
    auto one = [](const TensorView* v) {
        return v ? TensorView{v->data, v->dtype, Shape{v->shape[1], v->shape[2]}} : TensorView{};
    };
    add(GgufTensorSpec{"token_embd.weight", {V, D}, 0, false}, at(p ? &p->embed : nullptr));
    for (int64_t l = 0; l < c.num_layers; ++l) {
        const ModelLayerParams* L = p ? &p->layers[size_t(l)] : nullptr;
        const std::string b = "blk." + std::to_string(l) + ".";
        add(GgufTensorSpec{b + "attn_norm.weight", {D}, 0, true}, at(L ? &L->input_norm : nullptr));
        if (c.attn.mla)
            each_mla_tensor(c.mla, b, L ? &L->mla : nullptr, add);
        else
            each_attention_tensor(c, b, L ? &L->attn : nullptr, add);
        add(GgufTensorSpec{b + "ffn_norm.weight", {D}, 0, true}, at(L ? &L->post_norm : nullptr));
        if (!c.is_moe_layer(l)) {  // DeepSeek's leading dense layers: one SwiGLU FFN
            const int64_t Fd = c.dense_ff();
            add(GgufTensorSpec{b + "ffn_gate.weight", {Fd, D}, 0, false}, one(L ? &L->moe.w1 : nullptr));
            add(GgufTensorSpec{b + "ffn_up.weight", {Fd, D}, 0, false}, one(L ? &L->moe.w3 : nullptr));
            add(GgufTensorSpec{b + "ffn_down.weight", {D, Fd}, 0, false}, one(L ? &L->moe.w2 : nullptr));
            continue;
        }
        add(GgufTensorSpec{b + "ffn_gate_inp.weight", {E, D}, 0, true}, at(L ? &L->moe.router : nullptr));
        if (c.moe.router.kind == RouterKind::sigmoid_bias)  // DeepSeek-V3's e_score_correction_bias
            add(GgufTensorSpec{b + "exp_probs_b.bias", {E}, 0, true}, at(L ? &L->moe.router_bias : nullptr));
        add(GgufTensorSpec{b + "ffn_gate_exps.weight", {E, F, D}, 0, false}, at(L ? &L->moe.w1 : nullptr));
        add(GgufTensorSpec{b + "ffn_up_exps.weight", {E, F, D}, 0, false}, at(L ? &L->moe.w3 : nullptr));
        add(GgufTensorSpec{b + "ffn_down_exps.weight", {E, D, F}, 0, false}, at(L ? &L->moe.w2 : nullptr));
        if (c.moe.n_shared > 0) {  // one shared expert; Qwen2-MoE's gated ((1, D) gate, as HF stores it)
            if (c.moe.shared_gate)
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
    if (c.attn.mla || arch_uses_mla(c.arch)) {
        const std::string reason = arch_uses_mla(c.arch) ? gguf_ds2::unsupported(c) : "only DeepSeek has MLA";
        return reason.empty() || no(reason);
    }
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
    const MlaConfig& m = c.mla;
    const std::vector<int64_t> kv_b{m.n_heads * (m.qk_nope_head_dim + m.v_head_dim), m.kv_lora_rank};
    each_model_tensor(c, &p, [&](const GgufTensorSpec& s, const TensorView& v) {
        const std::vector<int64_t> have(v.shape.dims, v.shape.dims + v.shape.ndim);
        const std::vector<int64_t>& want = s.kv_split == GgufKvSplit::none ? s.shape : kv_b;  // a half of kv_b_proj
        MOE_CHECK(have == want, kOp,
                  "tensor '" + s.name + "' has shape " + dims_str(have) + ", the config implies " + dims_str(want));
        out.push_back({s.name, v, s.rope_heads, s.keep_f32, s.kv_split});
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
    // deepseek2 is DeepSeek-V2 or V3 by its gating function (gguf_ds2::read_config).
    for (ModelArch a :
         {ModelArch::mixtral, ModelArch::qwen2_moe, ModelArch::qwen3_moe, ModelArch::olmoe, ModelArch::deepseek_v2})
        if (arch == arch_info(a).gguf_arch) c.arch = a, known = true;
    MOE_CHECK(known, kOp,
              path + ": general.architecture is \"" + arch +
                  "\"; supported: \"llama\" with experts (Mixtral), \"qwen2moe\", \"qwen3moe\", \"olmoe\", \"deepseek2\"");
    const bool deepseek = c.arch == ModelArch::deepseek_v2;
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
    c.attn.rope_theta = f32_or("rope.freq_base", 10000.0f);
    c.rms_norm_eps = f32_or("attention.layer_norm_rms_epsilon", 1e-5f);
    if (!deepseek) {  // DeepSeek's key_length / rope.dimension_count are the latent's (gguf_ds2::read_config)
        c.attn.head_dim = int_or("attention.key_length", 0);
        const int64_t hd = c.attn.head_dim > 0 ? c.attn.head_dim : c.attn.n_heads > 0 ? c.attn.d_model / c.attn.n_heads : 0;
        MOE_CHECK(int_or("attention.value_length", hd) == hd, kOp,
                  path + ": " + k + "attention.value_length differs from key_length; not implemented");
        const int64_t rope = int_or("rope.dimension_count", hd);
        MOE_CHECK(rope == hd, kOp,
                  path + ": " + k + "rope.dimension_count " + std::to_string(rope) + " differs from the head size " +
                      std::to_string(hd) + "; partial RoPE is not implemented");
    }
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
        case ModelArch::deepseek_v3:
            gguf_ds2::read_config(f, c, int_or("context_length", 4096));
            break;
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
    const std::vector<GgufTensorSpec> specs = gguf_model_tensor_specs(c);
    const std::vector<GgufModelTensor> tensors = gguf_model_tensors(p, c);  // the same list, with the views
    for (size_t i = 0; i < tensors.size(); ++i) {
        const GgufModelTensor& t = tensors[i];
        MOE_CHECK(f.has_tensor(t.name), kOp,
                  path + " has no tensor '" + t.name + "'; the file is incomplete or of another architecture");
        const std::vector<int64_t> got = f.tensor(t.name).shape();
        MOE_CHECK(got == specs[i].shape, kOp,
                  path + ": tensor '" + t.name + "' has shape " + dims_str(got) + " (PyTorch order), the metadata implies " +
                      dims_str(specs[i].shape) + "; the tensors belong to another configuration");
        std::vector<float> v = f.dequantize(t.name);
        if (t.rope_heads > 0) {
            tmp.resize(v.size());
            gguf_rope_unpermute(tmp.data(), v.data(), t.rope_heads, c.attn.hd(), c.hidden());
            v.swap(tmp);
        }
        const MlaConfig& m = c.mla;
        const int64_t Lr = m.kv_lora_rank, Vd = m.v_head_dim, kd = m.qk_nope_head_dim + Vd;
        if (t.kv_split == GgufKvSplit::k_b) {  // (H, L, Nd) -> kv_b_proj's key rows
            mla_kv_b_set_keys(m, v.data(), t.view.f32());
        } else if (t.kv_split == GgufKvSplit::v_b) {  // (H, Vd, L) -> kv_b_proj's value rows
            for (int64_t h = 0; h < m.n_heads; ++h)
                std::memcpy(t.view.f32() + (h * kd + m.qk_nope_head_dim) * Lr, v.data() + h * Vd * Lr,
                            size_t(Vd * Lr) * sizeof(float));
        } else {
            std::memcpy(t.view.data, v.data(), v.size() * sizeof(float));
        }
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
    // A stack (E, rows, cols) (experts; DeepSeek's k_b / v_b per head) as one (E rows, cols) matrix.
    auto stacked = [&](const std::string& name, int64_t E, int64_t rows, int64_t cols) {
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
        if (c.attn.mla) {  // DeepSeek: kv_b_proj as attn_k_b / attn_v_b only, the absorbed path (as llama.cpp)
            const MlaConfig& a = c.mla;
            const int64_t H = a.n_heads, Qr = a.q_lora_rank, Lr = a.kv_lora_rank, Vd = a.v_head_dim;
            const int64_t aw = H * a.qk_head_dim();
            MlaWeights& M = L.mla;
            if (Qr > 0) {
                M.q_a_proj = matrix(b + "attn_q_a.weight", Qr, D);
                M.q_a_norm = f32(b + "attn_q_a_norm.weight", {Qr});
                M.q_b_proj = matrix(b + "attn_q_b.weight", aw, Qr);
            } else {
                M.q_proj = matrix(b + "attn_q.weight", aw, D);
            }
            M.kv_a_proj = matrix(b + "attn_kv_a_mqa.weight", Lr + a.qk_rope_head_dim, D);
            M.kv_a_norm = f32(b + "attn_kv_a_norm.weight", {Lr});
            M.k_b = stacked(b + "attn_k_b.weight", H, Lr, a.qk_nope_head_dim);
            M.v_b = stacked(b + "attn_v_b.weight", H, Vd, Lr);
            M.o_proj = matrix(b + "attn_output.weight", D, H * Vd);
        } else {
            L.q = matrix(b + "attn_q.weight", qw, D);
            L.k = matrix(b + "attn_k.weight", kw, D);
            L.v = matrix(b + "attn_v.weight", kw, D);
            L.o = matrix(b + "attn_output.weight", D, qw);
        }
        if (!c.is_moe_layer(l)) {  // a leading dense FFN: a one-expert layer whose router is not read
            const int64_t Fd = c.dense_ff();
            L.ffn.quant.w1 = matrix(b + "ffn_gate.weight", Fd, D);
            L.ffn.quant.w3 = matrix(b + "ffn_up.weight", Fd, D);
            L.ffn.quant.w2 = matrix(b + "ffn_down.weight", D, Fd);
            keep->owned.push_back(std::vector<float>(size_t(D), 0.0f));
            L.ffn.router = view(keep->owned.back().data(), Shape{1, D});
            w.layers.push_back(L);
            continue;
        }
        L.ffn.router = view(f32(b + "ffn_gate_inp.weight", {m.n_experts, D}), Shape{m.n_experts, D});
        if (m.router.kind == RouterKind::sigmoid_bias)
            L.ffn.router_bias = view(f32(b + "exp_probs_b.bias", {m.n_experts}), Shape{m.n_experts});
        L.ffn.quant.w1 = stacked(b + "ffn_gate_exps.weight", m.n_experts, m.d_ff, D);
        L.ffn.quant.w3 = stacked(b + "ffn_up_exps.weight", m.n_experts, m.d_ff, D);
        L.ffn.quant.w2 = stacked(b + "ffn_down_exps.weight", m.n_experts, D, m.d_ff);
        if (c.attn.qkv_bias) {
            L.q_bias = f32(b + "attn_q.bias", {qw});
            L.k_bias = f32(b + "attn_k.bias", {kw});
            L.v_bias = f32(b + "attn_v.bias", {kw});
        }
        if (c.attn.qk_norm != QkNorm::none) {
            L.q_norm = f32(b + "attn_q_norm.weight", {qn});
            L.k_norm = f32(b + "attn_k_norm.weight", {kn});
        }
        if (m.n_shared > 0) {  // one shared expert (Qwen2-MoE's gated, DeepSeek's not), dequantized to f32
            const int64_t Fs = m.d_ff_shared;
            const std::string gate = b + "ffn_gate_inp_shexp.weight";
            const bool flat = f.has_tensor(gate) && f.tensor(gate).shape().size() == 1;
            if (m.shared_gate)
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
