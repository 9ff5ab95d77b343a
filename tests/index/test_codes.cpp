#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "common.hpp"
#include "vts/index/codes.hpp"
#include "vts/index/labels.hpp"

using namespace vts::index;

TEST_CASE("pack_codes: bit j is bit j%8 of byte j/8, least significant first", "[index][codes]") {
  std::vector<float> v(16, -1.0f);
  v[0] = 1.0f;   // byte 0, bit 0
  v[3] = 1.0f;   // byte 0, bit 3
  v[9] = 1.0f;   // byte 1, bit 1
  v[15] = 1.0f;  // byte 1, bit 7
  const PackedCodes c = pack_codes(v, 16);
  REQUIRE(c.size() == 1);
  REQUIRE(c.code_bytes() == 2);
  CHECK(c.data()[0] == 0x09);
  CHECK(c.data()[1] == 0x82);
  for (int j = 0; j < 16; ++j) CHECK(code_bit(c.code(0), j) == (v[j] > 0));
}

TEST_CASE("pack_codes: sign(0) = 0 packs as bit 0, like -1 and 0/1 input packs as itself", "[index][codes]") {
  const std::vector<float> outputs{0.0f, -0.0f, 1e-30f, -1e-30f, 3.0f, -2.0f, 0.0f, 1.0f};
  const PackedCodes c = pack_codes(outputs, 8);
  CHECK(c.data()[0] == 0b10010100);
  CHECK(count_zero_outputs(outputs.data(), 8) == 3);

  const std::vector<int8_t> zero_one{1, 0, 0, 1, 1, 1, 0, 0};
  CHECK(pack_codes(zero_one, 8).data()[0] == 0b00111001);
}

TEST_CASE("pack/unpack round trip for ±1 float, int8 and 0/1 codes, several K", "[index][codes]") {
  vts::Generator g(11);
  for (int64_t bits : {8, 16, 48, 64, 128, 200, 256, 1024}) {
    const int64_t n = 37;
    std::vector<float> pm(static_cast<size_t>(n * bits));
    for (auto& x : pm) x = (g.next_u32() & 1) ? 1.0f : -1.0f;
    const PackedCodes c = pack_codes(pm, bits);
    REQUIRE(c.size() == n);
    CHECK(unpack_codes<float>(c) == pm);

    std::vector<int8_t> i8(pm.size());
    for (size_t i = 0; i < pm.size(); ++i) i8[i] = static_cast<int8_t>(pm[i]);
    CHECK(pack_codes(i8, bits).bytes() == c.bytes());
    CHECK(unpack_codes<int8_t>(c) == i8);

    std::vector<uint8_t> z1(pm.size());
    for (size_t i = 0; i < pm.size(); ++i) z1[i] = pm[i] > 0 ? 1 : 0;
    CHECK(pack_codes(z1, bits).bytes() == c.bytes());
    CHECK(unpack_codes<uint8_t>(c, Levels::zero_one) == z1);
    // ±1 into an unsigned type gave 255 for -1: refused rather than wrapped.
    CHECK_THROWS_WITH(unpack_codes<uint8_t>(c), Catch::Contains("signed type") && Catch::Contains("Levels::zero_one"));

    // Packing real-valued outputs equals packing their signs.
    std::vector<double> raw(pm.size());
    for (size_t i = 0; i < pm.size(); ++i) raw[i] = pm[i] * (0.01 + g.next_double());
    CHECK(pack_codes(raw, bits).bytes() == c.bytes());
  }
}

TEST_CASE("pack_codes rejects bad K, a ragged buffer and NaN", "[index][codes]") {
  std::vector<float> v(24, 1.0f);
  CHECK_THROWS_WITH(pack_codes(v, 12), Catch::Contains("multiple of 8") && Catch::Contains("K = 12"));
  CHECK_THROWS_WITH(pack_codes(v, 0), Catch::Contains("K = 0"));
  CHECK_THROWS_WITH(pack_codes(v, 16), Catch::Contains("multiple of K = 16") && Catch::Contains("24"));
  v[10] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(pack_codes(v, 8), Catch::Contains("NaN in code 1"));
  CHECK_THROWS_WITH(PackedCodes(std::vector<uint8_t>(5), 2, 16), Catch::Contains("4 bytes") && Catch::Contains("found 5"));
}

TEST_CASE("CodesView::slice views a sub-range and checks bounds", "[index][codes]") {
  vts::Generator g(3);
  const PackedCodes c = vts_test::random_codes(g, 10, 64);
  const CodesView s = c.view().slice(2, 7);
  CHECK(s.count == 5);
  CHECK(s.code(0) == c.code(2));
  CHECK_THROWS_WITH(c.view().slice(3, 11), Catch::Contains("end <= 10"));
}

TEST_CASE("Labels: class ids, multi-hot over several words, shared-class relevance", "[index][labels]") {
  const std::vector<int32_t> ids{0, 3, 3, 9};
  const Labels a = Labels::from_class_ids(ids, 10);
  CHECK(a.size() == 4);
  CHECK(a.words_per_item() == 1);
  CHECK(a.view().has(1, 3));
  CHECK_FALSE(a.view().has(1, 0));
  CHECK(a.view().shares_class(1, a.view(), 2));
  CHECK_FALSE(a.view().shares_class(0, a.view(), 3));
  CHECK_THROWS_WITH(Labels::from_class_ids(std::vector<int>{1, 10}, 10), Catch::Contains("[0, 10)") && Catch::Contains("found 10 at item 1"));

  // 70 classes: two words per item; classes 5 and 66 live in different words.
  std::vector<float> hot(3 * 70, 0.0f);
  hot[0 * 70 + 5] = 1.0f;
  hot[0 * 70 + 66] = 1.0f;
  hot[1 * 70 + 66] = 0.5f;  // any nonzero entry counts
  hot[2 * 70 + 6] = 1.0f;
  const Labels m = Labels::from_multi_hot(hot, 70);
  REQUIRE(m.words_per_item() == 2);
  CHECK(m.view().has(0, 66));
  CHECK(m.view().shares_class(0, m.view(), 1));       // through class 66, second word
  CHECK_FALSE(m.view().shares_class(1, m.view(), 2));
  CHECK(m.view().slice(1, 3).has(0, 66));
  CHECK_THROWS_WITH(Labels::from_multi_hot(std::vector<float>(7), 70), Catch::Contains("multiple of 70"));
  CHECK_THROWS_WITH(Labels::from_words(std::vector<uint64_t>(3), 2, 70), Catch::Contains("2 items × 2 words"));

  // set() by hand: class 5 of a 3-class set fell into the padding bits and made items 0 and 1
  // "share" a class that does not exist; item 2 of 2 wrote past the words.
  Labels hand(2, 3);
  CHECK_THROWS_WITH(hand.set(0, 5), Catch::Contains("class in [0, 3)") && Catch::Contains("class 5"));
  CHECK_THROWS_WITH(hand.set(2, 0), Catch::Contains("item in [0, 2)") && Catch::Contains("item 2"));
  CHECK_THROWS(hand.set(0, -1));
  CHECK_FALSE(hand.view().shares_class(0, hand.view(), 1));
}
