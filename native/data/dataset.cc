#include "dataset.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace m2t::data {

std::vector<std::string> numeric_classes(const std::vector<int32_t>& labels) {
  int32_t k = 0;
  for (int32_t l : labels) k = std::max(k, l + 1);
  std::vector<std::string> out;
  for (int32_t i = 0; i < k; ++i) out.push_back(std::to_string(i));
  return out;
}

PixelDataset::PixelDataset(std::vector<uint8_t> pixels, int64_t n, int height, int width, int channels,
                           std::vector<int32_t> labels, std::string origin)
    : pixels_(std::move(pixels)), n_(n), h_(height), w_(width), c_(channels),
      labels_(std::move(labels)), origin_(std::move(origin)) {
  if (n < 0 || height < 1 || width < 1 || (channels != 1 && channels != 3))
    throw DataError(cat("pixel dataset: bad shape [", n, ", ", height, ", ", width, ", ", channels,
                        "] (channels must be 1 or 3)"), DataError::Kind::RangeError);
  if (pixels_.size() != size_t(n) * height * width * channels)
    throw DataError(cat("pixel dataset: ", pixels_.size(), " bytes do not match shape [", n, ", ",
                        height, ", ", width, ", ", channels, "]"), DataError::Kind::RangeError);
  if (!labels_.empty() && int64_t(labels_.size()) != n)
    throw DataError(cat("pixel dataset: ", labels_.size(), " labels for ", n, " images"),
                    DataError::Kind::RangeError);
  classes_ = numeric_classes(labels_);
}

SourceRef PixelDataset::fetch(int64_t i, std::vector<uint8_t>&) const {
  SourceRef s;
  s.pixels = pixels_.data() + size_t(i) * h_ * w_ * c_;
  s.width = w_;
  s.height = h_;
  s.channels = c_;
  return s;
}

EncodedDataset::EncodedDataset(std::vector<std::vector<uint8_t>> files, std::vector<int32_t> labels,
                               std::vector<std::string> names)
    : files_(std::move(files)), labels_(std::move(labels)), names_(std::move(names)) {
  if (!labels_.empty() && labels_.size() != files_.size())
    throw DataError(cat("encoded dataset: ", labels_.size(), " labels for ", files_.size(), " images"),
                    DataError::Kind::RangeError);
  if (!names_.empty() && names_.size() != files_.size())
    throw DataError(cat("encoded dataset: ", names_.size(), " names for ", files_.size(), " images"),
                    DataError::Kind::RangeError);
  classes_ = numeric_classes(labels_);
}

std::string EncodedDataset::name(int64_t i) const {
  return names_.empty() ? cat("<memory>[", i, "]") : names_[size_t(i)];
}

SourceRef EncodedDataset::fetch(int64_t i, std::vector<uint8_t>&) const {
  SourceRef s;
  s.encoded = true;
  s.bytes = files_[size_t(i)].data();
  s.size = files_[size_t(i)].size();
  return s;
}

SubsetDataset::SubsetDataset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices)
    : base_(std::move(base)), idx_(std::move(indices)) {
  if (!base_) throw DataError("subset of no dataset", DataError::Kind::TypeError);
  if (idx_.empty()) throw DataError("subset: no indices", DataError::Kind::RangeError);
  for (size_t k = 0; k < idx_.size(); ++k)
    if (idx_[k] < 0 || idx_[k] >= base_->size())
      throw DataError(cat("subset: indices[", k, "] = ", idx_[k], " is not in [0, ", base_->size(), ")"),
                      DataError::Kind::RangeError);
}

void read_file(const std::string& path, std::vector<uint8_t>& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw DataError(cat("cannot open: ", std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw DataError("not a regular file");
  }
  constexpr off_t kMaxFile = off_t(1) << 30;
  if (st.st_size > kMaxFile) {
    ::close(fd);
    throw DataError(cat("file of ", st.st_size, " bytes exceeds the 1 GiB limit"));
  }
  out.resize(size_t(st.st_size));
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t r = ::read(fd, out.data() + done, out.size() - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      const int e = errno;
      ::close(fd);
      throw DataError(r == 0 ? "file shrank while reading" : cat("read error: ", std::strerror(e)));
    }
    done += size_t(r);
  }
  ::close(fd);
}

namespace {

// IDX header: 0, 0, type (0x08 = unsigned byte), rank; then rank big-endian uint32 dimensions.
std::vector<uint32_t> idx_header(const std::vector<uint8_t>& f, const std::string& path, size_t& offset) {
  if (f.size() < 4 || f[0] != 0 || f[1] != 0)
    throw DataError(cat(path, ": not an IDX file (bad magic number)"));
  if (f[2] != 0x08) throw DataError(cat(path, ": IDX element type 0x", std::hex, int(f[2]), " is not unsigned byte (0x08)"));
  const int rank = f[3];
  if (rank < 1 || f.size() < 4 + size_t(rank) * 4) throw DataError(cat(path, ": truncated IDX header"));
  std::vector<uint32_t> dims(static_cast<size_t>(rank));
  size_t total = 1;
  for (int d = 0; d < rank; ++d) {
    const uint8_t* p = f.data() + 4 + d * 4;
    dims[size_t(d)] = (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
    total *= dims[size_t(d)];
  }
  offset = 4 + size_t(rank) * 4;
  if (f.size() - offset != total)
    throw DataError(cat(path, ": IDX payload has ", f.size() - offset, " bytes, the header promises ", total));
  return dims;
}

}  // namespace

std::shared_ptr<PixelDataset> load_idx(const std::string& images_path, const std::string& labels_path) {
  std::vector<uint8_t> f;
  try {
    read_file(images_path, f);
  } catch (const DataError& e) {
    throw DataError(cat(images_path, ": ", e.what()));
  }
  size_t off = 0;
  const std::vector<uint32_t> dims = idx_header(f, images_path, off);
  int channels = 1;
  if (dims.size() == 4 && dims[3] == 3) channels = 3;
  else if (dims.size() != 3)
    throw DataError(cat(images_path, ": IDX images must be [n, rows, cols] or [n, rows, cols, 3]"));
  if (dims[1] == 0 || dims[2] == 0) throw DataError(cat(images_path, ": IDX images have zero size"));
  std::vector<int32_t> labels;
  if (!labels_path.empty()) {
    std::vector<uint8_t> lf;
    try {
      read_file(labels_path, lf);
    } catch (const DataError& e) {
      throw DataError(cat(labels_path, ": ", e.what()));
    }
    size_t loff = 0;
    const std::vector<uint32_t> ld = idx_header(lf, labels_path, loff);
    if (ld.size() != 1) throw DataError(cat(labels_path, ": IDX labels must be one-dimensional"));
    if (ld[0] != dims[0])
      throw DataError(cat(labels_path, ": ", ld[0], " labels for ", dims[0], " images in ", images_path));
    labels.assign(lf.begin() + long(loff), lf.end());
  }
  if (dims[0] == 0) throw DataError(cat(images_path, ": the IDX file holds no images"));
  std::vector<uint8_t> pixels(f.begin() + long(off), f.end());
  return std::make_shared<PixelDataset>(std::move(pixels), int64_t(dims[0]), int(dims[1]), int(dims[2]),
                                        channels, std::move(labels), images_path);
}

}  // namespace m2t::data
