#include "comm/nccl_comm.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "cuda/check.h"

namespace m2t {
namespace {

ncclComm_t as_comm(void* p) { return static_cast<ncclComm_t>(p); }
cudaStream_t as_stream(void* p) { return static_cast<cudaStream_t>(p); }

}  // namespace

NcclComm::Id NcclComm::make_id() {
  static_assert(sizeof(ncclUniqueId) == sizeof(Id), "NCCL_UNIQUE_ID_BYTES changed");
  ncclUniqueId id;
  const ncclResult_t r = ncclGetUniqueId(&id);
  if (r != ncclSuccess) fail(ErrorKind::Error, "NCCL: cannot make a unique id: ", ncclGetErrorString(r));
  Id out;
  std::memcpy(out.data(), &id, sizeof id);
  return out;
}

NcclComm::NcclComm(int rank, int world_size, const Id& id, int device, int64_t timeout_ms)
    : rank_(rank), world_(world_size), device_(device), timeout_ms_(timeout_ms) {
  if (world_size < 1 || rank < 0 || rank >= world_size)
    fail(ErrorKind::RangeError, "NCCL: rank ", rank, " is not in [0, ", world_size, ")");
  if (timeout_ms <= 0) fail(ErrorKind::RangeError, "NCCL: timeout_ms must be positive, got ", timeout_ms);
  M2T_CUDA_CHECK(cudaSetDevice(device));
  cudaStream_t s = nullptr;
  M2T_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  stream_ = s;
  ncclUniqueId uid;
  std::memcpy(&uid, id.data(), sizeof uid);
  ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
  cfg.blocking = 0;  // returns at once; completion is polled below, with the timeout
  ncclComm_t c = nullptr;
  ncclResult_t r = ncclCommInitRankConfig(&c, world_size, uid, rank, &cfg);
  comm_ = c;
  const auto t0 = std::chrono::steady_clock::now();
  while (r == ncclInProgress) {
    if (std::chrono::steady_clock::now() - t0 > std::chrono::milliseconds(timeout_ms)) {
      abort_comm();
      cudaStreamDestroy(s);
      fail(ErrorKind::Error, "NCCL: rank ", rank, " of ", world_size, " could not join the group within ",
           timeout_ms / 1000.0, " s (a rank missing?)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ncclCommGetAsyncError(c, &r);
  }
  if (r != ncclSuccess) {
    abort_comm();
    cudaStreamDestroy(s);
    fail(ErrorKind::Error, "NCCL: rank ", rank, " of ", world_size, " could not join the group: ", ncclGetErrorString(r));
  }
}

NcclComm::~NcclComm() {
  if (comm_) {
    // A clean finalize needs every rank; destroy alone is local and safe after an abort or a completed run.
    ncclCommDestroy(as_comm(comm_));
  }
  if (stream_) cudaStreamDestroy(as_stream(stream_));
}

void NcclComm::abort_comm() {
  if (comm_) ncclCommAbort(as_comm(comm_));
  comm_ = nullptr;
}

void NcclComm::allreduce_sum(float* x, size_t n) {
  if (!comm_) fail(ErrorKind::Error, "NCCL: rank ", rank_, ": the group was aborted by an earlier failure");
  if (n == 0) return;
  M2T_CUDA_CHECK(cudaSetDevice(device_));
  ncclResult_t r = ncclAllReduce(x, x, n, ncclFloat32, ncclSum, as_comm(comm_), as_stream(stream_));
  if (r != ncclSuccess && r != ncclInProgress) {
    abort_comm();
    fail(ErrorKind::Error, "NCCL: rank ", rank_, ": all-reduce of ", n, " floats failed: ", ncclGetErrorString(r));
  }
  wait("all-reduce");
}

void NcclComm::wait(const char* what) {
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    const cudaError_t q = cudaStreamQuery(as_stream(stream_));
    if (q == cudaSuccess) return;
    if (q != cudaErrorNotReady) {
      abort_comm();
      M2T_CUDA_CHECK(q);
    }
    ncclResult_t r = ncclSuccess;
    ncclCommGetAsyncError(as_comm(comm_), &r);
    if (r != ncclSuccess && r != ncclInProgress) {
      abort_comm();
      fail(ErrorKind::Error, "NCCL: rank ", rank_, ": ", what, " failed (a rank died?): ", ncclGetErrorString(r));
    }
    if (std::chrono::steady_clock::now() - t0 > std::chrono::milliseconds(timeout_ms_)) {
      abort_comm();
      fail(ErrorKind::Error, "NCCL: rank ", rank_, ": ", what, " did not complete within ", timeout_ms_ / 1000.0,
           " s (a rank died or hung?)");
    }
    std::this_thread::yield();
  }
}

}  // namespace m2t
