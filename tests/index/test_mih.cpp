#include <catch2/catch.hpp>

#include "common.hpp"
#include "vts/index/mih.hpp"
#include "vts/index/search.hpp"

using namespace vts::index;

namespace {
void require_same(const RadiusResult& a, const RadiusResult& b) {
  REQUIRE(a.offsets == b.offsets);
  REQUIRE(a.indices == b.indices);
  REQUIRE(a.distances == b.distances);
}
}  // namespace

TEST_CASE("MIH radius search equals the linear scan (several K, m, r and ragged substrings)", "[index][mih]") {
  vts::Generator g(21);
  for (int64_t bits : {16, 64, 72, 128, 256}) {
    const PackedCodes db = vts_test::clustered_codes(g, 2500, bits, 7);
    // Queries: some near the clusters, some random.
    PackedCodes q = vts_test::clustered_codes(g, 12, bits, 7);
    const PackedCodes qr = vts_test::random_codes(g, 4, bits);
    std::copy(qr.data(), qr.data() + 4 * qr.code_bytes(), q.code(8));
    for (int m : {0, 1, 2, 3, 5}) {
      if (m > 0 && (bits + m - 1) / m > 64) continue;
      const MultiIndexHash mih(db, m, {Isa::automatic, 2});
      for (int64_t radius : {0, 1, 2, 3, 7}) {
        INFO("K=" << bits << " m=" << mih.substrings() << " r=" << radius);
        const RadiusResult want = radius_search(db, q, radius);
        // Forced probing where it is affordable (it is the code under test), the automatic mode
        // everywhere (it may fall back to the scan).
        if (mih.probes_per_query(radius) <= 200000)
          for (int threads : {1, 2})
            require_same(mih.radius_search(q, radius, {Isa::automatic, threads}, nullptr, MihMode::probe), want);
        require_same(mih.radius_search(q, radius), want);
      }
    }
  }
}

TEST_CASE("MIH substrings cover the code and the default m follows log2 n", "[index][mih]") {
  vts::Generator g(22);
  const PackedCodes db = vts_test::random_codes(g, 4096, 64);  // log2 n = 12 -> m = round(64/12) = 5
  const MultiIndexHash mih(db);
  CHECK(mih.substrings() == 5);
  CHECK(mih.substring_begin(0) == 0);
  CHECK(mih.substring_end(4) == 64);
  for (int t = 0; t + 1 < 5; ++t) CHECK(mih.substring_end(t) == mih.substring_begin(t + 1));
  CHECK_THROWS_WITH(MultiIndexHash(db, 65), Catch::Contains("1..64-bit substrings") && Catch::Contains("m = 65"));
  CHECK(MultiIndexHash(db, 1).substrings() == 1);  // one 64-bit substring is allowed
  const PackedCodes wide = vts_test::random_codes(g, 10, 256);
  CHECK_THROWS_WITH(MultiIndexHash(wide, 3), Catch::Contains("m = 3") && Catch::Contains("K = 256"));
  // A negative m is a mistake, not a request for the automatic choice (only 0 is).
  CHECK_THROWS_WITH(MultiIndexHash(db, -3), Catch::Contains("m >= 0") && Catch::Contains("m = -3"));
}

TEST_CASE("MIH verifies far fewer candidates than a linear scan on spread-out codes", "[index][mih]") {
  vts::Generator g(23);
  const int64_t n = 50000;
  const PackedCodes db = vts_test::random_codes(g, n, 64);
  const PackedCodes q = vts_test::random_codes(g, 20, 64);
  const MultiIndexHash mih(db, 4);  // 16-bit substrings: ~0.76 items per bucket
  MihStats st;
  const RadiusResult r = mih.radius_search(q, 3, {}, &st);  // ⌊3/4⌋ = 0: one probe per table
  require_same(r, radius_search(db, q, 3));
  CHECK_FALSE(st.linear_scan);
  CHECK(st.probes == 20 * 4);
  // Expected about 20 queries × 4 tables × n / 2^16 ≈ 61 candidates; a scan would verify 10^6.
  CHECK(st.candidates < 20 * n / 100);
}

TEST_CASE("MIH probe count, and the automatic fallback to the scan when probing costs more", "[index][mih]") {
  vts::Generator g(24);
  const PackedCodes db = vts_test::random_codes(g, 6400, 64);
  const PackedCodes q = vts_test::random_codes(g, 5, 64);
  const MultiIndexHash mih(db, 4);                // four 16-bit substrings
  CHECK(mih.probes_per_query(3) == 4);            // ⌊3/4⌋ = 0
  CHECK(mih.probes_per_query(4) == 4 * (1 + 16));  // ⌊4/4⌋ = 1
  CHECK(mih.probes_per_query(8) == 4 * (1 + 16 + 120));
  const MultiIndexHash one(db, 1);
  CHECK(one.probes_per_query(64) == int64_t(1) << 62);  // 2^64 look-ups: saturated
  MihStats st;
  // r = 8: 548 probes per query > 6400 / 64, so the automatic mode scans.
  require_same(mih.radius_search(q, 8, {}, &st), radius_search(db, q, 8));
  CHECK(st.linear_scan);
  require_same(mih.radius_search(q, 8, {}, &st, MihMode::probe), radius_search(db, q, 8));
  CHECK_FALSE(st.linear_scan);
  CHECK(st.probes == 5 * 548);
}
