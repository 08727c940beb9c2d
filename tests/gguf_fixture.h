// transformers' tiny Mixtral (tests/fixtures/hf_mixtral_tiny, tools/gen_hf_fixtures.py) converted
// to GGUF as `moe convert` writes it, for the GGUF model and decoder tests.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "moe/gguf_model.h"

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

}  // namespace moe::test
