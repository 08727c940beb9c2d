#include "model_loader.h"

#include <filesystem>

#include "moe/error.h"
#include "moe/gguf_model.h"

namespace moe::cli {

std::unique_ptr<LoadedModel> load_model(const std::string& path, const char* op, bool need_tokenizer, bool repack) {
    auto m = std::make_unique<LoadedModel>();
    // A .gguf file (moe convert, or llama.cpp's converter for Mixtral) or a model directory.
    const bool gguf = std::filesystem::is_regular_file(path) && gguf_has_magic(path);
    std::shared_ptr<const GgufFile> file = gguf ? std::make_shared<const GgufFile>(path) : nullptr;
    m->format = gguf ? "gguf" : "directory";
    m->c = gguf ? gguf_model_config(*file, &m->info) : model_config_read(path + "/config.json", &m->info);
    if (need_tokenizer) {
        MOE_CHECK(!gguf || gguf_has_tokenizer(*file), op,
                  path + " has no tokenizer metadata (tokenizer.ggml.*); convert a directory that has tokenizer.json");
        m->tok = gguf ? gguf_tokenizer(*file) : BpeTokenizer::load(path + "/tokenizer.json");
        MOE_CHECK(m->tok.vocab_size() == m->c.vocab_size, op,
                  path + ": the tokenizer has " + std::to_string(m->tok.vocab_size()) + " tokens, the model " +
                      std::to_string(m->c.vocab_size));
    }
    if (gguf) {
        m->w = gguf_infer_weights(file, m->c);
        // Q4_0 / Q8_0 packed for the 8-row kernels; the file's copy of those bytes leaves memory.
        auto release = [&file](const void* p, uint64_t n) { file->release(p, n); };
        if (repack) m->packed_bytes = infer_weights_pack8(m->w, m->c, release);
    } else if (hf_can_map(path, m->c)) {
        m->w = hf_infer_weights(path, m->c);  // mapped, in the stored types
        m->format = "directory (mapped)";
    } else {
        const ModelParams p = model_params_allocate(m->arena, m->c);
        model_load_weights(path, m->c, p);
        m->w = infer_weights(p, m->c);
    }
    return m;
}

}  // namespace moe::cli
