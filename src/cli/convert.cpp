// moe convert: a Mixtral-style model directory (config.json, model.safetensors, tokenizer.json)
// -> one GGUF file as llama.cpp's convert_hf_to_gguf.py writes Mixtral (include/moe/gguf_model.h).
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "commands.h"
#include "moe/gguf_model.h"

namespace moe::cli {
namespace {

struct ConvertOptions {
    std::string model, out, outtype = "f32", name;
};

void run_convert(const ConvertOptions& o) {
    static const std::map<std::string, GgmlType> kTypes = {{"f32", GgmlType::f32}, {"f16", GgmlType::f16},
                                                           {"bf16", GgmlType::bf16}, {"q8_0", GgmlType::q8_0},
                                                           {"q4_0", GgmlType::q4_0}};
    GgufConvertOptions opts;
    opts.outtype = kTypes.at(o.outtype);  // CLI11 checked it
    opts.name = o.name;
    for (const std::string& note : gguf_convert_model_dir(o.model, o.out, opts))
        std::fprintf(stderr, "moe convert: note: %s\n", note.c_str());
    std::printf("wrote %s (%s)\n", o.out.c_str(), o.outtype.c_str());
}

}  // namespace

void register_convert(CLI::App& app) {
    auto o = std::make_shared<ConvertOptions>();
    CLI::App* cmd = app.add_subcommand("convert", "write a Mixtral-style model directory as GGUF (llama.cpp's layout)");
    cmd->add_option("-m,--model", o->model, "model directory (config.json, model.safetensors, tokenizer.json)")->required();
    cmd->add_option("-o,--out", o->out, "the GGUF file to write")->required();
    cmd->add_option("--outtype", o->outtype, "type of the weight matrices (norms and router stay f32)")
        ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0", "q4_0"}));
    cmd->add_option("--name", o->name, "general.name (default: the directory's name)");
    cmd->callback([o] { run_convert(*o); });
}

}  // namespace moe::cli
