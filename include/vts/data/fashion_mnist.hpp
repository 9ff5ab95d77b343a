#pragma once
// Fashion-MNIST: 60,000 train + 10,000 test grey 28x28 images in 10 classes, as four IDX files
// (gzip-compressed in Debian's dataset-fashion-mnist package; plain files are read too).
#include <filesystem>
#include <memory>
#include <string>

#include "vts/data/dataset.hpp"
#include "vts/data/idx.hpp"

namespace vts::data {

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
inline constexpr int kFashionMnistClasses = 10;
// Mean and standard deviation of all 70,000 images' pixels scaled to [0, 1].
inline constexpr float kFashionMnistMean = 0.2860f;
inline constexpr float kFashionMnistStd = 0.3530f;

namespace detail {

// "<dir>/<base>.gz" if present, else "<dir>/<base>"; an error names both when neither exists.
inline std::string find_idx_file(const std::string& dir, const std::string& base) {
  namespace fs = std::filesystem;
  const fs::path gz = fs::path(dir) / (base + ".gz"), plain = fs::path(dir) / base;
  if (fs::exists(gz)) return gz.string();
  if (fs::exists(plain)) return plain.string();
  throw IoError(vts::detail::concat("Fashion-MNIST: expected '", gz.string(), "' or '", plain.string(),
                                    "', found neither"));
}

// Appends one images/labels IDX pair to the pool, checking that they agree.
inline void append_idx_pair(const std::string& images_path, const std::string& labels_path, ImagePool& pool) {
  const IdxArray images = read_idx(images_path);
  const IdxArray labels = read_idx(labels_path);
  if (images.dims.size() != 3 || images.dims[1] != pool.height || images.dims[2] != pool.width)
    throw IoError(vts::detail::concat(images_path, ": expected images of shape N x ", pool.height, " x ",
                                      pool.width, ", found rank ", images.dims.size(), " with item size ",
                                      images.dims.size() == 3 ? images.dims[1] : 0, " x ",
                                      images.dims.size() == 3 ? images.dims[2] : 0));
  if (labels.dims.size() != 1 || labels.dims[0] != images.dims[0])
    throw IoError(vts::detail::concat(labels_path, ": expected ", images.dims[0],
                                      " labels (one per image in ", images_path, "), found ",
                                      labels.dims.size() == 1 ? labels.dims[0] : -1,
                                      labels.dims.size() == 1 ? "" : " (not a rank-1 file)"));
  const int64_t first = pool.size();
  for (int64_t i = 0; i < labels.dims[0]; ++i) {
    const int v = labels.data[static_cast<size_t>(i)];
    if (v >= pool.num_classes)
      throw IoError(vts::detail::concat(labels_path, ": item ", i, ": expected a label in [0, ",
                                        pool.num_classes, "), found ", v));
    pool.labels.push_back(v);
  }
  pool.pixels.insert(pool.pixels.end(), images.data.begin(), images.data.end());
  pool.parts.push_back({images_path, first, images.dims[0]});
}

}  // namespace detail

// All 70,000 images pooled: the 60,000 train images first (indices 0..59999), then the 10,000
// test images. The protocol re-splits this pool, so the official split plays no role.
inline std::shared_ptr<ImagePool> load_fashion_mnist(const std::string& dir = kFashionMnistDir) {
  auto pool = std::make_shared<ImagePool>();
  pool->height = pool->width = 28;
  pool->channels = 1;
  pool->num_classes = kFashionMnistClasses;
  detail::append_idx_pair(detail::find_idx_file(dir, "train-images-idx3-ubyte"),
                          detail::find_idx_file(dir, "train-labels-idx1-ubyte"), *pool);
  detail::append_idx_pair(detail::find_idx_file(dir, "t10k-images-idx3-ubyte"),
                          detail::find_idx_file(dir, "t10k-labels-idx1-ubyte"), *pool);
  return pool;
}

// Training augmentation: random translation by up to `pad` pixels (zero border, i.e. black,
// then a random crop back to size) and a horizontal flip with probability 1/2.
struct FashionAugment {
  bool enabled = false;
  int pad = 2;
  bool hflip = true;
  float erase = 0.0f;  // random-erasing probability (see ImageTransform::erase_prob)
};

// Normalise (v/255 - 0.2860) / 0.3530; optionally resize to size x size (PIL bilinear) first.
inline ImageTransform fashion_mnist_transform(const FashionAugment& aug = {}, int size = 28) {
  ImageTransform t;
  if (size != 28) {
    t.resize = ImageTransform::Resize::exact;
    t.resize_height = t.resize_width = size;
  }
  if (aug.enabled) {
    t.crop = ImageTransform::Crop::random;
    t.crop_height = t.crop_width = size;
    t.pad = aug.pad;
    t.random_hflip = aug.hflip;
    t.erase_prob = aug.erase;
  }
  t.mean = {kFashionMnistMean};
  t.stddev = {kFashionMnistStd};
  return t;
}

}  // namespace vts::data
