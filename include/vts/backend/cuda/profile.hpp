#pragma once
// Where the device's time goes, op by op. While profiling, every kernel, cuBLAS call, device copy
// and fill that vts::cuda queues is followed by a CUDA event on its stream (all of vts::cuda's
// work runs on one stream, runtime.hpp); an op is charged the time from the event before it to its
// own. When the device is busier than the host (ViT-B/16's step) that is the op's execution time;
// when the host is the bottleneck (a launch-bound step) it includes the wait for the host to queue
// the op — a true share of the step either way, and the shares add up to the profiled span.
//
// The events cost the host about a microsecond each, so time the step without profiling and
// profile separate steps (vts_bench_train --profile-steps). Every 4,096 ops the profiler waits for
// the device to read its events back; the op after that wait is charged the host's catch-up too.
// Not for use from several host threads at once.
#include <cstdint>
#include <string>
#include <vector>

namespace vts::cuda {

struct ProfileEntry {
  // The kernel's name (the elementwise maps add their functor: "binary_flat_kernel<Mul>"), or
  // "gemm <in>→<out> M×N×K [×batch] [epilogue]", "memcpy D2D", "memcpy H2D", "memset".
  std::string name;
  int64_t calls = 0;
  double ms = 0;  // summed over the calls
};

// Starts a profile (any previous one is dropped). Throws CudaError without a device.
void profile_start();
// Ends the profile: waits for the device, and returns one entry per name, most time first.
std::vector<ProfileEntry> profile_stop();
bool profiling() noexcept;

namespace detail {
// Called by vts::cuda after it queues an op; nothing happens unless profiling. `name` and `detail`
// must outlive the profile (string literals, or static storage).
void profile_mark(const char* name, const char* detail = nullptr);
// For names built per call (the GEMMs' shapes).
void profile_mark(const std::string& name);
// "gemm bf16→fp32 6304×2304×768 ×12 bias": element types, M×N×K, the batch when there is one, the
// epilogue (nullptr: none) and how cuBLAS ran it (nullptr: cuBLASLt).
std::string gemm_profile_name(bool bf16_in, bool bf16_out, int64_t M, int64_t N, int64_t K, int64_t batch,
                              const char* epilogue, const char* api);
}  // namespace detail

}  // namespace vts::cuda
