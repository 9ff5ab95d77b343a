#pragma once
// CRC-32 with zlib's polynomial and conventions (crc32(crc32(0, a), b) == crc32(0, a ‖ b), the
// value zlib's crc32_z gives), fast on large buffers.
//
// Why not zlib alone: a model's identity in index files is the CRC of its weights, 963 MB for a
// ViT-B/16 with the all-token head, which Debian's zlib 1.2.13 reads at 4.3 GB/s (0.23 s, about a
// sixth of a one-query `vts search`). On x86-64 with PCLMULQDQ the bulk is instead folded with
// carry-less products, 64 bytes a step (3.4× zlib's speed on a Zen 4, where the products' issue
// rate is the limit, not memory: docs/perf.md); what the folding leaves (16 bytes and a
// tail under 16) goes through zlib, and so does everything on other CPUs and buffers under
// kCrc32FoldMinBytes. crc32_parallel splits a large buffer over the library's threads and joins
// the parts with zlib's crc32_combine.
//
// The folding, in zlib's bit order (a byte's lowest bit is the highest power of x, the first
// byte the highest of all). Read as a polynomial, a 128-bit register's low 64-bit half holds the
// powers x^127…x^64 and its high half x^63…x^0, and a carry-less product of two halves a, b is
// the polynomial a·b·x. To move a register R = a·x^64 + b forward over the next `bits` bits of
// the message it is replaced by a·k1 ⊕ b·k2 (two products), with k1 ≡ x^(bits+63) and
// k2 ≡ x^(bits−1) mod P: the same value mod P, and of degree < 96, so it fits back in 128 bits.
// Four registers take four consecutive 16-byte pieces and move 512 bits a step; at the end they
// are folded into one (128 bits at a time), whose 16 bytes zlib finishes with: the CRC of a
// message is fixed by its value mod P, so the folded register stands in for everything before it.
// The constants are computed below (x^n mod P by n shifts), not copied.
#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define VTS_CRC32_PCLMUL 1
#include <immintrin.h>
#endif

#include "vts/backend/cpu/parallel.hpp"

namespace vts {

// Below this many bytes zlib's table loop is as fast as setting up the four registers.
inline constexpr size_t kCrc32FoldMinBytes = 256;

namespace detail {

// x^n mod P in zlib's reflected form: bit i holds the coefficient of x^(31 − i).
constexpr uint32_t crc32_x_pow_mod(unsigned n) {
  uint32_t v = 0x80000000u;  // x^0
  for (unsigned i = 0; i < n; ++i) v = (v >> 1) ^ ((v & 1u) ? 0xEDB88320u : 0u);
  return v;
}

// A polynomial of degree < 32 as the 64-bit half of a carry-less product (bit j is x^(63 − j)).
constexpr uint64_t crc32_fold_multiplier(unsigned power) { return uint64_t{crc32_x_pow_mod(power)} << 32; }

// zlib's crc32_z.
inline uint32_t crc32_zlib(uint32_t crc, const unsigned char* p, size_t n) {
  return static_cast<uint32_t>(crc32_z(crc, p, static_cast<z_size_t>(n)));
}

#if defined(VTS_CRC32_PCLMUL)
// The register moved forward over `bits` more bits of the message (see the top of the file).
template <unsigned bits>
__attribute__((target("pclmul,sse2"))) inline __m128i crc32_fold(__m128i r) {
  // constexpr, so no compiler leaves the ~600 shifts for run time (clang did, at 0.02 GB/s).
  constexpr uint64_t for_low_half = crc32_fold_multiplier(bits + 63), for_high_half = crc32_fold_multiplier(bits - 1);
  const __m128i k = _mm_set_epi64x(static_cast<long long>(for_high_half), static_cast<long long>(for_low_half));
  return _mm_xor_si128(_mm_clmulepi64_si128(r, k, 0x00), _mm_clmulepi64_si128(r, k, 0x11));
}

// n >= 64. Same value as crc32_zlib(crc, p, n).
__attribute__((target("pclmul,sse2"))) inline uint32_t crc32_folded(uint32_t crc, const unsigned char* p, size_t n) {
  const auto load = [](const unsigned char* q) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(q)); };
  // zlib's register starts as ~crc, which is the same as that value xored into the first 4 bytes
  // and a register of 0; the finishing call below starts from ~0 for that reason.
  __m128i r0 = _mm_xor_si128(load(p), _mm_cvtsi32_si128(static_cast<int>(~crc)));
  __m128i r1 = load(p + 16), r2 = load(p + 32), r3 = load(p + 48);
  p += 64;
  n -= 64;
  for (; n >= 64; p += 64, n -= 64) {
    r0 = _mm_xor_si128(crc32_fold<512>(r0), load(p));
    r1 = _mm_xor_si128(crc32_fold<512>(r1), load(p + 16));
    r2 = _mm_xor_si128(crc32_fold<512>(r2), load(p + 32));
    r3 = _mm_xor_si128(crc32_fold<512>(r3), load(p + 48));
  }
  __m128i r = _mm_xor_si128(crc32_fold<128>(r0), r1);
  r = _mm_xor_si128(crc32_fold<128>(r), r2);
  r = _mm_xor_si128(crc32_fold<128>(r), r3);
  for (; n >= 16; p += 16, n -= 16) r = _mm_xor_si128(crc32_fold<128>(r), load(p));
  alignas(16) unsigned char folded[16];
  _mm_store_si128(reinterpret_cast<__m128i*>(folded), r);
  return crc32_zlib(crc32_zlib(0xFFFFFFFFu, folded, 16), p, n);
}

inline bool crc32_can_fold() {
  static const bool can = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse2");
  return can;
}
#endif

}  // namespace detail

// The CRC-32 of n bytes at data continued from crc (0 for a new one), as zlib's crc32_z. One
// difference: no bytes leave crc as it is, even with a null pointer (zlib answers 0 there, its
// way of asking for the starting value, which would silently restart a CRC at an empty vector's
// data()).
inline uint32_t crc32(uint32_t crc, const void* data, size_t n) {
  if (n == 0) return crc;
  const auto* p = static_cast<const unsigned char*>(data);
#if defined(VTS_CRC32_PCLMUL)
  if (n >= kCrc32FoldMinBytes && detail::crc32_can_fold()) return detail::crc32_folded(crc, p, n);
#endif
  return detail::crc32_zlib(crc, p, n);
}

// crc32 on the library's threads (cpu::parallel_for): each takes a contiguous part from a CRC of
// 0, and zlib's crc32_combine joins the parts' values in order, which gives crc32's value exactly.
// Parts are at least min_part bytes, so a small buffer stays on the calling thread.
inline uint32_t crc32_parallel(uint32_t crc, const void* data, size_t n, size_t min_part = size_t(8) << 20) {
  const int64_t parts = std::min<int64_t>(cpu::max_threads(), static_cast<int64_t>(n / std::max<size_t>(min_part, 1)));
  if (parts <= 1 || cpu::in_parallel()) return crc32(crc, data, n);
  const auto* p = static_cast<const unsigned char*>(data);
  const auto part_begin = [&](int64_t i) { return n / static_cast<size_t>(parts) * static_cast<size_t>(i); };
  const auto part_end = [&](int64_t i) { return i + 1 == parts ? n : part_begin(i + 1); };
  std::vector<uint32_t> part_crc(static_cast<size_t>(parts));
  cpu::parallel_for(0, parts, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      part_crc[static_cast<size_t>(i)] = crc32(0, p + part_begin(i), part_end(i) - part_begin(i));
  });
  for (int64_t i = 0; i < parts; ++i)
    crc = static_cast<uint32_t>(crc32_combine(crc, part_crc[static_cast<size_t>(i)],
                                              static_cast<z_off_t>(part_end(i) - part_begin(i))));
  return crc;
}

}  // namespace vts
