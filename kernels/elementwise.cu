// Elementwise maps (unary, binary and ternary with broadcasting), accumulate and dtype conversion.
//
// Two kernels per map: a flat one when every operand is contiguous (16-byte vector loads and
// stores, one Pack per thread per iteration), and a strided one for views and broadcasting (up to
// 8 merged dimensions, index arithmetic per element). Both are memory-bound: the bound is bytes
// moved over bandwidth, ~ (inputs + 1) · n · sizeof(T) / 3 TB/s on an H100.
#include "common/check.cuh"
#include "common/types.cuh"
#include "vts/backend/cuda/elementwise.hpp"

namespace vts::cuda {

namespace {

using detail::DevT;
using detail::from_f;
using detail::Pack;
using detail::to_f;

// bf16 computes in fp32, so a functor carrying a bf16 scalar is rebuilt with a float one.
template <class F>
struct ComputeFunctor {
  using type = F;
  static F make(const F& f) { return f; }
};
#define VTS_FLOAT_SCALAR_FUNCTOR(NAME, ...)                              \
  template <>                                                            \
  struct ComputeFunctor<fn::NAME<bf16>> {                                \
    using type = fn::NAME<float>;                                        \
    static type make(const fn::NAME<bf16>& f) { return type{__VA_ARGS__}; } \
  };
VTS_FLOAT_SCALAR_FUNCTOR(AddScalar, static_cast<float>(f.s))
VTS_FLOAT_SCALAR_FUNCTOR(MulScalar, static_cast<float>(f.s))
VTS_FLOAT_SCALAR_FUNCTOR(RSubScalar, static_cast<float>(f.s))
VTS_FLOAT_SCALAR_FUNCTOR(RDivScalar, static_cast<float>(f.s))
VTS_FLOAT_SCALAR_FUNCTOR(PowScalar, static_cast<float>(f.p))
VTS_FLOAT_SCALAR_FUNCTOR(Clamp, static_cast<float>(f.lo), static_cast<float>(f.hi))
VTS_FLOAT_SCALAR_FUNCTOR(MaximumScalar, static_cast<float>(f.s))
VTS_FLOAT_SCALAR_FUNCTOR(GreaterScalar, static_cast<float>(f.s))
VTS_FLOAT_SCALAR_FUNCTOR(Outside, static_cast<float>(f.lo), static_cast<float>(f.hi))
VTS_FLOAT_SCALAR_FUNCTOR(Ternarize, static_cast<float>(f.m))
VTS_FLOAT_SCALAR_FUNCTOR(PowGrad, static_cast<float>(f.p))
VTS_FLOAT_SCALAR_FUNCTOR(BceGrad, static_cast<float>(f.scale))
VTS_FLOAT_SCALAR_FUNCTOR(CsqTerm, static_cast<float>(f.lambda))
VTS_FLOAT_SCALAR_FUNCTOR(CsqGrad, static_cast<float>(f.lambda), static_cast<float>(f.scale))
#undef VTS_FLOAT_SCALAR_FUNCTOR
// The chain rule around a derivative that carries bf16 scalars.
template <class Df>
struct ComputeFunctor<fn::ChainGrad<Df>> {
  using type = fn::ChainGrad<typename ComputeFunctor<Df>::type>;
  static type make(const fn::ChainGrad<Df>& f) { return type{ComputeFunctor<Df>::make(f.df)}; }
};
template <>
struct ComputeFunctor<fn::ClampGrad<bf16>> {
  using type = fn::ClampGrad<float>;
  static type make(const fn::ClampGrad<bf16>& f) { return type{static_cast<float>(f.lo), static_cast<float>(f.hi)}; }
};
template <>
struct ComputeFunctor<fn::ClampMinGrad<bf16>> {
  using type = fn::ClampMinGrad<float>;
  static type make(const fn::ClampMinGrad<bf16>& f) { return type{static_cast<float>(f.s)}; }
};

constexpr int kMaxDims = 8;
constexpr int kThreads = 256;

template <int N>
struct Plan {
  int ndim;
  int64_t sizes[kMaxDims];
  int64_t strides[kMaxDims][N];  // per dimension, per operand (operand 0 is the output)
};

// Drop size-1 dimensions and merge neighbours contiguous for every operand (as cpu::make_plan).
template <int N>
Plan<N> make_plan(const Shape& shape, const int64_t* const (&st)[N]) {
  Plan<N> p{};
  p.ndim = 0;
  for (int d = 0; d < shape.ndim(); ++d) {
    if (shape[d] == 1) continue;
    if (p.ndim > 0) {
      bool mergeable = true;
      for (int k = 0; k < N; ++k)
        if (p.strides[p.ndim - 1][k] != st[k][d] * shape[d]) mergeable = false;
      if (mergeable) {
        p.sizes[p.ndim - 1] *= shape[d];
        for (int k = 0; k < N; ++k) p.strides[p.ndim - 1][k] = st[k][d];
        continue;
      }
    }
    VTS_CHECK(p.ndim < kMaxDims, "vts::cuda elementwise: more than ", kMaxDims,
              " dimensions remain after merging, shape ", shape.str());
    p.sizes[p.ndim] = shape[d];
    for (int k = 0; k < N; ++k) p.strides[p.ndim][k] = st[k][d];
    ++p.ndim;
  }
  return p;
}

template <int N>
bool is_flat(const Plan<N>& p) {
  if (p.ndim == 0) return true;
  if (p.ndim != 1) return false;
  for (int k = 0; k < N; ++k)
    if (p.strides[0][k] != 1) return false;
  return true;
}

template <int N>
__device__ __forceinline__ void offsets(const Plan<N>& p, int64_t i, int64_t (&off)[N]) {
#pragma unroll
  for (int k = 0; k < N; ++k) off[k] = 0;
#pragma unroll
  for (int d = kMaxDims - 1; d >= 0; --d) {
    if (d < p.ndim) {
      const int64_t idx = i % p.sizes[d];
      i /= p.sizes[d];
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += idx * p.strides[d][k];
    }
  }
}

// ---- unary ----------------------------------------------------------------------------------

template <class T, class F>
__global__ void unary_flat_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t n, F f, bool vec) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  constexpr int V = Pack<T>::N;
  int64_t done = 0;
  if (vec) {
    const int64_t packs = n / V;
    for (int64_t p = tid; p < packs; p += stride) {
      Pack<T> v = detail::load_pack_ro(x + p * V);
#pragma unroll
      for (int j = 0; j < V; ++j) v.v[j] = from_f<T>(f(to_f(v.v[j])));
      detail::store_pack(out + p * V, v);
    }
    done = packs * V;
  }
  for (int64_t i = done + tid; i < n; i += stride) out[i] = from_f<T>(f(to_f(x[i])));
}

template <class T, class F>
__global__ void unary_strided_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t n, Plan<2> p, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[2];
    offsets(p, i, off);
    out[off[0]] = from_f<T>(f(to_f(x[off[1]])));
  }
}

unsigned grid_cap() { return static_cast<unsigned>(device_info().sm_count) * 16u; }

}  // namespace

namespace detail {

template <class T, class F>
void unary_map_impl(const Shape& shape, const T* x, const int64_t* x_strides, T* out, const F& f) {
  const int64_t n = shape.numel();
  if (n == 0) return;
  using CF = ComputeFunctor<F>;
  const auto g = CF::make(f);
  using D = DevT<T>;
  const auto out_strides = contiguous_strides(shape);
  const int64_t* const st[2] = {out_strides.data(), x_strides};
  const Plan<2> p = make_plan<2>(shape, st);
  const cudaStream_t s = current_stream();
  if (is_flat(p)) {
    const bool vec = aligned16(x) && aligned16(out);
    const unsigned grid = grid_for(vec ? n / Pack<D>::N + 1 : n, kThreads, grid_cap());
    unary_flat_kernel<D, typename CF::type><<<grid, kThreads, 0, s>>>(dev_ptr(x), dev_ptr(out), n, g, vec);
    VTS_CUDA_CHECK_LAUNCH_OF("unary_flat_kernel", type_label<F>());
  } else {
    unary_strided_kernel<D, typename CF::type>
        <<<grid_for(n, kThreads, grid_cap()), kThreads, 0, s>>>(dev_ptr(x), dev_ptr(out), n, p, g);
    VTS_CUDA_CHECK_LAUNCH_OF("unary_strided_kernel", type_label<F>());
  }
}

}  // namespace detail

// ---- binary ---------------------------------------------------------------------------------

namespace {

template <class T, class F>
__global__ void binary_flat_kernel(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ out, int64_t n,
                                   F f, bool vec) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  constexpr int V = Pack<T>::N;
  int64_t done = 0;
  if (vec) {
    const int64_t packs = n / V;
    for (int64_t p = tid; p < packs; p += stride) {
      const Pack<T> va = detail::load_pack_ro(a + p * V), vb = detail::load_pack_ro(b + p * V);
      Pack<T> r;
#pragma unroll
      for (int j = 0; j < V; ++j) r.v[j] = from_f<T>(f(to_f(va.v[j]), to_f(vb.v[j])));
      detail::store_pack(out + p * V, r);
    }
    done = packs * V;
  }
  for (int64_t i = done + tid; i < n; i += stride) out[i] = from_f<T>(f(to_f(a[i]), to_f(b[i])));
}

template <class T, class F>
__global__ void binary_strided_kernel(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ out,
                                      int64_t n, Plan<3> p, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    offsets(p, i, off);
    out[off[0]] = from_f<T>(f(to_f(a[off[1]]), to_f(b[off[2]])));
  }
}

}  // namespace

namespace detail {

template <class T, class F>
void binary_map_impl(const Shape& shape, const T* a, const int64_t* a_strides, const T* b, const int64_t* b_strides,
                     T* out, const F& f) {
  const int64_t n = shape.numel();
  if (n == 0) return;
  using CF = ComputeFunctor<F>;
  const auto g = CF::make(f);
  using D = DevT<T>;
  const auto out_strides = contiguous_strides(shape);
  const int64_t* const st[3] = {out_strides.data(), a_strides, b_strides};
  const Plan<3> p = make_plan<3>(shape, st);
  const cudaStream_t s = current_stream();
  if (is_flat(p)) {
    const bool vec = aligned16(a) && aligned16(b) && aligned16(out);
    const unsigned grid = grid_for(vec ? n / Pack<D>::N + 1 : n, kThreads, grid_cap());
    binary_flat_kernel<D, typename CF::type><<<grid, kThreads, 0, s>>>(dev_ptr(a), dev_ptr(b), dev_ptr(out), n, g,
                                                                       vec);
    VTS_CUDA_CHECK_LAUNCH_OF("binary_flat_kernel", type_label<F>());
  } else {
    binary_strided_kernel<D, typename CF::type>
        <<<grid_for(n, kThreads, grid_cap()), kThreads, 0, s>>>(dev_ptr(a), dev_ptr(b), dev_ptr(out), n, p, g);
    VTS_CUDA_CHECK_LAUNCH_OF("binary_strided_kernel", type_label<F>());
  }
}

}  // namespace detail

// ---- ternary --------------------------------------------------------------------------------
// Backward formulas over (input, other input, gradient): usually all contiguous, so the flat kernel
// is scalar (no 16-byte packs: three inputs and one output per element, the loads coalesce anyway).

namespace {

template <class T, class F>
__global__ void ternary_flat_kernel(const T* __restrict__ a, const T* __restrict__ b, const T* __restrict__ c,
                                    T* __restrict__ out, int64_t n, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_f<T>(f(to_f(a[i]), to_f(b[i]), to_f(c[i])));
}

template <class T, class F>
__global__ void ternary_strided_kernel(const T* __restrict__ a, const T* __restrict__ b, const T* __restrict__ c,
                                       T* __restrict__ out, int64_t n, Plan<4> p, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[4];
    offsets(p, i, off);
    out[off[0]] = from_f<T>(f(to_f(a[off[1]]), to_f(b[off[2]]), to_f(c[off[3]])));
  }
}

}  // namespace

namespace detail {

template <class T, class F>
void ternary_map_impl(const Shape& shape, const T* a, const int64_t* a_strides, const T* b, const int64_t* b_strides,
                      const T* c, const int64_t* c_strides, T* out, const F& f) {
  const int64_t n = shape.numel();
  if (n == 0) return;
  using CF = ComputeFunctor<F>;
  const auto g = CF::make(f);
  using D = DevT<T>;
  const auto out_strides = contiguous_strides(shape);
  const int64_t* const st[4] = {out_strides.data(), a_strides, b_strides, c_strides};
  const Plan<4> p = make_plan<4>(shape, st);
  const cudaStream_t s = current_stream();
  const unsigned grid = grid_for(n, kThreads, grid_cap());
  if (is_flat(p)) {
    ternary_flat_kernel<D, typename CF::type>
        <<<grid, kThreads, 0, s>>>(dev_ptr(a), dev_ptr(b), dev_ptr(c), dev_ptr(out), n, g);
    VTS_CUDA_CHECK_LAUNCH_OF("ternary_flat_kernel", type_label<F>());
  } else {
    ternary_strided_kernel<D, typename CF::type>
        <<<grid, kThreads, 0, s>>>(dev_ptr(a), dev_ptr(b), dev_ptr(c), dev_ptr(out), n, p, g);
    VTS_CUDA_CHECK_LAUNCH_OF("ternary_strided_kernel", type_label<F>());
  }
}

// ---- the closed instantiation set (see elementwise.hpp) --------------------------------------
#define VTS_UNARY(T, F) template void unary_map_impl<T, F>(const Shape&, const T*, const int64_t*, T*, const F&);
#define VTS_UNARY_ALL(T)                                                                                     \
  VTS_UNARY(T, fn::Neg) VTS_UNARY(T, fn::Exp) VTS_UNARY(T, fn::Log) VTS_UNARY(T, fn::Sqrt)                   \
  VTS_UNARY(T, fn::Abs) VTS_UNARY(T, fn::Sign) VTS_UNARY(T, fn::Tanh) VTS_UNARY(T, fn::Sigmoid)              \
  VTS_UNARY(T, fn::Softplus) VTS_UNARY(T, fn::Relu) VTS_UNARY(T, fn::Softsign) VTS_UNARY(T, fn::Gelu)        \
  VTS_UNARY(T, fn::GeluGrad) VTS_UNARY(T, fn::AddScalar<T>) VTS_UNARY(T, fn::MulScalar<T>)                   \
  VTS_UNARY(T, fn::RSubScalar<T>) VTS_UNARY(T, fn::RDivScalar<T>) VTS_UNARY(T, fn::PowScalar<T>)             \
  VTS_UNARY(T, fn::Clamp<T>) VTS_UNARY(T, fn::MaximumScalar<T>) VTS_UNARY(T, fn::GreaterScalar<T>)           \
  VTS_UNARY(T, fn::Outside<T>) VTS_UNARY(T, fn::Ternarize<T>)
#define VTS_BINARY(T, F)                                                                                     \
  template void binary_map_impl<T, F>(const Shape&, const T*, const int64_t*, const T*, const int64_t*, T*,  \
                                      const F&);
#define VTS_BINARY_ALL(T)                                                                                    \
  VTS_BINARY(T, fn::Add) VTS_BINARY(T, fn::Sub) VTS_BINARY(T, fn::Mul) VTS_BINARY(T, fn::Div)                \
  VTS_BINARY(T, fn::Maximum) VTS_BINARY(T, fn::Minimum) VTS_BINARY(T, fn::NegMul) VTS_BINARY(T, fn::BceLoss) \
  VTS_BINARY(T, fn::PowGrad<T>) VTS_BINARY(T, fn::BceGrad<T>) VTS_BINARY(T, fn::CsqTerm<T>)                 \
  VTS_BINARY(T, fn::CsqGrad<T>)                                                                              \
  VTS_BINARY(T, fn::ChainGrad<fn::ExpGrad>) VTS_BINARY(T, fn::ChainGrad<fn::LogGrad>)                        \
  VTS_BINARY(T, fn::ChainGrad<fn::SqrtGrad>) VTS_BINARY(T, fn::ChainGrad<fn::Sign>)                          \
  VTS_BINARY(T, fn::ChainGrad<fn::TanhGrad>) VTS_BINARY(T, fn::ChainGrad<fn::SigmoidGrad>)                   \
  VTS_BINARY(T, fn::ChainGrad<fn::Sigmoid>) VTS_BINARY(T, fn::ChainGrad<fn::ReluGrad>)                       \
  VTS_BINARY(T, fn::ChainGrad<fn::SoftsignGrad>) VTS_BINARY(T, fn::ChainGrad<fn::ClampGrad<T>>)              \
  VTS_BINARY(T, fn::ChainGrad<fn::ClampMinGrad<T>>)
#define VTS_TERNARY(T, F)                                                                                    \
  template void ternary_map_impl<T, F>(const Shape&, const T*, const int64_t*, const T*, const int64_t*,     \
                                       const T*, const int64_t*, T*, const F&);
#define VTS_TERNARY_ALL(T) VTS_TERNARY(T, fn::MaximumGrad) VTS_TERNARY(T, fn::RDivGrad)

VTS_UNARY_ALL(float)
VTS_UNARY_ALL(bf16)
VTS_BINARY_ALL(float)
VTS_BINARY_ALL(bf16)
VTS_TERNARY_ALL(float)
VTS_TERNARY_ALL(bf16)
#undef VTS_UNARY
#undef VTS_UNARY_ALL
#undef VTS_BINARY
#undef VTS_BINARY_ALL
#undef VTS_TERNARY
#undef VTS_TERNARY_ALL

}  // namespace detail

// ---- accumulate and convert -----------------------------------------------------------------

namespace {

template <class T>
__global__ void accumulate_kernel(T* __restrict__ acc, const T* __restrict__ x, int64_t n, bool vec) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  constexpr int V = Pack<T>::N;
  int64_t done = 0;
  if (vec) {
    const int64_t packs = n / V;
    for (int64_t p = tid; p < packs; p += stride) {
      Pack<T> va = detail::load_pack(acc + p * V);
      const Pack<T> vx = detail::load_pack_ro(x + p * V);
#pragma unroll
      for (int j = 0; j < V; ++j) va.v[j] = from_f<T>(to_f(va.v[j]) + to_f(vx.v[j]));
      detail::store_pack(acc + p * V, va);
    }
    done = packs * V;
  }
  for (int64_t i = done + tid; i < n; i += stride) acc[i] = from_f<T>(to_f(acc[i]) + to_f(x[i]));
}

template <class S, class D>
__global__ void convert_kernel(const S* __restrict__ src, D* __restrict__ dst, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = from_f<D>(to_f(src[i]));
}

template <class T>
void accumulate_impl(T* acc, const T* x, int64_t n) {
  if (n <= 0) return;
  using D = DevT<T>;
  const bool vec = detail::aligned16(acc) && detail::aligned16(x);
  accumulate_kernel<D><<<detail::grid_for(n / Pack<D>::N + 1, kThreads, grid_cap()), kThreads, 0, current_stream()>>>(
      detail::dev_ptr(acc), detail::dev_ptr(x), n, vec);
  VTS_CUDA_CHECK_LAUNCH("accumulate_kernel");
}

template <class S, class T>
void convert_impl(const S* src, T* dst, int64_t n) {
  if (n <= 0) return;
  convert_kernel<DevT<S>, DevT<T>><<<detail::grid_for(n, kThreads, grid_cap()), kThreads, 0, current_stream()>>>(
      detail::dev_ptr(src), detail::dev_ptr(dst), n);
  VTS_CUDA_CHECK_LAUNCH("convert_kernel");
}

}  // namespace

void accumulate(Device, float* acc, const float* x, int64_t n) { accumulate_impl(acc, x, n); }
void accumulate(Device, bf16* acc, const bf16* x, int64_t n) { accumulate_impl(acc, x, n); }
void convert(Device, const float* src, bf16* dst, int64_t n) { convert_impl(src, dst, n); }
void convert(Device, const bf16* src, float* dst, int64_t n) { convert_impl(src, dst, n); }

}  // namespace vts::cuda
