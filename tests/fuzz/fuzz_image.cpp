// libFuzzer target for image decoding (vts::data::decode_image, 1 and 3 channels). The input is
// written to a temporary file because the decoder takes a path.
//
// stb_image's implementation is compiled into this target (the library links the system's
// libstb, built from the same header), so the fuzzer sees stb's branches and the sanitizers its
// memory accesses.
//
// Oracle: each decode either throws vts::IoError naming the file, or returns a width×height image
// of at most kMaxImagePixels pixels and width×height×channels bytes, of the size stbi_info reads
// from the header (the size decode_image checks before decoding). Both channel counts refuse or
// accept the file alike and agree on its size, and the grey image is PIL's luma of the RGB one
// (for a grey file that is the grey value itself). Any other exception, a sanitizer report, an
// allocation past -malloc_limit_mb or a mismatch is a crash.
//
// Not decoded: an input whose header claims more than kSlowPixels pixels but no more than the
// limit. stb decodes a truncated JPEG or GIF as if the missing bytes were zeros (decode_image
// refuses truncated TGA, BMP and PNM files, but cannot tell for those two without decoding), so a
// 693-byte JPEG that says 65285×1266 is an 83-megapixel decode and only a timeout to report;
// headers above the limit are decoded (decode_image must refuse them).
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
#undef STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_util.hpp"
#include "vts/data/image.hpp"

using vts_fuzz::fail;
namespace data = vts::data;

// UBSan's settings for this target, read before main: stop at the first report (scripts/fuzz makes
// the checks of the suppressions recoverable), and suppress the reports of stb 2.27 that
// fuzz_image.ubsan.supp explains.
#ifdef VTS_FUZZ_UBSAN_SUPPRESSIONS
extern "C" const char* __ubsan_default_options() {
  return "halt_on_error=1:print_stacktrace=1:suppressions=" VTS_FUZZ_UBSAN_SUPPRESSIONS;
}
#endif

namespace {

constexpr int64_t kSlowPixels = int64_t(1) << 18;

// The header's size as stbi_info reads it, after decode_image's own structure checks (stb's info
// already builds JPEG Huffman tables, which those checks guard); nullopt when either refuses. From
// memory, as decode_image asks it (stb's FILE* reader does not rewind to the file's start).
std::optional<std::pair<int, int>> header_size(const std::string& path, const uint8_t* bytes, size_t size) {
  try {
    data::detail::check_image_structure(bytes, size, path);
  } catch (const vts::IoError&) {
    return std::nullopt;
  }
  int w = 0, h = 0, c = 0;
  if (size <= size_t(INT_MAX) && stbi_info_from_memory(bytes, static_cast<int>(size), &w, &h, &c)) return std::pair{w, h};
  return std::nullopt;
}

std::optional<data::ImageU8> decode(const std::string& path, int channels) {
  try {
    data::ImageU8 img = data::decode_image(path, channels);
    if (img.width <= 0 || img.height <= 0 || img.channels != channels) fail("bad size or channel count");
    if (int64_t(img.width) * img.height > data::kMaxImagePixels) fail("an image above the pixel limit");
    if (img.pixels.size() != size_t(img.width) * size_t(img.height) * size_t(channels)) fail("wrong byte count");
    return img;
  } catch (const vts::IoError& e) {
    if (!std::strstr(e.what(), path.c_str())) fail("IoError does not name the file");
    return std::nullopt;
  }
}

// A GIF with a 4-colour palette whose LZW stream sends a clear code before every two pixels, so
// every code stays 3 bits wide.
std::vector<uint8_t> tiny_gif(int w, int h) {
  std::vector<uint8_t> b = {'G', 'I', 'F', '8', '9', 'a', uint8_t(w), 0, uint8_t(h), 0, 0x81, 0, 0};
  const uint8_t palette[12] = {0, 0, 0, 255, 0, 0, 0, 255, 0, 40, 80, 255};
  b.insert(b.end(), palette, palette + 12);
  const uint8_t descriptor[10] = {',', 0, 0, 0, 0, uint8_t(w), 0, uint8_t(h), 0, 0};
  b.insert(b.end(), descriptor, descriptor + 10);
  b.push_back(2);  // LZW minimum code size: clear = 4, end = 5
  std::vector<int> codes;
  for (int i = 0; i < w * h; ++i) {
    if (i % 2 == 0) codes.push_back(4);
    codes.push_back((i * 3 + i / w) % 4);
  }
  codes.push_back(5);
  std::vector<uint8_t> packed;
  uint32_t acc = 0;
  int bits = 0;
  for (const int c : codes) {
    acc |= uint32_t(c) << bits;
    bits += 3;
    while (bits >= 8) {
      packed.push_back(uint8_t(acc & 0xFF));
      acc >>= 8;
      bits -= 8;
    }
  }
  if (bits) packed.push_back(uint8_t(acc));
  for (size_t at = 0; at < packed.size(); at += 255) {
    const size_t n = std::min<size_t>(255, packed.size() - at);
    b.push_back(uint8_t(n));
    b.insert(b.end(), packed.begin() + std::ptrdiff_t(at), packed.begin() + std::ptrdiff_t(at + n));
  }
  b.push_back(0);
  b.push_back(';');
  return b;
}

void write_seeds(const std::string& dir) {
  const int w = 5, h = 4;
  std::vector<uint8_t> px(size_t(w) * h * 4);
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(i * 29 + 7);
  auto at = [&](const char* name) { return dir + "/" + name; };
  for (int c = 1; c <= 4; ++c) {
    const std::string n = std::to_string(c);
    if (!stbi_write_png(at(("c" + n + ".png").c_str()).c_str(), w, h, c, px.data(), w * c)) std::abort();
    if (!stbi_write_jpg(at(("c" + n + ".jpg").c_str()).c_str(), w, h, c, px.data(), 80)) std::abort();
  }
  if (!stbi_write_bmp(at("c3.bmp").c_str(), w, h, 3, px.data())) std::abort();
  if (!stbi_write_bmp(at("c4.bmp").c_str(), w, h, 4, px.data())) std::abort();
  if (!stbi_write_tga(at("c4.tga").c_str(), w, h, 4, px.data())) std::abort();
  stbi_write_tga_with_rle = 0;
  if (!stbi_write_tga(at("c3_raw.tga").c_str(), w, h, 3, px.data())) std::abort();
  stbi_write_tga_with_rle = 1;
  std::vector<float> hdr(size_t(w) * h * 3);
  for (size_t i = 0; i < hdr.size(); ++i) hdr[i] = float(i) / 7.0f;
  if (!stbi_write_hdr(at("c3.hdr").c_str(), w, h, 3, hdr.data())) std::abort();
  const std::string p5 = "P5\n5 4\n255\n" + std::string(px.begin(), px.begin() + w * h);
  const std::string p6 = "P6\n# comment\n5 4\n255\n" + std::string(px.begin(), px.begin() + w * h * 3);
  vts_fuzz::write_file(at("c1.pgm"), p5);
  vts_fuzz::write_file(at("c3.ppm"), p6);
  vts_fuzz::write_file(at("c4.gif"), tiny_gif(w, h));
  // The classic 1x1 transparent GIF (global palette, graphic control extension).
  static const uint8_t pixel_gif[] = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0x80, 0, 0, 0xff, 0xff, 0xff, 0, 0,
                                      0, '!', 0xf9, 4, 1, 0, 0, 0, 0, ',', 0, 0, 0, 0, 1, 0, 1, 0, 0,
                                      2, 2, 'D', 1, 0, ';'};
  vts_fuzz::write_file(at("pixel.gif"), pixel_gif, sizeof pixel_gif);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) { return vts_fuzz::write_seeds_if_asked(write_seeds); }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = vts_fuzz::input_file("image", data, size);
  const std::optional<std::pair<int, int>> header = header_size(path, data, size);
  if (header) {
    const int64_t pixels = int64_t(header->first) * header->second;
    if (pixels > kSlowPixels && pixels <= data::kMaxImagePixels) return 0;
  }
  const std::optional<data::ImageU8> rgb = decode(path, 3);
  const std::optional<data::ImageU8> grey = decode(path, 1);
  if (rgb.has_value() != grey.has_value()) fail("1 and 3 channels disagree on whether the file decodes");
  if (!rgb) return 0;
  if (rgb->width != grey->width || rgb->height != grey->height) fail("1 and 3 channels disagree on the size");
  if (header && (header->first != rgb->width || header->second != rgb->height))
    fail("decoded to another size than the header's");
  for (size_t i = 0; i < grey->pixels.size(); ++i)
    if (grey->pixels[i] != data::pil_luma(rgb->pixels.data() + 3 * i)) fail("grey is not the luma of RGB");
  return 0;
}
