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
// Maximum, Relu and MaximumScalar return a NaN input rather than the other operand (PyTorch's
// maximum, relu and clamp_min do): a NaN turned into a number hides a diverged layer.
struct Maximum { template <class T> VTS_HD T operator()(T a, T b) const { return a > b || a != a ? a : b; } };
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
struct Relu { template <class T> VTS_HD T operator()(T x) const { return x <= T(0) ? T(0) : x; } };
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
template <class T> struct MaximumScalar { T s; VTS_HD T operator()(T x) const { return x < s ? s : x; } };

// 0/1 masks and thresholds (constants in the losses; no gradient flows through them).
template <class T> struct GreaterScalar { T s; VTS_HD T operator()(T x) const { return x > s ? T(1) : T(0); } };
// 1 outside the open interval (lo, hi), 0 inside.
template <class T> struct Outside {
  T lo, hi;
  VTS_HD T operator()(T x) const { return x > hi || x < lo ? T(1) : T(0); }
};
// sign(x)·1[|x| > m]: −1, 0 or 1.
template <class T> struct Ternarize {
  T m;
  VTS_HD T operator()(T x) const { return x > m ? T(1) : (x < -m ? T(-1) : T(0)); }
};

// ---- backward formulas ------------------------------------------------------------------------
// Derivatives of the unary ops, each a function of what the op saves: the output y (exp, sqrt,
// tanh, sigmoid) or the input x (the rest; abs uses Sign, softplus uses Sigmoid).
struct ExpGrad { template <class T> VTS_HD T operator()(T y) const { return y; } };
struct LogGrad { template <class T> VTS_HD T operator()(T x) const { return T(1) / x; } };
struct SqrtGrad { template <class T> VTS_HD T operator()(T y) const { return T(0.5) / y; } };
struct TanhGrad { template <class T> VTS_HD T operator()(T y) const { return T(1) - y * y; } };
struct SigmoidGrad { template <class T> VTS_HD T operator()(T y) const { return y * (T(1) - y); } };
struct ReluGrad { template <class T> VTS_HD T operator()(T x) const { return x > T(0) ? T(1) : T(0); } };
struct SoftsignGrad {
  template <class T> VTS_HD T operator()(T x) const {
    const T d = T(1) + (x < T(0) ? -x : x);
    return T(1) / (d * d);
  }
};
// clamp passes the gradient on the closed interval [lo, hi]; clamp_min where x ≥ s.
template <class T> struct ClampGrad {
  T lo, hi;
  VTS_HD T operator()(T x) const { return x >= lo && x <= hi ? T(1) : T(0); }
};
template <class T> struct ClampMinGrad { T s; VTS_HD T operator()(T x) const { return x >= s ? T(1) : T(0); } };

// (g, v) → g · df(v): the chain rule of a unary op, df one of the derivatives above.
template <class Df> struct ChainGrad {
  Df df;
  template <class T> VTS_HD T operator()(T g, T v) const { return g * df(v); }
};
// div's gradient for the divisor: (g/b, a/b) → −(g/b)·(a/b).
struct NegMul { template <class T> VTS_HD T operator()(T u, T y) const { return -u * y; } };
// pow's gradient (g, x) → g·p·x^(p−1). x^0 is constant: 0 everywhere, including x = 0 where
// p·x^(p−1) would be 0·inf.
template <class T> struct PowGrad {
  T p;
  VTS_HD T operator()(T g, T x) const {
    using std::pow;
    if (p == T(0)) return T(0);
    return p == T(2) ? g * T(2) * x : g * p * pow(x, p - T(1));
  }
};
// maximum's gradient for its first input (x, other, g): all of g where x wins, half at a tie.
struct MaximumGrad {
  template <class T> VTS_HD T operator()(T x, T y, T g) const { return x > y ? g : (x == y ? g / T(2) : T(0)); }
};
// s / x's gradient (g, y = s/x, x) → −g·y/x.
struct RDivGrad { template <class T> VTS_HD T operator()(T g, T y, T x) const { return -g * y / x; } };

// Binary cross-entropy on probabilities, PyTorch's: each log clamped at −100; gradient
// (p − t)/max(p(1 − p), 1e-12), times `scale` (upstream gradient / count).
struct BceLoss {
  template <class T> VTS_HD T operator()(T p, T t) const {
    using std::log;
    const T lp = log(p), l1p = log(T(1) - p);
    // (a < b ? b : a) is std::max(a, b), written out so the device can call it.
    return -(t * (lp < T(-100) ? T(-100) : lp) + (T(1) - t) * (l1p < T(-100) ? T(-100) : l1p));
  }
};
template <class T> struct BceGrad {
  T scale;
  VTS_HD T operator()(T p, T t) const {
    const T d = (T(1) - p) * p;
    return scale * (p - t) / (d < T(1e-12) ? T(1e-12) : d);
  }
};

// CSQ's objective for one element (hashing-spec §2.5): u the raw code, c its center value (±1; a
// mixed value for mixup rows), λ the quantization weight:
//   h = tanh u, p = (h + 1)/2, t = (c + 1)/2;   BceLoss(p, t) + λ·(|h| − 1)²
// — the same float operations as the composite the spec writes, so the saturated case (tanh = ±1
// exactly, a log clamped at −100) comes out the same.
template <class T> struct CsqTerm {
  T lambda;
  VTS_HD T operator()(T u, T c) const {
    const T h = Tanh{}(u), a = Abs{}(h) - T(1);
    return BceLoss{}((h + T(1)) * T(0.5), (c + T(1)) * T(0.5)) + lambda * (a * a);
  }
};
// Its derivative in u, times scale (the upstream gradient over the element count): the chain the
// composite's backward takes, BceGrad·½ + 2λ(|h| − 1)·sign h, through tanh's 1 − h².
template <class T> struct CsqGrad {
  T lambda, scale;
  VTS_HD T operator()(T u, T c) const {
    const T h = Tanh{}(u);
    const T bce = BceGrad<T>{scale}((h + T(1)) * T(0.5), (c + T(1)) * T(0.5)) * T(0.5);
    const T quant = scale * lambda * (T(2) * (Abs{}(h) - T(1))) * Sign{}(h);
    return (bce + quant) * TanhGrad{}(h);
  }
};

}  // namespace vts::fn
