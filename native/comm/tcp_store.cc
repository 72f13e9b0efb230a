#include "comm/tcp_store.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace m2t {

namespace {

enum Op : uint8_t { kSet = 0, kGet = 1, kCheck = 2 };
using Clock = std::chrono::steady_clock;

std::string errno_text() { return std::strerror(errno); }

// Whole-buffer send/recv; false on EOF or error (the peer went away).
bool send_all(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t k = ::send(fd, c, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    c += k;
    n -= size_t(k);
  }
  return true;
}

bool recv_all(int fd, void* p, size_t n) {
  char* c = static_cast<char*>(p);
  while (n > 0) {
    const ssize_t k = ::recv(fd, c, n, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    c += k;
    n -= size_t(k);
  }
  return true;
}

bool send_blob(int fd, const char* p, uint32_t n) { return send_all(fd, &n, 4) && (n == 0 || send_all(fd, p, n)); }

// Values and keys are small (addresses); anything over 64 MiB is a protocol error, not an allocation.
bool recv_blob(int fd, std::vector<char>& out) {
  uint32_t n = 0;
  if (!recv_all(fd, &n, 4) || n > (64u << 20)) return false;
  out.resize(n);
  return n == 0 || recv_all(fd, out.data(), n);
}

addrinfo* resolve(const std::string& host, int port, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (passive) hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  const std::string p = std::to_string(port);
  const int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), p.c_str(), &hints, &res);
  if (rc != 0) fail(ErrorKind::Error, "rendezvous: cannot resolve ", host, ":", port, ": ", gai_strerror(rc));
  return res;
}

}  // namespace

TcpStoreServer::TcpStoreServer(const std::string& host, int port) {
  addrinfo* res = resolve(host, port, true);
  std::string err = "no address";
  for (addrinfo* a = res; a; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 128) == 0) {
      listen_fd_ = fd;
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
      port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                             : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
      break;
    }
    err = errno_text();
    ::close(fd);
  }
  ::freeaddrinfo(res);
  if (listen_fd_ < 0) fail(ErrorKind::Error, "rendezvous: cannot listen on ", host, ":", port, ": ", err);
  if (::pipe2(wake_, O_CLOEXEC) != 0) {
    ::close(listen_fd_);
    fail(ErrorKind::Error, "rendezvous: pipe: ", errno_text());
  }
  thread_ = std::thread([this] { serve(); });
}

TcpStoreServer::~TcpStoreServer() {
  const char c = 0;
  (void)!::write(wake_[1], &c, 1);
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

// One thread, poll() over the listener, the wake pipe and every client. A request is read whole once its
// first byte arrives (requests are small and clients send them in one go).
void TcpStoreServer::serve() {
  std::vector<pollfd> fds = {{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
  for (;;) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents) break;
    if (fds[1].revents & POLLIN) {
      const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        const int one = 1;
        ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fds.push_back({c, POLLIN, 0});
      }
    }
    for (size_t i = 2; i < fds.size();) {
      bool keep = true;
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        const int fd = fds[i].fd;
        uint8_t op = 0;
        std::vector<char> key, value;
        keep = recv_all(fd, &op, 1) && recv_blob(fd, key) && recv_blob(fd, value);
        if (keep) {
          const std::string k(key.begin(), key.end());
          uint8_t status = 0;
          const std::vector<char>* reply = nullptr;
          if (op == kSet) {
            data_[k] = std::move(value);
          } else {
            auto it = data_.find(k);
            status = it == data_.end() ? 1 : 0;
            if (op == kGet && it != data_.end()) reply = &it->second;
          }
          keep = (op == kSet || op == kGet || op == kCheck) && send_all(fd, &status, 1) &&
                 send_blob(fd, reply ? reply->data() : nullptr, reply ? uint32_t(reply->size()) : 0);
        }
        if (!keep) ::close(fd);
      }
      if (keep) ++i;
      else fds.erase(fds.begin() + long(i));
    }
  }
  for (size_t i = 2; i < fds.size(); ++i) ::close(fds[i].fd);
}

TcpStore::TcpStore(const std::string& host, int port, std::chrono::milliseconds timeout)
    : address_(host + ":" + std::to_string(port)), timeout_(timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string err;
  do {
    addrinfo* res = resolve(host, port, false);
    for (addrinfo* a = res; a && fd_ < 0; a = a->ai_next) {
      const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
        fd_ = fd;
      } else {
        err = errno_text();
        ::close(fd);
      }
    }
    ::freeaddrinfo(res);
    if (fd_ >= 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (Clock::now() < deadline);
  if (fd_ < 0) {
    fail(ErrorKind::Error, "rendezvous: no store answered at ", address_, " within ", timeout.count() / 1000.0,
         " s (", err, "); is rank 0 running and is the address reachable?");
  }
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // A store that stops answering (its host died) must not hang a rank forever.
  timeval tv{};
  tv.tv_sec = std::max<long>(1, long(timeout.count() / 1000));
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

TcpStore::~TcpStore() {
  if (fd_ >= 0) ::close(fd_);
}

bool TcpStore::request(uint8_t op, const std::string& key, const std::vector<char>& value, std::vector<char>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  uint8_t status = 0;
  std::vector<char> reply;
  if (!send_all(fd_, &op, 1) || !send_blob(fd_, key.data(), uint32_t(key.size())) ||
      !send_blob(fd_, value.data(), uint32_t(value.size())) || !recv_all(fd_, &status, 1) || !recv_blob(fd_, reply)) {
    fail(ErrorKind::Error, "rendezvous: lost the store at ", address_, " (key '", key, "')");
  }
  if (out) *out = std::move(reply);
  return status == 0;
}

void TcpStore::set(const std::string& key, const std::vector<char>& value) { request(kSet, key, value, nullptr); }

std::vector<char> TcpStore::get(const std::string& key) {
  wait({key});
  std::vector<char> v;
  if (!request(kGet, key, {}, &v)) fail(ErrorKind::Error, "rendezvous: key '", key, "' vanished from ", address_);
  return v;
}

void TcpStore::wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (const std::string& k : keys) {
    while (!request(kCheck, k, {}, nullptr)) {
      if (Clock::now() >= deadline) {
        fail(ErrorKind::Error, "rendezvous: timed out after ", timeout.count() / 1000.0, " s waiting for '", k,
             "' at ", address_, " (a rank did not start or cannot reach it)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

}  // namespace m2t
