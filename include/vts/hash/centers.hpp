#pragma once
// Hash centers (CSQ) and polarization targets (DPN), hashing-spec §2.5 and §2.6, and the map
// from a label row to its center. Centers are ±1 rows stored as [C, K].
#include <bit>
#include <cstdint>
#include <limits>
#include <vector>

#include "vts/core/error.hpp"
#include "vts/core/rng.hpp"

namespace vts::hash {

using CenterMatrix = std::vector<std::vector<float>>;  // C rows of K values in {−1, +1}

// Sylvester Hadamard matrix of order K: entry (i, j) = (−1)^popcount(i AND j); row 0 is all ones.
inline CenterMatrix hadamard(int64_t K) {
  VTS_CHECK(K > 0 && std::has_single_bit(static_cast<uint64_t>(K)),
            "hadamard: the code length must be a power of two (CSQ's centers need it), got ", K);
  CenterMatrix h(static_cast<size_t>(K), std::vector<float>(static_cast<size_t>(K)));
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = 0; j < K; ++j)
      h[static_cast<size_t>(i)][static_cast<size_t>(j)] =
          (std::popcount(static_cast<uint64_t>(i & j)) & 1) ? -1.0f : 1.0f;
  return h;
}

// A row of K ones with exactly `negatives` distinct positions set to −1 (Python's random.sample).
inline std::vector<float> balanced_random_row(int64_t K, int64_t negatives, Generator& gen) {
  std::vector<float> row(static_cast<size_t>(K), 1.0f);
  std::vector<int64_t> positions = gen.permutation(K);
  for (int64_t i = 0; i < negatives; ++i) row[static_cast<size_t>(positions[static_cast<size_t>(i)])] = -1.0f;
  return row;
}

inline int64_t hamming(const std::vector<float>& a, const std::vector<float>& b) {
  int64_t d = 0;
  for (size_t i = 0; i < a.size(); ++i) d += a[i] != b[i];
  return d;
}

// CSQ "Algorithm 1": rows of [H_K; −H_K]; beyond 2K classes, balanced random rows, redrawn up to
// 20 times until min pairwise distance > K/4 and mean ≥ K/2 (the last draw is kept otherwise).
inline CenterMatrix csq_centers(int64_t classes, int64_t K, Generator& gen) {
  const CenterMatrix h = hadamard(K);
  CenterMatrix centers;
  for (int64_t i = 0; i < std::min<int64_t>(classes, 2 * K); ++i) {
    std::vector<float> row = h[static_cast<size_t>(i % K)];
    if (i >= K)
      for (float& v : row) v = -v;
    centers.push_back(row);
  }
  if (classes <= 2 * K) return centers;
  const size_t fixed = centers.size();
  for (int attempt = 0; attempt < 20; ++attempt) {
    centers.resize(fixed);
    for (int64_t i = 2 * K; i < classes; ++i) centers.push_back(balanced_random_row(K, K / 2, gen));
    int64_t min_d = std::numeric_limits<int64_t>::max(), pairs = 0;
    double sum_d = 0;
    for (size_t a = 0; a < centers.size(); ++a)
      for (size_t b = a + 1; b < centers.size(); ++b) {
        const int64_t d = hamming(centers[a], centers[b]);
        min_d = std::min(min_d, d);
        sum_d += static_cast<double>(d);
        ++pairs;
      }
    if (min_d > K / 4 && sum_d / static_cast<double>(pairs) >= static_cast<double>(K) / 2) break;
  }
  return centers;
}

// DPN targets: C balanced random rows with ⌊K·p⌋ minus ones, regenerated 20 times, last kept.
inline CenterMatrix dpn_targets(int64_t classes, int64_t K, double p, Generator& gen) {
  CenterMatrix targets;
  for (int round = 0; round < 20; ++round) {
    targets.clear();
    for (int64_t c = 0; c < classes; ++c)
      targets.push_back(balanced_random_row(K, static_cast<int64_t>(static_cast<double>(K) * p), gen));
  }
  return targets;
}

// The first maximal index of a label row (argmax); an all-zero row gives class 0.
inline int64_t first_argmax(const float* label, int64_t C) {
  int64_t best = 0;
  for (int64_t c = 1; c < C; ++c)
    if (label[c] > label[best]) best = c;
  return best;
}

// Maps label rows [B, C] to centers [B, K].
//   single-label: the center of the row's argmax class; a soft row (some value strictly between 0
//   and 1, as mixup makes) gets the label-weighted mean of the centers instead, not a sign;
//   multi-label: sign of the sum of the member classes' centers, where a zero sum at bit k is
//   replaced by tie_bits[k] ∈ {0, 1} (one fixed random vector) and then c = +1 iff the sum > 0.
class CenterAssigner {
 public:
  CenterAssigner() = default;
  CenterAssigner(CenterMatrix centers, bool multi_label, Generator& gen)
      : centers_(std::move(centers)), multi_label_(multi_label) {
    const size_t K = centers_.empty() ? 0 : centers_[0].size();
    tie_bits_.resize(K);
    for (auto& b : tie_bits_) b = static_cast<float>(gen.next_u32() & 1u);
  }
  int64_t bits() const { return centers_.empty() ? 0 : static_cast<int64_t>(centers_[0].size()); }
  int64_t classes() const { return static_cast<int64_t>(centers_.size()); }
  const CenterMatrix& centers() const { return centers_; }
  CenterMatrix& centers() { return centers_; }
  bool multi_label() const { return multi_label_; }
  const std::vector<float>& tie_bits() const { return tie_bits_; }

  // Replace the random parts with known values (tests against another implementation's draws,
  // or restoring a run). Centers must keep the [C, K] shape and hold only −1, 0 or +1 (DPN-A
  // targets can be 0); tie bits are K values in {0, 1}.
  void set_centers(CenterMatrix centers) {
    VTS_CHECK(static_cast<int64_t>(centers.size()) == classes(), "centers: expected ", classes(), " rows of ", bits(),
              " values, got ", centers.size(), " rows");
    for (size_t c = 0; c < centers.size(); ++c) {
      VTS_CHECK(static_cast<int64_t>(centers[c].size()) == bits(), "centers: expected [", classes(), ", ", bits(),
                "], row ", c, " has ", centers[c].size(), " values");
      for (float v : centers[c])
        VTS_CHECK(v == -1.0f || v == 0.0f || v == 1.0f, "centers: row ", c, " holds ", v,
                  "; entries must be -1, 0 or 1");
    }
    centers_ = std::move(centers);
  }
  void set_tie_bits(std::vector<float> bits_01) {
    VTS_CHECK(static_cast<int64_t>(bits_01.size()) == bits(), "tie bits: expected ", bits(), " values, got ",
              bits_01.size());
    for (float v : bits_01) VTS_CHECK(v == 0.0f || v == 1.0f, "tie bits must be 0 or 1, got ", v);
    tie_bits_ = std::move(bits_01);
  }

  std::vector<float> assign(const std::vector<float>& labels, int64_t B) const {
    const int64_t C = classes(), K = bits();
    VTS_CHECK(static_cast<int64_t>(labels.size()) == B * C, "centers: ", labels.size(), " label values for ", B,
              " rows of ", C, " classes");
    std::vector<float> out(static_cast<size_t>(B * K));
    for (int64_t i = 0; i < B; ++i) {
      const float* y = labels.data() + i * C;
      float* dst = out.data() + i * K;
      if (!multi_label_) {
        if (is_soft_row(y, C)) {  // a mixed row (mixup): the label-weighted mean of the centers
          float total = 0;
          for (int64_t c = 0; c < C; ++c) total += y[c];
          std::fill(dst, dst + K, 0.0f);
          for (int64_t c = 0; c < C; ++c)
            if (y[c] != 0)
              for (int64_t k = 0; k < K; ++k) dst[k] += y[c] / total * centers_[static_cast<size_t>(c)][static_cast<size_t>(k)];
          continue;
        }
        const auto& c = centers_[static_cast<size_t>(first_argmax(y, C))];
        std::copy(c.begin(), c.end(), dst);
        continue;
      }
      for (int64_t k = 0; k < K; ++k) {
        float z = 0;
        for (int64_t c = 0; c < C; ++c) z += y[c] * centers_[static_cast<size_t>(c)][static_cast<size_t>(k)];
        if (z == 0) z = tie_bits_[static_cast<size_t>(k)];
        dst[k] = z > 0 ? 1.0f : -1.0f;
      }
    }
    return out;
  }

 private:
  // Single-label rows are one-hot; a row with a value strictly between 0 and 1 is a mixture.
  static bool is_soft_row(const float* y, int64_t C) {
    for (int64_t c = 0; c < C; ++c)
      if (y[c] > 0.0f && y[c] < 1.0f) return true;
    return false;
  }

  CenterMatrix centers_;
  bool multi_label_ = false;
  std::vector<float> tie_bits_;
};

}  // namespace vts::hash
