#include "comm/gloo_comm.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>

#include <cstdio>
#include <cstdlib>

#include "comm/tcp_store.h"
#include "core/error.h"

namespace m2t {

namespace {

// Gloo's rendezvous interface over our TCP store client.
class StoreAdapter final : public gloo::rendezvous::Store {
 public:
  explicit StoreAdapter(TcpStore& s) : s_(s) {}
  void set(const std::string& key, const std::vector<char>& data) override { s_.set(key, data); }
  std::vector<char> get(const std::string& key) override { return s_.get(key); }
  void wait(const std::vector<std::string>& keys) override { s_.wait(keys); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override {
    s_.wait(keys, timeout);
  }

 private:
  TcpStore& s_;
};

// This machine's address on the route to the master: connect a UDP socket (no packet is sent) and
// read its local end. On one machine that is the loopback address; across machines, the right interface.
std::string local_address_towards(const std::string& host, int port) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res)
    fail(ErrorKind::Error, "rendezvous: cannot resolve the master address ", host);
  std::string out;
  const int fd = ::socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  char buf[INET6_ADDRSTRLEN] = {0};
  if (fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    const void* a = ss.ss_family == AF_INET6 ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr)
                                             : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&ss)->sin_addr);
    if (::inet_ntop(ss.ss_family, a, buf, sizeof buf)) out = buf;
  }
  if (fd >= 0) ::close(fd);
  ::freeaddrinfo(res);
  if (out.empty()) fail(ErrorKind::Error, "rendezvous: no route from this machine to the master address ", host);
  return out;
}

}  // namespace

GlooComm::GlooComm(const GlooOptions& o) : rank_(o.rank), world_size_(o.world_size) {
  if (o.world_size < 1) fail(ErrorKind::RangeError, "world size must be >= 1, got ", o.world_size);
  if (o.rank < 0 || o.rank >= o.world_size)
    fail(ErrorKind::RangeError, "rank ", o.rank, " is outside [0, ", o.world_size, ")");
  if (o.master_port < 0 || o.master_port > 65535) fail(ErrorKind::RangeError, "master port ", o.master_port, " is not a TCP port");
  if (rank_ == 0) server_ = std::make_unique<TcpStoreServer>(o.master_addr, o.master_port);
  TcpStore store(o.master_addr, o.master_port, o.timeout);
  StoreAdapter adapter(store);
  gloo::transport::tcp::attr attr;
  attr.hostname = o.interface_host.empty() ? local_address_towards(o.master_addr, o.master_port) : o.interface_host;
  try {
    auto device = gloo::transport::tcp::CreateDevice(attr);
    auto ctx = std::make_shared<gloo::rendezvous::Context>(rank_, world_size_);
    ctx->setTimeout(o.timeout);
    ctx->connectFullMesh(adapter, device);
    context_ = ctx;
    // The gradient channel: a second full mesh (keys under "grads/") on the same device, so the
    // step's communication thread never shares a context, a tag sequence or a lock with other callers.
    gloo::rendezvous::PrefixStore grads_store("grads", adapter);
    auto gctx = std::make_shared<gloo::rendezvous::Context>(rank_, world_size_);
    gctx->setTimeout(o.timeout);
    gctx->connectFullMesh(grads_store, device);
    grads_context_ = gctx;
    if (world_size_ > 1) {
      ShmOptions so = o.shm;
      if (const char* env = std::getenv("M2T_SHM"); env && std::string(env) == "0") so.enabled = false;
      bool notable = false;
      shm_ = ShmGroup::join(store, rank_, world_size_, o.timeout, so, &why_not_shm_, &notable);
      if (!shm_ && notable && rank_ == 0)
        std::fprintf(stderr, "m2t: the process group sums over TCP, not shared memory: %s\n", why_not_shm_.c_str());
    }
    // Every rank returns once every rank has both meshes up (a rank that returned early and died could
    // leave a slower one half-connected, failing its rendezvous rather than its first collective).
    store.set("connected/" + std::to_string(rank_), {'1'});
    std::vector<std::string> keys;
    for (int r = 0; r < world_size_; ++r) keys.push_back("connected/" + std::to_string(r));
    store.wait(keys);
  } catch (const m2t::Error&) {
    throw;
  } catch (const std::exception& e) {
    fail(ErrorKind::Error, "rank ", rank_, " of ", world_size_, ": cannot connect the process group through ",
         o.master_addr, ":", o.master_port, ": ", e.what());
  }
}

GlooComm::~GlooComm() = default;

namespace {

// Who a failed collective lost. Gloo reports a socket, not a rank: with 2 ranks it can only be the other
// one; with more, the ring's neighbours see the failure first (and a failure further along reaches them).
std::string lost_peer(int rank, int world) {
  if (world == 2) return "rank " + std::to_string(1 - rank) + " died or hung";
  return "rank " + std::to_string((rank + 1) % world) + " or rank " + std::to_string((rank + world - 1) % world) +
         " (the ring's neighbours), or a rank beyond them, died or hung";
}

// Σ over ranks in place with Gloo's ring all-reduce (the same algorithm on both channels).
void gloo_sum(const std::shared_ptr<gloo::Context>& ctx, uint32_t tag, float* x, size_t n, int rank,
              const char* what) {
  try {
    gloo::AllreduceOptions opts(ctx);
    opts.setInput(x, n);
    opts.setOutput(x, n);
    opts.setTag(tag);
    opts.setReduceFunction(static_cast<void (*)(void*, const void*, const void*, size_t)>(&gloo::sum<float>));
    gloo::allreduce(opts);
  } catch (const std::exception& e) {
    fail(ErrorKind::Error, "rank ", rank, ": ", what, " of ", n, " floats failed (", lost_peer(rank, ctx->size),
         "?): ", e.what());
  }
}

// The same through the shared-memory group (comm/shm_comm.h names the rank that failed).
void shm_sum(ShmGroup& g, ShmGroup::Channel c, float* x, size_t n, int rank, const char* what, float scale = 1.0f) {
  try {
    g.allreduce(c, x, n, scale);
  } catch (const std::exception& e) {
    fail(ErrorKind::Error, "rank ", rank, ": ", what, " of ", n, " floats failed (shared memory): ", e.what());
  }
}

}  // namespace

void GlooComm::allreduce_sum(float* x, size_t n) {
  if (world_size_ == 1 || n == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (shm_) return shm_sum(*shm_, ShmGroup::kSum, x, n, rank_, "all-reduce");
  gloo_sum(context_, tag_++, x, n, rank_, "all-reduce");
}

void GlooComm::allreduce_grads(float* x, size_t n) {
  if (world_size_ == 1 || n == 0) return;
  std::lock_guard<std::mutex> lock(grads_mu_);
  if (shm_) return shm_sum(*shm_, ShmGroup::kGrads, x, n, rank_, "gradient all-reduce");
  gloo_sum(grads_context_, grads_tag_++, x, n, rank_, "gradient all-reduce");
}

void GlooComm::allreduce_grads_scaled(float* x, size_t n, float scale) {
  if (shm_ && n > 0) {
    std::lock_guard<std::mutex> lock(grads_mu_);
    return shm_sum(*shm_, ShmGroup::kGrads, x, n, rank_, "gradient all-reduce", scale);  // one pass less
  }
  Comm::allreduce_grads_scaled(x, n, scale);
}

void GlooComm::barrier(std::chrono::milliseconds timeout) {
  if (world_size_ == 1) return;
  std::lock_guard<std::mutex> lock(mu_);
  try {
    gloo::BarrierOptions opts(context_);
    opts.setTag(tag_++);
    if (timeout.count() > 0) opts.setTimeout(timeout);
    gloo::barrier(opts);
  } catch (const std::exception& e) {
    fail(ErrorKind::Error, "rank ", rank_, ": barrier failed (", lost_peer(rank_, world_size_), "?): ", e.what());
  }
}

}  // namespace m2t
