// A Hugging Face model directory used where it lies (include/moe/infer.h, hf_infer_weights):
// the safetensors shards stay mapped and every matrix, experts included, is a QMatrix view of
// its F32 / F16 / BF16 bytes; vectors (norms, biases, routers) and shared experts are widened
// to f32 copies. The tensor names are those of model_hf_tensors (src/model/model.cpp).
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "hf_weights.h"
#include "moe/arch.h"
#include "moe/error.h"
#include "moe/infer.h"

namespace moe {
namespace {

constexpr const char* kOp = "hf_weights";

GgmlType weight_type(const std::string& dtype) {
    return dtype == "F32" ? GgmlType::f32 : dtype == "F16" ? GgmlType::f16 : GgmlType::bf16;
}

}  // namespace

bool hf_can_map(const std::string& dir, const ModelConfig& c) {
    const bool hf = hf_has_weights(dir);
    const RouterKind k = c.moe.router.kind;
    // moe's own routers with extra tensors (noisy top-k, X-MoE) and Soft MoE keep the arena path.
    return hf && (k == RouterKind::topk || k == RouterKind::sigmoid_bias || k == RouterKind::dense);
}

InferWeights hf_infer_weights(const std::string& dir, const ModelConfig& c) {
    struct Keep {
        HfWeights files;
        std::vector<std::vector<float>> owned;  // f32 copies of vectors, routers, shared experts
        explicit Keep(const std::string& d) : files(d) {}
    };
    auto keep = std::make_shared<Keep>(dir);
    std::set<std::string> used;
    auto entry = [&](const std::string& name, const std::vector<int64_t>& want) -> const SafetensorsEntry& {
        const SafetensorsFile& f = keep->files.file_of(name);
        const SafetensorsEntry& e = hf_checked_entry(f, name, want, arch_info(c.arch).name, kOp);
        MOE_CHECK(e.dtype == "F32" || e.dtype == "F16" || e.dtype == "BF16", kOp,
                  f.path() + ": " + name + " is " + e.dtype + "; weights must be F32, F16 or BF16");
        used.insert(name);
        return e;
    };
    auto matrix = [&](const std::string& name, int64_t rows, int64_t cols) {
        const SafetensorsEntry& e = entry(name, {rows, cols});
        return QMatrix{weight_type(e.dtype), rows, cols, keep->files.file_of(name).tensor_data(e)};
    };
    auto f32 = [&](const std::string& name, std::vector<int64_t> shape) -> float* {
        entry(name, shape);
        keep->owned.push_back(keep->files.file_of(name).f32(name));
        return keep->owned.back().data();
    };
    // Several tensors of one shape stacked into one f32 copy (shared experts: (S, A, B)).
    auto stacked = [&](const std::vector<std::string>& names, int64_t a, int64_t b) {
        std::vector<float> all;
        for (const std::string& n : names) {
            entry(n, {a, b});
            std::vector<float> v = keep->files.file_of(n).f32(n);
            all.insert(all.end(), v.begin(), v.end());
        }
        keep->owned.push_back(std::move(all));
        return TensorView{keep->owned.back().data(), DType::f32, Shape{int64_t(names.size()), a, b}};
    };
    // Per-expert matrices where they lie: every expert of one dtype.
    auto experts = [&](const std::vector<std::string>& names, int64_t rows, int64_t cols, QMatrix& m,
                       std::vector<const uint8_t*>& per) {
        for (const std::string& n : names) {
            const QMatrix q = matrix(n, rows, cols);
            MOE_CHECK(per.empty() || q.type == m.type, kOp,
                      dir + ": " + n + " is " + ggml_type_name(q.type) + ", the layer's other experts " +
                          ggml_type_name(m.type) + "; one dtype per layer is expected");
            m = QMatrix{q.type, int64_t(names.size()) * rows, cols, nullptr};
            per.push_back(static_cast<const uint8_t*>(q.data));
        }
    };
    const ArchInfo& arch = arch_info(c.arch);
    const int64_t D = c.hidden(), V = c.vocab_size, hd = c.attn.hd();
    const int64_t qw = c.attn.n_heads * hd, kw = c.attn.n_kv_heads * hd;
    const int64_t qn = c.attn.q_norm_len(), kn = c.attn.k_norm_len();
    InferWeights w;
    w.embed = matrix("model.embed_tokens.weight", V, D);
    w.final_norm = f32("model.norm.weight", {D});
    w.lm_head = c.tie_word_embeddings ? w.embed : matrix("lm_head.weight", V, D);
    for (int64_t l = 0; l < c.num_layers; ++l) {
        const std::string pre = "model.layers." + std::to_string(l) + ".", at = pre + "self_attn.";
        InferLayerWeights L;
        L.input_norm = f32(pre + "input_layernorm.weight", {D});
        L.post_norm = f32(pre + "post_attention_layernorm.weight", {D});
        if (c.attn.mla) {  // DeepSeek's latent attention: its own matrices and two RMSNorms
            const MlaConfig& a = c.mla;
            const int64_t H = a.n_heads, qk = a.qk_head_dim(), Lr = a.kv_lora_rank, Qr = a.q_lora_rank;
            MlaWeights& m = L.mla;
            if (Qr > 0) {
                m.q_a_proj = matrix(at + "q_a_proj.weight", Qr, D);
                m.q_a_norm = f32(at + "q_a_layernorm.weight", {Qr});
                m.q_b_proj = matrix(at + "q_b_proj.weight", H * qk, Qr);
            } else {
                m.q_proj = matrix(at + "q_proj.weight", H * qk, D);
            }
            m.kv_a_proj = matrix(at + "kv_a_proj_with_mqa.weight", Lr + a.qk_rope_head_dim, D);
            m.kv_a_norm = f32(at + "kv_a_layernorm.weight", {Lr});
            m.kv_b_proj = matrix(at + "kv_b_proj.weight", H * (a.qk_nope_head_dim + a.v_head_dim), Lr);
            m.o_proj = matrix(at + "o_proj.weight", D, H * a.v_head_dim);
        } else {
            L.q = matrix(at + "q_proj.weight", qw, D);
            L.k = matrix(at + "k_proj.weight", kw, D);
            L.v = matrix(at + "v_proj.weight", kw, D);
            L.o = matrix(at + "o_proj.weight", D, qw);
        }
        if (c.attn.qkv_bias) {
            L.q_bias = f32(at + "q_proj.bias", {qw});
            L.k_bias = f32(at + "k_proj.bias", {kw});
            L.v_bias = f32(at + "v_proj.bias", {kw});
        }
        if (c.attn.qk_norm != QkNorm::none) {
            L.q_norm = f32(at + "q_norm.weight", {qn});
            L.k_norm = f32(at + "k_norm.weight", {kn});
        }
        const MoeLayerConfig f = c.ffn(l);
        MoeQuantExperts& q = L.ffn.quant;
        const char* const* en = arch.expert_names;
        if (!c.is_moe_layer(l)) {  // a dense FFN: a one-expert layer whose router is not a parameter
            experts({pre + "mlp.gate_proj.weight"}, f.d_ff, D, q.w1, q.w1_e);
            experts({pre + "mlp.up_proj.weight"}, f.d_ff, D, q.w3, q.w3_e);
            experts({pre + "mlp.down_proj.weight"}, D, f.d_ff, q.w2, q.w2_e);
            keep->owned.push_back(std::vector<float>(size_t(D), 0.0f));
            L.ffn.router = TensorView{keep->owned.back().data(), DType::f32, Shape{1, D}};
            w.layers.push_back(L);
            continue;
        }
        const std::string moe = pre + arch.moe_block;
        const int64_t E = f.n_experts, F = f.d_ff;
        L.ffn.router = TensorView{f32(moe + "gate.weight", {E, D}), DType::f32, Shape{E, D}};
        if (f.router.kind == RouterKind::sigmoid_bias)
            L.ffn.router_bias = TensorView{f32(moe + "gate.e_score_correction_bias", {E}), DType::f32, Shape{E}};
        std::vector<std::string> n1, n3, n2;
        for (int64_t e = 0; e < E; ++e) {
            const std::string ex = moe + "experts." + std::to_string(e) + ".";
            n1.push_back(ex + en[0] + ".weight");
            n3.push_back(ex + en[1] + ".weight");
            n2.push_back(ex + en[2] + ".weight");
        }
        experts(n1, F, D, q.w1, q.w1_e);
        experts(n3, F, D, q.w3, q.w3_e);
        experts(n2, D, F, q.w2, q.w2_e);
        if (f.n_shared > 0) {
            std::vector<std::string> s1, s3, s2;
            for (int64_t s = 0; s < f.n_shared; ++s) {
                const std::string ex = moe + arch.shared_block + (arch.shared_indexed ? std::to_string(s) + "." : "");
                s1.push_back(ex + en[0] + ".weight");
                s3.push_back(ex + en[1] + ".weight");
                s2.push_back(ex + en[2] + ".weight");
            }
            L.ffn.ws1 = stacked(s1, f.d_ff_shared, D);
            L.ffn.ws3 = stacked(s3, f.d_ff_shared, D);
            L.ffn.ws2 = stacked(s2, D, f.d_ff_shared);
            if (f.shared_gate)
                L.ffn.ws_gate = TensorView{f32(moe + arch.shared_gate, {f.n_shared, D}), DType::f32, Shape{f.n_shared, D}};
        }
        w.layers.push_back(L);
    }
    hf_refuse_unused(keep->files, used, dir, arch.name, kOp);
    w.keep = keep;
    return w;
}

}  // namespace moe
