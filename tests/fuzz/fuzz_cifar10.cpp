// libFuzzer target for the CIFAR-10 binary batch reader (vts::data::detail::append_cifar_file,
// what load_cifar10 calls for each of its six files). The input is written to a temporary file.
//
// Oracle: appending either throws vts::IoError naming the file and leaves the pool as it was, or
// adds size / 3073 records: labels in [0, 10) equal to each record's first byte, the pixels the
// record's R, G and B planes interleaved, and one part naming the file. The pool already holds one
// image, so an append that overwrote or lost it shows. Any other exception, a sanitizer report or
// a mismatch is a crash.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "vts/data/cifar10.hpp"

using vts_fuzz::fail;
using vts::data::kCifarRecordBytes;

namespace {

vts::data::ImagePool one_image_pool() {
  vts::data::ImagePool pool;
  pool.height = pool.width = 32;
  pool.channels = 3;
  pool.num_classes = vts::data::kCifarClasses;
  pool.pixels.assign(3072, 7);
  pool.labels.push_back(3);
  pool.parts.push_back({"first", 0, 1});
  return pool;
}

bool same_pool(const vts::data::ImagePool& a, const vts::data::ImagePool& b) {
  if (a.parts.size() != b.parts.size()) return false;
  for (size_t i = 0; i < a.parts.size(); ++i)
    if (a.parts[i].file != b.parts[i].file || a.parts[i].first != b.parts[i].first || a.parts[i].count != b.parts[i].count)
      return false;
  return a.pixels == b.pixels && a.labels == b.labels;
}

void write_seeds(const std::string& dir) {
  for (const int records : {1, 3}) {
    std::vector<uint8_t> b;
    for (int r = 0; r < records; ++r) {
      b.push_back(static_cast<uint8_t>((r * 7 + 2) % 10));
      for (int i = 0; i < 3072; ++i) b.push_back(static_cast<uint8_t>((i * 31 + r * 101) >> 2));
    }
    vts_fuzz::write_file(dir + "/batch_" + std::to_string(records) + ".bin", b);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) { return vts_fuzz::write_seeds_if_asked(write_seeds); }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = vts_fuzz::input_file("cifar10", data, size);
  const vts::data::ImagePool before = one_image_pool();
  vts::data::ImagePool pool = before;
  try {
    vts::data::detail::append_cifar_file(path, pool);
  } catch (const vts::IoError& e) {
    if (!std::strstr(e.what(), path.c_str())) fail("IoError does not name the file");
    if (!same_pool(pool, before)) fail("a refused file changed the pool");
    return 0;
  }
  if (size == 0 || size % kCifarRecordBytes != 0) fail("accepted a size that is not a whole number of records");
  const int64_t n = static_cast<int64_t>(size / kCifarRecordBytes);
  if (pool.size() != 1 + n || pool.pixels.size() != static_cast<size_t>((1 + n) * 3072)) fail("wrong counts");
  if (pool.labels[0] != 3 || std::memcmp(pool.pixels.data(), before.pixels.data(), 3072) != 0) fail("first image changed");
  if (pool.parts.size() != 2 || pool.parts[1].file != path || pool.parts[1].first != 1 || pool.parts[1].count != n)
    fail("wrong part");
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t* rec = data + r * kCifarRecordBytes;
    if (pool.labels[static_cast<size_t>(1 + r)] != rec[0] || rec[0] >= 10) fail("wrong label");
    const uint8_t* img = pool.image(1 + r);
    for (int p = 0; p < 1024; ++p)
      for (int c = 0; c < 3; ++c)
        if (img[p * 3 + c] != rec[1 + c * 1024 + p]) fail("wrong pixel");
  }
  return 0;
}
