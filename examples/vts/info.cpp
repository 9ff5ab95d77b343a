// `vts info`: what an index file or a checkpoint holds — the model that made it, the codes, the
// classes, where the images came from — without loading a model or searching anything.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "model.hpp"
#include "vts/index/index_file.hpp"
#include "vts/io/checkpoint.hpp"

namespace vts::cli {
namespace {

namespace fs = std::filesystem;

struct InfoArgs {
  std::vector<std::string> paths;
  bool json = false;  // the fingerprint or metadata as stored, instead of the summary
};

bool is_index_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[sizeof index::kIndexMagic] = {};
  return in.read(magic, sizeof magic) && std::memcmp(magic, index::kIndexMagic, sizeof magic) == 0;
}

std::string utc_time(int64_t ns) {
  const std::time_t t = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

std::string describe(const ModelIdentity& id) {
  char crc[16];
  std::snprintf(crc, sizeof crc, "%08x", id.weights_crc32);
  return id.config + ", " + id.head + " head, " + id.loss + ", " + std::to_string(id.bits) + " bits, trained on " +
         id.dataset + " (" + std::to_string(id.image) + " px, " + std::to_string(id.channels) + " channel" +
         (id.channels == 1 ? "" : "s") + (id.flip_average ? ", flip-averaged codes" : "") + "), weights CRC-32 " + crc;
}

void index_info(const std::string& path, bool json) {
  const index::IndexFile idx = index::open_index_file(path);  // checks the layout and the CRC
  if (json) {
    // A fingerprint that is not JSON (an index written through the library with its own) is
    // shown as the string it is.
    const nlohmann::json fp = nlohmann::json::parse(idx.fingerprint(), nullptr, false);
    const nlohmann::json shown = fp.is_discarded() ? nlohmann::json(std::string(idx.fingerprint())) : fp;
    std::printf("%s\n", shown.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  const IndexFingerprint fp = parse_index_fingerprint(idx.fingerprint(), path);
  const IndexContents& c = fp.contents;
  std::printf("index %s: %lld codes of %lld bits, %.1f MB, checksums valid\n", path.c_str(),
              static_cast<long long>(idx.size()), static_cast<long long>(idx.bits()),
              static_cast<double>(fs::file_size(path)) / 1e6);
  std::printf("  model: %s\n", describe(fp.identity).c_str());
  if (!fp.checkpoint.empty())
    std::printf("  checkpoint: %s%s\n", fp.checkpoint.c_str(), fs::exists(fp.checkpoint) ? "" : " (no longer there)");
  if (!c.dataset.empty())
    std::printf("  holds: the %s split of %s\n", c.split.c_str(), c.dataset.c_str());
  else if (c.encode_started_ns >= 0)
    std::printf("  holds: image files, encoded %s (vts encode --update keeps the codes of files unchanged since)\n",
                utc_time(c.encode_started_ns).c_str());
  if (!idx.has_labels())
    std::printf("  labels: none\n");
  else if (c.class_names.empty())
    std::printf("  labels: %lld classes (numbered)\n", static_cast<long long>(idx.num_classes()));
  else
    std::printf("  labels: %lld classes: %s\n", static_cast<long long>(idx.num_classes()),
                joined(c.class_names).c_str());
  if (idx.size() > 0)
    std::printf("  sources: %.*s ... %.*s\n", static_cast<int>(idx.path(0).size()), idx.path(0).data(),
                static_cast<int>(idx.path(idx.size() - 1).size()), idx.path(idx.size() - 1).data());
}

void checkpoint_info(const std::string& path, bool json) {
  const io::CheckpointReader ckpt(path);
  const nlohmann::json& m = ckpt.metadata();
  if (json) {
    std::printf("%s\n", m.dump(2).c_str());
    return;
  }
  int64_t parameters = 0;
  for (const auto& [name, t] : ckpt.file().tensors())
    if (name.starts_with("model.") || name.starts_with("pretrain.backbone.") ||
        name.starts_with("pretrain.classifier."))
      parameters += t.numel();
  std::printf("checkpoint %s: %zu tensors, %lld model parameters, %.1f MB\n", path.c_str(), ckpt.file().size(),
              static_cast<long long>(parameters), static_cast<double>(fs::file_size(path)) / 1e6);
  auto text = [&](const char* key) -> std::string {
    if (!m.contains(key)) return "?";
    return m[key].is_string() ? m[key].get<std::string>() : m[key].dump();
  };
  std::printf("  model: %s, %s head, %s, %s bits, trained on %s (seed %s)\n", text("config").c_str(),
              text("head").c_str(), text("loss").c_str(), text("bits").c_str(), text("dataset").c_str(),
              text("seed").c_str());
  // best.safetensors keeps them at the top, last.safetensors among the settings --resume compares.
  const nlohmann::json loss_params = m.contains("loss_params") ? m["loss_params"]
                                     : m.contains("settings") && m["settings"].is_object()
                                         ? m["settings"].value("loss_params", nlohmann::json())
                                         : nlohmann::json();
  if (loss_params.is_object() && !loss_params.empty()) {
    std::string listed;
    for (const auto& [name, value] : loss_params.items()) listed += (listed.empty() ? "" : ", ") + name + " " + value.dump();
    std::printf("  loss hyperparameters: %s\n", listed.c_str());
  }
  const bool pretraining = saved_in_pretraining(m);
  if (pretraining)  // a stopped classifier pretraining
    std::printf("  stopped in the classifier pretraining after %s of its epochs (the hash stage not begun)\n",
                text("pretrain_epoch").c_str());
  else if (m.contains("map") && m["map"].is_number())  // best.safetensors: the evaluation it is the best of
    std::printf("  epoch %s, mAP %.4f\n", text("epoch").c_str(), m["map"].get<double>());
  else if (m.contains("best_map") && m["best_map"].is_number() && m["best_map"].get<double>() < 0)
    std::printf("  epoch %s (not yet evaluated)\n", text("epoch").c_str());  // best_map is -1 until then
  else if (m.contains("best_map") && m["best_map"].is_number())  // last.safetensors: the state to resume
    std::printf("  epoch %s (the run's best: mAP %.4f at epoch %s)\n", text("epoch").c_str(),
                m["best_map"].get<double>(), text("best_epoch").c_str());
  // Where a stopped run's --resume goes on (last.safetensors of a run stopped part way).
  const nlohmann::json progress = m.value("epoch_progress", nlohmann::json::object());
  const nlohmann::json steps = progress.is_object() ? progress.value("steps", nlohmann::json(0)) : nlohmann::json(0);
  if (steps.is_number_integer() && steps.get<int64_t>() > 0) {
    const nlohmann::json done = m.value(pretraining ? "pretrain_epoch" : "epoch", nlohmann::json(0));
    const std::string next_epoch = done.is_number_integer() ? std::to_string(done.get<int64_t>() + 1) : "?";
    std::printf("  stopped inside %sepoch %s after %lld of its batches: --resume goes on from the next\n",
                pretraining ? "pretraining " : "", next_epoch.c_str(),
                static_cast<long long>(steps.get<int64_t>()));
  }
  if (m.contains("evaluation_pending") && m["evaluation_pending"] == true)
    std::printf("  the evaluation after epoch %s did not finish: --resume runs it first\n", text("epoch").c_str());
  if (m.contains("split") && m["split"].is_object()) {
    const nlohmann::json& s = m["split"];
    auto count = [&](const char* key) { return s.contains(key) ? s[key].dump() : std::string("?"); };
    std::printf("  split: %s train / %s query / %s database, %s classes\n", count("train").c_str(),
                count("query").c_str(), count("database").c_str(), count("classes").c_str());
    if (s.contains("class_names")) {
      const nlohmann::json& names = s["class_names"];
      const auto is_string = [](const nlohmann::json& n) { return n.is_string(); };
      const bool all_strings = names.is_array() && std::all_of(names.begin(), names.end(), is_string);
      if (!all_strings)
        throw io::metadata_error(path, "split.class_names", "an array of strings", io::detail::json_found(names));
      std::printf("  classes: %s\n", joined(names.get<std::vector<std::string>>()).c_str());
    }
  }
}

int run_info(const InfoArgs& a) {
  for (size_t i = 0; i < a.paths.size(); ++i) {
    std::string path = a.paths[i];
    if (fs::is_directory(path)) path = (fs::path(path) / "best.safetensors").string();  // a vts train folder
    if (i > 0 && !a.json) std::printf("\n");
    if (is_index_file(path)) {
      index_info(path, a.json);
      continue;
    }
    try {
      checkpoint_info(path, a.json);
    } catch (const IoError& e) {
      throw IoError(std::string(e.what()) + "; expected a vts index file (it would start with VTSINDEX), a vts " +
                    "checkpoint, or a vts train output folder");
    }
  }
  return 0;
}

}  // namespace

Run add_info_command(CLI::App& app) {
  auto a = std::make_shared<InfoArgs>();
  app.add_option("paths", a->paths, "index files (vts encode), checkpoints or vts train output folders")
      ->required()->check(CLI::ExistingPath);
  app.add_flag("--json", a->json, "print the index's fingerprint or the checkpoint's metadata as stored");
  return [a] { return run_info(*a); };
}

}  // namespace vts::cli
