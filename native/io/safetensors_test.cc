// safetensors reading and writing: round trip, and every malformed file is a clear error that
// names the file (never a crash).
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "core/error.h"
#include "io/safetensors.h"
#include "tests/testutil.h"

namespace m2t::test {
namespace {

std::string tmp_path(const std::string& name) {
  return ::testing::TempDir() + "m2t_st_" + std::to_string(::getpid()) + "_" + name;
}

void write_raw(const std::string& path, const std::string& header, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>(n >> (8 * i)));
  out << header << data;
}

std::string error_of(const std::string& path) {
  try {
    read_safetensors(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, RoundTripWithInt64AndMetadata) {
  const std::string p = tmp_path("rt.safetensors");
  const float a[] = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
  const float n[] = {42.0f};
  write_safetensors(p, {{"a.weight", a, {2, 3}}, {"bn.num_batches_tracked", n, {}, true}}, {{"k", "v"}});
  const StFile f = read_safetensors(p);
  ASSERT_EQ(f.order.size(), 2u);
  EXPECT_EQ(f.tensors.at("a.weight").shape, (Shape{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(f.tensors.at("a.weight").data[i], a[i]);
  EXPECT_EQ(f.tensors.at("bn.num_batches_tracked").dtype, "I64");
  EXPECT_EQ(f.tensors.at("bn.num_batches_tracked").data[0], 42.0f);
  EXPECT_EQ(f.metadata.at("k"), "v");
  EXPECT_NE(access((p + ".tmp-" + std::to_string(::getpid())).c_str(), F_OK), 0) << "temporary file left behind";
  std::remove(p.c_str());
}

TEST(Safetensors, MalformedFilesAreErrorsNamingTheFile) {
  const std::string p = tmp_path("bad.safetensors");
  const auto expect_error = [&](const std::string& needle) {
    const std::string msg = error_of(p);
    EXPECT_NE(msg.find(p), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << "'" << needle << "' not in: " << msg;
  };
  EXPECT_NE(error_of(tmp_path("missing")).find("cannot open"), std::string::npos);
  { std::ofstream(p, std::ios::binary) << ""; }
  expect_error("shorter than its 8-byte header length");
  { std::ofstream(p, std::ios::binary) << std::string("\xff\xff\xff\x00\x00\x00\x00\x00{}", 10); }
  expect_error("exceeds the file");
  write_raw(p, "{not json", "");
  expect_error("header is not JSON");
  write_raw(p, "[1,2]", "");
  expect_error("not a JSON object");
  write_raw(p, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "abcd");
  expect_error("outside the data");
  write_raw(p, R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "abcdefgh");
  expect_error("8 bytes for shape [3]");
  write_raw(p, R"({"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}})", "a");
  expect_error("unsupported dtype Q7");
  write_raw(p, R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "abcd");
  expect_error("non-integer");
  write_raw(p, R"({"a":{"shape":[1]}})", "");
  expect_error("lacks dtype");
  write_raw(p, R"({"__metadata__":{"k":1}})", "");
  expect_error("metadata 'k' is not a string");
  std::remove(p.c_str());
}

TEST(Safetensors, ReadsOtherDtypes) {
  const std::string p = tmp_path("dtypes.safetensors");
  const double d = -0.5;
  const uint16_t h = 0x3c00, bf = 0x4040;  // 1.0 (F16), 3.0 (BF16)
  std::string data(reinterpret_cast<const char*>(&d), 8);
  data += std::string(reinterpret_cast<const char*>(&h), 2) + std::string(reinterpret_cast<const char*>(&bf), 2);
  write_raw(p,
            R"({"d":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"h":{"dtype":"F16","shape":[1],"data_offsets":[8,10]},)"
            R"("b":{"dtype":"BF16","shape":[1],"data_offsets":[10,12]}})",
            data);
  const StFile f = read_safetensors(p);
  EXPECT_EQ(f.tensors.at("d").data[0], -0.5f);
  EXPECT_EQ(f.tensors.at("h").data[0], 1.0f);
  EXPECT_EQ(f.tensors.at("b").data[0], 3.0f);
  std::remove(p.c_str());
}

TEST(Safetensors, UnwritablePathIsAnErrorNamingIt) {
  const std::string p = "/nonexistent-dir/x.safetensors";
  const float a[] = {1};
  try {
    write_safetensors(p, {{"a", a, {1}}}, {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace m2t::test
