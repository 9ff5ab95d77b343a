#pragma once
// NumPy .npy files (format versions 1.0, 2.0 and 3.0).
//
// A .npy file is: "\x93NUMPY", a major and minor version byte, the header length (2 bytes little
// endian in 1.0, 4 bytes in 2.0/3.0), then the header: a Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } padded with spaces and a final
// newline, then the raw elements. Reading accepts what numpy writes for the supported dtypes,
// including big-endian data and Fortran order (both converted, so an Array is always
// little-endian C order); everything else is rejected with an IoError that names the source.
//
// bfloat16: numpy has no bfloat16 dtype. ml_dtypes.bfloat16 arrays reach disk as 2-byte void
// ('|V2'), so that is what bf16 is written as, and '|V2' / '<V2' read back as bf16. numpy loads
// such a file as dtype('V2'); `.view(ml_dtypes.bfloat16)` recovers the values.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "vts/core/error.hpp"
#include "vts/io/array.hpp"
#include "vts/io/atomic_file.hpp"
#include "vts/io/file.hpp"

namespace vts::io {

namespace detail {

inline constexpr char kNpyMagic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

// Shows untrusted bytes in an error message without control characters or unbounded length.
inline std::string printable(std::string_view s, size_t max_len = 80) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max_len; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (s.size() > max_len) out += "...";
  return out;
}

struct NpyHeader {
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  bool fortran_order = false;
  bool big_endian = false;
};

inline const char* npy_descr(DType t) {
  switch (t) {
    case DType::f16: return "<f2";
    case DType::bf16: return "|V2";
    case DType::f32: return "<f4";
    case DType::f64: return "<f8";
    case DType::i8: return "|i1";
    case DType::u8: return "|u1";
    case DType::i16: return "<i2";
    case DType::u16: return "<u2";
    case DType::i32: return "<i4";
    case DType::u32: return "<u4";
    case DType::i64: return "<i8";
    case DType::u64: return "<u8";
    case DType::b1: return "|b1";
  }
  throw Error(concat("npy_descr: invalid DType value ", static_cast<int>(t)));
}

// Parses the subset of Python literal syntax that npy headers use: a dict with string keys whose
// values are strings, True/False, or tuples of non-negative integers. Python 2 era writers
// produced "3L" for integers; the suffix is accepted as numpy itself still does.
class NpyHeaderParser {
 public:
  NpyHeaderParser(std::string_view text, const std::string& what) : text_(text), what_(what) {}

  NpyHeader parse() {
    NpyHeader h;
    bool have_descr = false, have_fortran = false, have_shape = false;
    skip_ws();
    expect('{');
    skip_ws();
    while (!eat('}')) {
      const std::string key = parse_string();
      skip_ws();
      expect(':');
      skip_ws();
      if (key == "descr") {
        if (have_descr) fail("duplicate key 'descr'");
        have_descr = true;
        if (peek() == '[') fail("structured dtypes (a list as 'descr') are not supported");
        parse_descr(parse_string(), h);
      } else if (key == "fortran_order") {
        if (have_fortran) fail("duplicate key 'fortran_order'");
        have_fortran = true;
        h.fortran_order = parse_bool();
      } else if (key == "shape") {
        if (have_shape) fail("duplicate key 'shape'");
        have_shape = true;
        h.shape = parse_shape();
      } else {
        fail(concat("unexpected key '", printable(key), "' (expected descr, fortran_order, shape)"));
      }
      skip_ws();
      if (eat(',')) {
        skip_ws();
      } else if (peek() != '}') {
        fail("expected ',' or '}' after a value");
      }
    }
    skip_ws();
    if (pos_ != text_.size()) fail("unexpected characters after the closing '}'");
    if (!have_descr || !have_fortran || !have_shape)
      fail(concat("missing key", !have_descr ? " 'descr'" : "", !have_fortran ? " 'fortran_order'" : "",
                  !have_shape ? " 'shape'" : ""));
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const {
    throw IoError(concat(what_, ": malformed npy header: ", msg, " (at header offset ", pos_,
                         "; header starts \"", printable(text_), "\")"));
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool eat(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) {
      if (pos_ >= text_.size()) fail(concat("expected '", c, "', found the end of the header"));
      fail(concat("expected '", c, "', found '", printable(text_.substr(pos_, 1)), "'"));
    }
  }
  void skip_ws() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }

  std::string parse_string() {
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    ++pos_;
    std::string s;
    while (true) {
      if (pos_ >= text_.size()) fail("unterminated string");
      char c = text_[pos_++];
      if (c == q) break;
      if (c == '\\') {
        if (pos_ >= text_.size()) fail("unterminated string");
        c = text_[pos_++];
        if (c != '\\' && c != '\'' && c != '"') fail("unsupported escape sequence in a string");
      }
      s += c;
    }
    return s;
  }

  bool parse_bool() {
    if (text_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (text_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    fail("'fortran_order' must be True or False");
  }

  int64_t parse_dim() {
    if (peek() == '-') fail("negative dimension in 'shape'");
    if (peek() < '0' || peek() > '9') fail("'shape' must be a tuple of integers");
    uint64_t v = 0;
    while (peek() >= '0' && peek() <= '9') {
      v = v * 10 + static_cast<uint64_t>(text_[pos_++] - '0');
      if (v > static_cast<uint64_t>(INT64_MAX)) fail("dimension in 'shape' exceeds int64");
    }
    if (peek() == 'L') ++pos_;
    return static_cast<int64_t>(v);
  }

  std::vector<int64_t> parse_shape() {
    std::vector<int64_t> shape;
    expect('(');
    skip_ws();
    while (!eat(')')) {
      shape.push_back(parse_dim());
      skip_ws();
      if (eat(',')) {
        skip_ws();
      } else if (peek() != ')') {
        fail("expected ',' or ')' in 'shape'");
      }
      // numpy supports at most 32 dimensions (64 since 2.0); bound it so a hostile header cannot
      // grow the vector without limit.
      if (shape.size() > 64) fail("'shape' has more than 64 dimensions");
    }
    return shape;
  }

  void parse_descr(const std::string& d, NpyHeader& h) {
    size_t i = 0;
    char order = '=';
    if (!d.empty() && (d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '=')) order = d[i++];
    if (i >= d.size()) fail(concat("empty dtype descr '", printable(d), "'"));
    const char kind = d[i++];
    int size = 0;
    const std::string digits = d.substr(i);
    if (digits.size() == 1 && digits[0] >= '1' && digits[0] <= '9') size = digits[0] - '0';
    bool ok = true;
    switch (kind) {
      case 'f':
        if (size == 2) h.dtype = DType::f16;
        else if (size == 4) h.dtype = DType::f32;
        else if (size == 8) h.dtype = DType::f64;
        else ok = false;
        break;
      case 'i':
        if (size == 1) h.dtype = DType::i8;
        else if (size == 2) h.dtype = DType::i16;
        else if (size == 4) h.dtype = DType::i32;
        else if (size == 8) h.dtype = DType::i64;
        else ok = false;
        break;
      case 'u':
        if (size == 1) h.dtype = DType::u8;
        else if (size == 2) h.dtype = DType::u16;
        else if (size == 4) h.dtype = DType::u32;
        else if (size == 8) h.dtype = DType::u64;
        else ok = false;
        break;
      case 'b':
        if (size == 1) h.dtype = DType::b1;
        else ok = false;
        break;
      case 'V':
        if (size == 2) h.dtype = DType::bf16;
        else ok = false;
        break;
      case 'O':
        fail("object arrays (pickled Python objects, descr '|O') are not supported");
      default: ok = false;
    }
    if (!ok)
      fail(concat("unsupported dtype descr '", printable(d),
                  "' (supported: f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1, and V2 as bfloat16)"));
    h.big_endian = order == '>';
  }

  std::string_view text_;
  const std::string& what_;
  size_t pos_ = 0;
};

inline void byteswap_elements(std::vector<uint8_t>& bytes, size_t esize) {
  if (esize < 2) return;
  for (size_t off = 0; off + esize <= bytes.size(); off += esize)
    std::reverse(bytes.begin() + static_cast<ptrdiff_t>(off),
                 bytes.begin() + static_cast<ptrdiff_t>(off + esize));
}

// Reorders elements stored with the first index varying fastest into C order.
inline std::vector<uint8_t> fortran_to_c(const std::vector<uint8_t>& src,
                                         const std::vector<int64_t>& shape, size_t esize) {
  const size_t nd = shape.size();
  std::vector<uint8_t> dst(src.size());
  if (src.empty()) return dst;
  std::vector<int64_t> fstride(nd), idx(nd, 0);
  int64_t s = 1;
  for (size_t k = 0; k < nd; ++k) {
    fstride[k] = s;
    s *= shape[k];
  }
  int64_t off = 0;  // Fortran element offset of the current C-order position
  const size_t n = src.size() / esize;
  for (size_t out = 0; out < n; ++out) {
    std::memcpy(dst.data() + out * esize, src.data() + static_cast<size_t>(off) * esize, esize);
    for (size_t d = nd; d-- > 0;) {
      off += fstride[d];
      if (++idx[d] < shape[d]) break;
      off -= fstride[d] * shape[d];
      idx[d] = 0;
    }
  }
  return dst;
}

struct MemorySource {
  const uint8_t* data;
  size_t size;
  size_t pos = 0;
  size_t read(void* dst, size_t n) {
    const size_t k = std::min(n, size - pos);
    if (k) std::memcpy(dst, data + pos, k);
    pos += k;
    return k;
  }
};

// Reads one .npy image of exactly `total` bytes from `src` (anything with
// `size_t read(void*, size_t)` that returns fewer bytes only at the end). Every length in the
// file is checked against `total` before anything is allocated, so a hostile header cannot make
// the reader allocate more than the source holds.
template <class Source>
Array read_npy_stream(Source& src, uint64_t total, const std::string& what) {
  uint8_t pre[12];
  if (total < 10)
    throw IoError(concat(what, ": truncated: ", total,
                         " bytes, but a .npy file needs at least 10 before its header"));
  if (src.read(pre, 8) != 8) throw IoError(concat(what, ": truncated while reading the npy magic"));
  if (std::memcmp(pre, kNpyMagic, 6) != 0)
    throw IoError(concat(what, ": not a .npy file: expected magic \"\\x93NUMPY\", found \"",
                         printable(std::string_view(reinterpret_cast<const char*>(pre), 6)), "\""));
  const int major = pre[6], minor = pre[7];
  if (!((major == 1 || major == 2 || major == 3) && minor == 0))
    throw IoError(concat(what, ": unsupported npy format version ", major, ".", minor,
                         " (expected 1.0, 2.0 or 3.0)"));
  const size_t len_bytes = major == 1 ? 2 : 4;
  if (total < 8 + len_bytes)
    throw IoError(concat(what, ": truncated: ", total, " bytes end inside the header length"));
  if (src.read(pre + 8, len_bytes) != len_bytes)
    throw IoError(concat(what, ": truncated while reading the header length"));
  uint64_t header_len = pre[8] | (uint64_t(pre[9]) << 8);
  if (len_bytes == 4) header_len |= (uint64_t(pre[10]) << 16) | (uint64_t(pre[11]) << 24);
  const uint64_t data_start = 8 + len_bytes + header_len;
  if (data_start > total)
    throw IoError(concat(what, ": header length field says ", header_len, " bytes, but only ",
                         total - 8 - len_bytes, " bytes follow it"));
  std::string text(static_cast<size_t>(header_len), '\0');
  if (src.read(text.data(), text.size()) != text.size())
    throw IoError(concat(what, ": truncated inside the npy header"));

  const NpyHeader h = NpyHeaderParser(text, what).parse();
  const int64_t n = checked_numel(h.shape);
  const size_t es = dtype_size(h.dtype);
  uint64_t need = 0;
  if (n < 0 || __builtin_mul_overflow(static_cast<uint64_t>(n), es, &need))
    throw IoError(concat(what, ": shape ", shape_str(h.shape), " of ", dtype_name(h.dtype),
                         " is too large to address"));
  const uint64_t have = total - data_start;
  if (have < need)
    throw IoError(concat(what, ": data truncated: shape ", shape_str(h.shape), " of ",
                         dtype_name(h.dtype), " needs ", need, " bytes, found ", have));
  if (have > need)
    throw IoError(concat(what, ": ", have - need, " unexpected bytes after the data of shape ",
                         shape_str(h.shape), " of ", dtype_name(h.dtype), " (", need, " bytes)"));

  Array a;
  a.dtype = h.dtype;
  a.shape = h.shape;
  a.bytes.resize(static_cast<size_t>(need));
  if (src.read(a.bytes.data(), a.bytes.size()) != a.bytes.size())
    throw IoError(concat(what, ": data truncated: expected ", need, " bytes of ", dtype_name(h.dtype)));
  if (h.big_endian) byteswap_elements(a.bytes, es);
  if (h.fortran_order && a.shape.size() > 1) a.bytes = fortran_to_c(a.bytes, a.shape, es);
  return a;
}

// The header block (magic through the newline) numpy would write for `a`, padded so the data
// starts on a 64-byte boundary as numpy's own files do.
inline std::vector<uint8_t> npy_header(const Array& a) {
  std::string dict = concat("{'descr': '", npy_descr(a.dtype), "', 'fortran_order': False, 'shape': ",
                            shape_str(a.shape), ", }");
  const size_t hlen = dict.size() + 1;  // + newline
  size_t len_bytes = 2;
  size_t pad = (64 - (8 + len_bytes + hlen) % 64) % 64;
  int major = 1;
  if (hlen + pad > 0xffff) {  // only absurdly many dimensions get here
    major = 2;
    len_bytes = 4;
    pad = (64 - (8 + len_bytes + hlen) % 64) % 64;
  }
  const uint64_t header_len = hlen + pad;
  // Sized once and filled in place (growing it byte by byte draws a false -Warray-bounds from GCC 12).
  std::vector<uint8_t> out(8 + len_bytes + header_len, ' ');
  std::memcpy(out.data(), kNpyMagic, 6);
  out[6] = static_cast<uint8_t>(major);
  out[7] = 0;
  for (size_t i = 0; i < len_bytes; ++i) out[8 + i] = static_cast<uint8_t>(header_len >> (8 * i));
  std::memcpy(out.data() + 8 + len_bytes, dict.data(), dict.size());
  out.back() = '\n';
  return out;
}

}  // namespace detail

// Parses an in-memory .npy image; `what` names the source in error messages.
inline Array parse_npy(const void* data, size_t size, const std::string& what) {
  if (data == nullptr && size != 0) throw IoError(detail::concat(what, ": null data pointer"));
  detail::MemorySource src{static_cast<const uint8_t*>(data), size};
  return detail::read_npy_stream(src, size, what);
}

inline Array read_npy(const std::string& path) {
  detail::InputFile f(path);
  return detail::read_npy_stream(f, f.size(), detail::concat("npy file '", path, "'"));
}

inline std::vector<uint8_t> serialize_npy(const Array& a) {
  detail::check_array(a, "serialize_npy");
  std::vector<uint8_t> out = detail::npy_header(a);
  out.insert(out.end(), a.bytes.begin(), a.bytes.end());
  return out;
}

// Atomic: writes a temporary file in the same directory, fsyncs it, renames it over `path`.
inline void write_npy(const std::string& path, const Array& a) {
  detail::check_array(a, detail::concat("write_npy '", path, "'"));
  const std::vector<uint8_t> header = detail::npy_header(a);
  AtomicFile f(path);
  f.write(header.data(), header.size());
  f.write(a.bytes.data(), a.bytes.size());
  f.commit();
}

}  // namespace vts::io
