// Datasets: where sample i's pixels and label come from. An image folder (folder.h), IDX files
// (MNIST), raw pixels in memory, or encoded images in memory. All are immutable once built and
// safe to read from many threads.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "pipeline.h"

namespace m2t::data {

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual int32_t label(int64_t i) const = 0;
  virtual const std::vector<std::string>& classes() const = 0;
  // Human-readable origin of sample i (a path, or "<memory>[i]"), for error reports.
  virtual std::string name(int64_t i) const = 0;
  // Where sample i's pixels are. `buffer` is per-thread scratch the file contents may be read
  // into; the returned reference stays valid until the next call with the same buffer.
  // Throws DataError if the file cannot be read.
  virtual SourceRef fetch(int64_t i, std::vector<uint8_t>& buffer) const = 0;
};

// Raw 8-bit pixels, all of one size, HWC with 1 or 3 channels (IDX files and tests).
class PixelDataset : public Dataset {
 public:
  PixelDataset(std::vector<uint8_t> pixels, int64_t n, int height, int width, int channels,
               std::vector<int32_t> labels, std::string origin);
  int64_t size() const override { return n_; }
  int32_t label(int64_t i) const override { return labels_.empty() ? -1 : labels_[size_t(i)]; }
  const std::vector<std::string>& classes() const override { return classes_; }
  std::string name(int64_t i) const override { return cat(origin_, "[", i, "]"); }
  SourceRef fetch(int64_t i, std::vector<uint8_t>& buffer) const override;

 private:
  std::vector<uint8_t> pixels_;
  int64_t n_;
  int h_, w_, c_;
  std::vector<int32_t> labels_;
  std::vector<std::string> classes_;
  std::string origin_;
};

// Encoded JPEG/PNG files held in memory (tests, small sets).
class EncodedDataset : public Dataset {
 public:
  EncodedDataset(std::vector<std::vector<uint8_t>> files, std::vector<int32_t> labels,
                 std::vector<std::string> names);
  int64_t size() const override { return int64_t(files_.size()); }
  int32_t label(int64_t i) const override { return labels_.empty() ? -1 : labels_[size_t(i)]; }
  const std::vector<std::string>& classes() const override { return classes_; }
  std::string name(int64_t i) const override;
  SourceRef fetch(int64_t i, std::vector<uint8_t>& buffer) const override;

 private:
  std::vector<std::vector<uint8_t>> files_;
  std::vector<int32_t> labels_;
  std::vector<std::string> names_, classes_;
};

// Chosen samples of another dataset, in the given order (quick runs: lib/data's `limit` passes a
// seeded, class-stratified choice). Sample i is base sample indices[i].
class SubsetDataset : public Dataset {
 public:
  SubsetDataset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices);
  int64_t size() const override { return int64_t(idx_.size()); }
  int32_t label(int64_t i) const override { return base_->label(idx_[size_t(i)]); }
  const std::vector<std::string>& classes() const override { return base_->classes(); }
  std::string name(int64_t i) const override { return base_->name(idx_[size_t(i)]); }
  SourceRef fetch(int64_t i, std::vector<uint8_t>& buffer) const override { return base_->fetch(idx_[size_t(i)], buffer); }

 private:
  std::shared_ptr<const Dataset> base_;
  std::vector<int64_t> idx_;
};

// Class names "0".."k-1" for integer labels whose maximum is k-1.
std::vector<std::string> numeric_classes(const std::vector<int32_t>& labels);

// IDX files (MNIST's format): unsigned-byte images [n, rows, cols] or [n, rows, cols, 3], and
// optionally labels [n]. Throws DataError naming the file and the problem.
std::shared_ptr<PixelDataset> load_idx(const std::string& images_path, const std::string& labels_path);

// Reads a whole file into `out`. Throws DataError naming the path.
void read_file(const std::string& path, std::vector<uint8_t>& out);

}  // namespace m2t::data
