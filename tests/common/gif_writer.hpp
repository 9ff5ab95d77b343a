#pragma once
// GIF files written by hand for the image tests and the fuzzer's seeds: a 4-colour palette and an
// LZW stream that sends a clear code before every two pixels, so every code stays 3 bits wide and
// the writer needs no string table. Any decoder reads them (stb_image, PIL).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace vts_test_common {

// The palette's RGB colours, index by index.
inline constexpr uint8_t kGifPalette[4][3] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {40, 80, 255}};

// The palette index of the i-th pixel the stream codes (row by row of the frame, in the file's
// row order: for an interlaced frame that is the interlaced order).
inline int gif_pixel_index(int i, int frame_width) { return (i * 3 + i / frame_width) % 4; }

struct GifLayout {
  int width = 0, height = 0;                // the logical screen
  int frame_x = 0, frame_y = 0;             // the frame's place on it
  int frame_width = -1, frame_height = -1;  // -1: the screen's
  bool interlaced = false;
  bool extensions = false;  // a graphic control and a comment extension before the frame
};

inline std::vector<uint8_t> four_colour_gif(const GifLayout& layout) {
  const int fw = layout.frame_width < 0 ? layout.width : layout.frame_width;
  const int fh = layout.frame_height < 0 ? layout.height : layout.frame_height;
  std::vector<uint8_t> b = {'G', 'I', 'F', '8', '9', 'a'};
  auto put16 = [&](int v) {
    b.push_back(uint8_t(v & 0xFF));
    b.push_back(uint8_t(v >> 8));
  };
  put16(layout.width);
  put16(layout.height);
  b.insert(b.end(), {0x81, 0, 0});  // a global palette of 2^(1+1) colours
  for (const auto& rgb : kGifPalette) b.insert(b.end(), rgb, rgb + 3);
  if (layout.extensions) {
    b.insert(b.end(), {0x21, 0xF9, 4, 0, 10, 0, 0, 0});                // graphic control, no transparency
    b.insert(b.end(), {0x21, 0xFE, 5, 'h', 'e', 'l', 'l', 'o', 2, 'o', 'k', 0});  // a comment in two sub-blocks
  }
  b.push_back(',');
  put16(layout.frame_x);
  put16(layout.frame_y);
  put16(fw);
  put16(fh);
  b.push_back(layout.interlaced ? 0x40 : 0);
  b.push_back(2);  // LZW minimum code size: clear = 4, end = 5
  std::vector<int> codes;
  for (int i = 0; i < fw * fh; ++i) {
    if (i % 2 == 0) codes.push_back(4);
    codes.push_back(gif_pixel_index(i, fw));
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

}  // namespace vts_test_common
