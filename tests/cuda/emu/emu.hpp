#pragma once
// vts-emu: runs the vts::cuda kernels on the CPU, to check their logic on a machine without a GPU.
//
// Each CUDA thread of a block is a fiber; the fibers of one block run on one host thread, switching
// only where CUDA threads synchronise (__syncthreads, warp shuffles, ldmatrix, mma.sync), so a
// block behaves as it does on a device wherever the kernel is correctly synchronised. What it
// checks that a compile cannot: the arithmetic and indexing of every kernel (the parity tests of
// tests/cuda run unchanged against it), fragment layouts of the tensor-core path, barriers reached
// by only part of a block or warp (reported as a deadlock or a divergent collective), shared-memory
// operands of ldmatrix/cp.async outside the dynamic shared memory or misaligned, cp.async data read
// before its wait (VTS_EMU_CP_ASYNC=lazy lands copies at the wait, =eager at the issue), launches
// asking for more shared memory than was opted into. Scheduling order between barriers is shuffled
// (VTS_EMU_SEED) so races between warps can show. What it cannot tell: speed, registers, races
// within a warp's lockstep, and global-memory faults beyond what the host's own protection sees.
//
// This header is the kernels' side: kernels/*.cu are compiled by the host compiler with prelude.hpp
// forced in front and their <<<…>>> rewritten to `kernel | vts_emu::Launch(…)(args…)`.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace vts_emu {

uint3 thread_idx();
uint3 block_idx();
dim3 block_dim();
dim3 grid_dim();
void* dynamic_shared();

// Thrown inside a kernel for a fault the hardware would report (or silently misbehave on); the
// launch then fails with cudaErrorLaunchFailure and the message goes to stderr.
struct Fault {
  const char* what;
};
[[noreturn]] void fault(const char* fmt, ...);

void syncthreads();

enum class Collective : uint8_t { none, shfl, ldmatrix, mma, wgmma };
// Deposits `bytes` of this lane's data and returns, once every lane of the warp has deposited at the
// same kind of collective, the 32 lanes' deposits (slot stride kSlotBytes).
inline constexpr size_t kSlotBytes = 48;
const unsigned char* warp_collective(Collective kind, const void* data, size_t bytes);
int lane_id();

// A full-warp shuffle: lane l receives v of lane source(l).
template <class T, class Source>
T shuffle(const char* what, unsigned mask, T v, int width, Source source) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
  if (mask != 0xffffffffu || width != 32) fault("%s: only the full-warp form is emulated", what);
  const unsigned char* slots = warp_collective(Collective::shfl, &v, sizeof(T));
  T r;
  std::memcpy(&r, slots + kSlotBytes * (source(lane_id()) & 31), sizeof(T));
  return r;
}
template <class T>
T shfl_xor(unsigned mask, T v, int lane_mask, int width) {
  return shuffle("__shfl_xor_sync", mask, v, width, [lane_mask](int lane) { return lane ^ lane_mask; });
}
template <class T>
T shfl(unsigned mask, T v, int src_lane, int width) {
  return shuffle("__shfl_sync", mask, v, width, [src_lane](int) { return src_lane; });
}

void cp_async(void* smem, const void* gmem, int bytes, bool valid);
void cp_async_commit();
void cp_async_wait(int pending_groups_allowed);
void ldmatrix_x4(uint32_t (&r)[4], const void* p, bool trans);
void mma_m16n8k16_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
// wgmma.mma_async (kernels/common/hw.cuh): this lane's n/2 accumulators of D[64×n] += A·B, A from
// registers (a_regs, 4 of them) or from shared memory (a_desc, K-major), B from shared memory,
// MN-major when trans_b. A warp collective (its lanes' A registers are gathered); the product is
// computed at the wgmma_wait that covers it (VTS_EMU_CP_ASYNC=lazy, the default) or at once
// (=eager): reading the accumulators early, or rewriting the operands' shared memory before the
// wait, gives wrong results, as on the device. Descriptor start addresses are offsets in the
// block's dynamic shared memory.
uint64_t wgmma_desc(const void* smem, uint32_t lbo_bytes, uint32_t sbo_bytes);
void wgmma(float* d, int n, const uint32_t* a_regs, uint64_t a_desc, uint64_t b_desc, bool trans_b);
void wgmma_commit();
void wgmma_wait(int pending_groups_allowed);
// wgmma.fence. A wgmma issued with none since the kernel's start or the thread's last wait fails
// the launch: a conservative form of the rule (a fence between ordinary accesses of a wgmma's
// registers and the wgmma), since the registers' own accesses are invisible here.
void wgmma_fence();
// fence.proxy.async.shared::cta: this thread's landed cp.async writes become visible to wgmma. A
// wgmma that reads bytes a cp.async wrote before its writer's fence fails the launch.
void fence_proxy_async();

// --- launches ---------------------------------------------------------------------------------
struct Config {
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;
  const char* file;  // the launch site
  int line;
};
void run_kernel(const void* kernel, const Config& cfg, const std::function<void()>& thread_body);
// For VTS_EMU_STATS: a GEMM, which on a device is a cuBLAS launch of its own. Returns false when
// VTS_EMU_SKIP_WORK=1 asks for launches to be counted but not run (the caller then returns).
bool count_gemm_call();

template <class... A>
struct Pending {
  Config cfg;
  std::tuple<A...> args;
};

struct Launch {
  Config cfg;
  Launch(const char* file, int line, dim3 grid, dim3 block, size_t smem = 0, cudaStream_t stream = nullptr)
      : cfg{grid, block, smem, stream, file, line} {}
  template <class... A>
  Pending<std::decay_t<A>...> operator()(A&&... a) const {
    return {cfg, std::tuple<std::decay_t<A>...>(std::forward<A>(a)...)};
  }
};

// Stream capture (cudaStreamBeginCapture … cudaStreamEndCapture): launches, GEMMs, copies and
// fills are then recorded, not run, and run in order at each cudaGraphLaunch of the graph. Records
// `op` and returns true while a capture is in progress; false (the caller runs it) otherwise.
bool capturing_now();
bool replaying_graph();  // inside cudaGraphLaunch: a device's profile sees one operation, the launch
void record_captured(std::function<void()> op);
template <class Op>
bool defer_if_capturing(Op&& op) {
  if (!capturing_now()) return false;
  record_captured(std::forward<Op>(op));
  return true;
}

// `kernel | Launch(grid, block, smem, stream)(args...)`: the kernel's parameters are built from the
// arguments once, as the launch does; every thread gets its own copy, as each CUDA thread does. In
// a capture the parameters are kept, by value, for the replays (as a graph's kernel node keeps them).
template <class... K, class... A>
void operator|(void (*kernel)(K...), Pending<A...>&& p) {
  static_assert(sizeof...(K) == sizeof...(A), "kernel launched with the wrong number of arguments");
  using Params = std::tuple<std::decay_t<K>...>;
  Params params = std::apply([](auto&... a) { return Params(a...); }, p.args);
  auto launch = [kernel, cfg = p.cfg](const Params& kept) {
    run_kernel(reinterpret_cast<const void*>(kernel), cfg, [&] {
      auto copy = kept;
      std::apply(kernel, copy);
    });
  };
  if (defer_if_capturing([launch, params] { launch(params); })) return;
  launch(params);
}

}  // namespace vts_emu
