// `vts train`: flags and dispatch to the per-config instantiations.
#include "train_impl.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/gemm.hpp"
#include "vts/backend/cuda/runtime.hpp"
#endif

namespace vts::cli {

using train_detail::TrainArgs;

namespace train_detail {

bool RunRecord::score(int64_t epoch, const std::vector<float>& query_outputs, const std::vector<float>& db_outputs,
                      const index::Labels& query_labels, const index::Labels& db_labels, int64_t topk,
                      std::chrono::steady_clock::time_point t0) {
  EvalResult r;
  r.epoch = epoch;
  r.query_codes = sign_codes(query_outputs);
  r.db_codes = sign_codes(db_outputs);
  const int64_t nq = static_cast<int64_t>(r.query_codes.size()) / a_.bits;
  const int64_t ndb = static_cast<int64_t>(r.db_codes.size()) / a_.bits;
  eval::EvalOptions eo;
  eo.topk = topk;
  // "@All": our own protocols (Fashion-MNIST, folder) rank the whole database; the reference
  // protocols keep DeepHash's slice that leaves out the last-ranked item (hashing-spec §4.3).
  eo.minus_one = data::map_settings(a_.dataset).all_but_last ? eval::TopkAll::all_but_last : eval::TopkAll::all;
  eo.pr_curve = true;
  eo.precision_at = {100, 1000};
  eo.radius = 2;
  r.report = eval::evaluate(index::pack_codes(r.query_codes.data(), nq, a_.bits), query_labels,
                            index::pack_codes(r.db_codes.data(), ndb, a_.bits), db_labels, eo);
  const double secs = seconds_since(t0);
  std::printf("eval after epoch %lld: mAP@%s = %.4f  P@100 = %.4f  P(r<=2) = %.4f  (%.1fs)\n",
              static_cast<long long>(epoch), topk < 0 ? "all" : std::to_string(topk).c_str(), r.report.map,
              r.precision_at_100(), r.report.radius.precision, secs);
  std::fflush(stdout);
  evaluations.push_back({{"epoch", epoch}, {"map", r.report.map}, {"precision_at_100", r.precision_at_100()},
                         {"precision_radius2", r.report.radius.precision}, {"seconds", secs}});
  if (r.report.map <= best.report.map) return false;
  best = std::move(r);
  return true;
}

nlohmann::json RunRecord::history_json(const std::vector<std::pair<int64_t, double>>& losses) {
  nlohmann::json records = nlohmann::json::array();
  for (const auto& [e, l] : losses) records.push_back({{"epoch", e}, {"loss", l}});
  return records;
}

nlohmann::json RunRecord::settings() const {
  nlohmann::json s = run_settings(a_);
  s["loss_params"] = loss_params;
  return s;
}

nlohmann::json RunRecord::best_checkpoint_metadata() const {
  return {{"config", model_}, {"head", head_}, {"loss", loss_}, {"loss_params", loss_params}, {"bits", a_.bits},
          {"epoch", best.epoch}, {"map", best.report.map}, {"dataset", a_.dataset}, {"seed", a_.seed},
          {"flip_average", a_.flip_average},  // vts encode/search encode as the evaluation did
          {"query_per_class", a_.query_per_class}, {"train_per_class", a_.train_per_class}};  // and split so
}

nlohmann::json RunRecord::last_checkpoint_metadata(int64_t epoch) const {
  return {{"config", model_}, {"head", head_}, {"loss", loss_}, {"bits", a_.bits},
          {"epoch", epoch}, {"dataset", a_.dataset}, {"seed", a_.seed}, {"best_map", best.report.map},
          {"best_epoch", best.epoch}, {"evaluations", evaluations}, {"loss_history", history_json(history)},
          {"train_seconds", train_seconds}, {"pretrain_loss_history", history_json(pretrain_history)},
          {"pretrain_seconds", pretrain_seconds}, {"settings", settings()}, {"split", split}};
}

int64_t RunRecord::restore(const nlohmann::json& m, const std::string& path) {
  // Every field is checked before the first is kept: one found wrong later (evaluations is only
  // appended to after an epoch) would cost the epochs trained before it, and a negative epoch
  // would count epochs that never ran.
  // An array of {"epoch": n >= 0, `value`: a finite number, ...}, as last_checkpoint_metadata writes.
  auto epoch_records = [&](const char* key, const char* value) {
    if (!m.contains(key)) return nlohmann::json::array();
    const nlohmann::json& records = m[key];
    if (!records.is_array())
      throw io::metadata_error(path, key,
                               std::string("an array of {\"epoch\": ..., \"") + value + "\": ...} objects",
                               io::detail::json_found(records));
    for (size_t i = 0; i < records.size(); ++i) {
      const nlohmann::json& r = records[i];
      const std::string at = std::string(key) + "[" + std::to_string(i) + "]";
      if (!r.is_object() || !r.contains("epoch") || !r.contains(value))
        throw io::metadata_error(path, at, std::string("an object with \"epoch\" and \"") + value + "\"",
                                 io::detail::json_found(r));
      io::metadata_count_value(r["epoch"], path, at + ".epoch");
      if (!r[value].is_number() || !std::isfinite(r[value].get<double>()))
        throw io::metadata_error(path, at + "." + value, "a finite number", io::detail::json_found(r[value]));
    }
    return records;
  };
  auto object_field = [&](const char* key) {
    if (!m.contains(key)) return nlohmann::json::object();
    if (!m[key].is_object()) throw io::metadata_error(path, key, "a JSON object", io::detail::json_found(m[key]));
    return m[key];
  };
  const int64_t start_epoch = io::metadata_count(m, "epoch", path, 0);
  const int64_t best_epoch = io::metadata_count(m, "best_epoch", path, 0);
  const double best_map = io::metadata_value<double>(m, "best_map", path, -1.0);
  auto seconds_field = [&](const char* key) {  // absent before 2026-12-08 (pretrain_seconds): 0
    const double seconds = io::metadata_value<double>(m, key, path, 0.0);
    if (!(seconds >= 0)) throw io::metadata_error(path, key, "0 or more seconds", std::to_string(seconds));
    return seconds;
  };
  const double seconds = seconds_field("train_seconds");
  const double pretraining_seconds = seconds_field("pretrain_seconds");
  nlohmann::json restored_evaluations = epoch_records("evaluations", "map");
  const nlohmann::json losses = epoch_records("loss_history", "loss");
  const nlohmann::json pretraining_losses = epoch_records("pretrain_loss_history", "loss");
  const nlohmann::json then = object_field("settings");
  const nlohmann::json was_split = object_field("split");  // checkpoints before 2026-12-04 have none

  best.epoch = best_epoch;
  best.report.map = best_map;
  evaluations = std::move(restored_evaluations);
  history.clear();
  for (const auto& h : losses) history.emplace_back(h["epoch"].get<int64_t>(), h["loss"].get<double>());
  pretrain_history.clear();
  for (const auto& h : pretraining_losses)
    pretrain_history.emplace_back(h["epoch"].get<int64_t>(), h["loss"].get<double>());
  train_seconds = seconds;
  pretrain_seconds = pretraining_seconds;
  std::string changed;
  const nlohmann::json now = settings();
  const bool epochs_changed = then.contains("epochs") && then["epochs"] != now["epochs"];
  for (const auto& [k, v] : now.items())
    if (then.contains(k) && then[k] != v && (setting_is_read(k, then) || setting_is_read(k, now)))
      changed += " " + k + " " + then[k].dump() + "->" + v.dump();
  if (m.contains("split")) {
    std::string what;
    for (const char* k : {"train", "query", "database", "classes", "class_names"}) {
      const nlohmann::json was = was_split.value(k, nlohmann::json()), is = split.value(k, nlohmann::json());
      if (was != is) what += std::string(what.empty() ? "" : " ") + k + " " + was.dump() + "->" + is.dump();
    }
    if (!what.empty()) changed += " dataset split (" + what + ")";
  }
  if (saved_in_pretraining(m))  // stopped before the hash stage began
    std::printf("resumed from %s in the classifier pretraining, after %lld of its epochs\n", path.c_str(),
                static_cast<long long>(io::metadata_count(m, "pretrain_epoch", path, 0)));
  else if (evaluations.empty())  // stopped by its first evaluation: there is no best yet
    std::printf("resumed from %s after epoch %lld (not yet evaluated)\n", path.c_str(),
                static_cast<long long>(start_epoch));
  else
    std::printf("resumed from %s after epoch %lld (best mAP so far %.4f at epoch %lld)\n", path.c_str(),
                static_cast<long long>(start_epoch), best.report.map, static_cast<long long>(best.epoch));
  if (!changed.empty())
    std::printf("note: this run differs from the checkpoint's:%s; the result will not be that of an "
                "uninterrupted run\n", changed.c_str());
  else if (epochs_changed) {  // e.g. a finished run continued for more epochs
    const auto old_epochs = then["epochs"].get<int64_t>();
    std::printf("note: --epochs %lld->%lld; the %s schedule does not depend on the number of epochs, so the "
                "training continues as an uninterrupted %lld-epoch run would",
                static_cast<long long>(old_epochs), static_cast<long long>(a_.epochs), a_.opt.schedule.c_str(),
                static_cast<long long>(a_.epochs));
    if (old_epochs > 0 && old_epochs < a_.epochs && old_epochs % a_.eval_every != 0 &&
        std::any_of(evaluations.begin(), evaluations.end(), [&](const auto& e) { return e["epoch"] == old_epochs; }))
      std::printf(" (the evaluation after epoch %lld, the old last one, stays in the record)",
                  static_cast<long long>(old_epochs));
    std::printf("\n");
  }
  std::fflush(stdout);
  return start_epoch;
}

void RunRecord::write_outputs(const Outputs& o) const {
  const TrainArgs& a = a_;
  const int64_t nq = o.query_size, ndb = o.database_size;
  // Outputs of the best evaluation. After --resume the best can be one from before the restart,
  // whose codes this process never computed; the outputs that run wrote then stay as they are.
  if (!best.query_codes.empty()) {
    io::write_npy(a.out + "/query_codes.npy", io::make_array(best.query_codes, {nq, a.bits}));
    io::write_npy(a.out + "/db_codes.npy", io::make_array(best.db_codes, {ndb, a.bits}));
    io::write_npy(a.out + "/query_labels.npy", io::make_array(label_bytes(o.query_labels), {nq, int64_t{o.classes}}));
    io::write_npy(a.out + "/db_labels.npy", io::make_array(label_bytes(o.db_labels), {ndb, int64_t{o.classes}}));
    // The reference's points (every 100th item retrieved, spec §4.4) for the JSON; fewer for the plot.
    const eval::PrCurve pr = eval::pr_curve_reference_points(best.report.pr);
    const eval::PrCurve plot = eval::subsample_pr_curve(best.report.pr, 400);
    write_text(a.out + "/pr_curve.json",
               nlohmann::json{{"index", pr.index}, {"P", pr.precision}, {"R", pr.recall}}.dump() + "\n");
    write_text(a.out + "/pr_curve.svg",
               svg_line_plot("Precision-recall, " + std::string(loss_) + ", " + std::to_string(a.bits) + " bits, " +
                                 a.dataset + " (mAP " + std::to_string(best.report.map).substr(0, 6) + ")",
                             "recall", "precision", {{loss_, plot.recall, plot.precision}}));
  } else {
    std::printf("the best evaluation (epoch %lld) predates the resume: its codes are those in that run's folder\n",
                static_cast<long long>(best.epoch));
  }

  nlohmann::json metrics = {
      {"map", best.report.map},
      {"best_epoch", best.epoch},
      {"last_map", evaluations.empty() ? 0.0 : evaluations.back()["map"].get<double>()},
      {"topk", o.topk},
      {"bits", a.bits},
      {"precision_at_100", best.precision_at_100()},
      {"precision_at_1000", best.precision_at_1000()},
      {"precision_radius2", best.report.radius.precision},
      {"train_seconds", train_seconds},
      {"pretrain_seconds", pretrain_seconds},
      {"graph_steps", graph_steps},
      {"cuda_graphs_off", cuda_graphs_off},
      {"total_seconds", seconds_since(o.start)},
      {"evaluations", evaluations},
      {"loss_history", history_json(history)},
      {"pretrain_loss_history", history_json(pretrain_history)},
      {"config",
       {{"model", model_}, {"head", head_}, {"loss", loss_}, {"loss_params", loss_params}, {"bits", a.bits},
        {"dataset", a.dataset},
        {"device", o.device}, {"precision", a.precision}, {"gemm", o.gemm}, {"cuda_graphs", a.cuda_graphs},
        {"data_dir", a.data_dir}, {"epochs", a.epochs}, {"batch", a.batch}, {"optimizer", a.opt.name},
        {"lr", a.opt.lr}, {"weight_decay", a.opt.weight_decay}, {"schedule", a.opt.schedule},
        {"warmup_epochs", a.opt.warmup_epochs}, {"final_lr", a.opt.final_lr}, {"eval_every", a.eval_every},
        {"pretrain_epochs", a.pretrain_epochs}, {"pretrain_lr", a.pretrain_lr}, {"augment", a.augment},
        {"erase", a.erase}, {"ema", a.ema}, {"mixup", a.mixup}, {"flip_average", a.flip_average},
        {"reference_compat", a.reference_compat}, {"seed", a.seed}, {"threads", cpu::max_threads()},
        {"workers", a.workers}, {"train_size", o.train_size}, {"query_size", nq}, {"database_size", ndb},
        {"query_per_class", a.query_per_class}, {"train_per_class", a.train_per_class},
        {"image_cache_mb", a.image_cache_mb}}}};
  if (!o.class_names.empty()) metrics["classes"] = o.class_names;  // label column c is class_names[c]
  write_text(a.out + "/metrics.json", metrics.dump(2) + "\n");
  // train_seconds counts the epochs of every process of a resumed run, total_seconds this process
  // only: said so, or "training 80s, total 30s" reads as a clock error.
  char pretraining[64] = "";
  if (!pretrain_history.empty() || pretrain_seconds > 0)
    std::snprintf(pretraining, sizeof pretraining, " after %.1fs of classifier pretraining", pretrain_seconds);
  std::printf("best mAP %.4f at epoch %lld; training %.1fs%s%s, %s %.1fs; outputs in %s\n", best.report.map,
              static_cast<long long>(best.epoch), train_seconds, pretraining,
              a.resume.empty() ? "" : " (with the resumed run's)", a.resume.empty() ? "total" : "this process",
              seconds_since(o.start), a.out.c_str());
}

}  // namespace train_detail

namespace {

// A second `vts train` into the folder of a finished run (scripts/run-default run twice) would
// replace its best checkpoint at the first evaluation: hours of training lost to a repeated
// command. Refused unless the run is being continued (--resume of that folder or of one of its
// checkpoints) or --overwrite says so.
void check_out_holds_no_other_run(const std::string& out, const std::string& resume) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string held;
  for (const char* name : {"best.safetensors", "last.safetensors"})
    if (fs::exists(fs::path(out) / name, ec)) held += std::string(held.empty() ? "" : " and ") + name;
  if (held.empty()) return;
  if (!resume.empty() &&
      (io::same_file(resume, out) || io::same_file(fs::path(resume).parent_path().string(), out)))
    return;
  throw Error("--out " + out + " already holds a run (" + held + "): continue it with --resume " + out +
              ", replace it with --overwrite, or choose another --out");
}

// The configs this vts was built for (VTS_TRAIN_CONFIGS, examples/vts/CMakeLists.txt) are defined
// on this file only.
template <class D, class T = float>
int run_config(const TrainArgs& a) {
#if defined(VTS_TRAIN_CONFIG_TINY)
  if (a.config == "tiny") return run_train<nn::ViTTiny28, D, T>(a);
#endif
#if defined(VTS_TRAIN_CONFIG_SMALL)
  if (a.config == "small") return run_train<nn::ViTSmall32, D, T>(a);
#endif
#if defined(VTS_TRAIN_CONFIG_B16)
  if (a.config == "b16") return run_train<nn::ViTB16, D, T>(a);
#endif
#if defined(VTS_TRAIN_CONFIG_B32)
  if (a.config == "b32") return run_train<nn::ViTB32, D, T>(a);
#endif
  throw Error("--config " + a.config + ": this vts was built with VTS_TRAIN_CONFIGS=" VTS_TRAIN_CONFIGS_BUILT
              " only; reconfigure with -DVTS_TRAIN_CONFIGS=\"tiny;small;b16;b32\", or use scripts/run-default --config " +
              a.config + ", which builds what it runs");
}

// A small instance of a loss (one class, one training item), to list or check its hyperparameters.
template <class Loss>
Loss loss_probe(int64_t bits, bool reference_compat = false, const std::string& dataset = "") {
  Generator gen(0);
  return Loss(hash::loss::Config{.bits = bits, .classes = 1, .train_size = 1, .multi_label = false,
                                 .reference_compat = reference_compat, .dataset = dataset},
              gen);
}

// --loss-param NAME=VALUE, each checked on a small instance of the chosen loss before any data is
// read, so that a misspelt name or a value out of range is refused at once. The instance is built
// without any too: a loss that refuses the code length (CSQ at 48 bits) then says so at once.
std::map<std::string, double> parse_loss_params(const std::vector<std::string>& given, const TrainArgs& a) {
  std::map<std::string, double> params;
  hash::loss::dispatch<float, Cpu>(a.loss, [&]<class Loss>() {
    Loss probe = loss_probe<Loss>(a.bits, a.reference_compat, a.dataset);
    for (const std::string& text : given) {
      const size_t eq = text.find('=');
      if (eq == 0 || eq == std::string::npos || eq + 1 == text.size())
        throw Error("--loss-param " + text + ": expected NAME=VALUE, e.g. --loss-param alpha=0.4");
      const std::string name = text.substr(0, eq), value_text = text.substr(eq + 1);
      char* stop = nullptr;
      const double value = std::strtod(value_text.c_str(), &stop);
      if (stop != value_text.c_str() + value_text.size())
        throw Error("--loss-param " + text + ": '" + value_text + "' is not a number");
      if (!params.emplace(name, value).second) throw Error("--loss-param " + text + ": " + name + " is given twice");
      try {
        hash::loss::set_hyperparameter(probe, name, value);
      } catch (const Error& e) {
        throw Error("--loss-param " + text + ": " + e.what());
      }
    }
    return 0;
  });
  return params;
}

// "dsh: alpha 0.1; hashnet: alpha 0.1, step_continuation 20; ...", from the losses themselves.
std::string loss_params_help() {
  std::string help;
  for (const std::string& name : hash::loss::names())
    hash::loss::dispatch<float, Cpu>(name, [&]<class Loss>() {
      Loss probe = loss_probe<Loss>(64);
      help += (help.empty() ? "" : "; ") + name + ": " + hash::loss::describe(hash::loss::hyperparameters(probe));
      return 0;
    });
  return help;
}
}  // namespace

Run add_train_command(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  app.add_option("--config", a->config, "model: tiny (ViTTiny28), small (ViTSmall32), b16, b32")
      ->check(CLI::IsMember({"tiny", "small", "b16", "b32"}))->capture_default_str();
  app.add_option("--head", a->head, "hash head: all (every token, the paper's) or cls (class token)")
      ->check(CLI::IsMember({"all", "cls"}))->capture_default_str();
  app.add_option("--loss", a->loss, "dsh, hashnet, greedyhash, idhn, csq, dpn")
      ->check(CLI::IsMember(hash::loss::names()))->capture_default_str();
  auto loss_params = std::make_shared<std::vector<std::string>>();
  app.add_option("--loss-param", *loss_params,
                 "NAME=VALUE: a hyperparameter of the loss (repeat for several); the reference's defaults: " +
                     loss_params_help() + " (docs/losses.md)");
  app.add_option("--bits", a->bits, "code length K (a multiple of 8: codes are packed in bytes)")
      ->check(whole_number(8, 4096, 8))->capture_default_str();
  app.add_option("--dataset", a->dataset,
                 "fashion-mnist, cifar10, cifar10-1, cifar10-2, imagenet, nuswide_21, nuswide_21_m, nuswide_81_m, "
                 "coco, mirflickr, voc2012; your own images: folder (--data-dir DIR holding DIR/<class>/<image>) or "
                 "list (DIR holding train.txt, test.txt, database.txt: a path and 0/1 labels per line, any number "
                 "of classes; optional classes.txt)")
      ->check(CLI::IsMember(data::protocol_names()))->capture_default_str();
  app.add_option("--data-dir", a->data_dir, "dataset folder (default for fashion-mnist: the Debian package's)");
  app.add_option("--query-per-class", a->query_per_class,
                 "queries per class (fashion-mnist, cifar10*, folder; 0: the protocol's, folder 10 %)")
      ->check(whole_number(0, kMaxCount))->capture_default_str();
  app.add_option("--train-per-class", a->train_per_class,
                 "training images per class (fashion-mnist, cifar10*, folder; 0: the protocol's, folder all "
                 "but the queries)")
      ->check(whole_number(0, kMaxCount))->capture_default_str();
  app.add_option("--image-root", a->image_root, "folder the list files' image paths are relative to");
  app.add_option("--image-cache-mb", a->image_cache_mb,
                 "list datasets and folder: MB of resized images kept in memory after their first decode (0: "
                 "decode every image every epoch)")
      ->check(whole_number(0, int64_t{1} << 30))->capture_default_str();
  app.add_option("--epochs", a->epochs, "training epochs of the hash stage")->check(whole_number(0, kMaxEpochs))
      ->capture_default_str();
  app.add_option("--batch", a->batch, "batch size")->check(whole_number(1, kMaxBatch))->capture_default_str();
  app.add_option("--optimizer", a->opt.name, "adam, adamw, rmsprop, sgd")
      ->check(CLI::IsMember({"adam", "adamw", "rmsprop", "sgd"}))->capture_default_str();
  app.add_option("--lr", a->opt.lr, "peak learning rate")->check(positive_number())->capture_default_str();
  app.add_option("--weight-decay", a->opt.weight_decay, "weight decay")->check(non_negative_number())
      ->capture_default_str();
  app.add_option("--schedule", a->opt.schedule, "constant, step (x0.1 every --step-size epochs), cosine")
      ->check(CLI::IsMember({"constant", "step", "cosine"}))->capture_default_str();
  app.add_option("--step-size", a->opt.step_size, "epochs between decays of the step schedule")->capture_default_str();
  app.add_option("--warmup-epochs", a->opt.warmup_epochs, "linear warm-up of the cosine schedule")->capture_default_str();
  app.add_option("--final-lr", a->opt.final_lr, "learning rate at the end of the cosine schedule")->capture_default_str();
  app.add_option("--eval-every", a->eval_every, "evaluate every E epochs (and after the last)")
      ->check(whole_number(1, kMaxEpochs))->capture_default_str();
  app.add_option("--pretrain-epochs", a->pretrain_epochs, "classifier pretraining epochs before hashing")
      ->check(whole_number(0, kMaxEpochs))->capture_default_str();
  app.add_option("--pretrain-lr", a->pretrain_lr, "learning rate of the classifier stage")->capture_default_str();
  add_switch(app, "augment", a->augment,
             "training augmentation (fashion-mnist: shift and flip; list datasets and folder: flip and random crop)", "on");
  app.add_option("--erase", a->erase, "random-erasing probability of the training augmentation (fashion-mnist)")
      ->check(real_number(0.0, 1.0, true))->capture_default_str();
  app.add_option("--ema", a->ema, "evaluate an exponential moving average of the weights with this decay (0: off)")
      ->check(real_number(0.0, 0.99999, true))->capture_default_str();
  app.add_option("--mixup", a->mixup, "mixup: blend each batch with itself shuffled, weight ~ Beta(a, a) (0: off; csq only)")
      ->check(non_negative_number())->capture_default_str();
  add_switch(app, "flip-average", a->flip_average, "encode each image and its mirror image and average the outputs",
             "off");
  app.add_flag("--reference-compat", a->reference_compat,
               "reproduce the VTS paper code's loss behaviour where it differs from the corrected one");
  app.add_option("--seed", a->seed, "seed of the split, initialisation, shuffling and dropout")
      ->check(seed_number())->capture_default_str();
  app.add_option("--threads", a->threads, "compute threads (default: OMP_NUM_THREADS or all cores)")
      ->check(whole_number(1, kMaxThreads));
  auto* workers = app.add_option("--workers", a->workers,
                                 "data loader threads (default: up to 4 on the CPU, up to 8 with --device cuda)")
                      ->check(whole_number(0, kMaxWorkers));
  app.add_option("--eval-batch", a->eval_batch, "batch size when encoding")->check(whole_number(1, kMaxBatch))
      ->capture_default_str();
  app.add_option("--topk", a->topk, "mAP@k (0 = the protocol's, -1 = the whole database)")
      ->check(whole_number(-1, kMaxCount))->capture_default_str();
  app.add_option("--out", a->out, "output folder")->capture_default_str();
  app.add_flag("--overwrite", a->overwrite,
               "replace the run already in --out (without it a folder holding best or last.safetensors is refused, "
               "unless --resume continues that run)");
  app.add_flag("--quiet", a->quiet, "no progress lines");
  auto time_limit = std::make_shared<std::string>();
  app.add_option("--time-limit", *time_limit,
                 "stop after this long from the start (3h50m, 90m, 5400 = seconds), before the next batch or in an "
                 "evaluation, with the training state saved for --resume; exits with status 75 (Ctrl-C and "
                 "SIGTERM stop the same way, with status 130 and 143)")
      ->check(positive_duration());
  auto* pretrained = app.add_option("--pretrained", a->pretrained,
                                    "backbone weights to start from: Google .npz (ViT-B_16.npz, ViT-B_32.npz) or "
                                    "timm / vts .safetensors; the format is read from the file")
                         ->check(CLI::ExistingFile);
  app.add_option("--resume", a->resume,
                 "continue a run: its --out folder (uses last.safetensors) or a checkpoint file; same settings give "
                 "the same result as an uninterrupted run")
      ->check(CLI::ExistingPath)
      ->excludes(pretrained);
  app.add_option("--device", a->device, "cpu, or cuda (a build with the CUDA backend; see --precision, --gemm)")
      ->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  app.add_option("--precision", a->precision,
                 "fp32, or bf16 (cuda: bf16 weights and activations, fp32 loss and fp32 master weights)")
      ->check(CLI::IsMember({"fp32", "bf16"}))->capture_default_str();
  auto* gemm = app.add_option("--gemm", a->gemm,
                              "cuda, fp32 model: GEMMs on tf32 or bf16 tensor cores (fp32 storage), or full fp32")
                   ->check(CLI::IsMember({"tf32", "bf16", "fp32"}))->capture_default_str();
  auto graphs_given = std::make_shared<bool>(false);
  add_switch(app, "cuda-graphs", a->cuda_graphs,
             "cuda: replay each step's forward and backward from captured CUDA graphs (the same results bit for bit, "
             "fewer launches, about twice the activation memory)",
             "on with --device cuda except for --loss greedyhash; off when a capture fails", graphs_given.get());
  return [a, gemm, workers, graphs_given, loss_params, time_limit]() -> int {
    a->loss_params = parse_loss_params(*loss_params, *a);
    if (!time_limit->empty()) a->time_limit = parse_duration(*time_limit);
    if (workers->count() == 0) a->workers = default_workers(a->device);
    if (!*graphs_given)
      a->cuda_graphs = a->device == "cuda" && a->loss != "greedyhash";
    else if (a->device != "cuda" && a->cuda_graphs)
      throw Error("--cuda-graphs applies to --device cuda");
    if (a->data_dir.empty() && a->dataset != "fashion-mnist")
      throw Error("--dataset " + a->dataset + " needs --data-dir: " +
                  (a->dataset == "folder"              ? "the folder of class folders, DIR/<class>/<image>"
                   : a->dataset.starts_with("cifar10") ? "the folder of data_batch_1.bin ... test_batch.bin"
                                                       : "the folder holding train.txt, test.txt and database.txt"));
    check_gemm_needs_cuda(a->device, a->gemm, gemm->count() > 0);
    if (!a->overwrite) check_out_holds_no_other_run(a->out, a->resume);
    if (a->device != "cuda" && a->precision == "bf16")
      throw Error("--precision bf16 needs --device cuda; the CPU computes in fp32");
    if (a->precision == "bf16" && gemm->count() > 0)
      throw Error("--gemm sets how an fp32 model's GEMMs run; with --precision bf16 every GEMM is bf16 already");
    if (a->precision == "bf16" && a->ema > 0)
      throw Error("--ema needs fp32 weights: an average kept in bf16 stops moving (each update is below a bf16 "
                  "ulp); use --precision fp32 with --ema");
    if (a->device == "cuda") {
#if defined(VTS_WITH_CUDA)
      if (!cuda::available())
        throw Error("--device cuda: " + cuda::unavailable_reason() + "; use --device cpu");
      cuda::set_fp32_gemm(cuda::fp32_gemm_from_string(a->gemm));
      if (a->precision == "bf16") return run_config<Cuda, bf16>(*a);
      return run_config<Cuda>(*a);
#else
      throw Error("--device cuda: this vts was built without the CUDA backend; configure with -DVTS_CUDA=ON");
#endif
    }
    return run_config<Cpu>(*a);
  };
}

}  // namespace vts::cli
