#pragma once
// Retrieval metrics over packed hash codes: mAP@k, the precision-recall curve, P@k and precision
// within a Hamming radius, with the semantics of hashing-spec §4 (DeepHash-pytorch's
// utils/tools.py), except where noted.
//
//  * Codes: sign of the model outputs, packed (index/codes.hpp). sign(0) = 0 packs as −1.
//  * Relevance: a database item is relevant to a query when they share at least one class
//    (multi-hot AND ≠ 0), for single- and multi-label data alike.
//  * Ranking: ascending Hamming distance, ties by ascending database index, i.e. a stable argsort
//    (index::Ranker, a counting sort). The reference uses numpy's unstable default argsort, so its
//    tie order is arbitrary; expect differences in the 3rd–4th decimal against its logs.
//  * mAP@k (§4.3): for each query, over the first k ranked items: R = relevant items among them;
//    AP = (1/R) Σ_r r / pos_r (pos_r = 1-based rank of the r-th relevant item) or 0 if R = 0;
//    mAP = mean over all queries, zero-AP queries included. The normaliser is R, the relevant
//    items *retrieved*, as in the reference.
//    topk = −1: the reference slices gnd[0:-1], i.e. every item but the last; that quirk is the
//    default (TopkAll::all_but_last) so numbers match its logs; TopkAll::all takes every item.
//    topk > n is clamped to n (numpy slicing); 0 and other negative values are rejected.
//  * PR curve (§4.4): only queries with R > 0 in the top k (same k as mAP) take part; for them,
//    over the whole ranking, P(n) = (relevant in first n) / n and R(n) = (relevant in first n) /
//    (all relevant); the curve is the mean over those queries, one point per n = 1..n_db.
//    pr_curve_reference_points picks what the reference saves (0-based indices 99, 199, …,
//    100·⌊n_db/100⌋ − 1, then every index after that); subsample_pr_curve thins for plots. With no
//    qualifying query the curve is NaN (the reference's mean of nothing).
//  * P@k (§4.5's definition): (relevant in the first k) / k, k clamped to n_db, averaged over *all*
//    queries (a query with no relevant item counts 0). §4.4's curve instead averages only
//    qualifying queries; its P at index k−1 is what the reference logs quote as "P@k".
//  * Precision within Hamming radius r (not in the reference; the usual "P@H≤2"): per query,
//    relevant / retrieved among items at distance ≤ r; a query that retrieves nothing scores 0;
//    averaged over all queries. The fraction of queries that retrieved something is reported too.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "vts/backend/cpu/parallel.hpp"
#include "vts/core/error.hpp"
#include "vts/index/codes.hpp"
#include "vts/index/labels.hpp"
#include "vts/index/search.hpp"

namespace vts::eval {

using index::CodesView;
using index::LabelsView;

// What topk = −1 means.
enum class TopkAll { all_but_last, all };

struct EvalOptions {
  int64_t topk = -1;                          // mAP cut-off (and PR qualification), −1 = see minus_one
  TopkAll minus_one = TopkAll::all_but_last;  // the reference's quirk by default
  bool pr_curve = false;                      // compute the full §4.4 curve
  std::vector<int64_t> precision_at;          // P@k for each of these k (> 0)
  int64_t radius = -1;                        // >= 0: precision within this Hamming radius
  index::SearchOptions search;                // kernel level and threads
};

// One point per entry: precision and recall after index[i] + 1 items are retrieved.
struct PrCurve {
  std::vector<int64_t> index;
  std::vector<double> precision;
  std::vector<double> recall;
  int64_t queries_averaged = 0;
};

struct RadiusPrecision {
  double precision = 0;          // mean over all queries, 0 for a query with nothing in the radius
  double queries_with_hits = 0;  // fraction of queries with at least one item in the radius
  double mean_retrieved = 0;     // mean number of items in the radius
};

struct EvalResult {
  double map = 0;
  int64_t topk = 0;                        // the effective cut-off used
  std::vector<double> average_precision;   // per query
  PrCurve pr;                              // when EvalOptions::pr_curve
  std::vector<double> precision_at;        // aligned with EvalOptions::precision_at
  RadiusPrecision radius;                  // when EvalOptions::radius >= 0
};

// The number of ranked items mAP looks at for a database of n items.
inline int64_t effective_topk(int64_t topk, TopkAll minus_one, int64_t n) {
  if (topk == -1) return minus_one == TopkAll::all_but_last ? std::max<int64_t>(n - 1, 0) : n;
  // topk = 0 would look at no item and score every query 0: a plausible-looking mAP of 0 rather
  // than an error for what is usually a "0 = default" convention carried over from a CLI.
  if (topk <= 0)
    throw Error(vts::detail::concat("mAP: expected topk > 0 or -1, found ", topk));
  return std::min(topk, n);
}

namespace detail {

inline void check_inputs(CodesView q, LabelsView ql, CodesView db, LabelsView dl, const char* where) {
  if (q.bits != db.bits)
    throw Error(vts::detail::concat(where, ": expected query codes of the database's K = ", db.bits, " bits, found K = ", q.bits));
  if (ql.count != q.count || dl.count != db.count)
    throw Error(vts::detail::concat(where, ": expected one label row per code: queries ", q.count, " codes / ", ql.count,
                                    " labels, database ", db.count, " codes / ", dl.count, " labels"));
  if (ql.classes != dl.classes || ql.classes <= 0)
    throw Error(vts::detail::concat(where, ": expected query and database labels over the same classes, found ", ql.classes,
                                    " and ", dl.classes));
  VTS_CHECK(db.count < (int64_t(1) << 31), where, ": at most 2^31 - 1 database items, found ", db.count);
  // A mean over no query, or a ranking of no item, has no value: the reference's np.mean([]) is
  // NaN, and a 0 in its place would read as a model that retrieves nothing.
  if (q.count == 0 || db.count == 0)
    throw Error(vts::detail::concat(where, ": expected at least one query and one database item, found ", q.count,
                                    " queries and ", db.count, " database items"));
}

// rel[i] = does database item i share a class with the query (sequential over the labels).
inline void relevance_by_index(const uint64_t* qwords, LabelsView dl, uint8_t* rel) {
  const int64_t w = dl.words_per_item(), n = dl.count;
  if (w == 1) {  // up to 64 classes: one AND per item, vectorised by the compiler
    const uint64_t qw = qwords[0];
    for (int64_t i = 0; i < n; ++i) rel[i] = (dl.words[i] & qw) != 0;
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t* d = dl.words + i * w;
    uint64_t any = 0;
    for (int64_t t = 0; t < w; ++t) any |= d[t] & qwords[t];
    rel[i] = any != 0;
  }
}

// Σ over relevant ranks j < m of (relevant so far) / (j + 1), and how many there were. `rel` holds
// 0/1 bytes; eight are tested at once and only the set ones are visited (about 1 in C).
inline void ap_sums(const uint8_t* rel, int64_t m, int64_t& found, double& sum) {
  int64_t j = 0;
  for (; j + 8 <= m; j += 8) {
    uint64_t w;
    std::memcpy(&w, rel + j, 8);
    while (w) {
      const int64_t pos = j + (std::countr_zero(w) >> 3);
      sum += static_cast<double>(++found) / static_cast<double>(pos + 1);
      w &= w - 1;
    }
  }
  for (; j < m; ++j)
    if (rel[j]) sum += static_cast<double>(++found) / static_cast<double>(j + 1);
}

// Number of relevant ranks among the first m.
inline int64_t count_relevant(const uint8_t* rel, int64_t m) {
  int64_t c = 0;
  for (int64_t j = 0; j < m; ++j) c += rel[j];
  return c;
}

}  // namespace detail

// Everything in one pass over one ranking per query (each query is ranked once, whatever is asked).
inline EvalResult evaluate(CodesView queries, LabelsView query_labels, CodesView db, LabelsView db_labels,
                           const EvalOptions& opt = {}) {
  detail::check_inputs(queries, query_labels, db, db_labels, "evaluate");
  index::check_code_bits(db.bits, "evaluate");
  for (int64_t k : opt.precision_at) VTS_CHECK(k > 0, "evaluate: expected P@k cut-offs > 0, found ", k);
  const int64_t nq = queries.count, n = db.count;
  const int64_t kk = effective_topk(opt.topk, opt.minus_one, n);
  const int threads = index::detail::resolve_threads(opt.search.threads);
  const index::Isa isa = index::resolve_isa(opt.search.isa);

  EvalResult res;
  res.topk = kk;
  res.average_precision.assign(static_cast<size_t>(nq), 0.0);
  std::vector<std::vector<int64_t>> hits_at(static_cast<size_t>(nq));  // relevant in first k, per P@k
  std::vector<int64_t> radius_hits(static_cast<size_t>(nq), 0), radius_retrieved(static_cast<size_t>(nq), 0);
  // Per-thread PR sums: Σ_q relevant-in-first-(j+1) (exact integers) and Σ_q of that / total_q.
  std::vector<std::vector<int64_t>> pr_count(opt.pr_curve ? threads : 0);
  std::vector<std::vector<double>> pr_recall(opt.pr_curve ? threads : 0);
  std::vector<int64_t> pr_queries(static_cast<size_t>(threads), 0);

#pragma omp parallel num_threads(threads) if (threads > 1 && nq > 1)
  {
    const int tid = index::detail::thread_index();
    index::Ranker ranker(db, isa);
    // Relevance by database index, then the same flags in rank order: every metric here is a
    // function of that 0/1 sequence (and of where each distance starts, for the radius).
    std::vector<uint8_t> rel_index(static_cast<size_t>(n)), rel(static_cast<size_t>(n));
    if (opt.pr_curve) {
      pr_count[static_cast<size_t>(tid)].assign(static_cast<size_t>(n), 0);
      pr_recall[static_cast<size_t>(tid)].assign(static_cast<size_t>(n), 0.0);
    }
    // Static schedule: every query costs the same, and a fixed split keeps the PR sums'
    // floating-point order fixed for a given thread count.
#pragma omp for schedule(static)
    for (int64_t q = 0; q < nq; ++q) {
      detail::relevance_by_index(query_labels.item(q), db_labels, rel_index.data());
      ranker.rank_payload(queries.code(q), rel_index.data(), rel.data());
      const uint8_t* r = rel.data();

      int64_t found = 0;
      double sum = 0;
      detail::ap_sums(r, kk, found, sum);
      res.average_precision[static_cast<size_t>(q)] = found > 0 ? sum / static_cast<double>(found) : 0.0;

      if (!opt.precision_at.empty()) {
        std::vector<int64_t>& h = hits_at[static_cast<size_t>(q)];
        for (int64_t k : opt.precision_at) h.push_back(detail::count_relevant(r, std::min(k, n)));
      }
      if (opt.radius >= 0) {
        // Items within the radius are exactly the first starts[r + 1] ranks.
        const int64_t m = ranker.starts()[static_cast<size_t>(std::min<int64_t>(opt.radius, db.bits) + 1)];
        radius_hits[static_cast<size_t>(q)] = detail::count_relevant(r, m);
        radius_retrieved[static_cast<size_t>(q)] = m;
      }
      if (opt.pr_curve && found > 0) {
        const double inv_total = 1.0 / static_cast<double>(detail::count_relevant(r, n));
        int64_t* pc = pr_count[static_cast<size_t>(tid)].data();
        double* pr = pr_recall[static_cast<size_t>(tid)].data();
        int64_t c = 0;
        for (int64_t j = 0; j < n; ++j) {
          c += r[j];
          pc[j] += c;
          pr[j] += static_cast<double>(c) * inv_total;
        }
        ++pr_queries[static_cast<size_t>(tid)];
      }
    }
  }

  double total_ap = 0;
  for (double ap : res.average_precision) total_ap += ap;
  res.map = total_ap / static_cast<double>(nq);

  for (size_t i = 0; i < opt.precision_at.size(); ++i) {
    const int64_t m = std::min(opt.precision_at[i], n);
    double s = 0;
    for (int64_t q = 0; q < nq; ++q)
      s += static_cast<double>(hits_at[static_cast<size_t>(q)][i]) / static_cast<double>(m);
    res.precision_at.push_back(s / static_cast<double>(nq));
  }
  if (opt.radius >= 0) {
    double p = 0, with = 0, retrieved = 0;
    for (int64_t q = 0; q < nq; ++q) {
      const int64_t m = radius_retrieved[static_cast<size_t>(q)];
      p += m > 0 ? static_cast<double>(radius_hits[static_cast<size_t>(q)]) / static_cast<double>(m) : 0.0;
      with += m > 0;
      retrieved += static_cast<double>(m);
    }
    res.radius = {p / static_cast<double>(nq), with / static_cast<double>(nq), retrieved / static_cast<double>(nq)};
  }
  if (opt.pr_curve) {
    int64_t used = 0;
    for (int64_t c : pr_queries) used += c;
    res.pr.queries_averaged = used;
    res.pr.index.resize(static_cast<size_t>(n));
    res.pr.precision.assign(static_cast<size_t>(n), 0.0);
    res.pr.recall.assign(static_cast<size_t>(n), 0.0);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (int64_t j = 0; j < n; ++j) {
      int64_t c = 0;
      double r = 0;
      for (int t = 0; t < threads; ++t) {
        if (pr_count[static_cast<size_t>(t)].empty()) continue;  // a thread the region did not start
        c += pr_count[static_cast<size_t>(t)][static_cast<size_t>(j)];
        r += pr_recall[static_cast<size_t>(t)][static_cast<size_t>(j)];
      }
      res.pr.index[static_cast<size_t>(j)] = j;
      res.pr.precision[static_cast<size_t>(j)] =
          used > 0 ? static_cast<double>(c) / (static_cast<double>(j + 1) * static_cast<double>(used)) : nan;
      res.pr.recall[static_cast<size_t>(j)] = used > 0 ? r / static_cast<double>(used) : nan;
    }
  }
  return res;
}

// Packs sign(outputs) (row-major n × K floats) for both sides, then evaluates.
template <class T>
EvalResult evaluate_outputs(const T* query_outputs, int64_t n_queries, const T* db_outputs, int64_t n_db, int64_t bits,
                            LabelsView query_labels, LabelsView db_labels, const EvalOptions& opt = {}) {
  const index::PackedCodes q = index::pack_codes(query_outputs, n_queries, bits);
  const index::PackedCodes d = index::pack_codes(db_outputs, n_db, bits);
  return evaluate(q, query_labels, d, db_labels, opt);
}

// mAP@topk (§4.3).
inline double mean_average_precision(CodesView queries, LabelsView query_labels, CodesView db, LabelsView db_labels,
                                     int64_t topk = -1, TopkAll minus_one = TopkAll::all_but_last,
                                     const index::SearchOptions& search = {}) {
  EvalOptions o;
  o.topk = topk;
  o.minus_one = minus_one;
  o.search = search;
  return evaluate(queries, query_labels, db, db_labels, o).map;
}

// The full §4.4 curve: one point per number retrieved, index 0..n_db−1.
inline PrCurve pr_curve(CodesView queries, LabelsView query_labels, CodesView db, LabelsView db_labels, int64_t topk = -1,
                        TopkAll minus_one = TopkAll::all_but_last, const index::SearchOptions& search = {}) {
  EvalOptions o;
  o.topk = topk;
  o.minus_one = minus_one;
  o.pr_curve = true;
  o.search = search;
  return evaluate(queries, query_labels, db, db_labels, o).pr;
}

// The points the reference writes to its pr_curve_path JSON: 0-based indices 99, 199, …,
// 100·⌊n/100⌋ − 1, then every index up to n − 1. (For n < 100 the reference fails on an empty
// list; here every index is kept.) `full` must be a full curve (index 0..n−1).
inline PrCurve pr_curve_reference_points(const PrCurve& full) {
  const int64_t n = static_cast<int64_t>(full.index.size());
  for (int64_t j = 0; j < n; ++j)
    VTS_CHECK(full.index[static_cast<size_t>(j)] == j, "pr_curve_reference_points: expected a full curve (index j at ",
              "position j), found index ", full.index[static_cast<size_t>(j)], " at position ", j);
  PrCurve out;
  out.queries_averaged = full.queries_averaged;
  auto take = [&](int64_t j) {
    out.index.push_back(j);
    out.precision.push_back(full.precision[static_cast<size_t>(j)]);
    out.recall.push_back(full.recall[static_cast<size_t>(j)]);
  };
  const int64_t hundreds = n / 100;
  for (int64_t i = 1; i <= hundreds; ++i) take(i * 100 - 1);
  for (int64_t j = hundreds * 100; j < n; ++j) take(j);
  return out;
}

// At most max_points (>= 2) points of `curve`, evenly spaced by position, first and last kept.
inline PrCurve subsample_pr_curve(const PrCurve& curve, int64_t max_points) {
  VTS_CHECK(max_points >= 2, "subsample_pr_curve: expected max_points >= 2, found ", max_points);
  const int64_t n = static_cast<int64_t>(curve.index.size());
  if (n <= max_points) return curve;
  PrCurve out;
  out.queries_averaged = curve.queries_averaged;
  for (int64_t i = 0; i < max_points; ++i) {
    const int64_t j = i * (n - 1) / (max_points - 1);
    out.index.push_back(curve.index[static_cast<size_t>(j)]);
    out.precision.push_back(curve.precision[static_cast<size_t>(j)]);
    out.recall.push_back(curve.recall[static_cast<size_t>(j)]);
  }
  return out;
}

// P@k for each k, averaged over all queries.
inline std::vector<double> precision_at_k(CodesView queries, LabelsView query_labels, CodesView db, LabelsView db_labels,
                                          std::span<const int64_t> ks, const index::SearchOptions& search = {}) {
  EvalOptions o;
  o.topk = 1;  // mAP is computed on the side; keep its walk short
  o.precision_at.assign(ks.begin(), ks.end());
  o.search = search;
  return evaluate(queries, query_labels, db, db_labels, o).precision_at;
}

// Precision within Hamming radius `radius` through a radius search (no full ranking).
inline RadiusPrecision precision_within_radius(CodesView queries, LabelsView query_labels, CodesView db,
                                               LabelsView db_labels, int64_t radius = 2,
                                               const index::SearchOptions& search = {}) {
  detail::check_inputs(queries, query_labels, db, db_labels, "precision_within_radius");
  const index::RadiusResult r = index::radius_search(db, queries, radius, search);
  RadiusPrecision out;
  const int64_t nq = queries.count;
  for (int64_t q = 0; q < nq; ++q) {
    const int64_t m = r.count(q);
    int64_t c = 0;
    for (int64_t o = r.offsets[static_cast<size_t>(q)]; o < r.offsets[static_cast<size_t>(q + 1)]; ++o)
      c += db_labels.shares_class(r.indices[static_cast<size_t>(o)], query_labels, q);
    out.precision += m > 0 ? static_cast<double>(c) / static_cast<double>(m) : 0.0;
    out.queries_with_hits += m > 0;
    out.mean_retrieved += static_cast<double>(m);
  }
  out.precision /= static_cast<double>(nq);
  out.queries_with_hits /= static_cast<double>(nq);
  out.mean_retrieved /= static_cast<double>(nq);
  return out;
}

}  // namespace vts::eval
