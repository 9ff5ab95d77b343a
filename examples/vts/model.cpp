// Loading `vts train` checkpoints into the network type their metadata names.
#include "model.hpp"

#include <climits>
#include <cstdint>
#include <filesystem>
#include <optional>

#include "commands.hpp"
#include "model_impl.hpp"
#include "vts/data/protocol.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/runtime.hpp"
#endif

namespace vts::cli {

nlohmann::json ModelIdentity::to_json() const {
  return {{"config", config}, {"head", head},       {"loss", loss},
          {"dataset", dataset}, {"bits", bits},     {"image", image},
          {"channels", channels}, {"flip_average", flip_average}, {"weights_crc32", weights_crc32}};
}

data::ImageTransform HashModel::transform() const {
  data::ImageTransform t = data::eval_transform(id_.dataset, static_cast<int>(id_.image), 0, static_cast<int>(id_.channels));
  if (!t.fixed_output()) {  // the protocol's images are already the model's size; others need not be
    t.resize = data::ImageTransform::Resize::exact;
    t.resize_height = t.resize_width = static_cast<int>(id_.image);
  }
  return t;
}

std::string HashModel::fingerprint(const IndexContents& c) const {
  nlohmann::json j{{"vts_model", id_.to_json()}, {"checkpoint", checkpoint_}};
  if (!c.class_names.empty()) j["classes"] = c.class_names;
  if (c.encode_started_ns >= 0) j["encode_started_ns"] = c.encode_started_ns;
  if (!c.dataset.empty()) j["split"] = {{"dataset", c.dataset}, {"split", c.split}};
  return j.dump();
}

#if defined(VTS_WITH_CUDA)
// The CUDA models are compiled in train_cuda_<config>.cpp, next to the same network's training
// code; only the configs this vts was built for (VTS_TRAIN_CONFIGS) exist.
#define VTS_EXTERN_CUDA_MODEL(Config)                                     \
  extern template std::unique_ptr<HashModel> load_model_of<Config, Cuda>( \
      io::CheckpointReader&, const std::string&, int64_t, const std::string&);
#if defined(VTS_TRAIN_CONFIG_TINY)
VTS_EXTERN_CUDA_MODEL(nn::ViTTiny28)
#endif
#if defined(VTS_TRAIN_CONFIG_SMALL)
VTS_EXTERN_CUDA_MODEL(nn::ViTSmall32)
#endif
#if defined(VTS_TRAIN_CONFIG_B16)
VTS_EXTERN_CUDA_MODEL(nn::ViTB16)
#endif
#if defined(VTS_TRAIN_CONFIG_B32)
VTS_EXTERN_CUDA_MODEL(nn::ViTB32)
#endif
#undef VTS_EXTERN_CUDA_MODEL
#endif

namespace {

// What vts train --bits accepts.
constexpr int64_t kMinBits = 8, kMaxBits = 4096;

std::unique_ptr<HashModel> load_cuda_model([[maybe_unused]] io::CheckpointReader& ckpt, const std::string& config,
                                           [[maybe_unused]] const std::string& head, [[maybe_unused]] int64_t bits,
                                           [[maybe_unused]] const std::string& path) {
#if defined(VTS_WITH_CUDA)
  if (!cuda::available())
    throw Error("--device cuda: " + cuda::unavailable_reason() + "; use --device cpu");
#if defined(VTS_TRAIN_CONFIG_TINY)
  if (config == "tiny") return load_model_of<nn::ViTTiny28, Cuda>(ckpt, head, bits, path);
#endif
#if defined(VTS_TRAIN_CONFIG_SMALL)
  if (config == "small") return load_model_of<nn::ViTSmall32, Cuda>(ckpt, head, bits, path);
#endif
#if defined(VTS_TRAIN_CONFIG_B16)
  if (config == "b16") return load_model_of<nn::ViTB16, Cuda>(ckpt, head, bits, path);
#endif
#if defined(VTS_TRAIN_CONFIG_B32)
  if (config == "b32") return load_model_of<nn::ViTB32, Cuda>(ckpt, head, bits, path);
#endif
  throw Error("--device cuda: checkpoint '" + path + "' is a '" + config + "' model, and this vts was built for " +
              "VTS_TRAIN_CONFIGS=" VTS_TRAIN_CONFIGS_BUILT " only; reconfigure with " +
              "-DVTS_TRAIN_CONFIGS=\"tiny;small;b16;b32\" or use --device cpu");
#else
  throw Error("--device cuda: this vts was built without the CUDA backend (checkpoint config '" + config +
              "'); configure with -DVTS_CUDA=ON, or use --device cpu");
#endif
}

}  // namespace

std::unique_ptr<HashModel> load_hash_model(const std::string& path_in, const std::string& device) {
  namespace fs = std::filesystem;
  std::string path = path_in;
  if (fs::is_directory(path)) {
    path = (fs::path(path) / "best.safetensors").string();
    if (!fs::exists(path))
      throw IoError("model folder '" + path_in + "': expected a vts train output folder holding best.safetensors, "
                    "found none");
  }
  path = absolute_path(path);
  io::CheckpointReader ckpt(path);
  const nlohmann::json& m = ckpt.metadata();
  auto field = [&](const char* key) -> std::string {
    if (!m.contains(key))
      throw IoError(std::string("checkpoint '") + path + "': metadata has no string '" + key +
                    "'; expected a checkpoint written by vts train");
    return io::metadata_value<std::string>(m, key, path);
  };
  const std::string config = field("config"), head = field("head");
  field("dataset");
  if (saved_in_pretraining(m))
    throw IoError("checkpoint '" + path + "': saved inside the classifier pretraining (after " +
                  m.value("pretrain_epoch", nlohmann::json("?")).dump() +
                  " of its epochs), before the hash stage: it holds no hash model yet; go on with vts train --resume");
  // The network is sized from `bits` before any tensor is checked against it, so a corrupt value
  // would be a giant allocation: it must be a code length vts train makes, and the one the hash
  // head's last layer in the file has.
  const int64_t bits = io::metadata_value<int64_t>(m, "bits", path);
  const std::string head_weight = head == "cls" ? "model.hash_head.fc.weight" : "model.hash_head.fc2.weight";
  // A missing head weight is reported later, with every other problem of the load.
  const bool has_head_weight = ckpt.contains(head_weight);
  const std::string head_shape = has_head_weight ? io::detail::shape_str(ckpt.file().at(head_weight).shape) : "";
  if (bits < kMinBits || bits > kMaxBits || bits % 8 != 0)
    throw IoError("checkpoint '" + path + "': metadata bits = " + std::to_string(bits) +
                  "; expected a code length from 8 to 4096, a multiple of 8 (what vts train --bits takes)" +
                  (has_head_weight ? "; tensor '" + head_weight + "' has shape " + head_shape : std::string()));
  if (has_head_weight) {
    const std::vector<int64_t>& shape = ckpt.file().at(head_weight).shape;
    if (shape.size() != 2 || shape[0] != bits)
      throw IoError("checkpoint '" + path + "': metadata bits = " + std::to_string(bits) + ", but tensor '" +
                    head_weight + "' has shape " + head_shape + "; expected one row per code bit (" +
                    std::to_string(bits) + " rows)");
  }
  const bool known = config == "tiny" || config == "small" || config == "b16" || config == "b32";
  if (known && device == "cuda") return load_cuda_model(ckpt, config, head, bits, path);
  VTS_CHECK(device == "cpu", "load_hash_model: device '", device, "' is not one of cpu, cuda");
  if (config == "tiny") return load_model_of<nn::ViTTiny28, Cpu>(ckpt, head, bits, path);
  if (config == "small") return load_model_of<nn::ViTSmall32, Cpu>(ckpt, head, bits, path);
  if (config == "b16") return load_model_of<nn::ViTB16, Cpu>(ckpt, head, bits, path);
  if (config == "b32") return load_model_of<nn::ViTB32, Cpu>(ckpt, head, bits, path);
  throw IoError("checkpoint '" + path + "': metadata config '" + config + "' is not one of tiny, small, b16, b32");
}

IndexFingerprint parse_index_fingerprint(std::string_view fingerprint, const std::string& index_path) {
  auto fail = [&](const std::string& why, const std::string& expected = "an index written by vts encode") {
    return IoError("index '" + index_path + "': " + why + "; expected " + expected);
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
    // Whole numbers in range (io::detail::json_integer): a hand-edited weights_crc32 of -1 or
    // 4294967297 would otherwise be read as another model's CRC, and 64.5 bits as 64.
    auto whole = [&](const char* key, int64_t lo, int64_t hi) {
      const nlohmann::json& x = v.at(key);
      const std::optional<int64_t> n = io::detail::json_integer<int64_t>(x);
      if (!n || *n < lo || *n > hi)
        throw fail(detail::concat("its fingerprint's vts_model.", key, " is ", x.dump()),
                   detail::concat("a whole number from ", lo, " to ", hi, ", as vts encode writes it"));
      return *n;
    };
    id.bits = whole("bits", kMinBits, kMaxBits);
    id.image = whole("image", 1, INT32_MAX);
    id.channels = whole("channels", 1, 4);
    id.flip_average = v.at("flip_average").get<bool>();
    id.weights_crc32 = static_cast<uint32_t>(whole("weights_crc32", 0, UINT32_MAX));
    out.checkpoint = j.value("checkpoint", "");
    if (j.contains("classes")) out.contents.class_names = j["classes"].get<std::vector<std::string>>();
    out.contents.encode_started_ns = j.value("encode_started_ns", int64_t{-1});
    if (j.contains("split")) {
      out.contents.dataset = j["split"].at("dataset").get<std::string>();
      out.contents.split = j["split"].at("split").get<std::string>();
    }
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("its model fingerprint is incomplete (") + e.what() + ")");
  }
  return out;
}

std::string identity_difference(const ModelIdentity& first, const ModelIdentity& second,
                                const std::string& first_name, const std::string& second_name) {
  const nlohmann::json w = first.to_json(), g = second.to_json();
  std::string diff;
  for (const auto& [key, value] : w.items())
    if (g[key] != value)
      diff += " " + key + ": " + first_name + " " + value.dump() + ", " + second_name + " " + g[key].dump() + ";";
  return diff;
}

}  // namespace vts::cli
