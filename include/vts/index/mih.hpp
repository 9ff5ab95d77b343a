#pragma once
// Multi-index hashing (Norouzi, Punjani, Fleet, CVPR 2012): sublinear exact radius search.
//
// Each K-bit code is cut into m disjoint substrings (bits [t·K/m, (t+1)·K/m)), and each substring
// position gets a hash table from substring value to the items that have it. If a database code is
// within distance r of a query, its m substring distances add up to at most r, so at least one of
// them is at most ⌊r/m⌋ (pigeonhole). A query therefore probes, in every table, all substring
// values within ⌊r/m⌋ of its own substring, collects the items found there, and verifies each
// candidate's full distance. The result equals radius_search (search.hpp) exactly, same order.
//
// It pays off when the radius is small against K/m and the substrings are long enough that a
// bucket holds few items: the default m makes substrings about log2(n) bits. Probes per table grow
// as Σ_{d ≤ ⌊r/m⌋} C(s, d), so large radii are better served by the linear scan, which
// radius_search switches to by itself (MihMode::automatic).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "vts/backend/cpu/parallel.hpp"
#include "vts/core/error.hpp"
#include "vts/index/codes.hpp"
#include "vts/index/hamming.hpp"
#include "vts/index/search.hpp"

namespace vts::index {

struct MihStats {
  int64_t probes = 0;        // bucket look-ups, all queries and tables
  int64_t candidates = 0;    // distinct items whose full distance was computed
  bool linear_scan = false;  // the search fell back to the linear scan (MihMode::automatic)
};

// automatic: probe the tables unless that costs more than scanning, then run the linear scan
// (same results); probe: always probe (for tests and measurements).
enum class MihMode { automatic, probe };

class MultiIndexHash {
 public:
  // Indexes `db` (not copied: the codes must outlive this object). m = 0 picks
  // m = max(1, round(K / clamp(log2 n, 8, 32))). Substrings must be 1..64 bits long.
  explicit MultiIndexHash(CodesView db, int m = 0, const SearchOptions& opt = {}) : db_(db) {
    check_code_bits(db.bits, "MultiIndexHash");
    VTS_CHECK(m >= 0, "MultiIndexHash: expected m >= 0 substrings (0 = automatic), found m = ", m);
    VTS_CHECK(db.count >= 0 && db.count < (int64_t(1) << 31) - 1,
              "MultiIndexHash: expected fewer than 2^31 - 1 database items, found ", db.count);
    if (m == 0) {
      const double s = std::clamp(std::log2(std::max<double>(2.0, static_cast<double>(db.count))), 8.0, 32.0);
      m = std::max(1, static_cast<int>(std::lround(static_cast<double>(db.bits) / s)));
    }
    VTS_CHECK(m <= db.bits && (db.bits + m - 1) / m <= 64, "MultiIndexHash: expected 1..64-bit substrings, found m = ",
              m, " substrings of a K = ", db.bits, "-bit code");
    m_ = m;
    tables_.resize(static_cast<size_t>(m));
    const int threads = detail::resolve_threads(opt.threads);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (threads > 1 && m > 1)
    for (int t = 0; t < m; ++t) build_table(t);
  }

  int substrings() const { return m_; }
  CodesView database() const { return db_; }
  // Bits [begin, end) of substring t.
  int64_t substring_begin(int t) const { return db_.bits * t / m_; }
  int64_t substring_end(int t) const { return db_.bits * (t + 1) / m_; }

  // Bucket look-ups one query costs at this radius: Σ over tables of Σ_{d ≤ ⌊r/m⌋} C(s, d)
  // (saturating at 2^62).
  int64_t probes_per_query(int64_t radius) const {
    const int64_t sub = radius / m_;
    const int64_t cap = int64_t(1) << 62;
    int64_t total = 0;
    for (const Table& tb : tables_) {
      int64_t c = 1, sum = 1;  // C(s, 0)
      for (int64_t d = 1; d <= std::min<int64_t>(sub, tb.bits); ++d) {
        // C(s, d) = C(s, d-1) (s - d + 1) / d, exact in integers; stop once past the cap.
        if (c > cap / (tb.bits - d + 1)) return cap;
        c = c * (tb.bits - d + 1) / d;
        sum += c;
        if (sum > cap) return cap;
      }
      total += sum;
      if (total > cap) return cap;
    }
    return total;
  }

  // Every database item within distance `radius` of each query, in (distance, index) order.
  // MihMode::automatic runs the linear scan instead when a query's probes would outnumber
  // n / 64 (a probe is a hash look-up and usually a cache miss; the scan does tens of codes per
  // nanosecond).
  RadiusResult radius_search(CodesView queries, int64_t radius, const SearchOptions& opt = {},
                             MihStats* stats = nullptr, MihMode mode = MihMode::automatic) const {
    detail::check_pair(db_, queries, "MultiIndexHash::radius_search");
    VTS_CHECK(radius >= 0, "MultiIndexHash::radius_search: expected a radius >= 0, found ", radius);
    if (mode == MihMode::automatic && probes_per_query(radius) > db_.count / 64) {
      if (stats) *stats = MihStats{0, queries.count * db_.count, true};
      return index::radius_search(db_, queries, radius, opt);
    }
    const int64_t nq = queries.count;
    const int threads = detail::resolve_threads(opt.threads);
    std::vector<std::vector<uint64_t>> hits(static_cast<size_t>(nq));
    std::vector<MihStats> per_thread(static_cast<size_t>(threads));
    // One "seen" stamp per database item and thread, so a candidate found in several tables is
    // verified once; stamps avoid clearing n entries per query.
    std::vector<std::vector<uint32_t>> seen(static_cast<size_t>(threads));
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
      const int tid = detail::thread_index();
      std::vector<uint32_t>& stamp = seen[static_cast<size_t>(tid)];
      stamp.assign(static_cast<size_t>(db_.count), 0);
      uint32_t epoch = 0;
      MihStats& st = per_thread[static_cast<size_t>(tid)];
#pragma omp for schedule(dynamic, 8)
      for (int64_t q = 0; q < nq; ++q) {
        if (++epoch == 0) {  // wrapped: stale stamps could collide, start over
          std::fill(stamp.begin(), stamp.end(), 0u);
          epoch = 1;
        }
        query_one(queries.code(q), radius, stamp, epoch, hits[static_cast<size_t>(q)], st);
      }
    }
    RadiusResult r;
    r.offsets.assign(static_cast<size_t>(nq + 1), 0);
    for (int64_t q = 0; q < nq; ++q)
      r.offsets[static_cast<size_t>(q + 1)] = r.offsets[static_cast<size_t>(q)] + static_cast<int64_t>(hits[static_cast<size_t>(q)].size());
    r.indices.resize(static_cast<size_t>(r.offsets.back()));
    r.distances.resize(static_cast<size_t>(r.offsets.back()));
    for (int64_t q = 0; q < nq; ++q) {
      int64_t o = r.offsets[static_cast<size_t>(q)];
      for (uint64_t key : hits[static_cast<size_t>(q)]) {
        r.indices[static_cast<size_t>(o)] = detail::key_index(key);
        r.distances[static_cast<size_t>(o)] = static_cast<int32_t>(detail::key_distance(key));
        ++o;
      }
    }
    if (stats) {
      *stats = {};
      for (const MihStats& s : per_thread) {
        stats->probes += s.probes;
        stats->candidates += s.candidates;
      }
    }
    return r;
  }

 private:
  // One substring position: distinct values (sorted), the items of each value (CSR), and an
  // open-addressing table from value to its slot in `values`.
  struct Table {
    int64_t begin = 0;
    int bits = 0;
    std::vector<uint64_t> values;
    std::vector<uint32_t> starts;  // values.size() + 1
    std::vector<uint32_t> items;
    std::vector<int32_t> slots;  // -1 = empty, else an index into values
    uint64_t mask = 0;
    int shift = 0;

    size_t home(uint64_t v) const { return static_cast<size_t>((v * 0x9E3779B97F4A7C15ull) >> shift); }
    // Index into `values`, or -1.
    int64_t find(uint64_t v) const {
      for (size_t s = home(v);; s = (s + 1) & mask) {
        const int32_t e = slots[s];
        if (e < 0) return -1;
        if (values[static_cast<size_t>(e)] == v) return e;
      }
    }
  };

  // Bits [begin, begin + len) of a code (len in 1..64), bit 0 of the result = bit `begin`.
  static uint64_t extract(const uint8_t* code, int64_t code_bytes, int64_t begin, int len) {
    const int64_t byte = begin >> 3;
    const int sh = static_cast<int>(begin & 7);
    const int64_t avail = std::min<int64_t>(8, code_bytes - byte);
    uint64_t v = avail == 8 ? detail::load_u64(code + byte) : detail::load_partial(code + byte, avail);
    v >>= sh;
    if (sh != 0 && len + sh > 64) v |= static_cast<uint64_t>(code[byte + 8]) << (64 - sh);
    return len == 64 ? v : v & ((uint64_t(1) << len) - 1);
  }

  void build_table(int t) {
    Table& tb = tables_[static_cast<size_t>(t)];
    tb.begin = substring_begin(t);
    tb.bits = static_cast<int>(substring_end(t) - tb.begin);
    const int64_t n = db_.count;
    std::vector<std::pair<uint64_t, uint32_t>> kv(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      kv[static_cast<size_t>(i)] = {extract(db_.code(i), db_.code_bytes(), tb.begin, tb.bits), static_cast<uint32_t>(i)};
    std::sort(kv.begin(), kv.end());  // by value, then item: buckets list items in index order
    tb.items.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const auto& [v, id] = kv[static_cast<size_t>(i)];
      if (i == 0 || v != kv[static_cast<size_t>(i - 1)].first) {
        tb.values.push_back(v);
        tb.starts.push_back(static_cast<uint32_t>(i));
      }
      tb.items[static_cast<size_t>(i)] = id;
    }
    tb.starts.push_back(static_cast<uint32_t>(n));
    int log2cap = 4;
    while ((int64_t(1) << log2cap) < 2 * static_cast<int64_t>(tb.values.size())) ++log2cap;  // load <= 1/2
    tb.slots.assign(size_t(1) << log2cap, -1);
    tb.mask = (uint64_t(1) << log2cap) - 1;
    tb.shift = 64 - log2cap;
    for (size_t e = 0; e < tb.values.size(); ++e) {
      size_t s = tb.home(tb.values[e]);
      while (tb.slots[s] >= 0) s = (s + 1) & tb.mask;
      tb.slots[s] = static_cast<int32_t>(e);
    }
  }

  // Calls visit(v) for every s-bit value within distance `left` of `v`, flipping bits at
  // positions >= `from` (each set of flipped positions visited once).
  template <class Visit>
  static void neighbours(uint64_t v, int s, int from, int left, Visit& visit) {
    visit(v);
    if (left == 0) return;
    for (int b = from; b < s; ++b) neighbours(v ^ (uint64_t(1) << b), s, b + 1, left - 1, visit);
  }

  void query_one(const uint8_t* q, int64_t radius, std::vector<uint32_t>& stamp, uint32_t epoch,
                 std::vector<uint64_t>& out, MihStats& st) const {
    const int64_t bytes = db_.code_bytes();
    const int64_t sub_radius = radius / m_;
    for (const Table& tb : tables_) {
      const uint64_t qv = extract(q, bytes, tb.begin, tb.bits);
      auto visit = [&](uint64_t v) {
        ++st.probes;
        const int64_t e = tb.find(v);
        if (e < 0) return;
        for (uint32_t j = tb.starts[static_cast<size_t>(e)]; j < tb.starts[static_cast<size_t>(e) + 1]; ++j) {
          const uint32_t id = tb.items[j];
          if (stamp[id] == epoch) continue;
          stamp[id] = epoch;
          ++st.candidates;
          const uint32_t d = detail::dist_scalar<0>(db_.code(id), q, bytes);
          if (d <= radius) out.push_back(detail::make_key(d, id));
        }
      };
      neighbours(qv, tb.bits, 0, static_cast<int>(std::min<int64_t>(sub_radius, tb.bits)), visit);
    }
    std::sort(out.begin(), out.end());
  }

  CodesView db_;
  int m_ = 1;
  std::vector<Table> tables_;
};

}  // namespace vts::index
