// DeepSeek-V2 / V2-Lite / V3 as llama.cpp's "deepseek2" GGUF (src/model/gguf_deepseek2.cpp): the
// keys beyond those every architecture shares, for the generic GGUF code (gguf_model.cpp reads,
// gguf_convert.cpp writes; the tensor list is each_model_tensor's). docs/formats.md, "DeepSeek-V2 /
// V3 (deepseek2)", has the tables.
#pragma once
#include <string>

#include "moe/gguf.h"
#include "moe/gguf_write.h"
#include "moe/model.h"
#include "moe/model_io.h"

namespace moe::gguf_ds2 {

// Why llama.cpp's deepseek2 graph would compute another function than c ("" when it would not).
std::string unsupported(const ModelConfig& c);
// The deepseek2.* keys beyond the common ones: layer layout, MLA sizes, router, yarn.
void write_metadata(GgufWriter& w, const ModelConfig& c, const ModelFileInfo& info);
// Fills c's architecture, attention, MLA, MoE and layer layout from the deepseek2.* keys, as
// llama.cpp computes them; c has the common keys (layers, D, H, eps, rope theta, vocabulary)
// already. context_length: deepseek2.context_length (yarn's default original context).
void read_config(const GgufFile& f, ModelConfig& c, int64_t context_length);

}  // namespace moe::gguf_ds2
