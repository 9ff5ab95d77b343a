#pragma once
// The concrete network behind HashModel (model.hpp), for a model config and a device: included by
// model.cpp, which instantiates it for the CPU, and by train_cuda_<config>.cpp, which instantiates
// the CUDA form in the unit that already compiles that config's CUDA network.
#include "model.hpp"
#include "vts/core/crc32.hpp"
#include "vts/hash/heads.hpp"
#include "vts/io/checkpoint.hpp"
#include "vts/nn/vit.hpp"

namespace vts::cli {

template <class Config, class Head, class D>
class HashModelOf final : public HashModel {
  using Network = hash::HashNetwork<nn::ViT<Config, float, D>, Head>;

 public:
  HashModelOf(io::CheckpointReader& ckpt, int64_t bits) : net_(uninitialised_network(bits, init_gen_)) {
    ckpt.layer("model", net_);
    for (const auto& [key, t] : ckpt.file().tensors())  // optimizer, loss and generator state of a last.safetensors
      if (key.rfind("model.", 0) != 0) ckpt.ignore(key);
    ckpt.commit();
    // Over the weights' host values, so a model loaded on either device has the same identity
    // (a device's are copied to the host first; the CPU's are read in place).
    uint32_t crc = 0;
    for (auto& p : nn::parameters(net_)) {
      std::vector<float> copy;
      const float* values = p.data();
      if constexpr (!is_cpu_v<D>) values = (copy = p.to_vector()).data();
      crc = vts::crc32_parallel(crc, values, static_cast<size_t>(p.numel()) * sizeof(float));
    }
    id_.weights_crc32 = crc;
    id_.config = Config::name;
    id_.head = Head::name;
    id_.image = Config::image;
    id_.channels = Config::channels;
    id_.bits = bits;
  }

  std::vector<float> encode(std::shared_ptr<const data::Dataset> ds, const hash::EncodeOptions& opt,
                            const std::function<void(int64_t, int64_t)>& progress) const override {
    const data::ImageSpec spec = ds->spec();
    VTS_CHECK(spec == (data::ImageSpec{int(Config::channels), int(Config::image), int(Config::image)}),
              "model '", Config::name, "' expects ", Config::channels, "x", Config::image, "x", Config::image,
              " images, found ", spec.channels, "x", spec.height, "x", spec.width);
    return hash::encode(net_, std::move(ds), opt, progress);
  }

  void set_metadata(const nlohmann::json& m, std::string checkpoint) {
    const std::string& file = checkpoint;
    id_.loss = io::metadata_value<std::string>(m, "loss", file, "");
    id_.dataset = io::metadata_value<std::string>(m, "dataset", file, "");
    id_.flip_average = io::metadata_value<bool>(m, "flip_average", file, false);
    seed_ = io::metadata_value<uint64_t>(m, "seed", file, 1);
    // The split counts size the protocol `vts encode` rebuilds; vts train writes 0 or more.
    query_per_class_ = io::metadata_count(m, "query_per_class", file, 0);
    train_per_class_ = io::metadata_count(m, "train_per_class", file, 0);
    checkpoint_ = std::move(checkpoint);
  }

 private:
  // Every weight is then loaded (a checkpoint missing one is refused), so none is drawn first.
  static Network uninitialised_network(int64_t bits, Generator& gen) {
    nn::init::SkipRandomInit skip;
    return Network(bits, gen);
  }

  Generator init_gen_{0};  // the network's constructor takes one; it draws nothing here
  Network net_;
};

// The model of a checkpoint whose metadata names Config, with its head, on device D.
template <class Config, class D>
std::unique_ptr<HashModel> load_model_of(io::CheckpointReader& ckpt, const std::string& head, int64_t bits,
                                         const std::string& path) {
  auto make = [&](auto* tag) -> std::unique_ptr<HashModel> {
    using Model = std::remove_pointer_t<decltype(tag)>;
    auto p = std::make_unique<Model>(ckpt, bits);
    p->set_metadata(ckpt.metadata(), path);
    return p;
  };
  if (head == "all") return make(static_cast<HashModelOf<Config, hash::AllTokenHead<1024, float, D>, D>*>(nullptr));
  if (head == "cls") return make(static_cast<HashModelOf<Config, hash::ClsTokenHead<float, D>, D>*>(nullptr));
  throw IoError("checkpoint '" + path + "': metadata head '" + head + "' is not one of all, cls");
}

}  // namespace vts::cli
