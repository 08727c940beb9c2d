// Corrupt and truncated GGUF files: each gives moe::Error naming the file and the key or tensor
// and what was expected, never a crash or a read outside the bytes (the bytes are parsed from an
// exactly-sized heap copy, so a sanitizer build would catch any overread).
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "moe/error.h"
#include "moe/gguf.h"

using namespace moe;

namespace {

// A GGUF file built field by field, so each test can corrupt one of them.
struct Builder {
    std::vector<uint8_t> b;
    Builder& u32(uint32_t v) { return raw(&v, 4); }
    Builder& u64(uint64_t v) { return raw(&v, 8); }
    Builder& str(const std::string& s) { u64(s.size()); return raw(s.data(), s.size()); }
    Builder& raw(const void* p, size_t n) {
        auto c = static_cast<const uint8_t*>(p);
        b.insert(b.end(), c, c + n);
        return *this;
    }
    Builder& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
        return raw("GGUF", 4).u32(version).u64(n_tensors).u64(n_kv);
    }
    // One tensor info: 1-D or 2-D.
    Builder& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
        str(name).u32(uint32_t(ne.size()));
        for (uint64_t d : ne) u64(d);
        return u32(type).u64(offset);
    }
    Builder& pad(size_t align = 32) {
        while (b.size() % align) b.push_back(0);
        return *this;
    }
    Builder& zeros(size_t n) {
        b.resize(b.size() + n, 0);
        return *this;
    }
};

// A valid file: one key, two F32 tensors of 8 values.
Builder valid() {
    Builder f;
    f.header(2, 1).str("general.architecture").u32(8).str("llama");
    f.tensor("a", {8}, 0, 0).tensor("b", {4, 2}, 0, 32).pad().zeros(64);
    return f;
}

std::string parse_error(const std::vector<uint8_t>& bytes) {
    try {
        GgufFile::from_bytes(bytes, "bad.gguf");
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

void expect_error(const Builder& f, const std::string& want) {
    const std::string msg = parse_error(f.b);
    EXPECT_NE(msg.find(want), std::string::npos) << "got: " << msg << "\nwant: " << want;
    EXPECT_NE(msg.find("'bad.gguf'"), std::string::npos) << msg;
}

}  // namespace

TEST(GgufErrors, TheBuilderMakesAValidFile) {
    const Builder f = valid();  // the parsed views point into f.b: it must outlive g
    GgufFile g = GgufFile::from_bytes(f.b, "ok.gguf");
    EXPECT_EQ(g.tensors().size(), 2u);
    EXPECT_EQ(g.get<std::string>("general.architecture"), "llama");
    EXPECT_EQ(g.tensor("b").shape(), (std::vector<int64_t>{2, 4}));
}

TEST(GgufErrors, EveryTruncationIsAnErrorNeverACrash) {
    for (const char* name : {"gguf_align64.gguf", "gguf_types.gguf"}) {
        std::ifstream in(std::string(MOE_FIXTURE_DIR) + "/" + name, std::ios::binary);
        const std::vector<uint8_t> full(std::istreambuf_iterator<char>(in), {});
        ASSERT_GT(full.size(), 400u);
        const GgufFile whole = GgufFile::from_bytes(full);
        uint64_t end_of_data = 0;  // bytes after the last tensor are padding: cutting them is harmless
        for (const GgufTensor& t : whole.tensors())
            end_of_data = std::max(end_of_data, whole.data_offset() + t.offset + t.nbytes);
        for (size_t n = 0; n < full.size(); ++n) {
            std::vector<uint8_t> cut(full.begin(), full.begin() + long(n));  // exactly n bytes on the heap
            const std::string msg = parse_error(cut);
            if (n >= end_of_data) {
                EXPECT_EQ(msg, "(no error)") << name << " cut to " << n;
            } else {
                ASSERT_NE(msg, "(no error)") << name << " cut to " << n << " of " << full.size();
                ASSERT_TRUE(msg.find("truncated") != std::string::npos || msg.find("corrupt") != std::string::npos)
                    << name << " cut to " << n << ": " << msg;
            }
        }
    }
}

TEST(GgufErrors, BadMagicVersionAndByteOrder) {
    Builder f = valid();
    f.b[0] = 'X';
    expect_error(f, "does not start with the magic \"GGUF\" (47 47 55 46), got 58 47 55 46; is it a GGUF file?");
    Builder v1;
    v1.header(0, 0, 1);
    expect_error(v1, "GGUF version 1 (32-bit counts) is not supported");
    Builder v9;
    v9.header(0, 0, 9);
    expect_error(v9, "GGUF version 9 is not supported (expected 2 or 3)");
    Builder be;
    be.header(0, 0, 0x03000000);
    expect_error(be, "is a big-endian GGUF");
    Builder v2;  // version 2 has the same layout
    v2.header(0, 0, 2);
    EXPECT_EQ(GgufFile::from_bytes(v2.b).version(), 2u);
}

TEST(GgufErrors, HugeCountsAndLengths) {
    Builder kv;
    kv.header(0, uint64_t(1) << 60);
    expect_error(kv, "metadata count 1152921504606846976 needs at least 13 bytes each");
    Builder nt;
    nt.header(uint64_t(1) << 60, 0);
    expect_error(nt, "tensor count 1152921504606846976 needs at least 32 bytes each");
    Builder key;
    key.header(0, 1).u64(~uint64_t(0)).zeros(16);
    expect_error(key, "metadata entry 0: the key has length 18446744073709551615 but the file has 16 bytes left");
    Builder val;
    val.header(0, 1).str("k").u32(8).u64(uint64_t(1) << 62);
    expect_error(val, "key 'k': the string value has length 4611686018427387904");
    Builder arr;
    arr.header(0, 1).str("tokens").u32(9).u32(8).u64(uint64_t(1) << 61).zeros(24);
    expect_error(arr, "key 'tokens': array of strings of length 2305843009213693952 needs at least 8 bytes each");
    Builder num;
    num.header(0, 1).str("scores").u32(9).u32(6).u64(uint64_t(1) << 62).zeros(8);
    expect_error(num, "key 'scores': array length 4611686018427387904 needs at least 4 bytes each");
    Builder dims;
    dims.header(1, 0).str("w").u32(0xffffffffu).zeros(64);
    expect_error(dims, "tensor 'w': has 4294967295 dimensions, expected 1 to 4");
    Builder five;
    five.header(1, 0).tensor("w", {1, 1, 1, 1, 1}, 0, 0).pad().zeros(32);
    expect_error(five, "tensor 'w': has 5 dimensions, expected 1 to 4");
}

TEST(GgufErrors, BadValueTypes) {
    Builder t;
    t.header(0, 1).str("k").u32(13).u32(0);
    expect_error(t, "key 'k': value type 13 is not a GGUF value type (0..12)");
    Builder nested;
    nested.header(0, 1).str("k").u32(9).u32(9).u64(1).zeros(16);
    expect_error(nested, "key 'k': arrays of arrays are not supported");
    Builder b;
    b.header(0, 1).str("flag").u32(7).raw("\x02", 1);
    expect_error(b, "key 'flag': bool value is 2, not 0 or 1");
    Builder dup;
    dup.header(0, 2).str("k").u32(0).raw("\x01", 1).str("k").u32(0).raw("\x01", 1);
    expect_error(dup, "key 'k': appears twice");
}

TEST(GgufErrors, BadTensorInfos) {
    Builder unknown;
    unknown.header(1, 0).tensor("blk.0.w", {32}, 99, 0).pad().zeros(64);
    expect_error(unknown, "tensor 'blk.0.w': has ggml type 99, which this build does not know");
    Builder outside;
    outside.header(1, 0).tensor("w", {8}, 0, 64).pad().zeros(64);
    expect_error(outside, "tensor 'w': data [64, 64 + 32) lies outside the data section of 64 bytes");
    Builder misaligned;
    misaligned.header(1, 0).tensor("w", {8}, 0, 4).pad().zeros(64);
    expect_error(misaligned, "tensor 'w': data offset 4 is not a multiple of the alignment 32");
    Builder overflow;
    overflow.header(1, 0).tensor("w", {uint64_t(1) << 40, uint64_t(1) << 40}, 0, 0).pad().zeros(32);
    expect_error(overflow, "tensor 'w': dimension ne[1] = 1099511627776 is zero or makes the element count overflow");
    Builder bytes_overflow;  // 2^62 values fit in int64, their 4-byte size does not
    bytes_overflow.header(1, 0).tensor("w", {uint64_t(1) << 62}, 0, 0).pad().zeros(32);
    expect_error(bytes_overflow, "tensor 'w': byte size overflows");
    Builder zero;
    zero.header(1, 0).tensor("w", {8, 0}, 0, 0).pad().zeros(32);
    expect_error(zero, "tensor 'w': dimension ne[1] = 0 is zero");
    Builder partial;
    partial.header(1, 0).tensor("w", {33}, 8, 0).pad().zeros(64);
    expect_error(partial, "tensor 'w': row length ne[0] = 33 is not a multiple of the Q8_0 block size 32");
    Builder dup;
    dup.header(2, 0).tensor("w", {8}, 0, 0).tensor("w", {8}, 0, 32).pad().zeros(64);
    expect_error(dup, "tensor 'w': appears twice");
}

TEST(GgufErrors, BadAlignment) {
    Builder odd;
    odd.header(0, 1).str("general.alignment").u32(4).u32(48);
    expect_error(odd, "key 'general.alignment': is 48, expected a power of two");
    Builder wide;
    wide.header(0, 1).str("general.alignment").u32(10).u64(64);
    expect_error(wide, "key 'general.alignment': is uint64, expected uint32");
    Builder a64;  // a custom alignment moves the data section and the offsets with it
    a64.header(1, 1).str("general.alignment").u32(4).u32(64).tensor("w", {8}, 0, 32).pad(64).zeros(64);
    expect_error(a64, "tensor 'w': data offset 32 is not a multiple of the alignment 64");
}

TEST(GgufErrors, FilesOnDisk) {
    try {
        GgufFile g("/nonexistent/model.gguf");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("cannot open '/nonexistent/model.gguf'"), std::string::npos) << e.what();
    }
    const std::string path = testing::TempDir() + "/moe_short.gguf";
    std::ofstream(path, std::ios::binary) << "GGUF";
    try {
        GgufFile g(path);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("is 4 bytes, too short for a GGUF header of 24 bytes"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(gguf_has_magic(path));
    EXPECT_FALSE(gguf_has_magic(std::string(MOE_FIXTURE_DIR) + "/gguf_ref.safetensors"));
}
