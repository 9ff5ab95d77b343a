// libFuzzer target for the Hamming index file reader (vts::index::open_index_file). The input is
// written to a temporary file because the reader maps a path, as `vts search` does.
//
// Every input is opened twice: as it is (almost always refused by the header CRC), and with both
// CRCs recomputed, so that mutations reach the layout, size and path-table checks behind them.
//
// Oracle: opening either throws vts::IoError naming the file, or yields an index whose views
// (fingerprint, codes, labels, every item's path) lie inside the file and agree with its counts;
// reading every code, label word and path stays inside them. With valid CRCs, opening with and
// without the payload check agrees; a different expected K or fingerprint is an IoError, the
// found ones are accepted; and writing the opened contents with write_index_file and opening that
// gives the same contents back. Any other exception, a sanitizer report or a mismatch is a crash.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "vts/index/index_file.hpp"

using namespace vts::index;
using vts_fuzz::fail;

namespace {

struct Contents {
  int64_t bits = 0, count = 0, classes = 0;
  std::string fingerprint;
  std::vector<uint8_t> codes;
  std::vector<uint64_t> label_words;
  std::vector<std::string> paths;
  bool operator==(const Contents&) const = default;
};

bool inside(const void* p, uint64_t n, const uint8_t* base, uint64_t size) {
  const auto* b = static_cast<const uint8_t*>(p);
  return n == 0 || (b >= base && n <= size && b - base <= static_cast<ptrdiff_t>(size - n));
}

// Reads everything through the public views, checking each view against the mapping first (the
// map is not ASan-tracked: a view past its end reads whatever lies there, or faults).
Contents read_all(const IndexFile& f, uint64_t file_size) {
  Contents c;
  c.bits = f.bits();
  c.count = f.size();
  if (c.bits <= 0 || c.bits % 8 != 0 || c.bits > kMaxCodeBits) fail("K out of range");
  if (c.count < 0) fail("negative item count");
  const std::string_view fp = f.fingerprint();
  // The fingerprint is the first section, right after the 128-byte header: that gives the base.
  const uint8_t* base = reinterpret_cast<const uint8_t*>(fp.data()) - kIndexHeaderBytes;
  if (!inside(fp.data(), fp.size(), base, file_size)) fail("fingerprint outside the file");
  c.fingerprint = std::string(fp);
  const CodesView codes = f.codes();
  if (codes.count != c.count || codes.bits != c.bits) fail("codes view disagrees with size()/bits()");
  if (c.count > 0 && !inside(codes.data, static_cast<uint64_t>(codes.size_bytes()), base, file_size))
    fail("codes outside the file");
  for (int64_t i = 0; i < c.count; ++i) c.codes.insert(c.codes.end(), codes.code(i), codes.code(i) + codes.code_bytes());
  if (f.has_labels()) {
    const LabelsView l = f.labels();
    c.classes = f.num_classes();
    if (l.count != c.count || l.classes != c.classes || c.classes <= 0) fail("labels view disagrees with the counts");
    const uint64_t words = static_cast<uint64_t>(c.count) * static_cast<uint64_t>(l.words_per_item());
    if (c.count > 0 && (words > file_size / 8 || !inside(l.words, words * 8, base, file_size)))
      fail("labels outside the file");
    for (int64_t i = 0; i < c.count; ++i) {
      c.label_words.insert(c.label_words.end(), l.item(i), l.item(i) + l.words_per_item());
      int64_t set = 0;
      for (int64_t k = 0; k < c.classes; ++k) set += l.has(i, k);
      (void)set;
    }
  } else if (f.num_classes() != 0) {
    fail("classes without labels");
  }
  uint64_t total = 0;
  for (int64_t i = 0; i < c.count; ++i) {
    const std::string_view p = f.path(i);
    if (!inside(p.data(), p.size(), base, file_size)) fail("a path outside the file");
    total += p.size();
    if (total > file_size) fail("paths longer than the file");
    c.paths.emplace_back(p);
  }
  return c;
}

// Opens `path`; nullopt when it throws vts::IoError (which must name the file).
std::optional<Contents> open_and_read(const std::string& path, uint64_t size, const IndexOpenOptions& opt = {}) {
  try {
    const IndexFile f = open_index_file(path, opt);
    return read_all(f, size);
  } catch (const vts::IoError& e) {
    if (!std::strstr(e.what(), path.c_str())) fail("IoError does not name the file");
    return std::nullopt;
  }
}

bool refused(const std::string& path, const IndexOpenOptions& opt) {
  try {
    (void)open_index_file(path, opt);
    return false;
  } catch (const vts::IoError& e) {
    if (!std::strstr(e.what(), path.c_str())) fail("IoError does not name the file");
    return true;
  }
}

void write_contents(const std::string& path, const Contents& c) {
  IndexFileContents w;
  w.codes = CodesView{c.codes.data(), c.count, c.bits};
  if (c.classes > 0) w.labels = LabelsView{c.label_words.data(), c.count, c.classes};
  w.paths = c.paths;
  w.fingerprint = c.fingerprint;
  write_index_file(path, w);  // vts::Error here (contents an opened file had) is a crash
}

void write_seeds(const std::string& dir) {
  auto seed = [&](const std::string& name, int64_t n, int64_t bits, int64_t classes, bool paths,
                  const std::string& fingerprint) {
    Contents c;
    c.count = n;
    c.bits = bits;
    c.classes = classes;
    c.fingerprint = fingerprint;
    for (int64_t i = 0; i < n * bits / 8; ++i) c.codes.push_back(static_cast<uint8_t>(i * 37 + 11));
    if (classes > 0)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t w = 0; w < (classes + 63) / 64; ++w)  // one class per word, none past C
          c.label_words.push_back(uint64_t(1) << ((i + w) % std::min<int64_t>(classes - 64 * w, 64)));
    for (int64_t i = 0; i < n; ++i)
      c.paths.push_back(paths && i % 3 != 2 ? "img/c" + std::to_string(i % 4) + "/" + std::to_string(i) + ".jpg" : "");
    write_contents(dir + "/" + name, c);
  };
  seed("small.vtsindex", 3, 16, 5, true, R"({"vts_model":{"config":"tiny","bits":16}})");
  seed("empty.vtsindex", 0, 64, 0, false, "");
  seed("nolabels.vtsindex", 2, 8, 0, false, "fp");
  seed("wide.vtsindex", 4, 32, 70, true, "");
  seed("paths.vtsindex", 5, 8, 0, true, "x");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) { return vts_fuzz::write_seeds_if_asked(write_seeds); }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = vts_fuzz::input_file("index", data, size);
  (void)open_and_read(path, size);

  if (size < kIndexHeaderBytes) return 0;
  // The same bytes with both CRCs made right.
  std::vector<uint8_t> b(data, data + size);
  detail::put(b.data(), 104, vts::crc32(0, b.data() + kIndexHeaderBytes, size - kIndexHeaderBytes));
  detail::put(b.data(), 108, uint32_t(0));
  detail::put(b.data(), 108, vts::crc32(0, b.data(), kIndexHeaderBytes));
  vts_fuzz::write_file(path, b);
  const std::optional<Contents> c = open_and_read(path, size);
  IndexOpenOptions no_crc;
  no_crc.verify_checksum = false;
  if (open_and_read(path, size, no_crc) != c) fail("open with and without the payload CRC disagree");
  if (!c) return 0;

  IndexOpenOptions other_k;
  other_k.expect_bits = c->bits == kMaxCodeBits ? 8 : c->bits + 8;
  if (!refused(path, other_k)) fail("another K accepted");
  IndexOpenOptions other_fp;
  other_fp.expect_fingerprint = c->fingerprint + "?";
  if (!refused(path, other_fp)) fail("another fingerprint accepted");
  IndexOpenOptions same;
  same.expect_bits = c->bits;
  same.expect_fingerprint = c->fingerprint;
  if (open_and_read(path, size, same) != c) fail("the found K and fingerprint refused");

  const std::string again = path + ".rewritten";
  write_contents(again, *c);
  const std::optional<Contents> d = open_and_read(again, vts_fuzz::read_file(again).size());
  std::remove(again.c_str());
  if (d != c) fail("write_index_file of the opened contents reads back differently");
  return 0;
}
