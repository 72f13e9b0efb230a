// A key-value store over TCP for the rendezvous of data-parallel processes (as PyTorch's TCPStore):
// rank 0 serves it, every rank (rank 0 too) is a client. Ranks publish their addresses under keys and
// wait for the others'. Every blocking call has a deadline; a failure names the address and the key.
//
// Wire format, little-endian: request = op (u8) · key length (u32) · key · value length (u32) · value;
// reply = status (u8: 0 ok, 1 missing) · value length (u32) · value. Ops: set, get, check.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace m2t {

class TcpStoreServer {
 public:
  // Listens on host:port (port 0: any free port; see port()). Throws m2t::Error naming the address.
  TcpStoreServer(const std::string& host, int port);
  ~TcpStoreServer();
  TcpStoreServer(const TcpStoreServer&) = delete;
  TcpStoreServer& operator=(const TcpStoreServer&) = delete;
  int port() const { return port_; }

 private:
  void serve();
  int listen_fd_ = -1, wake_[2] = {-1, -1}, port_ = 0;
  std::map<std::string, std::vector<char>> data_;
  std::thread thread_;
};

class TcpStore {
 public:
  // Connects to host:port, retrying until `timeout` (the server may start later than this client).
  TcpStore(const std::string& host, int port, std::chrono::milliseconds timeout);
  ~TcpStore();
  TcpStore(const TcpStore&) = delete;
  TcpStore& operator=(const TcpStore&) = delete;

  void set(const std::string& key, const std::vector<char>& value);
  // Waits (until the store's timeout) for the key, then returns its value.
  std::vector<char> get(const std::string& key);
  // Waits until every key is set; throws naming the first missing key when `timeout` passes.
  void wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout);
  void wait(const std::vector<std::string>& keys) { wait(keys, timeout_); }
  std::chrono::milliseconds timeout() const { return timeout_; }
  const std::string& address() const { return address_; }

 private:
  // One request/reply; false when the key is missing (get/check).
  bool request(uint8_t op, const std::string& key, const std::vector<char>& value, std::vector<char>* out);
  int fd_ = -1;
  std::string address_;
  std::chrono::milliseconds timeout_;
  std::mutex mu_;
};

}  // namespace m2t
