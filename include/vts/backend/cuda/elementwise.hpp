#pragma once
// Elementwise maps over strided, broadcast inputs into a contiguous output, with the functors of
// core/functors.hpp — the same signatures as vts::cpu::unary_map / binary_map / ternary_map /
// accumulate.
//
// The kernels are compiled once, in kernels/elementwise.cu, for a closed set of functors (the
// named ones in core/functors.hpp) and element types (float; bf16 stored, computed in fp32).
// A functor outside the set — a lambda in particular, which cannot run on the GPU — is a compile
// error here, naming the fix, instead of a link error.
#include <cstdint>
#include <type_traits>

#include "vts/backend/cuda/runtime.hpp"
#include "vts/core/dtype.hpp"
#include "vts/core/functors.hpp"
#include "vts/core/shape.hpp"

namespace vts::cuda {

template <class F>
inline constexpr bool is_cuda_stateless_unary_v =
    std::is_same_v<F, fn::Neg> || std::is_same_v<F, fn::Exp> || std::is_same_v<F, fn::Log> ||
    std::is_same_v<F, fn::Sqrt> || std::is_same_v<F, fn::Abs> || std::is_same_v<F, fn::Sign> ||
    std::is_same_v<F, fn::Tanh> || std::is_same_v<F, fn::Sigmoid> || std::is_same_v<F, fn::Softplus> ||
    std::is_same_v<F, fn::Relu> || std::is_same_v<F, fn::Softsign> || std::is_same_v<F, fn::Gelu> ||
    std::is_same_v<F, fn::GeluGrad>;

template <class F, class T>
inline constexpr bool is_cuda_scalar_unary_v =
    std::is_same_v<F, fn::AddScalar<T>> || std::is_same_v<F, fn::MulScalar<T>> ||
    std::is_same_v<F, fn::RSubScalar<T>> || std::is_same_v<F, fn::RDivScalar<T>> ||
    std::is_same_v<F, fn::PowScalar<T>> || std::is_same_v<F, fn::Clamp<T>> ||
    std::is_same_v<F, fn::MaximumScalar<T>> || std::is_same_v<F, fn::GreaterScalar<T>> ||
    std::is_same_v<F, fn::Outside<T>> || std::is_same_v<F, fn::Ternarize<T>>;

// g · f'(v) for the derivatives the unary ops of ops/elementwise.hpp use.
template <class F, class T>
inline constexpr bool is_cuda_chain_grad_v =
    std::is_same_v<F, fn::ChainGrad<fn::ExpGrad>> || std::is_same_v<F, fn::ChainGrad<fn::LogGrad>> ||
    std::is_same_v<F, fn::ChainGrad<fn::SqrtGrad>> || std::is_same_v<F, fn::ChainGrad<fn::Sign>> ||
    std::is_same_v<F, fn::ChainGrad<fn::TanhGrad>> || std::is_same_v<F, fn::ChainGrad<fn::SigmoidGrad>> ||
    std::is_same_v<F, fn::ChainGrad<fn::Sigmoid>> || std::is_same_v<F, fn::ChainGrad<fn::ReluGrad>> ||
    std::is_same_v<F, fn::ChainGrad<fn::SoftsignGrad>> || std::is_same_v<F, fn::ChainGrad<fn::ClampGrad<T>>> ||
    std::is_same_v<F, fn::ChainGrad<fn::ClampMinGrad<T>>>;

template <class F, class T>
inline constexpr bool is_cuda_binary_v =
    std::is_same_v<F, fn::Add> || std::is_same_v<F, fn::Sub> || std::is_same_v<F, fn::Mul> ||
    std::is_same_v<F, fn::Div> || std::is_same_v<F, fn::Maximum> || std::is_same_v<F, fn::Minimum> ||
    std::is_same_v<F, fn::NegMul> || std::is_same_v<F, fn::BceLoss> || std::is_same_v<F, fn::PowGrad<T>> ||
    std::is_same_v<F, fn::BceGrad<T>> || std::is_same_v<F, fn::CsqTerm<T>> || std::is_same_v<F, fn::CsqGrad<T>> ||
    is_cuda_chain_grad_v<F, T>;

template <class F>
inline constexpr bool is_cuda_ternary_v = std::is_same_v<F, fn::MaximumGrad> || std::is_same_v<F, fn::RDivGrad>;

template <class T>
inline constexpr bool is_cuda_map_type_v = std::is_same_v<T, float> || std::is_same_v<T, bf16>;

namespace detail {
template <class T, class F>
void unary_map_impl(const Shape& shape, const T* x, const int64_t* x_strides, T* out, const F& f);
template <class T, class F>
void binary_map_impl(const Shape& shape, const T* a, const int64_t* a_strides, const T* b, const int64_t* b_strides,
                     T* out, const F& f);
template <class T, class F>
void ternary_map_impl(const Shape& shape, const T* a, const int64_t* a_strides, const T* b, const int64_t* b_strides,
                      const T* c, const int64_t* c_strides, T* out, const F& f);
}  // namespace detail

// out = f(x) elementwise; out is contiguous with x's shape, x has any strides (0 = broadcast).
template <class T, class F>
void unary_map(Device, const Shape& shape, const T* x, const int64_t* x_strides, T* out, F f) {
  static_assert(is_cuda_map_type_v<T>, "vts::cuda::unary_map: element type must be float or bf16");
  static_assert(is_cuda_stateless_unary_v<F> || is_cuda_scalar_unary_v<F, T>,
                "vts::cuda::unary_map: this functor has no CUDA instantiation. Use a named functor of "
                "core/functors.hpp (a lambda cannot run on the GPU) or add it to kernels/elementwise.cu");
  detail::unary_map_impl(shape, x, x_strides, out, f);
}

// out = f(a, b) with a and b given broadcast strides (0 on broadcast dimensions).
template <class T, class F>
void binary_map(Device, const Shape& shape, const T* a, const int64_t* a_strides, const T* b,
                const int64_t* b_strides, T* out, F f) {
  static_assert(is_cuda_map_type_v<T>, "vts::cuda::binary_map: element type must be float or bf16");
  static_assert(is_cuda_binary_v<F, T>,
                "vts::cuda::binary_map: this functor has no CUDA instantiation. Use a named functor of "
                "core/functors.hpp (a lambda cannot run on the GPU) or add it to kernels/elementwise.cu");
  detail::binary_map_impl(shape, a, a_strides, b, b_strides, out, f);
}

// out = f(a, b, c), three broadcast inputs (backward formulas such as maximum's) — the signature of
// vts::cpu::ternary_map.
template <class T, class F>
void ternary_map(Device, const Shape& shape, const T* a, const int64_t* a_strides, const T* b,
                 const int64_t* b_strides, const T* c, const int64_t* c_strides, T* out, F f) {
  static_assert(is_cuda_map_type_v<T>, "vts::cuda::ternary_map: element type must be float or bf16");
  static_assert(is_cuda_ternary_v<F>,
                "vts::cuda::ternary_map: this functor has no CUDA instantiation. Use a named functor of "
                "core/functors.hpp (a lambda cannot run on the GPU) or add it to kernels/elementwise.cu");
  detail::ternary_map_impl(shape, a, a_strides, b, b_strides, c, c_strides, out, f);
}

// acc[i] += x[i] over contiguous buffers.
void accumulate(Device, float* acc, const float* x, int64_t n);
void accumulate(Device, bf16* acc, const bf16* x, int64_t n);

// dst[i] = float(src[i]) and back: the casts between fp32 master copies and bf16 compute copies.
void convert(Device, const float* src, bf16* dst, int64_t n);
void convert(Device, const bf16* src, float* dst, int64_t n);

}  // namespace vts::cuda
