#include "folder.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

namespace m2t::data {

std::string folder_layout_hint(const std::string& root) {
  return cat("expected one sub-folder per class holding JPEG or PNG images, e.g. ", root,
             "/<class>/<image>.jpg (extensions .jpg, .jpeg, .png, any case)");
}

namespace {

bool is_image_name(const char* name) {
  const size_t n = std::strlen(name);
  auto ends = [&](const char* ext) {
    const size_t m = std::strlen(ext);
    return n > m && strncasecmp(name + n - m, ext, m) == 0;
  };
  return ends(".jpg") || ends(".jpeg") || ends(".png");
}

struct Listing {
  std::string rel;  // relative to root
  int64_t sec = 0, nsec = 0;
  std::vector<std::string> files;
};

std::string join(const std::string& a, const std::string& b) { return a.empty() ? b : a + "/" + b; }

// Lists one directory: its mtime, image files, sub-directories (links followed; names starting
// with '.' skipped). Files whose type readdir does not give are stat'ed, except symlinks with an
// image extension (assumed files, sparing a stat per image in link farms).
void list_dir(const std::string& root, const std::string& rel, Listing& out, std::vector<std::string>& subdirs) {
  const std::string path = rel.empty() ? root : root + "/" + rel;
  DIR* d = ::opendir(path.c_str());
  if (!d) throw DataError(cat(path, ": cannot read directory: ", std::strerror(errno)));
  struct stat st {};
  ::fstat(::dirfd(d), &st);
  out.rel = rel;
  out.sec = st.st_mtim.tv_sec;
  out.nsec = st.st_mtim.tv_nsec;
  while (dirent* e = ::readdir(d)) {
    const char* name = e->d_name;
    if (name[0] == '.') continue;
    unsigned char type = e->d_type;
    const bool image = is_image_name(name);
    if (type == DT_LNK && image) type = DT_REG;
    if (type == DT_UNKNOWN || type == DT_LNK) {
      struct stat s {};
      if (::fstatat(::dirfd(d), name, &s, 0) != 0) continue;  // dangling link
      type = S_ISDIR(s.st_mode) ? DT_DIR : (S_ISREG(s.st_mode) ? DT_REG : DT_UNKNOWN);
    }
    if (type == DT_DIR) subdirs.push_back(join(rel, name));
    else if (type == DT_REG && image) out.files.emplace_back(name);
  }
  ::closedir(d);
  std::sort(out.files.begin(), out.files.end());
}

// All directories under a class folder, in os.walk order sorted by path (torchvision).
void walk_class(const std::string& root, const std::string& cls, std::vector<Listing>& out) {
  std::vector<std::string> todo{cls};
  while (!todo.empty()) {
    const std::string rel = todo.back();
    todo.pop_back();
    if (std::count(rel.begin(), rel.end(), '/') > 64)
      throw DataError(cat(root, "/", rel, ": directories nested more than 64 deep (a symlink loop?)"));
    Listing l;
    list_dir(root, rel, l, todo);
    out.push_back(std::move(l));
  }
  std::sort(out.begin(), out.end(), [](const Listing& a, const Listing& b) { return a.rel < b.rel; });
}

uint64_t fnv1a(const void* data, size_t n, uint64_t h = 0xcbf29ce484222325ULL) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

// Little binary writer/reader for the cache file.
struct Writer {
  std::string buf;
  template <class T> void pod(const T& v) { buf.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void str(const std::string& s) { pod(uint64_t(s.size())); buf += s; }
  template <class T> void vec(const std::vector<T>& v) {
    pod(uint64_t(v.size()));
    buf.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  }
};

struct Reader {
  const std::string& buf;
  size_t pos = 0;
  template <class T> T pod() {
    if (buf.size() - pos < sizeof(T)) throw DataError("truncated");
    T v;
    std::memcpy(&v, buf.data() + pos, sizeof v);
    pos += sizeof v;
    return v;
  }
  std::string str() {
    const uint64_t n = pod<uint64_t>();
    if (buf.size() - pos < n) throw DataError("truncated");
    std::string s = buf.substr(pos, n);
    pos += n;
    return s;
  }
  template <class T> std::vector<T> vec() {
    const uint64_t n = pod<uint64_t>();
    if ((buf.size() - pos) / sizeof(T) < n) throw DataError("truncated");
    std::vector<T> v(n);
    std::memcpy(v.data(), buf.data() + pos, n * sizeof(T));
    pos += n * sizeof(T);
    return v;
  }
};

constexpr char kMagic[8] = {'M', '2', 'T', 'F', 'I', 'D', 'X', '1'};

}  // namespace

std::shared_ptr<FolderDataset> FolderDataset::open(const std::string& root_in, const FolderOptions& opts) {
  const auto t0 = std::chrono::steady_clock::now();
  if (root_in.empty()) throw DataError("image folder: empty path; " + folder_layout_hint("<root>"), DataError::Kind::TypeError);
  std::error_code ec;
  std::string root = std::filesystem::absolute(root_in, ec).lexically_normal().string();
  if (ec) root = root_in;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  struct stat st {};
  if (::stat(root.c_str(), &st) != 0)
    throw DataError(cat("image folder ", root, " does not exist (", std::strerror(errno), "); ", folder_layout_hint(root)));
  if (!S_ISDIR(st.st_mode)) throw DataError(cat("image folder ", root, " is not a directory; ", folder_layout_hint(root)));

  auto ds = std::shared_ptr<FolderDataset>(new FolderDataset());
  ds->root_ = root;
  std::string note;
  if (!opts.cache_dir.empty()) {
    char name[64];
    std::snprintf(name, sizeof name, "folder-index-%016llx.bin",
                  static_cast<unsigned long long>(fnv1a(root.data(), root.size())));
    ds->stats_.cache_path = opts.cache_dir + "/" + name;
    ds->stats_.from_cache = ds->load_cache(ds->stats_.cache_path, note);
  }
  if (!ds->stats_.from_cache) {
    ds->scan(std::max(1, opts.threads));
    if (!opts.cache_dir.empty()) ds->save_cache(ds->stats_.cache_path, note);
  }
  ds->stats_.cache_note = note;
  ds->stats_.directories = int64_t(ds->dirs_.size());
  // Classes with no images keep their label (sorted order) but are reported.
  std::vector<int64_t> count(ds->classes_.size(), 0);
  for (int32_t l : ds->labels_) ++count[size_t(l)];
  for (size_t c = 0; c < count.size(); ++c)
    if (count[c] == 0) ds->stats_.empty_classes.push_back(ds->classes_[c]);
  ds->stats_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return ds;
}

void FolderDataset::scan(int threads) {
  scan_time_ = static_cast<int64_t>(std::time(nullptr));
  Listing top;
  std::vector<std::string> class_dirs;
  list_dir(root_, "", top, class_dirs);
  std::sort(class_dirs.begin(), class_dirs.end());
  if (class_dirs.empty())
    throw DataError(cat("image folder ", root_, " has no class sub-folders",
                        top.files.empty() ? "" : cat(" (", top.files.size(), " images lie directly in it)"),
                        "; ", folder_layout_hint(root_)));
  classes_ = class_dirs;

  // Class folders in parallel; each worker takes the next class index.
  std::vector<std::vector<Listing>> per_class(class_dirs.size());
  std::vector<std::string> errors(class_dirs.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t c; (c = next.fetch_add(1)) < class_dirs.size();) {
      try {
        walk_class(root_, class_dirs[c], per_class[c]);
      } catch (const std::exception& e) {
        errors[c] = e.what();
      }
    }
  };
  std::vector<std::thread> pool;
  const int n = std::min<int>(threads, int(class_dirs.size())) - 1;
  for (int i = 0; i < n; ++i) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  for (const auto& e : errors)
    if (!e.empty()) throw DataError(e);

  dirs_.clear();
  dirs_.push_back({"", top.sec, top.nsec});
  blob_.clear();
  offsets_.assign(1, 0);
  labels_.clear();
  for (size_t c = 0; c < per_class.size(); ++c) {
    for (const Listing& l : per_class[c]) {
      dirs_.push_back({l.rel, l.sec, l.nsec});
      for (const std::string& f : l.files) {
        blob_ += l.rel;
        blob_ += '/';
        blob_ += f;
        offsets_.push_back(blob_.size());
        labels_.push_back(int32_t(c));
      }
    }
  }
  if (labels_.empty())
    throw DataError(cat("image folder ", root_, " has ", classes_.size(),
                        " class sub-folders but no JPEG or PNG images; ", folder_layout_hint(root_)));
}

bool FolderDataset::load_cache(const std::string& path, std::string& note) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    note = "no cached index yet";
    return false;
  }
  std::string buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    if (buf.size() < sizeof kMagic + 8 || std::memcmp(buf.data(), kMagic, sizeof kMagic) != 0)
      throw DataError("not an index cache");
    uint64_t sum;
    std::memcpy(&sum, buf.data() + buf.size() - 8, 8);
    if (fnv1a(buf.data(), buf.size() - 8) != sum) throw DataError("checksum mismatch");
    Reader r{buf, sizeof kMagic};
    if (r.str() != root_) throw DataError("index of another folder");
    scan_time_ = r.pod<int64_t>();
    const uint64_t nd = r.pod<uint64_t>();
    std::vector<DirStamp> dirs(nd);
    for (auto& d : dirs) {
      d.rel = r.str();
      d.sec = r.pod<int64_t>();
      d.nsec = r.pod<int64_t>();
    }
    const uint64_t nc = r.pod<uint64_t>();
    std::vector<std::string> classes(nc);
    for (auto& c : classes) c = r.str();
    std::string blob = r.str();
    std::vector<uint64_t> offsets = r.vec<uint64_t>();
    std::vector<int32_t> labels = r.vec<int32_t>();
    if (offsets.size() != labels.size() + 1 || offsets.back() != blob.size()) throw DataError("inconsistent");
    // Still the same folder? Every directory's mtime must match, and must predate the scan by
    // 2 s, so a change landing in the same timestamp tick as the scan is never missed.
    for (const auto& d : dirs) {
      struct stat st {};
      const std::string p = d.rel.empty() ? root_ : root_ + "/" + d.rel;
      if (::stat(p.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_mtim.tv_sec != d.sec ||
          st.st_mtim.tv_nsec != d.nsec || d.sec >= scan_time_ - 1) {
        note = cat("folder changed since the cached scan (", p, ")");
        return false;
      }
    }
    dirs_ = std::move(dirs);
    classes_ = std::move(classes);
    blob_ = std::move(blob);
    offsets_ = std::move(offsets);
    labels_ = std::move(labels);
    return true;
  } catch (const DataError& e) {
    note = cat("cached index unusable (", e.what(), ")");
    return false;
  }
}

void FolderDataset::save_cache(const std::string& path, std::string& note) const {
  Writer w;
  w.buf.append(kMagic, sizeof kMagic);
  w.str(root_);
  w.pod(scan_time_);
  w.pod(uint64_t(dirs_.size()));
  for (const auto& d : dirs_) {
    w.str(d.rel);
    w.pod(d.sec);
    w.pod(d.nsec);
  }
  w.pod(uint64_t(classes_.size()));
  for (const auto& c : classes_) w.str(c);
  w.str(blob_);
  w.vec(offsets_);
  w.vec(labels_);
  w.pod(fnv1a(w.buf.data(), w.buf.size()));
  // Atomic: write a temporary file beside it, then rename.
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  const std::string tmp = cat(path, ".tmp", ::getpid(), "-", std::hash<std::thread::id>()(std::this_thread::get_id()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(w.buf.data(), std::streamsize(w.buf.size()));
    if (!out) {
      note = cat("could not write the index cache ", path);
      std::remove(tmp.c_str());
      return;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    note = cat("could not write the index cache ", path, ": ", std::strerror(errno));
    std::remove(tmp.c_str());
  }
}

std::string FolderDataset::name(int64_t i) const {
  const size_t a = offsets_[size_t(i)], b = offsets_[size_t(i) + 1];
  return root_ + "/" + blob_.substr(a, b - a);
}

SourceRef FolderDataset::fetch(int64_t i, std::vector<uint8_t>& buffer) const {
  read_file(name(i), buffer);
  SourceRef s;
  s.encoded = true;
  s.bytes = buffer.data();
  s.size = buffer.size();
  return s;
}

}  // namespace m2t::data
