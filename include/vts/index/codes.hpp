#pragma once
// Packed binary codes. A K-bit hash code (K a multiple of 8) is stored in K/8 bytes; bit j of the
// code is bit j%8 (least significant first) of byte j/8. That is FAISS's layout for binary
// indexes, so packed codes go to FAISS and Milvus without reshuffling, and it is what
// numpy.packbits(..., bitorder="little") produces.
//
// A code bit is 1 when the model output is > 0 and 0 otherwise. For ±1 codes that maps +1 → 1 and
// −1 → 0; for 0/1 codes 1 → 1 and 0 → 0. sign(0) = 0 (an output of exactly 0.0) therefore packs to
// bit 0, the same as −1: the reference's float distance ½(K − q·b) would count such a position as
// half a mismatch, a packed code cannot. Exactly-zero outputs are vanishingly rare after training;
// `count_zero_outputs` tells a caller whether it has any.
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "vts/core/error.hpp"

namespace vts::index {

static_assert(std::endian::native == std::endian::little,
              "vts::index stores codes and files little-endian and reads them in place");

// Distances are held in 16 bits in the ranking paths, so K stops at 65528 (far above any hash).
inline constexpr int64_t kMaxCodeBits = 65528;

inline void check_code_bits(int64_t bits, const char* where) {
  if (bits <= 0 || bits % 8 != 0 || bits > kMaxCodeBits)
    throw Error(vts::detail::concat(where, ": expected a code length K that is a positive multiple of 8 ",
                               "and at most ", kMaxCodeBits, " bits, found K = ", bits));
}

// A non-owning view of `count` packed codes of `bits` bits each, stored back to back.
struct CodesView {
  const uint8_t* data = nullptr;
  int64_t count = 0;
  int64_t bits = 0;

  int64_t code_bytes() const { return bits / 8; }
  int64_t size_bytes() const { return count * code_bytes(); }
  const uint8_t* code(int64_t i) const { return data + i * code_bytes(); }
  CodesView slice(int64_t begin, int64_t end) const {
    VTS_CHECK(0 <= begin && begin <= end && end <= count, "CodesView::slice: expected 0 <= begin <= end <= ",
              count, ", found [", begin, ", ", end, ")");
    return CodesView{code(begin), end - begin, bits};
  }
};

// Owning packed codes.
class PackedCodes {
 public:
  PackedCodes() = default;
  // `count` all-zero codes.
  PackedCodes(int64_t count, int64_t bits) : count_(count), bits_(bits) {
    check_code_bits(bits, "PackedCodes");
    VTS_CHECK(count >= 0, "PackedCodes: expected a non-negative count, found ", count);
    bytes_.assign(static_cast<size_t>(count * (bits / 8)), 0);
  }
  // Adopts already-packed bytes (count × bits/8 of them).
  PackedCodes(std::vector<uint8_t> bytes, int64_t count, int64_t bits)
      : bytes_(std::move(bytes)), count_(count), bits_(bits) {
    check_code_bits(bits, "PackedCodes");
    VTS_CHECK(count >= 0 && static_cast<int64_t>(bytes_.size()) == count * (bits / 8),
              "PackedCodes: expected ", count, " codes × ", bits / 8, " bytes = ", count * (bits / 8),
              " bytes, found ", bytes_.size());
  }

  int64_t size() const { return count_; }
  int64_t bits() const { return bits_; }
  int64_t code_bytes() const { return bits_ / 8; }
  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  uint8_t* code(int64_t i) { return bytes_.data() + i * code_bytes(); }
  const uint8_t* code(int64_t i) const { return bytes_.data() + i * code_bytes(); }
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  CodesView view() const { return CodesView{bytes_.data(), count_, bits_}; }
  operator CodesView() const { return view(); }  // NOLINT: a PackedCodes is usable wherever a view is

 private:
  std::vector<uint8_t> bytes_;
  int64_t count_ = 0;
  int64_t bits_ = 0;
};

namespace detail {
template <class T>
bool is_nan_value(T v) {
  if constexpr (std::is_floating_point_v<T>)
    return std::isnan(v);
  else
    return false;
}
}  // namespace detail

// Packs `count` codes of `bits` values each (row-major, count × bits) into `out`
// (count × bits/8 bytes). T is any arithmetic type: float/double outputs, ±1 or 0/1 int8 codes.
// A NaN output has no sign, so it is rejected rather than silently packed.
template <class T>
void pack_codes_into(const T* values, int64_t count, int64_t bits, uint8_t* out) {
  static_assert(std::is_arithmetic_v<T>, "pack_codes: values must be an arithmetic type");
  check_code_bits(bits, "pack_codes");
  const int64_t nbytes = bits / 8;
  for (int64_t i = 0; i < count; ++i) {
    const T* v = values + i * bits;
    uint8_t* o = out + i * nbytes;
    bool nan = false;
    for (int64_t b = 0; b < nbytes; ++b) {
      unsigned byte = 0;
      for (int t = 0; t < 8; ++t) {
        const T x = v[b * 8 + t];
        nan |= detail::is_nan_value(x);
        byte |= static_cast<unsigned>(x > T(0)) << t;
      }
      o[b] = static_cast<uint8_t>(byte);
    }
    if (nan)
      throw Error(vts::detail::concat("pack_codes: expected finite values, found NaN in code ", i,
                                 " (a NaN output has no sign)"));
  }
}

template <class T>
PackedCodes pack_codes(const T* values, int64_t count, int64_t bits) {
  PackedCodes codes(count, bits);
  pack_codes_into(values, count, bits, codes.data());
  return codes;
}

// `values.size()` must be a multiple of `bits`.
template <class T>
PackedCodes pack_codes(std::span<const T> values, int64_t bits) {
  check_code_bits(bits, "pack_codes");
  VTS_CHECK(static_cast<int64_t>(values.size()) % bits == 0, "pack_codes: expected a multiple of K = ", bits,
            " values, found ", values.size());
  return pack_codes(values.data(), static_cast<int64_t>(values.size()) / bits, bits);
}
template <class T>
PackedCodes pack_codes(const std::vector<T>& values, int64_t bits) {
  return pack_codes(std::span<const T>(values), bits);
}

// How many values are exactly zero (sign 0), i.e. packed as bit 0 although the reference would
// treat them as neither +1 nor −1.
template <class T>
int64_t count_zero_outputs(const T* values, int64_t n) {
  int64_t z = 0;
  for (int64_t i = 0; i < n; ++i) z += values[i] == T(0);
  return z;
}

// Which values a 0 bit and a 1 bit unpack to.
enum class Levels { plus_minus_one, zero_one };

// Unpacks into `out` (count × bits values): bit 1 → +1, bit 0 → −1 (or 0 with Levels::zero_one).
template <class T>
void unpack_codes_into(CodesView codes, T* out, Levels levels = Levels::plus_minus_one) {
  static_assert(std::is_arithmetic_v<T>, "unpack_codes: values must be an arithmetic type");
  check_code_bits(codes.bits, "unpack_codes");
  // T(-1) in an unsigned type is its maximum (255 for uint8_t): a code that looks like 0/255 data.
  if (std::is_unsigned_v<T> && levels == Levels::plus_minus_one)
    throw Error("unpack_codes: expected a signed type for ±1 levels, found an unsigned one (-1 would wrap); "
                "use a signed type or Levels::zero_one");
  const T one = T(1), zero = levels == Levels::plus_minus_one ? T(-1) : T(0);
  const int64_t nbytes = codes.code_bytes();
  for (int64_t i = 0; i < codes.count; ++i) {
    const uint8_t* c = codes.code(i);
    T* o = out + i * codes.bits;
    for (int64_t b = 0; b < nbytes; ++b)
      for (int t = 0; t < 8; ++t) o[b * 8 + t] = (c[b] >> t) & 1u ? one : zero;
  }
}

template <class T>
std::vector<T> unpack_codes(CodesView codes, Levels levels = Levels::plus_minus_one) {
  std::vector<T> out(static_cast<size_t>(codes.count * codes.bits));
  unpack_codes_into(codes, out.data(), levels);
  return out;
}

// Bit j of one packed code.
inline bool code_bit(const uint8_t* code, int64_t j) { return (code[j >> 3] >> (j & 7)) & 1u; }

}  // namespace vts::index
