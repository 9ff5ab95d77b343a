// vts::crc32 (core/crc32.hpp) against zlib's crc32_z, which defines the values: a model's
// identity in existing index files was computed with zlib, so the folded path must give the same
// 32 bits for every length, alignment and starting value, and continue a CRC as zlib does.
#include <catch2/catch.hpp>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <random>
#include <vector>

#include "vts/core/crc32.hpp"

namespace {

uint32_t zlib_crc(uint32_t crc, const unsigned char* p, size_t n) {
  return static_cast<uint32_t>(crc32_z(crc, p, static_cast<z_size_t>(n)));
}

std::vector<unsigned char> random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<unsigned char> b(n);
  for (auto& c : b) c = static_cast<unsigned char>(g());
  return b;
}

}  // namespace

TEST_CASE("crc32: the standard check value, and an empty buffer leaves the CRC as it was", "[crc32]") {
  CHECK(vts::crc32(0, "123456789", 9) == 0xCBF43926u);
  CHECK(vts::crc32(0, nullptr, 0) == 0u);
  // zlib answers 0 for a null pointer (its idiom for the starting value); an empty vector's data()
  // may be null, and that must not restart the CRC.
  CHECK(vts::crc32(0x12345678u, nullptr, 0) == 0x12345678u);
  const std::vector<unsigned char> none;
  CHECK(vts::crc32(0xCBF43926u, none.data(), none.size()) == 0xCBF43926u);
  // 1,000 'a's (past the folding threshold): the value zlib (and Python's zlib.crc32) gives.
  const std::vector<unsigned char> a(1000, 'a');
  CHECK(vts::crc32(0, a.data(), a.size()) == zlib_crc(0, a.data(), a.size()));
}

TEST_CASE("crc32: the folding multipliers are the published ones for this polynomial", "[crc32]") {
  // Intel's white paper on CRC folding with PCLMULQDQ lists, for the reflected CRC-32, x^n mod P
  // bit-reflected and shifted left once; ours are the same residues.
  CHECK((uint64_t{vts::detail::crc32_x_pow_mod(4 * 128 + 32)} << 1) == 0x154442bd4u);
  CHECK((uint64_t{vts::detail::crc32_x_pow_mod(4 * 128 - 32)} << 1) == 0x1c6e41596u);
  CHECK((uint64_t{vts::detail::crc32_x_pow_mod(128 + 32)} << 1) == 0x1751997d0u);
  CHECK((uint64_t{vts::detail::crc32_x_pow_mod(128 - 32)} << 1) == 0x0ccaa009eu);
  CHECK(vts::detail::crc32_x_pow_mod(0) == 0x80000000u);
  CHECK(vts::detail::crc32_x_pow_mod(32) == 0xEDB88320u);  // x^32 ≡ P − x^32
}

TEST_CASE("crc32: zlib's value at every length to 1,100 bytes, every alignment, any starting CRC", "[crc32]") {
  const std::vector<unsigned char> bytes = random_bytes(1200, 5);
  std::mt19937 g(11);
  size_t compared = 0, folded = 0;
  for (size_t offset = 0; offset < 16; ++offset)
    for (size_t n = 0; n <= 1100; ++n) {
      const uint32_t start = n % 4 == 0 ? 0u : static_cast<uint32_t>(g());
      const unsigned char* p = bytes.data() + offset;
      const uint32_t want = zlib_crc(start, p, n);
      if (vts::crc32(start, p, n) != want)
        FAIL("vts::crc32 differs from zlib at offset " << offset << ", length " << n);
#if defined(VTS_CRC32_PCLMUL)
      // The folded path itself, also below the size crc32 hands it over at.
      if (n >= 64 && vts::detail::crc32_can_fold()) {
        if (vts::detail::crc32_folded(start, p, n) != want)
          FAIL("the folded CRC differs from zlib at offset " << offset << ", length " << n);
        ++folded;
      }
#endif
      ++compared;
    }
  CHECK(compared == 16 * 1101);
#if defined(VTS_CRC32_PCLMUL)
  if (vts::detail::crc32_can_fold()) CHECK(folded == 16 * (1101 - 64));
#endif
}

TEST_CASE("crc32: a large buffer, whole or continued in uneven pieces, gives zlib's value", "[crc32]") {
  const std::vector<unsigned char> bytes = random_bytes((3 << 20) + 13, 7);
  const uint32_t want = zlib_crc(0, bytes.data(), bytes.size());
  CHECK(vts::crc32(0, bytes.data(), bytes.size()) == want);
  // Pieces of every kind: under 16, under the threshold, odd, large.
  const size_t pieces[] = {1, 7, 63, 64, 65, 255, 256, 257, 1000, 4099, 65536 + 3, 1 << 20};
  uint32_t crc = 0;
  size_t at = 0;
  for (size_t i = 0; at < bytes.size(); ++i) {
    const size_t n = std::min(pieces[i % std::size(pieces)], bytes.size() - at);
    crc = vts::crc32(crc, bytes.data() + at, n);
    at += n;
  }
  CHECK(crc == want);
  // A buffer of zeros (the folding's registers start at the CRC alone) and of ones.
  const std::vector<unsigned char> zeros(100000, 0), ones(100000, 0xFF);
  CHECK(vts::crc32(0, zeros.data(), zeros.size()) == zlib_crc(0, zeros.data(), zeros.size()));
  CHECK(vts::crc32(0xFFFFFFFFu, ones.data(), ones.size()) == zlib_crc(0xFFFFFFFFu, ones.data(), ones.size()));
}

TEST_CASE("crc32: crc32_parallel joins its threads' parts into crc32's value", "[crc32]") {
  const std::vector<unsigned char> bytes = random_bytes((1 << 20) + 77, 9);
  const uint32_t start = 0x9E3779B9u;
  // Four threads, so there are several parts on any machine; the count is restored at the end.
  const int threads_before = vts::cpu::max_threads();
  vts::cpu::set_num_threads(4);
  // Parts of at least 1 byte, 1,000 bytes and 100 KB (several parts on two or more threads, the
  // last one longer), and the default (one part: the calling thread alone).
  for (const size_t min_part : {size_t(1), size_t(1000), size_t(100000), size_t(8) << 20})
    for (const size_t n : {size_t(0), size_t(1), size_t(2999), bytes.size()}) {
      INFO("min_part " << min_part << ", " << n << " bytes");
      CHECK(vts::crc32_parallel(start, bytes.data(), n, min_part) == zlib_crc(start, bytes.data(), n));
    }
  vts::cpu::set_num_threads(threads_before);
}
