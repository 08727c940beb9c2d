// GGUF reader (include/moe/gguf.h). Every read goes through Cursor, which checks the bytes left
// before it touches them, and every count is bounded by the bytes it needs before anything is
// allocated for it; so a truncated or corrupt file ends in moe::Error, not in a crash.
#include "moe/gguf.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <type_traits>

#include "moe/error.h"
#include "moe/files.h"

namespace moe {
namespace {

constexpr const char* kOp = "gguf";
constexpr uint32_t kMaxDims = 4;

uint64_t elem_size(GgufType t) {
    switch (t) {
        case GgufType::u8: case GgufType::i8: case GgufType::boolean: return 1;
        case GgufType::u16: case GgufType::i16: return 2;
        case GgufType::u32: case GgufType::i32: case GgufType::f32: return 4;
        case GgufType::u64: case GgufType::i64: case GgufType::f64: return 8;
        default: return 0;  // string, array: variable
    }
}

bool known_value_type(uint32_t t) { return t <= uint32_t(GgufType::f64); }

// Reads little-endian values from [base, base + size) with a bounds check on every read.
struct Cursor {
    const uint8_t* base;
    uint64_t size;
    uint64_t pos;
    const std::string& path;
    std::string where;  // "the header", "key 'general.name'", "tensor 'blk.0.ffn_up.weight'"

    uint64_t left() const { return size - pos; }
    [[noreturn]] void error(const std::string& what) const {
        fail(kOp, "'" + path + "' " + where + ": " + what);
    }
    void need(uint64_t n, const char* what) const {
        if (n > left())
            error(std::string(what) + " needs " + std::to_string(n) + " bytes at offset " + std::to_string(pos) +
                  " but the file has " + std::to_string(left()) + " left (truncated or corrupt file)");
    }
    template <class T> T read(const char* what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, base + pos, sizeof(T));
        pos += sizeof(T);
        return v;
    }
    std::string_view string(const char* what) {
        const uint64_t len = read<uint64_t>(what);
        if (len > left())
            error(std::string(what) + " has length " + std::to_string(len) + " but the file has " +
                  std::to_string(left()) + " bytes left (truncated or corrupt file)");
        std::string_view s(reinterpret_cast<const char*>(base + pos), size_t(len));
        pos += len;
        return s;
    }
    // A count of items of at least min_bytes each must fit in what is left of the file.
    void check_count(uint64_t count, uint64_t min_bytes, const char* what) const {
        if (count > left() / min_bytes)
            error(std::string(what) + " " + std::to_string(count) + " needs at least " + std::to_string(min_bytes) +
                  " bytes each but the file has " + std::to_string(left()) + " bytes left (corrupt count?)");
    }
};

void read_value(Cursor& c, GgufValue& v) {
    if (v.type == GgufType::string) {
        v.strings.push_back(c.string("the string value"));
        return;
    }
    if (v.type == GgufType::array) {
        const uint32_t et = c.read<uint32_t>("the array element type");
        if (!known_value_type(et))
            c.error("array element type " + std::to_string(et) + " is not a GGUF value type (0..12)");
        v.elem_type = GgufType(et);
        if (v.elem_type == GgufType::array) c.error("arrays of arrays are not supported");
        v.count = c.read<uint64_t>("the array length");
        if (v.elem_type == GgufType::string) {
            c.check_count(v.count, 8, "array of strings of length");
            v.strings.reserve(size_t(v.count));
            for (uint64_t i = 0; i < v.count; ++i) v.strings.push_back(c.string("an array string"));
            return;
        }
        const uint64_t es = elem_size(v.elem_type);
        c.check_count(v.count, es, "array length");
        v.data = c.base + c.pos;
        if (v.elem_type == GgufType::boolean)
            for (uint64_t i = 0; i < v.count; ++i)
                if (v.data[i] > 1) c.error("bool array element " + std::to_string(i) + " is " + std::to_string(v.data[i]) + ", not 0 or 1");
        c.pos += v.count * es;
        return;
    }
    const uint64_t es = elem_size(v.type);
    c.need(es, "the value");
    v.data = c.base + c.pos;
    if (v.type == GgufType::boolean && v.data[0] > 1) c.error("bool value is " + std::to_string(v.data[0]) + ", not 0 or 1");
    c.pos += es;
}

bool mul_ok(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }

}  // namespace

const char* gguf_type_name(GgufType t) {
    static const char* names[] = {"uint8", "int8",  "uint16", "int16",  "uint32", "int32", "float32",
                                  "bool",  "string", "array", "uint64", "int64",  "float64"};
    return uint32_t(t) <= 12 ? names[uint32_t(t)] : "?";
}

std::string GgufValue::type_str() const {
    if (type != GgufType::array) return gguf_type_name(type);
    return std::string("array[") + gguf_type_name(elem_type) + "]";
}

std::vector<int64_t> GgufTensor::shape() const {
    std::vector<int64_t> s;
    for (int i = n_dims - 1; i >= 0; --i) s.push_back(ne[i]);
    return s;
}

GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

GgufFile::GgufFile(const std::string& path) : path_(path) {
    map_ = std::make_unique<MappedFile>(path, kOp);
    MOE_CHECK(map_->size() >= 24, kOp,
              "'" + path + "' is " + std::to_string(map_->size()) + " bytes, too short for a GGUF header of 24 bytes (truncated?)");
    base_ = map_->data();
    size_ = map_->size();
    parse();
}

void GgufFile::release(const void* p, uint64_t bytes) const {
    if (map_) map_->release(p, bytes);
}

GgufFile GgufFile::from_bytes(std::span<const uint8_t> bytes, const std::string& name) {
    GgufFile f;
    f.path_ = name;
    f.base_ = bytes.data();
    f.size_ = bytes.size();
    f.parse();
    return f;
}

void GgufFile::parse() {
    Cursor c{base_, size_, 0, path_, "the header"};
    c.need(4, "the magic");
    if (std::memcmp(base_, "GGUF", 4) != 0) {
        char got[40];
        std::snprintf(got, sizeof got, "%02x %02x %02x %02x", base_[0], base_[1], base_[2], base_[3]);
        c.error(std::string("does not start with the magic \"GGUF\" (47 47 55 46), got ") + got +
                "; is it a GGUF file?");
    }
    c.pos = 4;
    version_ = c.read<uint32_t>("the version");
    if (version_ == 1) c.error("GGUF version 1 (32-bit counts) is not supported; re-convert it with a current llama.cpp");
    if (version_ == __builtin_bswap32(2u) || version_ == __builtin_bswap32(3u))
        c.error("is a big-endian GGUF; only little-endian files are supported");
    if (version_ != 2 && version_ != 3)
        c.error("GGUF version " + std::to_string(version_) + " is not supported (expected 2 or 3)");
    const uint64_t n_tensors = c.read<uint64_t>("the tensor count");
    const uint64_t n_kv = c.read<uint64_t>("the metadata count");
    c.check_count(n_kv, 8 + 4 + 1, "metadata count");  // key length, type, smallest value

    kv_.reserve(size_t(n_kv));
    for (uint64_t i = 0; i < n_kv; ++i) {
        c.where = "metadata entry " + std::to_string(i);
        std::string key(c.string("the key"));
        c.where = "key '" + key + "'";
        if (kv_index_.count(key)) c.error("appears twice");
        const uint32_t t = c.read<uint32_t>("the value type");
        if (!known_value_type(t)) c.error("value type " + std::to_string(t) + " is not a GGUF value type (0..12)");
        GgufValue v;
        v.type = GgufType(t);
        read_value(c, v);
        kv_index_[key] = kv_.size();
        kv_.emplace_back(std::move(key), std::move(v));
    }

    c.where = "key 'general.alignment'";
    if (has("general.alignment")) {
        const GgufValue& a = value("general.alignment");
        if (a.type != GgufType::u32) c.error("is " + a.type_str() + ", expected uint32");
        alignment_ = get<uint32_t>("general.alignment");
        if (alignment_ == 0 || (alignment_ & (alignment_ - 1)))
            c.error("is " + std::to_string(alignment_) + ", expected a power of two");
    }

    c.where = "the header";
    c.check_count(n_tensors, 8 + 4 + 8 + 4 + 8, "tensor count");  // name, n_dims, ne[0], type, offset
    tensors_.reserve(size_t(n_tensors));
    for (uint64_t i = 0; i < n_tensors; ++i) {
        c.where = "tensor " + std::to_string(i);
        GgufTensor t;
        t.name = std::string(c.string("the tensor name"));
        c.where = "tensor '" + t.name + "'";
        if (tensor_index_.count(t.name)) c.error("appears twice");
        const uint32_t n_dims = c.read<uint32_t>("n_dims");
        if (n_dims < 1 || n_dims > kMaxDims)
            c.error("has " + std::to_string(n_dims) + " dimensions, expected 1 to 4");
        t.n_dims = int(n_dims);
        uint64_t numel = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            const uint64_t ne = c.read<uint64_t>("a dimension");
            if (ne == 0 || ne > uint64_t(std::numeric_limits<int64_t>::max()) || !mul_ok(numel, ne, &numel) ||
                numel > uint64_t(std::numeric_limits<int64_t>::max()))
                c.error("dimension ne[" + std::to_string(d) + "] = " + std::to_string(ne) +
                        " is zero or makes the element count overflow");
            t.ne[d] = int64_t(ne);
        }
        const uint32_t type = c.read<uint32_t>("the tensor type");
        const GgmlTypeInfo* info = ggml_type_info(type);
        if (!info) c.error("has ggml type " + std::to_string(type) + ", which this build does not know (newer llama.cpp?)");
        t.type = GgmlType(type);
        if (t.ne[0] % info->block_size != 0)
            c.error("row length ne[0] = " + std::to_string(t.ne[0]) + " is not a multiple of the " + info->name +
                    " block size " + std::to_string(info->block_size));
        uint64_t nbytes = uint64_t(t.ne[0] / info->block_size);
        if (!mul_ok(nbytes, uint64_t(info->block_bytes), &nbytes) || !mul_ok(nbytes, uint64_t(t.ne[1]), &nbytes) ||
            !mul_ok(nbytes, uint64_t(t.ne[2]), &nbytes) || !mul_ok(nbytes, uint64_t(t.ne[3]), &nbytes))
            c.error("byte size overflows");
        t.nbytes = nbytes;
        t.offset = c.read<uint64_t>("the data offset");
        if (t.offset % alignment_ != 0)
            c.error("data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                    std::to_string(alignment_));
        tensor_index_[t.name] = tensors_.size();
        tensors_.push_back(std::move(t));
    }

    // The data section starts at the next multiple of the alignment (a file without tensors may
    // end before it).
    c.where = "the data section";
    const uint64_t pad = (alignment_ - c.pos % alignment_) % alignment_;
    if (n_tensors == 0 && pad > c.left()) {
        data_offset_ = size_;
        return;
    }
    c.need(pad, "the padding before the data section");
    data_offset_ = c.pos + pad;
    const uint64_t data_size = size_ - data_offset_;
    for (const GgufTensor& t : tensors_) {
        if (t.offset > data_size || t.nbytes > data_size - t.offset)
            fail(kOp, "'" + path_ + "' tensor '" + t.name + "': data [" + std::to_string(t.offset) + ", " +
                          std::to_string(t.offset) + " + " + std::to_string(t.nbytes) +
                          ") lies outside the data section of " + std::to_string(data_size) +
                          " bytes (truncated file?)");
    }
}

const GgufValue& GgufFile::value(const std::string& key) const {
    auto it = kv_index_.find(key);
    MOE_CHECK(it != kv_index_.end(), kOp, "'" + path_ + "' has no metadata key '" + key + "'");
    return kv_[it->second].second;
}

namespace {

template <class T> constexpr GgufType gguf_type_of();
template <> constexpr GgufType gguf_type_of<uint8_t>() { return GgufType::u8; }
template <> constexpr GgufType gguf_type_of<int8_t>() { return GgufType::i8; }
template <> constexpr GgufType gguf_type_of<uint16_t>() { return GgufType::u16; }
template <> constexpr GgufType gguf_type_of<int16_t>() { return GgufType::i16; }
template <> constexpr GgufType gguf_type_of<uint32_t>() { return GgufType::u32; }
template <> constexpr GgufType gguf_type_of<int32_t>() { return GgufType::i32; }
template <> constexpr GgufType gguf_type_of<uint64_t>() { return GgufType::u64; }
template <> constexpr GgufType gguf_type_of<int64_t>() { return GgufType::i64; }
template <> constexpr GgufType gguf_type_of<float>() { return GgufType::f32; }
template <> constexpr GgufType gguf_type_of<double>() { return GgufType::f64; }
template <> constexpr GgufType gguf_type_of<bool>() { return GgufType::boolean; }
template <> constexpr GgufType gguf_type_of<std::string>() { return GgufType::string; }

[[noreturn]] void wrong_type(const std::string& path, const std::string& key, const std::string& want,
                             const GgufValue& v) {
    fail(kOp, "'" + path + "' key '" + key + "' is " + v.type_str() + ", not " + want);
}

}  // namespace

template <class T> T GgufFile::get(const std::string& key) const {
    const GgufValue& v = value(key);
    constexpr GgufType want = gguf_type_of<T>();
    if (v.type != want) wrong_type(path_, key, gguf_type_name(want), v);
    if constexpr (std::is_same_v<T, std::string>) {
        return std::string(v.strings[0]);
    } else if constexpr (std::is_same_v<T, bool>) {
        return v.data[0] != 0;
    } else {
        T out;
        std::memcpy(&out, v.data, sizeof(T));
        return out;
    }
}

template <class T> std::vector<T> GgufFile::get_array(const std::string& key) const {
    const GgufValue& v = value(key);
    constexpr GgufType want = gguf_type_of<T>();
    if (v.type != GgufType::array || v.elem_type != want)
        wrong_type(path_, key, std::string("array[") + gguf_type_name(want) + "]", v);
    std::vector<T> out;
    out.reserve(size_t(v.count));
    if constexpr (std::is_same_v<T, std::string>) {
        for (std::string_view s : v.strings) out.emplace_back(s);
    } else if constexpr (std::is_same_v<T, bool>) {
        for (uint64_t i = 0; i < v.count; ++i) out.push_back(v.data[i] != 0);
    } else {
        out.resize(size_t(v.count));
        if (v.count) std::memcpy(out.data(), v.data, size_t(v.count) * sizeof(T));
    }
    return out;
}

#define MOE_GGUF_GETTERS(T)                                          \
    template T GgufFile::get<T>(const std::string&) const;           \
    template std::vector<T> GgufFile::get_array<T>(const std::string&) const;
MOE_GGUF_GETTERS(uint8_t)
MOE_GGUF_GETTERS(int8_t)
MOE_GGUF_GETTERS(uint16_t)
MOE_GGUF_GETTERS(int16_t)
MOE_GGUF_GETTERS(uint32_t)
MOE_GGUF_GETTERS(int32_t)
MOE_GGUF_GETTERS(uint64_t)
MOE_GGUF_GETTERS(int64_t)
MOE_GGUF_GETTERS(float)
MOE_GGUF_GETTERS(double)
MOE_GGUF_GETTERS(bool)
MOE_GGUF_GETTERS(std::string)
#undef MOE_GGUF_GETTERS

int64_t GgufFile::get_int(const std::string& key) const {
    const GgufValue& v = value(key);
    switch (v.type) {
        case GgufType::u8: return get<uint8_t>(key);
        case GgufType::i8: return get<int8_t>(key);
        case GgufType::u16: return get<uint16_t>(key);
        case GgufType::i16: return get<int16_t>(key);
        case GgufType::u32: return get<uint32_t>(key);
        case GgufType::i32: return get<int32_t>(key);
        case GgufType::i64: return get<int64_t>(key);
        case GgufType::u64: {
            const uint64_t u = get<uint64_t>(key);
            MOE_CHECK(u <= uint64_t(std::numeric_limits<int64_t>::max()), kOp,
                      "'" + path_ + "' key '" + key + "' = " + std::to_string(u) + " does not fit in int64");
            return int64_t(u);
        }
        default: wrong_type(path_, key, "an integer", v);
    }
}

const GgufTensor& GgufFile::tensor(const std::string& name) const {
    auto it = tensor_index_.find(name);
    MOE_CHECK(it != tensor_index_.end(), kOp, "'" + path_ + "' has no tensor '" + name + "'");
    return tensors_[it->second];
}

std::vector<float> GgufFile::dequantize(const std::string& name) const {
    const GgufTensor& t = tensor(name);
    const GgmlTypeInfo& info = ggml_type_info(t.type);
    MOE_CHECK(info.dequantize, kOp,
              "'" + path_ + "' tensor '" + name + "' is " + info.name +
                  ", which moe cannot dequantize yet (supported: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q4_K Q5_K Q6_K)");
    std::vector<float> out(size_t(t.numel()));
    dequantize_row(t.type, tensor_data(t), out.data(), t.numel());
    return out;
}

bool gguf_has_magic(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    char magic[4] = {};
    in.read(magic, 4);
    return in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

}  // namespace moe
