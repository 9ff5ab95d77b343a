#pragma once
// 8-bit images: decoding (stb_image), PIL-exact bilinear resizing, crops, flips and the
// conversion to normalised float CHW that every dataset ends with.
//
// Why PIL-exact: the reference numbers (hashing-spec §5.3) come from torchvision transforms on PIL
// images. PIL resizes 8-bit images with a separable convolution whose triangle filter widens with
// the downscale factor (antialiasing), uses 22-bit fixed-point weights, and rounds to 8 bits after
// each of its two passes (horizontal first). We reproduce exactly that arithmetic, so a resized
// image is bit-identical to PIL's (tests/golden/make_resize_fixture.py checks it).
//
// Hot path: one ViT-B training image is decoded, resized and cropped per item. The transform
// computes only the resized pixels that the crop keeps, builds the weights once per axis per
// image (not per pixel), and reuses per-thread scratch buffers, so a steady-state item allocates
// nothing beyond what the decoder does.
//
// The checks that stand between a file and stb_image 2.27's defects are in image_guards.hpp.
#include <stb_image.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "vts/core/error.hpp"
#include "vts/core/rng.hpp"
#include "vts/data/image_guards.hpp"

namespace vts::data {

// Shape of one item as the datasets write it: float CHW.
struct ImageSpec {
  int channels = 0, height = 0, width = 0;
  int64_t numel() const { return int64_t(channels) * height * width; }
  friend bool operator==(const ImageSpec&, const ImageSpec&) = default;
};

// An 8-bit image with interleaved channels (HWC), the layout decoders produce.
struct ImageU8 {
  int height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;  // height * width * channels
};

// ---- decoding -----------------------------------------------------------------------------------

// PIL's grey level of an RGB pixel (convert("L"): L = R·299/1000 + G·587/1000 + B·114/1000 in
// 16-bit fixed point, rounded).
inline uint8_t pil_luma(const uint8_t* rgb) {
  return static_cast<uint8_t>((rgb[0] * 19595 + rgb[1] * 38470 + rgb[2] * 7471 + 0x8000) >> 16);
}

namespace detail {
// The whole file, for stb_image's memory reader, whose length is an int. A folder reads as nothing
// (EISDIR), and decode_image then says what it is.
inline std::vector<uint8_t> read_image_bytes(std::FILE* f, const std::string& path) {
  struct stat st {};
  const bool regular = ::fstat(::fileno(f), &st) == 0 && S_ISREG(st.st_mode);
  auto too_large = [&](const auto& bytes_found) {
    return IoError(vts::detail::concat("cannot decode image file '", path, "': it is ", bytes_found,
                                       " bytes; expected at most ", INT_MAX, " (stb_image's limit)"));
  };
  if (regular && static_cast<uint64_t>(st.st_size) > static_cast<uint64_t>(INT_MAX)) throw too_large(st.st_size);
  std::vector<uint8_t> bytes;
  bytes.reserve(regular ? static_cast<size_t>(st.st_size) : 0);
  uint8_t chunk[1 << 16];
  for (size_t n; (n = std::fread(chunk, 1, sizeof chunk, f)) > 0;) {
    if (bytes.size() + n > size_t(INT_MAX)) throw too_large("more than " + std::to_string(INT_MAX));
    bytes.insert(bytes.end(), chunk, chunk + n);
  }
  if (std::ferror(f) && errno != EISDIR)
    throw IoError(vts::detail::concat("cannot read image file '", path, "': ", std::strerror(errno)));
  return bytes;
}
}  // namespace detail

// Decodes a JPEG/PNG/BMP/GIF/TGA/PNM file into `channels` channels (3 = RGB, as PIL's
// convert("RGB"): grey is replicated, alpha dropped; 1 = grey, as PIL's convert("L"), colour
// weighted by pil_luma). Throws vts::IoError naming the file when it cannot be opened or decoded,
// when its header claims no pixels or more than kMaxImagePixels, when it is a JPEG, PNG, BMP, GIF,
// PNM or TGA file that stb_image 2.27 would mishandle, a file cut short among them
// (detail::check_image_structure), and when it is a
// Radiance HDR or Softimage PIC file (stb reads them, decode_image does not); never returns a
// partial or empty image.
inline void decode_image(const std::string& path, int channels, ImageU8& out) {
  VTS_CHECK(channels >= 1 && channels <= 4, "decode_image: expected 1..4 channels, found ", channels);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file)
    throw IoError(vts::detail::concat("cannot open image file '", path, "': ", std::strerror(errno)));
  // stb is given the file in memory: its FILE* reader "rewinds" only to the start of its current
  // 128-byte buffer, so stbi_info, which tries one format after another, could read a PNM header
  // from the middle of a broken JPEG (fuzz_image: a signed overflow in stb's PNM parser). From
  // memory every stb call below starts at the file's first byte. stb reads the whole file anyway.
  std::vector<uint8_t> bytes = detail::read_image_bytes(file.get(), path);
  file.reset();
  detail::check_image_structure(bytes.data(), bytes.size(), path);
  const int length = static_cast<int>(bytes.size());
  int w = 0, h = 0, file_channels = 0;
  // The dimensions first (stb reads the header only). A header stb cannot read is left to the
  // decode, which says why.
  if (stbi_info_from_memory(bytes.data(), length, &w, &h, &file_channels)) detail::check_image_size(path, w, h);
  // For grey, colour files are decoded as they are and weighted here: stb's own conversion,
  // (77 R + 150 G + 29 B) >> 8, is up to one level off PIL's, which the reference pipelines use.
  // 16-bit files too: stb 2.27 converts the channels of a 16-bit PNM with its 8-bit converter,
  // which reads past its buffer (fixed in stb 2.28), so they are converted here as well.
  const bool sixteen_bit = stbi_is_16_bit_from_memory(bytes.data(), length);
  const int decoded_channels = channels == 1 || sixteen_bit ? 0 : channels;
  stbi_uc* px = stbi_load_from_memory(bytes.data(), length, &w, &h, &file_channels, decoded_channels);
  bytes = {};  // stb holds the pixels; the file's bytes can go
  if (px) {  // again, for a format whose header stb's info does not read
    try {
      detail::check_image_size(path, w, h);
    } catch (...) {
      stbi_image_free(px);
      throw;
    }
  }
  if (!px) {
    // stb_image calls a folder or an empty file an "unknown image type"; those say what they are.
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
      throw IoError(vts::detail::concat("cannot decode image file '", path,
                                        "': it is a directory; expected a JPEG, PNG, BMP, GIF, TGA or PNM image"));
    if (length == 0)
      throw IoError(vts::detail::concat("cannot decode image file '", path,
                                        "': empty file (0 bytes); expected a JPEG, PNG, BMP, GIF, TGA or PNM image"));
    const char* why = stbi_failure_reason();
    throw IoError(vts::detail::concat("cannot decode image file '", path, "' (stb_image: ",
                                      why ? why : "unknown reason",
                                      "); expected a JPEG, PNG, BMP, GIF, TGA or PNM image"));
  }
  out.height = h;
  out.width = w;
  out.channels = channels;
  const size_t n = size_t(w) * size_t(h);
  if (decoded_channels == 0) {  // from the file's own channels: grey (+ alpha), or colour (+ alpha)
    out.pixels.resize(n * size_t(channels));
    const auto step = static_cast<size_t>(file_channels);
    const bool colour = file_channels >= 3, alpha = file_channels == 2 || file_channels == 4;
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* p = px + i * step;
      uint8_t* o = out.pixels.data() + i * size_t(channels);
      if (channels == 1) {
        o[0] = colour ? pil_luma(p) : p[0];
        continue;
      }
      // As stb's own conversion (stbi__convert_format) would make them.
      const uint8_t y = colour ? static_cast<uint8_t>((p[0] * 77 + p[1] * 150 + p[2] * 29) >> 8) : p[0];
      const uint8_t a = alpha ? p[step - 1] : 255;
      if (channels == 2) {
        o[0] = y;
        o[1] = a;
      } else {
        for (int c = 0; c < 3; ++c) o[c] = colour ? p[c] : p[0];
        if (channels == 4) o[3] = a;
      }
    }
  } else {
    out.pixels.assign(px, px + n * size_t(channels));
  }
  stbi_image_free(px);
}

inline ImageU8 decode_image(const std::string& path, int channels = 3) {
  ImageU8 img;
  decode_image(path, channels, img);
  return img;
}

// ---- PIL-compatible bilinear resampling ----------------------------------------------------------

// Weight precision of PIL's 8-bit resampler: 32 bits minus 8 for the pixel minus 2 of headroom.
inline constexpr int kResamplePrecisionBits = 22;

// Weights of one axis for the output positions [first, first + count) of an in_size → out_size
// resize. Output i reads inputs start[i] .. start[i] + taps[i] - 1 with weights w[i*ksize + t].
struct AxisWeights {
  int ksize = 0;
  std::vector<int> start, taps;
  std::vector<int32_t> w;
  // The same weights as exactly ksize taps each, the window slid inside [0, in_size) and the
  // extra taps given weight 0 (which leaves the integer sums unchanged). A fixed trip count lets
  // the horizontal pass unroll; empty when in_size < ksize.
  std::vector<int> fixed_start;
  std::vector<int32_t> fixed_w;
  std::vector<double> tmp;  // reused scratch for the unnormalised weights
  int count() const { return static_cast<int>(start.size()); }
};

// Triangle filter of width 1: PIL's BILINEAR. Its support is scaled by the downscale factor, so
// downscaling averages over every input pixel that falls under an output pixel (antialiasing);
// upscaling is plain linear interpolation with half-pixel centers.
inline void bilinear_axis_weights(int in_size, int out_size, int first, int count, AxisWeights& aw) {
  VTS_CHECK(in_size > 0 && out_size > 0, "resize: expected positive sizes, found ", in_size, " -> ",
            out_size);
  VTS_CHECK(first >= 0 && count >= 0 && first + count <= out_size,
            "resize: output range [", first, ", ", first + count, ") outside [0, ", out_size, ")");
  // The expressions and their evaluation order follow PIL's double-precision computation so that
  // the rounded fixed-point weights agree bit for bit.
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;
  const double inv_filterscale = 1.0 / filterscale;
  aw.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  aw.start.resize(static_cast<size_t>(count));
  aw.taps.resize(static_cast<size_t>(count));
  aw.w.assign(static_cast<size_t>(count) * aw.ksize, 0);
  aw.tmp.resize(static_cast<size_t>(aw.ksize));
  for (int i = 0; i < count; ++i) {
    const double center = (first + i + 0.5) * scale;
    int lo = static_cast<int>(center - support + 0.5);  // truncation, as C's (int) cast
    int hi = static_cast<int>(center + support + 0.5);
    lo = std::max(lo, 0);
    hi = std::min(hi, in_size);
    const int n = hi - lo;
    double sum = 0.0;
    for (int t = 0; t < n; ++t) {
      double x = (t + lo - center + 0.5) * inv_filterscale;
      if (x < 0.0) x = -x;
      const double v = x < 1.0 ? 1.0 - x : 0.0;
      aw.tmp[static_cast<size_t>(t)] = v;
      sum += v;
    }
    int32_t* k = aw.w.data() + static_cast<size_t>(i) * aw.ksize;
    for (int t = 0; t < n; ++t) {
      const double v = sum != 0.0 ? aw.tmp[static_cast<size_t>(t)] / sum : aw.tmp[static_cast<size_t>(t)];
      k[t] = static_cast<int32_t>(0.5 + v * (1 << kResamplePrecisionBits));  // weights are >= 0
    }
    aw.start[static_cast<size_t>(i)] = lo;
    aw.taps[static_cast<size_t>(i)] = n;
  }
  aw.fixed_start.clear();
  aw.fixed_w.clear();
  if (in_size >= aw.ksize) {
    aw.fixed_start.resize(static_cast<size_t>(count));
    aw.fixed_w.assign(static_cast<size_t>(count) * aw.ksize, 0);
    for (int i = 0; i < count; ++i) {
      const int lo = aw.start[static_cast<size_t>(i)];
      const int fs = std::min(lo, in_size - aw.ksize);
      aw.fixed_start[static_cast<size_t>(i)] = fs;
      for (int t = 0; t < aw.taps[static_cast<size_t>(i)]; ++t)
        aw.fixed_w[static_cast<size_t>(i) * aw.ksize + (lo - fs) + t] = aw.w[static_cast<size_t>(i) * aw.ksize + t];
    }
  }
}

namespace detail {

inline uint8_t clip8_fixed(int32_t acc) {
  const int32_t v = acc >> kResamplePrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Horizontal pass over `rows` rows: dst column i = weighted sum of src columns from aw.
template <int C>
void resample_rows_c(const uint8_t* src, ptrdiff_t src_stride, int rows, const AxisWeights& aw,
                     uint8_t* dst, ptrdiff_t dst_stride) {
  const int n = aw.count();
  const int ks = aw.ksize;
  for (int r = 0; r < rows; ++r) {
    const uint8_t* s = src + r * src_stride;
    uint8_t* d = dst + r * dst_stride;
    for (int i = 0; i < n; ++i) {
      const int32_t* k = aw.w.data() + static_cast<size_t>(i) * ks;
      const uint8_t* p = s + static_cast<ptrdiff_t>(aw.start[static_cast<size_t>(i)]) * C;
      const int taps = aw.taps[static_cast<size_t>(i)];
      int32_t acc[C];
      for (int c = 0; c < C; ++c) acc[c] = 1 << (kResamplePrecisionBits - 1);  // round half up
      for (int t = 0; t < taps; ++t)
        for (int c = 0; c < C; ++c) acc[c] += int32_t(p[t * C + c]) * k[t];
      for (int c = 0; c < C; ++c) d[i * C + c] = clip8_fixed(acc[c]);
    }
  }
}

// Same as resample_rows_c with the fixed-size windows: K known at compile time.
template <int C, int K>
void resample_rows_fixed(const uint8_t* src, ptrdiff_t src_stride, int rows, const AxisWeights& aw,
                         uint8_t* dst, ptrdiff_t dst_stride) {
  const int n = aw.count();
  for (int r = 0; r < rows; ++r) {
    const uint8_t* s = src + r * src_stride;
    uint8_t* d = dst + r * dst_stride;
    for (int i = 0; i < n; ++i) {
      const int32_t* k = aw.fixed_w.data() + static_cast<size_t>(i) * K;
      const uint8_t* p = s + static_cast<ptrdiff_t>(aw.fixed_start[static_cast<size_t>(i)]) * C;
      int32_t acc[C];
      for (int c = 0; c < C; ++c) acc[c] = 1 << (kResamplePrecisionBits - 1);
      for (int t = 0; t < K; ++t)
        for (int c = 0; c < C; ++c) acc[c] += int32_t(p[t * C + c]) * k[t];
      for (int c = 0; c < C; ++c) d[i * C + c] = clip8_fixed(acc[c]);
    }
  }
}

template <int C>
bool resample_rows_fixed_any(const uint8_t* src, ptrdiff_t src_stride, int rows, const AxisWeights& aw,
                             uint8_t* dst, ptrdiff_t dst_stride) {
  if (aw.fixed_start.empty()) return false;
  switch (aw.ksize) {  // 3: upscaling; 5, 7, 9: downscaling by up to 2, 3, 4
    case 3: resample_rows_fixed<C, 3>(src, src_stride, rows, aw, dst, dst_stride); return true;
    case 5: resample_rows_fixed<C, 5>(src, src_stride, rows, aw, dst, dst_stride); return true;
    case 7: resample_rows_fixed<C, 7>(src, src_stride, rows, aw, dst, dst_stride); return true;
    case 9: resample_rows_fixed<C, 9>(src, src_stride, rows, aw, dst, dst_stride); return true;
    default: return false;
  }
}

inline void resample_rows(const uint8_t* src, ptrdiff_t src_stride, int rows, int channels,
                          const AxisWeights& aw, uint8_t* dst, ptrdiff_t dst_stride) {
  if (channels == 3 && resample_rows_fixed_any<3>(src, src_stride, rows, aw, dst, dst_stride)) return;
  if (channels == 1 && resample_rows_fixed_any<1>(src, src_stride, rows, aw, dst, dst_stride)) return;
  switch (channels) {
    case 1: return resample_rows_c<1>(src, src_stride, rows, aw, dst, dst_stride);
    case 2: return resample_rows_c<2>(src, src_stride, rows, aw, dst, dst_stride);
    case 3: return resample_rows_c<3>(src, src_stride, rows, aw, dst, dst_stride);
    case 4: return resample_rows_c<4>(src, src_stride, rows, aw, dst, dst_stride);
    default: VTS_CHECK(false, "resize: expected 1..4 channels, found ", channels);
  }
}

// Vertical pass: dst row i = weighted sum of src rows; src's first row is input row src_row0.
// The inner loop runs along a contiguous row, which the compiler vectorises.
inline void resample_cols(const uint8_t* src, ptrdiff_t src_stride, int src_row0, const AxisWeights& aw,
                          int row_len, uint8_t* dst, ptrdiff_t dst_stride, std::vector<int32_t>& acc) {
  acc.resize(static_cast<size_t>(row_len));
  const int ks = aw.ksize;
  for (int i = 0; i < aw.count(); ++i) {
    const int32_t* k = aw.w.data() + static_cast<size_t>(i) * ks;
    int32_t* a = acc.data();
    std::fill(a, a + row_len, int32_t(1) << (kResamplePrecisionBits - 1));
    for (int t = 0; t < aw.taps[static_cast<size_t>(i)]; ++t) {
      const uint8_t* s = src + (aw.start[static_cast<size_t>(i)] + t - src_row0) * src_stride;
      const int32_t wt = k[t];
      for (int j = 0; j < row_len; ++j) a[j] += int32_t(s[j]) * wt;
    }
    uint8_t* d = dst + i * dst_stride;
    for (int j = 0; j < row_len; ++j) d[j] = clip8_fixed(a[j]);
  }
}

// Per-thread buffers: a loader worker reuses them for every item it decodes.
struct ResizeScratch {
  AxisWeights hw, vw;
  std::vector<uint8_t> horiz, region;
  std::vector<int32_t> acc;
};

// Computes the part [r0, r1) x [c0, c1) of the (out_h x out_w) PIL-bilinear resize of src (HWC,
// h x w x c). Returns a pointer to the region's first pixel and its row stride in bytes; the
// pointer is into src when no resizing is needed, otherwise into the scratch buffers.
inline std::pair<const uint8_t*, ptrdiff_t> resize_region(const uint8_t* src, int h, int w, int c,
                                                          int out_h, int out_w, int r0, int r1, int c0,
                                                          int c1, ResizeScratch& s) {
  const int nr = r1 - r0, nc = c1 - c0;
  const bool need_h = out_w != w, need_v = out_h != h;
  // Input rows the vertical pass reads (start and end are non-decreasing in the output index).
  int in_r0 = r0, in_r1 = r1;
  if (need_v) {
    bilinear_axis_weights(h, out_h, r0, nr, s.vw);
    in_r0 = s.vw.start.front();
    in_r1 = s.vw.start.back() + s.vw.taps.back();
  }
  const uint8_t* hsrc;
  ptrdiff_t hstride;
  if (need_h) {
    bilinear_axis_weights(w, out_w, c0, nc, s.hw);
    hstride = static_cast<ptrdiff_t>(nc) * c;
    s.horiz.resize(static_cast<size_t>(in_r1 - in_r0) * static_cast<size_t>(hstride));
    resample_rows(src + static_cast<ptrdiff_t>(in_r0) * w * c, static_cast<ptrdiff_t>(w) * c,
                  in_r1 - in_r0, c, s.hw, s.horiz.data(), hstride);
    hsrc = s.horiz.data();
  } else {
    hsrc = src + (static_cast<ptrdiff_t>(in_r0) * w + c0) * c;
    hstride = static_cast<ptrdiff_t>(w) * c;
  }
  if (!need_v) return {hsrc, hstride};
  const ptrdiff_t rstride = static_cast<ptrdiff_t>(nc) * c;
  s.region.resize(static_cast<size_t>(nr) * static_cast<size_t>(rstride));
  resample_cols(hsrc, hstride, in_r0, s.vw, nc * c, s.region.data(), rstride, s.acc);
  return {s.region.data(), rstride};
}

inline ResizeScratch& thread_resize_scratch() {
  thread_local ResizeScratch s;
  return s;
}

}  // namespace detail

// Resizes an HWC 8-bit image to out_h x out_w exactly as PIL's Image.resize(..., BILINEAR).
inline void resize_bilinear(const uint8_t* src, int h, int w, int c, int out_h, int out_w, uint8_t* dst) {
  VTS_CHECK(h > 0 && w > 0 && out_h > 0 && out_w > 0, "resize_bilinear: expected positive sizes, found ",
            h, "x", w, " -> ", out_h, "x", out_w);
  auto& s = detail::thread_resize_scratch();
  const auto [p, stride] = detail::resize_region(src, h, w, c, out_h, out_w, 0, out_h, 0, out_w, s);
  const size_t row = static_cast<size_t>(out_w) * c;
  for (int r = 0; r < out_h; ++r) std::memcpy(dst + r * row, p + r * stride, row);
}

inline ImageU8 resize_bilinear(const ImageU8& img, int out_h, int out_w) {
  ImageU8 out{out_h, out_w, img.channels, std::vector<uint8_t>(size_t(out_h) * out_w * img.channels)};
  resize_bilinear(img.pixels.data(), img.height, img.width, img.channels, out_h, out_w, out.pixels.data());
  return out;
}

// torchvision's Resize(size) with an int: the shorter side becomes `size`, the longer one
// size * long / short truncated to int; an image whose shorter side already is `size` is kept.
// Returns {height, width}.
inline std::pair<int, int> shorter_side_size(int h, int w, int size) {
  VTS_CHECK(h > 0 && w > 0 && size > 0, "shorter_side_size: expected positive sizes, found ", h, "x", w,
            " and ", size);
  if ((w <= h && w == size) || (h <= w && h == size)) return {h, w};
  // Python's size * h / w is a correctly rounded double division of exact integers, as here.
  if (w < h) return {static_cast<int>(static_cast<double>(int64_t(size) * h) / w), size};
  return {size, static_cast<int>(static_cast<double>(int64_t(size) * w) / h)};
}

// torchvision's CenterCrop offset: int(round((in - out) / 2)) with Python 3's round, which rounds
// halves to even (in - out = 33 gives 16, 35 gives 18).
inline int center_crop_offset(int in, int out) {
  VTS_CHECK(in >= out, "center crop: expected an image of at least ", out, " pixels, found ", in);
  const int d = in - out;
  const int q = d / 2;
  return (d % 2 == 0 || q % 2 == 0) ? q : q + 1;
}

// ---- the item transform ---------------------------------------------------------------------------

// resize → (pad) → crop → horizontal flip → ToTensor (v / 255) → Normalize, into float CHW.
// Random draws, in this order, from the item's generator: flip (if random_hflip), then the crop's
// row offset, then its column offset (if crop == random).
struct ImageTransform {
  enum class Resize { none, exact, shorter_side };
  enum class Crop { none, center, random };

  Resize resize = Resize::none;
  int resize_height = 0, resize_width = 0;  // Resize::exact
  int resize_shorter = 0;                   // Resize::shorter_side
  Crop crop = Crop::none;
  int crop_height = 0, crop_width = 0;
  int pad = 0;                 // Crop::random: border of raw value 0 around the image before cropping
  bool random_hflip = false;   // mirror with probability 1/2
  // Random erasing: with this probability, one rectangle covering 2%..erase_max_area of the output
  // (aspect ratio 0.3..3.3, log-uniform) is set to 0 after normalisation, i.e. to the mean.
  float erase_prob = 0.0f;
  float erase_max_area = 0.25f;
  std::vector<float> mean;     // per channel, or empty for none
  std::vector<float> stddev;   // per channel, or empty for none

  // Reference train / eval transforms of the list datasets (hashing-spec §5.3).
  static ImageTransform imagenet_train(int resize = 256, int crop = 224) {
    ImageTransform t;
    t.resize = Resize::shorter_side;
    t.resize_shorter = resize;
    t.crop = Crop::random;
    t.crop_height = t.crop_width = crop;
    t.random_hflip = true;
    t.mean = imagenet_mean();
    t.stddev = imagenet_std();
    return t;
  }
  static ImageTransform imagenet_eval(int resize = 256, int crop = 224) {
    ImageTransform t = imagenet_train(resize, crop);
    t.crop = Crop::center;
    t.random_hflip = false;
    return t;
  }
  static std::vector<float> imagenet_mean() { return {0.485f, 0.456f, 0.406f}; }
  static std::vector<float> imagenet_std() { return {0.229f, 0.224f, 0.225f}; }

  // Size after the resize step, {height, width}.
  std::pair<int, int> resized_size(int h, int w) const {
    switch (resize) {
      case Resize::exact: return {resize_height, resize_width};
      case Resize::shorter_side: return shorter_side_size(h, w, resize_shorter);
      default: return {h, w};
    }
  }
  // Output {height, width} for an h x w input.
  std::pair<int, int> output_size(int h, int w) const {
    if (crop != Crop::none) return {crop_height, crop_width};
    return resized_size(h, w);
  }
  // True when every input size gives the same output size (a dataset needs that for its spec).
  bool fixed_output() const { return crop != Crop::none || resize == Resize::exact; }

  // Throws vts::Error when the settings are inconsistent with `channels` channels.
  void validate(int channels) const {
    VTS_CHECK(resize != Resize::exact || (resize_height > 0 && resize_width > 0),
              "ImageTransform: exact resize needs a positive size, found ", resize_height, "x", resize_width);
    VTS_CHECK(resize != Resize::shorter_side || resize_shorter > 0,
              "ImageTransform: shorter-side resize needs a positive size, found ", resize_shorter);
    VTS_CHECK(crop == Crop::none || (crop_height > 0 && crop_width > 0),
              "ImageTransform: crop needs a positive size, found ", crop_height, "x", crop_width);
    VTS_CHECK(pad >= 0 && (pad == 0 || crop == Crop::random),
              "ImageTransform: padding applies to random crops only and must be >= 0, found pad ", pad);
    VTS_CHECK(mean.size() == stddev.size(), "ImageTransform: expected as many mean as std values, found ",
              mean.size(), " and ", stddev.size());
    VTS_CHECK(mean.empty() || int(mean.size()) == channels, "ImageTransform: expected ", channels,
              " mean/std values (one per channel), found ", mean.size());
    for (float s : stddev) VTS_CHECK(s > 0.0f, "ImageTransform: expected std > 0, found ", s);
    VTS_CHECK(erase_prob >= 0.0f && erase_prob <= 1.0f && erase_max_area > 0.02f && erase_max_area <= 1.0f,
              "ImageTransform: expected erase_prob in [0, 1] and erase_max_area in (0.02, 1], found ", erase_prob,
              " and ", erase_max_area);
  }

  // Transforms one HWC 8-bit image into float CHW at dst (size: channels x output_size).
  void apply(const uint8_t* src, int h, int w, int c, float* dst, Generator& rng) const {
    VTS_CHECK(mean.empty() || int(mean.size()) == c, "ImageTransform: expected ", mean.size(),
              "-channel images (one mean/std per channel), found ", c, " channels");
    const auto [rh, rw] = resized_size(h, w);
    const bool flip = random_hflip && rng.next_double() < 0.5;
    int ch = rh, cw = rw, top = 0, left = 0;
    if (crop == Crop::center) {
      ch = crop_height;
      cw = crop_width;
      top = center_crop_offset(rh, ch);
      left = center_crop_offset(rw, cw);
    } else if (crop == Crop::random) {
      ch = crop_height;
      cw = crop_width;
      VTS_CHECK(rh + 2 * pad >= ch && rw + 2 * pad >= cw, "random crop: expected an image of at least ",
                ch, "x", cw, " (after resize and padding ", pad, "), found ", rh + 2 * pad, "x", rw + 2 * pad);
      top = static_cast<int>(rng.next_below(static_cast<uint64_t>(rh + 2 * pad - ch + 1))) - pad;
      left = static_cast<int>(rng.next_below(static_cast<uint64_t>(rw + 2 * pad - cw + 1))) - pad;
    }
    // Flipping the whole image and then cropping at `left` reads the mirrored window of the
    // unflipped image, so only that window is resized and the flip happens on output.
    const int src_left = flip ? rw - cw - left : left;
    const int r0 = std::max(top, 0), r1 = std::min(top + ch, rh);
    const int c0 = std::max(src_left, 0), c1 = std::min(src_left + cw, rw);

    auto& s = detail::thread_resize_scratch();
    const uint8_t* region = nullptr;
    ptrdiff_t stride = 0;
    if (r1 > r0 && c1 > c0) std::tie(region, stride) = detail::resize_region(src, h, w, c, rh, rw, r0, r1, c0, c1, s);

    // Output column x reads region byte offset colmap[x], or the zero border when -1.
    thread_local std::vector<int> colmap;
    colmap.resize(static_cast<size_t>(cw));
    for (int x = 0; x < cw; ++x) {
      const int col = src_left + (flip ? cw - 1 - x : x);
      colmap[static_cast<size_t>(x)] = (col >= c0 && col < c1) ? (col - c0) * c : -1;
    }
    // ToTensor then Normalize, evaluated in float32 like torchvision, tabulated per byte value.
    float lut[256];
    for (int ci = 0; ci < c; ++ci) {
      const float m = mean.empty() ? 0.0f : mean[static_cast<size_t>(ci)];
      const float sd = stddev.empty() ? 1.0f : stddev[static_cast<size_t>(ci)];
      for (int v = 0; v < 256; ++v) lut[v] = (static_cast<float>(v) / 255.0f - m) / sd;
      float* plane = dst + static_cast<ptrdiff_t>(ci) * ch * cw;
      for (int y = 0; y < ch; ++y) {
        float* out = plane + static_cast<ptrdiff_t>(y) * cw;
        const int r = top + y;
        if (r < r0 || r >= r1) {
          std::fill(out, out + cw, lut[0]);
          continue;
        }
        const uint8_t* row = region + (r - r0) * stride + ci;
        for (int x = 0; x < cw; ++x) {
          const int off = colmap[static_cast<size_t>(x)];
          out[x] = lut[off < 0 ? 0 : row[off]];
        }
      }
    }
    if (erase_prob > 0.0f && rng.next_double() < erase_prob) erase_rectangle(dst, c, ch, cw, rng);
  }

 private:
  void erase_rectangle(float* dst, int c, int h, int w, Generator& rng) const {
    // A few tries to find a rectangle that fits, as torchvision's RandomErasing does.
    for (int attempt = 0; attempt < 10; ++attempt) {
      const double area = (0.02 + rng.next_double() * (erase_max_area - 0.02)) * h * w;
      const double aspect = std::exp(std::log(0.3) + rng.next_double() * (std::log(3.3) - std::log(0.3)));
      const int eh = static_cast<int>(std::lround(std::sqrt(area * aspect)));
      const int ew = static_cast<int>(std::lround(std::sqrt(area / aspect)));
      if (eh < 1 || ew < 1 || eh >= h || ew >= w) continue;
      const int top = static_cast<int>(rng.next_below(static_cast<uint64_t>(h - eh + 1)));
      const int left = static_cast<int>(rng.next_below(static_cast<uint64_t>(w - ew + 1)));
      for (int ci = 0; ci < c; ++ci)
        for (int y = top; y < top + eh; ++y) {
          float* row = dst + (static_cast<ptrdiff_t>(ci) * h + y) * w;
          std::fill(row + left, row + left + ew, 0.0f);
        }
      return;
    }
  }
};

}  // namespace vts::data
