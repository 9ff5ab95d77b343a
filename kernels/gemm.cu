// GEMM through cuBLASLt (contract in include/vts/backend/cuda/gemm.hpp).
//
// Row-major C = A·B is computed as the column-major product Cᵀ = Bᵀ·Aᵀ: a row-major matrix with
// leading dimension ld is, read column-major, its own transpose with the same ld, so no data moves
// and each MatrixRef only picks cuBLAS's "N" or "T" for its operand. Per distinct problem (types,
// transposes, sizes, leading dimensions, pointer alignment) the matmul descriptor, the layouts and
// the algorithm from cublasLtMatmulAlgoGetHeuristic are built once and cached: the heuristic query
// costs tens of microseconds, more than a small GEMM. A 32 MiB workspace is kept for the library.
// If the heuristic offers nothing (unusual strides), cublasGemmEx (cublasGemmStridedBatchedEx for a
// batch) is the fallback. A strided batch is one call: the batch count and the three per-batch
// offsets are attributes of the layouts.
//
// Two epilogues serve the linear layer: BIAS (the bias added to the accumulator: C written once)
// and BGRADB (the bias gradient summed from cuBLAS's B operand, which is our A, over k). Their
// plans are cached like the others, keyed also by the vector's alignment (the heuristic reads the
// vector pointer for it); the pointer itself changes per call, so it is set on the cached
// descriptor and the call enqueued under the cache's lock. Where cuBLASLt has no algorithm with
// the epilogue, the caller falls back to the separate passes.
#include <cublasLt.h>
#include <cublas_v2.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>

#include "common/check.cuh"
#include "common/types.cuh"
#include "vts/backend/cuda/gemm.hpp"
#include "vts/backend/cuda/memory.hpp"
#include "vts/backend/cuda/profile.hpp"
#include "vts/backend/cuda/reduce.hpp"

namespace vts::cuda {

namespace {

cublasComputeType_t fp32_compute_type() {
  switch (fp32_gemm()) {
    case Fp32Gemm::tf32: return CUBLAS_COMPUTE_32F_FAST_TF32;
    case Fp32Gemm::bf16: return CUBLAS_COMPUTE_32F_FAST_16BF;
    default: return CUBLAS_COMPUTE_32F;
  }
}

constexpr size_t kWorkspaceBytes = size_t(32) << 20;

// One operand as cuBLAS sees it (column-major storage of the matrix before op).
struct Operand {
  cublasOperation_t op;
  int64_t rows, cols, ld;  // stored matrix
};

// The first cuBLAS operand is Bᵀ (N × K), the second Aᵀ (K × M). `m` is a MatrixRef of R × C that
// must appear as its transpose (C × R) in the column-major product.
template <class T>
Operand transposed_operand(const MatrixRef<T>& m, const char* name) {
  if (m.col_stride == 1 || m.cols == 1) {
    // Row-major, leading dimension row_stride: read column-major it is mᵀ already.
    int64_t ld = m.row_stride;
    if (m.rows <= 1) ld = std::max<int64_t>(m.cols, 1);
    VTS_CHECK(ld >= std::max<int64_t>(m.cols, 1), "vts::cuda::gemm: operand ", name, " has row stride ", ld,
              " < its ", m.cols, " columns");
    return {CUBLAS_OP_N, m.cols, m.rows, ld};
  }
  if (m.row_stride == 1 || m.rows == 1) {
    // Column-major, leading dimension col_stride: read column-major it is m, so transpose it.
    int64_t ld = m.col_stride;
    if (m.cols <= 1) ld = std::max<int64_t>(m.rows, 1);
    VTS_CHECK(ld >= std::max<int64_t>(m.rows, 1), "vts::cuda::gemm: operand ", name, " has column stride ", ld,
              " < its ", m.rows, " rows");
    return {CUBLAS_OP_T, m.rows, m.cols, ld};
  }
  throw Error(::vts::detail::concat("vts::cuda::gemm: operand ", name, " has no unit stride (row stride ",
                                    m.row_stride, ", column stride ", m.col_stride, "); make it contiguous first"));
}

struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool has_algo = false;
};

// Types, transposes, M N K, leading dimensions, alignment, then batch count and per-batch strides,
// then the epilogue and its vector's alignment.
using Key = std::tuple<int, int, int, int, int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int, int64_t,
                       int64_t, int64_t, int64_t, int, int>;

enum class Epilogue { none, bias, a_row_sums };
struct EpilogueArg {
  Epilogue kind = Epilogue::none;
  const void* vector = nullptr;  // the bias (read) or the row sums (written)
};

// One strided batch as cuBLAS sees it: `count` products, operand i at data + i·stride elements.
struct Batch {
  int64_t count = 1, stride_a = 0, stride_b = 0, stride_c = 0;
};

// Names the GEMM just queued in a profile (profile.hpp); builds the name only while profiling.
template <class TA, class TC>
void mark_gemm(int64_t M, int64_t N, int64_t K, const Batch& batch, Epilogue epilogue, const char* api) {
  if (!profiling()) return;
  const char* e = epilogue == Epilogue::bias ? "bias" : epilogue == Epilogue::a_row_sums ? "bgradb" : nullptr;
  detail::profile_mark(detail::gemm_profile_name(std::is_same_v<TA, bf16>, std::is_same_v<TC, bf16>, M, N, K,
                                                 batch.count, e, api));
}

void set_batch(cublasLtMatrixLayout_t layout, int64_t count, int64_t stride) {
  const int32_t n = static_cast<int32_t>(count);
  VTS_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &n, sizeof(n)));
  VTS_CUBLAS_CHECK(
      cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
}

class Lt {
 public:
  static Lt& instance() {
    static Lt* lt = new Lt();  // never destroyed: handles outlive static objects that might use them
    return *lt;
  }
  cublasLtHandle_t handle() const { return handle_; }
  cublasHandle_t blas() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!blas_) VTS_CUBLAS_CHECK(cublasCreate(&blas_));
    return blas_;
  }
  void* workspace() const { return workspace_.data(); }
  std::mutex& mutex() { return mutex_; }
  std::map<Key, Plan>& plans() { return plans_; }

 private:
  Lt() : workspace_(kWorkspaceBytes) { VTS_CUBLAS_CHECK(cublasLtCreate(&handle_)); }
  cublasLtHandle_t handle_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  DeviceBuffer workspace_;
  std::mutex mutex_;
  std::map<Key, Plan> plans_;
};

int alignment_class(uintptr_t v) { return (v & 15u) == 0 ? 16 : ((v & 7u) == 0 ? 8 : ((v & 3u) == 0 ? 4 : 2)); }
int alignment_class(const void* p) { return alignment_class(reinterpret_cast<uintptr_t>(p)); }
// The alignment every operand of a strided batch keeps: that of the first, and of the stride.
template <class T>
int alignment_class(const T* p, int64_t count, int64_t stride) {
  const int first = alignment_class(p);
  return count > 1 && stride > 0 ? std::min(first, alignment_class(static_cast<uintptr_t>(stride) * sizeof(T))) : first;
}

__global__ void scale_rows_kernel(float* c, int64_t M, int64_t N, int64_t ldc, float beta) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < M * N; i += int64_t(gridDim.x) * blockDim.x) {
    float& x = c[(i / N) * ldc + i % N];
    x = beta == 0.0f ? 0.0f : beta * x;
  }
}
__global__ void scale_rows_kernel(__nv_bfloat16* c, int64_t M, int64_t N, int64_t ldc, float beta) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < M * N; i += int64_t(gridDim.x) * blockDim.x) {
    __nv_bfloat16& x = c[(i / N) * ldc + i % N];
    x = __float2bfloat16_rn(beta == 0.0f ? 0.0f : beta * __bfloat162float(x));
  }
}

// Returns false, having launched nothing, when an epilogue was asked for and cuBLASLt offers no
// algorithm with it (or the problem is empty in some dimension, which the separate passes handle).
template <class TA, class TC>
bool gemm_impl(const MatrixRef<TA>& a, const MatrixRef<TA>& b, TC* c_, int64_t ldc, float alpha, float beta,
               const Batch& batch = {}, const EpilogueArg& epilogue = {}) {
  VTS_CHECK(a.cols == b.rows, "vts::cuda::gemm: inner dimensions differ (", a.rows, "x", a.cols, " times ", b.rows,
            "x", b.cols, ")");
  const int64_t M = a.rows, N = b.cols, K = a.cols;
  const bool with_epilogue = epilogue.kind != Epilogue::none;
  if (with_epilogue && (M == 0 || N == 0 || K == 0 || batch.count != 1)) return false;
  if (M == 0 || N == 0 || batch.count == 0) return true;
  VTS_CHECK(ldc >= N, "vts::cuda::gemm: ldc ", ldc, " < N ", N);
  VTS_CHECK(batch.count > 0 && batch.count <= INT32_MAX && batch.stride_a >= 0 && batch.stride_b >= 0 &&
                batch.stride_c >= (batch.count > 1 ? (M - 1) * ldc + N : 0),
            "vts::cuda::gemm_strided_batched: batch of ", batch.count, " with strides A ", batch.stride_a, ", B ",
            batch.stride_b, ", C ", batch.stride_c, " (C's must be at least ", (M - 1) * ldc + N,
            " so that the outputs do not overlap)");
  auto* c = detail::dev_ptr(c_);
  const cudaStream_t stream = current_stream();
  if (K == 0) {
    for (int64_t i = 0; i < batch.count; ++i) {
      scale_rows_kernel<<<detail::grid_for(M * N, 256, 4096), 256, 0, stream>>>(c + i * batch.stride_c, M, N, ldc,
                                                                                beta);
      VTS_CUDA_CHECK_LAUNCH("scale_rows_kernel");
    }
    return true;
  }
  constexpr bool kBf16In = std::is_same_v<TA, bf16>;
  constexpr cudaDataType_t in_type = kBf16In ? CUDA_R_16BF : CUDA_R_32F;
  constexpr cudaDataType_t out_type = std::is_same_v<TC, bf16> ? CUDA_R_16BF : CUDA_R_32F;
  const cublasComputeType_t compute = kBf16In ? CUBLAS_COMPUTE_32F : fp32_compute_type();
  const Operand first = transposed_operand(b, "B");   // Bᵀ: N × K after op
  const Operand second = transposed_operand(a, "A");  // Aᵀ: K × M after op

  Lt& lt = Lt::instance();
  const int align_a = alignment_class(a.data, batch.count, batch.stride_a);
  const int align_b = alignment_class(b.data, batch.count, batch.stride_b);
  const int align_c = alignment_class(c_, batch.count, batch.stride_c);
  const Key key{int(in_type), int(out_type), int(compute), int(first.op), int(second.op), M, N, K, first.ld,
                second.ld, ldc, align_a * 1000 + align_b * 10 + align_c / 2,
                batch.count, batch.stride_a, batch.stride_b, batch.stride_c,
                int(epilogue.kind), with_epilogue ? alignment_class(epilogue.vector) : 0};
  Plan plan;
  {
    std::lock_guard<std::mutex> lock(lt.mutex());
    auto it = lt.plans().find(key);
    if (it != lt.plans().end()) {
      plan = it->second;
    } else {
      VTS_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan.op, compute, CUDA_R_32F));
      VTS_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSA, &first.op,
                                                      sizeof(first.op)));
      VTS_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSB, &second.op,
                                                      sizeof(second.op)));
      VTS_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.a, in_type, static_cast<uint64_t>(first.rows),
                                                  static_cast<uint64_t>(first.cols), first.ld));
      VTS_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.b, in_type, static_cast<uint64_t>(second.rows),
                                                  static_cast<uint64_t>(second.cols), second.ld));
      VTS_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.c, out_type, static_cast<uint64_t>(N),
                                                  static_cast<uint64_t>(M), ldc));
      if (batch.count > 1) {  // the first cuBLAS operand is B, the second A
        set_batch(plan.a, batch.count, batch.stride_b);
        set_batch(plan.b, batch.count, batch.stride_a);
        set_batch(plan.c, batch.count, batch.stride_c);
      }
      if (with_epilogue) {
        // In cuBLAS's column-major terms D = Cᵀ is N × M: the bias (length N) runs along D's rows,
        // and our A is cuBLAS's B, whose sums over k (BGRADB) have D's column count, M.
        const cublasLtEpilogue_t e = epilogue.kind == Epilogue::bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_BGRADB;
        VTS_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof(e)));
        // The heuristic infers the vector's alignment from the pointer's value without reading
        // it. The plan serves every vector of the same alignment class, so it is shown an address
        // aligned to exactly that class (16, 8, 4 or 2), not this call's pointer, which may be
        // aligned to more and would let it pick a kernel a later call's vector cannot feed.
        const void* class_address = reinterpret_cast<const void*>(uintptr_t(alignment_class(epilogue.vector)));
        VTS_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &class_address,
                                                        sizeof(class_address)));
      }
      cublasLtMatmulPreference_t pref = nullptr;
      VTS_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
      const size_t ws = kWorkspaceBytes;
      VTS_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                                            sizeof(ws)));
      // The heuristic assumes 256-byte-aligned operands unless told otherwise; views (a head of a
      // packed QKV tensor, a batch member) are often only 4- or 16-byte aligned. cuBLAS's A is our B.
      const uint32_t min_align[4] = {uint32_t(align_b), uint32_t(align_a), uint32_t(align_c), uint32_t(align_c)};
      const cublasLtMatmulPreferenceAttributes_t align_attr[4] = {
          CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
          CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
      for (int i = 0; i < 4; ++i)
        VTS_CUBLAS_CHECK(
            cublasLtMatmulPreferenceSetAttribute(pref, align_attr[i], &min_align[i], sizeof(min_align[i])));
      cublasLtMatmulHeuristicResult_t result{};
      int found = 0;
      const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt.handle(), plan.op, plan.a, plan.b, plan.c, plan.c,
                                                               pref, 1, &result, &found);
      VTS_CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
      if (st == CUBLAS_STATUS_SUCCESS && found > 0) {
        plan.algo = result.algo;
        plan.has_algo = true;
      }
      lt.plans().emplace(key, plan);
    }
    if (with_epilogue) {
      if (!plan.has_algo) return false;
      // The descriptor is shared by every call of this shape: its vector pointer is set and the
      // call enqueued before another thread can set its own.
      VTS_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &epilogue.vector,
                                                      sizeof(epilogue.vector)));
      const cublasStatus_t run = cublasLtMatmul(lt.handle(), plan.op, &alpha, b.data, plan.a, a.data, plan.b, &beta,
                                                c, plan.c, c, plan.c, &plan.algo, lt.workspace(), kWorkspaceBytes,
                                                stream);
      if (run == CUBLAS_STATUS_NOT_SUPPORTED) {  // offered but refused: use the separate passes from now on
        lt.plans()[key].has_algo = false;
        return false;
      }
      if (run != CUBLAS_STATUS_SUCCESS)
        detail::throw_cuda_error("cuBLAS", int(run), detail::cublas_error_string(int(run)),
                                 "cublasLtMatmul (with a bias epilogue)", __FILE__, __LINE__);
      mark_gemm<TA, TC>(M, N, K, batch, epilogue.kind, nullptr);
      return true;
    }
  }
  if (plan.has_algo) {
    VTS_CUBLAS_CHECK(cublasLtMatmul(lt.handle(), plan.op, &alpha, b.data, plan.a, a.data, plan.b, &beta, c, plan.c,
                                    c, plan.c, &plan.algo, lt.workspace(), kWorkspaceBytes, stream));
    mark_gemm<TA, TC>(M, N, K, batch, Epilogue::none, nullptr);
    return true;
  }
  // Fallback: the classic API, which accepts every layout cuBLAS can express.
  cublasHandle_t h = lt.blas();
  VTS_CUBLAS_CHECK(cublasSetStream(h, stream));
  if (batch.count == 1) {
    VTS_CUBLAS_CHECK(cublasGemmEx(h, first.op, second.op, static_cast<int>(N), static_cast<int>(M),
                                  static_cast<int>(K), &alpha, b.data, in_type, static_cast<int>(first.ld), a.data,
                                  in_type, static_cast<int>(second.ld), &beta, c, out_type, static_cast<int>(ldc),
                                  compute, CUBLAS_GEMM_DEFAULT));
    mark_gemm<TA, TC>(M, N, K, batch, Epilogue::none, "cublasGemmEx");
    return true;
  }
  VTS_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      h, first.op, second.op, static_cast<int>(N), static_cast<int>(M), static_cast<int>(K), &alpha, b.data, in_type,
      static_cast<int>(first.ld), batch.stride_b, a.data, in_type, static_cast<int>(second.ld), batch.stride_a, &beta,
      c, out_type, static_cast<int>(ldc), batch.stride_c, static_cast<int>(batch.count), compute,
      CUBLAS_GEMM_DEFAULT));
  mark_gemm<TA, TC>(M, N, K, batch, Epilogue::none, "cublasGemmStridedBatchedEx");
  return true;
}

std::atomic<int64_t> epilogue_fallbacks{0};

template <class T>
void gemm_bias_impl(const MatrixRef<T>& a, const MatrixRef<T>& b, const T* bias, T* c, int64_t ldc) {
  if (gemm_epilogues()) {
    if (gemm_impl(a, b, c, ldc, 1.0f, 0.0f, {}, EpilogueArg{Epilogue::bias, bias})) return;
    ++epilogue_fallbacks;
  }
  const int64_t bias_strides[2] = {0, 1}, c_strides[2] = {ldc, 1};
  copy_strided(Device{}, Shape{a.rows, b.cols}, bias, bias_strides, c, c_strides);
  gemm_impl(a, b, c, ldc, 1.0f, 1.0f);
}

template <class T>
void gemm_row_sums_impl(const MatrixRef<T>& a, const MatrixRef<T>& b, T* c, int64_t ldc, T* a_row_sums) {
  const RowSumShape rs = row_sum_shape(a, "vts::cuda::gemm_row_sums");
  if (gemm_epilogues()) {
    if (gemm_impl(a, b, c, ldc, 1.0f, 0.0f, {}, EpilogueArg{Epilogue::a_row_sums, a_row_sums})) return;
    ++epilogue_fallbacks;
  }
  gemm_impl(a, b, c, ldc, 1.0f, 0.0f);
  sum_middle(Device{}, a.data, rs.outer, rs.middle, rs.inner, a_row_sums);
}

}  // namespace

void gemm(Device, const MatrixRef<float>& a, const MatrixRef<float>& b, float* c, int64_t ldc, float alpha,
          float beta) {
  gemm_impl(a, b, c, ldc, alpha, beta);
}
void gemm(Device, const MatrixRef<bf16>& a, const MatrixRef<bf16>& b, bf16* c, int64_t ldc, float alpha, float beta) {
  gemm_impl(a, b, c, ldc, alpha, beta);
}
void gemm(Device, const MatrixRef<bf16>& a, const MatrixRef<bf16>& b, float* c, int64_t ldc, float alpha,
          float beta) {
  gemm_impl(a, b, c, ldc, alpha, beta);
}

int64_t gemm_epilogue_fallbacks() { return epilogue_fallbacks.load(); }

void gemm_bias(Device, const MatrixRef<float>& a, const MatrixRef<float>& b, const float* bias, float* c,
               int64_t ldc) {
  gemm_bias_impl(a, b, bias, c, ldc);
}
void gemm_bias(Device, const MatrixRef<bf16>& a, const MatrixRef<bf16>& b, const bf16* bias, bf16* c, int64_t ldc) {
  gemm_bias_impl(a, b, bias, c, ldc);
}
void gemm_row_sums(Device, const MatrixRef<float>& a, const MatrixRef<float>& b, float* c, int64_t ldc,
                   float* a_row_sums) {
  gemm_row_sums_impl(a, b, c, ldc, a_row_sums);
}
void gemm_row_sums(Device, const MatrixRef<bf16>& a, const MatrixRef<bf16>& b, bf16* c, int64_t ldc,
                   bf16* a_row_sums) {
  gemm_row_sums_impl(a, b, c, ldc, a_row_sums);
}

void gemm_strided_batched(Device, const MatrixRef<float>& a, int64_t stride_a, const MatrixRef<float>& b,
                          int64_t stride_b, float* c, int64_t ldc, int64_t stride_c, int64_t batch, float alpha,
                          float beta) {
  gemm_impl(a, b, c, ldc, alpha, beta, Batch{batch, stride_a, stride_b, stride_c});
}
void gemm_strided_batched(Device, const MatrixRef<bf16>& a, int64_t stride_a, const MatrixRef<bf16>& b,
                          int64_t stride_b, bf16* c, int64_t ldc, int64_t stride_c, int64_t batch, float alpha,
                          float beta) {
  gemm_impl(a, b, c, ldc, alpha, beta, Batch{batch, stride_a, stride_b, stride_c});
}

}  // namespace vts::cuda
