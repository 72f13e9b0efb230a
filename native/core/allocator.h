// Device memory. Each backend owns one Allocator for its device; tensors take their storage from
// it (Tensor → backend_for(device).allocator()).
//
// CachingAllocator keeps freed blocks and hands them out again for requests of nearly the same
// size (best fit within 1/8 slack), so a training loop that frees and re-creates the same tensors
// every step (input batches, temporaries) stops calling the system allocator — on a GPU,
// cudaMalloc/cudaFree synchronise the device. It never holds memory the program could otherwise
// use: on a miss, every cached block goes back to the system before a new one is requested, so
// the cache only bridges a free and the next same-sized allocation.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>

namespace m2t {

class Allocator {
 public:
  virtual ~Allocator() = default;
  // At least `bytes` (64-byte aligned); throws std::bad_alloc. Contents unspecified.
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* p) = 0;
  // Returns every cached block to the system.
  virtual void release_cached() {}
};

struct AllocatorStats {
  size_t in_use = 0;       // bytes handed out
  size_t cached = 0;       // bytes held for reuse
  size_t peak_in_use = 0;  // since construction or the last reset_peak()
  size_t hits = 0, misses = 0;
};

class CachingAllocator final : public Allocator {
 public:
  using RawAlloc = std::function<void*(size_t)>;  // nullptr on failure
  using RawFree = std::function<void(void*, size_t)>;  // the block and its size
  CachingAllocator(RawAlloc raw_alloc, RawFree raw_free) : raw_alloc_(std::move(raw_alloc)), raw_free_(std::move(raw_free)) {}
  ~CachingAllocator() override;

  void* allocate(size_t bytes) override;
  void deallocate(void* p) override;
  void release_cached() override;
  AllocatorStats stats() const;
  // Starts a new peak measurement at the bytes in use now.
  void reset_peak();

 private:
  void release_locked();
  RawAlloc raw_alloc_;
  RawFree raw_free_;
  mutable std::mutex mu_;
  std::unordered_map<void*, size_t> live_;  // block → its size
  std::multimap<size_t, void*> free_;       // cached blocks by size
  AllocatorStats stats_;
};

// The host allocator: 64-byte aligned blocks from the C library.
CachingAllocator& host_allocator();

// Workspaces kernels hold outside the allocators (oneDNN scratchpads, weights reordered into a
// primitive's layout): kernels note what they grow (or free) by, so the memory breakdown can
// report what they hold.
void note_workspace(std::ptrdiff_t delta);
size_t workspace_bytes();

}  // namespace m2t
