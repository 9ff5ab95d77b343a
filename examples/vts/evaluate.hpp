#pragma once
// TEMPORARY evaluation for `vts train` until vts::eval lands: mAP (spec §4.3, ranking by Hamming
// distance with ties in database order), P@k, precision within radius 2, PR by number retrieved.
#include <cstdint>
#include <vector>

#include "vts/backend/cpu/parallel.hpp"

namespace vts::eval {

struct PrCurve {
  std::vector<int64_t> retrieved;
  std::vector<double> precision, recall;
};
struct Report {
  double map = 0, precision_at_100 = 0, precision_at_1000 = 0, precision_radius2 = 0;
  PrCurve pr;
};

inline Report evaluate(const std::vector<int8_t>& q, const std::vector<int8_t>& db, const std::vector<float>& ql,
                       const std::vector<float>& dbl, int64_t K, int64_t C, int64_t topk) {
  const int64_t nq = static_cast<int64_t>(q.size()) / K, nd = static_cast<int64_t>(db.size()) / K;
  const int64_t k = topk < 0 ? nd : std::min(topk, nd);
  std::vector<double> ap(static_cast<size_t>(nq)), p100(static_cast<size_t>(nq)), p1000(static_cast<size_t>(nq)),
      pr2(static_cast<size_t>(nq));
  cpu::parallel_for(0, nq, 1, [&](int64_t b, int64_t e) {
    std::vector<int32_t> dist(static_cast<size_t>(nd));
    std::vector<int64_t> order(static_cast<size_t>(nd));
    std::vector<int64_t> count(static_cast<size_t>(2 * K + 2));
    for (int64_t i = b; i < e; ++i) {
      std::fill(count.begin(), count.end(), 0);
      for (int64_t j = 0; j < nd; ++j) {
        int32_t dot = 0;
        for (int64_t t = 0; t < K; ++t) dot += q[static_cast<size_t>(i * K + t)] * db[static_cast<size_t>(j * K + t)];
        const int32_t d2 = static_cast<int32_t>(K) - dot;  // 2 × Hamming distance
        dist[static_cast<size_t>(j)] = d2;
        ++count[static_cast<size_t>(d2 + 1)];
      }
      for (size_t t = 1; t < count.size(); ++t) count[t] += count[t - 1];
      for (int64_t j = 0; j < nd; ++j) order[static_cast<size_t>(count[static_cast<size_t>(dist[static_cast<size_t>(j)])]++)] = j;
      double sum = 0;
      int64_t rel = 0, in_r2 = 0, rel_r2 = 0;
      for (int64_t r = 0; r < nd; ++r) {
        const int64_t j = order[static_cast<size_t>(r)];
        bool relevant = false;
        for (int64_t c = 0; c < C && !relevant; ++c)
          relevant = ql[static_cast<size_t>(i * C + c)] > 0 && dbl[static_cast<size_t>(j * C + c)] > 0;
        if (r < k && relevant) sum += static_cast<double>(++rel) / static_cast<double>(r + 1);
        if (r == 99) p100[static_cast<size_t>(i)] = static_cast<double>(rel) / 100.0;
        if (r == 999) p1000[static_cast<size_t>(i)] = static_cast<double>(rel) / 1000.0;
        if (dist[static_cast<size_t>(j)] <= 4) {
          ++in_r2;
          rel_r2 += relevant;
        }
      }
      ap[static_cast<size_t>(i)] = rel ? sum / static_cast<double>(rel) : 0.0;
      pr2[static_cast<size_t>(i)] = in_r2 ? static_cast<double>(rel_r2) / static_cast<double>(in_r2) : 0.0;
    }
  });
  Report r;
  for (int64_t i = 0; i < nq; ++i) {
    r.map += ap[static_cast<size_t>(i)] / static_cast<double>(nq);
    r.precision_at_100 += p100[static_cast<size_t>(i)] / static_cast<double>(nq);
    r.precision_at_1000 += p1000[static_cast<size_t>(i)] / static_cast<double>(nq);
    r.precision_radius2 += pr2[static_cast<size_t>(i)] / static_cast<double>(nq);
  }
  return r;
}

}  // namespace vts::eval
