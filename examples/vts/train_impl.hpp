#pragma once
// `vts train`: trains a ViT hashing model with one of the six losses, evaluates it every E epochs
// (mAP over the query/database protocol of the dataset), keeps the best checkpoint and writes the
// codes, labels, metrics and precision-recall curve into --out.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "model.hpp"
#include "stop_signals.hpp"
#include "svg_plot.hpp"
#include "vts/data/protocol.hpp"
#include "vts/eval/retrieval.hpp"
#include "vts/index/codes.hpp"
#include "vts/index/labels.hpp"
#include "vts/hash/trainer.hpp"
#include "vts/io/atomic_file.hpp"
#include "vts/io/checkpoint.hpp"
#include "vts/io/npy.hpp"
#include "vts/io/vit_weights.hpp"
#include "vts/nn/vit.hpp"

namespace vts::cli {
namespace train_detail {

struct TrainArgs {
  std::string config = "tiny";
  std::string device = "cpu";  // cpu or cuda (a build with vts::cuda)
  std::string gemm = "tf32";   // CUDA: how fp32 GEMMs use the tensor cores (tf32, bf16, fp32)
  bool cuda_graphs = false;    // CUDA: forward and backward as replays of captured graphs (same results)
  std::string precision = "fp32";  // fp32, or bf16 (CUDA: bf16 network, fp32 loss and masters)
  std::string head = "all";
  std::string loss = "csq";
  std::map<std::string, double> loss_params;  // --loss-param NAME=VALUE: the loss's hyperparameters
  int64_t bits = 64;
  std::string dataset = "fashion-mnist";
  std::string data_dir, image_root;
  int64_t query_per_class = 0, train_per_class = 0;  // 0 = the protocol's (fashion-mnist, cifar10*, folder)
  int64_t image_cache_mb = 2048;  // list datasets and folder: resized images kept in memory
  int64_t epochs = 300;
  int64_t batch = 64;
  hash::OptimizerOptions opt{.name = "adamw", .lr = 1e-3, .weight_decay = 0.05, .schedule = "cosine",
                             .warmup_epochs = 2, .final_lr = 1e-5};
  int64_t eval_every = 50;
  int64_t pretrain_epochs = 0;
  double pretrain_lr = 1e-3;
  bool augment = true;
  float erase = 0.0f;
  double ema = 0.0;
  double mixup = 0.0;
  bool flip_average = false;
  bool reference_compat = false;
  uint64_t seed = 1;
  int threads = 0;
  int workers = 1;
  int64_t eval_batch = 256;
  int64_t topk = 0;  // 0 = the protocol's
  std::string out = "runs/default";
  bool overwrite = false;  // replace a run already in `out` (refused otherwise: its checkpoints would be lost)
  bool quiet = false;
  double time_limit = 0;  // seconds from the start after which the training stops, resumable (0: none)
  // Pretrained weights and resuming (docs/weights.md).
  std::string pretrained;  // backbone weights: Google .npz, timm or vts .safetensors
  std::string resume;      // a run's --out folder (its last.safetensors) or a checkpoint file
};

// The settings that decide a run's numbers. A checkpoint keeps them; --resume names those that
// differ, since then the result is no longer that of an uninterrupted run.
inline nlohmann::json run_settings(const TrainArgs& a) {
  return {{"dataset", a.dataset}, {"query_per_class", a.query_per_class}, {"train_per_class", a.train_per_class},
          {"epochs", a.epochs}, {"batch", a.batch}, {"optimizer", a.opt.name},
          {"lr", a.opt.lr}, {"weight_decay", a.opt.weight_decay}, {"momentum", a.opt.momentum},
          {"schedule", a.opt.schedule}, {"step_size", a.opt.step_size}, {"gamma", a.opt.gamma},
          {"warmup_epochs", a.opt.warmup_epochs}, {"final_lr", a.opt.final_lr}, {"augment", a.augment},
          {"erase", a.erase}, {"ema", a.ema}, {"mixup", a.mixup}, {"reference_compat", a.reference_compat}, {"seed", a.seed},
          {"pretrain_epochs", a.pretrain_epochs}, {"pretrain_lr", a.pretrain_lr}};
}

// Whether a run with these settings (run_settings()) reads `key`: the schedule's own parameters
// matter only under that schedule, the number of epochs only under cosine (its length), momentum
// only to SGD. A checkpoint's settings that differ only where neither run reads them give the same
// numbers, so --resume does not call that a change.
inline bool setting_is_read(const std::string& key, const nlohmann::json& settings) {
  const std::string schedule = settings.value("schedule", std::string()),
                    optimizer = settings.value("optimizer", std::string());
  if (key == "epochs" || key == "warmup_epochs" || key == "final_lr") return schedule == "cosine";
  if (key == "step_size" || key == "gamma") return schedule == "step";
  if (key == "momentum") return optimizer == "sgd";
  return true;
}

// {"alpha": 0.1, "step_continuation": 20, "adaptive_targets": false}: counts as integers, switches as
// booleans.
inline nlohmann::json loss_params_json(const std::vector<hash::loss::Hyperparameter>& all) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& h : all) {
    using Kind = hash::loss::HyperparameterKind;
    j[h.name] = h.kind == Kind::flag    ? nlohmann::json(h.value != 0)
                : h.kind == Kind::count ? nlohmann::json(static_cast<int64_t>(h.value))
                                        : nlohmann::json(h.value);
  }
  return j;
}

// ±1 int8 codes (sign(0) = 0 stays 0, as the reference's sign()).
inline std::vector<int8_t> sign_codes(const std::vector<float>& u) {
  std::vector<int8_t> c(u.size());
  for (size_t i = 0; i < u.size(); ++i) c[i] = static_cast<int8_t>((u[i] > 0) - (u[i] < 0));
  return c;
}

inline std::vector<uint8_t> label_bytes(const std::vector<float>& labels) {
  std::vector<uint8_t> b(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) b[i] = labels[i] > 0.5f ? 1 : 0;
  return b;
}

struct EvalResult {
  int64_t epoch = 0;
  eval::EvalResult report;
  std::vector<int8_t> query_codes, db_codes;
  double precision_at_100() const { return report.precision_at.empty() ? 0.0 : report.precision_at[0]; }
  double precision_at_1000() const { return report.precision_at.size() < 2 ? 0.0 : report.precision_at[1]; }
};

// The run's record (every evaluation, the best one, the loss per epoch, the training time) and all
// that is done with it without the model's type: scoring the codes, the checkpoints' metadata,
// restoring it on --resume, writing the output files. Defined in train.cpp and compiled once:
// instantiated per config × head × loss, this code was a sixth of each unit's compile time.
class RunRecord {
 public:
  RunRecord(const TrainArgs& args, const char* model, const char* head, const char* loss)
      : a_(args), model_(model), head_(head), loss_(loss) {
    best.report.map = -1;
  }

  // Sign codes of the network's outputs, mAP and the rest over the protocol (spec §4.3), one line
  // on stdout; true, with `best` replaced, when it beats every earlier evaluation. t0: when
  // encoding started, for the evaluation's time.
  bool score(int64_t epoch, const std::vector<float>& query_outputs, const std::vector<float>& db_outputs,
             const index::Labels& query_labels, const index::Labels& db_labels, int64_t topk,
             std::chrono::steady_clock::time_point t0);
  nlohmann::json best_checkpoint_metadata() const;               // best.safetensors
  nlohmann::json last_checkpoint_metadata(int64_t epoch) const;  // last.safetensors, for --resume
  // The record of a checkpoint's run (its metadata); prints what was resumed and any settings that
  // differ. Returns the epoch to continue after.
  int64_t restore(const nlohmann::json& metadata, const std::string& path);

  struct Outputs {
    const char* device;
    std::string gemm;
    int64_t topk = 0;
    int classes = 0;
    std::vector<std::string> class_names;  // folder: the class folders, in label order
    int64_t train_size = 0, query_size = 0, database_size = 0;
    const std::vector<float>& query_labels;  // multi-hot, one row per item
    const std::vector<float>& db_labels;
    std::chrono::steady_clock::time_point start;  // of the whole run, for total_seconds
  };
  // The codes and labels of the best evaluation (.npy), the precision-recall curve (JSON, SVG),
  // metrics.json, and the closing line on stdout.
  void write_outputs(const Outputs& o) const;

  EvalResult best;
  std::vector<std::pair<int64_t, double>> history;  // (epoch, mean training loss)
  nlohmann::json evaluations = nlohmann::json::array();
  double train_seconds = 0;  // the hash stage's epochs
  // The classifier pretraining (--pretrain-epochs): its epochs' time, and the mean loss of each
  // epoch (the cross-entropy), kept across --resume as the hash stage's are.
  double pretrain_seconds = 0;
  std::vector<std::pair<int64_t, double>> pretrain_history;
  int64_t graph_steps = 0;  // steps whose forward and backward were CUDA graph replays (this process)
  std::string cuda_graphs_off;  // why the trainer turned the graphs off (see Trainer), or empty
  // The split's sizes and classes ({train, query, database, classes[, class_names]}): kept in
  // last.safetensors, so that --resume can say when the data changed (images added to a folder).
  nlohmann::json split;
  // Every hyperparameter of the loss as the run uses it ({"alpha": 0.1, ...}), defaults included:
  // in metrics.json and both checkpoints, and among the settings --resume compares.
  nlohmann::json loss_params = nlohmann::json::object();

 private:
  // [{epoch, loss}], as checkpoints and metrics.json keep the hash stage's and the pretraining's.
  static nlohmann::json history_json(const std::vector<std::pair<int64_t, double>>& losses);
  nlohmann::json settings() const;      // run_settings() and loss_params

  const TrainArgs& a_;
  const char* model_;
  const char* head_;
  const char* loss_;
};

// After the first epoch: says when the resized-image cache could not hold the training images (the
// rest are decoded again every epoch), and how much would.
inline void report_image_cache(const data::Dataset& train, const TrainArgs& a) {
  const auto* list = dynamic_cast<const data::ListDataset*>(&train);
  if (list == nullptr || !list->cache() || !list->cache()->full() || a.quiet) return;
  const auto& cache = *list->cache();
  const double per_image = static_cast<double>(cache.bytes()) / static_cast<double>(std::max<size_t>(cache.size(), 1));
  std::fprintf(stderr,
               "note: the image cache (--image-cache-mb %lld) holds %zu of %lld training images; the others are "
               "decoded again every epoch. About %.0f MB would hold them all.\n",
               static_cast<long long>(a.image_cache_mb), cache.size(), static_cast<long long>(train.size()),
               per_image * static_cast<double>(train.size()) / (1 << 20) + 1);
}

// Where a checkpoint's run stopped inside an epoch ("epoch_progress", written by a stop before a
// batch): {0, 0} when it stopped between epochs. Refused when this run's epochs are not the ones it
// counted (another --batch, or a dataset with fewer batches).
inline hash::EpochProgress epoch_progress_of(const nlohmann::json& m, const std::string& path, const TrainArgs& a,
                                             int64_t steps_per_epoch) {
  if (!m.contains("epoch_progress")) return {};
  const nlohmann::json& p = m["epoch_progress"];
  if (!p.is_object() || !p.contains("steps") || !p.contains("loss_sum"))
    throw io::metadata_error(path, "epoch_progress", "an object {\"steps\": ..., \"loss_sum\": ...}",
                             io::detail::json_found(p));
  const nlohmann::json& sum = p["loss_sum"];
  if (!sum.is_number() || !std::isfinite(sum.get<double>()))
    throw io::metadata_error(path, "epoch_progress.loss_sum", "a finite number", io::detail::json_found(sum));
  const hash::EpochProgress position{io::metadata_count_value(p["steps"], path, "epoch_progress.steps"),
                                     sum.get<double>()};
  if (position.steps == 0) return position;
  // The epoch it stopped in, counted from 1 as the progress lines count ("epoch" and
  // "pretrain_epoch" are the epochs done).
  const bool pretraining = saved_in_pretraining(m);
  const std::string where =
      (pretraining ? "classifier pretraining epoch " : "epoch ") +
      std::to_string(io::metadata_count(m, pretraining ? "pretrain_epoch" : "epoch", path, 0) + 1);
  const nlohmann::json settings = m.value("settings", nlohmann::json::object());
  if (settings.contains("batch") && settings["batch"] != a.batch)
    throw Error("--resume: " + path + " stopped in " + where + " after " +
                std::to_string(position.steps) + " batches of " + settings["batch"].dump() +
                " images; it goes on only with --batch " + settings["batch"].dump() + ", found --batch " +
                std::to_string(a.batch));
  if (position.steps >= steps_per_epoch)
    throw Error("--resume: " + path + " stopped in " + where + " after " +
                std::to_string(position.steps) + " batches, but an epoch of this run's training split has " +
                std::to_string(steps_per_epoch) + " (was the dataset changed?)");
  return position;
}

// The classifier-pretraining epochs a checkpoint stopped in the pretraining had done
// ("pretrain_epoch"); refused when this run's --pretrain-epochs leaves none to go on with.
inline int64_t pretraining_epoch_of(const nlohmann::json& m, const std::string& path, const TrainArgs& a) {
  if (!m.contains("pretrain_epoch"))
    throw io::metadata_error(path, "pretrain_epoch", "the classifier-pretraining epochs done", "no such key");
  const int64_t done = io::metadata_count_value(m["pretrain_epoch"], path, "pretrain_epoch");
  if (done >= a.pretrain_epochs)
    throw Error("--resume: " + path + " stopped in classifier pretraining epoch " + std::to_string(done + 1) +
                "; it goes on only with --pretrain-epochs " + std::to_string(done + 1) +
                " or more, found --pretrain-epochs " + std::to_string(a.pretrain_epochs));
  return done;
}

template <class Config, class T, class D, class Head, class Loss>
int run(const TrainArgs& a) {
  using Backbone = nn::ViT<Config, T, D>;
  using Network = hash::HashNetwork<Backbone, Head>;
  const auto t_start = std::chrono::steady_clock::now();
  if (a.threads > 0) cpu::set_num_threads(a.threads);
  const bool tty = isatty(fileno(stderr)) && !a.quiet;

  data::ProtocolOptions popt;
  popt.data_dir = a.data_dir;
  popt.image_root = a.image_root;
  popt.seed = a.seed;
  popt.image_size = static_cast<int>(Config::image);
  popt.channels = static_cast<int>(Config::channels);  // folder: grey images for the 1-channel configs
  popt.query_per_class = a.query_per_class;
  popt.train_per_class = a.train_per_class;
  popt.image_cache_bytes = a.image_cache_mb << 20;
  if (!a.dataset.starts_with("cifar10")) popt.train_augment = a.augment;  // cifar10* has none to switch
  if (a.dataset == "fashion-mnist") popt.fashion_erase = a.erase;
  data::Split split = data::make_protocol(a.dataset, popt);
  const auto spec = split.train->spec();
  VTS_CHECK(spec.channels == Config::channels, "model config '", a.config, "' expects ", Config::channels,
            "-channel images but dataset '", a.dataset, "' has ", spec.channels, "; pick a matching --config");
  const int64_t topk = a.topk != 0 ? a.topk : split.topk;
  const int classes = split.num_classes;

  std::filesystem::create_directories(a.out);
  std::vector<hash::loss::Hyperparameter> loss_params_given;  // metrics.json has every value
  for (const auto& [name, value] : a.loss_params) loss_params_given.push_back({name, value});
  const std::string loss_settings =
      loss_params_given.empty() ? "" : " (" + hash::loss::describe(loss_params_given) + ")";
  std::printf("vts train: %s (%s head), %s loss%s, %lld bits, %s: %lld train / %lld query / %lld database, "
              "%d classes, %s, %d thread%s%s\n",
              Config::name, Head::name, Loss::name, loss_settings.c_str(), static_cast<long long>(a.bits), a.dataset.c_str(),
              static_cast<long long>(split.train->size()), static_cast<long long>(split.query->size()),
              static_cast<long long>(split.database->size()), classes,
              (std::string(D::name) + (std::is_same_v<T, bf16> ? " bf16" : "")).c_str(), cpu::max_threads(),
              cpu::max_threads() == 1 ? "" : "s", is_cpu_v<D> ? (", GEMMs: " + cpu::gemm_library()).c_str() : (a.cuda_graphs ? ", CUDA graphs" : ""));
  if (!split.class_names.empty()) {
    std::string names;
    for (const auto& n : split.class_names) names += (names.empty() ? "" : ", ") + n;
    std::printf("classes: %s\n", names.c_str());
  }
  std::fflush(stdout);

  Generator gen(a.seed);
  Network net(a.bits, gen);
  if (!a.pretrained.empty()) {  // draws nothing from gen: the rest of the run is seeded as without
    const io::WeightLoadReport w = io::load_pretrained(net.backbone, a.pretrained);
    std::printf("pretrained backbone: %s\n", w.summary().c_str());
    std::fflush(stdout);
  }
  static const std::set<std::string> multi_label_sets{"nuswide_21", "nuswide_21_m", "coco"};
  hash::loss::Config lcfg{.bits = a.bits, .classes = classes, .train_size = split.train->size(),
                          .multi_label = multi_label_sets.count(a.dataset) > 0,
                          .reference_compat = a.reference_compat, .dataset = a.dataset};
  Loss loss(lcfg, gen);
  for (const auto& [name, value] : a.loss_params) hash::loss::set_hyperparameter(loss, name, value);

  data::Loader train_loader(split.train, {.batch_size = a.batch, .shuffle = true, .num_workers = a.workers,
                                          .seed = a.seed});
  const int64_t steps_per_epoch = train_loader.num_batches();
  // The steps this process will run, for the ETA: a resumed run skips the pretraining and the
  // epochs its checkpoint holds (set again once the checkpoint says where it stopped).
  int64_t total_steps = (a.epochs + (a.resume.empty() ? a.pretrain_epochs : 0)) * steps_per_epoch;
  int64_t steps_done = 0;
  const auto t_train = std::chrono::steady_clock::now();
  auto progress = [&](const char* stage, const hash::StepReport& r) {
    ++steps_done;
    const double elapsed = seconds_since(t_train);
    const double eta = elapsed / static_cast<double>(steps_done) * static_cast<double>(total_steps - steps_done);
    const bool last = r.step + 1 == r.steps_in_epoch;
    if (tty || (last && !a.quiet)) {
      std::fprintf(stderr, "%s%s epoch %lld/%lld  step %lld/%lld  loss %.4f  lr %.2e  %.0f img/s  ETA %s%s", tty ? "\r" : "",
                   stage, static_cast<long long>(r.epoch + 1),
                   static_cast<long long>(std::string(stage) == "pretrain" ? a.pretrain_epochs : a.epochs),
                   static_cast<long long>(r.step + 1), static_cast<long long>(r.steps_in_epoch), r.loss, r.lr,
                   r.images_per_s, format_duration(eta).c_str(), tty ? "   " : "\n");
      if (tty && last) std::fputc('\n', stderr);
    }
  };

  // A checkpoint of another model, head, loss or code length is refused (listed with the other
  // problems at commit()).
  auto expect_run_identity = [&](io::CheckpointReader& ckpt) {
    ckpt.expect_metadata("config", Config::name);
    ckpt.expect_metadata("head", Head::name);
    ckpt.expect_metadata("loss", Loss::name);
    ckpt.expect_metadata("bits", a.bits);
  };
  RunRecord record(a, Config::name, Head::name, Loss::name);
  record.loss_params = loss_params_json(hash::loss::hyperparameters(loss));
  record.split = {{"train", split.train->size()}, {"query", split.query->size()},
                  {"database", split.database->size()}, {"classes", classes}};
  if (!split.class_names.empty()) record.split["class_names"] = split.class_names;
  // Ctrl-C, SIGTERM or --time-limit: the training (the classifier pretraining too) stops before its
  // next batch, or an evaluation before the next batch it encodes, and saves its state; --resume
  // goes on from there as if it had not stopped.
  StopRequest stop(a.time_limit, t_start);
  auto stop_requested = [&] { return stop.requested(); };
  struct StopRequested {
    std::string where;
  };
  auto stopped = [&](const std::string& where) {
    std::fprintf(stderr,
                 "%svts train: stopped by %s %s; the training state is saved in %s/last.safetensors: run the same "
                 "command with --resume %s to go on (it ends as a run never stopped would)\n",
                 tty ? "\n" : "", stop.by().c_str(), where.c_str(), a.out.c_str(), a.out.c_str());
    return stop.exit_status();
  };
  // --resume's checkpoint: of the hash stage (the usual), or of a classifier pretraining stopped
  // part way (`stage` "pretrain"), which goes on first; the hash stage then starts as in a fresh run.
  std::optional<io::CheckpointReader> resumed;
  std::string resume_path;
  bool resume_in_pretraining = false;
  if (!a.resume.empty()) {
    resume_path = std::filesystem::is_directory(a.resume) ? a.resume + "/last.safetensors" : a.resume;
    resumed.emplace(resume_path);
    resume_in_pretraining = saved_in_pretraining(resumed->metadata());
  }
  if (a.pretrain_epochs > 0 && (a.resume.empty() || resume_in_pretraining)) {
    hash::OptimizerOptions popts = a.opt;
    popts.lr = a.pretrain_lr;
    hash::ClassifierPretrainer<Backbone> pretrainer(net.backbone, classes, popts, a.seed);
    int64_t first_epoch = 0;
    hash::EpochProgress position;  // in the first epoch this process trains
    if (resume_in_pretraining) {
      io::CheckpointReader& ckpt = *resumed;
      first_epoch = pretraining_epoch_of(ckpt.metadata(), resume_path, a);
      position = epoch_progress_of(ckpt.metadata(), resume_path, a, steps_per_epoch);
      expect_run_identity(ckpt);
      io::read_pretraining_state(ckpt, pretrainer);
      ckpt.commit();  // throws, listing every mismatch, before anything changed
      record.restore(ckpt.metadata(), resume_path);
      resumed.reset();  // its file mapping is not needed past here
      total_steps = (a.epochs + a.pretrain_epochs - first_epoch) * steps_per_epoch - position.steps;
      if (position.steps > 0) {
        std::printf("classifier pretraining epoch %lld goes on from its batch %lld of %lld\n",
                    static_cast<long long>(first_epoch + 1), static_cast<long long>(position.steps + 1),
                    static_cast<long long>(steps_per_epoch));
        std::fflush(stdout);
      }
    }
    for (int64_t epoch = first_epoch; epoch < a.pretrain_epochs; ++epoch) {
      hash::EpochProgress inside = epoch == first_epoch ? position : hash::EpochProgress{};
      const auto t0 = std::chrono::steady_clock::now();
      const bool ended = pretrainer.train_epoch_until(train_loader, epoch, a.pretrain_epochs, inside, stop_requested,
                                                      [&](const hash::StepReport& r) { progress("pretrain", r); });
      record.pretrain_seconds += seconds_since(t0);
      if (ended) {
        record.pretrain_history.emplace_back(epoch + 1, inside.mean_loss());
      } else {
        io::CheckpointWriter last;
        io::add_pretraining_state(last, pretrainer);
        last.metadata() = record.last_checkpoint_metadata(0);
        last.metadata()["stage"] = "pretrain";
        last.metadata()["pretrain_epoch"] = epoch;
        last.metadata()["epoch_progress"] = {{"steps", inside.steps}, {"loss_sum", inside.loss_sum}};
        last.write(a.out + "/last.safetensors");
        return stopped("in classifier pretraining epoch " + std::to_string(epoch + 1) + "/" +
                       std::to_string(a.pretrain_epochs) + " before its batch " + std::to_string(inside.steps + 1) +
                       "/" + std::to_string(steps_per_epoch));
      }
    }
  } else if (resume_in_pretraining) {
    pretraining_epoch_of(resumed->metadata(), resume_path, a);  // throws: --pretrain-epochs 0
  }

  hash::Trainer<Network, Loss> trainer(std::move(net), std::move(loss), a.opt, a.seed);
  trainer.set_ema(a.ema);
  trainer.set_flip_averaging(a.flip_average);
  trainer.set_mixup(a.mixup);
  trainer.set_cuda_graphs(a.cuda_graphs);
  const std::vector<float> query_labels = data::all_labels(*split.query);
  const std::vector<float> db_labels = data::all_labels(*split.database);
  const index::Labels query_labels_packed = index::Labels::from_multi_hot(query_labels, classes);
  const index::Labels db_labels_packed = index::Labels::from_multi_hot(db_labels, classes);

  // The whole training state (live weights, optimizer, loss, dropout generator), for --resume.
  // `evaluation_pending`: the evaluation due after `epoch` did not finish, and --resume runs it
  // first. `inside`: the training stopped in epoch `epoch` + 1 after inside->steps of its batches.
  auto save_last = [&](int64_t epoch, bool evaluation_pending, const hash::EpochProgress* inside = nullptr) {
    io::CheckpointWriter last;
    io::add_training_state(last, trainer);
    last.metadata() = record.last_checkpoint_metadata(epoch);
    if (evaluation_pending) last.metadata()["evaluation_pending"] = true;
    if (inside) last.metadata()["epoch_progress"] = {{"steps", inside->steps}, {"loss_sum", inside->loss_sum}};
    last.write(a.out + "/last.safetensors");
  };
  auto evaluate = [&](int64_t epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    auto note = [&](int64_t done, int64_t total) {
      if (stop_requested()) throw StopRequested{};
      if (tty) std::fprintf(stderr, "\r  encoding %lld/%lld", static_cast<long long>(done), static_cast<long long>(total));
    };
    std::vector<float> uq, udb;
    try {
      uq = trainer.encode(split.query, a.eval_batch, a.workers, note);
      udb = trainer.encode(split.database, a.eval_batch, a.workers, note);
    } catch (const StopRequested&) {
      save_last(epoch, true);
      throw StopRequested{"in the evaluation after epoch " + std::to_string(epoch)};
    } catch (const std::exception& e) {
      // A query or database image that cannot be read shows only here, after the epochs before it:
      // keep them.
      std::string kept;
      try {
        std::filesystem::create_directories(a.out);
        save_last(epoch, true);
        kept = "\nthe training state after epoch " + std::to_string(epoch) + " is saved in " + a.out +
               "/last.safetensors: fix the cause, then run the same command with --resume " + a.out +
               " to evaluate it and go on";
      } catch (const std::exception& save_error) {
        kept = std::string("\nthe training state could not be saved either: ") + save_error.what();
      }
      throw Error(std::string(e.what()) + kept);
    }
    if (tty) std::fputc('\n', stderr);
    if (record.score(epoch, uq, udb, query_labels_packed, db_labels_packed, topk, t0)) {
      io::CheckpointWriter ckpt;
      trainer.loss().state([&](const std::string& name, auto& t) { ckpt.add("loss." + name, t); });
      ckpt.metadata() = record.best_checkpoint_metadata();
      // The writer reads the weights as it writes them: the averaged ones while they are swapped in.
      trainer.with_eval_weights([&] {
        ckpt.add_layer("model", trainer.network());
        ckpt.write(a.out + "/best.safetensors");
      });
    }
    save_last(epoch, false);  // after every evaluation
  };

  // --resume: restore everything the last evaluation saved and continue with the next epoch. With
  // the same settings the run ends with the same bytes as an uninterrupted one.
  int64_t start_epoch = 0;
  bool evaluation_pending = false;
  hash::EpochProgress resumed_position;  // of the first epoch this process trains
  if (resumed && !resume_in_pretraining) {
    io::CheckpointReader& ckpt = *resumed;
    const std::string& path = resume_path;
    resumed_position = epoch_progress_of(ckpt.metadata(), path, a, steps_per_epoch);
    expect_run_identity(ckpt);
    io::read_training_state(ckpt, trainer);
    ckpt.commit();  // throws, listing every mismatch, before anything changed
    // A checkpoint of a run without EMA has no average: start one from the loaded weights.
    if (a.ema > 0 && !io::has_ema_state(ckpt)) trainer.set_ema(a.ema);
    start_epoch = record.restore(ckpt.metadata(), path);
    total_steps = std::max<int64_t>(0, (a.epochs - start_epoch) * steps_per_epoch - resumed_position.steps);
    if (resumed_position.steps > 0 && start_epoch < a.epochs) {
      std::printf("epoch %lld goes on from its batch %lld of %lld\n", static_cast<long long>(start_epoch + 1),
                  static_cast<long long>(resumed_position.steps + 1), static_cast<long long>(steps_per_epoch));
      std::fflush(stdout);
    }
    const nlohmann::json& m = ckpt.metadata();
    evaluation_pending = m.contains("evaluation_pending") && m["evaluation_pending"] == true;
    resumed.reset();  // its file mapping is not needed past here
  }

  // Said once, when the trainer first turns the graphs off (at a step's capture or at an evaluation).
  auto note_graphs_off = [&] {
    if (!record.cuda_graphs_off.empty() || trainer.cuda_graphs_off_reason().empty()) return;
    record.cuda_graphs_off = trainer.cuda_graphs_off_reason();
    std::fprintf(stderr, "vts train: CUDA graphs off, training op by op (the same results): %s\n",
                 record.cuda_graphs_off.c_str());
  };
  try {
    // The evaluation the interrupted run could not finish, where it would have come.
    if (evaluation_pending && start_epoch < a.epochs) evaluate(start_epoch);
    for (int64_t epoch = start_epoch; epoch < a.epochs; ++epoch) {
      const auto t0 = std::chrono::steady_clock::now();
      hash::EpochProgress position = epoch == start_epoch ? resumed_position : hash::EpochProgress{};
      const bool ended = trainer.train_epoch_until(train_loader, epoch, a.epochs, position, stop_requested,
                                                   [&](const hash::StepReport& r) { progress("train", r); });
      record.train_seconds += seconds_since(t0);
      record.graph_steps = trainer.graph_steps();
      note_graphs_off();
      if (!ended) {
        save_last(epoch, false, &position);
        return stopped("in epoch " + std::to_string(epoch + 1) + "/" + std::to_string(a.epochs) + " before its batch " +
                       std::to_string(position.steps + 1) + "/" + std::to_string(steps_per_epoch));
      }
      record.history.emplace_back(epoch + 1, position.mean_loss());
      if (epoch == start_epoch) report_image_cache(*split.train, a);
      if ((epoch + 1) % a.eval_every == 0 || epoch + 1 == a.epochs) {
        evaluate(epoch + 1);
        note_graphs_off();
      }
    }
    if (start_epoch >= a.epochs) evaluate(a.epochs);  // nothing left to train (or --epochs 0)
  } catch (const StopRequested& stop) {
    return stopped(stop.where);
  }

  record.write_outputs({.device = D::name,
                        .gemm = is_cpu_v<D> ? cpu::gemm_name() : (std::is_same_v<T, bf16> ? "bf16" : a.gemm),
                        .topk = topk, .classes = classes, .class_names = split.class_names, .train_size = split.train->size(),
                        .query_size = split.query->size(), .database_size = split.database->size(),
                        .query_labels = query_labels, .db_labels = db_labels, .start = t_start});
  return 0;
}

// T is the network's element type; the losses always compute in fp32 (for bf16, on the cast output).
template <class Config, class T, class D>
int dispatch_head_and_loss(const TrainArgs& a) {
  auto with_head = [&]<class Head>() {
    return hash::loss::dispatch<float, D>(a.loss, [&]<class Loss>() { return run<Config, T, D, Head, Loss>(a); });
  };
  if (a.head == "all") return with_head.template operator()<hash::AllTokenHead<1024, T, D>>();
  if (a.head == "cls") return with_head.template operator()<hash::ClsTokenHead<T, D>>();
  throw Error("--head must be all or cls, got '" + a.head + "'");
}

}  // namespace train_detail

// Explicitly instantiated once per model config, device and element type (train_<config>.cpp, and
// train_cuda_<config>.cpp / train_cuda_bf16_<config>.cpp in a build with vts::cuda), so they
// compile in parallel and a change to one rebuilds only its file.
template <class Config, class D = Cpu, class T = float>
int run_train(const train_detail::TrainArgs& a) {
  return train_detail::dispatch_head_and_loss<Config, T, D>(a);
}
extern template int run_train<nn::ViTTiny28, Cpu>(const train_detail::TrainArgs&);
extern template int run_train<nn::ViTSmall32, Cpu>(const train_detail::TrainArgs&);
extern template int run_train<nn::ViTB16, Cpu>(const train_detail::TrainArgs&);
extern template int run_train<nn::ViTB32, Cpu>(const train_detail::TrainArgs&);
#if defined(VTS_WITH_CUDA)
extern template int run_train<nn::ViTTiny28, Cuda>(const train_detail::TrainArgs&);
extern template int run_train<nn::ViTSmall32, Cuda>(const train_detail::TrainArgs&);
extern template int run_train<nn::ViTB16, Cuda>(const train_detail::TrainArgs&);
extern template int run_train<nn::ViTB32, Cuda>(const train_detail::TrainArgs&);
extern template int run_train<nn::ViTTiny28, Cuda, bf16>(const train_detail::TrainArgs&);
extern template int run_train<nn::ViTSmall32, Cuda, bf16>(const train_detail::TrainArgs&);
extern template int run_train<nn::ViTB16, Cuda, bf16>(const train_detail::TrainArgs&);
extern template int run_train<nn::ViTB32, Cuda, bf16>(const train_detail::TrainArgs&);
#endif

}  // namespace vts::cli
