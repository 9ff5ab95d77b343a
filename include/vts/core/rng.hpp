#pragma once
// One counter-based generator (Philox4x32-10) for everything random: initialisation, dropout
// masks, shuffles, splits and hash centers. A value depends only on (seed, counter), so a parallel
// loop draws the same numbers whatever the thread count, and the state is two integers that a
// checkpoint can store.
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

namespace vts {

struct Philox {
  using Block = std::array<uint32_t, 4>;
  // Philox4x32-10's constants: the two round multipliers and the key schedule's Weyl increments.
  static constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  static constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  static constexpr int kRounds = 10;
  // The ten rounds, in place on the counter words (c0..c3) with key (k0, k1). Shared by the scalar
  // generator below and the vectorised mask kernels, which keep the words in registers.
  static void rounds(uint32_t& c0, uint32_t& c1, uint32_t& c2, uint32_t& c3, uint32_t k0, uint32_t k1) {
    for (int round = 0; round < kRounds; ++round) {
      const uint64_t p0 = uint64_t(kMul0) * c0;
      const uint64_t p1 = uint64_t(kMul1) * c2;
      const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
      const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
      c1 = static_cast<uint32_t>(p1);
      c3 = static_cast<uint32_t>(p0);
      c0 = n0;
      c2 = n2;
      k0 += kWeyl0;
      k1 += kWeyl1;
    }
  }
  static Block generate(uint64_t seed, uint64_t counter_hi, uint64_t counter_lo) {
    uint32_t c0 = static_cast<uint32_t>(counter_lo), c1 = static_cast<uint32_t>(counter_lo >> 32);
    uint32_t c2 = static_cast<uint32_t>(counter_hi), c3 = static_cast<uint32_t>(counter_hi >> 32);
    rounds(c0, c1, c2, c3, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
    return {c0, c1, c2, c3};
  }
  // 24 high bits → float in [0, 1).
  static float to_unit_float(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }
  static double to_unit_double(uint32_t hi, uint32_t lo) {
    const uint64_t v = (static_cast<uint64_t>(hi) << 21) ^ (lo >> 11);
    return static_cast<double>(v & ((uint64_t(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
  }
};

// A stream of random numbers: `seed` picks the stream, `offset` counts the 128-bit blocks used.
// Bulk draws (`uniform`, `normal`, `bernoulli_mask`) reserve a contiguous counter range and fill it
// in parallel-safe fashion: element i uses block offset + i/4, lane i%4.
//
// Threads: draws may come from several threads at once (the default generator is shared by every
// thread that does not pass its own): each reserve() takes its range with one atomic fetch_add, so
// concurrent draws get disjoint ranges and none is lost. Which thread gets which range then depends
// on timing, so for reproducible results give each thread a Generator of its own. Reseeding
// (set_state, manual_seed) and copying are not atomic with respect to draws: do them while no
// other thread draws from this generator.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5EEDull, uint64_t offset = 0) : seed_(seed), offset_(offset) {}
  // A copy is a snapshot of (seed, offset) that then draws on its own (std::atomic itself does
  // not copy).
  Generator(const Generator& other) : seed_(other.seed_), offset_(other.offset()) {}
  Generator& operator=(const Generator& other) {
    set_state(other.seed_, other.offset());
    return *this;
  }

  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_.load(std::memory_order_relaxed); }
  void set_state(uint64_t seed, uint64_t offset) {
    seed_ = seed;
    offset_.store(offset, std::memory_order_relaxed);
  }

  // Reserve n 32-bit values; returns the first block index. Callers compute values with `bits_at`.
  // Relaxed order is enough: the counter only has to hand out each block once; the values are a
  // function of (seed, block) and publish nothing else. The atomic add costs about 12 ns per call,
  // which shows only where scalar draws come by the million: permutation(1'000'000) took 26 ms
  // instead of 14 (2-core Xeon, -O3); a loader's shuffle of 5,000 items, 60 µs an epoch.
  uint64_t reserve(uint64_t n_values) { return offset_.fetch_add((n_values + 3) / 4, std::memory_order_relaxed); }
  uint32_t bits_at(uint64_t first_block, uint64_t i) const {
    return Philox::generate(seed_, 0, first_block + i / 4)[i % 4];
  }

  uint32_t next_u32() { return bits_at(reserve(1), 0); }
  uint64_t next_u64() {
    const uint64_t b = reserve(2);
    return (static_cast<uint64_t>(bits_at(b, 0)) << 32) | bits_at(b, 1);
  }
  // Uniform integer in [0, n) without modulo bias (Lemire's multiply-and-reject).
  uint64_t next_below(uint64_t n) {
    if (n <= 1) return 0;
    for (;;) {
      const uint64_t x = next_u64();
      __extension__ using u128 = unsigned __int128;  // __extension__: no -Wpedantic error in users' builds
      const u128 m = static_cast<u128>(x) * n;
      const uint64_t low = static_cast<uint64_t>(m);
      if (low >= (-n) % n) return static_cast<uint64_t>(m >> 64);
    }
  }
  double next_double() {
    const uint64_t b = reserve(2);
    return Philox::to_unit_double(bits_at(b, 0), bits_at(b, 1));
  }
  // Standard normal by Box-Muller on two uniforms.
  double next_normal() {
    const double u1 = 1.0 - next_double(), u2 = next_double();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }

  template <class It>
  void shuffle(It first, It last) {
    const auto n = static_cast<uint64_t>(last - first);
    for (uint64_t i = n; i > 1; --i) {
      const uint64_t j = next_below(i);
      std::swap(first[i - 1], first[j]);
    }
  }
  std::vector<int64_t> permutation(int64_t n) {
    std::vector<int64_t> p(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = i;
    shuffle(p.begin(), p.end());
    return p;
  }

 private:
  uint64_t seed_;
  std::atomic<uint64_t> offset_;
};

// The generator used when a call does not pass one (initialisers, dropout, nn::Context's default).
// Seed it once at program start, before other threads draw from it.
inline Generator& default_generator() {
  static Generator g;
  return g;
}
inline void manual_seed(uint64_t seed) { default_generator().set_state(seed, 0); }

}  // namespace vts
