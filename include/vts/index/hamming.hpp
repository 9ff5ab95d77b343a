#pragma once
// Hamming-distance kernels over packed codes (see codes.hpp for the layout).
//
// Three instruction-set levels, chosen at run time so that one portable binary uses the best one
// the CPU has:
//   avx512 — VPOPCNTQ counts 8 × 64 bits per instruction (AVX-512 F/BW/VL + VPOPCNTDQ);
//   avx2   — per-byte counts through a 16-entry nibble table (VPSHUFB), summed by VPSADBW;
//   scalar — the POPCNT instruction on 64-bit words (a table-free software count without it).
// Each level is compiled with `__attribute__((target(...)))`, so none of it needs -march flags.
// K = 64, 128 and 256 (8, 16 and 32 bytes) are the hot cases and have fixed-width kernels, as do
// the short lengths of the hashing literature, 16, 32 and 48 bits (avx512; 16 and 32 on avx2),
// widened to one code per 64-bit lane. Other lengths use a loop over 64-bit words (or 64-byte
// vectors for long codes on avx512).
//
// Two primitives sit on top of the kernels:
//   distances(...)  — the distance of every code in a range to one query (uint16 each);
//   scan(...)       — feeds (distance, index) of every code closer than `sink.bound()` to the
//                     sink, in ascending index order. The bound is re-read after each delivery,
//                     so a top-k collector can tighten it as it goes. Most codes fail the test;
//                     the vector kernels test 32 (avx512) or 16 (avx2) codes with one branch.
#include <bit>
#include <cstdint>
#include <cstring>

#include "vts/core/error.hpp"
#include "vts/index/codes.hpp"

#if defined(__x86_64__) || defined(__i386__)
#define VTS_INDEX_X86 1
#include <immintrin.h>
#else
#define VTS_INDEX_X86 0
#endif

namespace vts::index {

enum class Isa { automatic, scalar, avx2, avx512 };

inline const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::automatic: return "automatic";
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

namespace detail {
struct CpuFeatures {
  bool popcnt = false, avx2 = false, avx512 = false;
};
inline const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    CpuFeatures c;
#if VTS_INDEX_X86
    __builtin_cpu_init();
    c.popcnt = __builtin_cpu_supports("popcnt");
    c.avx2 = c.popcnt && __builtin_cpu_supports("avx2");
    c.avx512 = c.avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vpopcntdq");
#endif
    return c;
  }();
  return f;
}
}  // namespace detail

inline bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::automatic:
    case Isa::scalar: return true;
    case Isa::avx2: return detail::cpu_features().avx2;
    case Isa::avx512: return detail::cpu_features().avx512;
  }
  return false;
}

inline Isa best_isa() {
  if (isa_supported(Isa::avx512)) return Isa::avx512;
  if (isa_supported(Isa::avx2)) return Isa::avx2;
  return Isa::scalar;
}

// automatic → the best level this CPU has; an explicit level the CPU lacks is an error (running it
// would die on an illegal instruction).
inline Isa resolve_isa(Isa requested) {
  if (requested == Isa::automatic) return best_isa();
  if (!isa_supported(requested))
    throw Error(vts::detail::concat("Hamming kernels: the ", isa_name(requested),
                               " level was requested but this CPU lacks it (best available: ",
                               isa_name(best_isa()), ")"));
  return requested;
}

// Reference distance between two codes of `bytes` bytes; plain and obviously correct.
inline uint32_t hamming_distance(const uint8_t* a, const uint8_t* b, int64_t bytes) {
  uint32_t d = 0;
  for (int64_t i = 0; i < bytes; ++i) d += static_cast<uint32_t>(std::popcount(static_cast<unsigned>(a[i] ^ b[i])));
  return d;
}

namespace detail {

#define VTS_TARGET_POPCNT __attribute__((target("popcnt")))
#define VTS_TARGET_AVX2 __attribute__((target("avx2,popcnt")))
#define VTS_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vpopcntdq,avx2,popcnt")))

inline uint64_t load_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
// The first `n` (< 8) bytes at p, zero-extended, assembled in registers from 4-, 2- and 1-byte
// loads. (A memcpy into a zeroed 8-byte variable compiles to narrow stores followed by a wide
// load, which cannot be store-forwarded: ~20 cycles per code for 48-bit codes.)
[[gnu::always_inline]] inline uint64_t load_partial(const uint8_t* p, int64_t n) {
  uint64_t v = 0;
  int shift = 0;
  if (n & 4) {
    uint32_t x;
    std::memcpy(&x, p, 4);
    v = x;
    p += 4;
    shift = 32;
  }
  if (n & 2) {
    uint16_t x;
    std::memcpy(&x, p, 2);
    v |= static_cast<uint64_t>(x) << shift;
    p += 2;
    shift += 16;
  }
  if (n & 1) v |= static_cast<uint64_t>(*p) << shift;
  return v;
}

// ---- scalar: W > 0 is a compile-time code size in bytes, W == 0 reads `bytes` ----------------------
// Written once, always inlined into a POPCNT-enabled and a plain wrapper so that the same source
// becomes the POPCNT instruction where the CPU has one.
template <int W>
[[gnu::always_inline]] inline uint32_t dist_scalar(const uint8_t* a, const uint8_t* b, int64_t bytes) {
  if constexpr (W > 0 && W < 8) {
    return static_cast<uint32_t>(std::popcount(load_partial(a, W) ^ load_partial(b, W)));
  } else if constexpr (W >= 8 && W % 8 == 0) {
    uint32_t d = 0;
    for (int j = 0; j < W; j += 8) d += static_cast<uint32_t>(std::popcount(load_u64(a + j) ^ load_u64(b + j)));
    return d;
  } else {
    static_assert(W == 0, "dist_scalar: W is 0 (run-time size), 1..7 or a multiple of 8");
    uint32_t d = 0;
    int64_t j = 0;
    for (; j + 8 <= bytes; j += 8) d += static_cast<uint32_t>(std::popcount(load_u64(a + j) ^ load_u64(b + j)));
    if (j < bytes) d += static_cast<uint32_t>(std::popcount(load_partial(a + j, bytes - j) ^ load_partial(b + j, bytes - j)));
    return d;
  }
}

template <int W, class Sink>
[[gnu::always_inline]] inline void scan_scalar_body(const uint8_t* db, int64_t n, int64_t bytes, const uint8_t* q,
                                                    int64_t base, Sink& sink) {
  const int64_t stride = W > 0 ? W : bytes;
  uint32_t bound = sink.bound();
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t d = dist_scalar<W>(db + i * stride, q, bytes);
    if (d < bound) [[unlikely]] {
      sink.push(d, base + i);
      bound = sink.bound();
    }
  }
}

template <int W>
[[gnu::always_inline]] inline void distances_scalar_body(const uint8_t* db, int64_t n, int64_t bytes,
                                                         const uint8_t* q, uint16_t* out) {
  const int64_t stride = W > 0 ? W : bytes;
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<uint16_t>(dist_scalar<W>(db + i * stride, q, bytes));
}

template <int W, class Sink>
VTS_TARGET_POPCNT void scan_scalar_popcnt(const uint8_t* db, int64_t n, int64_t bytes, const uint8_t* q, int64_t base,
                                          Sink& sink) {
  scan_scalar_body<W>(db, n, bytes, q, base, sink);
}
template <int W, class Sink>
void scan_scalar_plain(const uint8_t* db, int64_t n, int64_t bytes, const uint8_t* q, int64_t base, Sink& sink) {
  scan_scalar_body<W>(db, n, bytes, q, base, sink);
}
template <int W>
VTS_TARGET_POPCNT void distances_scalar_popcnt(const uint8_t* db, int64_t n, int64_t bytes, const uint8_t* q,
                                               uint16_t* out) {
  distances_scalar_body<W>(db, n, bytes, q, out);
}
template <int W>
void distances_scalar_plain(const uint8_t* db, int64_t n, int64_t bytes, const uint8_t* q, uint16_t* out) {
  distances_scalar_body<W>(db, n, bytes, q, out);
}

// Scalar dispatch over the widths that have a fixed-size body: 16-, 32-, 48-, 64-, 128-, 256-bit.
template <bool Popcnt, class Sink>
void scan_scalar(const uint8_t* db, int64_t n, int64_t bytes, const uint8_t* q, int64_t base, Sink& sink) {
#define VTS_SCALAR_CASE(W)                                                          \
  case W:                                                                           \
    if constexpr (Popcnt) return scan_scalar_popcnt<W>(db, n, bytes, q, base, sink); \
    else return scan_scalar_plain<W>(db, n, bytes, q, base, sink);
  switch (bytes) {
    VTS_SCALAR_CASE(2)
    VTS_SCALAR_CASE(4)
    VTS_SCALAR_CASE(6)
    VTS_SCALAR_CASE(8)
    VTS_SCALAR_CASE(16)
    VTS_SCALAR_CASE(32)
    default:
      if constexpr (Popcnt) return scan_scalar_popcnt<0>(db, n, bytes, q, base, sink);
      else return scan_scalar_plain<0>(db, n, bytes, q, base, sink);
  }
#undef VTS_SCALAR_CASE
}

template <bool Popcnt>
void distances_scalar(const uint8_t* db, int64_t n, int64_t bytes, const uint8_t* q, uint16_t* out) {
#define VTS_SCALAR_CASE(W)                                                       \
  case W:                                                                        \
    if constexpr (Popcnt) return distances_scalar_popcnt<W>(db, n, bytes, q, out); \
    else return distances_scalar_plain<W>(db, n, bytes, q, out);
  switch (bytes) {
    VTS_SCALAR_CASE(2)
    VTS_SCALAR_CASE(4)
    VTS_SCALAR_CASE(6)
    VTS_SCALAR_CASE(8)
    VTS_SCALAR_CASE(16)
    VTS_SCALAR_CASE(32)
    default:
      if constexpr (Popcnt) return distances_scalar_popcnt<0>(db, n, bytes, q, out);
      else return distances_scalar_plain<0>(db, n, bytes, q, out);
  }
#undef VTS_SCALAR_CASE
}

#if VTS_INDEX_X86
// GCC 12's intrinsic headers start some AVX-512 results from a deliberately undefined register,
// which -Wuninitialized reports once inlined here; the values are fully written. (Clang knows no
// -Wmaybe-uninitialized and would warn about the pragma itself.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// ---- avx2 --------------------------------------------------------------------------------------
// Per-qword popcount of x: nibble lookup gives per-byte counts, VPSADBW adds each 8 of them.
VTS_TARGET_AVX2 inline __m256i popcnt_epi64_avx2(__m256i x) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2,
                                       2, 3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0f);
  const __m256i lo = _mm256_and_si256(x, low);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low);
  const __m256i cnt = _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
  return _mm256_sad_epu8(cnt, _mm256_setzero_si256());
}

VTS_TARGET_AVX2 inline __m256i xor_popcnt_avx2(const uint8_t* p, __m256i qv) {
  return popcnt_epi64_avx2(_mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), qv));
}

// The query repeated to fill 32 bytes.
template <int W>
VTS_TARGET_AVX2 inline __m256i query_avx2(const uint8_t* q) {
  if constexpr (W < 8) return _mm256_set1_epi64x(static_cast<long long>(load_partial(q, W)));
  if constexpr (W == 8) return _mm256_set1_epi64x(static_cast<long long>(load_u64(q)));
  if constexpr (W == 16) return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
  if constexpr (W == 32) return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
}

// Distances of the 4 codes at p, one per 64-bit lane, in code order.
template <int W>
VTS_TARGET_AVX2 inline __m256i dist4_avx2(const uint8_t* p, __m256i qv) {
  if constexpr (W == 2) {  // 4 codes in 8 bytes, widened to one per 64-bit lane
    const __m256i c = _mm256_cvtepu16_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    return popcnt_epi64_avx2(_mm256_xor_si256(c, qv));
  } else if constexpr (W == 4) {
    const __m256i c = _mm256_cvtepu32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return popcnt_epi64_avx2(_mm256_xor_si256(c, qv));
  } else if constexpr (W == 8) {
    return xor_popcnt_avx2(p, qv);
  } else if constexpr (W == 16) {
    // v0 = codes 0,1 and v1 = codes 2,3 (two words each): adding unpacklo and unpackhi sums each
    // code's two words, in lane order 0,2,1,3, which the permute puts back.
    const __m256i v0 = xor_popcnt_avx2(p, qv), v1 = xor_popcnt_avx2(p + 32, qv);
    const __m256i s = _mm256_add_epi64(_mm256_unpacklo_epi64(v0, v1), _mm256_unpackhi_epi64(v0, v1));
    return _mm256_permute4x64_epi64(s, 0xD8);
  } else {
    static_assert(W == 32);
    // One code per register: pairwise unpack sums give (code, half) partials, the 128-bit lane
    // permutes line the two halves of each code up, one add finishes.
    const __m256i v0 = xor_popcnt_avx2(p, qv), v1 = xor_popcnt_avx2(p + 32, qv);
    const __m256i v2 = xor_popcnt_avx2(p + 64, qv), v3 = xor_popcnt_avx2(p + 96, qv);
    const __m256i s = _mm256_add_epi64(_mm256_unpacklo_epi64(v0, v1), _mm256_unpackhi_epi64(v0, v1));
    const __m256i w = _mm256_add_epi64(_mm256_unpacklo_epi64(v2, v3), _mm256_unpackhi_epi64(v2, v3));
    return _mm256_add_epi64(_mm256_permute2x128_si256(s, w, 0x20), _mm256_permute2x128_si256(s, w, 0x31));
  }
}

// Bit j set when lane j of d is below the bound (signed 64-bit compare; values are small).
VTS_TARGET_AVX2 inline uint32_t below_mask_avx2(__m256i d, __m256i bound) {
  return static_cast<uint32_t>(_mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(bound, d))));
}

template <int W, class Sink>
VTS_TARGET_AVX2 void scan_avx2(const uint8_t* db, int64_t n, const uint8_t* q, int64_t base, Sink& sink) {
  const __m256i qv = query_avx2<W>(q);
  uint32_t bound = sink.bound();
  __m256i bv = _mm256_set1_epi64x(bound);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const uint8_t* p = db + i * W;
    const __m256i d0 = dist4_avx2<W>(p, qv), d1 = dist4_avx2<W>(p + 4 * W, qv);
    const __m256i d2 = dist4_avx2<W>(p + 8 * W, qv), d3 = dist4_avx2<W>(p + 12 * W, qv);
    // bound > d, as signed 64-bit compares (values are small and non-negative).
    const __m256i hit = _mm256_or_si256(_mm256_or_si256(_mm256_cmpgt_epi64(bv, d0), _mm256_cmpgt_epi64(bv, d1)),
                                        _mm256_or_si256(_mm256_cmpgt_epi64(bv, d2), _mm256_cmpgt_epi64(bv, d3)));
    if (!_mm256_testz_si256(hit, hit)) [[unlikely]] {
      // As in scan_avx512: a mask of the hits, distances recomputed in scalar.
      uint32_t hits = below_mask_avx2(d0, bv) | below_mask_avx2(d1, bv) << 4 | below_mask_avx2(d2, bv) << 8 |
                      below_mask_avx2(d3, bv) << 12;
      while (hits) {
        const int j = std::countr_zero(hits);
        hits &= hits - 1;
        const uint32_t d = dist_scalar<W>(p + j * W, q, W);
        if (d < bound) {
          sink.push(d, base + i + j);
          bound = sink.bound();
        }
      }
      bv = _mm256_set1_epi64x(bound);
    }
  }
  scan_scalar_body<W>(db + i * W, n - i, W, q, base + i, sink);
}

template <int W>
VTS_TARGET_AVX2 void distances_avx2(const uint8_t* db, int64_t n, const uint8_t* q, uint16_t* out) {
  const __m256i qv = query_avx2<W>(q);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    alignas(32) uint64_t d[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(d), dist4_avx2<W>(db + i * W, qv));
    for (int j = 0; j < 4; ++j) out[i + j] = static_cast<uint16_t>(d[j]);
  }
  distances_scalar_body<W>(db + i * W, n - i, W, q, out + i);
}

// ---- avx512 ------------------------------------------------------------------------------------
template <int W>
VTS_TARGET_AVX512 inline __m512i query_avx512(const uint8_t* q) {
  if constexpr (W < 8) return _mm512_set1_epi64(static_cast<long long>(load_partial(q, W)));
  if constexpr (W == 8) return _mm512_set1_epi64(static_cast<long long>(load_u64(q)));
  if constexpr (W == 16) return _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
  if constexpr (W == 32) return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)));
}

VTS_TARGET_AVX512 inline __m512i xor_popcnt_avx512(const uint8_t* p, __m512i qv) {
  return _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(p), qv));
}

// Distances of the 8 codes at p, one per 64-bit lane, in code order.
template <int W>
VTS_TARGET_AVX512 inline __m512i dist8_avx512(const uint8_t* p, __m512i qv) {
  if constexpr (W == 2) {  // short codes: widen each to a 64-bit lane (zero-padded like the query)
    const __m512i c = _mm512_cvtepu16_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm512_popcnt_epi64(_mm512_xor_si512(c, qv));
  } else if constexpr (W == 4) {
    const __m512i c = _mm512_cvtepu32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_popcnt_epi64(_mm512_xor_si512(c, qv));
  } else if constexpr (W == 6) {
    // 48-bit codes: 8 codes are 48 bytes (masked load, nothing read past them). Each 128-bit
    // lane of the result holds two codes, i.e. 12 source bytes; a qword permute brings the
    // 16-byte window that contains them into the lane, a byte shuffle spreads them into two
    // zero-padded 64-bit lanes (0x80 writes zero).
    const __m512i raw = _mm512_maskz_loadu_epi8((uint64_t(1) << 48) - 1, p);
    const __m512i win = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 1, 2, 3, 4, 4, 5), raw);
    const __m512i spread = _mm512_shuffle_epi8(
        win, _mm512_set_epi8(
                 // lane 3: window bytes 32..47, codes 6 (36..41 → 4..9) and 7 (42..47 → 10..15)
                 -128, -128, 15, 14, 13, 12, 11, 10, -128, -128, 9, 8, 7, 6, 5, 4,
                 // lane 2: window 24..39, codes 4 (24..29 → 0..5) and 5 (30..35 → 6..11)
                 -128, -128, 11, 10, 9, 8, 7, 6, -128, -128, 5, 4, 3, 2, 1, 0,
                 // lane 1: window 8..23, codes 2 (12..17 → 4..9) and 3 (18..23 → 10..15)
                 -128, -128, 15, 14, 13, 12, 11, 10, -128, -128, 9, 8, 7, 6, 5, 4,
                 // lane 0: window 0..15, codes 0 (0..5) and 1 (6..11)
                 -128, -128, 11, 10, 9, 8, 7, 6, -128, -128, 5, 4, 3, 2, 1, 0));
    return _mm512_popcnt_epi64(_mm512_xor_si512(spread, qv));
  } else if constexpr (W == 8) {
    return xor_popcnt_avx512(p, qv);
  } else if constexpr (W == 16) {
    // c0 = codes 0..3, c1 = codes 4..7; the unpack sums give lane order 0,4,1,5,2,6,3,7.
    const __m512i c0 = xor_popcnt_avx512(p, qv), c1 = xor_popcnt_avx512(p + 64, qv);
    const __m512i s = _mm512_add_epi64(_mm512_unpacklo_epi64(c0, c1), _mm512_unpackhi_epi64(c0, c1));
    return _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), s);
  } else {
    static_assert(W == 32);
    // Two codes per register. Unpack sums pair words within 128-bit lanes; the two 128-bit
    // shuffles line up the lanes that hold the two halves of each code; the result is in lane
    // order 0,2,1,3,4,6,5,7.
    const __m512i c0 = xor_popcnt_avx512(p, qv), c1 = xor_popcnt_avx512(p + 64, qv), c2 = xor_popcnt_avx512(p + 128, qv), c3 = xor_popcnt_avx512(p + 192, qv);
    const __m512i s = _mm512_add_epi64(_mm512_unpacklo_epi64(c0, c1), _mm512_unpackhi_epi64(c0, c1));
    const __m512i w = _mm512_add_epi64(_mm512_unpacklo_epi64(c2, c3), _mm512_unpackhi_epi64(c2, c3));
    const __m512i t = _mm512_add_epi64(_mm512_shuffle_i64x2(s, w, 0x88), _mm512_shuffle_i64x2(s, w, 0xDD));
    return _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 1, 3, 4, 6, 5, 7), t);
  }
}

template <int W, class Sink>
VTS_TARGET_AVX512 void scan_avx512(const uint8_t* db, int64_t n, const uint8_t* q, int64_t base, Sink& sink) {
  const __m512i qv = query_avx512<W>(q);
  uint32_t bound = sink.bound();
  __m512i bv = _mm512_set1_epi64(bound);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const uint8_t* p = db + i * W;
    const __m512i d0 = dist8_avx512<W>(p, qv), d1 = dist8_avx512<W>(p + 8 * W, qv);
    const __m512i d2 = dist8_avx512<W>(p + 16 * W, qv), d3 = dist8_avx512<W>(p + 24 * W, qv);
    // One compare for 32 codes: is the smallest of them below the bound?
    const __m512i m = _mm512_min_epu64(_mm512_min_epu64(d0, d1), _mm512_min_epu64(d2, d3));
    if (_mm512_cmplt_epu64_mask(m, bv)) [[unlikely]] {
      // Which of the 32 passed, as one bit mask; each hit's distance is recomputed in scalar
      // and re-tested, because the bound may drop with every push. (Reading the distances back
      // from the vectors through memory stalls on store-to-load forwarding, and a compress of
      // ready-made keys measured slower on Zen 5 than this branchy loop.)
      uint32_t hits = static_cast<uint32_t>(_mm512_cmplt_epu64_mask(d0, bv)) |
                      static_cast<uint32_t>(_mm512_cmplt_epu64_mask(d1, bv)) << 8 |
                      static_cast<uint32_t>(_mm512_cmplt_epu64_mask(d2, bv)) << 16 |
                      static_cast<uint32_t>(_mm512_cmplt_epu64_mask(d3, bv)) << 24;
      while (hits) {
        const int j = std::countr_zero(hits);
        hits &= hits - 1;
        const uint32_t d = dist_scalar<W>(p + j * W, q, W);
        if (d < bound) {
          sink.push(d, base + i + j);
          bound = sink.bound();
        }
      }
      bv = _mm512_set1_epi64(bound);
    }
  }
  scan_scalar_body<W>(db + i * W, n - i, W, q, base + i, sink);
}

template <int W>
VTS_TARGET_AVX512 void distances_avx512(const uint8_t* db, int64_t n, const uint8_t* q, uint16_t* out) {
  const __m512i qv = query_avx512<W>(q);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm512_cvtepi64_epi16(dist8_avx512<W>(db + i * W, qv)));
  distances_scalar_body<W>(db + i * W, n - i, W, q, out + i);
}

// Long codes of any size (> 32 bytes): 64 bytes per step, the ragged end through a masked load.
VTS_TARGET_AVX512 inline uint32_t dist_wide_avx512(const uint8_t* a, const uint8_t* b, int64_t bytes) {
  __m512i acc = _mm512_setzero_si512();
  int64_t j = 0;
  for (; j + 64 <= bytes; j += 64)
    acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(a + j), _mm512_loadu_si512(b + j))));
  if (j < bytes) {
    const __mmask64 m = (uint64_t(1) << (bytes - j)) - 1;
    acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_maskz_loadu_epi8(m, a + j),
                                                                      _mm512_maskz_loadu_epi8(m, b + j))));
  }
  return static_cast<uint32_t>(_mm512_reduce_add_epi64(acc));
}

template <class Sink>
VTS_TARGET_AVX512 void scan_wide_avx512(const uint8_t* db, int64_t n, int64_t bytes, const uint8_t* q, int64_t base,
                                        Sink& sink) {
  uint32_t bound = sink.bound();
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t d = dist_wide_avx512(db + i * bytes, q, bytes);
    if (d < bound) [[unlikely]] {
      sink.push(d, base + i);
      bound = sink.bound();
    }
  }
}

VTS_TARGET_AVX512 inline void distances_wide_avx512(const uint8_t* db, int64_t n, int64_t bytes, const uint8_t* q,
                                                    uint16_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<uint16_t>(dist_wide_avx512(db + i * bytes, q, bytes));
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif  // VTS_INDEX_X86

// ---- dispatch -----------------------------------------------------------------------------------
// `isa` must already be resolved (never automatic) and supported.
template <class Sink>
void scan(Isa isa, const uint8_t* db, int64_t n, int64_t bytes, const uint8_t* q, int64_t base, Sink& sink) {
#if VTS_INDEX_X86
  if (isa == Isa::avx512) {
    switch (bytes) {
      case 2: return scan_avx512<2>(db, n, q, base, sink);
      case 4: return scan_avx512<4>(db, n, q, base, sink);
      case 6: return scan_avx512<6>(db, n, q, base, sink);
      case 8: return scan_avx512<8>(db, n, q, base, sink);
      case 16: return scan_avx512<16>(db, n, q, base, sink);
      case 32: return scan_avx512<32>(db, n, q, base, sink);
      default:
        if (bytes > 32) return scan_wide_avx512(db, n, bytes, q, base, sink);
        return scan_scalar<true>(db, n, bytes, q, base, sink);
    }
  }
  if (isa == Isa::avx2) {
    switch (bytes) {
      case 2: return scan_avx2<2>(db, n, q, base, sink);
      case 4: return scan_avx2<4>(db, n, q, base, sink);
      case 8: return scan_avx2<8>(db, n, q, base, sink);
      case 16: return scan_avx2<16>(db, n, q, base, sink);
      case 32: return scan_avx2<32>(db, n, q, base, sink);
      default: return scan_scalar<true>(db, n, bytes, q, base, sink);
    }
  }
  if (cpu_features().popcnt) return scan_scalar<true>(db, n, bytes, q, base, sink);
#endif
  (void)isa;
  scan_scalar<false>(db, n, bytes, q, base, sink);
}

inline void distances(Isa isa, const uint8_t* db, int64_t n, int64_t bytes, const uint8_t* q, uint16_t* out) {
#if VTS_INDEX_X86
  if (isa == Isa::avx512) {
    switch (bytes) {
      case 2: return distances_avx512<2>(db, n, q, out);
      case 4: return distances_avx512<4>(db, n, q, out);
      case 6: return distances_avx512<6>(db, n, q, out);
      case 8: return distances_avx512<8>(db, n, q, out);
      case 16: return distances_avx512<16>(db, n, q, out);
      case 32: return distances_avx512<32>(db, n, q, out);
      default:
        if (bytes > 32) return distances_wide_avx512(db, n, bytes, q, out);
        return distances_scalar<true>(db, n, bytes, q, out);
    }
  }
  if (isa == Isa::avx2) {
    switch (bytes) {
      case 2: return distances_avx2<2>(db, n, q, out);
      case 4: return distances_avx2<4>(db, n, q, out);
      case 8: return distances_avx2<8>(db, n, q, out);
      case 16: return distances_avx2<16>(db, n, q, out);
      case 32: return distances_avx2<32>(db, n, q, out);
      default: return distances_scalar<true>(db, n, bytes, q, out);
    }
  }
  if (cpu_features().popcnt) return distances_scalar<true>(db, n, bytes, q, out);
#endif
  (void)isa;
  distances_scalar<false>(db, n, bytes, q, out);
}

}  // namespace detail
}  // namespace vts::index
