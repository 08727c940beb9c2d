// Errors: every public op validates its inputs and throws moe::Error naming the op and the
// shapes; kernels behind the boundary trust their callers (MLX style).
#pragma once
#include <stdexcept>
#include <string>

namespace moe {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Throws Error("[op] message").
[[noreturn]] void fail(const char* op, const std::string& message);

}  // namespace moe

// MOE_CHECK(cond, op, message-expression): message is only built when cond fails.
#define MOE_CHECK(cond, op, msg)                 \
    do {                                         \
        if (!(cond)) ::moe::fail((op), (msg));   \
    } while (0)
