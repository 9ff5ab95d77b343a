// Loading `vts train` checkpoints into the network type their metadata names.
#include "model.hpp"

#include <zlib.h>

#include <filesystem>

#include "vts/data/protocol.hpp"
#include "vts/hash/heads.hpp"
#include "vts/io/checkpoint.hpp"
#include "vts/nn/vit.hpp"

namespace vts::cli {

nlohmann::json ModelIdentity::to_json() const {
  return {{"config", config}, {"head", head},       {"loss", loss},
          {"dataset", dataset}, {"bits", bits},     {"image", image},
          {"channels", channels}, {"flip_average", flip_average}, {"weights_crc32", weights_crc32}};
}

data::ImageTransform HashModel::transform() const {
  data::ImageTransform t = data::eval_transform(id_.dataset, static_cast<int>(id_.image));
  if (!t.fixed_output()) {  // the protocol's images are already the model's size; others need not be
    t.resize = data::ImageTransform::Resize::exact;
    t.resize_height = t.resize_width = static_cast<int>(id_.image);
  }
  return t;
}

std::string HashModel::fingerprint() const {
  return nlohmann::json{{"vts_model", id_.to_json()}, {"checkpoint", checkpoint_}}.dump();
}

namespace {

template <class Config, class Head>
class HashModelOf final : public HashModel {
  using Network = hash::HashNetwork<nn::ViT<Config>, Head>;

 public:
  HashModelOf(io::CheckpointReader& ckpt, int64_t bits) : net_(bits, init_gen_) {
    ckpt.layer("model", net_);
    for (const auto& [key, t] : ckpt.file().tensors())  // optimizer, loss and generator state of a last.safetensors
      if (key.rfind("model.", 0) != 0) ckpt.ignore(key);
    ckpt.commit();
    uint32_t crc = static_cast<uint32_t>(crc32_z(0, nullptr, 0));
    for (auto& p : nn::parameters(net_))
      crc = static_cast<uint32_t>(crc32_z(crc, reinterpret_cast<const Bytef*>(p.data()),
                                          static_cast<z_size_t>(p.numel()) * sizeof(*p.data())));
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
    id_.loss = m.value("loss", "");
    id_.dataset = m.value("dataset", "");
    id_.flip_average = m.value("flip_average", false);
    seed_ = m.value("seed", uint64_t{1});
    checkpoint_ = std::move(checkpoint);
  }

 private:
  Generator init_gen_{0};  // initial values only; every weight is then loaded
  Network net_;
};

template <class Config>
std::unique_ptr<HashModel> with_head(const std::string& head, io::CheckpointReader& ckpt, int64_t bits,
                                     const std::string& path) {
  std::unique_ptr<HashModel> m;
  if (head == "all") {
    auto p = std::make_unique<HashModelOf<Config, hash::AllTokenHead<>>>(ckpt, bits);
    p->set_metadata(ckpt.metadata(), path);
    m = std::move(p);
  } else if (head == "cls") {
    auto p = std::make_unique<HashModelOf<Config, hash::ClsTokenHead<>>>(ckpt, bits);
    p->set_metadata(ckpt.metadata(), path);
    m = std::move(p);
  } else {
    throw IoError("checkpoint '" + path + "': metadata head '" + head + "' is not one of all, cls");
  }
  return m;
}

}  // namespace

std::unique_ptr<HashModel> load_hash_model(const std::string& path_in) {
  namespace fs = std::filesystem;
  std::string path = path_in;
  if (fs::is_directory(path)) {
    path = (fs::path(path) / "best.safetensors").string();
    if (!fs::exists(path))
      throw IoError("model folder '" + path_in + "': expected a vts train output folder holding best.safetensors, "
                    "found none");
  }
  path = fs::absolute(path).lexically_normal().string();
  io::CheckpointReader ckpt(path);
  const nlohmann::json& m = ckpt.metadata();
  auto field = [&](const char* key) -> std::string {
    const auto it = m.find(key);
    if (it == m.end() || !it->is_string())
      throw IoError(std::string("checkpoint '") + path + "': metadata has no string '" + key +
                    "'; expected a checkpoint written by vts train");
    return it->get<std::string>();
  };
  const std::string config = field("config"), head = field("head");
  field("dataset");
  const auto bits_it = m.find("bits");
  if (bits_it == m.end() || !bits_it->is_number_integer() || bits_it->get<int64_t>() < 8)
    throw IoError("checkpoint '" + path + "': metadata has no integer 'bits' >= 8");
  const int64_t bits = bits_it->get<int64_t>();
  if (config == "tiny") return with_head<nn::ViTTiny28>(head, ckpt, bits, path);
  if (config == "small") return with_head<nn::ViTSmall32>(head, ckpt, bits, path);
  if (config == "b16") return with_head<nn::ViTB16>(head, ckpt, bits, path);
  if (config == "b32") return with_head<nn::ViTB32>(head, ckpt, bits, path);
  throw IoError("checkpoint '" + path + "': metadata config '" + config + "' is not one of tiny, small, b16, b32");
}

IndexFingerprint parse_index_fingerprint(std::string_view fingerprint, const std::string& index_path) {
  auto fail = [&](const std::string& why) {
    return IoError("index '" + index_path + "': " + why + "; expected an index written by vts encode");
  };
  nlohmann::json j = nlohmann::json::parse(fingerprint, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("vts_model") || !j["vts_model"].is_object())
    throw fail("its fingerprint does not describe a vts model");
  IndexFingerprint out;
  try {
    const nlohmann::json& v = j["vts_model"];
    ModelIdentity& id = out.identity;
    id.config = v.at("config").get<std::string>();
    id.head = v.at("head").get<std::string>();
    id.loss = v.at("loss").get<std::string>();
    id.dataset = v.at("dataset").get<std::string>();
    id.bits = v.at("bits").get<int64_t>();
    id.image = v.at("image").get<int64_t>();
    id.channels = v.at("channels").get<int64_t>();
    id.flip_average = v.at("flip_average").get<bool>();
    id.weights_crc32 = v.at("weights_crc32").get<uint32_t>();
    out.checkpoint = j.value("checkpoint", "");
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("its model fingerprint is incomplete (") + e.what() + ")");
  }
  return out;
}

}  // namespace vts::cli
