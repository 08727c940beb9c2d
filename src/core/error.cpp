#include "moe/error.h"

namespace moe {

void fail(const char* op, const std::string& message) {
    throw Error(std::string("[") + op + "] " + message);
}

}  // namespace moe
