#pragma once
// Code extraction (hashing-spec §4.1): a hash network's raw outputs u for every item of a dataset,
// in evaluation mode. Codes are sign(u). Used by the trainer's evaluation and by `vts encode` /
// `vts search`, so an index built later sees images exactly as the evaluation did.
#include <algorithm>
#include <functional>
#include <memory>
#include <vector>

#include "vts/autograd/grad_mode.hpp"
#include "vts/data/loader.hpp"
#include "vts/nn/module.hpp"

namespace vts::hash {

struct EncodeOptions {
  int64_t batch_size = 256;
  int workers = 1;            // loader threads
  bool flip_average = false;  // average the outputs of each image and its mirror image
};

// A loader batch as an NCHW tensor.
template <class Tensor>
Tensor batch_images(const data::Batch& b) {
  using T = typename Tensor::value_type;
  std::vector<T> v(b.images.begin(), b.images.end());
  return Tensor::from_vector(v, Shape{b.size, b.spec.channels, b.spec.height, b.spec.width});
}

// Mirrors every image of a batch left to right, in place.
inline void mirror_batch_images(data::Batch& b) {
  const int64_t w = b.spec.width, rows = static_cast<int64_t>(b.images.size()) / w;
  for (int64_t r = 0; r < rows; ++r) std::reverse(b.images.begin() + r * w, b.images.begin() + (r + 1) * w);
}

// Outputs [n, bits] of `net` for every item of `ds`, in dataset order, row-major. Dropout is off
// (evaluation mode), so the result does not depend on any generator.
template <class Network>
std::vector<typename Network::tensor_type::value_type> encode(
    const Network& net, std::shared_ptr<const data::Dataset> ds, const EncodeOptions& opt = {},
    const std::function<void(int64_t done, int64_t total)>& progress = {}) {
  using tensor_type = typename Network::tensor_type;
  using T = typename tensor_type::value_type;
  data::Loader loader(std::move(ds), {.batch_size = opt.batch_size, .shuffle = false, .num_workers = opt.workers});
  loader.start_epoch(0);
  NoGradGuard no_grad;
  Generator unused_dropout_rng(0);
  nn::Context ctx{false, &unused_dropout_rng};
  std::vector<T> out;
  data::Batch batch;
  int64_t done = 0;
  const int64_t total = loader.dataset().size();
  while (loader.next(batch)) {
    std::vector<T> u = net.forward(batch_images<tensor_type>(batch), ctx).to_vector();
    if (opt.flip_average) {
      mirror_batch_images(batch);
      const std::vector<T> v = net.forward(batch_images<tensor_type>(batch), ctx).to_vector();
      using A = acc_t<T>;  // bf16 is averaged in fp32
      for (size_t i = 0; i < u.size(); ++i)
        u[i] = static_cast<T>((static_cast<A>(u[i]) + static_cast<A>(v[i])) * A(0.5));
    }
    out.insert(out.end(), u.begin(), u.end());
    done += batch.size;
    if (progress) progress(done, total);
  }
  return out;
}

}  // namespace vts::hash
