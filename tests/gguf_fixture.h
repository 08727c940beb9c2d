// transformers' tiny Mixtral (tests/fixtures/hf_mixtral_tiny, tools/gen_hf_fixtures.py) converted
// to GGUF as `moe convert` writes it, for the GGUF model and decoder tests.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>

#include "moe/gguf_model.h"
#include "moe/gguf_write.h"

namespace moe::test {

inline const std::string kHfMixtralTiny = std::string(MOE_FIXTURE_DIR) + "/hf_mixtral_tiny";

// The fixture as a GGUF of `type` in the temp directory, one file per test suite, test and type
// (ctest runs the tests in parallel processes). The caller removes it.
inline std::string convert_hf_mixtral_tiny(GgmlType type) {
    const ::testing::TestInfo* t = ::testing::UnitTest::GetInstance()->current_test_info();
    const std::string out = (std::filesystem::temp_directory_path() /
                             ("moe_test_" + std::string(t->test_suite_name()) + "_" + t->name() + "_" +
                              ggml_type_name(type) + ".gguf"))
                                .string();
    GgufConvertOptions o;
    o.outtype = type;
    gguf_convert_model_dir(kHfMixtralTiny, out, o);
    return out;
}

// A copy of src (u32 / f32 / bool / string metadata, tensors' bytes) with edits: `meta` may drop
// or replace a key (return true when it wrote the key itself, or to drop it), `keep` drops
// tensors, `extra` adds some.
inline void rewrite(const GgufFile& src, const std::string& out,
                    const std::function<bool(GgufWriter&, const std::string&)>& meta,
                    const std::function<bool(const std::string&)>& keep,
                    const std::function<void(GgufWriter&)>& extra = nullptr) {
    GgufWriter w;
    for (const auto& [key, v] : src.metadata()) {
        if (meta(w, key)) continue;
        if (v.type == GgufType::u32) w.add_u32(key, src.get<uint32_t>(key));
        else if (v.type == GgufType::f32) w.add_f32(key, src.get<float>(key));
        else if (v.type == GgufType::boolean) w.add_bool(key, src.get<bool>(key));
        else if (v.type == GgufType::string) w.add_string(key, src.get<std::string>(key));
        else FAIL() << "unexpected metadata type of " << key;
    }
    for (const GgufTensor& t : src.tensors())
        if (keep(t.name))
            w.add_tensor(t.name, t.type, t.shape(), std::string(reinterpret_cast<const char*>(src.tensor_data(t)), t.nbytes));
    if (extra) extra(w);
    w.write(out);
}

}  // namespace moe::test
