#pragma once
// vts::io::Array: the host-side, type-erased array that every file format in vts::io reads into
// and writes from. It is deliberately not a vts::Tensor: files hold dtypes the tensor library does
// not compute in (f16, u16, bool, ...), and loaders decide what to convert to, once, with as<T>().
// Layout: C order, little-endian, `bytes.size() == numel() * dtype_size(dtype)`.
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "vts/core/dtype.hpp"
#include "vts/core/error.hpp"

// vts::io::detail hides vts::detail inside vts::io; bring the message builder back into view.
namespace vts::io::detail {
using ::vts::detail::concat;
}

namespace vts::io {

static_assert(std::endian::native == std::endian::little,
              "vts::io keeps arrays little-endian in memory and assumes a little-endian host");

enum class DType { f16, bf16, f32, f64, i8, u8, i16, u16, i32, u32, i64, u64, b1 };

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f16: return "float16";
    case DType::bf16: return "bfloat16";
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i8: return "int8";
    case DType::u8: return "uint8";
    case DType::i16: return "int16";
    case DType::u16: return "uint16";
    case DType::i32: return "int32";
    case DType::u32: return "uint32";
    case DType::i64: return "int64";
    case DType::u64: return "uint64";
    case DType::b1: return "bool";
  }
  return "invalid-dtype";
}

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::i8:
    case DType::u8:
    case DType::b1: return 1;
    case DType::f16:
    case DType::bf16:
    case DType::i16:
    case DType::u16: return 2;
    case DType::f32:
    case DType::i32:
    case DType::u32: return 4;
    case DType::f64:
    case DType::i64:
    case DType::u64: return 8;
  }
  throw Error(detail::concat("dtype_size: invalid DType value ", static_cast<int>(t)));
}

// IEEE binary16 <-> binary32. There is no half type in vts::core (CUDA computes in bf16), but
// checkpoints are often saved in f16, so the conversion lives here. Rounding is to nearest even,
// NaN stays NaN, overflow goes to infinity, as numpy's astype(float16) does.
inline float f16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    const float mag = std::ldexp(static_cast<float>(mant), -24);  // exact: zero or subnormal
    return sign ? -mag : mag;
  }
  uint32_t bits;
  if (exp == 31)
    bits = sign | 0x7f800000u | (mant << 13);
  else
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  return std::bit_cast<float>(bits);
}

inline uint16_t float_to_f16(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  u &= 0x7fffffffu;
  if (u > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((u >> 13) & 0x3ffu));
  if (u >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to inf
  if (u < 0x38800000u) {  // below 2^-14: result is subnormal or zero, in units of 2^-24
    const uint32_t exp = u >> 23;
    const uint32_t shift = 126u - exp;
    if (shift > 24) return sign;
    const uint32_t mant = (u & 0x7fffffu) | 0x800000u;
    uint32_t r = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t r = (u - 0x38000000u) >> 13;  // rebias exponent 127 -> 15, keep 10 mantissa bits
  const uint32_t rem = u & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;  // a carry correctly bumps the exponent
  return static_cast<uint16_t>(sign | r);
}

// The DType that stores a C++ element type. Integer types map by width and signedness, so
// `long` and `long long` both give i64.
template <class T>
constexpr DType dtype_of() {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, bool>) return DType::b1;
  else if constexpr (std::is_same_v<U, float>) return DType::f32;
  else if constexpr (std::is_same_v<U, double>) return DType::f64;
  else if constexpr (std::is_same_v<U, vts::bf16>) return DType::bf16;
  else if constexpr (std::is_integral_v<U> && std::is_signed_v<U>) {
    static_assert(sizeof(U) == 1 || sizeof(U) == 2 || sizeof(U) == 4 || sizeof(U) == 8);
    if constexpr (sizeof(U) == 1) return DType::i8;
    else if constexpr (sizeof(U) == 2) return DType::i16;
    else if constexpr (sizeof(U) == 4) return DType::i32;
    else return DType::i64;
  } else if constexpr (std::is_integral_v<U> && std::is_unsigned_v<U>) {
    static_assert(sizeof(U) == 1 || sizeof(U) == 2 || sizeof(U) == 4 || sizeof(U) == 8);
    if constexpr (sizeof(U) == 1) return DType::u8;
    else if constexpr (sizeof(U) == 2) return DType::u16;
    else if constexpr (sizeof(U) == 4) return DType::u32;
    else return DType::u64;
  } else {
    static_assert(sizeof(U) == 0, "vts::io has no dtype for this element type");
  }
}

namespace detail {

// Element count of `shape`, or -1 when a dimension is negative or the product overflows int64.
// Readers turn -1 into an IoError naming the file; in-memory callers into a ShapeError.
inline int64_t checked_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) {
      // A zero later in the shape would still make the array empty, but no writer produces such
      // shapes and a reader must not allocate on them, so treat it as invalid.
      return -1;
    }
    n *= d;
  }
  return n;
}

inline std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  s += ")";
  return s;
}

template <class T>
const char* type_label() {
  if constexpr (std::is_same_v<std::remove_cv_t<T>, vts::bf16>) return "bfloat16";
  else if constexpr (std::is_same_v<std::remove_cv_t<T>, bool>) return "bool";
  else if constexpr (std::is_floating_point_v<T>) return sizeof(T) == 4 ? "float32" : "float64";
  else return dtype_name(dtype_of<T>());
}

// Converts one value to T. Integer targets refuse values they cannot hold (a silently wrapped
// label or index is worse than an exception); float -> integer truncates toward zero like
// numpy's astype.
template <class T, class S>
T convert_value(S v, int64_t index) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != S(0);
  } else if constexpr (std::is_same_v<T, vts::bf16>) {
    return vts::bf16(static_cast<float>(v));
  } else if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(v);
  } else {
    static_assert(std::is_integral_v<T>);
    if constexpr (std::is_floating_point_v<S>) {
      // The bounds are powers of two, exact in S; NaN fails both comparisons.
      const S lo = std::is_signed_v<T> ? -std::ldexp(S(1), std::numeric_limits<T>::digits) : S(0);
      const S hi = std::ldexp(S(1), std::numeric_limits<T>::digits);
      if (!(std::trunc(v) >= lo && v < hi))
        throw Error(detail::concat("Array::as<", type_label<T>(), ">: value ", v, " at flat index ",
                                   index, " does not fit in ", type_label<T>()));
      return static_cast<T>(v);
    } else {
      if (!std::in_range<T>(v))
        throw Error(detail::concat("Array::as<", type_label<T>(), ">: value ", +v, " at flat index ",
                                   index, " does not fit in ", type_label<T>()));
      return static_cast<T>(v);
    }
  }
}

template <class S>
S load_le(const uint8_t* p) {
  S v;
  std::memcpy(&v, p, sizeof(S));
  return v;
}

// Converts `count` elements of dtype `dtype`, stored little-endian from p (any alignment), to T
// into out; first_index is the flat index of the first one, for convert_value's messages.
template <class T>
void convert_elements(DType dtype, const uint8_t* p, int64_t count, T* out, int64_t first_index = 0) {
  auto each = [&](auto tag, auto&& to_value) {
    using S = decltype(tag);
    for (int64_t i = 0; i < count; ++i)
      out[i] = convert_value<T>(to_value(load_le<S>(p + i * sizeof(S))), first_index + i);
  };
  auto same = [](auto v) { return v; };
  switch (dtype) {
    case DType::f16: each(uint16_t{}, [](uint16_t h) { return f16_to_float(h); }); break;
    case DType::bf16: each(uint16_t{}, [](uint16_t h) {
        vts::bf16 b;
        b.bits = h;
        return static_cast<float>(b);
      }); break;
    case DType::f32: each(float{}, same); break;
    case DType::f64: each(double{}, same); break;
    case DType::i8: each(int8_t{}, same); break;
    case DType::u8: each(uint8_t{}, same); break;
    case DType::i16: each(int16_t{}, same); break;
    case DType::u16: each(uint16_t{}, same); break;
    case DType::i32: each(int32_t{}, same); break;
    case DType::u32: each(uint32_t{}, same); break;
    case DType::i64: each(int64_t{}, same); break;
    case DType::u64: each(uint64_t{}, same); break;
    // Any nonzero byte is true: files written by other tools may not normalise to 0/1.
    case DType::b1: each(uint8_t{}, [](uint8_t b) { return static_cast<uint8_t>(b != 0); }); break;
  }
}

}  // namespace detail

struct Array {
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;

  // Product of the dimensions (1 for a 0-d array). Throws vts::ShapeError on a negative
  // dimension or an overflowing product.
  int64_t numel() const {
    const int64_t n = detail::checked_numel(shape);
    VTS_CHECK_SHAPE(n >= 0, "Array: invalid shape ", detail::shape_str(shape),
                    " (negative dimension or element count beyond int64)");
    return n;
  }

  // All elements in C order, converted to T (float, double, any integer type, bool, vts::bf16).
  template <class T>
  std::vector<T> as() const {
    const int64_t n = numel();
    const size_t es = dtype_size(dtype);
    VTS_CHECK(bytes.size() / es == static_cast<uint64_t>(n) && bytes.size() % es == 0,
              "Array::as: ", dtype_name(dtype), " array of shape ", detail::shape_str(shape),
              " needs ", static_cast<uint64_t>(n) * es, " bytes, holds ", bytes.size());
    if constexpr (std::is_same_v<T, bool>) {  // std::vector<bool> has no contiguous storage
      const std::unique_ptr<bool[]> flags(new bool[static_cast<size_t>(n)]);
      detail::convert_elements(dtype, bytes.data(), n, flags.get());
      return std::vector<bool>(flags.get(), flags.get() + n);
    } else {
      std::vector<T> out(static_cast<size_t>(n));
      detail::convert_elements(dtype, bytes.data(), n, out.data());
      return out;
    }
  }
};

// An array of dtype_of<T>() holding `values` in C order; throws vts::ShapeError when the shape's
// element count differs from values.size().
template <class T>
Array make_array(const std::vector<T>& values, std::vector<int64_t> shape) {
  Array a;
  a.dtype = dtype_of<T>();
  a.shape = std::move(shape);
  const int64_t n = a.numel();
  VTS_CHECK_SHAPE(static_cast<uint64_t>(n) == values.size(), "make_array: shape ",
                  detail::shape_str(a.shape), " holds ", n, " elements, but ", values.size(),
                  " values were given");
  a.bytes.resize(values.size() * sizeof(T));
  if constexpr (std::is_same_v<T, bool>) {  // std::vector<bool> has no contiguous storage
    for (size_t i = 0; i < values.size(); ++i) a.bytes[i] = values[i] ? 1 : 0;
  } else {
    static_assert(std::is_trivially_copyable_v<T>);
    if (!values.empty()) std::memcpy(a.bytes.data(), values.data(), a.bytes.size());
  }
  return a;
}

namespace detail {
// Writers call this before touching the file so that an inconsistent Array never reaches disk.
inline void check_array(const Array& a, const std::string& what) {
  const int64_t n = checked_numel(a.shape);
  if (n < 0)
    throw IoError(concat(what, ": cannot write an array of invalid shape ", shape_str(a.shape)));
  uint64_t need = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(n), dtype_size(a.dtype), &need) ||
      a.bytes.size() != need)
    throw IoError(concat(what, ": ", dtype_name(a.dtype), " array of shape ", shape_str(a.shape),
                         " needs ", need, " bytes, but holds ", a.bytes.size()));
}
}  // namespace detail

}  // namespace vts::io
