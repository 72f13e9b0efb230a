#include "comm/shm_comm.h"

#include <fcntl.h>
#include <immintrin.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "comm/tcp_store.h"
#include "core/error.h"

namespace m2t {

namespace {

constexpr uint64_t kMagic = 0x6d3274'73686d31ULL;  // "m2tshm1"
constexpr size_t kPage = 4096;

// One cache line per counter, so ranks advancing their own counters never share a line.
struct alignas(64) Line {
  std::atomic<uint32_t> v;        // barrier count (or, in the closed lines, 1 = closed)
  std::atomic<uint32_t> waiters;  // ranks sleeping on v: the one advancing it wakes them only then
  std::atomic<uint64_t> n;        // floats of the collective this rank is in (checked against the others)
};
static_assert(sizeof(Line) == 64 && std::atomic<uint32_t>::is_always_lock_free &&
              std::atomic<uint64_t>::is_always_lock_free, "counters must be plain words in shared memory");

struct Header {
  uint64_t magic;
  uint32_t world, pad;
  uint64_t chunk[2];
  uint64_t bytes;
};

size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

// Reached: v is at or past target (counts wrap after 2^32 barriers).
bool reached(uint32_t v, uint32_t target) { return int32_t(v - target) >= 0; }

void futex_wait(std::atomic<uint32_t>* a, uint32_t v, std::chrono::milliseconds d) {
  timespec ts{time_t(d.count() / 1000), long(d.count() % 1000) * 1000000L};
  // Not FUTEX_PRIVATE: the word is shared between processes.
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(a), FUTEX_WAIT, v, &ts, nullptr, 0);
}

void futex_wake(std::atomic<uint32_t>* a) {
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(a), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

std::string read_line(const char* path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

// Processes share /dev/shm and can see each other's pids only on one machine (boot id, hostname) in one
// pid namespace; the segment's open decides the rest (another container's /dev/shm fails to open).
std::string host_id() {
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  char ns[128] = {0};
  const ssize_t k = ::readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
  if (k < 0) ns[0] = 0;
  return read_line("/proc/sys/kernel/random/boot_id") + "|" + host + "|" + ns;
}

std::vector<char> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }
std::string string_of(const std::vector<char>& v) { return {v.begin(), v.end()}; }

// "1\n…" / "0\nreason"
std::string status(bool ok, const std::string& rest) { return std::string(ok ? "1" : "0") + "\n" + rest; }
bool ok_of(const std::string& s) { return !s.empty() && s[0] == '1'; }
std::string rest_of(const std::string& s) { return s.size() > 2 ? s.substr(2) : ""; }

std::string errno_text(int e) { return std::strerror(e); }

struct Layout {
  Header* header;
  Line* closed;  // [world]: 1 once the rank failed or closed its group
  Line* seq;     // [channel][world]
};

Layout layout_of(void* base, int world) {
  auto* h = static_cast<Header*>(base);
  auto* lines = reinterpret_cast<Line*>(static_cast<char*>(base) + 64);
  return {h, lines, lines + world};
}

size_t control_bytes(int world) { return round_up(64 + sizeof(Line) * 3 * size_t(world), kPage); }
size_t channel_bytes(int world, size_t chunk) { return round_up(2 * size_t(world) * chunk * sizeof(float), kPage); }

size_t chunk_for(size_t asked) { return std::max<size_t>(16, asked / 16 * 16); }  // slots start on cache lines

}  // namespace

std::unique_ptr<ShmGroup> ShmGroup::join(TcpStore& store, int rank, int world, std::chrono::milliseconds timeout,
                                         const ShmOptions& o, std::string* why_not, bool* notable) {
  *notable = false;
  const std::string me = host_id();
  store.set("shm/rank/" + std::to_string(rank), bytes_of(status(o.enabled, me + "\n" + std::to_string(::getpid()))));
  // Decided from every rank's entry in rank order, so every rank gives the same reason.
  std::vector<pid_t> pids(world);
  std::string first_host;
  bool one_host = true;
  for (int k = 0; k < world; ++k) {
    const std::string s = string_of(store.get("shm/rank/" + std::to_string(k)));
    std::istringstream in(rest_of(s));
    std::string host, pid;
    std::getline(in, host);
    std::getline(in, pid);
    if (!ok_of(s)) {
      *why_not = "rank " + std::to_string(k) + " disabled it (M2T_SHM=0)";
      return nullptr;
    }
    if (k == 0) first_host = host;
    one_host &= host == first_host;
    pids[k] = pid_t(std::stoll(pid));
  }
  if (!one_host) {
    *why_not = "the ranks are not all on one machine";
    return nullptr;
  }
  *notable = true;

  std::unique_ptr<ShmGroup> g(new ShmGroup());
  g->rank_ = rank;
  g->world_ = world;
  g->timeout_ = timeout;
  g->pids_ = pids;
  std::string name;
  int fd = -1;
  bool unlink_name = false;
  // Rank 0 removes the name on every way out of here (mapped or not): nothing stays in /dev/shm.
  struct Cleanup {
    std::string& name;
    int& fd;
    bool& unlink_name;
    ~Cleanup() {
      if (unlink_name) ::shm_unlink(name.c_str());
      if (fd >= 0) ::close(fd);
    }
  } cleanup{name, fd, unlink_name};

  std::string my_error;
  if (rank == 0) {
    const size_t cg = chunk_for(o.grads_chunk), cs = chunk_for(o.sum_chunk);
    const size_t bytes = control_bytes(world) + channel_bytes(world, cs) + channel_bytes(world, cg);
    std::random_device rd;
    std::ostringstream n;
    n << "/m2t-" << ::getpid() << "-" << std::hex << ((uint64_t(rd()) << 32) | rd());
    name = n.str();
    fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      my_error = "cannot create /dev/shm" + name + ": " + errno_text(errno);
    } else {
      unlink_name = true;
      // Reserves the pages now: a sparse segment past /dev/shm's size would SIGBUS on first touch.
      const int e = ::posix_fallocate(fd, 0, off_t(bytes));
      if (e != 0) {
        my_error = "cannot reserve " + std::to_string(bytes >> 20) + " MiB in /dev/shm: " + errno_text(e);
      } else {
        void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
        if (p == MAP_FAILED) {
          my_error = "cannot map /dev/shm" + name + ": " + errno_text(errno);
        } else {
          g->base_ = p;
          g->bytes_ = bytes;
          auto* h = static_cast<Header*>(p);  // the pages are zero: every counter starts at 0
          h->world = uint32_t(world);
          h->chunk[kSum] = cs;
          h->chunk[kGrads] = cg;
          h->bytes = bytes;
          h->magic = kMagic;
        }
      }
    }
    store.set("shm/segment", bytes_of(status(my_error.empty(), my_error.empty() ? name : my_error)));
  } else {
    const std::string s = string_of(store.get("shm/segment"));
    if (!ok_of(s)) {
      *why_not = "rank 0 " + rest_of(s);
      return nullptr;
    }
    name = rest_of(s);
    fd = ::shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0);
    struct stat st {};
    if (fd < 0) {
      my_error = "cannot open /dev/shm" + name + ": " + errno_text(errno);
    } else if (::fstat(fd, &st) != 0 || st.st_size < off_t(sizeof(Header))) {
      my_error = "/dev/shm" + name + " is not rank 0's segment";
    } else {
      void* p = ::mmap(nullptr, size_t(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
      if (p == MAP_FAILED) {
        my_error = "cannot map /dev/shm" + name + ": " + errno_text(errno);
      } else {
        g->base_ = p;
        g->bytes_ = size_t(st.st_size);
        const auto* h = static_cast<const Header*>(p);
        if (h->magic != kMagic || h->world != uint32_t(world) || h->bytes != g->bytes_)
          my_error = "/dev/shm" + name + " is not rank 0's segment";
      }
    }
  }
  store.set("shm/mapped/" + std::to_string(rank), bytes_of(status(my_error.empty(), my_error)));
  for (int k = 0; k < world && why_not->empty(); ++k) {
    const std::string s = string_of(store.get("shm/mapped/" + std::to_string(k)));
    if (!ok_of(s)) *why_not = "rank " + std::to_string(k) + " " + rest_of(s);
  }
  if (!why_not->empty()) return nullptr;  // the destructor unmaps

  const auto* h = static_cast<const Header*>(g->base_);
  for (int c : {kSum, kGrads}) g->chunk_[c] = size_t(h->chunk[c]);
  g->data_offset_[kSum] = control_bytes(world);
  g->data_offset_[kGrads] = g->data_offset_[kSum] + channel_bytes(world, g->chunk_[kSum]);
  // A pidfd turns readable when its process exits (a zombie too, unlike kill(pid, 0)); ranks that are
  // threads of this process share its pid and are only checked through their closed flag.
  g->pidfds_.assign(world, -1);
  for (int k = 0; k < world; ++k)
    if (k != rank && pids[k] != ::getpid()) g->pidfds_[k] = int(::syscall(SYS_pidfd_open, pids[k], 0));
  return g;
}

ShmGroup::~ShmGroup() {
  if (base_) {
    close();
    ::munmap(base_, bytes_);
  }
  for (int fd : pidfds_)
    if (fd >= 0) ::close(fd);
}

void ShmGroup::close() {
  if (!base_ || !static_cast<Header*>(base_)->magic) return;
  const Layout l = layout_of(base_, world_);
  l.closed[rank_].v.store(1, std::memory_order_seq_cst);
  for (int c : {kSum, kGrads}) futex_wake(&l.seq[c * world_ + rank_].v);  // waiters re-check our flag
}

bool ShmGroup::peer_dead(int k) const {
  if (pids_[k] == ::getpid()) return false;
  if (pidfds_[k] >= 0) {
    pollfd p{pidfds_[k], POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }
  if (::kill(pids_[k], 0) != 0 && errno == ESRCH) return true;
  // A zombie (exited, not yet reaped by its parent) still answers kill(pid, 0).
  const std::string stat = read_line(("/proc/" + std::to_string(pids_[k]) + "/stat").c_str());
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X');
}

void ShmGroup::failed(const std::string& why) {
  {
    std::lock_guard<std::mutex> lock(broken_mu_);
    if (broken_.empty()) broken_ = why;
  }
  close();
  fail(ErrorKind::Error, why);
}

void ShmGroup::arrive(Channel c, uint32_t target) {
  Line& me = layout_of(base_, world_).seq[c * world_ + rank_];
  me.v.store(target, std::memory_order_seq_cst);
  if (me.waiters.load(std::memory_order_seq_cst) != 0) futex_wake(&me.v);
}

void ShmGroup::wait_all(Channel c, uint32_t target) {
  const Layout l = layout_of(base_, world_);
  for (int k = 0; k < world_; ++k) {
    if (k == rank_) continue;
    Line& peer = l.seq[c * world_ + k];
    // Spin a few microseconds (a peer that is right behind), then sleep: a spinning thread would take
    // the core the other rank's compute threads need.
    bool done = false;
    for (int i = 0; i < 512 && !done; ++i) {
      done = reached(peer.v.load(std::memory_order_acquire), target);
      if (!done) _mm_pause();
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    while (!done) {
      // waiters before the re-read, the peer's store before its read of waiters (both seq_cst): either
      // we see its count or it sees us waiting and wakes the futex.
      peer.waiters.fetch_add(1, std::memory_order_seq_cst);
      const uint32_t v = peer.v.load(std::memory_order_seq_cst);
      if (!reached(v, target)) futex_wait(&peer.v, v, std::chrono::milliseconds(10));
      peer.waiters.fetch_sub(1, std::memory_order_seq_cst);
      if ((done = reached(peer.v.load(std::memory_order_acquire), target))) break;
      if (l.closed[k].v.load(std::memory_order_acquire))
        failed("rank " + std::to_string(k) + " left the group (it failed or closed its process group)");
      if (peer_dead(k)) failed("rank " + std::to_string(k) + " (pid " + std::to_string(pids_[k]) + ") died");
      if (std::chrono::steady_clock::now() > deadline)
        failed("rank " + std::to_string(k) + " did not reach it within " + std::to_string(timeout_.count()) +
               " ms (hung or stopped?)");
    }
  }
  std::atomic_thread_fence(std::memory_order_acquire);
}

void ShmGroup::allreduce(Channel c, float* x, size_t n, float scale) {
  {
    std::lock_guard<std::mutex> lock(broken_mu_);
    if (!broken_.empty()) fail(ErrorKind::Error, "the shared-memory group failed earlier: ", broken_);
  }
  if (n == 0) return;
  const Layout l = layout_of(base_, world_);
  const size_t C = chunk_[c];
  float* data = reinterpret_cast<float*>(static_cast<char*>(base_) + data_offset_[c]);
  l.seq[c * world_ + rank_].n.store(n, std::memory_order_relaxed);  // published by the first arrive
  for (size_t off = 0; off < n; off += C) {
    const size_t m = std::min(C, n - off);
    float* set = data + (chunks_done_[c] & 1) * size_t(world_) * C;  // this chunk's world slots
    std::memcpy(set + size_t(rank_) * C, x + off, m * sizeof(float));
    arrive(c, ++phase_[c]);
    wait_all(c, phase_[c]);
    if (off == 0) {  // every rank sees the same counts, so all of them fail here, with the same text
      std::string counts;
      bool differ = false;
      for (int k = 0; k < world_; ++k) {
        const uint64_t nk = l.seq[c * world_ + k].n.load(std::memory_order_relaxed);
        differ |= nk != n;
        counts += (k ? ", rank " : "rank ") + std::to_string(k) + " " + std::to_string(nk) + (k ? "" : " floats");
      }
      if (differ) failed("the ranks' sums differ in length: " + counts);
    }
    // Slice r of the chunk (16-float aligned; empty for some ranks when m < 16 · world): Σ over the slots
    // in rank order, into this rank's output and back into slot 0 for the others to copy.
    const size_t per = round_up((m + world_ - 1) / world_, 16);
    const size_t lo = std::min(m, size_t(rank_) * per), hi = std::min(m, lo + per);
    float* out = x + off;
    constexpr size_t kBlock = 2048;  // stays in L1 across the ranks' passes
    for (size_t b = lo; b < hi; b += kBlock) {
      const size_t e = std::min(hi, b + kBlock);
      const float* s0 = set;
      const float* s1 = set + C;
      for (size_t i = b; i < e; ++i) out[i] = s0[i] + s1[i];
      for (int k = 2; k < world_; ++k) {
        const float* sk = set + size_t(k) * C;
        for (size_t i = b; i < e; ++i) out[i] += sk[i];
      }
      if (scale != 1.0f)
        for (size_t i = b; i < e; ++i) out[i] *= scale;
      std::memcpy(set + b, out + b, (e - b) * sizeof(float));
    }
    arrive(c, ++phase_[c]);
    wait_all(c, phase_[c]);
    std::memcpy(out, set, lo * sizeof(float));
    std::memcpy(out + hi, set + hi, (m - hi) * sizeof(float));
    ++chunks_done_[c];
  }
}

}  // namespace m2t
