// GGUF writer (include/moe/gguf_write.h). Little-endian only, as the reader.
#include "moe/gguf_write.h"

#include <cstring>
#include <string_view>

#include "moe/error.h"
#include "moe/files.h"
#include "moe/gguf.h"

namespace moe {
namespace {

constexpr const char* kOp = "gguf_write";

template <class T> void put(std::string& out, T v) { out.append(reinterpret_cast<const char*>(&v), sizeof(T)); }
void put_str(std::string& out, const std::string& s) {
    put<uint64_t>(out, s.size());
    out += s;
}

}  // namespace

void GgufWriter::key(const std::string& k, uint32_t type) {
    MOE_CHECK(keys_.insert(k).second, kOp, "metadata key '" + k + "' added twice; each key appears once in a GGUF file");
    put_str(kv_, k);
    put<uint32_t>(kv_, type);
    ++n_kv_;
}

void GgufWriter::add_u32(const std::string& k, uint32_t v) { key(k, uint32_t(GgufType::u32)); put(kv_, v); }
void GgufWriter::add_i32(const std::string& k, int32_t v) { key(k, uint32_t(GgufType::i32)); put(kv_, v); }
void GgufWriter::add_u64(const std::string& k, uint64_t v) { key(k, uint32_t(GgufType::u64)); put(kv_, v); }
void GgufWriter::add_f32(const std::string& k, float v) { key(k, uint32_t(GgufType::f32)); put(kv_, v); }
void GgufWriter::add_bool(const std::string& k, bool v) { key(k, uint32_t(GgufType::boolean)); put<uint8_t>(kv_, v ? 1 : 0); }
void GgufWriter::add_string(const std::string& k, const std::string& v) { key(k, uint32_t(GgufType::string)); put_str(kv_, v); }

void GgufWriter::add_strings(const std::string& k, const std::vector<std::string>& v) {
    key(k, uint32_t(GgufType::array));
    put<uint32_t>(kv_, uint32_t(GgufType::string));
    put<uint64_t>(kv_, v.size());
    for (const std::string& s : v) put_str(kv_, s);
}

void GgufWriter::add_i32s(const std::string& k, const std::vector<int32_t>& v) {
    key(k, uint32_t(GgufType::array));
    put<uint32_t>(kv_, uint32_t(GgufType::i32));
    put<uint64_t>(kv_, v.size());
    for (int32_t x : v) put(kv_, x);
}

void GgufWriter::add_f32s(const std::string& k, const std::vector<float>& v) {
    key(k, uint32_t(GgufType::array));
    put<uint32_t>(kv_, uint32_t(GgufType::f32));
    put<uint64_t>(kv_, v.size());
    for (float x : v) put(kv_, x);
}

uint64_t GgufWriter::check_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& shape) {
    MOE_CHECK(!names_.count(name), kOp, "tensor '" + name + "' added twice; tensor names are unique in GGUF");
    MOE_CHECK(!shape.empty() && shape.size() <= 4, kOp,
              "tensor '" + name + "' has " + std::to_string(shape.size()) + " dims; GGUF takes 1 to 4");
    int64_t numel = 1;
    for (int64_t d : shape) {
        MOE_CHECK(d > 0, kOp, "tensor '" + name + "' has a dim of " + std::to_string(d) + "; dims must be positive");
        numel *= d;
    }
    const GgmlTypeInfo& t = ggml_type_info(type);
    MOE_CHECK(shape.back() % t.block_size == 0, kOp,
              "tensor '" + name + "': rows of " + std::to_string(shape.back()) + " values are not whole " + t.name +
                  " blocks of " + std::to_string(t.block_size) + "; store it as F32 or F16");
    return uint64_t(numel / t.block_size * t.block_bytes);
}

void GgufWriter::push(Tensor t) {
    names_.insert(t.name);
    t.offset = data_bytes_;
    data_bytes_ += (t.nbytes + kAlignment - 1) / kAlignment * kAlignment;
    tensors_.push_back(std::move(t));
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& shape, std::string data) {
    const uint64_t want = check_tensor(name, type, shape);
    MOE_CHECK(data.size() == want, kOp,
              "tensor '" + name + "' of type " + ggml_type_name(type) + " needs " + std::to_string(want) +
                  " bytes, got " + std::to_string(data.size()));
    push({name, type, shape, 0, want, std::move(data), nullptr});
}

void GgufWriter::add_tensor_lazy(const std::string& name, GgmlType type, const std::vector<int64_t>& shape, Fill fill) {
    const uint64_t bytes = check_tensor(name, type, shape);
    MOE_CHECK(fill != nullptr, kOp, "tensor '" + name + "' has no fill function");
    push({name, type, shape, 0, bytes, std::string(), std::move(fill)});
}

void GgufWriter::add_tensor_f32(const std::string& name, GgmlType type, const std::vector<int64_t>& shape,
                                const float* values) {
    MOE_CHECK(!shape.empty(), kOp, "tensor '" + name + "' has no dims");
    int64_t numel = 1;
    for (int64_t d : shape) numel *= d;
    const int64_t row = shape.back();
    MOE_CHECK(row > 0 && numel % row == 0, kOp, "tensor '" + name + "' has an empty dim");
    const GgmlTypeInfo& t = ggml_type_info(type);
    MOE_CHECK(row % t.block_size == 0, kOp,
              "tensor '" + name + "': rows of " + std::to_string(row) + " values are not whole " + t.name +
                  " blocks of " + std::to_string(t.block_size) + "; store it as F32 or F16");
    const int64_t row_bytes = ggml_row_bytes(type, row);
    std::string data(size_t(numel / row * row_bytes), '\0');
    for (int64_t r = 0; r < numel / row; ++r) quantize_row(type, values + r * row, data.data() + r * row_bytes, row);
    add_tensor(name, type, shape, std::move(data));
}

std::string GgufWriter::header() const {
    std::string h = "GGUF";
    put<uint32_t>(h, 3);
    put<uint64_t>(h, tensors_.size());
    put<uint64_t>(h, n_kv_);
    h += kv_;
    for (const Tensor& t : tensors_) {
        put_str(h, t.name);
        put<uint32_t>(h, uint32_t(t.shape.size()));
        for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) put<uint64_t>(h, uint64_t(*it));
        put<uint32_t>(h, uint32_t(t.type));
        put<uint64_t>(h, t.offset);
    }
    h.resize((h.size() + kAlignment - 1) / kAlignment * kAlignment, '\0');
    return h;
}

void GgufWriter::write(const std::string& path) const {
    AtomicFile f(path, kOp);
    f.append(header());
    static const char kZeros[kAlignment] = {};
    std::string buf;  // a lazy tensor's bytes, one at a time
    for (const Tensor& t : tensors_) {
        if (t.fill) {
            buf.resize(size_t(t.nbytes));
            t.fill(buf.data());
            f.append(buf);
        } else {
            f.append(t.data);
        }
        f.append(std::string_view(kZeros, size_t((kAlignment - t.nbytes % kAlignment) % kAlignment)));
    }
    f.commit();
}

}  // namespace moe
