#include "io/safetensors.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace m2t {
namespace {

using json = nlohmann::json;

size_t dtype_size(const std::string& dt) {
  if (dt == "F32" || dt == "I32") return 4;
  if (dt == "F64" || dt == "I64") return 8;
  if (dt == "F16" || dt == "BF16") return 2;
  return 0;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  float f;
  if (exp == 0) {
    f = std::ldexp(static_cast<float>(man), -24);
  } else if (exp == 31) {
    f = man ? NAN : INFINITY;
  } else {
    f = std::ldexp(static_cast<float>(man | 0x400), static_cast<int>(exp) - 25);
  }
  return sign ? -f : f;
}

void convert(const std::string& dt, const char* src, size_t n, float* dst) {
  for (size_t i = 0; i < n; ++i) {
    if (dt == "F32") {
      std::memcpy(&dst[i], src + 4 * i, 4);
    } else if (dt == "F64") {
      double v;
      std::memcpy(&v, src + 8 * i, 8);
      dst[i] = static_cast<float>(v);
    } else if (dt == "I64") {
      int64_t v;
      std::memcpy(&v, src + 8 * i, 8);
      dst[i] = static_cast<float>(v);
    } else if (dt == "I32") {
      int32_t v;
      std::memcpy(&v, src + 4 * i, 4);
      dst[i] = static_cast<float>(v);
    } else if (dt == "F16") {
      uint16_t v;
      std::memcpy(&v, src + 2 * i, 2);
      dst[i] = half_to_float(v);
    } else {  // BF16
      uint16_t v;
      std::memcpy(&v, src + 2 * i, 2);
      uint32_t bits = static_cast<uint32_t>(v) << 16;
      std::memcpy(&dst[i], &bits, 4);
    }
  }
}

}  // namespace

StFile read_safetensors(const std::string& path) {
  auto bad = [&](const std::string& why) { fail(ErrorKind::Error, path, ": not a valid safetensors file: ", why); };
  // Only regular files: opening a named pipe blocks until a writer appears, a device never ends.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail(ErrorKind::Error, path, ": cannot open (", std::strerror(errno), ")");
  if (!S_ISREG(st.st_mode)) fail(ErrorKind::Error, path, ": not a regular file (a named pipe, device or folder)");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::Error, path, ": cannot open (", std::strerror(errno), ")");
  in.seekg(0, std::ios::end);
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  if (file_size < 8) bad("shorter than its 8-byte header length");
  uint64_t hlen = 0;
  unsigned char lenbuf[8];
  in.read(reinterpret_cast<char*>(lenbuf), 8);
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | lenbuf[i];
  if (hlen > file_size - 8 || hlen > (100u << 20)) bad(str("header length ", hlen, " exceeds the file"));
  std::string header(hlen, '\0');
  in.read(header.data(), static_cast<std::streamsize>(hlen));
  json j;
  try {
    j = json::parse(header);
  } catch (const std::exception& e) {
    bad(str("header is not JSON (", e.what(), ")"));
  }
  if (!j.is_object()) bad("header is not a JSON object");
  const uint64_t data_size = file_size - 8 - hlen;
  StFile f;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) bad("__metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) bad(str("metadata '", m.key(), "' is not a string"));
        f.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const std::string& name = it.key();
    const json& e = *it;
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
      bad(str("entry '", name, "' lacks dtype, shape or data_offsets"));
    StTensor t;
    if (!e["dtype"].is_string()) bad(str("entry '", name, "': dtype is not a string"));
    t.dtype = e["dtype"].get<std::string>();
    const size_t es = dtype_size(t.dtype);
    if (!es) bad(str("entry '", name, "': unsupported dtype ", t.dtype));
    if (!e["shape"].is_array()) bad(str("entry '", name, "': shape is not an array"));
    uint64_t n = 1;
    for (const auto& d : e["shape"]) {
      if (!d.is_number_unsigned()) bad(str("entry '", name, "': shape holds a non-integer"));
      t.shape.push_back(d.get<int64_t>());
      n *= d.get<uint64_t>();
      if (n > data_size) bad(str("entry '", name, "': shape larger than the file"));
    }
    const auto& off = e["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      bad(str("entry '", name, "': data_offsets is not [begin, end]"));
    const uint64_t b = off[0].get<uint64_t>(), en = off[1].get<uint64_t>();
    if (b > en || en > data_size) bad(str("entry '", name, "': data_offsets [", b, ", ", en, "] outside the data"));
    if (en - b != n * es) bad(str("entry '", name, "': ", en - b, " bytes for shape ", shape_str(t.shape)));
    std::vector<char> raw(en - b);
    in.seekg(static_cast<std::streamoff>(8 + hlen + b));
    in.read(raw.data(), static_cast<std::streamsize>(raw.size()));
    if (!in) bad(str("entry '", name, "': truncated data"));
    t.data.resize(n);
    convert(t.dtype, raw.data(), n, t.data.data());
    f.order.push_back(name);
    f.tensors.emplace(name, std::move(t));
  }
  return f;
}

void write_safetensors(const std::string& path, const std::vector<StItem>& items,
                       const std::map<std::string, std::string>& metadata) {
  json h = json::object();
  uint64_t offset = 0;
  for (const auto& it : items) {
    const uint64_t bytes = static_cast<uint64_t>(numel_of(it.shape)) * (it.as_int64 ? 8 : 4);
    h[it.name] = {{"dtype", it.as_int64 ? "I64" : "F32"}, {"shape", it.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  if (!metadata.empty()) h["__metadata__"] = metadata;
  std::string header = h.dump();
  while ((header.size() + 8) % 8) header.push_back(' ');
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail(ErrorKind::Error, path, ": cannot write (", std::strerror(errno), ")");
    unsigned char lenbuf[8];
    uint64_t hl = header.size();
    for (int i = 0; i < 8; ++i) lenbuf[i] = static_cast<unsigned char>(hl >> (8 * i));
    out.write(reinterpret_cast<char*>(lenbuf), 8);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const auto& it : items) {
      const int64_t n = numel_of(it.shape);
      if (it.as_int64) {
        std::vector<int64_t> v(n);
        for (int64_t i = 0; i < n; ++i) v[i] = static_cast<int64_t>(std::llround(it.data[i]));
        out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(n * 8));
      } else {
        out.write(reinterpret_cast<const char*>(it.data), static_cast<std::streamsize>(n * 4));
      }
    }
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      fail(ErrorKind::Error, path, ": write failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    fail(ErrorKind::Error, path, ": cannot rename temporary file into place (", std::strerror(err), ")");
  }
}

}  // namespace m2t
