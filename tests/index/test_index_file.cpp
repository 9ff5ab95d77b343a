#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../common/file_bytes.hpp"
#include "../common/temp_dir.hpp"
#include "common.hpp"
#include "vts/index/index_file.hpp"
#include "vts/index/search.hpp"

using namespace vts::index;
namespace fs = std::filesystem;
using vts_test_common::read_bytes;
using vts_test_common::TempDir;
using vts_test_common::write_bytes;

namespace {

// Re-seals a deliberately edited header so that only the edit itself is wrong.
void reseal_header(std::vector<uint8_t>& b) { detail::encode_header(detail::decode_header(b.data()), b.data()); }
void reseal_payload(std::vector<uint8_t>& b) {
  detail::HeaderFields h = detail::decode_header(b.data());
  h.payload_crc = vts::crc32(0, b.data() + kIndexHeaderBytes, b.size() - kIndexHeaderBytes);
  detail::encode_header(h, b.data());
}

struct Sample {
  PackedCodes codes;
  Labels labels;
  std::vector<std::string> paths;
};
Sample sample(int64_t n, int64_t bits, int64_t classes) {
  vts::Generator g(31);
  Sample s{vts_test::random_codes(g, n, bits), Labels(n, classes), {}};
  for (int64_t i = 0; i < n; ++i) {
    s.labels.set(i, static_cast<int64_t>(g.next_below(static_cast<uint64_t>(classes))));
    if (i % 3 == 0) s.labels.set(i, static_cast<int64_t>(g.next_below(static_cast<uint64_t>(classes))));
    s.paths.push_back(i % 7 == 0 ? std::string() : "images/class_" + std::to_string(i % 13) + "/img_" + std::to_string(i) + ".jpg");
  }
  return s;
}

IndexOpenOptions expect(int64_t bits, std::optional<std::string> fingerprint = std::nullopt, bool verify = true) {
  IndexOpenOptions o;
  o.expect_bits = bits;
  o.expect_fingerprint = std::move(fingerprint);
  o.verify_checksum = verify;
  return o;
}

}  // namespace

TEST_CASE("index file round trip: codes, multi-hot labels, paths, fingerprint", "[index][file]") {
  TempDir tmp;
  for (int64_t classes : {10, 64, 100}) {
    const Sample s = sample(301, 64, classes);
    const std::string p = tmp / "a.vtsidx";
    write_index_file(p, {s.codes, s.labels, s.paths, "vit-b16/csq/64 sha256:abcd"});
    const IndexFile f(p, expect(64, "vit-b16/csq/64 sha256:abcd"));
    CHECK(f.format_version() == 1);
    CHECK(f.bits() == 64);
    CHECK(f.size() == 301);
    CHECK(f.fingerprint() == "vit-b16/csq/64 sha256:abcd");
    REQUIRE(f.has_labels());
    CHECK(f.num_classes() == classes);
    CHECK(std::equal(s.codes.bytes().begin(), s.codes.bytes().end(), f.codes().data));
    CHECK(std::equal(s.labels.words().begin(), s.labels.words().end(), f.labels().words));
    for (int64_t i = 0; i < 301; ++i) CHECK(f.path(i) == s.paths[static_cast<size_t>(i)]);
    // Searching the mapped codes equals searching the originals.
    const KnnResult a = knn_search(f.codes(), s.codes.view().slice(0, 5), 10);
    const KnnResult b = knn_search(s.codes, s.codes.view().slice(0, 5), 10);
    CHECK(a.indices == b.indices);
    // Codes are 64-byte aligned in the map.
    CHECK(reinterpret_cast<uintptr_t>(f.codes().data) % 64 == 0);
  }
}

TEST_CASE("index file without labels or paths, and an empty index", "[index][file]") {
  TempDir tmp;
  vts::Generator g(32);
  const PackedCodes c = vts_test::random_codes(g, 17, 256);
  write_index_file(tmp / "b", {c, {}, {}, ""});
  IndexFile f(tmp / "b");
  CHECK_FALSE(f.has_labels());
  CHECK(f.path(16).empty());
  CHECK(std::equal(c.bytes().begin(), c.bytes().end(), f.codes().data));
  IndexFile moved = std::move(f);  // movable; views stay valid
  CHECK(moved.codes().count == 17);

  const PackedCodes none(0, 48);
  write_index_file(tmp / "e", {none, {}, {}, "x"});
  const IndexFile e(tmp / "e");
  CHECK(e.size() == 0);
  CHECK(e.bits() == 48);
}

TEST_CASE("index file: inconsistent contents are refused before anything is written", "[index][file]") {
  TempDir tmp;
  const Sample s = sample(20, 64, 5);
  const std::string p = tmp / "c";
  write_index_file(p, {s.codes, s.labels, s.paths, "v1"});
  const auto before = read_bytes(p);
  std::vector<std::string> short_paths(s.paths.begin(), s.paths.begin() + 5);
  CHECK_THROWS_WITH(write_index_file(p, {s.codes, s.labels, short_paths, "v2"}), Catch::Contains("one path per item (20)"));
  const Labels wrong(19, 5);
  CHECK_THROWS_WITH(write_index_file(p, {s.codes, wrong, s.paths, "v2"}), Catch::Contains("labels for 20 items"));
  CHECK(read_bytes(p) == before);  // the old file is untouched
  CHECK_THROWS_AS(write_index_file(tmp / "no/such/dir/x", {s.codes, s.labels, s.paths, "v"}), vts::IoError);
  // No temporaries left behind.
  int files = 0;
  for (const auto& e : fs::directory_iterator(tmp.path)) files += e.is_regular_file();
  CHECK(files == 1);
}

TEST_CASE("index file: corrupt, truncated and mismatched files are rejected with a clear error", "[index][file]") {
  TempDir tmp;
  const Sample s = sample(50, 128, 12);
  const std::string good = tmp / "good";
  write_index_file(good, {s.codes, s.labels, s.paths, "model-A"});
  const std::vector<uint8_t> bytes = read_bytes(good);
  const std::string bad = tmp / "bad";
  auto open_bad = [&](std::vector<uint8_t> b, IndexOpenOptions opt = {}) {
    write_bytes(bad, b);
    return IndexFile(bad, opt);
  };
  using Catch::Contains;

  SECTION("truncated") {
    // Copies of a prefix (resize() on a copy trips a GCC 12 -Wstringop-overflow false positive).
    const std::vector<uint8_t> short_by_one(bytes.begin(), bytes.end() - 1);
    CHECK_THROWS_WITH(open_bad(short_by_one), Contains("truncated") && Contains(std::to_string(bytes.size())));
    const std::vector<uint8_t> header_only(bytes.begin(), bytes.begin() + 100);
    CHECK_THROWS_WITH(open_bad(header_only), Contains("truncated") && Contains("128-byte header"));
    CHECK_THROWS_WITH(open_bad({}), Contains("truncated"));
    // Cut inside the codes: the header is intact, so the error says how long the file should be
    // (its counts exceed what 500 bytes could hold; that is no reason to call them implausible).
    REQUIRE(bytes.size() > 500);
    const std::vector<uint8_t> first_500(bytes.begin(), bytes.begin() + 500);
    CHECK_THROWS_WITH(open_bad(first_500),
                      Contains("truncated: expected " + std::to_string(bytes.size()) + " bytes, found 500"));
  }
  SECTION("trailing bytes") {
    auto b = bytes;
    b.push_back(0);
    CHECK_THROWS_WITH(open_bad(b), Contains("trailing bytes"));
  }
  SECTION("wrong magic") {
    auto b = bytes;
    b[0] = 'X';
    CHECK_THROWS_WITH(open_bad(b), Contains("not a VTS index") && Contains(bad));
  }
  SECTION("a flipped header bit") {
    auto b = bytes;
    b[24] ^= 1;  // the item count
    CHECK_THROWS_WITH(open_bad(b), Contains("corrupt header"));
  }
  SECTION("a flipped code bit, caught by the payload CRC unless verification is off") {
    auto b = bytes;
    const uint64_t codes_off = detail::decode_header(b.data()).codes_off;
    b[codes_off + 3] ^= 0x10;
    CHECK_THROWS_WITH(open_bad(b), Contains("corrupt contents"));
    const IndexFile f = open_bad(b, expect(0, std::nullopt, false));
    CHECK(f.codes().data[3] == (s.codes.data()[3] ^ 0x10));
  }
  SECTION("another format version") {
    auto b = bytes;
    detail::put(b.data(), 8, uint32_t(2));
    reseal_header(b);
    CHECK_THROWS_WITH(open_bad(b), Contains("unsupported format version 2") && Contains("reads version 1"));
  }
  SECTION("offsets that disagree with the layout") {
    auto b = bytes;
    detail::put(b.data(), 64, detail::decode_header(b.data()).labels_off + 64);
    reseal_header(b);
    CHECK_THROWS_WITH(open_bad(b), Contains("section offsets"));
  }
  SECTION("implausible counts") {
    auto b = bytes;
    detail::put(b.data(), 24, uint64_t(1) << 60);
    reseal_header(b);
    CHECK_THROWS_WITH(open_bad(b), Contains("implausible header"));
  }
  SECTION("a decreasing path table") {
    auto b = bytes;
    const uint64_t table = detail::decode_header(b.data()).table_off;
    detail::put(b.data(), table + 8 * 3, uint64_t(0));  // offsets of item 2 end at 0
    reseal_payload(b);
    CHECK_THROWS_WITH(open_bad(b), Contains("path table decreases at item"));
  }
  SECTION("K and fingerprint mismatches") {
    CHECK_THROWS_WITH(IndexFile(good, expect(64)), Contains("expected K = 64") && Contains("found K = 128"));
    CHECK_THROWS_WITH(IndexFile(good, expect(0, "model-B")),
                      Contains("fingerprint mismatch") && Contains("model-B") && Contains("model-A"));
    CHECK_NOTHROW(IndexFile(good, expect(128, "model-A")));
  }
  SECTION("a missing file") { CHECK_THROWS_AS(IndexFile(tmp / "missing"), vts::IoError); }
}
