// An image folder: <root>/<class>/…/<image>.{jpg,jpeg,png} (case-insensitive), classes sorted by
// name → labels 0…k−1, files in torchvision ImageFolder's order (directories sorted by path,
// files by name). Scanned once; the index is cached in a file and reused while every scanned
// directory's modification time is unchanged (adding, removing or renaming a file changes it).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataset.h"

namespace m2t::data {

struct FolderOptions {
  std::string cache_dir;  // where index caches live; empty: no cache
  int threads = 1;        // directories scanned in parallel
};

struct FolderStats {
  bool from_cache = false;
  double seconds = 0.0;          // time to open (scan or cache load)
  int64_t directories = 0;       // directories scanned
  std::string cache_path;        // empty when caching is off
  std::string cache_note;        // why the cache was not used or could not be written
  std::vector<std::string> empty_classes;
};

class FolderDataset : public Dataset {
 public:
  // Throws DataError naming the path and the expected layout when root is missing, not a
  // directory, has no class sub-folders or no images.
  static std::shared_ptr<FolderDataset> open(const std::string& root, const FolderOptions& opts);

  int64_t size() const override { return int64_t(labels_.size()); }
  int32_t label(int64_t i) const override { return labels_[size_t(i)]; }
  const std::vector<std::string>& classes() const override { return classes_; }
  std::string name(int64_t i) const override;
  SourceRef fetch(int64_t i, std::vector<uint8_t>& buffer) const override;

  const std::string& root() const { return root_; }
  const FolderStats& stats() const { return stats_; }

 private:
  struct DirStamp {
    std::string rel;
    int64_t sec = 0, nsec = 0;
  };
  void scan(int threads);
  bool load_cache(const std::string& path, std::string& note);
  void save_cache(const std::string& path, std::string& note) const;

  std::string root_;
  std::vector<std::string> classes_;
  std::string blob_;               // relative paths, concatenated
  std::vector<uint64_t> offsets_;  // size()+1 offsets into blob_
  std::vector<int32_t> labels_;
  std::vector<DirStamp> dirs_;
  int64_t scan_time_ = 0;          // wall-clock seconds when the scan started
  FolderStats stats_;
};

// "expected <root>/<class>/<image>.jpg …": the layout sentence of every folder error.
std::string folder_layout_hint(const std::string& root);

}  // namespace m2t::data
