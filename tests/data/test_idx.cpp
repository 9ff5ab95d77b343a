#include <catch2/catch.hpp>

#include "test_util.hpp"
#include "vts/data/idx.hpp"

using Catch::Matchers::Contains;
using vts_test::message_of;

namespace {
std::vector<uint8_t> ramp(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 37 + 11);
  return v;
}
}  // namespace

TEST_CASE("data: read_idx reads gzip-compressed and plain files", "[data][idx]") {
  vts_test::TempDir dir;
  const auto data = ramp(3 * 2 * 4);
  const auto bytes = vts_test::idx_bytes({3, 2, 4}, data);
  vts_test::write_gz(dir / "a.gz", bytes);
  vts_test::write_plain(dir / "a", bytes);
  for (const std::string& p : {dir / "a.gz", dir / "a"}) {
    const auto arr = vts::data::read_idx(p);
    REQUIRE(arr.dims == std::vector<int64_t>{3, 2, 4});
    REQUIRE(arr.count() == 3);
    REQUIRE(arr.data == data);
  }
  // Sizes above 255 exercise every big-endian byte.
  const auto labels = ramp(70000);
  vts_test::write_gz(dir / "big.gz", vts_test::idx_bytes({70000}, labels));
  const auto big = vts::data::read_idx(dir / "big.gz");
  REQUIRE(big.dims == std::vector<int64_t>{70000});
  REQUIRE(big.data == labels);
}

TEST_CASE("data: read_idx reports truncated and malformed files with the file and the counts", "[data][idx]") {
  vts_test::TempDir dir;
  SECTION("payload shorter than the header promises") {
    // 5 items of 2x2 promised, 4.5 present.
    auto bytes = vts_test::idx_bytes({5, 2, 2}, ramp(18));
    vts_test::write_gz(dir / "short.gz", bytes);
    const auto msg = message_of<vts::IoError>([&] { vts::data::read_idx(dir / "short.gz"); });
    CHECK_THAT(msg, Contains(dir / "short.gz") && Contains("20 bytes") && Contains("found 18") &&
                        Contains("4 of 5 items"));
    vts_test::write_plain(dir / "short", bytes);
    CHECK_THAT(message_of<vts::IoError>([&] { vts::data::read_idx(dir / "short"); }), Contains("found 18"));
  }
  SECTION("header cut off") {
    auto bytes = vts_test::idx_bytes({5, 2, 2}, {});
    bytes.resize(9);  // magic + 1 size + 1 byte of the second
    vts_test::write_gz(dir / "hdr.gz", bytes);
    CHECK_THAT(message_of<vts::IoError>([&] { vts::data::read_idx(dir / "hdr.gz"); }),
               Contains(dir / "hdr.gz") && Contains("3 dimension sizes") && Contains("found 5 bytes"));
  }
  SECTION("more data than the header promises") {
    vts_test::write_gz(dir / "long.gz", vts_test::idx_bytes({2, 2}, ramp(5)));
    CHECK_THAT(message_of<vts::IoError>([&] { vts::data::read_idx(dir / "long.gz"); }),
               Contains(dir / "long.gz") && Contains("expected exactly 4 bytes") && Contains("found 5 (1 trailing)"));
    // More trailing bytes than one read of the rest holds are all counted.
    vts_test::write_plain(dir / "longer", vts_test::idx_bytes({2, 2}, ramp(4 + 200000)));
    CHECK_THAT(message_of<vts::IoError>([&] { vts::data::read_idx(dir / "longer"); }),
               Contains("found 200004 (200000 trailing)"));
  }
  SECTION("not an IDX file") {
    vts_test::write_plain(dir / "text", {'h', 'e', 'l', 'l', 'o'});
    CHECK_THAT(message_of<vts::IoError>([&] { vts::data::read_idx(dir / "text"); }),
               Contains(dir / "text") && Contains("not an IDX file"));
  }
  SECTION("element type other than unsigned byte") {
    vts_test::write_gz(dir / "f32.gz", vts_test::idx_bytes({1}, ramp(4), 0x0D));
    CHECK_THAT(message_of<vts::IoError>([&] { vts::data::read_idx(dir / "f32.gz"); }),
               Contains("0x08") && Contains("found 0xd"));
  }
  SECTION("empty file") {
    vts_test::write_plain(dir / "empty", {});
    CHECK_THAT(message_of<vts::IoError>([&] { vts::data::read_idx(dir / "empty"); }),
               Contains("4-byte IDX magic") && Contains("found a 0-byte file"));
  }
  SECTION("missing file") {
    CHECK_THAT(message_of<vts::IoError>([&] { vts::data::read_idx(dir / "nope.gz"); }),
               Contains(dir / "nope.gz") && Contains("cannot open"));
  }
  SECTION("corrupt gzip stream") {
    vts_test::write_gz(dir / "bad.gz", vts_test::idx_bytes({4096}, ramp(4096)));
    std::fstream f(dir / "bad.gz", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(30);
    const char junk[16] = {'\x7f', '\x01', '\x55', '\x10', '\x7f', '\x01', '\x55', '\x10',
                           '\x7f', '\x01', '\x55', '\x10', '\x7f', '\x01', '\x55', '\x10'};
    f.write(junk, sizeof junk);
    f.close();
    CHECK_THAT(message_of<vts::IoError>([&] { vts::data::read_idx(dir / "bad.gz"); }), Contains(dir / "bad.gz"));
  }
}

// Found by tests/fuzz/fuzz_idx: a 36-byte file whose header claimed 256x917505x2x31 bytes made
// read_idx allocate 14.5 GB before reading any data (std::bad_alloc, or an out-of-memory kill).
// The buffer now grows with the bytes that arrive, so the claim is reported as what it is.
TEST_CASE("data: read_idx does not allocate what a header claims before the data arrive", "[data][idx]") {
  vts_test::TempDir dir;
  // 2^20 x 2^20 = 2^40 bytes promised (the largest header accepted), 4 present.
  const auto bytes = vts_test::idx_bytes({1u << 20, 1u << 20}, ramp(4));
  vts_test::write_plain(dir / "claim", bytes);
  vts_test::write_gz(dir / "claim.gz", bytes);
  for (const std::string& p : {dir / "claim", dir / "claim.gz"}) {
    const std::string msg = message_of<vts::IoError>([&] { vts::data::read_idx(p); });
    CHECK_THAT(msg, Contains(p));
    CHECK_THAT(msg, Contains("header promises 1048576x1048576 = 1099511627776 bytes of data, found 4"));
  }
  // A payload larger than the first 1 MiB block still reads whole.
  const auto big = ramp(3 * (1 << 20) + 5);
  vts_test::write_gz(dir / "big.gz", vts_test::idx_bytes({3 * (1u << 20) + 5}, big));
  CHECK(vts::data::read_idx(dir / "big.gz").data == big);
}
