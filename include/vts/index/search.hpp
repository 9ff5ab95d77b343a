#pragma once
// Exact Hamming search over packed codes: k nearest neighbours, full ranking, radius queries.
// (Multi-index hashing, for sublinear radius search on large indexes, is in mih.hpp.)
//
// Tie order, everywhere in vts::index and vts::eval: ascending distance, then ascending database
// index. It is deterministic, independent of the thread count and of the instruction set, and is
// what a stable argsort of the distances gives.
//
// How knn_search works (and why it is fast):
//  * Distances are integers in [0, K], so selection needs no heap and no sort of n items. Each query
//    keeps a small buffer of candidates closer than a bound; when the buffer fills, a histogram of
//    its distances finds the smallest distance T at which k candidates are reached, the buffer is
//    cut to exactly k, and the bound drops to T. Because the database is scanned in index order,
//    the ties at T that are kept are the lowest indices, so later items at distance T can never
//    enter and the bound can be strict. After a short warm-up almost no code passes the bound,
//    and the SIMD kernels test 32 codes per branch (hamming.hpp).
//  * The database is cut into blocks of about 32 KiB, and each block is scanned for a whole group
//    of queries while it sits in L1/L2, so memory traffic is paid once per group, not per query.
//  * Threads take query groups; with fewer queries than threads can share, the database is split
//    between threads too and the per-part top-k lists are merged.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "vts/backend/cpu/parallel.hpp"
#include "vts/core/error.hpp"
#include "vts/index/codes.hpp"
#include "vts/index/hamming.hpp"

namespace vts::index {

struct SearchOptions {
  Isa isa = Isa::automatic;  // kernel level; automatic = the best this CPU has
  int threads = 0;           // 0 = OpenMP's default (OMP_NUM_THREADS, else all cores)
};

// Row-major queries × k. A query with fewer than k database items gets index -1 and distance -1 in
// the missing slots.
struct KnnResult {
  int64_t queries = 0;
  int64_t k = 0;
  std::vector<int32_t> distances;
  std::vector<int64_t> indices;
  int32_t distance(int64_t q, int64_t j) const { return distances[static_cast<size_t>(q * k + j)]; }
  int64_t index(int64_t q, int64_t j) const { return indices[static_cast<size_t>(q * k + j)]; }
};

// Items within a radius, per query, in (distance, index) order: query q's hits are
// [offsets[q], offsets[q+1]) of `indices` and `distances`.
struct RadiusResult {
  std::vector<int64_t> offsets;
  std::vector<int64_t> indices;
  std::vector<int32_t> distances;
  int64_t queries() const { return offsets.empty() ? 0 : static_cast<int64_t>(offsets.size()) - 1; }
  int64_t count(int64_t q) const { return offsets[static_cast<size_t>(q + 1)] - offsets[static_cast<size_t>(q)]; }
};

namespace detail {

// (distance, index) packed so that integer order is the tie order: distance in the top 16 bits.
inline constexpr int kKeyShift = 48;
inline constexpr uint64_t kKeyIndexMask = (uint64_t(1) << kKeyShift) - 1;
inline uint64_t make_key(uint32_t d, int64_t i) { return (uint64_t(d) << kKeyShift) | static_cast<uint64_t>(i); }
inline uint32_t key_distance(uint64_t key) { return static_cast<uint32_t>(key >> kKeyShift); }
inline int64_t key_index(uint64_t key) { return static_cast<int64_t>(key & kKeyIndexMask); }

inline void check_pair(CodesView db, CodesView queries, const char* where) {
  check_code_bits(db.bits, where);
  if (db.bits != queries.bits)
    throw Error(vts::detail::concat(where, ": expected queries with the database's code length K = ", db.bits,
                       " bits, found K = ", queries.bits));
  VTS_CHECK(db.count >= 0 && queries.count >= 0, where, ": negative code count");
  VTS_CHECK(db.count <= int64_t(kKeyIndexMask), where, ": at most 2^48 database items, found ", db.count);
  VTS_CHECK(db.count == 0 || db.data, where, ": database codes have no data pointer");
  VTS_CHECK(queries.count == 0 || queries.data, where, ": query codes have no data pointer");
}

inline int resolve_threads(int threads) {
  // A negative count is a bug in the caller's arithmetic, not a request for the default.
  if (threads < 0)
    throw Error(vts::detail::concat("SearchOptions::threads: expected 0 (OpenMP's default) or a positive count, found ",
                                    threads));
  return threads > 0 ? threads : cpu::max_threads();
}
inline int thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// The k best of a stream of (distance, index) pushed in ascending index order. See the file
// comment for the bound; the buffer holds up to 2k candidates so a compaction (O(2k + K)) happens
// at most once per k accepted items.
class TopK {
 public:
  void reset(int64_t k, int64_t bits) {
    k_ = k;
    cap_ = std::max<int64_t>(2 * k, k + 32);
    if (static_cast<int64_t>(buf_.size()) < cap_) buf_.resize(static_cast<size_t>(cap_));
    hist_.resize(static_cast<size_t>(bits + 2));
    size_ = 0;
    bound_ = k > 0 ? static_cast<uint32_t>(bits + 1) : 0;
  }
  uint32_t bound() const { return bound_; }
  void push(uint32_t d, int64_t i) {
    buf_[static_cast<size_t>(size_++)] = make_key(d, i);
    if (size_ == cap_) compact();
  }
  // The kept keys, sorted (at most k).
  std::span<uint64_t> sorted_keys() {
    std::sort(buf_.begin(), buf_.begin() + size_);
    return {buf_.data(), static_cast<size_t>(std::min(size_, k_))};
  }

 private:
  [[gnu::noinline]] void compact() {
    std::fill(hist_.begin(), hist_.begin() + bound_, 0u);
    for (int64_t j = 0; j < size_; ++j) ++hist_[key_distance(buf_[static_cast<size_t>(j)])];
    int64_t below = 0;  // candidates strictly closer than t
    uint32_t t = 0;
    while (below + hist_[t] < k_) below += hist_[t++];
    int64_t ties = k_ - below;  // how many at distance t survive: the first ones, lowest indices
    int64_t kept = 0;
    // Branch-free: whether a candidate survives is a coin toss the predictor cannot learn.
    for (int64_t j = 0; j < size_; ++j) {
      const uint64_t key = buf_[static_cast<size_t>(j)];
      const uint32_t d = key_distance(key);
      const int64_t tie = (d == t) & (ties > 0);
      ties -= tie;
      buf_[static_cast<size_t>(kept)] = key;
      kept += (d < t) | tie;
    }
    size_ = kept;
    bound_ = t;
  }

  std::vector<uint64_t> buf_;
  std::vector<uint32_t> hist_;
  int64_t k_ = 0, cap_ = 0, size_ = 0;
  uint32_t bound_ = 0;
};

// Everything within a fixed radius.
class WithinRadius {
 public:
  void reset(int64_t radius, int64_t bits) {
    keys_.clear();
    bound_ = static_cast<uint32_t>(std::min<int64_t>(radius, bits) + 1);
  }
  uint32_t bound() const { return bound_; }
  void push(uint32_t d, int64_t i) { keys_.push_back(make_key(d, i)); }
  std::span<uint64_t> sorted_keys() {
    std::sort(keys_.begin(), keys_.end());
    return {keys_.data(), keys_.size()};
  }

 private:
  std::vector<uint64_t> keys_;
  uint32_t bound_ = 0;
};

// Codes per database block: about 32 KiB, a multiple of 32 codes (the avx512 step).
inline int64_t block_codes(int64_t code_bytes) { return std::max<int64_t>(32, (32768 / code_bytes) / 32 * 32); }

// Runs Collector (TopK or WithinRadius, reset with `param`) over the database for every query and
// hands each query's sorted keys to emit(q, keys). With `limit` > 0 the merged keys of a query
// split across threads are cut to that many. emit runs inside the parallel region; it must only
// write to query q's own output.
template <class Collector, class Emit>
void tiled_scan(CodesView db, CodesView queries, int64_t param, int64_t limit, const SearchOptions& opt,
                int64_t collector_bytes, Emit&& emit) {
  const Isa isa = resolve_isa(opt.isa);
  const int64_t nq = queries.count, n = db.count, bytes = db.code_bytes();
  if (nq == 0) return;
  const int threads = resolve_threads(opt.threads);
  const int64_t block = block_codes(bytes);
  // Query group size: enough groups for dynamic balance, collectors within about 512 KiB.
  const int64_t by_memory = std::max<int64_t>(1, (int64_t(512) << 10) / std::max<int64_t>(collector_bytes, 1));
  const int64_t by_balance = std::max<int64_t>(1, nq / (int64_t(threads) * 4));
  const int64_t group = std::clamp<int64_t>(std::min(by_memory, by_balance), 1, 256);
  const int64_t groups = (nq + group - 1) / group;
  // Too few groups to keep every thread busy: split the database as well.
  const int64_t parts = (threads > 1 && groups < 2 * threads && n >= 2 * block) ? threads : 1;
  const int64_t tasks = groups * parts;

  // Each task's collectors; parts > 1 keeps every part's sorted keys for the merge.
  std::vector<std::vector<Collector>> pool(static_cast<size_t>(threads), std::vector<Collector>(static_cast<size_t>(group)));
  std::vector<std::vector<uint64_t>> part_keys(parts > 1 ? static_cast<size_t>(nq * parts) : 0);

  auto run_task = [&](int64_t task, std::vector<Collector>& cols) {
    const int64_t g = task / parts, s = task % parts;
    const int64_t q0 = g * group, q1 = std::min(nq, q0 + group);
    const int64_t b0 = n * s / parts, b1 = n * (s + 1) / parts;
    for (int64_t q = q0; q < q1; ++q) cols[static_cast<size_t>(q - q0)].reset(param, db.bits);
    for (int64_t b = b0; b < b1; b += block) {
      const int64_t e = std::min(b1, b + block);
      for (int64_t q = q0; q < q1; ++q)
        scan(isa, db.code(b), e - b, bytes, queries.code(q), b, cols[static_cast<size_t>(q - q0)]);
    }
    for (int64_t q = q0; q < q1; ++q) {
      std::span<uint64_t> keys = cols[static_cast<size_t>(q - q0)].sorted_keys();
      if (parts == 1)
        emit(q, keys);
      else
        part_keys[static_cast<size_t>(q * parts + s)].assign(keys.begin(), keys.end());
    }
  };

  if (threads == 1 || tasks == 1) {
    for (int64_t t = 0; t < tasks; ++t) run_task(t, pool[0]);
  } else {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) run_task(t, pool[static_cast<size_t>(thread_index())]);
  }
  if (parts == 1) return;

#pragma omp parallel for num_threads(threads) schedule(dynamic, 16)
  for (int64_t q = 0; q < nq; ++q) {
    std::vector<uint64_t> merged;
    for (int64_t s = 0; s < parts; ++s) {
      const auto& pk = part_keys[static_cast<size_t>(q * parts + s)];
      merged.insert(merged.end(), pk.begin(), pk.end());
    }
    // Parts cover ascending index ranges, so concatenation is sorted by index within a distance;
    // a full sort by key restores (distance, index) order across parts.
    std::sort(merged.begin(), merged.end());
    if (limit > 0 && static_cast<int64_t>(merged.size()) > limit) merged.resize(static_cast<size_t>(limit));
    emit(q, std::span<uint64_t>(merged));
  }
}

}  // namespace detail

// k nearest database codes of every query, exact, in (distance, index) order. Writes
// queries.count × k distances and indices (row-major). k may exceed db.count: missing slots get -1.
inline void knn_search(CodesView db, CodesView queries, int64_t k, int32_t* distances, int64_t* indices,
                       const SearchOptions& opt = {}) {
  detail::check_pair(db, queries, "knn_search");
  VTS_CHECK(k >= 0, "knn_search: expected k >= 0, found ", k);
  if (queries.count == 0 || k == 0) return;
  // Each collector holds up to 2·kept candidates: sized by k, a k far above the database size
  // (a "give me everything" k) would allocate that much per query group for nothing.
  const int64_t kept = std::min(k, db.count);
  const int64_t collector_bytes = std::max<int64_t>(2 * kept, kept + 32) * 8;
  detail::tiled_scan<detail::TopK>(db, queries, kept, kept, opt, collector_bytes,
                                   [&](int64_t q, std::span<uint64_t> keys) {
                                     int32_t* d = distances + q * k;
                                     int64_t* ix = indices + q * k;
                                     const int64_t m = std::min<int64_t>(k, static_cast<int64_t>(keys.size()));
                                     for (int64_t j = 0; j < m; ++j) {
                                       d[j] = static_cast<int32_t>(detail::key_distance(keys[static_cast<size_t>(j)]));
                                       ix[j] = detail::key_index(keys[static_cast<size_t>(j)]);
                                     }
                                     for (int64_t j = m; j < k; ++j) {
                                       d[j] = -1;
                                       ix[j] = -1;
                                     }
                                   });
}

inline KnnResult knn_search(CodesView db, CodesView queries, int64_t k, const SearchOptions& opt = {}) {
  detail::check_pair(db, queries, "knn_search");
  VTS_CHECK(k >= 0, "knn_search: expected k >= 0, found ", k);
  KnnResult r;
  r.queries = queries.count;
  r.k = k;
  r.distances.resize(static_cast<size_t>(queries.count * k));
  r.indices.resize(static_cast<size_t>(queries.count * k));
  knn_search(db, queries, k, r.distances.data(), r.indices.data(), opt);
  return r;
}

// Every database item within Hamming distance `radius` (inclusive) of each query.
inline RadiusResult radius_search(CodesView db, CodesView queries, int64_t radius, const SearchOptions& opt = {}) {
  detail::check_pair(db, queries, "radius_search");
  VTS_CHECK(radius >= 0, "radius_search: expected a radius >= 0, found ", radius);
  const int64_t nq = queries.count;
  std::vector<std::vector<uint64_t>> per_query(static_cast<size_t>(nq));
  detail::tiled_scan<detail::WithinRadius>(db, queries, radius, 0, opt, 4096,
                                           [&](int64_t q, std::span<uint64_t> keys) {
                                             per_query[static_cast<size_t>(q)].assign(keys.begin(), keys.end());
                                           });
  RadiusResult r;
  r.offsets.resize(static_cast<size_t>(nq + 1), 0);
  for (int64_t q = 0; q < nq; ++q)
    r.offsets[static_cast<size_t>(q + 1)] = r.offsets[static_cast<size_t>(q)] + static_cast<int64_t>(per_query[static_cast<size_t>(q)].size());
  r.indices.resize(static_cast<size_t>(r.offsets.back()));
  r.distances.resize(static_cast<size_t>(r.offsets.back()));
  for (int64_t q = 0; q < nq; ++q) {
    int64_t o = r.offsets[static_cast<size_t>(q)];
    for (uint64_t key : per_query[static_cast<size_t>(q)]) {
      r.indices[static_cast<size_t>(o)] = detail::key_index(key);
      r.distances[static_cast<size_t>(o)] = static_cast<int32_t>(detail::key_distance(key));
      ++o;
    }
  }
  return r;
}

// Distance from one query to each of the database codes (out has db.count entries). One thread.
inline void hamming_distances(CodesView db, const uint8_t* query, uint16_t* out, Isa isa = Isa::automatic) {
  check_code_bits(db.bits, "hamming_distances");
  detail::distances(resolve_isa(isa), db.data, db.count, db.code_bytes(), query, out);
}

// queries.count × db.count distances, row-major, threads over queries.
inline std::vector<uint16_t> distance_matrix(CodesView db, CodesView queries, const SearchOptions& opt = {}) {
  detail::check_pair(db, queries, "distance_matrix");
  const Isa isa = resolve_isa(opt.isa);
  std::vector<uint16_t> out(static_cast<size_t>(queries.count * db.count));
  const int threads = detail::resolve_threads(opt.threads);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 4) if (threads > 1)
  for (int64_t q = 0; q < queries.count; ++q)
    detail::distances(isa, db.data, db.count, db.code_bytes(), queries.code(q), out.data() + q * db.count);
  return out;
}

// The full ranking of a database for one query at a time: a counting sort on distance, stable in
// index. Keeps its buffers between calls, so one Ranker per thread ranks many queries without
// allocating. Database size is limited to 2^31 - 1 (the order is int32 to halve its traffic).
class Ranker {
 public:
  explicit Ranker(CodesView db, Isa isa = Isa::automatic) : db_(db), isa_(resolve_isa(isa)) {
    check_code_bits(db.bits, "Ranker");
    VTS_CHECK(db.count < (int64_t(1) << 31), "Ranker: at most 2^31 - 1 database items, found ", db.count);
    dist_.resize(static_cast<size_t>(db.count));
    starts_.resize(static_cast<size_t>(db.bits + 2));
    next_.resize(static_cast<size_t>(kLanes * (db.bits + 1)));
    hist_.resize(static_cast<size_t>(kLanes * (db.bits + 1)));
  }

  // Ranks the database for `query` (db.code_bytes() bytes).
  void rank(const uint8_t* query) {
    order_.resize(static_cast<size_t>(db_.count));  // only rank() needs it; rank_payload does not
    count(query);
    scatter([](int64_t i) { return static_cast<int32_t>(i); }, order_.data());
  }

  // The same stable ranking, carrying one byte per item instead of its index:
  // out[r] = payload[order()[r]]. Evaluation ranks relevance flags this way: one byte store per
  // item instead of an index store plus a random read of the item's labels. order() is not
  // updated by this call.
  void rank_payload(const uint8_t* query, const uint8_t* payload, uint8_t* out) {
    count(query);
    scatter([payload](int64_t i) { return payload[i]; }, out);
  }

  // Database indices, best first (after rank(); empty before the first rank()).
  std::span<const int32_t> order() const { return order_; }
  // Distance of database item i to the last query.
  std::span<const uint16_t> distances() const { return dist_; }
  // First rank of each distance d in [0, K], plus starts()[K + 1] = db.count.
  std::span<const int64_t> starts() const { return starts_; }
  CodesView database() const { return db_; }

 private:
  // The database is cut into four contiguous quarters that are counted and scattered in lock
  // step: each quarter has its own counters, so the four read-increment-write chains are
  // independent and a run of equal distances does not serialise on one counter's store-to-load
  // latency. Quarter t's items of distance d go after quarter t-1's, which keeps the sort stable.
  static constexpr int kLanes = 4;
  int64_t lane_begin(int t) const { return db_.count * t / kLanes; }

  // Distances, the per-quarter histograms, starts_ (first rank of each distance) and next_
  // (each quarter's first rank of each distance, advanced by the scatter).
  void count(const uint8_t* query) {
    const size_t buckets = static_cast<size_t>(db_.bits + 1);
    detail::distances(isa_, db_.data, db_.count, db_.code_bytes(), query, dist_.data());
    std::fill(hist_.begin(), hist_.end(), 0u);
    uint32_t* h[kLanes];
    const uint16_t* d[kLanes];
    int64_t len[kLanes];
    for (int t = 0; t < kLanes; ++t) {
      h[t] = hist_.data() + t * buckets;
      d[t] = dist_.data() + lane_begin(t);
      len[t] = lane_begin(t + 1) - lane_begin(t);
    }
    const int64_t common = *std::min_element(len, len + kLanes);
    for (int64_t i = 0; i < common; ++i) {
      ++h[0][d[0][i]];
      ++h[1][d[1][i]];
      ++h[2][d[2][i]];
      ++h[3][d[3][i]];
    }
    for (int t = 0; t < kLanes; ++t)
      for (int64_t i = common; i < len[t]; ++i) ++h[t][d[t][i]];
    int64_t at = 0;
    for (size_t b = 0; b < buckets; ++b) {
      starts_[b] = at;
      for (int t = 0; t < kLanes; ++t) {
        next_[t * buckets + b] = at;
        at += h[t][b];
      }
    }
    starts_[buckets] = at;
  }

  // out[rank] = value(i) for every item i, in the stable order count() prepared.
  template <class Value, class Out>
  void scatter(Value value, Out* out) {
    const size_t buckets = static_cast<size_t>(db_.bits + 1);
    int64_t* nx[kLanes];
    const uint16_t* d[kLanes];
    int64_t first[kLanes], len[kLanes];
    for (int t = 0; t < kLanes; ++t) {
      nx[t] = next_.data() + t * buckets;
      first[t] = lane_begin(t);
      d[t] = dist_.data() + first[t];
      len[t] = lane_begin(t + 1) - first[t];
    }
    const int64_t common = *std::min_element(len, len + kLanes);
    for (int64_t i = 0; i < common; ++i) {
      out[nx[0][d[0][i]]++] = value(first[0] + i);
      out[nx[1][d[1][i]]++] = value(first[1] + i);
      out[nx[2][d[2][i]]++] = value(first[2] + i);
      out[nx[3][d[3][i]]++] = value(first[3] + i);
    }
    for (int t = 0; t < kLanes; ++t)
      for (int64_t i = common; i < len[t]; ++i) out[nx[t][d[t][i]]++] = value(first[t] + i);
  }

  CodesView db_;
  Isa isa_;
  std::vector<uint16_t> dist_;
  std::vector<int32_t> order_;
  std::vector<int64_t> starts_, next_;
  std::vector<uint32_t> hist_;
};

// The full ranking (ascending distance, ties by ascending index) of the database for one query.
inline std::vector<int64_t> rank_all(CodesView db, const uint8_t* query, Isa isa = Isa::automatic) {
  Ranker r(db, isa);
  r.rank(query);
  return std::vector<int64_t>(r.order().begin(), r.order().end());
}

}  // namespace vts::index
