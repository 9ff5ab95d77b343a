// vts-emu's GEMM: the API of vts/backend/cuda/gemm.hpp as a plain loop on host memory, so the op
// layer's device path (training step, ops, losses) runs under the emulator. It stands in for
// cuBLASLt, which the emulator cannot run; it checks nothing about kernels/gemm.cu itself (only a
// device can), so the [gemm] parity family is not part of the emulated run. Operands are rounded
// the way the selected precision does on a device (TF32: 10 mantissa bits; bf16) and products
// accumulate in fp32. Inside a stream capture each call is recorded and computed at the replays
// (reading the precision and epilogue switches then, where a device fixes them at the capture).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "emu.hpp"
#include "vts/backend/cuda/gemm.hpp"
#include "vts/backend/cuda/memory.hpp"
#include "vts/backend/cuda/profile.hpp"
#include "vts/backend/cuda/reduce.hpp"
#include "vts/core/error.hpp"

namespace vts::cuda {

namespace {

// TF32: fp32 with 10 mantissa bits, rounded to nearest, ties to even.
float round_to_tf32(float x) {
  if (!std::isfinite(x)) return x;
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u = (u + 0xfffu + ((u >> 13) & 1u)) & ~0x1fffu;
  std::memcpy(&x, &u, 4);
  return x;
}

float operand(float x) {
  switch (fp32_gemm()) {
    case Fp32Gemm::tf32: return round_to_tf32(x);
    case Fp32Gemm::bf16: return static_cast<float>(bf16(x));
    default: return x;
  }
}
float operand(bf16 x) { return static_cast<float>(x); }

float load(const float* p) { return *p; }
float load(const bf16* p) { return static_cast<float>(*p); }
void store(float* p, float v) { *p = v; }
void store(bf16* p, float v) { *p = bf16(v); }

template <class TA, class TC>
void gemm_one(const MatrixRef<TA>& a, const MatrixRef<TA>& b, TC* c, int64_t ldc, float alpha, float beta) {
  VTS_CHECK(a.cols == b.rows, "vts::cuda::gemm (emulated): A is ", a.rows, "x", a.cols, " but B is ", b.rows, "x",
            b.cols);
  VTS_CHECK(ldc >= b.cols, "vts::cuda::gemm (emulated): ldc ", ldc, " < N ", b.cols);
  const int64_t M = a.rows, N = b.cols, K = a.cols;
  std::vector<float> bt(static_cast<size_t>(K * N));  // B rounded once, k-major per column
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < N; ++j) bt[size_t(j * K + k)] = operand(b.data[k * b.row_stride + j * b.col_stride]);
  std::vector<float> arow(static_cast<size_t>(K));
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t k = 0; k < K; ++k) arow[size_t(k)] = operand(a.data[i * a.row_stride + k * a.col_stride]);
    for (int64_t j = 0; j < N; ++j) {
      float acc = 0.0f;
      const float* bj = &bt[size_t(j * K)];
      for (int64_t k = 0; k < K; ++k) acc = std::fma(arow[size_t(k)], bj[k], acc);
      TC* out = c + i * ldc + j;
      store(out, beta == 0.0f ? alpha * acc : alpha * acc + beta * load(out));
    }
  }
}

// Names the product in a profile as gemm.cu does (the emulator's events hold host times).
template <class TA, class TC>
void mark_gemm(const MatrixRef<TA>& a, const MatrixRef<TA>& b, int64_t batch, const char* epilogue) {
  if (!profiling() || vts_emu::replaying_graph()) return;
  detail::profile_mark(detail::gemm_profile_name(std::is_same_v<TA, bf16>, std::is_same_v<TC, bf16>, a.rows, b.cols,
                                                 a.cols, batch, epilogue, nullptr));
}

template <class TA, class TC>
void gemm_batched(const MatrixRef<TA>& a, int64_t stride_a, const MatrixRef<TA>& b, int64_t stride_b, TC* c,
                  int64_t ldc, int64_t stride_c, int64_t batch, float alpha, float beta) {
  VTS_CHECK(batch >= 0, "vts::cuda::gemm_strided_batched (emulated): batch ", batch);
  if (!vts_emu::count_gemm_call()) return;
  for (int64_t i = 0; i < batch; ++i) {
    MatrixRef<TA> ai = a, bi = b;
    ai.data += i * stride_a;
    bi.data += i * stride_b;
    gemm_one(ai, bi, c + i * stride_c, ldc, alpha, beta);
  }
  mark_gemm<TA, TC>(a, b, batch, nullptr);
}

}  // namespace

void gemm(Device, const MatrixRef<float>& a, const MatrixRef<float>& b, float* c, int64_t ldc, float alpha,
          float beta) {
  if (vts_emu::defer_if_capturing([=] { gemm(Device{}, a, b, c, ldc, alpha, beta); })) return;
  if (!vts_emu::count_gemm_call()) return;
  gemm_one(a, b, c, ldc, alpha, beta);
  mark_gemm<float, float>(a, b, 1, nullptr);
}
void gemm(Device, const MatrixRef<bf16>& a, const MatrixRef<bf16>& b, bf16* c, int64_t ldc, float alpha, float beta) {
  if (vts_emu::defer_if_capturing([=] { gemm(Device{}, a, b, c, ldc, alpha, beta); })) return;
  if (!vts_emu::count_gemm_call()) return;
  gemm_one(a, b, c, ldc, alpha, beta);
  mark_gemm<bf16, bf16>(a, b, 1, nullptr);
}
void gemm(Device, const MatrixRef<bf16>& a, const MatrixRef<bf16>& b, float* c, int64_t ldc, float alpha, float beta) {
  if (vts_emu::defer_if_capturing([=] { gemm(Device{}, a, b, c, ldc, alpha, beta); })) return;
  if (!vts_emu::count_gemm_call()) return;
  gemm_one(a, b, c, ldc, alpha, beta);
  mark_gemm<bf16, float>(a, b, 1, nullptr);
}
// The epilogue forms as a device computes them: the bias joins the fp32 accumulator before C is
// rounded; the row sums of A are taken from A as stored (whether cuBLASLt's bias-gradient epilogue
// sums TF32-rounded operands is for the device's [gemm] test to show), in fp32. With the
// epilogues switched off (VTS_GEMM_EPILOGUES=0), the device's separate passes instead: the
// seeding copy and sum_middle are emulated kernels, so launch counts match a device's.
namespace {
template <class T>
void bias_product(const MatrixRef<T>& a, const MatrixRef<T>& b, const T* bias, T* c, int64_t ldc) {
  if (!gemm_epilogues()) {
    const int64_t bias_strides[2] = {0, 1}, c_strides[2] = {ldc, 1};
    copy_strided(Device{}, Shape{a.rows, b.cols}, bias, bias_strides, c, c_strides);
    if (vts_emu::count_gemm_call()) gemm_one(a, b, c, ldc, 1.0f, 1.0f);
    mark_gemm<T, T>(a, b, 1, nullptr);
    return;
  }
  if (!vts_emu::count_gemm_call()) return;
  for (int64_t i = 0; i < a.rows; ++i)
    for (int64_t j = 0; j < b.cols; ++j) c[i * ldc + j] = bias[j];
  gemm_one(a, b, c, ldc, 1.0f, 1.0f);  // bias + product in fp32, rounded once (a bf16 bias is exact)
  mark_gemm<T, T>(a, b, 1, "bias");
}

template <class T>
void product_row_sums(const MatrixRef<T>& a, const MatrixRef<T>& b, T* c, int64_t ldc, T* sums) {
  const RowSumShape rs = row_sum_shape(a, "vts::cuda::gemm_row_sums (emulated)");
  if (!gemm_epilogues()) {
    if (vts_emu::count_gemm_call()) gemm_one(a, b, c, ldc, 1.0f, 0.0f);
    mark_gemm<T, T>(a, b, 1, nullptr);
    sum_middle(Device{}, a.data, rs.outer, rs.middle, rs.inner, sums);
    return;
  }
  if (!vts_emu::count_gemm_call()) return;
  gemm_one(a, b, c, ldc, 1.0f, 0.0f);
  for (int64_t i = 0; i < a.rows; ++i) {
    float s = 0.0f;
    for (int64_t k = 0; k < a.cols; ++k) s += load(a.data + i * a.row_stride + k * a.col_stride);
    store(sums + i, s);
  }
  mark_gemm<T, T>(a, b, 1, "bgradb");
}
}  // namespace

void gemm_bias(Device, const MatrixRef<float>& a, const MatrixRef<float>& b, const float* bias, float* c,
               int64_t ldc) {
  if (vts_emu::defer_if_capturing([=] { gemm_bias(Device{}, a, b, bias, c, ldc); })) return;
  bias_product(a, b, bias, c, ldc);
}
void gemm_bias(Device, const MatrixRef<bf16>& a, const MatrixRef<bf16>& b, const bf16* bias, bf16* c, int64_t ldc) {
  if (vts_emu::defer_if_capturing([=] { gemm_bias(Device{}, a, b, bias, c, ldc); })) return;
  bias_product(a, b, bias, c, ldc);
}
void gemm_row_sums(Device, const MatrixRef<float>& a, const MatrixRef<float>& b, float* c, int64_t ldc,
                   float* a_row_sums) {
  if (vts_emu::defer_if_capturing([=] { gemm_row_sums(Device{}, a, b, c, ldc, a_row_sums); })) return;
  product_row_sums(a, b, c, ldc, a_row_sums);
}
void gemm_row_sums(Device, const MatrixRef<bf16>& a, const MatrixRef<bf16>& b, bf16* c, int64_t ldc,
                   bf16* a_row_sums) {
  if (vts_emu::defer_if_capturing([=] { gemm_row_sums(Device{}, a, b, c, ldc, a_row_sums); })) return;
  product_row_sums(a, b, c, ldc, a_row_sums);
}

// The emulator computes both epilogue forms directly: it never falls back for want of an algorithm.
int64_t gemm_epilogue_fallbacks() { return 0; }

void gemm_strided_batched(Device, const MatrixRef<float>& a, int64_t stride_a, const MatrixRef<float>& b,
                          int64_t stride_b, float* c, int64_t ldc, int64_t stride_c, int64_t batch, float alpha,
                          float beta) {
  if (vts_emu::defer_if_capturing(
          [=] { gemm_strided_batched(Device{}, a, stride_a, b, stride_b, c, ldc, stride_c, batch, alpha, beta); }))
    return;
  gemm_batched(a, stride_a, b, stride_b, c, ldc, stride_c, batch, alpha, beta);
}
void gemm_strided_batched(Device, const MatrixRef<bf16>& a, int64_t stride_a, const MatrixRef<bf16>& b,
                          int64_t stride_b, bf16* c, int64_t ldc, int64_t stride_c, int64_t batch, float alpha,
                          float beta) {
  if (vts_emu::defer_if_capturing(
          [=] { gemm_strided_batched(Device{}, a, stride_a, b, stride_b, c, ldc, stride_c, batch, alpha, beta); }))
    return;
  gemm_batched(a, stride_a, b, stride_b, c, ldc, stride_c, batch, alpha, beta);
}

}  // namespace vts::cuda
