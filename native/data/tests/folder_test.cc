// Image-folder indexing: layout and order (torchvision ImageFolder's), extension matching,
// the index cache and its invalidation, and the errors for missing or empty folders.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "data/folder.h"
#include "refs.h"

using namespace m2t::data;
using namespace m2t::data::test;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("m2t_folder_test_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void write(const fs::path& p, const std::vector<uint8_t>& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

const std::vector<uint8_t>& jpeg() {
  static const auto b = Refs("decode").at("decode/jpeg420/file").as<uint8_t>();
  return b;
}

// Every directory under (and including) root gets an mtime in the past, as for a dataset that
// was copied some time ago; otherwise the cache rightly distrusts a scan racing with changes.
void age(const fs::path& root) {
  timespec t[2];
  t[0].tv_sec = t[1].tv_sec = std::time(nullptr) - 100;
  t[0].tv_nsec = t[1].tv_nsec = 0;
  ::utimensat(AT_FDCWD, root.c_str(), t, 0);
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_directory()) ::utimensat(AT_FDCWD, e.path().c_str(), t, 0);
}

}  // namespace

TEST(Folder, ClassesSortedFilesInImageFolderOrder) {
  TempDir t;
  const fs::path r = t.path / "data";
  write(r / "b_class" / "y.png", jpeg());  // content sniffed, not the extension
  write(r / "b_class" / "x.JPG", jpeg());
  write(r / "b_class" / "notes.txt", {'h', 'i'});
  write(r / "b_class" / ".hidden.jpg", jpeg());
  write(r / "a_class" / "sub" / "c.jpeg", jpeg());
  write(r / "a_class" / "d.Jpeg", jpeg());
  write(r / "a_class" / "sub-2" / "e.png", jpeg());
  write(r / "a_class" / "sub" / "deep" / "f.jpg", jpeg());
  fs::create_directories(r / "empty_class");
  write(r / "stray.jpg", jpeg());
  auto ds = FolderDataset::open(r.string(), {});
  EXPECT_EQ(ds->classes(), (std::vector<std::string>{"a_class", "b_class", "empty_class"}));
  ASSERT_EQ(ds->size(), 6);
  // sorted(os.walk(...)) orders directories by their path string, so ".../sub-2" comes
  // between ".../sub" and ".../sub/deep" ('-' sorts before '/').
  const std::vector<std::string> want = {"a_class/d.Jpeg", "a_class/sub/c.jpeg", "a_class/sub-2/e.png",
                                         "a_class/sub/deep/f.jpg", "b_class/x.JPG", "b_class/y.png"};
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(ds->name(i), r.string() + "/" + want[size_t(i)]);
  EXPECT_EQ(ds->label(0), 0);
  EXPECT_EQ(ds->label(4), 1);
  EXPECT_EQ(ds->stats().empty_classes, std::vector<std::string>{"empty_class"});
  std::vector<uint8_t> buf;
  EXPECT_EQ(ds->fetch(5, buf).size, jpeg().size());
}

TEST(Folder, IndexIsCachedAndRescannedWhenTheFolderChanges) {
  TempDir t;
  const fs::path r = t.path / "data", cache = t.path / "cache";
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 4; ++i) write(r / ("c" + std::to_string(c)) / ("img" + std::to_string(i) + ".jpg"), jpeg());
  age(r);
  FolderOptions o;
  o.cache_dir = cache.string();
  o.threads = 2;
  auto first = FolderDataset::open(r.string(), o);
  EXPECT_FALSE(first->stats().from_cache);
  EXPECT_TRUE(fs::exists(first->stats().cache_path));
  auto second = FolderDataset::open(r.string(), o);
  EXPECT_TRUE(second->stats().from_cache) << second->stats().cache_note;
  ASSERT_EQ(second->size(), 12);
  for (int64_t i = 0; i < 12; ++i) EXPECT_EQ(second->name(i), first->name(i));
  // A new file changes its directory's mtime: the cache is not trusted, the file is found.
  write(r / "c1" / "new.png", jpeg());
  auto third = FolderDataset::open(r.string(), o);
  EXPECT_FALSE(third->stats().from_cache);
  EXPECT_NE(third->stats().cache_note.find("changed"), std::string::npos) << third->stats().cache_note;
  EXPECT_EQ(third->size(), 13);
  // A corrupt cache is ignored, not fatal.
  age(r);
  std::ofstream(third->stats().cache_path, std::ios::binary | std::ios::trunc) << "garbage";
  auto fourth = FolderDataset::open(r.string(), o);
  EXPECT_FALSE(fourth->stats().from_cache);
  EXPECT_EQ(fourth->size(), 13);
  EXPECT_TRUE(FolderDataset::open(r.string(), o)->stats().from_cache);
}

TEST(Folder, MissingOrEmptyFoldersGiveOneClearError) {
  TempDir t;
  auto message = [](const std::string& root) {
    try {
      FolderDataset::open(root, {});
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string missing = (t.path / "nope").string();
  std::string m = message(missing);
  EXPECT_NE(m.find(missing), std::string::npos) << m;
  EXPECT_NE(m.find("does not exist"), std::string::npos) << m;
  EXPECT_NE(m.find("one sub-folder per class"), std::string::npos) << m;

  write(t.path / "flat" / "a.jpg", jpeg());
  m = message((t.path / "flat").string());
  EXPECT_NE(m.find("no class sub-folders"), std::string::npos) << m;
  EXPECT_NE(m.find("1 images lie directly in it"), std::string::npos) << m;

  fs::create_directories(t.path / "hollow" / "cls");
  write(t.path / "hollow" / "cls" / "readme.txt", {'x'});
  m = message((t.path / "hollow").string());
  EXPECT_NE(m.find("no JPEG or PNG images"), std::string::npos) << m;

  write(t.path / "afile", {'x'});
  m = message((t.path / "afile").string());
  EXPECT_NE(m.find("is not a directory"), std::string::npos) << m;
}
