#pragma once
// Elementwise functors shared by the CPU loops and the CUDA kernels (VTS_HD marks them callable on
// both sides). Each names the math once; backward functors take (x, y, grad_out) as documented.
#include <cmath>

#if defined(__CUDACC__)
#define VTS_HD __host__ __device__
#else
#define VTS_HD
#endif

namespace vts::fn {

struct Add { template <class T> VTS_HD T operator()(T a, T b) const { return a + b; } };
struct Sub { template <class T> VTS_HD T operator()(T a, T b) const { return a - b; } };
struct Mul { template <class T> VTS_HD T operator()(T a, T b) const { return a * b; } };
struct Div { template <class T> VTS_HD T operator()(T a, T b) const { return a / b; } };
struct Maximum { template <class T> VTS_HD T operator()(T a, T b) const { return a > b ? a : b; } };
struct Minimum { template <class T> VTS_HD T operator()(T a, T b) const { return a < b ? a : b; } };

struct Neg { template <class T> VTS_HD T operator()(T x) const { return -x; } };
struct Exp { template <class T> VTS_HD T operator()(T x) const { using std::exp; return exp(x); } };
struct Log { template <class T> VTS_HD T operator()(T x) const { using std::log; return log(x); } };
struct Sqrt { template <class T> VTS_HD T operator()(T x) const { using std::sqrt; return sqrt(x); } };
struct Abs { template <class T> VTS_HD T operator()(T x) const { return x < T(0) ? -x : x; } };
// sign(0) = 0, as PyTorch and numpy define it.
struct Sign { template <class T> VTS_HD T operator()(T x) const { return T((x > T(0)) - (x < T(0))); } };
struct Tanh { template <class T> VTS_HD T operator()(T x) const { using std::tanh; return tanh(x); } };
struct Sigmoid {
  template <class T> VTS_HD T operator()(T x) const {
    using std::exp;
    // Split by sign so exp never overflows.
    if (x >= T(0)) return T(1) / (T(1) + exp(-x));
    const T e = exp(x);
    return e / (T(1) + e);
  }
};
// log(1 + e^x) without overflow: max(x, 0) + log1p(e^-|x|).
struct Softplus {
  template <class T> VTS_HD T operator()(T x) const {
    using std::exp; using std::log1p;
    return (x > T(0) ? x : T(0)) + log1p(exp(x > T(0) ? -x : x));
  }
};
struct Relu { template <class T> VTS_HD T operator()(T x) const { return x > T(0) ? x : T(0); } };
struct Softsign { template <class T> VTS_HD T operator()(T x) const { return x / (T(1) + (x < T(0) ? -x : x)); } };
// Exact GELU: x · Φ(x) with the error function, as torch.nn.functional.gelu's default.
struct Gelu {
  template <class T> VTS_HD T operator()(T x) const {
    using std::erf;
    return T(0.5) * x * (T(1) + erf(x * T(0.70710678118654752440)));
  }
};
struct GeluGrad {  // d/dx of Gelu
  template <class T> VTS_HD T operator()(T x) const {
    using std::erf; using std::exp;
    const T cdf = T(0.5) * (T(1) + erf(x * T(0.70710678118654752440)));
    const T pdf = exp(T(-0.5) * x * x) * T(0.39894228040143267794);
    return cdf + x * pdf;
  }
};

// Scalar-parameter functors.
template <class T> struct AddScalar { T s; VTS_HD T operator()(T x) const { return x + s; } };
template <class T> struct MulScalar { T s; VTS_HD T operator()(T x) const { return x * s; } };
template <class T> struct RSubScalar { T s; VTS_HD T operator()(T x) const { return s - x; } };
template <class T> struct RDivScalar { T s; VTS_HD T operator()(T x) const { return s / x; } };
template <class T> struct PowScalar {
  T p;
  VTS_HD T operator()(T x) const {
    using std::pow;
    if (p == T(2)) return x * x;
    return pow(x, p);
  }
};
template <class T> struct Clamp {
  T lo, hi;
  VTS_HD T operator()(T x) const { return x < lo ? lo : (x > hi ? hi : x); }
};
template <class T> struct MaximumScalar { T s; VTS_HD T operator()(T x) const { return x > s ? x : s; } };

}  // namespace vts::fn
