#pragma once
// The dataset interface the loader and the trainer see, and the in-memory dataset behind
// Fashion-MNIST and CIFAR-10. Items are float CHW images plus multi-hot label rows; nothing here
// knows the Tensor type, so the trainer decides how batches become tensors.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "vts/core/error.hpp"
#include "vts/core/rng.hpp"
#include "vts/data/image.hpp"

namespace vts::data {

// Random access, and every const member is safe to call from several threads at once.
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual int num_classes() const = 0;
  virtual ImageSpec spec() const = 0;
  // Writes item i as float CHW (spec().numel() floats, after this split's transform) to `image`
  // and its multi-hot label row (num_classes() floats of 0 or 1) to `label`. Random augmentation
  // draws from `aug_rng` only, so the caller decides reproducibility.
  virtual void get(int64_t i, float* image, float* label, Generator& aug_rng) const = 0;
  // The label row alone, without decoding the image (evaluation needs every database label).
  virtual void get_label(int64_t i, float* label) const = 0;
  // Where item i comes from: an image path, or "file#record" for container formats.
  virtual std::string source(int64_t i) const { return std::to_string(i); }

 protected:
  void check_index(int64_t i) const {
    if (i < 0 || i >= size())
      throw Error(vts::detail::concat("Dataset: index ", i, " out of range; expected 0 <= i < ", size()));
  }
};

// Every label row of a dataset, size() x num_classes() floats (evaluation's database labels).
inline std::vector<float> all_labels(const Dataset& ds) {
  const int64_t c = ds.num_classes();
  std::vector<float> out(static_cast<size_t>(ds.size() * c));
  for (int64_t i = 0; i < ds.size(); ++i) ds.get_label(i, out.data() + i * c);
  return out;
}

// Independent generator keys for the loader's and the protocols' random streams: Philox itself
// hashes (seed, stream, a, b), so nearby seeds, epochs or items give unrelated streams.
enum class Stream : uint64_t { split = 1, shuffle = 2, augment = 3 };
inline uint64_t derive_seed(uint64_t seed, Stream stream, uint64_t a, uint64_t b = 0) {
  const auto block = Philox::generate(seed, (static_cast<uint64_t>(stream) << 56) ^ a, b);
  return (static_cast<uint64_t>(block[0]) << 32) | block[1];
}

// Decoded 8-bit images kept in memory (HWC each), with one class id per image.
struct ImagePool {
  int height = 0, width = 0, channels = 0, num_classes = 0;
  std::vector<uint8_t> pixels;  // size() * height * width * channels
  std::vector<int32_t> labels;  // class id in [0, num_classes)
  // Which file each range of indices was read from, for source().
  struct Part {
    std::string file;
    int64_t first = 0, count = 0;
  };
  std::vector<Part> parts;

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  int64_t image_bytes() const { return int64_t(height) * width * channels; }
  const uint8_t* image(int64_t i) const { return pixels.data() + i * image_bytes(); }
  std::string source(int64_t i) const {
    // Built by appending: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string temporaries.
    std::string s;
    int64_t record = i;
    for (const Part& p : parts)
      if (i >= p.first && i < p.first + p.count) {
        s = p.file;
        record = i - p.first;
        break;
      }
    s += '#';
    s += std::to_string(record);
    return s;
  }
};

// A subset of a pool (positions `indices`, in that order) seen through one transform. Several
// splits share one pool, so cifar10-1's database and train set hold the pixels once.
class PoolDataset final : public Dataset {
 public:
  PoolDataset(std::shared_ptr<const ImagePool> pool, std::vector<int64_t> indices, ImageTransform transform)
      : pool_(std::move(pool)), indices_(std::move(indices)), transform_(std::move(transform)) {
    VTS_CHECK(pool_ != nullptr, "PoolDataset: expected a pool, found null");
    check_pool(*pool_);
    transform_.validate(pool_->channels);
    for (int64_t k : indices_)
      VTS_CHECK(k >= 0 && k < pool_->size(), "PoolDataset: index ", k, " outside the pool of ",
                pool_->size(), " images");
    const auto [h, w] = transform_.output_size(pool_->height, pool_->width);
    spec_ = ImageSpec{pool_->channels, h, w};
  }

  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  int num_classes() const override { return pool_->num_classes; }
  ImageSpec spec() const override { return spec_; }
  void get(int64_t i, float* image, float* label, Generator& aug_rng) const override {
    check_index(i);
    const int64_t k = indices_[static_cast<size_t>(i)];
    transform_.apply(pool_->image(k), pool_->height, pool_->width, pool_->channels, image, aug_rng);
    write_label(k, label);
  }
  void get_label(int64_t i, float* label) const override {
    check_index(i);
    write_label(indices_[static_cast<size_t>(i)], label);
  }
  std::string source(int64_t i) const override {
    check_index(i);
    return pool_->source(indices_[static_cast<size_t>(i)]);
  }

  const std::vector<int64_t>& indices() const { return indices_; }
  const ImagePool& pool() const { return *pool_; }
  const ImageTransform& transform() const { return transform_; }

 private:
  // The loaders fill pools consistently, but ImagePool is a plain struct a caller may fill too: a
  // label outside [0, num_classes) or too few pixels would make get() write or read out of bounds.
  static void check_pool(const ImagePool& p) {
    VTS_CHECK(p.height > 0 && p.width > 0 && p.channels > 0 && p.num_classes > 0,
              "PoolDataset: expected a pool with positive height, width, channels and num_classes, found ",
              p.height, "x", p.width, "x", p.channels, " and ", p.num_classes, " classes");
    VTS_CHECK(static_cast<int64_t>(p.pixels.size()) == p.size() * p.image_bytes(), "PoolDataset: expected ",
              p.size(), " images x ", p.image_bytes(), " bytes = ", p.size() * p.image_bytes(),
              " pixel bytes in the pool, found ", p.pixels.size());
    for (int64_t i = 0; i < p.size(); ++i) {
      const int32_t c = p.labels[static_cast<size_t>(i)];
      VTS_CHECK(c >= 0 && c < p.num_classes, "PoolDataset: pool image ", i, " has label ", c, ", expected [0, ",
                p.num_classes, ")");
    }
  }

  void write_label(int64_t k, float* label) const {
    std::fill(label, label + pool_->num_classes, 0.0f);
    label[pool_->labels[static_cast<size_t>(k)]] = 1.0f;
  }

  std::shared_ptr<const ImagePool> pool_;
  std::vector<int64_t> indices_;
  ImageTransform transform_;
  ImageSpec spec_;
};

}  // namespace vts::data
