#pragma once
// A trained hash model loaded back from a `vts train` checkpoint, with its config chosen at run
// time: what `vts encode` and `vts search` use. The concrete network type (config × head) lives
// in model.cpp; callers see only this interface.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vts/data/dataset.hpp"
#include "vts/data/image.hpp"
#include "vts/hash/encode.hpp"

namespace vts::cli {

// What identifies a model's codes: two models with the same identity give the same codes for the
// same image. `weights_crc32` covers every weight's bytes.
struct ModelIdentity {
  std::string config, head, loss, dataset;
  int64_t bits = 0;
  int64_t image = 0, channels = 0;
  bool flip_average = false;
  uint32_t weights_crc32 = 0;
  nlohmann::json to_json() const;
  friend bool operator==(const ModelIdentity&, const ModelIdentity&) = default;
};

// What an index file holds, beyond the model's codes: kept in its fingerprint.
struct IndexContents {
  std::vector<std::string> class_names;  // the label columns' names where known (a folder's classes)
  int64_t encode_started_ns = -1;         // image files: when the encode started (for --update); else -1
  std::string dataset, split;             // a dataset split: its protocol and which split; else empty
};

class HashModel {
 public:
  virtual ~HashModel() = default;
  // Outputs u [n, bits] (codes are their signs) of every item of ds, in order.
  virtual std::vector<float> encode(std::shared_ptr<const data::Dataset> ds, const hash::EncodeOptions& opt,
                                    const std::function<void(int64_t, int64_t)>& progress = {}) const = 0;

  const ModelIdentity& identity() const { return id_; }
  const std::string& checkpoint() const { return checkpoint_; }
  uint64_t seed() const { return seed_; }  // the training run's seed (its protocol split)
  int64_t query_per_class() const { return query_per_class_; }  // the run's split counts (0: the protocol's)
  int64_t train_per_class() const { return train_per_class_; }
  // The evaluation transform of the dataset the model was trained on, ending at the model's image
  // size whatever the input size (an exact resize is added where the protocol has none; at the
  // model's size it changes no pixel).
  data::ImageTransform transform() const;
  // The fingerprint stored in index files: the identity, plus the checkpoint path as a hint for
  // `vts search` (not part of the identity: a copied checkpoint is the same model), and what the
  // index holds (IndexContents).
  std::string fingerprint(const IndexContents& contents = {}) const;

 protected:
  ModelIdentity id_;
  std::string checkpoint_;
  uint64_t seed_ = 0;
  int64_t query_per_class_ = 0, train_per_class_ = 0;
};

// Loads a `vts train` checkpoint: a file, or a run folder (its best.safetensors), onto `device`
// ("cpu", or "cuda": a build with vts::cuda, a device, and the checkpoint's config among the
// VTS_TRAIN_CONFIGS it was built for). Throws vts::IoError for an unreadable file or a checkpoint
// whose metadata or weights do not fit, vts::Error for a device it cannot use. The identity does
// not depend on the device; the codes can differ where an output is within rounding of zero.
std::unique_ptr<HashModel> load_hash_model(const std::string& path, const std::string& device = "cpu");

// Whether a checkpoint's metadata is that of a `vts train` run stopped inside the classifier
// pretraining (`stage` "pretrain"): its tensors are the pretraining's state, not a hash model.
inline bool saved_in_pretraining(const nlohmann::json& metadata) {
  const auto stage = metadata.find("stage");
  return stage != metadata.end() && *stage == "pretrain";
}

// The identity, checkpoint hint and contents stored in an index file's fingerprint. Throws
// vts::IoError (naming `index_path`) when the fingerprint was not written by `vts encode`.
struct IndexFingerprint {
  ModelIdentity identity;
  std::string checkpoint;
  IndexContents contents;
};
IndexFingerprint parse_index_fingerprint(std::string_view fingerprint, const std::string& index_path);

// The fields in which two identities differ, as " field: <first_name> <value>, <second_name> <value>;"
// for each (by default the model an index was encoded with, then a model offered for it).
std::string identity_difference(const ModelIdentity& first, const ModelIdentity& second,
                                const std::string& first_name = "index", const std::string& second_name = "model");

}  // namespace vts::cli
