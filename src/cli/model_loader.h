// Loading a model for inference: a model directory (config.json, tokenizer.json, weights, read
// into an f32 arena) or a Mixtral GGUF with tokenizer metadata (mapped, its weights used where
// they lie, in their stored types). Shared by moe run, moe generate and moe bench run.
#pragma once
#include <memory>
#include <string>

#include "moe/arena.h"
#include "moe/infer.h"
#include "moe/model.h"
#include "moe/model_io.h"
#include "moe/tokenizer.h"

namespace moe::cli {

struct LoadedModel {
    ModelConfig c;
    ModelFileInfo info;
    BpeTokenizer tok;
    Arena arena;    // a directory's f32 weights (empty for a GGUF)
    InferWeights w; // what the decoder reads: views of the arena or of the mapped GGUF
    std::string format;  // "directory" (f32 arena), "directory (mapped)" (hf_infer_weights) or "gguf"
    int64_t packed_bytes = 0;  // Q4_0 / Q8_0 weights packed by 8 rows (infer_weights_pack8)
};

// Throws naming the path when it is neither a model directory nor a usable GGUF file.
// need_tokenizer = false (benchmarks on token ids): no tokenizer is read. repack = false
// (--no-repack, as llama.cpp's): a GGUF's Q4_0 / Q8_0 matrices are used as stored, not packed
// by 8 rows.
std::unique_ptr<LoadedModel> load_model(const std::string& path, const char* op, bool need_tokenizer = true,
                                        bool repack = true);

}  // namespace moe::cli
