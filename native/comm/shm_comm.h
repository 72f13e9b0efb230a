// Sums between the ranks of a group that all run on one machine, through a shared-memory segment
// instead of TCP over loopback (GlooComm uses it when it can; docs: README, "Several processes").
//
// Setup (ShmGroup::join, collective, through the rendezvous store): every rank publishes its host id
// (boot id, hostname, pid namespace), its pid and whether it allows the path (M2T_SHM=0 does not). When
// all agree, rank 0 creates a segment under a unique name, reserves its pages with posix_fallocate (a
// sparse segment on a full /dev/shm would SIGBUS on first touch instead), and publishes the name; every
// rank maps it and says so; rank 0 unlinks the name once all have, so a crash leaves nothing behind. Any
// failure is reported to all, and every rank falls back to TCP with the same one-line reason.
//
// Sum (one channel per caller thread: the gradient channel and the JS channel never share memory or
// counters): the buffer goes through in chunks. Per chunk, every rank copies its chunk into its slot;
// after a barrier, rank r sums slice r of the chunk over the slots in rank order 0..N-1 and writes it
// back into slot 0; after a second barrier every rank copies the whole summed chunk out. Every rank thus
// gets the same bits, and each element's sum has the same order whatever the chunking or bucketing
// (with 2 ranks a + b, bitwise Gloo's result). Chunks alternate between two sets of slots, so a rank may
// fill chunk k+1 while a slower one still copies chunk k out.
//
// Barriers: a counter per rank and channel; waiting spins briefly, then sleeps on a futex (the rank that
// advances wakes sleepers), waking every few ms to check the peer: a peer that died (its process exited,
// through a pidfd) or closed its side fails the wait at once, naming it; one that stops advancing
// (hung, SIGSTOPped) fails it once the group's timeout has passed. A rank that fails marks itself closed,
// so the ranks waiting on it fail too instead of waiting out the timeout.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace m2t {

class TcpStore;

struct ShmOptions {
  bool enabled = true;  // false: this rank publishes that it declines (and every rank falls back)
  // Floats per rank and chunk, per channel. 64 Ki floats (256 KiB slots): a chunk's copy-in, sum and
  // copy-out stay in the cores' L2; larger chunks were slower (ResNet-50's 35 M floats, 2 ranks: 70 ms
  // at 64 Ki, 80 ms at 128 Ki, 120 ms at 1 Mi). The segment is then 1 MiB per rank.
  size_t grads_chunk = size_t(1) << 16, sum_chunk = size_t(1) << 16;
};

class ShmGroup {
 public:
  enum Channel { kSum = 0, kGrads = 1 };

  // Collective: returns the group, or nullptr with *why_not set (the same text on every rank); *notable
  // says whether the reason is worth a line on stderr (false when declined or on several machines).
  // Throws only when the store fails (a rank that died during setup).
  static std::unique_ptr<ShmGroup> join(TcpStore& store, int rank, int world, std::chrono::milliseconds timeout,
                                        const ShmOptions& o, std::string* why_not, bool* notable);
  ~ShmGroup();
  ShmGroup(const ShmGroup&) = delete;
  ShmGroup& operator=(const ShmGroup&) = delete;

  // x[0..n) ← (Σ over ranks) · scale, on channel c (one caller at a time per channel); the multiply is a
  // separate rounding after the whole sum, as a pass over the result would do it. Throws m2t::Error
  // naming the rank that died, left or hung; after that every call on this group throws.
  void allreduce(Channel c, float* x, size_t n, float scale = 1.0f);
  size_t chunk(Channel c) const { return chunk_[c]; }

 private:
  ShmGroup() = default;
  void wait_all(Channel c, uint32_t target);
  void arrive(Channel c, uint32_t target);
  bool peer_dead(int k) const;
  void close();
  [[noreturn]] void failed(const std::string& why);

  int rank_ = 0, world_ = 1;
  std::chrono::milliseconds timeout_{60000};
  void* base_ = nullptr;
  size_t bytes_ = 0;
  size_t chunk_[2] = {0, 0};
  size_t data_offset_[2] = {0, 0};  // byte offset of each channel's 2 × world slots
  uint32_t phase_[2] = {0, 0};      // this rank's barrier count per channel
  uint64_t chunks_done_[2] = {0, 0};
  std::vector<pid_t> pids_;
  std::vector<int> pidfds_;
  std::mutex broken_mu_;
  std::string broken_;  // set once a call on either channel failed
};

}  // namespace m2t
