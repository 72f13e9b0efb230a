// Reads the committed reference files (safetensors written by tools/data/make_refs.py).
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/common.h"

namespace m2t::data::test {

struct Tensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;

  template <class T> std::vector<T> as() const {
    std::vector<T> out(bytes.size() / sizeof(T));
    if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));  // memcpy(nullptr, …) is UB
    return out;
  }
  int64_t dim(int i) const { return shape.at(size_t(i)); }
  // A uint8 [h, w, 3] tensor as an Image.
  Image image() const {
    Image im;
    im.resize(int(dim(1)), int(dim(0)));
    std::memcpy(im.pixels.data(), bytes.data(), im.pixels.size());
    return im;
  }
};

class Refs {
 public:
  explicit Refs(const std::string& name) {
    const std::string path = std::string(M2T_DATA_REFS) + "/" + name + ".safetensors";
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("missing reference file " + path + " (run tools/data/make_refs.py)");
    std::string buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    uint64_t n;
    std::memcpy(&n, buf.data(), 8);
    const auto header = nlohmann::json::parse(buf.substr(8, n));
    const size_t base = 8 + n;
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") continue;
      Tensor t;
      t.dtype = it.value()["dtype"];
      t.shape = it.value()["shape"].get<std::vector<int64_t>>();
      const auto off = it.value()["data_offsets"].get<std::vector<size_t>>();
      t.bytes.assign(buf.begin() + long(base + off[0]), buf.begin() + long(base + off[1]));
      tensors_[it.key()] = std::move(t);
    }
  }
  const Tensor& at(const std::string& key) const {
    auto it = tensors_.find(key);
    if (it == tensors_.end()) throw std::runtime_error("reference tensor " + key + " not found");
    return it->second;
  }
  bool has(const std::string& key) const { return tensors_.count(key) != 0; }
  // Distinct "<prefix><case>/" names, sorted.
  std::vector<std::string> cases(const std::string& prefix) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : tensors_) {
      if (k.rfind(prefix, 0) != 0) continue;
      const size_t slash = k.find('/', prefix.size());
      if (slash == std::string::npos) continue;
      std::string c = k.substr(prefix.size(), slash - prefix.size());
      if (out.empty() || out.back() != c) out.push_back(c);
    }
    return out;
  }

 private:
  std::map<std::string, Tensor> tensors_;
};

// Per-pixel absolute differences between two equally sized byte buffers: max and share > 1.
struct Diff {
  int max = 0;
  size_t over1 = 0, n = 0;
};
inline Diff diff_u8(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  Diff d;
  d.n = a.size();
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const int e = std::abs(int(a[i]) - int(b[i]));
    d.max = std::max(d.max, e);
    d.over1 += e > 1;
  }
  return d;
}

}  // namespace m2t::data::test
