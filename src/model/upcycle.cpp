// Sparse upcycling: dense FFN -> identical experts, random router (include/moe/upcycle.h).
#include "moe/upcycle.h"

#include <cstring>
#include <string>
#include <tuple>

#include "moe/error.h"

namespace moe {
namespace {

void copy(const TensorView& dst, const TensorView& src, const std::string& what) {
    MOE_CHECK(dst.shape == src.shape, "upcycle",
              what + ": the dense model has shape " + src.shape.str() + ", the MoE model " + dst.shape.str());
    std::memcpy(dst.data, src.data, dst.nbytes());
}

// Every expert of the stacked (E, A, B) dst := the one-expert (1, A, B) src.
void replicate(const TensorView& dst, const TensorView& src, const std::string& what) {
    MOE_CHECK(dst.shape[1] == src.shape[1] && dst.shape[2] == src.shape[2], "upcycle",
              what + ": the dense FFN is " + src.shape.str() + ", each expert " + dst.shape.str() +
                  "; pass --intermediate-size equal to the dense model's FFN size");
    const size_t bytes = src.nbytes();
    for (int64_t e = 0; e < dst.shape[0]; ++e) std::memcpy(static_cast<char*>(dst.data) + size_t(e) * bytes, src.data, bytes);
}

}  // namespace

void model_upcycle(const ModelConfig& src_c, const ModelParams& src, const ModelConfig& dst_c,
                   const ModelParams& dst, uint64_t seed) {
    const char* op = "upcycle";
    model_validate(src_c);
    model_validate(dst_c);
    MOE_CHECK(!src_c.attn.mla && !dst_c.attn.mla, op,
              "multi-head latent attention (DeepSeek) cannot be upcycled: moe writes Mixtral-style attention only");
    MOE_CHECK(src_c.vocab_size == dst_c.vocab_size && src_c.num_layers == dst_c.num_layers &&
                  src_c.hidden() == dst_c.hidden() && src_c.attn.n_heads == dst_c.attn.n_heads &&
                  src_c.attn.n_kv_heads == dst_c.attn.n_kv_heads && src_c.attn.hd() == dst_c.attn.hd() &&
                  src_c.tie_word_embeddings == dst_c.tie_word_embeddings,
              op, "the two models differ outside their FFNs (vocabulary, layers, width, heads or tied embeddings)");
    copy(dst.embed, src.embed, "model.embed_tokens");
    copy(dst.final_norm, src.final_norm, "model.norm");
    if (!dst_c.tie_word_embeddings) copy(dst.lm_head, src.lm_head, "lm_head");
    for (int64_t l = 0; l < dst_c.num_layers; ++l) {
        const ModelLayerParams &s = src.layers[size_t(l)], &d = dst.layers[size_t(l)];
        const std::string layer = "layer " + std::to_string(l);
        copy(d.input_norm, s.input_norm, layer + " input_layernorm");
        copy(d.post_norm, s.post_norm, layer + " post_attention_layernorm");
        copy(d.attn.q_proj, s.attn.q_proj, layer + " q_proj");
        copy(d.attn.k_proj, s.attn.k_proj, layer + " k_proj");
        copy(d.attn.v_proj, s.attn.v_proj, layer + " v_proj");
        copy(d.attn.o_proj, s.attn.o_proj, layer + " o_proj");
        const bool src_moe = src_c.is_moe_layer(l), dst_moe = dst_c.is_moe_layer(l);
        MOE_CHECK(!src_moe || dst_moe, op, layer + " is MoE in the source and dense in the target; upcycling only adds experts");
        if (src_moe || !dst_moe) {  // same kind of FFN: the same tensors
            const MoeLayerConfig a = src_c.ffn(l), b = dst_c.ffn(l);
            MOE_CHECK(a.n_experts == b.n_experts && a.n_shared == b.n_shared && a.router.kind == b.router.kind &&
                          a.shared_gate == b.shared_gate,
                      op, layer + " is MoE in both models but with different experts or routers");
            for (auto [dv, sv, name] : {std::tuple{d.moe.router, s.moe.router, "router"},
                                        {d.moe.router_noise, s.moe.router_noise, "router noise"},
                                        {d.moe.router_bias, s.moe.router_bias, "router bias"},
                                        {d.moe.router_proj, s.moe.router_proj, "router projection"},
                                        {d.moe.router_temp, s.moe.router_temp, "router temperature"},
                                        {d.moe.w1, s.moe.w1, "w1"}, {d.moe.w3, s.moe.w3, "w3"}, {d.moe.w2, s.moe.w2, "w2"},
                                        {d.moe.ws1, s.moe.ws1, "shared w1"}, {d.moe.ws3, s.moe.ws3, "shared w3"},
                                        {d.moe.ws2, s.moe.ws2, "shared w2"}, {d.moe.ws_gate, s.moe.ws_gate, "shared gate"}})
                copy(dv, sv, layer + " " + name);
            continue;
        }
        // Dense -> MoE: a fresh router (and the router's extra tensors), experts = the FFN.
        MOE_CHECK(dst_c.moe.n_shared == 0, op,
                  layer + ": upcycling into shared experts is not supported; use --n-shared-experts 0");
        moe_layer_params_init(d.moe, seed + uint64_t(l));
        replicate(d.moe.w1, s.moe.w1, layer + " w1 (gate_proj)");
        replicate(d.moe.w3, s.moe.w3, layer + " w3 (up_proj)");
        replicate(d.moe.w2, s.moe.w2, layer + " w2 (down_proj)");
    }
}

}  // namespace moe
