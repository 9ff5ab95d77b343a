#pragma once
// Elementwise ops. Binary ops broadcast NumPy-style; their backward sums the gradient back to each
// input's shape. Unary backward formulas reuse the saved output where that is cheaper than the
// input (exp, tanh, sigmoid, sqrt).
//   Non-smooth points follow PyTorch: abs'(0) = 0, relu'(0) = 0, clamp passes the gradient on the
//   closed interval [lo, hi], sign has zero gradient, sign_ste passes it straight through.
// Backward formulas are named functors (core/functors.hpp), never lambdas: the same map then runs
// the CPU loop or a CUDA kernel (which is compiled only for named functors).
#include <vector>

#include "vts/backend/cpu/activation.hpp"
#include "vts/backend/cpu/elementwise.hpp"
#include "vts/core/functors.hpp"
#include "vts/core/tensor.hpp"
#include "vts/ops/reduce.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/activation.hpp"
#include "vts/backend/cuda/elementwise.hpp"
#endif

namespace vts {

namespace detail {

// Strides of `t` read as if broadcast to `shape` (0 along broadcast and missing leading axes).
template <class T, class D>
Strides broadcast_strides(const Tensor<T, D>& t, const Shape& shape) {
  Strides st(static_cast<size_t>(shape.ndim()), 0);
  const int lead = shape.ndim() - t.ndim();
  for (int i = 0; i < t.ndim(); ++i)
    st[static_cast<size_t>(i + lead)] = t.shape()[i] == 1 ? 0 : t.strides()[static_cast<size_t>(i)];
  return st;
}

}  // namespace detail

// ---- graph-free building blocks (also used inside backward closures) --------------------------
template <class T, class D, class F>
Tensor<T, D> map(const Tensor<T, D>& x, F f) {
  Tensor<T, D> out = Tensor<T, D>::empty(x.shape());
  unary_map(D{}, x.shape(), x.data(), x.strides().data(), out.data(), f);
  return out;
}

// `op` names the calling op in a broadcasting error.
template <class T, class D, class F>
Tensor<T, D> map(const Tensor<T, D>& a, const Tensor<T, D>& b, F f, const char* op = nullptr) {
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor<T, D> out = Tensor<T, D>::empty(shape);
  const Strides sa = detail::broadcast_strides(a, shape), sb = detail::broadcast_strides(b, shape);
  binary_map(D{}, shape, a.data(), sa.data(), b.data(), sb.data(), out.data(), f);
  return out;
}

template <class T, class D, class F>
Tensor<T, D> map(const Tensor<T, D>& a, const Tensor<T, D>& b, const Tensor<T, D>& c, F f) {
  const Shape shape = broadcast_shapes(broadcast_shapes(a.shape(), b.shape()), c.shape());
  Tensor<T, D> out = Tensor<T, D>::empty(shape);
  const Strides sa = detail::broadcast_strides(a, shape), sb = detail::broadcast_strides(b, shape),
                sc = detail::broadcast_strides(c, shape);
  ternary_map(D{}, shape, a.data(), sa.data(), b.data(), sb.data(), c.data(), sc.data(), out.data(), f);
  return out;
}

// ---- binary, broadcasting -------------------------------------------------------------------
template <class T, class D>
Tensor<T, D> add(const Tensor<T, D>& a, const Tensor<T, D>& b) {
  return record(map(a, b, fn::Add{}, "add"), "add", {&a, &b}, [sa = a.shape(), sb = b.shape()](const Tensor<T, D>& g) {
    return std::vector<Tensor<T, D>>{sum_to(g, sa), sum_to(g, sb)};
  });
}

template <class T, class D>
Tensor<T, D> sub(const Tensor<T, D>& a, const Tensor<T, D>& b) {
  return record(map(a, b, fn::Sub{}, "sub"), "sub", {&a, &b}, [sa = a.shape(), sb = b.shape()](const Tensor<T, D>& g) {
    return std::vector<Tensor<T, D>>{sum_to(g, sa), sum_to(map(g, fn::Neg{}), sb)};
  });
}

template <class T, class D>
Tensor<T, D> mul(const Tensor<T, D>& a, const Tensor<T, D>& b) {
  const bool ga = needs_grad(a), gb = needs_grad(b);
  return record(map(a, b, fn::Mul{}, "mul"), "mul", {&a, &b},
                [ad = gb ? Saved(a) : Saved<T, D>(), bd = ga ? Saved(b) : Saved<T, D>(), sa = a.shape(),
                 sb = b.shape()](const Tensor<T, D>& g) {
                  return std::vector<Tensor<T, D>>{bd.defined() ? sum_to(map(g, bd.get(), fn::Mul{}), sa) : Tensor<T, D>(),
                                                   ad.defined() ? sum_to(map(g, ad.get(), fn::Mul{}), sb) : Tensor<T, D>()};
                });
}

template <class T, class D>
Tensor<T, D> div(const Tensor<T, D>& a, const Tensor<T, D>& b) {
  Tensor<T, D> out = map(a, b, fn::Div{}, "div");
  return record(out, "div", {&a, &b},
                [bd = Saved(b), yd = Saved(out), sa = a.shape(), sb = b.shape(), need_b = needs_grad(b)](
                    const Tensor<T, D>& g) {
                  Tensor<T, D> g_over_b = map(g, bd.get(), fn::Div{});
                  Tensor<T, D> db;
                  if (need_b) db = sum_to(map(g_over_b, yd.get(), fn::NegMul{}), sb);
                  return std::vector<Tensor<T, D>>{sum_to(g_over_b, sa), db};
                });
}

// Elementwise maximum; at ties each input receives half the gradient (PyTorch's rule).
template <class T, class D>
Tensor<T, D> maximum(const Tensor<T, D>& a, const Tensor<T, D>& b) {
  return record(map(a, b, fn::Maximum{}, "maximum"), "maximum", {&a, &b},
                [as = Saved(a), bs = Saved(b)](const Tensor<T, D>& g) {
                  const Tensor<T, D>& ad = as.get();
                  const Tensor<T, D>& bd = bs.get();
                  return std::vector<Tensor<T, D>>{sum_to(map(ad, bd, g, fn::MaximumGrad{}), ad.shape()),
                                                   sum_to(map(bd, ad, g, fn::MaximumGrad{}), bd.shape())};
                });
}

// ---- scalar operands ----------------------------------------------------------------------------
template <class T, class D>
Tensor<T, D> add(const Tensor<T, D>& x, T s) {
  return record(map(x, fn::AddScalar<T>{s}), "add_scalar", {&x},
                [](const Tensor<T, D>& g) { return std::vector<Tensor<T, D>>{g}; });
}
template <class T, class D>
Tensor<T, D> mul(const Tensor<T, D>& x, T s) {
  return record(map(x, fn::MulScalar<T>{s}), "mul_scalar", {&x},
                [s](const Tensor<T, D>& g) { return std::vector<Tensor<T, D>>{map(g, fn::MulScalar<T>{s})}; });
}
template <class T, class D>
Tensor<T, D> rsub(const Tensor<T, D>& x, T s) {  // s - x
  return record(map(x, fn::RSubScalar<T>{s}), "rsub_scalar", {&x},
                [](const Tensor<T, D>& g) { return std::vector<Tensor<T, D>>{map(g, fn::Neg{})}; });
}
template <class T, class D>
Tensor<T, D> rdiv(const Tensor<T, D>& x, T s) {  // s / x
  Tensor<T, D> out = map(x, fn::RDivScalar<T>{s});
  return record(out, "rdiv_scalar", {&x}, [xd = Saved(x), yd = Saved(out)](const Tensor<T, D>& g) {
    return std::vector<Tensor<T, D>>{map(g, yd.get(), xd.get(), fn::RDivGrad{})};
  });
}
// x^p for a scalar exponent.
template <class T, class D>
Tensor<T, D> pow(const Tensor<T, D>& x, T p) {
  return record(map(x, fn::PowScalar<T>{p}), "pow", {&x}, [xd = Saved(x), p](const Tensor<T, D>& g) {
    return std::vector<Tensor<T, D>>{map(g, xd.get(), fn::PowGrad<T>{p})};
  });
}

// ---- unary ------------------------------------------------------------------------------------
namespace detail {
// A unary op whose derivative is a function of the input: grad = g · dfdx(x).
template <class T, class D, class F, class Df>
Tensor<T, D> unary_with_input_grad(const Tensor<T, D>& x, const char* name, F f, Df dfdx) {
  return record(map(x, f), name, {&x}, [xd = Saved(x), dfdx](const Tensor<T, D>& g) {
    return std::vector<Tensor<T, D>>{map(g, xd.get(), fn::ChainGrad<Df>{dfdx})};
  });
}
// A unary op whose derivative is a function of the output: grad = g · dfdy(y).
template <class T, class D, class F, class Df>
Tensor<T, D> unary_with_output_grad(const Tensor<T, D>& x, const char* name, F f, Df dfdy) {
  Tensor<T, D> out = map(x, f);
  return record(out, name, {&x}, [yd = Saved(out), dfdy](const Tensor<T, D>& g) {
    return std::vector<Tensor<T, D>>{map(g, yd.get(), fn::ChainGrad<Df>{dfdy})};
  });
}
}  // namespace detail

template <class T, class D>
Tensor<T, D> neg(const Tensor<T, D>& x) {
  return record(map(x, fn::Neg{}), "neg", {&x},
                [](const Tensor<T, D>& g) { return std::vector<Tensor<T, D>>{map(g, fn::Neg{})}; });
}
template <class T, class D>
Tensor<T, D> exp(const Tensor<T, D>& x) {
  return detail::unary_with_output_grad(x, "exp", fn::Exp{}, fn::ExpGrad{});
}
template <class T, class D>
Tensor<T, D> log(const Tensor<T, D>& x) {
  return detail::unary_with_input_grad(x, "log", fn::Log{}, fn::LogGrad{});
}
template <class T, class D>
Tensor<T, D> sqrt(const Tensor<T, D>& x) {
  return detail::unary_with_output_grad(x, "sqrt", fn::Sqrt{}, fn::SqrtGrad{});
}
template <class T, class D>
Tensor<T, D> abs(const Tensor<T, D>& x) {
  return detail::unary_with_input_grad(x, "abs", fn::Abs{}, fn::Sign{});
}
template <class T, class D>
Tensor<T, D> sign(const Tensor<T, D>& x) {
  return record(map(x, fn::Sign{}), "sign", {&x}, [shape = x.shape()](const Tensor<T, D>&) {
    return std::vector<Tensor<T, D>>{Tensor<T, D>::zeros(shape)};
  });
}
// sign(x) forward, identity backward (GreedyHash's straight-through estimator).
template <class T, class D>
Tensor<T, D> sign_ste(const Tensor<T, D>& x) {
  return record(map(x, fn::Sign{}), "sign_ste", {&x},
                [](const Tensor<T, D>& g) { return std::vector<Tensor<T, D>>{g}; });
}
template <class T, class D>
Tensor<T, D> tanh(const Tensor<T, D>& x) {
  return detail::unary_with_output_grad(x, "tanh", fn::Tanh{}, fn::TanhGrad{});
}
template <class T, class D>
Tensor<T, D> sigmoid(const Tensor<T, D>& x) {
  return detail::unary_with_output_grad(x, "sigmoid", fn::Sigmoid{}, fn::SigmoidGrad{});
}
template <class T, class D>
Tensor<T, D> softplus(const Tensor<T, D>& x) {
  return detail::unary_with_input_grad(x, "softplus", fn::Softplus{}, fn::Sigmoid{});
}
template <class T, class D>
Tensor<T, D> relu(const Tensor<T, D>& x) {
  return detail::unary_with_input_grad(x, "relu", fn::Relu{}, fn::ReluGrad{});
}
// Every backend has its own GELU kernels (backend/{cpu,cuda}/activation.hpp, same signatures): on
// the CPU the generic functor path evaluated erf with a scalar libm call per element, on CUDA they
// are one fused pass each way. Saves the input.
template <class T, class D>
Tensor<T, D> gelu(const Tensor<T, D>& x) {
  Tensor<T, D> xc = x.contiguous_nograd();
  Tensor<T, D> y = Tensor<T, D>::empty(x.shape());
  gelu_forward(D{}, xc.data(), y.data(), xc.numel());
  return record(y, "gelu", {&x}, [saved_x = Saved(xc)](const Tensor<T, D>& g) {
    const Tensor<T, D>& xc = saved_x.get();
    Tensor<T, D> gc = g.contiguous_nograd();
    Tensor<T, D> dx = Tensor<T, D>::empty(xc.shape());
    gelu_backward(D{}, xc.data(), gc.data(), dx.data(), xc.numel());
    return std::vector<Tensor<T, D>>{dx};
  });
}
template <class T, class D>
Tensor<T, D> softsign(const Tensor<T, D>& x) {
  return detail::unary_with_input_grad(x, "softsign", fn::Softsign{}, fn::SoftsignGrad{});
}
template <class T, class D>
Tensor<T, D> clamp(const Tensor<T, D>& x, T lo, T hi) {
  return detail::unary_with_input_grad(x, "clamp", fn::Clamp<T>{lo, hi}, fn::ClampGrad<T>{lo, hi});
}
// max(x, s): the hinge of DSH and DPN. Gradient passes where x ≥ s (PyTorch's clamp_min rule).
template <class T, class D>
Tensor<T, D> clamp_min(const Tensor<T, D>& x, T s) {
  return detail::unary_with_input_grad(x, "clamp_min", fn::MaximumScalar<T>{s}, fn::ClampMinGrad<T>{s});
}

// ---- mean (needs mul by a scalar) ---------------------------------------------------------------
template <class T, class D>
Tensor<T, D> mean(const Tensor<T, D>& x, std::vector<int> axes, bool keepdim) {
  axes = detail::normalize_axes(x.shape(), std::move(axes));
  int64_t count = 1;
  for (int a : axes) count *= x.shape()[a];
  return mul(sum(x, axes, keepdim), T(1) / static_cast<T>(count));
}
template <class T, class D>
Tensor<T, D> mean(const Tensor<T, D>& x) {
  return mul(sum(x), T(1) / static_cast<T>(x.numel()));
}

// ---- operators --------------------------------------------------------------------------------
template <class T, class D> Tensor<T, D> operator+(const Tensor<T, D>& a, const Tensor<T, D>& b) { return add(a, b); }
template <class T, class D> Tensor<T, D> operator-(const Tensor<T, D>& a, const Tensor<T, D>& b) { return sub(a, b); }
template <class T, class D> Tensor<T, D> operator*(const Tensor<T, D>& a, const Tensor<T, D>& b) { return mul(a, b); }
template <class T, class D> Tensor<T, D> operator/(const Tensor<T, D>& a, const Tensor<T, D>& b) { return div(a, b); }
template <class T, class D> Tensor<T, D> operator-(const Tensor<T, D>& a) { return neg(a); }
template <class T, class D> Tensor<T, D> operator+(const Tensor<T, D>& a, std::type_identity_t<T> s) { return add(a, s); }
template <class T, class D> Tensor<T, D> operator+(std::type_identity_t<T> s, const Tensor<T, D>& a) { return add(a, s); }
template <class T, class D> Tensor<T, D> operator-(const Tensor<T, D>& a, std::type_identity_t<T> s) { return add(a, -s); }
template <class T, class D> Tensor<T, D> operator-(std::type_identity_t<T> s, const Tensor<T, D>& a) { return rsub(a, s); }
template <class T, class D> Tensor<T, D> operator*(const Tensor<T, D>& a, std::type_identity_t<T> s) { return mul(a, s); }
template <class T, class D> Tensor<T, D> operator*(std::type_identity_t<T> s, const Tensor<T, D>& a) { return mul(a, s); }
template <class T, class D> Tensor<T, D> operator/(const Tensor<T, D>& a, std::type_identity_t<T> s) { return mul(a, T(1) / s); }
template <class T, class D> Tensor<T, D> operator/(std::type_identity_t<T> s, const Tensor<T, D>& a) { return rdiv(a, s); }

}  // namespace vts
