#pragma once
// Our checkpoint: one safetensors file holding every tensor a run needs to continue — the model's
// parameters ("model.<name>"), the optimizer's state ("optim.<name>"), the loss's banks and
// centers ("loss.<name>") — and JSON metadata under the "vts" key of __metadata__ (config type,
// loss, bits, epoch, metrics, RNG state, format version). Written to a temporary file and renamed,
// so an interrupted save never destroys the previous checkpoint.
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vts/core/tensor.hpp"
#include "vts/io/safetensors.hpp"

namespace vts::io {

inline constexpr int kCheckpointVersion = 1;

template <class T, class D>
Array to_array(const Tensor<T, D>& t) {
  return make_array(t.to_vector(), t.shape().dims());
}

// Copies a loaded array into an existing tensor, checking dtype and shape first.
template <class T, class D>
void assign_from(Tensor<T, D>& dst, const Array& src, const std::string& key, const std::string& file) {
  VTS_CHECK_SHAPE(src.shape == dst.shape().dims(), "checkpoint '", file, "': tensor '", key, "' has shape ",
                  Shape(src.shape).str(), ", expected ", dst.shape().str());
  const std::vector<T> values = src.as<T>();
  NoGradGuard guard;
  Tensor<T, D> tmp = Tensor<T, D>::from_vector(values, dst.shape());
  dst.copy_(tmp);
}

class CheckpointWriter {
 public:
  template <class T, class D>
  void add(const std::string& name, const Tensor<T, D>& t) {
    VTS_CHECK(!arrays_.count(name), "checkpoint: tensor '", name, "' added twice");
    arrays_.emplace(name, to_array(t));
  }
  // Adds every tensor a layer visits, under prefix.
  template <class Layer>
  void add_layer(const std::string& prefix, Layer& layer) {
    layer.visit(prefix, [&](const std::string& name, auto& t) { add(name, t); });
  }
  nlohmann::json& metadata() { return meta_; }
  void write(const std::string& path) const {
    nlohmann::json meta = meta_;
    meta["format_version"] = kCheckpointVersion;
    write_safetensors(path, arrays_, {{"vts", meta.dump()}});
  }

 private:
  std::map<std::string, Array> arrays_;
  nlohmann::json meta_ = nlohmann::json::object();
};

}  // namespace vts::io
