#include "core/allocator.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>

namespace m2t {

static size_t round_up(size_t bytes) { return ((bytes ? bytes : 1) + 63) / 64 * 64; }

CachingAllocator::~CachingAllocator() {
  std::lock_guard<std::mutex> lock(mu_);
  release_locked();
  // Live blocks at exit belong to static tensors; the process is ending, leave them.
}

void* CachingAllocator::allocate(size_t bytes) {
  const size_t want = round_up(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = free_.lower_bound(want);
  if (it != free_.end() && it->first <= want + want / 8) {
    void* p = it->second;
    const size_t size = it->first;
    free_.erase(it);
    stats_.cached -= size;
    live_[p] = size;
    stats_.in_use += size;
    ++stats_.hits;
    if (stats_.in_use > stats_.peak_in_use) stats_.peak_in_use = stats_.in_use;
    return p;
  }
  release_locked();
  void* p = raw_alloc_(want);
  if (!p) throw std::bad_alloc();
  live_[p] = want;
  stats_.in_use += want;
  ++stats_.misses;
  if (stats_.in_use > stats_.peak_in_use) stats_.peak_in_use = stats_.in_use;
  return p;
}

void CachingAllocator::deallocate(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  if (it == live_.end()) return;  // not ours: nothing sensible to do in a deleter
  const size_t size = it->second;
  live_.erase(it);
  stats_.in_use -= size;
  free_.emplace(size, p);
  stats_.cached += size;
}

void CachingAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mu_);
  release_locked();
}

void CachingAllocator::release_locked() {
  for (auto& [size, p] : free_) raw_free_(p, size);
  free_.clear();
  stats_.cached = 0;
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak_in_use = stats_.in_use;
}

static std::atomic<std::ptrdiff_t> g_workspace_bytes{0};
void note_workspace(std::ptrdiff_t delta) { g_workspace_bytes += delta; }
size_t workspace_bytes() { return static_cast<size_t>(std::max<std::ptrdiff_t>(0, g_workspace_bytes.load())); }

namespace {

// Blocks from 1 MiB up are mapped directly (page-aligned), so releasing one always returns its
// pages to the system; the C library would serve them from its heap once its adaptive mmap
// threshold has grown, and keep them.
constexpr size_t kMapMin = size_t(1) << 20;

void* host_raw_alloc(size_t n) {
  if (n < kMapMin) return std::aligned_alloc(64, n);
  void* m = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return m == MAP_FAILED ? nullptr : m;
}

void host_raw_free(void* p, size_t n) {
  if (n < kMapMin)
    std::free(p);
  else
    munmap(p, n);
}

}  // namespace

CachingAllocator& host_allocator() {
  // Leaked on purpose: tensors in static objects may be freed after any static allocator.
  static CachingAllocator* a = new CachingAllocator(host_raw_alloc, host_raw_free);
  return *a;
}

}  // namespace m2t
