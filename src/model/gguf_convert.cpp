// A model directory -> GGUF, as llama.cpp's convert_hf_to_gguf.py writes it (include/moe/
// gguf_model.h; docs/formats.md, "`moe convert` and GGUF models"): <arch>.* hyper-parameters (deepseek2's
// own in gguf_deepseek2.cpp), the tokenizer (gpt2 / llama), llama.cpp's tensor names, q / k rows
// permuted for ggml's RoPE (llama), DeepSeek's kv_b_proj split, norms and router in F32.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gguf_deepseek2.h"
#include "moe/error.h"
#include "moe/files.h"
#include "moe/gguf_model.h"
#include "moe/pretokenize.h"

namespace moe {
namespace {

constexpr const char* kOp = "convert";
constexpr uint32_t kQuantVersion = 2;  // GGML_QNT_VERSION: the layout of Q4_0 / Q8_0 blocks

}  // namespace

uint32_t gguf_file_type(GgmlType outtype) {
    switch (outtype) {
        case GgmlType::f32: return 0;
        case GgmlType::f16: return 1;
        case GgmlType::q4_0: return 2;
        case GgmlType::q8_0: return 7;
        case GgmlType::bf16: return 32;
        default:
            fail(kOp, std::string("outtype ") + ggml_type_name(outtype) + " is not supported; use f32, f16, bf16, q8_0 or q4_0");
    }
}

GgmlType gguf_tensor_type(const GgufTensorSpec& t, GgmlType outtype, std::vector<std::string>* notes) {
    if (t.shape.size() < 2 || t.keep_f32) return GgmlType::f32;
    const int64_t row = t.shape.back();
    if (row % ggml_type_info(outtype).block_size == 0) return outtype;
    if (notes)
        notes->push_back(t.name + ": rows of " + std::to_string(row) + " are not whole " + ggml_type_name(outtype) +
                         " blocks; stored as F16 (as convert_hf_to_gguf.py falls back)");
    return GgmlType::f16;
}

void gguf_write_model_metadata(GgufWriter& w, const ModelConfig& c, const ModelFileInfo& info,
                               const GgufConvertOptions& o) {
    std::string why;
    MOE_CHECK(gguf_model_supported(c, &why), kOp, why);
    const std::string arch = arch_info(c.arch).gguf_arch, k = arch + ".";
    w.add_string("general.architecture", arch);
    w.add_string("general.name", o.name.empty() ? "moe" : o.name);
    w.add_u32("general.file_type", gguf_file_type(o.outtype));
    w.add_u32("general.quantization_version", kQuantVersion);
    w.add_u32(k + "vocab_size", uint32_t(c.vocab_size));
    w.add_u32(k + "context_length", uint32_t(info.max_position_embeddings));
    w.add_u32(k + "embedding_length", uint32_t(c.hidden()));
    w.add_u32(k + "block_count", uint32_t(c.num_layers));
    // As convert_hf_to_gguf.py: feed_forward_length is config.json's intermediate_size (Qwen,
    // DeepSeek: the dense FFN's), the experts' own size goes to expert_feed_forward_length.
    const bool qwen = c.arch == ModelArch::qwen2_moe || c.arch == ModelArch::qwen3_moe;
    const bool deepseek = arch_uses_mla(c.arch);
    w.add_u32(k + "feed_forward_length", uint32_t(qwen || deepseek ? c.dense_ff() : c.moe.d_ff));
    if (qwen) w.add_u32(k + "expert_feed_forward_length", uint32_t(c.moe.d_ff));
    if (c.moe.n_shared > 0 && !deepseek) w.add_u32(k + "expert_shared_feed_forward_length", uint32_t(c.moe.d_ff_shared));
    w.add_u32(k + "attention.head_count", uint32_t(c.attn.n_heads));
    // DeepSeek's latent attention is stored as MQA (one KV head over the latent), as the converter does.
    w.add_u32(k + "attention.head_count_kv", uint32_t(deepseek ? 1 : c.attn.n_kv_heads));
    if (!deepseek && c.attn.head_dim > 0 && c.attn.head_dim * c.attn.n_heads != c.hidden()) {
        w.add_u32(k + "attention.key_length", uint32_t(c.attn.hd()));
        w.add_u32(k + "attention.value_length", uint32_t(c.attn.hd()));
    }
    w.add_f32(k + "rope.freq_base", float(c.attn.rope_theta));
    w.add_f32(k + "attention.layer_norm_rms_epsilon", float(c.rms_norm_eps));
    w.add_u32(k + "expert_count", uint32_t(c.moe.n_experts));
    w.add_u32(k + "expert_used_count", uint32_t(c.moe.top_k));
    w.add_u32(k + "rope.dimension_count", uint32_t(c.attn.hd()));  // DeepSeek: qk_rope_head_dim
    if (deepseek) gguf_ds2::write_metadata(w, c, info);
}

void gguf_write_model(GgufWriter& w, const ModelConfig& c, const ModelFileInfo& info, const ModelParams& p,
                      const GgufConvertOptions& o, std::vector<std::string>* notes) {
    const std::vector<GgufModelTensor> tensors = gguf_model_tensors(p, c);  // throws unless gguf_model_supported
    gguf_write_model_metadata(w, c, info, o);
    const std::vector<GgufTensorSpec> specs = gguf_model_tensor_specs(c);  // the same list, the shapes written
    std::vector<float> moved;
    const MlaConfig& m = c.mla;
    const int64_t Lr = m.kv_lora_rank, Nd = m.qk_nope_head_dim, Vd = m.v_head_dim;
    for (size_t i = 0; i < tensors.size(); ++i) {
        const GgufModelTensor& t = tensors[i];
        const float* data = t.view.f32();
        if (t.rope_heads > 0) {
            moved.resize(size_t(t.view.numel()));
            gguf_rope_permute(moved.data(), data, t.rope_heads, c.attn.hd(), c.hidden());
            data = moved.data();
        } else if (t.kv_split == GgufKvSplit::k_b) {  // each head's key rows, transposed: (H, L, Nd)
            moved = mla_k_b_from_kv_b(m, QMatrix{GgmlType::f32, m.n_heads * (Nd + Vd), Lr, data});
            data = moved.data();
        } else if (t.kv_split == GgufKvSplit::v_b) {  // each head's value rows: (H, Vd, L)
            moved.resize(size_t(m.n_heads * Vd * Lr));
            for (int64_t h = 0; h < m.n_heads; ++h)
                std::copy_n(data + (h * (Nd + Vd) + Nd) * Lr, Vd * Lr, moved.data() + h * Vd * Lr);
            data = moved.data();
        }
        w.add_tensor_f32(t.name, gguf_tensor_type(specs[i], o.outtype, notes), specs[i].shape, data);
    }
}

void gguf_write_tokenizer(GgufWriter& w, const std::string& tokenizer_json, int64_t vocab_size) {
    const BpeTokenizer tok = BpeTokenizer::load(tokenizer_json);  // the same checks as generation
    MOE_CHECK(tok.vocab_size() <= vocab_size, kOp,
              tokenizer_json + " has " + std::to_string(tok.vocab_size()) + " tokens but the model's vocab_size is " +
                  std::to_string(vocab_size) + "; the tokenizer belongs to another model");
    GgufTokenizerVocab v = tok.gguf_vocab();
    const bool spm = v.model == "llama";
    // Padding as convert_hf_to_gguf.py pads: gpt2 "[PADi]" user-defined, SentencePiece "[PADi]"
    // unused with score -1000.
    for (int64_t i = tok.vocab_size(); i < vocab_size; ++i) {
        v.tokens.push_back("[PAD" + std::to_string(i) + "]");
        v.types.push_back(spm ? BpeTokenizer::kUnused : BpeTokenizer::kUserDefined);
        if (spm) v.scores.push_back(-1000.0f);
    }
    w.add_string("tokenizer.ggml.model", v.model);
    if (!spm) {  // the pre-tokenizer by llama.cpp's name for it (include/moe/pretokenize.h)
        MOE_CHECK(!v.pre.empty(), kOp,
                  tokenizer_json + ": its normalizer and pre_tokenizer match none of the GGUF pre-tokenizers moe and "
                                   "llama.cpp name (tokenizer.ggml.pre: " + text::gguf_pre_names() +
                                   "), so a GGUF could not say how to split text");
        w.add_string("tokenizer.ggml.pre", v.pre);
    }
    w.add_strings("tokenizer.ggml.tokens", v.tokens);
    if (spm) w.add_f32s("tokenizer.ggml.scores", v.scores);
    w.add_i32s("tokenizer.ggml.token_type", v.types);
    if (!spm) w.add_strings("tokenizer.ggml.merges", v.merges);
    if (v.bos >= 0) w.add_u32("tokenizer.ggml.bos_token_id", uint32_t(v.bos));
    if (v.eos >= 0) w.add_u32("tokenizer.ggml.eos_token_id", uint32_t(v.eos));
    if (v.unk >= 0) w.add_u32("tokenizer.ggml.unknown_token_id", uint32_t(v.unk));
    w.add_bool("tokenizer.ggml.add_bos_token", v.add_bos);
    w.add_bool("tokenizer.ggml.add_eos_token", false);
    if (spm) w.add_bool("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
    const std::filesystem::path config = std::filesystem::path(tokenizer_json).parent_path() / "tokenizer_config.json";
    if (std::filesystem::exists(config)) {
        const nlohmann::json c = read_json_file(config.string(), kOp);
        if (c.contains("chat_template") && c["chat_template"].is_string())
            w.add_string("tokenizer.chat_template", c["chat_template"].get<std::string>());
    }
}

std::vector<std::string> gguf_convert_model_dir(const std::string& dir, const std::string& out,
                                                const GgufConvertOptions& o) {
    ModelFileInfo info;
    const ModelConfig c = model_config_read(dir + "/config.json", &info);
    std::string why;
    MOE_CHECK(gguf_model_supported(c, &why), kOp, dir + ": " + why + "; such models cannot be converted");
    gguf_file_type(o.outtype);  // an unsupported outtype fails before the weights are read
    Arena arena;
    const ModelParams p = model_params_allocate(arena, c);
    model_load_weights(dir, c, p);
    std::vector<std::string> notes;
    GgufWriter w;
    GgufConvertOptions opts = o;
    if (opts.name.empty()) opts.name = std::filesystem::path(dir).lexically_normal().filename().string();
    if (opts.name.empty()) opts.name = std::filesystem::path(dir).lexically_normal().parent_path().filename().string();
    gguf_write_model(w, c, info, p, opts, &notes);
    if (std::filesystem::exists(dir + "/tokenizer.json"))
        gguf_write_tokenizer(w, dir + "/tokenizer.json", c.vocab_size);
    else {
        // llama.cpp's vocabulary type NONE: it loads the model (token ids in, logits out) without one.
        w.add_string("tokenizer.ggml.model", "no_vocab");
        notes.push_back(dir + " has no tokenizer.json: the GGUF has tokenizer.ggml.model = \"no_vocab\" and no "
                              "vocabulary (llama.cpp runs it on token ids; moe generate needs a tokenizer)");
    }
    w.write(out);
    return notes;
}

}  // namespace moe
