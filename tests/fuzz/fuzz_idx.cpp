// libFuzzer target for the IDX reader (vts::data::read_idx), plain and gzip-compressed. The input
// is written to a temporary file because the reader takes a path.
//
// Oracle: read_idx either throws vts::IoError naming the file, or returns dims whose product is
// the number of bytes returned (and whose first is count()). Unless the input is itself a gzip
// stream, the same bytes gzip-compressed by the harness must read the same way (both refused, or
// the same array): zlib's gzread passes a plain file through, so the two paths must not differ.
// Any other exception, a sanitizer report, an allocation past -malloc_limit_mb or a mismatch is
// a crash.
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "vts/data/idx.hpp"

using vts_fuzz::fail;

namespace {

std::optional<vts::data::IdxArray> read(const std::string& path) {
  try {
    vts::data::IdxArray a = vts::data::read_idx(path);
    if (a.dims.empty() || a.dims.size() > 255) fail("rank outside 1..255");
    uint64_t n = 1;
    for (const int64_t d : a.dims) {
      if (d < 0 || d > int64_t(UINT32_MAX)) fail("a dimension outside the u32 range");
      n *= static_cast<uint64_t>(d);
    }
    if (n != a.data.size()) fail("product of dims != bytes returned");
    if (a.count() != a.dims[0]) fail("count() != dims[0]");
    return a;
  } catch (const vts::IoError& e) {
    if (!std::strstr(e.what(), path.c_str())) fail("IoError does not name the file");
    return std::nullopt;
  }
}

void write_gz(const std::string& path, const void* data, size_t size) {
  gzFile f = gzopen(path.c_str(), "wb1");
  if (!f) std::abort();
  if (size && gzwrite(f, data, static_cast<unsigned>(size)) != static_cast<int>(size)) std::abort();
  if (gzclose(f) != Z_OK) std::abort();
}

std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, size_t data_bytes, uint8_t type = 0x08) {
  std::vector<uint8_t> b = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (const uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(d >> s));
  for (size_t i = 0; i < data_bytes; ++i) b.push_back(static_cast<uint8_t>(i * 37 + 11));
  return b;
}

void write_seeds(const std::string& dir) {
  const auto images = idx_bytes({3, 4, 5}, 60), labels = idx_bytes({7}, 7), empty = idx_bytes({0, 28, 28}, 0),
             short_data = idx_bytes({4, 3}, 10), rank4 = idx_bytes({2, 1, 2, 3}, 12);
  vts_fuzz::write_file(dir + "/images.idx", images);
  vts_fuzz::write_file(dir + "/labels.idx", labels);
  vts_fuzz::write_file(dir + "/empty.idx", empty);
  vts_fuzz::write_file(dir + "/short.idx", short_data);
  vts_fuzz::write_file(dir + "/rank4.idx", rank4);
  write_gz(dir + "/images.idx.gz", images.data(), images.size());
  write_gz(dir + "/labels.idx.gz", labels.data(), labels.size());
  write_gz(dir + "/empty.idx.gz", empty.data(), empty.size());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) { return vts_fuzz::write_seeds_if_asked(write_seeds); }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = vts_fuzz::input_file("idx", data, size);
  const std::optional<vts::data::IdxArray> plain = read(path);
  if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) return 0;  // already gzip: one layer is read
  const std::string gz = path + ".gz";
  write_gz(gz, data, size);
  const std::optional<vts::data::IdxArray> packed = read(gz);
  std::remove(gz.c_str());
  if (plain.has_value() != packed.has_value()) fail("plain and gzip-compressed copies read differently");
  if (plain && (plain->dims != packed->dims || plain->data != packed->data)) fail("plain and gzip copies differ");
  return 0;
}
