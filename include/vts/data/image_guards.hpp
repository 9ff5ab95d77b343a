#pragma once
// What stb_image 2.27 (the libstb of Debian 12) gets wrong, checked on a file's bytes before stb
// decodes them: decode_image (image.hpp) runs check_image_structure first, so such a file is an
// IoError naming it rather than an over-allocation, a read of uninitialised memory or undefined
// behaviour inside stb. Each check follows stb's own reading of the header (its int arithmetic,
// its order of formats) so that it refuses exactly the files stb would mishandle and passes the
// rest; a header stb itself refuses is left to stb, which says why. Later stb versions or libjpeg
// check much of this themselves; docs/data.md lists the defects, and fuzz_image drives the checks.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "vts/core/error.hpp"

namespace vts::data {

// The most pixels (width × height) decode_image accepts: PIL's decompression-bomb limit. PIL's
// Image.MAX_IMAGE_PIXELS is 1024·1024·1024 // 4 // 3 = 89,478,485; above it Image.open warns,
// above twice it raises DecompressionBombError, which is what the reference pipelines do with
// such a file. The header is read first, so a 100-byte file that claims 20000×20000 pixels is
// refused before stb_image allocates for it.
inline constexpr int64_t kPilMaxImagePixels = int64_t(1024) * 1024 * 1024 / 4 / 3;
inline constexpr int64_t kMaxImagePixels = 2 * kPilMaxImagePixels;  // 178,956,970

namespace detail {
// Throws unless w x h is a size decode_image returns: positive (stb_image 2.27 decodes a PNM that
// says "0 7" to an empty image) and at most kMaxImagePixels.
inline void check_image_size(const std::string& path, int64_t w, int64_t h) {
  if (w <= 0 || h <= 0)
    throw IoError(vts::detail::concat("cannot decode image file '", path, "': its header says ", w, "x", h,
                                      " pixels; expected a positive width and height"));
  if (w * h > kMaxImagePixels)
    throw IoError(vts::detail::concat("cannot decode image file '", path, "': its header says ", w, "x", h, " = ",
                                      w * h, " pixels; expected at most ", kMaxImagePixels,
                                      " (PIL's decompression-bomb limit, 2 x Image.MAX_IMAGE_PIXELS)"));
}

// Forward reading of the file's bytes for the structure checks below; get() is -1 at the end.
// overran() says whether a read or a skip has gone past the end, where stb reads zeros.
class ByteCursor {
 public:
  ByteCursor(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  int get() {
    if (at_ < size_) return data_[at_++];
    overran_ = true;
    return -1;
  }
  // Skips n bytes; false (and nothing skipped) when that passes the end.
  bool skip(uint64_t n) {
    if (n > size_ - at_) return false;
    at_ += static_cast<size_t>(n);
    return true;
  }
  // Skips n bytes as stbi__skip does: up to the end at most.
  void skip_or_overrun(uint64_t n) {
    if (!skip(n)) {
      at_ = size_;
      overran_ = true;
    }
  }
  // Consumes bytes up to and including the next 0xFF; false at the end.
  bool past_next_ff() {
    const void* p = std::memchr(data_ + at_, 0xFF, size_ - at_);
    at_ = p ? static_cast<size_t>(static_cast<const uint8_t*>(p) - data_) + 1 : size_;
    if (!p) overran_ = true;
    return p != nullptr;
  }
  uint64_t offset() const { return at_; }
  uint64_t size() const { return size_; }
  bool overran() const { return overran_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
  bool overran_ = false;
};

inline std::string printable_tag(const uint8_t* t, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += (t[i] >= 0x20 && t[i] < 0x7F) ? char(t[i]) : '?';
  return s;
}

// PNG: each chunk's length, up to IEND, must fit in the file. stb reallocates its IDAT buffer to a
// chunk's claimed length before reading it, so a 150-byte file could make it allocate 2 GB.
inline void check_png_chunks(ByteCursor& in, const std::string& path) {
  for (;;) {  // just after the 8-byte signature, or after a chunk's CRC
    const uint64_t at = in.offset();
    uint8_t h[8];
    for (uint8_t& b : h) {
      const int c = in.get();
      if (c < 0) return;  // truncated: stb says so
      b = static_cast<uint8_t>(c);
    }
    const uint64_t length = (uint64_t(h[0]) << 24) | (uint64_t(h[1]) << 16) | (uint64_t(h[2]) << 8) | h[3];
    const uint64_t left = in.size() - at - 8;
    if (length > left)
      throw IoError(vts::detail::concat("cannot decode image file '", path, "': PNG chunk '", printable_tag(h + 4, 4),
                                        "' at byte ", at, " says it holds ", length, " bytes; expected at most the ",
                                        left, " bytes left in the file"));
    if (std::memcmp(h + 4, "IEND", 4) == 0 || !in.skip(length + 4)) return;
  }
}

// The segments a JPEG walk reads (the others end it).
inline std::string jpeg_segment_name(int marker) {
  switch (marker) {
    case 0xC4: return "DHT";
    case 0xDA: return "SOS";
    case 0xDB: return "DQT";
    case 0xDC: return "DNL";
    case 0xDD: return "DRI";
    case 0xFE: return "COM";
    default: break;
  }
  if (marker >= 0xC0 && marker <= 0xC2) return "SOF" + std::to_string(marker - 0xC0);
  if (marker >= 0xE0 && marker <= 0xEF) return "APP" + std::to_string(marker - 0xE0);
  return "marker " + std::to_string(marker);
}

// JPEG, three things stb 2.27 gets wrong:
//  - a Huffman table (DHT) lists how many codes it has of each length 1..16, at most 256 in all;
//    stb builds the table without checking the sum and writes past its arrays when it is larger
//    (already in stbi_info, before any pixel);
//  - every quantization table (DQT) and Huffman table a scan uses must be defined before it, and
//    every component must be coded (by a scan, in a progressive JPEG by a first DC scan) once,
//    not twice in one scan; otherwise stb reads never-initialised table or pixel memory, so the
//    file decodes to heap garbage, different on every call. libjpeg (PIL) refuses undefined
//    tables too ("Quantization table 0x01 was not defined"; it has default Huffman tables for
//    Motion-JPEG frames without any, which stb lacks) and a component twice in a scan ("Invalid
//    component ID 3 in SOS"); a component in no scan it decodes as grey;
//  - a file that ends before its EOI marker: stb reads zeros past the end, decodes every block of
//    the image from them and only then refuses the file ("expected marker"), so a 693-byte file
//    that claims 65285x1266 pixels costs an 83-megapixel decode before its error, which does not
//    say the file is cut short. Every such file ends up refused by stb (after the last scan it
//    needs a marker, and at the end of the file it finds none), so refusing it here, before the
//    decode and naming where it ends, turns away no file stb would return.
// The walk repeats stb's (stbi__decode_jpeg_header, stbi__decode_jpeg_image): the same segments in
// the same order, bytes past the end read as 0 as stb reads them, a scan's entropy-coded data up to
// the next marker other than RSTn; where stb gives up on the file, so does the walk.
inline void check_jpeg(ByteCursor& in, const std::string& path) {
  auto fail = [&](auto&&... parts) {
    return IoError(vts::detail::concat("cannot decode image file '", path, "': JPEG ", parts...));
  };
  auto get8 = [&] { return std::max(in.get(), 0); };  // stbi__get8: 0 past the end
  auto get16 = [&] {
    const int hi = get8();
    return hi * 256 + get8();
  };
  bool quant[4] = {}, dc[4] = {}, ac[4] = {};
  int frame = -1;                               // the SOF marker, once read
  std::vector<std::pair<int, int>> components;  // (id, quantization table), from the frame header
  std::vector<bool> coded;                      // per component: a scan has written all its blocks
  int pending = -1;                             // the marker that ended a scan's data
  bool first = true;                            // the marker right after SOI
  int segment = 0xD8;                           // the last marker read, and where it starts
  uint64_t segment_at = in.offset() - 2;
  bool between_segments = false;                // looking for the next marker
  // True at EOI; false where stb refuses the file or the walk reaches the end of the file.
  const bool complete = [&] {
    for (;;) {
      int m = pending;
      pending = -1;
      if (in.overran()) return false;  // the previous segment ran past the end
      if (m < 0) {  // stbi__get_marker; before the frame header stb skips stray bytes between segments
        between_segments = true;
        for (;;) {
          const int x = in.get();
          if (x < 0) return false;  // stb: no marker at the end of the file
          if (x == 0xFF) break;
          if (first || frame >= 0) return false;  // stb: "expected marker"
        }
        do m = in.get();
        while (m == 0xFF);
        if (m < 0) return false;
      }
      first = false;
      between_segments = false;
      const uint64_t at = in.offset() - 2;
      segment = m;
      segment_at = at;
      if (m == 0xD9) {  // EOI: stb returns the image (before the frame header it refuses the file)
        for (size_t i = 0; i < coded.size(); ++i)
          if (!coded[i])
            throw fail("component ", components[i].first, " is coded by no ", frame == 0xC2 ? "first DC " : "",
                       "scan; its pixels would be undefined");
        return true;
      }
      if (m == 0xC4) {        // DHT: tables while the segment's length lasts, as stb counts it
        for (int left = get16() - 2; left > 0;) {
          const int q = get8();
          if ((q >> 4) > 1 || (q & 15) > 3) return false;  // stb refuses a bad table class or id
          int codes = 0;
          for (int i = 0; i < 16; ++i) codes += get8();
          if (codes > 256)
            throw fail("Huffman table ", q & 15, " (", (q >> 4) ? "AC" : "DC", ", DHT segment at byte ", at,
                       ") declares ", codes, " codes; expected at most 256");
          for (int i = 0; i < codes; ++i) (void)in.get();
          ((q >> 4) ? ac : dc)[q & 15] = true;
          left -= 17 + codes;
          if (left < 0) return false;  // stb refuses a segment its tables overrun
        }
      } else if (m == 0xDB) {  // DQT
        for (int left = get16() - 2; left > 0;) {
          const int q = get8();
          if ((q >> 4) > 1 || (q & 15) > 3) return false;  // stb refuses a bad precision or id
          const int n = (q >> 4) ? 128 : 64;
          for (int i = 0; i < n; ++i) (void)in.get();
          quant[q & 15] = true;
          left -= 1 + n;
          if (left < 0) return false;
        }
      } else if (m == 0xDD) {  // DRI
        if (get16() != 4) return false;
        (void)get16();
      } else if ((m >= 0xE0 && m <= 0xEF) || m == 0xFE) {  // APPn, COM
        const int length = get16();
        if (length < 2) return false;
        for (int i = 2; i < length; ++i) (void)in.get();
      } else if (m >= 0xC0 && m <= 0xC2) {  // SOF0..2: the frames stb reads; any later SOF it refuses
        if (frame >= 0) return false;
        frame = m;
        const int length = get16(), precision = get8(), height = get16(), width = get16(), n = get8();
        if (length < 11 || precision != 8 || height == 0 || width == 0 || (n != 1 && n != 3 && n != 4) ||
            length != 8 + 3 * n)
          return false;  // stb refuses these
        for (int k = 0; k < n; ++k) {
          const int id = get8(), sampling = get8(), table = get8();
          if ((sampling >> 4) == 0 || (sampling >> 4) > 4 || (sampling & 15) == 0 || (sampling & 15) > 4 || table > 3)
            return false;
          components.emplace_back(id, table);
        }
        coded.assign(components.size(), false);
      } else if (m == 0xDA && frame >= 0) {  // SOS: the tables it uses must exist now
        const int length = get16(), n = get8();
        if (n < 1 || n > 4 || n > static_cast<int>(components.size()) || length != 6 + 2 * n) return false;
        std::vector<std::pair<size_t, int>> scan;  // (component, DC table << 4 | AC table)
        for (int k = 0; k < n; ++k) {
          const int id = get8(), tables = get8();
          size_t i = 0;
          while (i < components.size() && components[i].first != id) ++i;
          if (i == components.size() || (tables >> 4) > 3 || (tables & 15) > 3) return false;  // stb refuses these
          for (const auto& [j, t] : scan)
            if (j == i)
              throw fail("scan (SOS segment at byte ", at, ") lists component ", id,
                         " twice; expected each component at most once");
          scan.emplace_back(i, tables);
        }
        const int ss = get8(), se = get8(), a = get8();
        const bool progressive = frame == 0xC2;
        if (progressive ? (ss > 63 || se > 63 || ss > se || (a >> 4) > 13 || (a & 15) > 13) : (ss != 0 || a != 0))
          return false;
        for (const auto& [i, tables] : scan) {
          const int id = components[i].first, qt = components[i].second;
          if (!quant[qt])
            throw fail("component ", id, " uses quantization table ", qt,
                       ", which is not defined before its scan (SOS segment at byte ", at, ")");
          // Progressive: a first DC scan uses the DC table, an AC scan the AC table, a DC refinement none.
          const bool uses_dc = !progressive || (ss == 0 && (a >> 4) == 0), uses_ac = !progressive || ss > 0;
          const bool dc_missing = uses_dc && !dc[tables >> 4];
          if (dc_missing || (uses_ac && !ac[tables & 15]))
            throw fail("component ", id, " uses ", dc_missing ? "DC" : "AC", " Huffman table ",
                       dc_missing ? tables >> 4 : tables & 15, ", which is not defined before its scan (SOS segment at byte ",
                       at, "; stb_image has no default tables)");
          if (uses_dc) coded[i] = true;
        }
        for (;;) {  // the scan's entropy-coded data: 0xFF 0x00 is a data byte, 0xFF 0xD0..0xD7 a restart
          if (!in.past_next_ff()) return false;
          int x;
          do x = in.get();
          while (x == 0xFF);
          if (x < 0) return false;
          if (x != 0x00 && (x < 0xD0 || x > 0xD7)) {
            pending = x;
            break;
          }
        }
      } else if (m == 0xDC && frame >= 0) {  // DNL
        if (get16() != 4) return false;
        (void)get16();
      } else {
        return false;  // a marker stb refuses here (SOS or DNL before the frame, SOF3.., RSTn, ...)
      }
    }
  }();
  if (complete || !in.overran()) return;
  const std::string name = segment == 0xD8 ? "SOI marker" : jpeg_segment_name(segment) + " segment";
  const std::string at = std::to_string(segment_at);
  const std::string where = between_segments ? "after the " + name + " at byte " + at + ", where a marker was expected"
                            : segment == 0xDA ? "inside the entropy-coded data of the scan (SOS segment) at byte " + at
                                              : "inside the " + name + " at byte " + at;
  throw IoError(vts::detail::concat("cannot decode image file '", path, "': JPEG file is truncated: its ", in.size(),
                                    " bytes end ", where, "; expected the image's segments up to an EOI marker"));
}

// PNM (P5/P6): stb 2.27 reads the width, height and maximum value into an int without checking
// for overflow (undefined behaviour, in practice a wrapped size such as 1 x -1431655768), and
// returns the image of a truncated file with the missing pixels left uninitialised (heap garbage,
// different on every call); both fixed in stb 2.28. The header is read as stb reads it: blanks
// and # comments between the numbers, the pixels right after the one byte that ends the maximum.
inline void check_pnm_header(ByteCursor& in, int channels, const std::string& path) {
  auto blank = [](int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; };
  int c = in.get();
  // stb stops a number or a run of blanks when the byte it holds is the file's last (its at_eof),
  // so a last digit is not part of the number: "P5 5 3056 355525" at the end of a file has the
  // maximum value 35552 for stb, a 16-bit image with no pixels.
  auto at_end = [&] { return in.offset() >= in.size(); };
  auto skip_blanks = [&] {
    for (;;) {
      while (!at_end() && blank(c)) c = in.get();
      if (at_end() || c != '#') return;
      while (!at_end() && c != '\n' && c != '\r') c = in.get();
    }
  };
  int64_t numbers[3] = {};
  const char* names[3] = {"width", "height", "maximum value"};
  for (int k = 0; k < 3; ++k) {
    skip_blanks();
    std::string digits;
    int64_t value = 0;
    size_t count = 0;
    for (; !at_end() && c >= '0' && c <= '9'; c = in.get(), ++count) {
      value = std::min<int64_t>(value * 10 + (c - '0'), int64_t(INT32_MAX) + 1);
      if (count < 24) digits += char(c);
    }
    if (value > INT32_MAX)
      throw IoError(vts::detail::concat("cannot decode image file '", path, "': PNM header: the ", names[k], " ",
                                        digits, count > 24 ? "..." : "", " is larger than ", INT32_MAX));
    numbers[k] = value;
  }
  const auto [w, h, maximum] = numbers;
  if (w <= 0 || h <= 0 || maximum > 65535) return;  // refused elsewhere
  const int64_t sample = maximum > 255 ? 2 : 1;
  if (w * h > kMaxImagePixels) return;  // refused by the size check
  const uint64_t need = static_cast<uint64_t>(w * h * channels * sample), have = in.size() - in.offset();
  if (have < need)
    throw IoError(vts::detail::concat("cannot decode image file '", path, "': truncated PNM: its header says ", w,
                                      "x", h, " pixels of ", channels * sample, " bytes (", need,
                                      " bytes), the file holds ", have, " after the header"));
}

// TGA: stb 2.27 returns a TGA that is cut short with the missing pixels uninitialised (uncompressed
// true colour or grey: heap garbage, different on every call) or zeros (run-length encoded,
// indexed, 15/16-bit colour), so a 24-byte file could stand for a 57-megapixel image; PIL refuses
// both ("image file is truncated"). The bytes are counted as stbi__tga_load reads them: the ID
// field, the palette (indexed), then the pixels, packet by packet when run-length encoded. stb
// takes a file for a TGA when its test (repeated here on the 18-byte header, `h`) passes, after
// every other format's: no other format's signature has 0 or 1 as its second byte.
inline void check_tga(const uint8_t* h, const uint8_t* bytes, uint64_t size, const std::string& path) {
  auto le16 = [&](int at) { return int(h[at]) | int(h[at + 1]) << 8; };
  const int colormap = h[1], type = h[2], palette_bits = h[7], width = le16(12), height = le16(14), bits = h[16];
  // stbi__tga_test
  if (colormap > 1) return;
  if (colormap == 1 ? (type != 1 && type != 9) || (palette_bits != 8 && palette_bits != 15 && palette_bits != 16 &&
                                                   palette_bits != 24 && palette_bits != 32)
                    : type != 2 && type != 3 && type != 10 && type != 11)
    return;
  if (width < 1 || height < 1 || (colormap == 1 && bits != 8 && bits != 16)) return;
  if (bits != 8 && bits != 15 && bits != 16 && bits != 24 && bits != 32) return;
  const bool indexed = colormap == 1, run_length = type >= 8;
  if (indexed && le16(5) == 0) return;  // stb: "bad palette"
  // An index, or the pixel itself (15- and 16-bit colour in 2 bytes); palette entries likewise.
  const uint64_t pixel_bytes = (uint64_t(bits) + 7) / 8, pixels = uint64_t(width) * uint64_t(height);
  if (pixels > uint64_t(kMaxImagePixels)) return;  // refused by the size check
  uint64_t start = 18 + uint64_t(h[0]);
  if (indexed) start += uint64_t(le16(3)) + uint64_t(le16(5)) * ((uint64_t(palette_bits) + 7) / 8);
  const uint64_t have = size > start ? size - start : 0;
  const char* where = indexed ? " after the header and palette" : " after the header";
  if (!run_length) {
    const uint64_t need = pixels * pixel_bytes;
    if (have < need)
      throw IoError(vts::detail::concat("cannot decode image file '", path, "': truncated TGA: its header says ", width,
                                        "x", height, " pixels of ", pixel_bytes, " bytes (", need,
                                        " bytes), the file holds ", have, where));
    return;
  }
  uint64_t done = 0, at = start;  // pixels whose packets lie in the file; the next packet's byte
  while (done < pixels && at < size) {
    const uint8_t packet = bytes[at];
    const uint64_t count = std::min<uint64_t>(1 + (packet & 127), pixels - done);
    const uint64_t end = at + 1 + ((packet & 0x80) ? pixel_bytes : count * pixel_bytes);  // a run: one pixel
    if (end > size) break;
    at = end;
    done += count;
  }
  if (done < pixels)
    throw IoError(vts::detail::concat("cannot decode image file '", path, "': truncated TGA: its header says ", width,
                                      "x", height, " pixels, run-length encoded; the ", have, " bytes", where,
                                      " hold the packets of ", done, " of them"));
}

// BMP, two things stb 2.27 gets wrong:
//  - it decodes a file cut short as if the missing pixel rows were zeros, so a 54-byte file that
//    claims 13000x13000 pixels becomes a 500 MB image; PIL refuses it ("image file is
//    truncated"). The rows start at the header's pixel offset and are padded to 4 bytes; the last
//    row needs only its pixels.
//  - a 1-, 4- or 8-bit image whose pixels use a colour beyond its palette (the palette's size is
//    what fits between the header and the pixel offset) takes that colour from never-written stack
//    memory: garbage, different on every call. Refused, with the first such pixel.
// The header is read as stbi__bmp_parse_header and stbi__bmp_load read it, with their int
// arithmetic; a header stb refuses is left to stb.
inline void check_bmp(const uint8_t* bytes, uint64_t size, const std::string& path) {
  auto le = [&](uint64_t at, int n) {
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = v << 8 | (at + uint64_t(k) < size ? bytes[at + uint64_t(k)] : 0);
    return v;
  };
  const uint64_t offset = le(10, 4), header = le(14, 4);
  if (header != 12 && header != 40 && header != 56 && header != 108 && header != 124) return;
  const bool os2 = header == 12;  // 16-bit width and height
  const int64_t width = os2 ? int64_t(le(18, 2)) : int64_t(int32_t(uint32_t(le(18, 4))));
  int64_t height = os2 ? int64_t(le(20, 2)) : int64_t(int32_t(uint32_t(le(22, 4))));
  const uint64_t planes = le(os2 ? 22 : 26, 2), bpp = le(os2 ? 24 : 28, 2);
  const int32_t compression = os2 ? 0 : int32_t(uint32_t(le(30, 4)));  // stb reads it as an int
  if (offset > uint64_t(INT32_MAX) || planes != 1) return;  // stb: "bad BMP"
  if (compression == 1 || compression == 2 || compression >= 4 || (compression == 3 && bpp != 16 && bpp != 32))
    return;  // stb: RLE, JPEG/PNG and bad bit-field BMPs are not read
  if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32) return;
  height = height < 0 ? -height : height;  // negative: rows top to bottom
  if (width <= 0 || height <= 0 || width * height > kMaxImagePixels) return;  // refused by the size check
  const uint64_t stride = (uint64_t(width) * bpp + 31) / 32 * 4, last = (uint64_t(width) * bpp + 7) / 8;
  const uint64_t need = stride * uint64_t(height - 1) + last, have = size > offset ? size - offset : 0;
  if (have < need)
    throw IoError(vts::detail::concat("cannot decode image file '", path, "': truncated BMP: its header says ", width,
                                      "x", height, " pixels of ", bpp, " bits (", need, " bytes from byte ", offset,
                                      "), the file holds ", have));
  if (bpp > 8) return;
  // stb's palette size: the 4-byte entries (OS/2: 3-byte, counted as stb counts them) between the
  // headers and the pixels. 0 or more than 256 stb refuses.
  const int64_t start = static_cast<int64_t>(offset) - 14;
  const int64_t palette = os2 ? (start - 24) / 3 : (start - static_cast<int64_t>(header)) >> 2;
  if (palette == 0 || palette > 256 || palette >= (int64_t(1) << bpp)) return;
  if (palette < 0)  // stb then reads no palette and the pixels from the wrong place (OS/2 files too)
    throw IoError(vts::detail::concat("cannot decode image file '", path, "': BMP: the pixel offset ", offset,
                                      " leaves no room for the palette of a ", bpp, "-bit image (stb_image 2.27 counts ",
                                      palette, " colours)"));
  for (int64_t y = 0; y < height; ++y) {
    const uint8_t* row = bytes + offset + uint64_t(y) * stride;
    for (int64_t x = 0; x < width; ++x) {
      const int colour = bpp == 8   ? row[x]
                         : bpp == 4 ? (row[x / 2] >> (x % 2 ? 0 : 4)) & 15
                                    : (row[x / 8] >> (7 - x % 8)) & 1;
      if (colour >= palette)
        throw IoError(vts::detail::concat("cannot decode image file '", path, "': BMP pixel ", x, " of row ", y,
                                          " (in file order) is colour ", colour, "; expected one of the ", palette,
                                          " colours of its palette"));
    }
  }
}

// GIF: stb 2.27 decodes the first frame's LZW data until the data say they end or the file does,
// reading zeros past the end, and gives the pixels it did not reach the background colour: a GIF
// cut short decodes without an error, with its missing rows filled in. Refused here when the
// frame's pixels run out before it has all of them, as PIL refuses it ("image file is
// truncated"); a GIF cut after its last pixel (inside its end code, before its block terminator
// or its trailer) decodes whole (PIL reads it too once the end code is there). The walk reads the header, the extensions and the first
// image descriptor as stbi__gif_load_next does, then, when the file ends inside the frame's data
// blocks, the LZW codes as stbi__process_gif_raster does, counting the pixels each code stands
// for; where stb refuses the file the walk stops.
inline void check_gif(ByteCursor& in, const std::string& path) {
  auto get8 = [&] { return std::max(in.get(), 0); };
  auto get16le = [&] {
    const int lo = get8();
    return lo + 256 * get8();
  };
  auto truncated = [&](auto&&... where) {
    return IoError(vts::detail::concat("cannot decode image file '", path, "': GIF file is truncated: its ", in.size(),
                                       " bytes end ", where...));
  };
  in.skip(6);  // "GIF87a" or "GIF89a"
  const int screen_w = get16le(), screen_h = get16le(), flags = get8();
  in.skip_or_overrun(2);  // background colour, aspect ratio
  if (flags & 0x80) in.skip_or_overrun(3 * (uint64_t(2) << (flags & 7)));  // the global palette
  for (;;) {
    if (in.overran()) throw truncated("before its first image; expected an image descriptor and its pixels");
    const uint64_t at = in.offset();
    const int tag = in.get();
    if (tag < 0) throw truncated("before its first image; expected an image descriptor and its pixels");
    if (tag == 0x21) {  // an extension: its sub-blocks up to an empty one
      if (get8() == 0xF9) {  // graphic control: stb reads 4 bytes, or skips any other length and stops
        const int length = get8();
        in.skip_or_overrun(length == 4 ? 4 : length);
        if (length != 4) continue;
      }
      for (int length; (length = get8()) != 0;) in.skip_or_overrun(length);
      continue;
    }
    if (tag != 0x2C) return;  // the trailer (no image) or an unknown block: stb refuses the file
    const int x = get16le(), y = get16le(), w = get16le(), h = get16le(), image_flags = get8();
    if (image_flags & 0x80) in.skip_or_overrun(3 * (uint64_t(2) << (image_flags & 7)));  // the image's own palette
    if (in.overran()) throw truncated("inside the image descriptor at byte ", at, "; expected its pixels after it");
    if (x + w > screen_w || y + h > screen_h) return;  // stb: "bad Image Descriptor"
    if (!(image_flags & 0x80) && !(flags & 0x80)) return;  // stb: "missing color table"
    // stb reads the LZW data block by block up to an empty block (or stops sooner, at the end
    // code): when the file holds every block and the empty one, no pixel can come from past the
    // end, and the codes need no walk (it would cost about a tenth of the decode).
    ByteCursor blocks = in;
    bool every_block = false;
    if (blocks.get() >= 0) {  // the LZW code size
      for (;;) {
        const int length = blocks.get();
        if (length <= 0) {
          every_block = length == 0;
          break;
        }
        if (!blocks.skip(uint64_t(length))) break;
      }
    }
    if (every_block) return;
    const uint64_t pixels = uint64_t(w) * uint64_t(h);
    uint64_t drawn = 0;  // stb draws the first w·h pixels the codes stand for and drops the rest
    // The next byte of the LZW data; past the end, a refusal unless every pixel is drawn already.
    auto next = [&](int& byte) {
      byte = in.get();
      if (byte >= 0) return true;
      if (drawn < pixels)
        throw truncated("inside the pixels of the image at byte ", at, ", after ", drawn, " of its ", w, "x", h,
                        " pixels; expected the rest of its LZW data");
      return false;
    };
    int min_code_size = 0;
    if (!next(min_code_size) || min_code_size > 12) return;  // stb refuses a code size above 12
    const int clear = 1 << min_code_size;
    int code_size = min_code_size + 1, code_mask = (1 << code_size) - 1, available = clear + 2, previous = -1;
    bool before_clear = true;  // stb refuses a stream whose first code is not a clear code
    std::vector<uint32_t> length(8192, 1);  // pixels per code: 1 for the palette indices
    uint32_t bits = 0;
    int valid_bits = 0, block_left = 0;
    for (;;) {
      if (valid_bits < code_size) {
        int byte = 0;
        if (block_left == 0) {
          if (!next(block_left) || block_left == 0) return;  // the last block: stb returns what it drew
        }
        --block_left;
        if (!next(byte)) return;
        bits |= uint32_t(byte) << valid_bits;
        valid_bits += 8;
        continue;
      }
      const int code = static_cast<int>(bits & uint32_t(code_mask));
      bits >>= code_size;
      valid_bits -= code_size;
      if (code == clear) {
        code_size = min_code_size + 1;
        code_mask = (1 << code_size) - 1;
        available = clear + 2;
        previous = -1;
        before_clear = false;
      } else if (code == clear + 1 || code > available || before_clear) {
        return;  // the end code, or a code stb refuses ("illegal code in raster", "no clear code")
      } else {
        if (previous >= 0) {
          const int added = available++;
          if (available > 8192) return;  // stb: "too many codes"
          length[added] = length[previous] + 1;
        } else if (code == available) {
          return;  // stb: "illegal code in raster"
        }
        drawn = std::min(pixels, drawn + length[code]);
        if ((available & code_mask) == 0 && available <= 0x0FFF) {
          ++code_size;
          code_mask = (1 << code_size) - 1;
        }
        previous = code;
      }
    }
  }
}

// Radiance HDR and Softimage PIC: stb decodes them too, but they are not among the formats
// decode_image reads (nor does PIL open them), and stb 2.27 reads a truncated flat HDR file's
// pixels from uninitialised stack bytes. Refused by their signatures, as stb recognises them.
inline void refuse_other_formats(const uint8_t* head, size_t n, const std::string& path) {
  auto starts = [&](const char* sig, size_t len, size_t at = 0) {
    return n >= at + len && std::memcmp(head + at, sig, len) == 0;
  };
  const char* format = starts("#?RADIANCE\n", 11) || starts("#?RGBE\n", 7) ? "a Radiance HDR image"
                       : starts("\x53\x80\xF6\x34", 4) && starts("PICT", 4, 88) ? "a Softimage PIC image"
                                                                                  : nullptr;
  if (format)
    throw IoError(vts::detail::concat("cannot decode image file '", path, "': it is ", format,
                                      "; expected a JPEG, PNG, BMP, GIF, TGA or PNM image"));
}

// Runs the checks above on the bytes of a PNG, JPEG, BMP, GIF, PNM or TGA file, and refuses HDR and PIC
// files; other formats pass untouched. The format is told as stb tells it: stb tries JPEG, PNG,
// BMP, GIF, PSD, PIC, PNM and HDR by their signatures, and TGA last, for whatever none of them
// took.
inline void check_image_structure(const uint8_t* bytes, size_t size, const std::string& path) {
  ByteCursor in(bytes, size);
  size_t fill = 0;  // stb takes any number of 0xFF bytes, then 0xD8, as the start of a JPEG
  while (fill < size && bytes[fill] == 0xFF) ++fill;
  if (fill > 0 && fill < size && bytes[fill] == 0xD8) {
    in.skip(fill + 1);  // after SOI
    return check_jpeg(in, path);
  }
  static const uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (size >= 8 && std::memcmp(bytes, png, 8) == 0) {
    in.skip(8);
    return check_png_chunks(in, path);
  }
  if (size >= 2 && bytes[0] == 'B' && bytes[1] == 'M') return check_bmp(bytes, size, path);
  if (size >= 6 && std::memcmp(bytes, "GIF8", 4) == 0 && (bytes[4] == '7' || bytes[4] == '9') && bytes[5] == 'a')
    return check_gif(in, path);
  if (size >= 2 && bytes[0] == 'P' && (bytes[1] == '5' || bytes[1] == '6')) {
    in.skip(2);
    return check_pnm_header(in, bytes[1] == '6' ? 3 : 1, path);
  }
  refuse_other_formats(bytes, size, path);
  // No signature above has 0 or 1 as its second byte, and a TGA's (its colour-map type) is one of
  // them, whatever its first byte (the ID length: 0xFF, '#' or 'S' too). stb reads the 18-byte
  // header of a shorter file with zeros for the missing bytes.
  if (size >= 2 && bytes[1] <= 1) {
    uint8_t header[18] = {};
    std::memcpy(header, bytes, std::min<size_t>(size, sizeof header));
    check_tga(header, bytes, size, path);
  }
}
}  // namespace detail
}  // namespace vts::data
