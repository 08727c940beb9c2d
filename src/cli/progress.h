// The progress bar of the long-running commands (moe train, moe convert --random): "[====    ]".
#pragma once
#include <algorithm>
#include <string>

namespace moe::cli {

// `fraction` of `width` characters filled with '=', between brackets.
inline std::string progress_bar(double fraction, int width = 30) {
    const int filled = std::clamp(int(double(width) * fraction), 0, width);
    return "[" + std::string(size_t(filled), '=') + std::string(size_t(width - filled), ' ') + "]";
}

}  // namespace moe::cli
