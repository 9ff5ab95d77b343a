#pragma once
// The VTS index file: packed codes, per-item labels and source paths, plus what produced them.
// Opened by memory map: the codes and labels are used in place, so opening a million-item index
// costs a checksum pass, not a parse.
//
// Layout (little-endian; every section starts at a multiple of 64 bytes, gaps are zero):
//   header, 128 bytes:
//     0   char[8]  magic "VTSINDEX"
//     8   u32      format version (1)
//     12  u32      header size (128)
//     16  u64      K, code length in bits (multiple of 8)
//     24  u64      n, item count
//     32  u64      C, label classes (0: no labels)
//     40  u64      fingerprint offset    48  u64  fingerprint length
//     56  u64      codes offset          (n × K/8 bytes, bit order of codes.hpp)
//     64  u64      labels offset         (n × ⌈C/64⌉ u64 words, layout of labels.hpp)
//     72  u64      path table offset     (n + 1 u64 offsets into the path bytes, 0 first)
//     80  u64      path bytes offset     88  u64  path bytes length
//     96  u64      file size
//     104 u32      CRC-32 of bytes [128, file size)
//     108 u32      CRC-32 of the header with this field zero
//     112 16 bytes reserved, zero
//   fingerprint (UTF-8, model/config identity chosen by the writer), codes, labels, path table,
//   path bytes.
// Opening checks the magic, the header CRC, the version, that every offset is exactly where the
// layout puts it, the file size, the payload CRC (optional) and the path table, and, when asked,
// K and the fingerprint; each failure is a vts::IoError naming the file, what was expected and
// what was found. Writing goes through io::AtomicFile (temporary + fsync + rename).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vts/core/crc32.hpp"
#include "vts/core/error.hpp"
#include "vts/index/codes.hpp"
#include "vts/index/labels.hpp"
#include "vts/io/atomic_file.hpp"
#include "vts/io/file.hpp"

namespace vts::index {

inline constexpr char kIndexMagic[8] = {'V', 'T', 'S', 'I', 'N', 'D', 'E', 'X'};
inline constexpr uint32_t kIndexFormatVersion = 1;
inline constexpr uint64_t kIndexHeaderBytes = 128;
inline constexpr uint64_t kMaxFingerprintBytes = 1 << 20;

// What write_index_file stores. `labels` may be empty (words == nullptr, classes == 0) and `paths`
// may be empty; otherwise each has one entry per code.
struct IndexFileContents {
  CodesView codes;
  LabelsView labels;
  std::span<const std::string> paths;
  std::string fingerprint;
};

struct IndexOpenOptions {
  int64_t expect_bits = 0;                       // 0: any K
  std::optional<std::string> expect_fingerprint;  // unset: any fingerprint
  bool verify_checksum = true;                    // CRC over the whole payload (one read pass)
};

namespace detail {

// Where each section goes, from the counts alone; the reader recomputes this and demands equality.
// nullopt when the counts need offsets past 64 bits: no file has them, and a forged header must not
// wrap around to small offsets.
struct IndexLayout {
  uint64_t fingerprint = 0, codes = 0, labels = 0, path_table = 0, path_bytes = 0, file_size = 0;
};
inline std::optional<IndexLayout> index_layout(uint64_t bits, uint64_t n, uint64_t classes, uint64_t fingerprint_len,
                                               uint64_t path_len) {
  bool fits = true;
  auto add = [&fits](uint64_t a, uint64_t b) {
    fits = fits && b <= UINT64_MAX - a;
    return fits ? a + b : 0;
  };
  auto mul = [&fits](uint64_t a, uint64_t b) {
    fits = fits && (a == 0 || b <= UINT64_MAX / a);
    return fits ? a * b : 0;
  };
  auto align64 = [&add](uint64_t x) { return add(x, 63) & ~uint64_t(63); };
  IndexLayout l;
  l.fingerprint = kIndexHeaderBytes;
  l.codes = align64(add(l.fingerprint, fingerprint_len));
  l.labels = align64(add(l.codes, mul(n, bits / 8)));
  l.path_table = align64(add(l.labels, mul(mul(n, classes / 64 + (classes % 64 != 0)), 8)));
  l.path_bytes = align64(add(l.path_table, mul(add(n, 1), 8)));
  l.file_size = add(l.path_bytes, path_len);
  if (!fits) return std::nullopt;
  return l;
}

struct HeaderFields {
  uint32_t version = 0, header_size = 0;
  uint64_t bits = 0, count = 0, classes = 0, fp_off = 0, fp_len = 0, codes_off = 0, labels_off = 0,
           table_off = 0, path_off = 0, path_len = 0, file_size = 0;
  uint32_t payload_crc = 0, header_crc = 0;
};

template <class T>
void put(uint8_t* h, size_t at, T v) {
  std::memcpy(h + at, &v, sizeof(T));
}
template <class T>
T get(const uint8_t* h, size_t at) {
  T v;
  std::memcpy(&v, h + at, sizeof(T));
  return v;
}

inline void encode_header(const HeaderFields& f, uint8_t* h) {
  std::memset(h, 0, kIndexHeaderBytes);
  std::memcpy(h, kIndexMagic, 8);
  put(h, 8, f.version);
  put(h, 12, f.header_size);
  put(h, 16, f.bits);
  put(h, 24, f.count);
  put(h, 32, f.classes);
  put(h, 40, f.fp_off);
  put(h, 48, f.fp_len);
  put(h, 56, f.codes_off);
  put(h, 64, f.labels_off);
  put(h, 72, f.table_off);
  put(h, 80, f.path_off);
  put(h, 88, f.path_len);
  put(h, 96, f.file_size);
  put(h, 104, f.payload_crc);
  put(h, 108, uint32_t(0));
  put(h, 108, vts::crc32(0, h, kIndexHeaderBytes));
}

inline HeaderFields decode_header(const uint8_t* h) {
  HeaderFields f;
  f.version = get<uint32_t>(h, 8);
  f.header_size = get<uint32_t>(h, 12);
  f.bits = get<uint64_t>(h, 16);
  f.count = get<uint64_t>(h, 24);
  f.classes = get<uint64_t>(h, 32);
  f.fp_off = get<uint64_t>(h, 40);
  f.fp_len = get<uint64_t>(h, 48);
  f.codes_off = get<uint64_t>(h, 56);
  f.labels_off = get<uint64_t>(h, 64);
  f.table_off = get<uint64_t>(h, 72);
  f.path_off = get<uint64_t>(h, 80);
  f.path_len = get<uint64_t>(h, 88);
  f.file_size = get<uint64_t>(h, 96);
  f.payload_crc = get<uint32_t>(h, 104);
  f.header_crc = get<uint32_t>(h, 108);
  return f;
}

// Appends the payload to an AtomicFile (or nowhere, for a CRC-only pass), keeping the running
// CRC and the position for padding. Small writes (the 8-byte path offsets) are gathered into a
// buffer: one system call each would dominate the time for large indexes.
class IndexWriter {
 public:
  explicit IndexWriter(io::AtomicFile* f) : f_(f) {
    if (f_) buf_.reserve(kBuffer);
  }
  void write(const void* p, uint64_t n) {
    if (n == 0) return;
    crc_ = vts::crc32(crc_, p, n);
    pos_ += n;
    if (!f_) return;
    if (buf_.size() + n > kBuffer) flush();
    if (n >= kBuffer) {
      f_->write(p, n);
    } else {
      const uint8_t* b = static_cast<const uint8_t*>(p);
      buf_.insert(buf_.end(), b, b + n);
    }
  }
  void pad_to(uint64_t offset) {
    static const uint8_t zeros[64] = {};
    while (pos_ < offset) write(zeros, std::min<uint64_t>(64, offset - pos_));
  }
  void flush() {
    if (f_ && !buf_.empty()) f_->write(buf_.data(), buf_.size());
    buf_.clear();
  }
  uint64_t pos() const { return pos_; }
  uint32_t crc() const { return crc_; }

 private:
  static constexpr size_t kBuffer = size_t(1) << 20;
  io::AtomicFile* f_;
  std::vector<uint8_t> buf_;
  uint32_t crc_ = 0;
  uint64_t pos_ = kIndexHeaderBytes;
};

}  // namespace detail

// Writes an index file atomically. Throws vts::Error on inconsistent contents (nothing is written)
// and vts::IoError on file-system failures.
inline void write_index_file(const std::string& path, const IndexFileContents& c) {
  check_code_bits(c.codes.bits, "write_index_file");
  const int64_t n = c.codes.count;
  VTS_CHECK(n >= 0 && (n == 0 || c.codes.data), "write_index_file: codes without data");
  const bool has_labels = c.labels.classes > 0;
  if (has_labels)
    VTS_CHECK(c.labels.count == n && (n == 0 || c.labels.words), "write_index_file: expected labels for ", n,
              " items, found ", c.labels.count);
  else
    VTS_CHECK(c.labels.count == 0, "write_index_file: labels for ", c.labels.count, " items have 0 classes");
  const bool has_paths = !c.paths.empty();
  if (has_paths)
    VTS_CHECK(static_cast<int64_t>(c.paths.size()) == n, "write_index_file: expected one path per item (", n,
              "), found ", c.paths.size());
  VTS_CHECK(c.fingerprint.size() <= kMaxFingerprintBytes, "write_index_file: fingerprint of at most ",
            kMaxFingerprintBytes, " bytes expected, found ", c.fingerprint.size());

  uint64_t path_len = 0;
  for (const std::string& p : c.paths) path_len += p.size();
  const uint64_t classes = has_labels ? static_cast<uint64_t>(c.labels.classes) : 0;
  const std::optional<detail::IndexLayout> layout =
      detail::index_layout(static_cast<uint64_t>(c.codes.bits), static_cast<uint64_t>(n), classes, c.fingerprint.size(), path_len);
  VTS_CHECK(layout.has_value(), "write_index_file: ", n, " codes with ", path_len, " path bytes need a file past 2^64 bytes");
  const detail::IndexLayout& l = *layout;

  // The header holds the payload's CRC and AtomicFile only appends, so the payload is emitted
  // twice from memory: once into a CRC-only sink, then into the file after the header. The CRC
  // pass is cheap next to the write and fsync.
  auto emit = [&](auto& out) {
    out.write(c.fingerprint.data(), c.fingerprint.size());
    out.pad_to(l.codes);
    out.write(c.codes.data, static_cast<uint64_t>(c.codes.size_bytes()));
    out.pad_to(l.labels);
    if (has_labels) out.write(c.labels.words, static_cast<uint64_t>(n * c.labels.words_per_item()) * 8);
    out.pad_to(l.path_table);
    uint64_t off = 0;
    out.write(&off, 8);
    for (int64_t i = 0; i < n; ++i) {
      off += has_paths ? c.paths[static_cast<size_t>(i)].size() : 0;
      out.write(&off, 8);
    }
    out.pad_to(l.path_bytes);
    for (const std::string& p : c.paths) out.write(p.data(), p.size());
  };
  detail::IndexWriter crc_pass(nullptr);
  emit(crc_pass);
  VTS_CHECK(crc_pass.pos() == l.file_size, "write_index_file: internal layout error (", crc_pass.pos(), " != ",
            l.file_size, ")");

  detail::HeaderFields h;
  h.version = kIndexFormatVersion;
  h.header_size = static_cast<uint32_t>(kIndexHeaderBytes);
  h.bits = static_cast<uint64_t>(c.codes.bits);
  h.count = static_cast<uint64_t>(n);
  h.classes = classes;
  h.fp_off = l.fingerprint;
  h.fp_len = c.fingerprint.size();
  h.codes_off = l.codes;
  h.labels_off = l.labels;
  h.table_off = l.path_table;
  h.path_off = l.path_bytes;
  h.path_len = path_len;
  h.file_size = l.file_size;
  h.payload_crc = crc_pass.crc();
  uint8_t header[kIndexHeaderBytes];
  detail::encode_header(h, header);

  io::AtomicFile file(path);
  file.write(header, kIndexHeaderBytes);
  detail::IndexWriter out(&file);
  emit(out);
  out.flush();
  file.commit();
}

// A read-only, memory-mapped index file. Movable, not copyable; views stay valid while it lives.
class IndexFile {
 public:
  explicit IndexFile(const std::string& path, const IndexOpenOptions& opt = {})
      : map_(std::make_unique<io::detail::MappedFile>(path)) {
    const std::string& p = map_->path();
    const uint8_t* base = map_->data();
    const uint64_t size = map_->size();
    auto fail = [&](auto&&... parts) -> IoError {
      return IoError(vts::detail::concat("index file '", p, "': ", parts...));
    };
    if (size < kIndexHeaderBytes)
      throw fail("truncated: expected at least the ", kIndexHeaderBytes, "-byte header, found ", size, " bytes");
    if (std::memcmp(base, kIndexMagic, 8) != 0) throw fail("not a VTS index (expected magic \"VTSINDEX\" at offset 0)");
    const detail::HeaderFields h = detail::decode_header(base);
    {
      uint8_t copy[kIndexHeaderBytes];
      std::memcpy(copy, base, kIndexHeaderBytes);
      detail::put(copy, 108, uint32_t(0));
      const uint32_t crc = vts::crc32(0, copy, kIndexHeaderBytes);
      if (crc != h.header_crc)
        throw fail("corrupt header (header CRC-32 expected ", h.header_crc, ", computed ", crc, ")");
    }
    if (h.version != kIndexFormatVersion)
      throw fail("unsupported format version ", h.version, " (this build reads version ", kIndexFormatVersion, ")");
    if (h.header_size != kIndexHeaderBytes)
      throw fail("header size ", h.header_size, " (expected ", kIndexHeaderBytes, ")");
    if (h.bits == 0 || h.bits % 8 != 0 || h.bits > static_cast<uint64_t>(kMaxCodeBits))
      throw fail("code length K = ", h.bits, " (expected a positive multiple of 8, at most ", kMaxCodeBits, ")");
    if (h.fp_len > kMaxFingerprintBytes) throw fail("fingerprint length ", h.fp_len, " (at most ", kMaxFingerprintBytes, ")");
    // The header's CRC holds, so its counts are what the writer wrote unless the file was forged:
    // counts whose layout fits in 64 bits describe a file, and a shorter one is a truncated copy
    // of it (said below); counts past that describe no file at all.
    const std::optional<detail::IndexLayout> layout =
        detail::index_layout(h.bits, h.count, h.classes, h.fp_len, h.path_len);
    if (h.classes > (uint64_t(1) << 32) || !layout)
      throw fail("implausible header (n = ", h.count, ", classes = ", h.classes, ", path bytes = ", h.path_len,
                 ") for a ", size, "-byte file");
    const detail::IndexLayout& l = *layout;
    if (h.fp_off != l.fingerprint || h.codes_off != l.codes || h.labels_off != l.labels || h.table_off != l.path_table ||
        h.path_off != l.path_bytes || h.file_size != l.file_size)
      throw fail("section offsets do not match the layout for n = ", h.count, ", K = ", h.bits, ", C = ", h.classes);
    if (size != l.file_size)
      throw fail(size < l.file_size ? "truncated" : "trailing bytes", ": expected ", l.file_size, " bytes, found ", size);
    if (opt.verify_checksum) {
      const uint32_t crc = vts::crc32(0, base + kIndexHeaderBytes, size - kIndexHeaderBytes);
      if (crc != h.payload_crc)
        throw fail("corrupt contents (payload CRC-32 expected ", h.payload_crc, ", computed ", crc, ")");
    }
    const uint64_t* table = reinterpret_cast<const uint64_t*>(base + l.path_table);
    if (table[0] != 0) throw fail("path table must start at 0, found ", table[0]);
    for (uint64_t i = 0; i < h.count; ++i)
      if (table[i + 1] < table[i]) throw fail("path table decreases at item ", i);
    if (table[h.count] != h.path_len)
      throw fail("path table ends at ", table[h.count], ", expected the path bytes length ", h.path_len);

    if (opt.expect_bits > 0 && static_cast<uint64_t>(opt.expect_bits) != h.bits)
      throw fail("code length mismatch: expected K = ", opt.expect_bits, " bits, found K = ", h.bits);
    fingerprint_ = std::string_view(reinterpret_cast<const char*>(base + l.fingerprint), h.fp_len);
    if (opt.expect_fingerprint && *opt.expect_fingerprint != fingerprint_)
      throw fail("fingerprint mismatch: expected \"", *opt.expect_fingerprint, "\", found \"", fingerprint_, "\"");

    codes_ = CodesView{base + l.codes, static_cast<int64_t>(h.count), static_cast<int64_t>(h.bits)};
    if (h.classes > 0)
      labels_ = LabelsView{reinterpret_cast<const uint64_t*>(base + l.labels), static_cast<int64_t>(h.count),
                           static_cast<int64_t>(h.classes)};
    path_table_ = table;
    path_bytes_ = reinterpret_cast<const char*>(base + l.path_bytes);
    version_ = h.version;
  }

  const std::string& file_path() const { return map_->path(); }
  uint32_t format_version() const { return version_; }
  int64_t bits() const { return codes_.bits; }
  int64_t size() const { return codes_.count; }
  std::string_view fingerprint() const { return fingerprint_; }
  CodesView codes() const { return codes_; }
  bool has_labels() const { return labels_.classes > 0; }
  int64_t num_classes() const { return labels_.classes; }
  LabelsView labels() const { return labels_; }
  // Source path of item i (empty if none were stored).
  std::string_view path(int64_t i) const {
    VTS_CHECK(0 <= i && i < size(), "IndexFile::path: item ", i, " out of range [0, ", size(), ")");
    return std::string_view(path_bytes_ + path_table_[i], path_table_[i + 1] - path_table_[i]);
  }

 private:
  std::unique_ptr<io::detail::MappedFile> map_;
  CodesView codes_;
  LabelsView labels_;
  std::string_view fingerprint_;
  const uint64_t* path_table_ = nullptr;
  const char* path_bytes_ = nullptr;
  uint32_t version_ = 0;
};

inline IndexFile open_index_file(const std::string& path, const IndexOpenOptions& opt = {}) { return IndexFile(path, opt); }

}  // namespace vts::index
