#pragma once
// Random packed codes for the index tests, and a brute-force reference that is too simple to be
// wrong: byte-wise popcount, then a stable sort of indices by distance.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "vts/core/rng.hpp"
#include "vts/index/codes.hpp"
#include "vts/index/hamming.hpp"

namespace vts_test {

// Uniform random codes.
inline vts::index::PackedCodes random_codes(vts::Generator& g, int64_t n, int64_t bits) {
  vts::index::PackedCodes c(n, bits);
  for (int64_t i = 0; i < c.size() * c.code_bytes(); ++i) c.data()[i] = static_cast<uint8_t>(g.next_u32());
  return c;
}

// Codes near a few prototypes (0..2 bits flipped): exact duplicates and heavy ties.
inline vts::index::PackedCodes clustered_codes(vts::Generator& g, int64_t n, int64_t bits, int prototypes = 4) {
  const vts::index::PackedCodes protos = random_codes(g, prototypes, bits);
  vts::index::PackedCodes c(n, bits);
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* p = protos.code(static_cast<int64_t>(g.next_below(static_cast<uint64_t>(prototypes))));
    std::copy(p, p + c.code_bytes(), c.code(i));
    const int flips = static_cast<int>(g.next_below(3));
    for (int f = 0; f < flips; ++f) {
      const int64_t b = static_cast<int64_t>(g.next_below(static_cast<uint64_t>(bits)));
      c.code(i)[b / 8] ^= static_cast<uint8_t>(1u << (b % 8));
    }
  }
  return c;
}

inline std::vector<uint32_t> brute_distances(vts::index::CodesView db, const uint8_t* q) {
  std::vector<uint32_t> d(static_cast<size_t>(db.count));
  for (int64_t i = 0; i < db.count; ++i) d[static_cast<size_t>(i)] = vts::index::hamming_distance(db.code(i), q, db.code_bytes());
  return d;
}

// Indices in (distance, index) order.
inline std::vector<int64_t> brute_ranking(vts::index::CodesView db, const uint8_t* q) {
  const auto d = brute_distances(db, q);
  std::vector<int64_t> idx(d.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return d[static_cast<size_t>(a)] < d[static_cast<size_t>(b)]; });
  return idx;
}

// The instruction-set levels this CPU can run (scalar always).
inline std::vector<vts::index::Isa> runnable_isas() {
  std::vector<vts::index::Isa> v{vts::index::Isa::scalar};
  if (vts::index::isa_supported(vts::index::Isa::avx2)) v.push_back(vts::index::Isa::avx2);
  if (vts::index::isa_supported(vts::index::Isa::avx512)) v.push_back(vts::index::Isa::avx512);
  return v;
}

}  // namespace vts_test
