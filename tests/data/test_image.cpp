#include <stb_image_write.h>

#include <catch2/catch.hpp>
#include <climits>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>

#include "../common/gif_writer.hpp"
#include "test_util.hpp"
#include "vts/data/image.hpp"

using Catch::Matchers::Contains;
using vts::data::ImageTransform;
using vts_test::message_of;

namespace {

std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
  vts::Generator g(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(g.next_u32() & 0xFF);
  return v;
}

template <class T>
std::vector<T> read_n(std::istream& in, size_t n) {
  std::vector<T> v(n);
  for (auto& x : v) {
    double d;
    in >> d;
    x = static_cast<T>(d);
  }
  REQUIRE(in.good());
  return v;
}

}  // namespace

TEST_CASE("data: bilinear resize and the eval pipeline match PIL / torchvision exactly", "[data][image][golden]") {
  std::ifstream in(std::string(VTS_TEST_DATA_DIR) + "/data_resize_pil.txt");
  REQUIRE(in.good());
  std::string magic, version, pillow, pillow_version;
  in >> magic >> version >> pillow >> pillow_version;
  REQUIRE(magic == "vts-resize-fixture");
  int resize_cases = 0, pipeline_cases = 0;
  std::string kind;
  while (in >> kind) {
    std::string name;
    int c, h, w;
    int a, b;  // resize: output height and width; pipeline: shorter side and crop
    in >> name >> c >> h >> w >> a >> b;
    INFO("case " << name);
    const auto src = read_n<uint8_t>(in, size_t(h) * w * c);
    if (kind == "resize") {
      const int oh = a, ow = b;
      int nr, nc;
      in >> nr;
      const auto rows = read_n<int>(in, size_t(nr));
      in >> nc;
      const auto cols = read_n<int>(in, size_t(nc));
      const auto expect = read_n<int>(in, size_t(nr) * nc * c);
      std::vector<uint8_t> out(size_t(oh) * ow * c);
      vts::data::resize_bilinear(src.data(), h, w, c, oh, ow, out.data());
      int mismatches = 0;
      for (int i = 0; i < nr; ++i)
        for (int j = 0; j < nc; ++j)
          for (int k = 0; k < c; ++k)
            mismatches += out[(size_t(rows[i]) * ow + cols[j]) * c + k] != expect[(size_t(i) * nc + j) * c + k];
      CHECK(mismatches == 0);
      ++resize_cases;
    } else {
      REQUIRE(kind == "pipeline");
      const int shorter = a, crop = b;
      const auto expect = read_n<float>(in, size_t(c) * crop * crop);
      std::vector<float> out(expect.size(), -99.0f);
      vts::Generator g(1);
      ImageTransform::imagenet_eval(shorter, crop).apply(src.data(), h, w, c, out.data(), g);
      float worst = 0;
      for (size_t i = 0; i < out.size(); ++i) worst = std::max(worst, std::abs(out[i] - expect[i]));
      CHECK(worst <= 1e-6f);
      ++pipeline_cases;
    }
  }
  CHECK(resize_cases == 5);
  CHECK(pipeline_cases == 2);
}

TEST_CASE("data: torchvision size rules: Resize(int) and CenterCrop offsets", "[data][image]") {
  using vts::data::center_crop_offset;
  using vts::data::shorter_side_size;
  CHECK(shorter_side_size(375, 500, 256) == std::pair{256, 341});
  CHECK(shorter_side_size(500, 375, 256) == std::pair{341, 256});
  CHECK(shorter_side_size(256, 300, 256) == std::pair{256, 300});  // already right: kept
  CHECK(shorter_side_size(300, 256, 256) == std::pair{300, 256});
  CHECK(shorter_side_size(100, 100, 256) == std::pair{256, 256});
  CHECK(shorter_side_size(32, 32, 224) == std::pair{224, 224});
  CHECK(shorter_side_size(333, 500, 256) == std::pair{256, 384});  // 384.38 truncated
  CHECK(center_crop_offset(256, 224) == 16);
  CHECK(center_crop_offset(257, 224) == 16);  // round(16.5) = 16
  CHECK(center_crop_offset(259, 224) == 18);  // round(17.5) = 18
  CHECK(center_crop_offset(225, 224) == 0);   // round(0.5) = 0
  CHECK(center_crop_offset(227, 224) == 2);   // round(1.5) = 2
  CHECK(center_crop_offset(224, 224) == 0);
  CHECK_THROWS_AS(center_crop_offset(200, 224), vts::Error);
}

TEST_CASE("data: resize keeps constant images constant and same-size images unchanged", "[data][image]") {
  const int h = 375, w = 500;
  std::vector<uint8_t> flat(size_t(h) * w * 3, 200);
  std::vector<uint8_t> out(size_t(256) * 341 * 3, 0);
  vts::data::resize_bilinear(flat.data(), h, w, 3, 256, 341, out.data());
  CHECK(std::count(out.begin(), out.end(), uint8_t(200)) == long(out.size()));
  std::vector<uint8_t> up(size_t(224) * 224 * 3);
  vts::data::resize_bilinear(flat.data(), 32, 32, 3, 224, 224, up.data());
  CHECK(std::count(up.begin(), up.end(), uint8_t(200)) == long(up.size()));
  const auto src = random_bytes(size_t(17) * 13 * 3, 5);
  std::vector<uint8_t> same(src.size());
  vts::data::resize_bilinear(src.data(), 17, 13, 3, 17, 13, same.data());
  CHECK(same == src);
}

// The transform resizes only the window its crop keeps; it must equal "resize everything, pad,
// flip, crop" done naively, for every mix of up/down scaling, crops, padding and flips.
TEST_CASE("data: transform windows equal full resize + pad + flip + crop", "[data][image]") {
  struct Config {
    int h, w, c;
    ImageTransform t;
  };
  std::vector<Config> configs;
  configs.push_back({37, 53, 3, ImageTransform::imagenet_train(32, 28)});
  configs.push_back({53, 37, 3, ImageTransform::imagenet_train(20, 20)});
  configs.push_back({40, 40, 3, ImageTransform::imagenet_eval(30, 21)});
  {
    ImageTransform t;  // fashion-style: pad + random crop + flip, no resize, one channel
    t.crop = ImageTransform::Crop::random;
    t.crop_height = t.crop_width = 28;
    t.pad = 2;
    t.random_hflip = true;
    t.mean = {0.5f};
    t.stddev = {0.25f};
    configs.push_back({28, 28, 1, t});
    t.resize = ImageTransform::Resize::exact;  // upscale, then pad and crop
    t.resize_height = 40;
    t.resize_width = 36;
    t.crop_height = 38;
    t.crop_width = 30;
    t.pad = 3;
    configs.push_back({28, 28, 1, t});
  }
  {
    ImageTransform t;  // exact resize without crop (CIFAR)
    t.resize = ImageTransform::Resize::exact;
    t.resize_height = t.resize_width = 50;
    configs.push_back({32, 32, 3, t});
  }
  int flips = 0, runs = 0;
  for (size_t ci = 0; ci < configs.size(); ++ci) {
    const auto& [h, w, c, t] = configs[ci];
    const auto src = random_bytes(size_t(h) * w * c, 100 + ci);
    const auto [rh, rw] = t.resized_size(h, w);
    std::vector<uint8_t> full(size_t(rh) * rw * c);
    vts::data::resize_bilinear(src.data(), h, w, c, rh, rw, full.data());
    const auto [oh, ow] = t.output_size(h, w);
    for (uint64_t seed = 0; seed < 12; ++seed) {
      INFO("config " << ci << " seed " << seed);
      vts::Generator g(seed), replay(seed);
      std::vector<float> out(size_t(c) * oh * ow, -99.0f);
      t.apply(src.data(), h, w, c, out.data(), g);
      // Replay the draws in the documented order: flip, then row offset, then column offset.
      const bool flip = t.random_hflip && replay.next_double() < 0.5;
      int top = 0, left = 0;
      if (t.crop == ImageTransform::Crop::random) {
        top = int(replay.next_below(uint64_t(rh + 2 * t.pad - oh + 1))) - t.pad;
        left = int(replay.next_below(uint64_t(rw + 2 * t.pad - ow + 1))) - t.pad;
      } else if (t.crop == ImageTransform::Crop::center) {
        top = vts::data::center_crop_offset(rh, oh);
        left = vts::data::center_crop_offset(rw, ow);
      }
      CHECK(g.offset() == replay.offset());
      flips += flip;
      ++runs;
      int bad = 0;
      for (int k = 0; k < c; ++k)
        for (int y = 0; y < oh; ++y)
          for (int x = 0; x < ow; ++x) {
            const int r = top + y, q = left + x;  // in the padded-and-flipped frame
            int v = 0;
            if (r >= 0 && r < rh && q >= 0 && q < rw) v = full[(size_t(r) * rw + (flip ? rw - 1 - q : q)) * c + k];
            const float m = t.mean.empty() ? 0.f : t.mean[size_t(k)], s = t.stddev.empty() ? 1.f : t.stddev[size_t(k)];
            const float expect = (float(v) / 255.0f - m) / s;
            bad += out[(size_t(k) * oh + y) * ow + x] != expect;
          }
      CHECK(bad == 0);
    }
  }
  CHECK(flips > 5);  // both branches exercised
  CHECK(flips < runs);
}

TEST_CASE("data: ImageNet normalisation follows ToTensor + Normalize in float32", "[data][image]") {
  ImageTransform t = ImageTransform::imagenet_eval(2, 2);
  const std::vector<uint8_t> px = {0, 128, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90};  // 2x2 RGB
  std::vector<float> out(12);
  vts::Generator g(0);
  t.apply(px.data(), 2, 2, 3, out.data(), g);
  CHECK(out[0] == (0.0f / 255.0f - 0.485f) / 0.229f);   // R of pixel (0,0)
  CHECK(out[4] == (128.0f / 255.0f - 0.456f) / 0.224f); // G of pixel (0,0)
  CHECK(out[8] == (255.0f / 255.0f - 0.406f) / 0.225f); // B of pixel (0,0)
  CHECK(out[3] == (70.0f / 255.0f - 0.485f) / 0.229f);  // R of pixel (1,1)
  CHECK(out[8] == Approx(2.64f).margin(1e-2));
}

TEST_CASE("data: transform settings are validated", "[data][image]") {
  ImageTransform t;
  t.crop = ImageTransform::Crop::center;
  CHECK_THROWS_AS(t.validate(3), vts::Error);  // crop without size
  t.crop_height = t.crop_width = 4;
  t.pad = 2;
  CHECK_THROWS_AS(t.validate(3), vts::Error);  // padding needs a random crop
  t.pad = 0;
  t.mean = {0.5f};
  t.stddev = {0.5f};
  CHECK_THAT(message_of<vts::Error>([&] { t.validate(3); }), Contains("expected 3") && Contains("found 1"));
  t.mean = t.stddev = {0.5f, 0.5f, 0.5f};
  t.validate(3);
  std::vector<uint8_t> small(3 * 3 * 3, 0);
  std::vector<float> out(48);
  vts::Generator g;
  CHECK_THROWS_AS(t.apply(small.data(), 3, 3, 3, out.data(), g), vts::Error);  // 3x3 < 4x4 crop
}

namespace {

void put_be32(std::string& s, uint32_t v) {
  for (int k = 24; k >= 0; k -= 8) s += char((v >> k) & 0xFF);
}
void put_le(std::string& s, uint32_t v, int bytes) {
  for (int k = 0; k < bytes; ++k) s += char((v >> (8 * k)) & 0xFF);
}

// Headers alone (plus a few bytes) that claim w x h pixels, in the formats stb_image reads.
std::string pnm_header(uint32_t w, uint32_t h) {
  return "P5\n" + std::to_string(w) + " " + std::to_string(h) + "\n255\n" + std::string(8, '\x7f');
}
std::string png_header(uint32_t w, uint32_t h) {
  std::string s = "\x89PNG\r\n\x1a\n";
  put_be32(s, 13);
  std::string chunk = "IHDR";
  put_be32(chunk, w);
  put_be32(chunk, h);
  chunk += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB, deflate, no filter method, no interlace
  s += chunk;
  put_be32(s, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(chunk.data()), static_cast<uInt>(chunk.size()))));
  return s;
}
std::string bmp_header(uint32_t w, uint32_t h) {
  std::string s = "BM";
  put_le(s, 54 + 16, 4);  // file size (as if)
  put_le(s, 0, 4);
  put_le(s, 54, 4);  // pixel data offset
  put_le(s, 40, 4);  // BITMAPINFOHEADER
  put_le(s, w, 4);
  put_le(s, h, 4);
  put_le(s, 1, 2);   // planes
  put_le(s, 24, 2);  // bits per pixel
  for (int k = 0; k < 6; ++k) put_le(s, 0, 4);  // BI_RGB, sizes, resolutions, palette counts
  return s + std::string(16, '\x40');
}
std::string tga_header(uint32_t w, uint32_t h) {
  std::string s(12, '\0');
  s[2] = 2;  // uncompressed true colour
  put_le(s, w, 2);
  put_le(s, h, 2);
  return s + std::string("\x18\x00", 2) + std::string(8, '\x40');  // 24 bits a pixel
}
std::string gif_header(uint32_t w, uint32_t h) {
  std::string s = "GIF89a";
  put_le(s, w, 2);
  put_le(s, h, 2);
  return s + std::string("\x00\x00\x00", 3) + std::string(8, '\x00');
}
std::string jpeg_header(uint32_t w, uint32_t h) {
  std::string s = "\xFF\xD8\xFF\xC0";
  put_le(s, 0x0B00, 2);  // segment length 11, big-endian
  s += '\x08';
  s += char(h >> 8);
  s += char(h & 0xFF);
  s += char(w >> 8);
  s += char(w & 0xFF);
  s += std::string("\x01\x01\x11\x00", 4);  // one component, id 1, 1x1 sampling, table 0
  return s + std::string(8, '\x00');
}

// decode_image refuses `path` with 1 and with 3 channels alike: an IoError that names the file and
// says each of `texts`.
void check_refused(const std::string& path, std::initializer_list<std::string> texts) {
  for (const int channels : {1, 3}) {
    INFO(path << ", " << channels << " channel(s)");
    const std::string msg = message_of<vts::IoError>([&] { vts::data::decode_image(path, channels); });
    CHECK_THAT(msg, Contains(path));
    for (const std::string& text : texts) CHECK_THAT(msg, Contains(text));
  }
}

}  // namespace

TEST_CASE("data: decode_image refuses images above PIL's decompression-bomb limit before decoding",
          "[data][image]") {
  // PIL raises DecompressionBombError above 2 x Image.MAX_IMAGE_PIXELS = 2 x 89,478,485 pixels; the
  // old decode_image let stb_image allocate what any header claimed (a 27-byte PNM asking for
  // 16000 x 12000 pixels decoded to a 192 MB image of whatever followed). (stb_image refuses a PNG
  // of more than 2^30 bytes itself, so the sizes stay below that.)
  STATIC_REQUIRE(vts::data::kMaxImagePixels == 178956970);
  vts_test::TempDir dir;
  const std::pair<const char*, std::string> files[] = {
      {"bomb.pgm", pnm_header(16000, 12000)}, {"bomb.png", png_header(16000, 12000)},
      {"bomb.bmp", bmp_header(16000, 12000)}, {"bomb.gif", gif_header(16000, 12000)},
      {"bomb.jpg", jpeg_header(16000, 12000)}, {"bomb.tga", tga_header(16000, 12000)}};
  for (const auto& [name, bytes] : files) {
    vts_test::write_text(dir / name, bytes);
    check_refused(dir / name, {"16000x12000 = 192000000 pixels", "at most 178956970"});
  }
  // The limit itself is allowed: one pixel-row more than 13377 x 13377 is refused, that is not
  // (this header has no image data, so stb_image then says what is wrong with it).
  vts_test::write_text(dir / "over.png", png_header(13378, 13377));
  CHECK_THAT(message_of<vts::IoError>([&] { vts::data::decode_image(dir / "over.png"); }),
             Contains("13378x13377 = 178957506 pixels"));
  vts_test::write_text(dir / "under.png", png_header(13377, 13377));
  const std::string under = message_of<vts::IoError>([&] { vts::data::decode_image(dir / "under.png"); });
  CHECK_THAT(under, Contains("stb_image"));
  CHECK_THAT(under, !Contains("at most"));
}

// Found by tests/fuzz/fuzz_image: stb_image 2.27 reads a PNM whose header says width or height 0
// as an image, and decode_image returned it, empty, to a transform that then failed far from the
// file. Now it is refused as undecodable.
TEST_CASE("data: decode_image refuses an image without pixels", "[data][image]") {
  vts_test::TempDir dir;
  const std::pair<const char*, std::string> files[] = {
      {"zero.ppm", "P6\n0 0\n255\n"}, {"no_width.pgm", "P5\n0 7\n255\nabc"}, {"no_height.pgm", "P5\n7 0\n255\nabc"}};
  for (const auto& [name, bytes] : files) {
    vts_test::write_text(dir / name, bytes);
    check_refused(dir / name, {"expected a positive width and height"});
  }
  CHECK_THAT(message_of<vts::IoError>([&] { vts::data::decode_image(dir / "no_width.pgm"); }),
             Contains("0x7 pixels"));
}

// Found by tests/fuzz/fuzz_image (stb_image compiled in, under UBSan): stb_image 2.27, the
// system's libstb, builds a JPEG Huffman table from its 16 code counts without checking that they
// sum to at most 256, and writes past the table's arrays when they do not (already in
// stbi_info, before any pixel). decode_image now reads the DHT segments first, before and between
// the scans, and refuses such a table.
TEST_CASE("data: decode_image refuses a JPEG Huffman table of more than 256 codes", "[data][image]") {
  vts_test::TempDir dir;
  auto dht = [](int table_class, int id, int per_length) {
    const int codes = 16 * per_length;
    std::string s = "\xFF\xC4";
    s += char((2 + 17 + codes) >> 8);
    s += char((2 + 17 + codes) & 0xFF);
    s += char(table_class << 4 | id);
    s += std::string(16, char(per_length));
    for (int i = 0; i < codes; ++i) s += char(i & 0xFF);
    return s;
  };
  // Before the frame header, as the first segment; stb also takes fill bytes before the SOI.
  vts_test::write_text(dir / "dht.jpg", "\xFF\xD8" + dht(0, 1, 17) + "\xFF\xD9");
  vts_test::write_text(dir / "fill.jpg", "\xFF\xFF\xFF\xD8" + dht(0, 1, 17) + "\xFF\xD9");
  // Code counts that the file cuts short: stb reads zeros past the end and builds the table anyway.
  vts_test::write_text(dir / "cut.jpg", std::string("\xFF\xD8\xFF\xC4\x01\x00\x10", 7) + std::string(5, '\x60'));
  // After a scan (a progressive JPEG defines tables between scans): the walk goes through the
  // scan's data, past stuffed 0xFF 0x00 bytes and a restart marker.
  std::string later = "\xFF\xD8\xFF\xDB" + std::string("\x00\x43\x00", 3) + std::string(64, '\x01');  // DQT 0
  later += jpeg_header(8, 8).substr(2, 2 + 11);  // SOF0, 8x8, one component using table 0
  later += dht(0, 0, 1) + dht(1, 0, 1);          // valid 16-code DC and AC tables
  later += std::string("\xFF\xDA\x00\x08\x01\x01\x00\x00\x3F\x00", 10);  // SOS, one component
  later += std::string("\x12\xFF\x00\x34\xFF\xD0\x56\xFF\xFF", 9);        // data, RST0, fill
  later += dht(1, 3, 20) + "\xFF\xD9";
  vts_test::write_text(dir / "later.jpg", later);
  for (const auto& [name, want] : {std::pair<std::string, std::string>{"dht.jpg", "table 1 (DC, DHT segment at byte 2) declares 272 codes"},
                                   {"fill.jpg", "table 1 (DC, DHT segment at byte 4) declares 272 codes"},
                                   {"cut.jpg", "table 0 (AC, DHT segment at byte 2) declares 480 codes"},
                                   {"later.jpg", "table 3 (AC, DHT segment at byte "}})
    check_refused(dir / name, {want, "expected at most 256"});
  CHECK_THAT(message_of<vts::IoError>([&] { vts::data::decode_image(dir / "later.jpg"); }),
             Contains("declares 320 codes"));
}

// Found by tests/fuzz/fuzz_image (the 1- and 3-channel decodes of one file differed, twice): a
// JPEG whose frame header names a quantization table that no DQT segment defines, and one whose
// scan lists a component twice and another not at all, decoded with stb_image 2.27 to pixels
// made from uninitialised heap memory, different on every call. libjpeg (PIL) refuses the first
// two; decode_image now refuses all of them, and an undefined Huffman table too.
TEST_CASE("data: decode_image refuses a JPEG scan that uses an undefined table or leaves a component out",
          "[data][image]") {
  vts_test::TempDir dir;
  std::vector<uint8_t> px(size_t(16) * 16 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(i * 7);
  REQUIRE(stbi_write_jpg((dir / "good.jpg").c_str(), 16, 16, 3, px.data(), 90) != 0);
  const std::string good = vts_test::read_text(dir / "good.jpg");
  REQUIRE_NOTHROW(vts::data::decode_image(dir / "good.jpg"));
  // stb_image_write's frame header gives component 1 table 0 and components 2, 3 table 1, in one
  // DQT segment; make that segment define table 0 twice.
  const size_t dqt = good.find("\xFF\xDB");
  REQUIRE(dqt != std::string::npos);
  REQUIRE(good[dqt + 4] == 0);
  REQUIRE(good[dqt + 4 + 65] == 1);
  std::string no_table_1 = good;
  no_table_1[dqt + 4 + 65] = 0;
  vts_test::write_text(dir / "dqt.jpg", no_table_1);
  // And a file whose DHT segments are all renamed to APP15 (skipped): no Huffman table at all.
  std::string no_huffman = good;
  for (size_t at = 0; (at = no_huffman.find("\xFF\xC4", at)) != std::string::npos && at < no_huffman.find("\xFF\xDA");)
    no_huffman[at + 1] = '\xEF';
  vts_test::write_text(dir / "dht.jpg", no_huffman);
  // The scan lists component 3 twice and component 1 not at: stb never writes component 1.
  const size_t sos = good.find("\xFF\xDA");
  REQUIRE(good.substr(sos, 11) == std::string("\xFF\xDA\x00\x0C\x03\x01\x00\x02\x11\x03\x11", 11));
  std::string twice = good;
  twice[sos + 5] = 3;
  vts_test::write_text(dir / "twice.jpg", twice);
  // A scan of components 2 and 3 only (a shorter SOS header; what follows decodes as noise).
  std::string missing = good.substr(0, sos) + std::string("\xFF\xDA\x00\x0A\x02\x02\x11\x03\x11", 9) +
                        good.substr(sos + 11);
  vts_test::write_text(dir / "missing.jpg", missing);
  check_refused(dir / "twice.jpg", {"lists component 3 twice"});
  check_refused(dir / "missing.jpg", {"component 1 is coded by no scan"});
  check_refused(dir / "dqt.jpg", {"component 2 uses quantization table 1, which is not defined before its scan"});
  check_refused(dir / "dht.jpg", {"component 1 uses DC Huffman table 0, which is not defined before its scan"});
}

// Found by tests/fuzz/fuzz_image (AddressSanitizer: heap-buffer-overflow in stbi__convert_16_to_8):
// stb_image 2.27 converts the channels of a 16-bit PGM/PPM (maxval above 255) with its 8-bit
// converter, so decoding one to another channel count read past a buffer half the size and
// returned garbage. decode_image now decodes 16-bit files in their own channels and converts them
// itself.
TEST_CASE("data: decode_image converts 16-bit PNM files to the asked channels", "[data][image]") {
  vts_test::TempDir dir;
  // 3x2 grey, maxval 65535, distinct bytes. (Which 8 bits stb keeps of a big-endian sample is its
  // business: 2.27 keeps the second byte. The channel counts must agree with each other.)
  std::string pgm = "P5\n3 2\n65535\n";
  for (int i = 0; i < 6; ++i) {
    pgm += char(40 * i + 3);
    pgm += char(13 * i + 5);
  }
  vts_test::write_text(dir / "grey16.pgm", pgm);
  const auto g1 = vts::data::decode_image(dir / "grey16.pgm", 1);
  REQUIRE(g1.pixels.size() == 6);
  const auto g3 = vts::data::decode_image(dir / "grey16.pgm", 3);
  const auto g4 = vts::data::decode_image(dir / "grey16.pgm", 4);
  REQUIRE(g3.pixels.size() == 18);
  REQUIRE(g4.pixels.size() == 24);
  for (size_t i = 0; i < 6; ++i) {
    for (size_t c = 0; c < 3; ++c) {
      CHECK(g3.pixels[3 * i + c] == g1.pixels[i]);
      CHECK(g4.pixels[4 * i + c] == g1.pixels[i]);
    }
    CHECK(g4.pixels[4 * i + 3] == 255);
  }
  CHECK(g1.pixels != std::vector<uint8_t>(6, g1.pixels[0]));
  // 2x1 colour, maxval 1000: grey is PIL's weighting of the RGB decode.
  std::string ppm = "P6\n2 1\n1000\n";
  for (int i = 0; i < 6; ++i) {
    ppm += char(i);
    ppm += char(50 * i + 7);
  }
  vts_test::write_text(dir / "rgb16.ppm", ppm);
  const auto c3 = vts::data::decode_image(dir / "rgb16.ppm", 3);
  REQUIRE(c3.pixels.size() == 6);
  CHECK(vts::data::decode_image(dir / "rgb16.ppm", 1).pixels ==
        std::vector<uint8_t>{vts::data::pil_luma(c3.pixels.data()), vts::data::pil_luma(c3.pixels.data() + 3)});
  const auto c4 = vts::data::decode_image(dir / "rgb16.ppm", 4);
  CHECK(c4.pixels == std::vector<uint8_t>{c3.pixels[0], c3.pixels[1], c3.pixels[2], 255, c3.pixels[3], c3.pixels[4],
                                          c3.pixels[5], 255});
}

// Found by tests/fuzz/fuzz_image (UBSan: signed integer overflow in stbi__pnm_getinteger): stb_image
// 2.27 reads a PNM header's numbers into an int without an overflow check. The header is now read
// first and a number above 2^31 - 1 refused.
TEST_CASE("data: decode_image refuses PNM header numbers that overflow", "[data][image]") {
  vts_test::TempDir dir;
  const std::pair<const char*, std::string> files[] = {
      {"height.ppm", "P6\n# comment\n1 16666666666666666666666666666666\n255\n"},
      {"width.pgm", "P5 4294967297 1 255\n\x01"},
      {"maxval.pgm", "P5\n1 1\n99999999999\n\x01"}};
  const char* what[] = {"the height 166666666666666666666666...", "the width 4294967297", "the maximum value 99999999999"};
  for (size_t i = 0; i < 3; ++i) {
    vts_test::write_text(dir / files[i].first, files[i].second);
    check_refused(dir / files[i].first, {std::string("PNM header: ") + what[i], "is larger than 2147483647"});
  }
  // Numbers up to 2^31 - 1 are left to stb (which then finds this one too large to decode).
  vts_test::write_text(dir / "fits.pgm", "P5 2147483647 1 255\n\x01");
  CHECK_THAT(message_of<vts::IoError>([&] { vts::data::decode_image(dir / "fits.pgm"); }), !Contains("PNM header"));
}

// Found by tests/fuzz/fuzz_image (the 1- and 3-channel decodes of one file differed): stb_image 2.27
// returns a truncated PGM/PPM with the missing pixels uninitialised. Refused now, as PIL does
// ("image file is truncated").
TEST_CASE("data: decode_image refuses a truncated PNM", "[data][image]") {
  vts_test::TempDir dir;
  vts_test::write_text(dir / "short.pgm", "P5\n25 205\n255\n" + std::string(100, '\x40'));
  vts_test::write_text(dir / "short16.ppm", "P6 2 2 65535 " + std::string(23, '\x40'));
  vts_test::write_text(dir / "none.pgm", "P5 2 2 255");  // stb reads the maximum as 25, then no pixels
  const std::pair<const char*, const char*> want[] = {
      {"short.pgm", "truncated PNM: its header says 25x205 pixels of 1 bytes (5125 bytes), the file holds 100"},
      {"short16.ppm", "truncated PNM: its header says 2x2 pixels of 6 bytes (24 bytes), the file holds 23"},
      {"none.pgm", "the file holds 0 after the header"}};
  for (const auto& [name, text] : want) check_refused(dir / name, {text});
  // Found by tests/fuzz/fuzz_image (2026-12-06; the 1- and 3-channel decodes differed): stb does not
  // count a digit that is the file's last byte, so this header ends with the maximum value 35552
  // for stb (16 bits, no pixels), not 355525 (which it would refuse).
  vts_test::write_text(dir / "last_digit.pgm", std::string("P55\v3056\v355525"));
  check_refused(dir / "last_digit.pgm",
                {"truncated PNM: its header says 5x3056 pixels of 2 bytes (30560 bytes), the file holds 0"});
  vts_test::write_text(dir / "whole.pgm", "P5 2 2 255\n" + std::string(4, '\x40'));
  CHECK(vts::data::decode_image(dir / "whole.pgm", 1).pixels == std::vector<uint8_t>(4, 0x40));
}

// Found by tests/fuzz/fuzz_image (the 1- and 3-channel decodes of one file differed): the same for
// an uncompressed true-colour TGA, whose missing rows stb_image 2.27 leaves uninitialised.
TEST_CASE("data: decode_image refuses a truncated uncompressed TGA", "[data][image]") {
  vts_test::TempDir dir;
  std::vector<uint8_t> px(size_t(6) * 5 * 3, 0x55);
  stbi_write_tga_with_rle = 0;
  REQUIRE(stbi_write_tga((dir / "whole.tga").c_str(), 6, 5, 3, px.data()) != 0);
  stbi_write_tga_with_rle = 1;
  CHECK(vts::data::decode_image(dir / "whole.tga").pixels == px);
  const std::string whole = vts_test::read_text(dir / "whole.tga");
  REQUIRE(whole.size() >= 18 + 90);
  vts_test::write_text(dir / "cut.tga", whole.substr(0, 18 + 50));
  check_refused(dir / "cut.tga", {"truncated TGA: its header says 6x5 pixels of 3 bytes (90 bytes), the file holds 50"});

  // Found by tests/fuzz/fuzz_image (2026-12-06, a 17-byte file): a TGA's first byte is the length
  // of its ID field, so it can be '#' or 'S' (the first bytes of HDR and PIC signatures) or 0xFF (a
  // JPEG's), and the check did not reach such a TGA; nor one shorter than its 18-byte header,
  // which stb reads with zeros for the missing bytes.
  for (const int id_length : {int('#'), int('S'), 0xFF}) {
    std::string tga(18, '\0');
    tga[0] = char(id_length);
    tga[2] = 2;   // uncompressed true colour
    tga[12] = 7;  // 7 x 3 pixels of 24 bits
    tga[14] = 3;
    tga[16] = 24;
    const std::string name = "id" + std::to_string(id_length) + ".tga";
    vts_test::write_text(dir / name, tga + std::string(size_t(id_length), 'i') + std::string(40, '\x33'));
    check_refused(dir / name, {"truncated TGA: its header says 7x3 pixels of 3 bytes (63 bytes), the file holds 40"});
    vts_test::write_text(dir / name, tga + std::string(size_t(id_length), 'i') + std::string(63, '\x33'));
    CHECK(vts::data::decode_image(dir / name).pixels == std::vector<uint8_t>(63, 0x33));
  }
  // The fuzzer's file: ID length '#', true colour, 115 x 24 pixels of 24 bits, no 18th byte.
  const std::string short_header("#\0\2\5#@\2\5\0vs(s\0\x18\0\x18", 17);
  vts_test::write_text(dir / "short.tga", short_header);
  check_refused(dir / "short.tga", {"truncated TGA: its header says 115x24 pixels of 3 bytes (8280 bytes), the file holds 0"});
}

// stb_image 2.27 decodes a run-length encoded or indexed TGA, and a BMP, that is cut short as if the
// missing bytes were zeros (so a few bytes could claim a 500 MB image); PIL refuses them as
// truncated, and so does decode_image now. A file that holds every byte stb reads still decodes.
TEST_CASE("data: decode_image refuses a truncated run-length encoded or indexed TGA and a truncated BMP",
          "[data][image]") {
  vts_test::TempDir dir;
  std::vector<uint8_t> px(size_t(6) * 5 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(i < 45 ? 0x40 : i * 7);  // runs, then raw pixels
  REQUIRE(stbi_write_tga_with_rle == 1);
  REQUIRE(stbi_write_tga((dir / "rle.tga").c_str(), 6, 5, 3, px.data()) != 0);
  CHECK(vts::data::decode_image(dir / "rle.tga").pixels == px);
  const std::string rle = vts_test::read_text(dir / "rle.tga");
  REQUIRE(rle[2] == 10);  // run-length encoded true colour
  vts_test::write_text(dir / "rle_cut.tga", rle.substr(0, rle.size() - 10));
  check_refused(dir / "rle_cut.tga", {"truncated TGA: its header says 6x5 pixels, run-length encoded; the",
                                      "bytes after the header hold the packets of "});

  // Indexed, uncompressed: 4x2 pixels of 8-bit indices into a palette of 2 entries of 24 bits.
  std::string indexed(18, '\0');
  indexed[1] = 1;   // a colour map
  indexed[2] = 1;   // indexed, uncompressed
  indexed[5] = 2;   // 2 entries
  indexed[7] = 24;  // of 24 bits
  indexed[12] = 4;
  indexed[14] = 2;
  indexed[16] = 8;
  indexed += std::string("\x10\x20\x30\xA0\xB0\xC0", 6) + std::string("\0\1\0\1\1\0\1\0", 8);
  vts_test::write_text(dir / "indexed.tga", indexed);
  CHECK(vts::data::decode_image(dir / "indexed.tga").pixels.size() == 24);
  vts_test::write_text(dir / "indexed_cut.tga", indexed.substr(0, indexed.size() - 3));
  check_refused(dir / "indexed_cut.tga",
                {"truncated TGA: its header says 4x2 pixels of 1 bytes (8 bytes), the file holds 5 after the header and palette"});

  // BMP, 24 bits, 5x4: rows of 15 bytes padded to 16, from byte 54; the last row needs no padding.
  REQUIRE(stbi_write_bmp((dir / "a.bmp").c_str(), 5, 4, 3, px.data()) != 0);
  const std::string bmp = vts_test::read_text(dir / "a.bmp");
  REQUIRE(bmp.size() == 54 + 64);
  vts_test::write_text(dir / "no_last_pad.bmp", bmp.substr(0, 54 + 63));
  CHECK(vts::data::decode_image(dir / "no_last_pad.bmp").pixels == vts::data::decode_image(dir / "a.bmp").pixels);
  vts_test::write_text(dir / "cut.bmp", bmp.substr(0, 54 + 62));
  check_refused(dir / "cut.bmp",
                {"truncated BMP: its header says 5x4 pixels of 24 bits (63 bytes from byte 54), the file holds 62"});
  // A 54-byte header that claims 13000x13000 pixels (below the bomb limit): refused, not a 500 MB decode.
  std::string claim = bmp.substr(0, 54);
  for (const int at : {18, 22}) {
    claim[size_t(at)] = char(13000 & 0xFF);
    claim[size_t(at) + 1] = char(13000 >> 8);
  }
  vts_test::write_text(dir / "claim.bmp", claim);
  check_refused(dir / "claim.bmp", {"truncated BMP: its header says 13000x13000 pixels of 24 bits", "the file holds 0"});
}

// stb_image 2.27 reads zeros past the end of a JPEG, decodes every block of the image from them and
// only then refuses the file ("expected marker": a 693-byte file claiming 65285x1266 pixels was an
// 83-megapixel decode before that error). decode_image refuses it first and says where it ends.
// PIL refuses each of these files too ("image file is truncated"), the one missing only its EOI
// marker included.
TEST_CASE("data: decode_image refuses a JPEG that ends before its EOI marker and says where", "[data][image]") {
  vts_test::TempDir dir;
  std::vector<uint8_t> px(size_t(24) * 16 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(i * 13 + i / 72 * 5);
  REQUIRE(stbi_write_jpg((dir / "whole.jpg").c_str(), 24, 16, 3, px.data(), 90) != 0);
  const std::string whole = vts_test::read_text(dir / "whole.jpg");
  const auto decoded = vts::data::decode_image(dir / "whole.jpg");
  REQUIRE(whole.substr(whole.size() - 2) == "\xFF\xD9");
  // stb_image_write's layout: SOI, APP0 (JFIF) at byte 2, DQT, SOF0, DHT, SOS and the scan, EOI.
  REQUIRE(whole.substr(2, 2) == "\xFF\xE0");
  const size_t dqt = whole.find("\xFF\xDB"), sos = whole.find("\xFF\xDA");
  REQUIRE(dqt != std::string::npos);
  REQUIRE(sos != std::string::npos);
  for (size_t cut = 2; cut < whole.size(); ++cut) {
    INFO("the first " << cut << " of " << whole.size() << " bytes");
    vts_test::write_text(dir / "cut.jpg", whole.substr(0, cut));
    CHECK_THAT(message_of<vts::IoError>([&] { vts::data::decode_image(dir / "cut.jpg"); }),
               Contains("JPEG file is truncated: its " + std::to_string(cut) + " bytes end ") &&
                   Contains("expected the image's segments up to an EOI marker"));
  }
  const std::pair<size_t, std::string> cuts[] = {
      {2, "after the SOI marker at byte 0, where a marker was expected"},
      {dqt, "after the APP0 segment at byte 2, where a marker was expected"},
      {dqt + 1, "after the APP0 segment at byte 2, where a marker was expected"},  // its 0xFF only
      {dqt + 10, "inside the DQT segment at byte " + std::to_string(dqt)},
      {sos + 5, "inside the entropy-coded data of the scan (SOS segment) at byte " + std::to_string(sos)},
      {whole.size() - 2, "inside the entropy-coded data of the scan (SOS segment) at byte " + std::to_string(sos)}};
  for (const auto& [cut, where] : cuts) {
    vts_test::write_text(dir / "cut.jpg", whole.substr(0, cut));
    check_refused(dir / "cut.jpg", {"JPEG file is truncated: its " + std::to_string(cut) + " bytes end " + where});
  }
  // Bytes after the EOI marker change nothing.
  vts_test::write_text(dir / "tail.jpg", whole + std::string("\0\0\xFF", 3));
  CHECK(vts::data::decode_image(dir / "tail.jpg").pixels == decoded.pixels);
}

// stb_image 2.27 decodes a GIF cut short without an error: it reads zeros past the end and gives
// the pixels it did not reach the background colour. PIL refuses such a file ("image file is
// truncated"), and so does decode_image; one cut after its last pixel decodes whole.
TEST_CASE("data: decode_image refuses a GIF whose pixels run past the end of the file", "[data][image]") {
  using vts_test_common::GifLayout;
  vts_test::TempDir dir;
  const GifLayout layouts[] = {{.width = 7, .height = 5},
                               {.width = 7, .height = 5, .interlaced = true, .extensions = true},
                               {.width = 7, .height = 5, .frame_x = 2, .frame_y = 1, .frame_width = 4, .frame_height = 3}};
  for (const GifLayout& layout : layouts) {
    const int fw = layout.frame_width < 0 ? layout.width : layout.frame_width;
    const int fh = layout.frame_height < 0 ? layout.height : layout.frame_height;
    INFO("a " << fw << "x" << fh << " frame on a " << layout.width << "x" << layout.height << " screen"
              << (layout.interlaced ? ", interlaced" : "") << (layout.extensions ? ", after two extensions" : ""));
    const std::vector<uint8_t> gif = vts_test_common::four_colour_gif(layout);
    const std::string whole(gif.begin(), gif.end());
    vts_test::write_text(dir / "whole.gif", whole);
    const auto decoded = vts::data::decode_image(dir / "whole.gif");
    REQUIRE(decoded.pixels.size() == size_t(layout.width) * size_t(layout.height) * 3);
    if (fw == layout.width && !layout.interlaced) {  // the writer's pixels, row by row
      for (int i = 0; i < fw * fh; ++i)
        for (int c = 0; c < 3; ++c)
          REQUIRE(decoded.pixels[size_t(i) * 3 + size_t(c)] ==
                  vts_test_common::kGifPalette[vts_test_common::gif_pixel_index(i, fw)][c]);
    }
    // Header (13 bytes), palette (12), the extensions (20), the image descriptor (10), the LZW code
    // size (1), then one sub-block: its length, then 3-bit codes, a clear code before every two
    // pixels; the last pixel's code ends in byte `complete` - 1.
    const size_t descriptor = 25 + (layout.extensions ? 20 : 0), data = descriptor + 12;
    REQUIRE(whole[descriptor] == ',');
    const size_t codes = size_t(fw * fh) + size_t(fw * fh + 1) / 2;
    const size_t complete = data + (codes * 3 + 7) / 8;
    REQUIRE(complete < whole.size() - 2);  // the end code, the block terminator and the trailer follow
    for (size_t cut = 6; cut < whole.size(); ++cut) {
      INFO("the first " << cut << " of " << whole.size() << " bytes");
      vts_test::write_text(dir / "cut.gif", whole.substr(0, cut));
      if (cut >= complete) {
        CHECK(vts::data::decode_image(dir / "cut.gif").pixels == decoded.pixels);
        continue;
      }
      const std::string where = cut <= descriptor ? "before its first image"
                                : cut < descriptor + 10 ? "inside the image descriptor at byte " + std::to_string(descriptor)
                                                        : "inside the pixels of the image at byte " + std::to_string(descriptor);
      CHECK_THAT(message_of<vts::IoError>([&] { vts::data::decode_image(dir / "cut.gif"); }),
                 Contains("GIF file is truncated: its " + std::to_string(cut) + " bytes end " + where));
    }
    // Three bytes of codes hold eight: clear, pixel, pixel, clear, pixel, pixel, clear, pixel.
    vts_test::write_text(dir / "cut.gif", whole.substr(0, data + 3));
    check_refused(dir / "cut.gif", {"inside the pixels of the image at byte " + std::to_string(descriptor) +
                                    ", after 5 of its " + std::to_string(fw) + "x" + std::to_string(fh) +
                                    " pixels; expected the rest of its LZW data"});
  }
}

// Found by tests/fuzz/fuzz_image (2026-12-06; the 1- and 3-channel decodes of one file differed):
// stb_image 2.27 keeps a BMP's palette in a stack array and fills only the entries the file holds,
// so a pixel whose colour lies beyond the palette took never-written stack bytes.
TEST_CASE("data: decode_image refuses a BMP pixel whose colour is beyond its palette", "[data][image]") {
  vts_test::TempDir dir;
  // 3x2 pixels of 1 bit; a palette of one colour (the 4 bytes between the headers and byte 58).
  std::string bmp = "BM";
  put_le(bmp, 58 + 8, 4);
  put_le(bmp, 0, 4);
  put_le(bmp, 58, 4);  // pixel offset
  put_le(bmp, 40, 4);  // BITMAPINFOHEADER
  put_le(bmp, 3, 4);
  put_le(bmp, 2, 4);
  put_le(bmp, 1, 2);  // planes
  put_le(bmp, 1, 2);  // bits a pixel
  for (int k = 0; k < 6; ++k) put_le(bmp, 0, 4);
  bmp += std::string("\x10\x20\x30\x00", 4);  // the palette's one colour
  vts_test::write_text(dir / "zeros.bmp", bmp + std::string(8, '\0'));
  CHECK(vts::data::decode_image(dir / "zeros.bmp").pixels == std::vector<uint8_t>{0x30, 0x20, 0x10, 0x30, 0x20, 0x10,
                                                                                 0x30, 0x20, 0x10, 0x30, 0x20, 0x10,
                                                                                 0x30, 0x20, 0x10, 0x30, 0x20, 0x10});
  vts_test::write_text(dir / "beyond.bmp", bmp + std::string("\x00\x00\x00\x00\x20\x00\x00\x00", 8));
  check_refused(dir / "beyond.bmp", {"BMP pixel 2 of row 1 (in file order) is colour 1; expected one of the 1 colours"});
  // A pixel offset inside the header: stb counts -1 colours, reads none, and the pixels from elsewhere.
  std::string inside = bmp.substr(0, 54) + std::string(8, '\0');
  inside[10] = 50;
  vts_test::write_text(dir / "inside.bmp", inside);
  check_refused(dir / "inside.bmp", {"BMP: the pixel offset 50 leaves no room for the palette of a 1-bit image"});
}

// Found by tests/fuzz/fuzz_image (the 1- and 3-channel decodes of one file differed): stb_image 2.27
// reads the pixels of a truncated flat (uncompressed) Radiance HDR file from uninitialised stack
// bytes. HDR is not a format decode_image promises (nor one PIL opens), so HDR files, and
// Softimage PIC files likewise, are now refused by their signature.
TEST_CASE("data: decode_image refuses Radiance HDR and Softimage PIC files", "[data][image]") {
  vts_test::TempDir dir;
  const std::string hdr = "#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 4 +X 5\n";
  vts_test::write_text(dir / "cut.hdr", hdr + std::string(9, '\x40'));  // 20 pixels promised, 2.25 present
  vts_test::write_text(dir / "whole.hdr", hdr + std::string(80, '\x40'));
  vts_test::write_text(dir / "rgbe.hdr", "#?RGBE\nFORMAT=32-bit_rle_rgbe\n\n-Y 1 +X 1\n" + std::string(4, '\x40'));
  std::string pic = std::string("\x53\x80\xF6\x34", 4) + std::string(84, '\x00') + "PICT" + std::string(20, '\x00');
  vts_test::write_text(dir / "a.pic", pic);
  for (const char* name : {"cut.hdr", "whole.hdr", "rgbe.hdr", "a.pic"})
    check_refused(dir / name, {name[0] == 'a' ? "it is a Softimage PIC image" : "it is a Radiance HDR image"});
}

// Found by tests/fuzz/fuzz_image (2026-12-06): stb's FILE* reader "rewinds" only to the start of
// its current 128-byte buffer, so stbi_info_from_file, trying format after format on this broken
// JPEG, parsed a PNM header at byte 256 (a signed overflow in stb) and decode_image reported its
// nonsense size ("its header says -566259027x0 pixels"). decode_image now hands stb the file in
// memory, where every probe starts at byte 0: the error is the JPEG's own.
TEST_CASE("data: decode_image probes every format from the file's first byte", "[data][image]") {
  static const uint8_t broken_jpeg[] = {
      0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01,
      0x00, 0x00, 0xff, 0xdb, 0x00, 0x84, 0x00, 0x06, 0x04, 0x05, 0x06, 0x05, 0x04, 0x06, 0x06, 0x05, 0x06, 0x07,
      0x07, 0x06, 0x08, 0x0a, 0x10, 0x0a, 0x0a, 0x09, 0x09, 0x0a, 0x14, 0x0e, 0x0f, 0x0c, 0x10, 0x17, 0x14, 0x18,
      0x18, 0x17, 0x14, 0x49, 0x16, 0x1a, 0x1d, 0x25, 0x1f, 0x1a, 0x1b, 0x23, 0x1c, 0x16, 0x16, 0x20, 0x2c, 0x20,
      0x23, 0x26, 0x27, 0x29, 0x2a, 0x29, 0x19, 0x1f, 0x2d, 0x30, 0x2d, 0x28, 0x30, 0x25, 0x28, 0x29, 0x28, 0x01,
      0x07, 0x07, 0x07, 0x0a, 0x08, 0x0a, 0x13, 0x0a, 0x0a, 0x13, 0x28, 0x1a, 0x16, 0x1a, 0x28, 0x28, 0x28, 0x28,
      0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28,
      0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28,
      0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49,
      0x46, 0x00, 0x03, 0x01, 0x00, 0x00, 0x01, 0x2e, 0x01, 0x00, 0x00, 0xff, 0xdb, 0x00, 0x84, 0x00, 0x06, 0x04,
      0x05, 0x06, 0x05, 0x04, 0x06, 0x06, 0x05, 0x06, 0x07, 0x07, 0x06, 0x08, 0x0a, 0x10, 0x0a, 0x0a, 0x09, 0x09,
      0x0a, 0x14, 0x0e, 0x0f, 0x0c, 0x10, 0x17, 0x14, 0x18, 0x18, 0x17, 0x14, 0x16, 0x16, 0x1a, 0x1d, 0x25, 0x1f,
      0x1a, 0x1b, 0x23, 0x1c, 0x16, 0x16, 0x20, 0x2c, 0xff, 0xd8, 0x50, 0x4c, 0x54, 0x45, 0xff, 0xe0, 0x00, 0x10,
      0x4a, 0x46, 0x49, 0x46, 0x00, 0x03, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0xff, 0xdb, 0x00, 0x84,
      0x00, 0x05, 0x21, 0x31, 0x50, 0x35, 0x36, 0x35, 0x35, 0x33, 0x35, 0x34, 0x35, 0x35, 0x35, 0x35, 0x33, 0x35,
      0x34, 0x35, 0x35, 0x35, 0x30, 0x35, 0x33, 0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1,
      0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43,
      0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0xff, 0xd8, 0xff, 0x57, 0x58, 0x59, 0xe0,
  };
  static_assert(sizeof broken_jpeg == 324);
  vts_test::TempDir dir;
  vts_test::write_text(dir / "broken.jpg", std::string(reinterpret_cast<const char*>(broken_jpeg), sizeof broken_jpeg));
  check_refused(dir / "broken.jpg", {"broken.jpg' (stb_image: unknown marker)"});
}

// Found by tests/fuzz/fuzz_image: stb_image 2.27 reallocates its PNG data buffer to an IDAT
// chunk's claimed length before reading it, so a 152-byte file made it allocate 1.1 GB (2 GB at
// most). Now a chunk longer than the rest of the file is refused before stb reads the file.
TEST_CASE("data: decode_image refuses a PNG chunk longer than the file", "[data][image]") {
  vts_test::TempDir dir;
  std::string png = png_header(5, 4);
  png += std::string("\x7F\xFF\xFF\xFF", 4);  // 2^31 - 1 bytes claimed
  png += "IDAT" + std::string(40, '\x11');
  vts_test::write_text(dir / "long.png", png);
  check_refused(dir / "long.png", {"PNG chunk 'IDAT' at byte 33 says it holds 2147483647 bytes; expected at most the 40 bytes"});
}

TEST_CASE("data: decode_image reads PNG and JPEG, forces RGB, and names undecodable files", "[data][image]") {
  vts_test::TempDir dir;
  const int w = 7, h = 5;
  const auto rgb = random_bytes(size_t(w) * h * 3, 9);
  REQUIRE(stbi_write_png((dir / "a.png").c_str(), w, h, 3, rgb.data(), w * 3) != 0);
  const auto img = vts::data::decode_image(dir / "a.png");
  CHECK(img.height == h);
  CHECK(img.width == w);
  CHECK(img.channels == 3);
  CHECK(img.pixels == rgb);

  const auto grey = random_bytes(size_t(w) * h, 10);
  REQUIRE(stbi_write_png((dir / "g.png").c_str(), w, h, 1, grey.data(), w) != 0);
  const auto g3 = vts::data::decode_image(dir / "g.png", 3);
  REQUIRE(g3.pixels.size() == size_t(w) * h * 3);
  for (size_t i = 0; i < grey.size(); ++i) {
    CHECK(g3.pixels[3 * i] == grey[i]);
    CHECK(g3.pixels[3 * i + 2] == grey[i]);
  }

  // Colour to grey is PIL's convert("L") (L = R·299/1000 + G·587/1000 + B·114/1000, rounded), not
  // stb's (77 R + 150 G + 29 B) >> 8: pure green is 150 in PIL, 149 in stb. Alpha is ignored.
  const std::vector<uint8_t> primaries = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 1, 2, 3, 200, 100, 50};
  REQUIRE(stbi_write_png((dir / "p.png").c_str(), 6, 1, 3, primaries.data(), 18) != 0);
  CHECK(vts::data::decode_image(dir / "p.png", 1).pixels == std::vector<uint8_t>{76, 150, 29, 255, 2, 124});
  REQUIRE(stbi_write_png((dir / "c.png").c_str(), w, h, 3, rgb.data(), w * 3) != 0);
  std::vector<uint8_t> rgba(size_t(w) * h * 4);
  for (size_t i = 0; i < size_t(w) * h; ++i) {
    std::copy_n(rgb.begin() + std::ptrdiff_t(3 * i), 3, rgba.begin() + std::ptrdiff_t(4 * i));
    rgba[4 * i + 3] = uint8_t(i * 37);
  }
  REQUIRE(stbi_write_png((dir / "ca.png").c_str(), w, h, 4, rgba.data(), w * 4) != 0);
  for (const char* name : {"c.png", "ca.png"}) {
    INFO(name);
    const auto g1 = vts::data::decode_image(dir / name, 1);
    REQUIRE(g1.channels == 1);
    REQUIRE(g1.pixels.size() == size_t(w) * h);
    for (size_t i = 0; i < g1.pixels.size(); ++i) {
      const int want = (rgb[3 * i] * 19595 + rgb[3 * i + 1] * 38470 + rgb[3 * i + 2] * 7471 + 0x8000) >> 16;
      CHECK(int(g1.pixels[i]) == want);
    }
  }
  CHECK(vts::data::decode_image(dir / "g.png", 1).pixels == grey);  // grey files stay as they are

  // A smooth JPEG decodes close to its source (lossy, so within a few levels).
  std::vector<uint8_t> smooth(size_t(32) * 24 * 3);
  for (int y = 0; y < 24; ++y)
    for (int x = 0; x < 32; ++x)
      for (int k = 0; k < 3; ++k) smooth[(size_t(y) * 32 + x) * 3 + k] = uint8_t(40 + 4 * x + 3 * y + 20 * k);
  REQUIRE(stbi_write_jpg((dir / "s.jpg").c_str(), 32, 24, 3, smooth.data(), 100) != 0);
  const auto jpg = vts::data::decode_image(dir / "s.jpg");
  REQUIRE(jpg.pixels.size() == smooth.size());
  int worst = 0;
  for (size_t i = 0; i < smooth.size(); ++i) worst = std::max(worst, std::abs(int(jpg.pixels[i]) - int(smooth[i])));
  CHECK(worst <= 8);

  vts_test::write_text(dir / "bad.jpg", "this is not a JPEG file at all");
  CHECK_THAT(message_of<vts::IoError>([&] { vts::data::decode_image(dir / "bad.jpg"); }),
             Contains(dir / "bad.jpg") && Contains("cannot decode"));
  // A PNG cut in half is detected, not returned half-filled.
  const std::string bytes = vts_test::read_text(dir / "a.png");
  vts_test::write_text(dir / "cut.png", bytes.substr(0, bytes.size() / 2));
  CHECK_THAT(message_of<vts::IoError>([&] { vts::data::decode_image(dir / "cut.png"); }), Contains(dir / "cut.png"));
  CHECK_THAT(message_of<vts::IoError>([&] { vts::data::decode_image(dir / "missing.png"); }),
             Contains(dir / "missing.png") && Contains("cannot open"));
  // stb_image says "unknown image type" of both; the file system knows better.
  vts_test::write_text(dir / "empty.png", "");
  CHECK_THAT(message_of<vts::IoError>([&] { vts::data::decode_image(dir / "empty.png"); }),
             Contains(dir / "empty.png") && Contains("empty file") && !Contains("unknown image type"));
  std::filesystem::create_directory(dir / "folder.png");
  CHECK_THAT(message_of<vts::IoError>([&] { vts::data::decode_image(dir / "folder.png"); }),
             Contains(dir / "folder.png") && Contains("is a directory") && !Contains("unknown image type"));
}

// stb_image's memory reader takes the length as an int, so a file of 2^31 bytes or more is refused
// by its size before any byte is read (a sparse file: nothing is written to the disk).
TEST_CASE("data: decode_image refuses a file larger than stb_image's int length", "[data][image]") {
  vts_test::TempDir dir;
  vts_test::write_text(dir / "huge.png", png_header(5, 4));
  std::error_code ec;
  std::filesystem::resize_file(dir / "huge.png", uintmax_t(INT_MAX) + 1, ec);
  if (ec) {
    WARN("not checked: cannot make a sparse 2 GiB file here: " << ec.message());
    return;
  }
  check_refused(dir / "huge.png", {"it is 2147483648 bytes; expected at most 2147483647 (stb_image's limit)"});
}
