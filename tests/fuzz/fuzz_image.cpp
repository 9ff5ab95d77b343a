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
// limit. A file that ends before its pixels is refused in every format (a JPEG, GIF, TGA, BMP or
// PNM by decode_image before stb decodes it, a PNG by stb); but stb decodes a JPEG scan whose data
// stop early at a marker (an EOI, say) as if the missing bits were zeros, as libjpeg does with a
// warning, so a 693-byte JPEG that says 65285×1266 and ends with an EOI marker is an 83-megapixel
// decode and only a timeout to report; headers above the limit are decoded (decode_image must
// refuse them).
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

#include "../common/gif_writer.hpp"
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
  vts_fuzz::write_file(at("c4.gif"), vts_test_common::four_colour_gif({.width = w, .height = h}));
  vts_fuzz::write_file(at("c4_interlaced.gif"), vts_test_common::four_colour_gif({.width = 7,
                                                                                  .height = 5,
                                                                                  .frame_x = 1,
                                                                                  .frame_width = 6,
                                                                                  .interlaced = true,
                                                                                  .extensions = true}));
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
