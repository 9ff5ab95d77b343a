// Runtime: device discovery, the vts::cuda stream, error reporting. Every program and test calls
// available() first, so that a machine without a GPU is detected and reported instead of failing
// inside a kernel launch.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>

#include "common/check.cuh"
#include "vts/backend/cuda/graph.hpp"
#include "vts/backend/cuda/profile.hpp"
#include "vts_cuda_api.hpp"

namespace vts::cuda {

int device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

namespace {

// Compiled like every kernel of vts::cuda, so the runtime can say whether this build has code the
// device can run before the first real launch fails with a bare "no kernel image".
__global__ void probe_kernel() {}

#ifndef VTS_CUDA_ARCHITECTURES_BUILT
#define VTS_CUDA_ARCHITECTURES_BUILT "(not recorded)"
#endif

}  // namespace

namespace detail {

std::string find_unavailable_reason() {
  int n = 0;
  const cudaError_t count = cudaGetDeviceCount(&n);
  if (count != cudaSuccess) {
    cudaGetLastError();
    // The runtime says "CUDA driver version is insufficient for CUDA runtime version" both for an old
    // driver and for none at all (a machine without a GPU); tell the two apart.
    if (count == cudaErrorInsufficientDriver) {
      int driver = 0, runtime = 0;
      cudaDriverGetVersion(&driver);
      cudaRuntimeGetVersion(&runtime);
      cudaGetLastError();
      auto version = [](int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); };
      if (driver == 0) return "no CUDA device: no NVIDIA driver is installed";
      return "the NVIDIA driver supports CUDA up to " + version(driver) + ", older than the CUDA " + version(runtime) +
             " runtime this vts was built with: update the driver";
    }
    return std::string("no usable CUDA device: ") + cudaGetErrorString(count);
  }
  if (n == 0) return "no CUDA device found";
  int dev = 0;
  cudaDeviceProp p{};
  if (const cudaError_t e = cudaGetDevice(&dev); e != cudaSuccess || cudaGetDeviceProperties(&p, dev) != cudaSuccess) {
    cudaGetLastError();
    return "the CUDA device's properties could not be read";
  }
  const std::string sm = "sm_" + std::to_string(p.major) + std::to_string(p.minor);
  const std::string device = std::string(p.name) + " (" + sm + ")";
  if (p.major < 8)
    return device + " is older than vts::cuda supports: its kernels need compute capability 8.0 or newer " +
           "(bf16 tensor-core mma.sync, ldmatrix, cp.async)";
  cudaFuncAttributes attr{};
  if (const cudaError_t e = cudaFuncGetAttributes(&attr, probe_kernel); e != cudaSuccess) {
    cudaGetLastError();
    return "this vts::cuda has no code " + device + " can run (" + cudaGetErrorString(e) +
           "): it was built for CUDA architectures " + VTS_CUDA_ARCHITECTURES_BUILT +
           "; configure again with -DCMAKE_CUDA_ARCHITECTURES=" + std::to_string(p.major) + std::to_string(p.minor);
  }
  return {};
}

}  // namespace detail

const std::string& unavailable_reason() {
  static const std::string reason = detail::find_unavailable_reason();
  return reason;
}

bool available() noexcept {
  try {
    return unavailable_reason().empty();
  } catch (...) {  // only an allocation failure while wording the reason
    return false;
  }
}

const DeviceInfo& device_info() {
  static DeviceInfo info = [] {
    DeviceInfo d;
    int dev = 0;
    VTS_CUDA_CHECK(cudaGetDevice(&dev));
    cudaDeviceProp p{};
    VTS_CUDA_CHECK(cudaGetDeviceProperties(&p, dev));
    d.name = p.name;
    d.major = p.major;
    d.minor = p.minor;
    d.sm_count = p.multiProcessorCount;
    d.total_memory = p.totalGlobalMem;
    d.l2_bytes = static_cast<size_t>(p.l2CacheSize);
    d.max_smem_per_block = p.sharedMemPerBlockOptin;
    d.smem_per_sm = p.sharedMemPerMultiprocessor;
    return d;
  }();
  return info;
}

namespace {
struct StreamState {
  std::mutex mutex;
  Stream stream = nullptr;
  bool created = false;
};
StreamState& stream_state() {
  static StreamState* s = new StreamState();  // never destroyed: outlives static tensors
  return *s;
}
std::atomic<bool>& sync_flag() {
  static std::atomic<bool> flag{[] {
    const char* e = std::getenv("VTS_CUDA_SYNC");
    return e != nullptr && std::strcmp(e, "0") != 0 && e[0] != '\0';
  }()};
  return flag;
}
}  // namespace

Stream current_stream() {
  auto& s = stream_state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.created) {
    cudaStream_t st = nullptr;
    VTS_CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    s.stream = st;
    s.created = true;
  }
  return s.stream;
}

void set_current_stream(Stream st) {
  auto& s = stream_state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.stream = st;
  s.created = true;
}

void synchronize() { VTS_CUDA_CHECK(cudaStreamSynchronize(current_stream())); }

// Created at the first record(), so that an object holding an Event (a Trainer's uploader) can be
// built in a program that never touches the GPU, on a machine without one.
Event::Event() = default;
Event::~Event() {
  if (event_) VTS_CUDA_CHECK_NOTHROW(cudaEventDestroy(static_cast<cudaEvent_t>(event_)));
}
void Event::record() {
  if (!event_) {
    cudaEvent_t e = nullptr;
    VTS_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    event_ = e;
  }
  VTS_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event_), current_stream()));
  recorded_ = true;
}
void Event::wait() const {
  if (recorded_ && event_) VTS_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event_)));
}

void set_sync_after_launch(bool on) { sync_flag().store(on); }
bool sync_after_launch() { return sync_flag().load(); }

namespace detail {

namespace {
std::string format_error(const char* library, int code, const char* error_string, const char* call,
                         const char* file, int line) {
  std::ostringstream os;
  os << library << " error " << code << " (" << (error_string ? error_string : "unknown") << ") in `" << call
     << "` at " << file << ":" << line;
  return os.str();
}
}  // namespace

void throw_cuda_error(const char* library, int code, const char* error_string, const char* call, const char* file,
                      int line) {
  const bool out_of_memory = (std::strcmp(library, "CUDA") == 0 && code == cudaErrorMemoryAllocation) ||
                             (std::strcmp(library, "cuBLAS") == 0 && code == CUBLAS_STATUS_ALLOC_FAILED);
  throw CudaError(format_error(library, code, error_string, call, file, line), code, out_of_memory);
}

void report_cuda_error(const char* library, int code, const char* error_string, const char* call, const char* file,
                       int line) noexcept {
  try {
    std::fprintf(stderr, "vts::cuda: %s\n", format_error(library, code, error_string, call, file, line).c_str());
  } catch (...) {
  }
}

const char* cublas_error_string(int status) noexcept {
  return cublasGetStatusString(static_cast<cublasStatus_t>(status));
}

void check_launch(const char* kernel, const char* file, int line, const char* detail) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw_cuda_error("CUDA", static_cast<int>(e), cudaGetErrorString(e), kernel, file, line);
  if (sync_after_launch() && !capturing()) {  // a capture runs nothing; Graph::replay synchronises
    const cudaError_t s = cudaStreamSynchronize(current_stream());
    if (s != cudaSuccess) {
      cudaGetLastError();
      throw_cuda_error("CUDA", static_cast<int>(s), cudaGetErrorString(s), kernel, file, line);
    }
  }
  profile_mark(kernel, detail);
}

}  // namespace detail
}  // namespace vts::cuda
