#include "moe/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "moe/error.h"

namespace moe {

std::string read_file(const std::string& path, const char* op, const std::string& hint,
                      const std::string& what) {
    std::ifstream f(path, std::ios::binary);
    MOE_CHECK(f.good(), op, "cannot open " + (what.empty() ? "" : what + " ") + path + (hint.empty() ? "" : "; " + hint));
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

nlohmann::json read_json_file(const std::string& path, const char* op, const std::string& hint) {
    const std::string text = read_file(path, op, hint);
    try {
        return nlohmann::json::parse(text);
    } catch (const std::exception& e) {
        throw Error(std::string("[") + op + "] " + path + " is not valid JSON: " + e.what());
    }
}

void write_file_atomic(const std::string& path, const std::string& content, const char* op) {
    write_file_atomic_parts(path, {std::string_view(content)}, op);
}

void write_file_atomic_parts(const std::string& path, const std::vector<std::string_view>& parts, const char* op) {
    const std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    MOE_CHECK(fd >= 0, op, "cannot create " + tmp + "; check the directory exists and is writable");
    for (std::string_view part : parts) {
        const char* p = part.data();
        size_t n = part.size();
        while (n > 0) {
            ssize_t w = ::write(fd, p, n);
            if (w < 0) {
                ::close(fd);
                throw Error(std::string("[") + op + "] writing " + tmp + " failed (disk full?)");
            }
            p += w;
            n -= size_t(w);
        }
    }
    const bool synced = ::fsync(fd) == 0;
    ::close(fd);
    MOE_CHECK(synced, op, "fsync of " + tmp + " failed");
    MOE_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, op, "cannot rename " + tmp + " to " + path);
    const std::filesystem::path dir = std::filesystem::path(path).parent_path();
    int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

}  // namespace moe
