// safetensors files (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then
// the raw little-endian data. Tensors are read into float32; F32, F64, F16, BF16, I64 and I32 load.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace m2t {

struct StTensor {
  std::string dtype;  // as stored
  Shape shape;
  std::vector<float> data;
};

struct StFile {
  std::map<std::string, StTensor> tensors;
  std::vector<std::string> order;  // as in the header
  std::map<std::string, std::string> metadata;
};

// Throws Error naming the file and what is wrong (missing, truncated, malformed header, bad offsets).
StFile read_safetensors(const std::string& path);

struct StItem {
  std::string name;
  const float* data;
  Shape shape;
  bool as_int64 = false;  // stored as I64 (values rounded)
};

// Atomic: writes `<path>.tmp-<pid>` then renames over `path`; throws Error naming the path on failure.
void write_safetensors(const std::string& path, const std::vector<StItem>& items,
                       const std::map<std::string, std::string>& metadata);

}  // namespace m2t
