// MoE models as GGUF, the way llama.cpp's convert_hf_to_gguf.py writes them (Mixtral as "llama"
// with llama.expert_count > 0, "qwen2moe", "qwen3moe", "olmoe", DeepSeek-V2 / V3 as "deepseek2"):
// `moe convert` writes one from a model directory, and a .gguf loads for generation: its weights
// stay mapped and quantized (gguf_infer_weights), or are dequantized to f32 into a ModelParams
// (gguf_model_load_weights). docs/formats.md, "`moe convert` and GGUF models", has the name and
// metadata mapping and the q/k permutation.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "moe/gguf.h"
#include "moe/gguf_write.h"
#include "moe/infer.h"
#include "moe/model.h"
#include "moe/model_io.h"
#include "moe/tokenizer.h"

namespace moe {

// DeepSeek's kv_b_proj (H (Nd + Vd), L) is stored as its two halves (llama.cpp's attn_k_b,
// attn_v_b): k_b (H, L, Nd) = each head's Nd key rows transposed, v_b (H, Vd, L) = its value rows.
enum class GgufKvSplit { none, k_b, v_b };

// One tensor of a model as the GGUF has it, without its values.
struct GgufTensorSpec {
    std::string name;            // "blk.0.attn_q.weight"
    std::vector<int64_t> shape;  // PyTorch order (experts stacked: (E, F, D), (E, D, F))
    int64_t rope_heads = 0;      // > 0: rows permuted for ggml's RoPE (q: H heads, k: Hkv heads)
    bool keep_f32 = false;       // norms and the router stay F32 whatever the outtype (as llama.cpp)
    GgufKvSplit kv_split = GgufKvSplit::none;  // k_b / v_b: a half of kv_b_proj (shape: the half's)
};
// True when c has a GGUF form llama.cpp runs with the same function: Mixtral as "llama" with
// experts, Qwen2-MoE as "qwen2moe", Qwen3-MoE as "qwen3moe", OLMoE as "olmoe" (every layer MoE,
// the top-k normalisation llama.cpp fixes per architecture, ...), DeepSeek-V2 / V3 as "deepseek2"
// (leading dense layers, one merged ungated shared expert, ...); else why not, in *why.
bool gguf_model_supported(const ModelConfig& c, std::string* why = nullptr);
// The tensors of a model of config c, in the order and with the names of gguf_model_tensors
// (the same list: one function makes both). Throws unless gguf_model_supported(c).
std::vector<GgufTensorSpec> gguf_model_tensor_specs(const ModelConfig& c);

// One tensor of a model under its GGUF name.
struct GgufModelTensor {
    std::string name;         // "blk.0.attn_q.weight"
    TensorView view;          // our tensor, PyTorch order (experts stacked: (E, F, D), (E, D, F));
                              // for a kv_split tensor the whole kv_b_proj (H (Nd + Vd), L)
    int64_t rope_heads = 0;   // > 0: rows permuted for ggml's RoPE (q: H heads, k: Hkv heads)
    bool keep_f32 = false;    // norms and the router stay F32 whatever the outtype (as llama.cpp)
    GgufKvSplit kv_split = GgufKvSplit::none;
};
// Every tensor of the model in llama.cpp's order: token_embd, per layer attn_norm, attn_q / k /
// v / output (DeepSeek: attn_q or attn_q_a / attn_q_a_norm / attn_q_b, attn_kv_a_mqa,
// attn_kv_a_norm, attn_k_b, attn_v_b, attn_output), ffn_norm, then ffn_gate / up / down (a
// leading dense layer) or ffn_gate_inp (exp_probs_b.bias), ffn_gate_exps / up_exps / down_exps,
// the shared expert; output_norm, output (absent when the embedding is tied). Throws unless
// gguf_model_supported(c).
std::vector<GgufModelTensor> gguf_model_tensors(const ModelParams& p, const ModelConfig& c);

// HF's rotate_half layout -> ggml's interleaved pairs, and back: within each head of hd rows,
// row s * hd/2 + j moves to 2 j + s (convert_hf_to_gguf.py's LlamaModel.permute). x is
// (heads hd, cols), row-major.
void gguf_rope_permute(float* out, const float* x, int64_t heads, int64_t hd, int64_t cols);
void gguf_rope_unpermute(float* out, const float* x, int64_t heads, int64_t hd, int64_t cols);

struct GgufConvertOptions {
    GgmlType outtype = GgmlType::f32;  // of the 2-D / 3-D matrices: F32 F16 BF16 Q8_0 Q4_0
    std::string name;                  // general.name; empty: the directory's name
};

// llama.cpp's general.file_type (llama_ftype) for an outtype: 0 F32, 1 F16, 2 Q4_0, 7 Q8_0, 32 BF16.
uint32_t gguf_file_type(GgmlType outtype);
// The type a tensor is stored as: F32 for 1-D tensors and keep_f32 ones; otherwise the outtype,
// or F16 (with a note) when its rows are not whole blocks of it, as convert_hf_to_gguf.py falls back.
GgmlType gguf_tensor_type(const GgufTensorSpec& t, GgmlType outtype, std::vector<std::string>* notes);
// general.* and <arch>.* metadata of the model (the tables in docs/formats.md), no tokenizer keys.
void gguf_write_model_metadata(GgufWriter& w, const ModelConfig& c, const ModelFileInfo& info,
                               const GgufConvertOptions& o);

// Writes the model (metadata and tensors) into w. Notes (tensors stored as another type than
// the outtype, and why) are appended to `notes`.
void gguf_write_model(GgufWriter& w, const ModelConfig& c, const ModelFileInfo& info, const ModelParams& p,
                      const GgufConvertOptions& o, std::vector<std::string>* notes);
// tokenizer.ggml.* from a Hugging Face tokenizer.json (as BpeTokenizer::load accepts), as
// llama.cpp's converter writes them: "gpt2" (tokens, token_type, merges) for byte-level BPE,
// "llama" (tokens, scores, token_type) for SentencePiece-style BPE; the special-token ids,
// add_bos_token, and tokenizer.chat_template from a tokenizer_config.json beside it. Padded
// with "[PADi]" tokens to vocab_size.
void gguf_write_tokenizer(GgufWriter& w, const std::string& tokenizer_json, int64_t vocab_size);
// `moe convert`: <dir>/config.json + weights (+ tokenizer.json when present; else
// tokenizer.ggml.model = "no_vocab") -> out. Returns the notes (no tokenizer, fallbacks). Throws naming the directory unless it is Mixtral-style.
std::vector<std::string> gguf_convert_model_dir(const std::string& dir, const std::string& out,
                                                const GgufConvertOptions& o);

// `moe convert --random`: a model of config c with random weights, written tensor by tensor
// (GgufWriter::add_tensor_lazy) so that the f32 model is never in memory: peak memory is about
// one tensor in the outtype plus one row per thread. Values as model_params_init draws them
// (norms 1, embedding N(0, 1), every other matrix, router included, N(0, 1 / sqrt(fan_in))),
// from per-row streams seeded by (seed, tensor, row): the same file for a seed whatever the
// number of threads, but not the values model_params_init(seed) gives. Rows are drawn in parallel
// (OpenMP). q / k rows are i.i.d., so the RoPE permutation is not applied. Metadata as `moe
// convert` writes it, tokenizer.ggml.model = "no_vocab".
struct GgufRandomOptions {
    GgmlType outtype = GgmlType::f32;
    uint64_t seed = 1;
    std::string name = "moe-random";  // general.name
    int64_t context_length = 4096;    // llama.context_length
    // Called between blocks of rows (from the calling thread): values written so far, in all.
    std::function<void(int64_t done, int64_t total)> progress;
};
// Throws before writing anything when c is not Mixtral-style, the outtype is not supported or
// the disk lacks the room; returns the notes (F16 fallbacks).
std::vector<std::string> gguf_write_random_model(const std::string& out, const ModelConfig& c,
                                                 const GgufRandomOptions& o);

// The model a GGUF describes; throws naming the file and the key for another architecture, a
// dense model, or a missing or impossible hyper-parameter. A deepseek2 file computes what
// llama.cpp computes from it (its yarn keys, one RMSNorm eps for every norm).
ModelConfig gguf_model_config(const GgufFile& f, ModelFileInfo* info = nullptr);
// Fills p (from model_params_reserve of gguf_model_config(f)) with the dequantized weights, the
// q/k permutation undone. Throws naming the tensor when one is missing or has other dims.
void gguf_model_load_weights(const GgufFile& f, const ModelConfig& c, const ModelParams& p);
// The decoder's weights straight from the mapped file (include/moe/infer.h): every matrix
// stays in its stored type (Q8_0, Q4_K, ...), nothing is copied but F16 / BF16 norms and router
// rows, which are dequantized. DeepSeek's attention gets k_b and v_b, no kv_b_proj (the absorbed
// path, as llama.cpp). q / k keep ggml's row order (rope_pairs). The file stays alive
// as long as the weights (their keep). Throws naming the tensor when one is missing, has other
// dims, or has a type without a quantized product.
InferWeights gguf_infer_weights(std::shared_ptr<const GgufFile> f, const ModelConfig& c);
// True when the file has a vocabulary (tokenizer.ggml.model present and not "no_vocab" / "none");
// gguf_tokenizer builds the BpeTokenizer: "gpt2" (byte-level) or "llama" (llama.cpp's SPM
// tokenizer), with bos / eos / unk ids and add_bos_token (llama.cpp's defaults when absent).
bool gguf_has_tokenizer(const GgufFile& f);
BpeTokenizer gguf_tokenizer(const GgufFile& f);

}  // namespace moe
