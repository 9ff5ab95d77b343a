#pragma once
// CIFAR-10 binary version: data_batch_1.bin .. data_batch_5.bin and test_batch.bin, each a run of
// 3073-byte records: one label byte (0..9), then 1024 red, 1024 green and 1024 blue bytes of a
// 32x32 image in row-major order. The official files hold 10,000 records each; any positive
// whole number of records is accepted so small test files work the same way.
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "vts/data/dataset.hpp"

namespace vts::data {

inline constexpr int kCifarClasses = 10;
inline constexpr int kCifarRecordBytes = 1 + 3 * 32 * 32;

namespace detail {

// Appends the records of one batch file to `pool`. Throws vts::IoError naming the file (and the
// record, for a label out of range) and leaves the pool unchanged when the file is refused.
inline void append_cifar_file(const std::string& path, ImagePool& pool) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(vts::detail::concat("CIFAR-10: cannot open '", path, "' for reading"));
  in.seekg(0, std::ios::end);
  const int64_t bytes = static_cast<int64_t>(in.tellg());
  in.seekg(0, std::ios::beg);
  if (bytes <= 0 || bytes % kCifarRecordBytes != 0)
    throw IoError(vts::detail::concat("CIFAR-10: ", path, ": expected a positive multiple of ",
                                      kCifarRecordBytes, " bytes (1 label + 3072 pixel bytes per image), found ",
                                      bytes, " bytes"));
  const int64_t n = bytes / kCifarRecordBytes;
  std::vector<uint8_t> raw(static_cast<size_t>(bytes));
  if (!in.read(reinterpret_cast<char*>(raw.data()), bytes))
    throw IoError(vts::detail::concat("CIFAR-10: ", path, ": expected ", bytes, " bytes, read ", in.gcount()));
  // Every label is checked before the pool changes: a refused file leaves it as it was.
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t label = raw[static_cast<size_t>(r * kCifarRecordBytes)];
    if (label >= kCifarClasses)
      throw IoError(vts::detail::concat("CIFAR-10: ", path, ": record ", r, " (byte offset ",
                                        r * kCifarRecordBytes, "): expected a label in [0, 10), found ",
                                        int(label)));
  }
  const int64_t first = pool.size();
  pool.pixels.resize(static_cast<size_t>((first + n) * 3072));
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t* rec = raw.data() + r * kCifarRecordBytes;
    pool.labels.push_back(rec[0]);
    // Planes R, G, B → interleaved HWC, the layout the resize and crop code reads.
    uint8_t* dst = pool.pixels.data() + (first + r) * 3072;
    for (int p = 0; p < 1024; ++p)
      for (int c = 0; c < 3; ++c) dst[p * 3 + c] = rec[1 + c * 1024 + p];
  }
  pool.parts.push_back({path, first, n});
}

}  // namespace detail

// All 60,000 images in the order of torchvision's CIFAR10(train) followed by CIFAR10(test):
// data_batch_1..5 then test_batch. `dir` may also be the folder that contains the
// cifar-10-batches-bin/ folder of the official archive.
inline std::shared_ptr<ImagePool> load_cifar10(const std::string& dir) {
  namespace fs = std::filesystem;
  VTS_CHECK(!dir.empty(), "CIFAR-10: expected the folder holding data_batch_1.bin .. test_batch.bin, found an "
                          "empty path (--data-dir, ProtocolOptions::data_dir)");
  fs::path root(dir);
  if (!fs::exists(root / "data_batch_1.bin") && fs::exists(root / "cifar-10-batches-bin" / "data_batch_1.bin"))
    root /= "cifar-10-batches-bin";
  auto pool = std::make_shared<ImagePool>();
  pool->height = pool->width = 32;
  pool->channels = 3;
  pool->num_classes = kCifarClasses;
  for (const char* name : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                           "data_batch_5.bin", "test_batch.bin"})
    detail::append_cifar_file((root / name).string(), *pool);
  return pool;
}

// Spec §5.3: PIL-bilinear resize 32 → size (none when size is 32), ImageNet mean/std, and no
// augmentation in any split.
inline ImageTransform cifar10_transform(int size = 224) {
  ImageTransform t;
  if (size != 32) {
    t.resize = ImageTransform::Resize::exact;
    t.resize_height = t.resize_width = size;
  }
  t.mean = ImageTransform::imagenet_mean();
  t.stddev = ImageTransform::imagenet_std();
  return t;
}

}  // namespace vts::data
