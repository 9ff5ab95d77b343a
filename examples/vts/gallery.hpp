#pragma once
// The PNG contact sheet `vts search` writes: the query on the left, its neighbours in rank order
// to the right (wrapping after `columns`), each in a square tile with a caption underneath
// (stb_easy_font's bitmap glyphs, drawn at twice their size).
#include <stb_easy_font.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "vts/core/error.hpp"
#include "vts/data/image.hpp"
#include "vts/io/atomic_file.hpp"

namespace vts::cli {

struct GalleryTile {
  data::ImageU8 image;  // any size, 1 or 3 channels
  std::string caption;
  bool highlight = false;  // framed (the query)
};

class RgbCanvas {
 public:
  RgbCanvas(int width, int height, uint8_t grey) : w_(width), h_(height), px_(size_t(width) * size_t(height) * 3, grey) {}
  int width() const { return w_; }
  int height() const { return h_; }
  const uint8_t* data() const { return px_.data(); }

  void fill_rect(int x0, int y0, int x1, int y1, const uint8_t rgb[3]) {
    x0 = std::clamp(x0, 0, w_), x1 = std::clamp(x1, 0, w_), y0 = std::clamp(y0, 0, h_), y1 = std::clamp(y1, 0, h_);
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x) std::copy(rgb, rgb + 3, px_.begin() + (ptrdiff_t(y) * w_ + x) * 3);
  }
  // Draws `img` scaled to fit a side x side square centred at (x, y) (bilinear, aspect kept).
  void draw_image(const data::ImageU8& img, int x, int y, int side) {
    const double scale = static_cast<double>(side) / std::max(img.height, img.width);
    const int h = std::max(1, static_cast<int>(img.height * scale)), w = std::max(1, static_cast<int>(img.width * scale));
    std::vector<uint8_t> scaled(size_t(h) * size_t(w) * size_t(img.channels));
    data::resize_bilinear(img.pixels.data(), img.height, img.width, img.channels, h, w, scaled.data());
    const int ox = x + (side - w) / 2, oy = y + (side - h) / 2;
    for (int r = 0; r < h; ++r)
      for (int c = 0; c < w; ++c) {
        const uint8_t* s = scaled.data() + (size_t(r) * w + c) * img.channels;
        uint8_t* d = px_.data() + (ptrdiff_t(oy + r) * w_ + ox + c) * 3;
        for (int k = 0; k < 3; ++k) d[k] = img.channels >= 3 ? s[k] : s[0];
      }
  }
  // Text at (x, y), glyph pixels `scale` canvas pixels wide.
  void draw_text(const std::string& text, int x, int y, int scale, const uint8_t rgb[3]) {
    struct Vertex {
      float x, y, z;
      uint8_t color[4];
    };
    std::vector<Vertex> quads(text.size() * 70 * 4 + 4);  // the header's bound: ~270 bytes a character
    std::string buf = text;
    const int n = stb_easy_font_print(0, 0, buf.data(), nullptr, quads.data(), static_cast<int>(quads.size() * sizeof(Vertex)));
    for (int q = 0; q < n; ++q) {
      const Vertex* v = &quads[size_t(q) * 4];
      fill_rect(x + static_cast<int>(v[0].x * scale), y + static_cast<int>(v[0].y * scale),
                x + static_cast<int>(v[2].x * scale), y + static_cast<int>(v[2].y * scale), rgb);
    }
  }
  static int text_width(const std::string& text, int scale) {
    std::string buf = text;
    return stb_easy_font_width(buf.data()) * scale;
  }

 private:
  int w_, h_;
  std::vector<uint8_t> px_;
};

// Writes tiles[0] (the query) then tiles[1..] as a grid PNG at `path` (atomically).
inline void write_gallery_png(const std::string& path, const std::vector<GalleryTile>& tiles, int side = 112,
                              int columns = 10) {
  VTS_CHECK(!tiles.empty() && side >= 16 && columns >= 1, "write_gallery_png: expected tiles, side >= 16 and "
                                                          "columns >= 1");
  const int pad = 8, caption = 22, gap = 24;  // gap: between the query and the neighbours
  const int neighbours = static_cast<int>(tiles.size()) - 1;
  const int cols = std::max(1, std::min(columns, neighbours));
  const int rows = std::max(1, (neighbours + cols - 1) / cols);
  const int cell_w = side + pad, cell_h = side + caption + pad;
  const int width = pad + cell_w + gap + cols * cell_w, height = pad + rows * cell_h;
  RgbCanvas canvas(width, height, 40);
  const uint8_t frame[3] = {70, 140, 255}, text[3] = {230, 230, 230}, tile_bg[3] = {0, 0, 0};
  auto draw_tile = [&](const GalleryTile& t, int x, int y) {
    if (t.highlight) canvas.fill_rect(x - 3, y - 3, x + side + 3, y + side + 3, frame);
    canvas.fill_rect(x, y, x + side, y + side, tile_bg);
    canvas.draw_image(t.image, x, y, side);
    // Shorten the caption until it fits under the tile.
    std::string c = t.caption;
    while (!c.empty() && RgbCanvas::text_width(c, 2) > side) c.pop_back();
    canvas.draw_text(c, x + (side - RgbCanvas::text_width(c, 2)) / 2, y + side + 5, 2, text);
  };
  draw_tile(tiles[0], pad, pad);
  for (int i = 0; i < neighbours; ++i)
    draw_tile(tiles[size_t(i) + 1], pad + cell_w + gap + (i % cols) * cell_w, pad + (i / cols) * cell_h);

  std::vector<uint8_t> png;
  auto append = [](void* context, void* data, int size) {
    auto* out = static_cast<std::vector<uint8_t>*>(context);
    out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  if (!stbi_write_png_to_func(append, &png, width, height, 3, canvas.data(), width * 3) || png.empty())
    throw IoError("cannot encode the gallery PNG for '" + path + "'");
  io::AtomicFile f(path);
  f.write(png.data(), png.size());
  f.commit();
}

}  // namespace vts::cli
