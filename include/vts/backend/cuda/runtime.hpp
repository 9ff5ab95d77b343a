#pragma once
// vts::cuda runtime: device discovery, the one stream every kernel runs on, and the error type.
//
// This header, like every header under backend/cuda/, declares host functions only and includes
// no CUDA header: code that uses Tensor<T, vts::Cuda> compiles with the host compiler and links
// vts::cuda. Kernel bodies live in kernels/ and are compiled by nvcc.
//
// Streams: all kernels, copies and cuBLAS calls of vts::cuda are issued on one stream
// (current_stream()). That is what makes the caching allocator's reuse safe without events: a
// block freed by the host is handed out again only to work queued later on the same stream.
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "vts/core/device.hpp"
#include "vts/core/error.hpp"

// The runtime's stream type, declared exactly as cuda_runtime.h declares it, so that this header
// can name it without including CUDA headers.
struct CUstream_st;

namespace vts::cuda {

using Stream = CUstream_st*;

// A failed CUDA, cuBLAS or cuDNN call. what() names the call, the library's error string, and the
// source file and line of the call site. code() is that library's own error code.
class CudaError : public Error {
 public:
  CudaError(const std::string& what, int code, bool out_of_memory = false)
      : Error(what), code_(code), out_of_memory_(out_of_memory) {}
  int code() const { return code_; }
  // The device's memory ran out (cudaErrorMemoryAllocation, CUBLAS_STATUS_ALLOC_FAILED): a caller
  // that holds memory it can do without may free it and try again.
  bool out_of_memory() const { return out_of_memory_; }

 private:
  int code_;
  bool out_of_memory_;
};

// Number of CUDA devices, 0 when there is no driver or no device (never throws).
int device_count() noexcept;
// True when the current device can run this build of vts::cuda. Tests and programs call this first.
bool available() noexcept;
// Why not, in words a user can act on (no device, the driver's error, a device older than
// compute capability 8.0, a build without code for the device's architecture); empty when
// available(). Worked out once per process.
const std::string& unavailable_reason();
namespace detail {
// The same, worked out now (for tests that change what vts-emu reports).
std::string find_unavailable_reason();
}  // namespace detail

struct DeviceInfo {
  std::string name;
  int major = 0, minor = 0;       // compute capability
  int sm_count = 0;
  size_t total_memory = 0;        // bytes
  size_t l2_bytes = 0;
  size_t max_smem_per_block = 0;  // with the opt-in attribute (sm_80: 163 KB, sm_90: 227 KB)
  size_t smem_per_sm = 0;
};
// Properties of the current device (cached after the first call). Throws CudaError without one.
const DeviceInfo& device_info();

// The stream all vts::cuda work is issued on. Created on first use (non-blocking with respect to
// the legacy default stream).
Stream current_stream();
// Use another stream from now on (e.g. one owned by the caller). The caller keeps it alive, and
// must synchronise the old stream first if blocks freed on it could be reused on the new one.
void set_current_stream(Stream s);
// Waits until all work queued on the current stream has finished; rethrows an asynchronous error
// (a kernel fault) as CudaError.
void synchronize();

// A point in the vts::cuda stream: record() marks where the stream has got to, wait() blocks the
// host until the device has passed that mark (at once if never recorded). Constructing one does not
// touch the device; the CUDA event is created at the first record().
class Event {
 public:
  Event();
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  Event(Event&& o) noexcept : event_(o.event_), recorded_(o.recorded_) {
    o.event_ = nullptr;
    o.recorded_ = false;
  }
  Event& operator=(Event&& o) noexcept {
    std::swap(event_, o.event_);
    std::swap(recorded_, o.recorded_);
    return *this;
  }
  void record();
  void wait() const;

 private:
  void* event_ = nullptr;  // cudaEvent_t
  bool recorded_ = false;
};

// Debug switch: when on (or when the environment variable VTS_CUDA_SYNC=1 is set at start-up),
// every launcher synchronises after its launch, so a faulting kernel is reported by the call
// that launched it instead of by a later, unrelated call.
void set_sync_after_launch(bool on);
bool sync_after_launch();

}  // namespace vts::cuda
