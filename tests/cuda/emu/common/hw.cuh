#pragma once
// The emulator's version of kernels/common/hw.cuh (same names and semantics, see that file): the
// inline PTX becomes calls into the emulator, which runs the warp-wide ones (ldmatrix, mma) once all
// 32 lanes have arrived with their operands.
#include <atomic>
#include <cmath>
#include <cstdint>

namespace vts::cuda::hw {

inline void cp_async16(void* smem, const void* gmem, bool valid) { vts_emu::cp_async(smem, gmem, 16, valid); }
inline void cp_async_commit() { vts_emu::cp_async_commit(); }
inline void compiler_fence() { std::atomic_signal_fence(std::memory_order_seq_cst); }
template <int N>
inline void cp_async_wait() {
  vts_emu::cp_async_wait(N);
}
inline void ldmatrix_x4(uint32_t (&r)[4], const void* p) { vts_emu::ldmatrix_x4(r, p, false); }
inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) { vts_emu::ldmatrix_x4(r, p, true); }
inline float exp2_ftz(float x) {
  const float y = std::exp2(x);
  return std::fpclassify(y) == FP_SUBNORMAL ? 0.0f : y;
}
inline void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  vts_emu::mma_m16n8k16_bf16(c, a, b0, b1);
}

inline uint64_t wgmma_desc(const void* smem, uint32_t lbo_bytes, uint32_t sbo_bytes) {
  return vts_emu::wgmma_desc(smem, lbo_bytes, sbo_bytes);
}
inline void wgmma_fence() { vts_emu::wgmma_fence(); }
inline void wgmma_commit() { vts_emu::wgmma_commit(); }
template <int N>
inline void wgmma_wait() {
  vts_emu::wgmma_wait(N);
}
inline void fence_proxy_async() { vts_emu::fence_proxy_async(); }
template <int N, class T>
inline void wgmma_pin(T (&)[N][4]) {}
template <int N>
struct Wgmma {
  template <int kTransB>
  static void ss(float (&d)[N / 8][4], uint64_t a, uint64_t b) {
    vts_emu::wgmma(&d[0][0], N, nullptr, a, b, kTransB != 0);
  }
  template <int kTransB>
  static void rs(float (&d)[N / 8][4], const uint32_t (&a)[4], uint64_t b) {
    vts_emu::wgmma(&d[0][0], N, a, 0, b, kTransB != 0);
  }
};

}  // namespace vts::cuda::hw
