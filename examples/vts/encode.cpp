// `vts encode`: a dataset split, a folder of images or a list file through a trained model into an
// index file of binary codes; `--update` brings an index of image files up to date with the files.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "commands.hpp"
#include "model.hpp"
#include "stop_signals.hpp"
#include "vts/data/list_dataset.hpp"
#include "vts/data/protocol.hpp"
#include "vts/index/codes.hpp"
#include "vts/index/index_file.hpp"
#include "vts/index/labels.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/gemm.hpp"
#endif

namespace vts::cli {
namespace {

namespace fs = std::filesystem;

// --skip-unreadable: an image that cannot be read or decoded goes through the model as a blank and
// is remembered, so that its row can be left out of the index, instead of stopping the encode.
class SkipUnreadable final : public data::Dataset {
 public:
  explicit SkipUnreadable(std::shared_ptr<const data::Dataset> inner) : inner_(std::move(inner)) {}
  int64_t size() const override { return inner_->size(); }
  int num_classes() const override { return inner_->num_classes(); }
  data::ImageSpec spec() const override { return inner_->spec(); }
  void get(int64_t i, float* image, float* label, Generator& rng) const override {
    try {
      inner_->get(i, image, label, rng);
    } catch (const IoError& e) {
      std::fill_n(image, spec().numel(), 0.0f);
      inner_->get_label(i, label);
      const std::lock_guard lock(mutex_);
      failures_.emplace(i, e.what());
    }
  }
  void get_label(int64_t i, float* label) const override { inner_->get_label(i, label); }
  std::string source(int64_t i) const override { return inner_->source(i); }
  // The images that failed, by index, with the reason.
  std::map<int64_t, std::string> failures() const {
    const std::lock_guard lock(mutex_);
    return failures_;
  }

 private:
  std::shared_ptr<const data::Dataset> inner_;
  mutable std::mutex mutex_;
  mutable std::map<int64_t, std::string> failures_;
};

struct EncodeArgs {
  std::string model, out;
  std::string split = "database";
  std::string images;  // a folder of images, a DeepHash list file, or a list of image paths
  int classes = 0;
  bool class_folders = false;  // --images DIR holds DIR/<class>/<image>: labels from the folders
  std::string dataset, data_dir, image_root;
  int64_t seed = -1;  // -1: the training run's
  int64_t batch = 256;
  int workers = 1;
  int threads = 0;
  std::string device = "cpu";
  std::string gemm = "fp32";
  bool update = false;  // keep the codes of --out's images unchanged since it was encoded
  bool overwrite = false;  // replace what --out holds
  double save_every_minutes = 5;  // --update: save the codes so far this often
  double time_limit = 0;  // --update: seconds from the start after which it stops, saved (0: none)
  bool skip_unreadable = false;   // leave undecodable images out instead of stopping
  bool quiet = false;
};

// The later of a file's modification and status-change times, in ns since the epoch, of the file
// and of a link to it; the maximum when it cannot be read (then it counts as changed). A file
// replaced by one with an older modification time (mv, cp -p, tar) still has a new status-change
// time, which no program can set.
int64_t change_time_ns(const std::string& path) {
  const auto ns = [](const timespec& t) { return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec; };
  struct stat target {}, link {};
  if (::stat(path.c_str(), &target) != 0 || ::lstat(path.c_str(), &link) != 0) return INT64_MAX;
  return std::max({ns(target.st_mtim), ns(target.st_ctim), ns(link.st_mtim), ns(link.st_ctim)});
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// `vts encode --update`: which images of the listing keep their code from the previous index.
struct UpdatePlan {
  std::vector<int64_t> previous_row;  // per image: its row in the previous index, or -1 to encode it
  std::vector<int64_t> to_encode;     // the images with -1, in listing order
  int64_t kept = 0, added = 0, changed = 0, removed = 0;
};

// An image keeps its code when the previous index lists the same source and the file has not
// changed since 2 s before that encode started (the margin covers file systems whose timestamps
// are whole seconds or two). Refuses an index of another model, or one that does not record when
// it was encoded (a dataset split, or one written before --update existed).
UpdatePlan plan_update(const index::IndexFile& previous, const std::string& path, const HashModel& model,
                       const std::vector<std::string>& sources) {
  const IndexFingerprint fp = parse_index_fingerprint(previous.fingerprint(), path);
  if (!(fp.identity == model.identity()))
    throw Error("--update: index '" + path + "' was encoded by another model (its codes would not be comparable):" +
                identity_difference(fp.identity, model.identity()) + " encode afresh without --update");
  if (fp.contents.encode_started_ns < 0)
    throw Error("--update: index '" + path + "' does not record when its images were encoded (it holds a dataset "
                "split, or was written before vts encode --update existed); encode afresh without --update");
  std::unordered_map<std::string_view, int64_t> row_of;
  for (int64_t r = 0; r < previous.size(); ++r) row_of.emplace(previous.path(r), r);
  constexpr int64_t margin_ns = 2'000'000'000;
  UpdatePlan plan;
  plan.previous_row.assign(sources.size(), -1);
  for (size_t i = 0; i < sources.size(); ++i) {
    const std::string& source = sources[i];
    const auto it = row_of.find(source);
    if (it == row_of.end()) {
      ++plan.added;
    } else if (change_time_ns(source) >= fp.contents.encode_started_ns - margin_ns) {
      ++plan.changed;
    } else {
      plan.previous_row[i] = it->second;
      ++plan.kept;
      continue;
    }
    plan.to_encode.push_back(static_cast<int64_t>(i));
  }
  plan.removed = previous.size() - plan.kept - plan.changed;
  return plan;
}

// What `vts encode` encodes: image files (--images, a folder or a list file) or a split of a
// dataset protocol, with what the index's fingerprint says about them.
struct EncodeSource {
  std::shared_ptr<const data::Dataset> ds;
  IndexContents contents;
  std::string what;     // for the first line of output
  data::ListFile list;  // --images: the listing, and the folder its paths are relative to
  std::string root;
};

EncodeSource encode_source(const EncodeArgs& a, const HashModel& model, int64_t started_ns) {
  const ModelIdentity& id = model.identity();
  EncodeSource out;
  auto& [ds, contents, what, list, root] = out;
  if (!a.images.empty()) {
    if (fs::is_directory(a.images)) {
      list = a.class_folders ? data::list_class_folders(a.images) : data::list_image_folder(a.images);
      contents.class_names = list.class_names;
      root = a.images;
    } else {
      VTS_CHECK(!a.class_folders, "--class-folders needs --images to be a folder (DIR/<class>/<image>), found the "
                                  "file '", a.images, "'");
      check_image_list("--images", a.images, "to encode one image, put it in a folder of its own");
      // A DeepHash list (a path and C labels of 0/1 per line; C from --classes or from the first
      // entry), or a plain list of image paths, one per line.
      const int classes = a.classes > 0 ? a.classes : data::list_first_entry(a.images).labels;
      list = classes > 0 ? data::read_list_file(a.images, classes) : data::read_path_list(a.images);
      if (const fs::path names = fs::path(a.images).parent_path() / "classes.txt"; classes > 0 && fs::exists(names))
        list.class_names = data::read_class_names(names.string(), classes);  // as --dataset list does
      contents.class_names = list.class_names;
      root = a.image_root.empty() ? fs::path(a.images).parent_path().string() : a.image_root;
    }
    root = absolute_path(root.empty() ? "." : root);
    ds = std::make_shared<data::ListDataset>(list, root, model.transform(), static_cast<int>(id.channels));
    contents.encode_started_ns = started_ns;
    what = a.images;
  } else {
    data::ProtocolOptions popt;
    popt.data_dir = absolute_path(a.data_dir);
    popt.image_root = absolute_path(a.image_root);
    popt.seed = a.seed >= 0 ? static_cast<uint64_t>(a.seed) : model.seed();
    popt.image_size = static_cast<int>(id.image);
    popt.channels = static_cast<int>(id.channels);
    popt.train_augment = false;  // every split through the evaluation transform
    const std::string name = a.dataset.empty() ? id.dataset : a.dataset;
    if (name == id.dataset) {  // the training run's split, as its evaluation saw it
      popt.query_per_class = model.query_per_class();
      popt.train_per_class = model.train_per_class();
    }
    const data::Split split = data::make_protocol(name, popt);
    ds = a.split == "query" ? split.query : a.split == "train" ? split.train : split.database;
    contents.class_names = split.class_names;
    contents.dataset = name;
    contents.split = a.split;
    what = name + " " + a.split + " split";
  }
  return out;
}

int run_encode(const EncodeArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t started_ns = now_ns();  // before any image is listed or read: see plan_update
  if (a.threads > 0) cpu::set_num_threads(a.threads);
#if defined(VTS_WITH_CUDA)
  if (a.device == "cuda") cuda::set_fp32_gemm(cuda::fp32_gemm_from_string(a.gemm));
#endif
  const std::unique_ptr<HashModel> model = load_hash_model(a.model, a.device);
  const ModelIdentity& id = model->identity();

  EncodeSource source = encode_source(a, *model, started_ns);
  const std::shared_ptr<const data::Dataset>& ds = source.ds;
  const IndexContents& contents = source.contents;
  const int64_t n = ds->size();
  std::printf("vts encode: %s (%s head, %s, %lld bits) on %s: %lld images, on the %s\n", id.config.c_str(),
              id.head.c_str(), id.loss.c_str(), static_cast<long long>(id.bits), source.what.c_str(),
              static_cast<long long>(n),
              a.device == "cuda" ? "GPU" : "CPU");
  std::fflush(stdout);

  // Ctrl-C, SIGTERM or --time-limit during an update: it stops before its next batch and saves the
  // codes so far, as it does every --save-every minutes, so that the same command continues from
  // there. (In place before the update says what it will encode, which a script may wait for before
  // it signals.)
  std::optional<StopRequest> stop;
  if (a.update) stop.emplace(a.time_limit, t0);
  const bool tty = isatty(fileno(stderr)) && !a.quiet;
  const auto t_enc = std::chrono::steady_clock::now();
  int64_t reported = 0;
  auto progress = [&](int64_t done, int64_t total) {
    const double s = seconds_since(t_enc);
    const bool last = done == total;
    if (!(tty || (last && !a.quiet)) || (!last && done - reported < 64 && done < total)) return;
    reported = done;
    const double rate = done / std::max(s, 1e-9);
    std::fprintf(stderr, "%sencoding %lld/%lld  %.0f img/s  ETA %.0fs%s", tty ? "\r" : "", static_cast<long long>(done),
                 static_cast<long long>(total), rate, (total - done) / std::max(rate, 1e-9), tty && !last ? "   " : "\n");
  };
  // The index's rows in listing order: codes kept from the previous index (--update) and codes
  // encoded now; has_code[i] once row i has one.
  index::PackedCodes codes(n, id.bits);
  std::vector<std::string> sources(static_cast<size_t>(n));  // of every row: for --update, and the index
  for (int64_t i = 0; i < n; ++i) sources[static_cast<size_t>(i)] = ds->source(i);
  const auto bytes = static_cast<size_t>(codes.code_bytes());
  std::vector<uint8_t> has_code(static_cast<size_t>(n), 0);
  std::map<int64_t, std::string> unreadable;  // --skip-unreadable: rows left out, with the reason
  std::vector<int64_t> to_encode;
  std::optional<index::IndexFile> previous;
  if (a.update && fs::exists(a.out)) {
    try {
      previous.emplace(index::open_index_file(a.out));
    } catch (const IoError& e) {
      throw IoError(std::string(e.what()) + "; --update starts from the index at --out: remove or move it to "
                    "encode every image afresh");
    }
    UpdatePlan plan = plan_update(*previous, a.out, *model, sources);
    std::printf("update of %s: %lld unchanged (codes kept), %lld new, %lld changed, %lld removed\n", a.out.c_str(),
                static_cast<long long>(plan.kept), static_cast<long long>(plan.added),
                static_cast<long long>(plan.changed), static_cast<long long>(plan.removed));
    for (int64_t i = 0; i < n; ++i)
      if (const int64_t r = plan.previous_row[static_cast<size_t>(i)]; r >= 0) {
        std::memcpy(codes.data() + static_cast<size_t>(i) * bytes, previous->codes().code(r), bytes);
        has_code[static_cast<size_t>(i)] = 1;
      }
    to_encode = std::move(plan.to_encode);
  } else {
    if (a.update) std::printf("update of %s: no index there yet, every image is new\n", a.out.c_str());
    to_encode.resize(static_cast<size_t>(n));
    std::iota(to_encode.begin(), to_encode.end(), int64_t{0});
  }
  std::fflush(stdout);

  const std::vector<float> all_labels = ds->num_classes() > 0 ? data::all_labels(*ds) : std::vector<float>{};
  const auto classes = static_cast<size_t>(ds->num_classes());
  // Writes the rows that have their code: all of them at the end, the ones so far when --update saves.
  auto write = [&](bool complete) {
    std::vector<int64_t> rows;
    for (int64_t i = 0; i < n; ++i)
      if ((complete || has_code[static_cast<size_t>(i)]) && !unreadable.contains(i)) rows.push_back(i);
    index::PackedCodes part(static_cast<int64_t>(rows.size()), id.bits);
    std::vector<float> part_labels(rows.size() * classes);
    std::vector<std::string> paths(rows.size());
    for (size_t j = 0; j < rows.size(); ++j) {
      const auto i = static_cast<size_t>(rows[j]);
      std::memcpy(part.data() + j * bytes, codes.data() + i * bytes, bytes);
      std::copy_n(all_labels.begin() + static_cast<ptrdiff_t>(i * classes), classes,
                  part_labels.begin() + static_cast<ptrdiff_t>(j * classes));
      paths[j] = sources[i];
    }
    index::Labels labels;
    if (classes > 0) labels = index::Labels::from_multi_hot(part_labels, static_cast<int64_t>(classes));
    if (fs::path(a.out).has_parent_path()) fs::create_directories(fs::path(a.out).parent_path());
    const std::string fingerprint = model->fingerprint(contents);
    index::write_index_file(a.out, {.codes = part, .labels = labels, .paths = paths, .fingerprint = fingerprint});
    return rows.size();
  };

  const hash::EncodeOptions encode_options{
      .batch_size = a.batch, .workers = a.workers, .flip_average = id.flip_average};
  // Encodes `part` (rows `ids` of the listing, or all of it); undecodable images are left out or stop it.
  auto encode = [&](std::shared_ptr<const data::Dataset> part, const std::vector<int64_t>* ids,
                    const std::function<void(int64_t, int64_t)>& report) {
    std::shared_ptr<const SkipUnreadable> skipping;
    if (a.skip_unreadable) part = skipping = std::make_shared<SkipUnreadable>(std::move(part));
    const std::vector<float> u = model->encode(part, encode_options, report);
    if (skipping)
      for (auto& [j, why] : skipping->failures()) unreadable.emplace(ids ? (*ids)[static_cast<size_t>(j)] : j, why);
    return index::pack_codes(u.data(), part->size(), id.bits);  // bit = output > 0
  };
  if (!a.update) {
    codes = encode(ds, nullptr, progress);
  } else {
    // An update is saved every --save-every minutes and when an image fails, so that an encode that
    // stops (an undecodable image, a killed process) continues from there when run again.
    const auto chunk = static_cast<size_t>(4 * a.batch);
    // A save part-way through must not leave fewer codes than the index it replaces: a moved folder
    // or a bulk chmod makes every image new or changed, and one undecodable image early on would
    // otherwise replace a full index with an empty one.
    const size_t previous_rows = previous ? static_cast<size_t>(previous->size()) : 0;
    auto rows_with_codes = [&] {
      size_t rows = 0;
      for (int64_t i = 0; i < n; ++i) rows += has_code[static_cast<size_t>(i)] && !unreadable.contains(i);
      return rows;
    };
    auto last_save = std::chrono::steady_clock::now();
    size_t saved = 0;
    struct StopRequested {};
    auto stopped = [&] {
      const char* by = stop->by().c_str();
      const char* newline = tty ? "\n" : "";
      const size_t rows = rows_with_codes();
      if (rows == 0)
        std::fprintf(stderr, "%svts encode: stopped by %s before any code was encoded or kept; %s %s\n", newline, by,
                     a.out.c_str(), previous ? "is left as it was" : "was not written");
      else if (rows < previous_rows)
        std::fprintf(stderr, "%svts encode: stopped by %s; %s is left as it was (the %zu codes encoded or kept so "
                     "far are fewer than the %zu it holds)\n", newline, by, a.out.c_str(), rows, previous_rows);
      else
        std::fprintf(stderr, "%svts encode: stopped by %s; progress saved: %s holds the %zu images encoded so far: "
                     "run the same command to continue\n", newline, by, a.out.c_str(), write(false));
      return stop->exit_status();
    };
    for (size_t begin = 0; begin < to_encode.size(); begin += chunk) {
      if (stop->requested()) return stopped();
      const size_t end = std::min(begin + chunk, to_encode.size());
      const std::vector<int64_t> ids(to_encode.begin() + static_cast<ptrdiff_t>(begin),
                                     to_encode.begin() + static_cast<ptrdiff_t>(end));
      auto part = std::make_shared<data::ListDataset>(data::select_entries(source.list, ids), source.root,
                                                      model->transform(), static_cast<int>(id.channels));
      index::PackedCodes encoded;
      try {
        encoded = encode(part, &ids, [&](int64_t done, int64_t) {
          if (stop->requested()) throw StopRequested{};
          progress(static_cast<int64_t>(begin) + done, static_cast<int64_t>(to_encode.size()));
        });
      } catch (const StopRequested&) {
        return stopped();
      } catch (const std::exception& e) {
        if (const size_t rows = rows_with_codes(); rows == 0 || rows < previous_rows) {
          if (!previous) throw;  // nothing to save
          throw Error(std::string(e.what()) + "\n" + a.out + " is left as it was: the " + std::to_string(rows) +
                      " codes encoded or kept so far are fewer than the " + std::to_string(previous_rows) +
                      " it holds; remove or replace the image and run the same command again");
        }
        const size_t rows = write(false);
        throw Error(std::string(e.what()) + "\nprogress saved: " + a.out + " holds the " + std::to_string(rows) +
                    " images encoded so far; remove or replace the image and run the same command to continue");
      }
      for (size_t j = 0; j < ids.size(); ++j) {
        std::memcpy(codes.data() + static_cast<size_t>(ids[j]) * bytes, encoded.data() + j * bytes, bytes);
        has_code[static_cast<size_t>(ids[j])] = 1;
      }
      if (a.save_every_minutes > 0 && begin + chunk < to_encode.size() &&
          seconds_since(last_save) >= 60 * a.save_every_minutes && rows_with_codes() >= previous_rows) {
        saved = write(false);
        last_save = std::chrono::steady_clock::now();
        if (!a.quiet) std::fprintf(stderr, "%ssaved %zu codes to %s\n", tty ? "\n" : "", saved, a.out.c_str());
      }
    }
  }
  if (!unreadable.empty()) {
    std::fprintf(stderr, "left out %zu image%s that could not be read (--skip-unreadable):\n", unreadable.size(),
                 unreadable.size() == 1 ? "" : "s");
    int shown = 0;
    for (const auto& [i, why] : unreadable)
      if (++shown <= 20) std::fprintf(stderr, "  %s\n", why.c_str());
    if (shown > 20) std::fprintf(stderr, "  ... and %d more\n", shown - 20);
  }
  const size_t rows = write(true);
  std::printf("wrote %zu codes of %lld bits%s to %s (%.1f MB) in %.1fs\n", rows,
              static_cast<long long>(id.bits), ds->num_classes() > 0 ? " with labels" : "", a.out.c_str(),
              static_cast<double>(fs::file_size(a.out)) / 1e6, seconds_since(t0));
  return 0;
}

// An index can take hours to encode (a large database on the CPU), so a repeated command must not
// replace one by accident, as a second vts train must not replace a run: --update brings it up to
// date, --overwrite replaces it.
void check_out_holds_no_index(const std::string& out) {
  std::error_code ec;
  if (!std::filesystem::exists(out, ec)) return;
  std::string held = "a file that is not an index";
  if (std::filesystem::is_directory(out, ec)) {
    held = "a folder";
  } else {
    try {
      index::IndexOpenOptions header_only;
      header_only.verify_checksum = false;
      const index::IndexFile f = index::open_index_file(out, header_only);
      held = vts::detail::concat("an index of ", f.size(), " codes of ", f.bits(), " bits");
    } catch (const IoError&) {
    }
  }
  throw Error("--out " + out + " already holds " + held +
              ": bring an index up to date with --update (images), replace it with --overwrite, or choose another "
              "--out");
}

}  // namespace

Run add_encode_command(CLI::App& app) {
  auto a = std::make_shared<EncodeArgs>();
  app.add_option("--model", a->model, "checkpoint written by vts train, or its --out folder (best.safetensors)")
      ->required()->check(CLI::ExistingPath);
  app.add_option("--out", a->out, "index file to write")->required();
  auto* images = app.add_option("--images", a->images,
                                "a folder of images (searched recursively), a DeepHash list file (a path and 0/1 "
                                "labels per line; names from classes.txt beside it), or a file of image paths")
                     ->check(CLI::ExistingPath);
  app.add_option("--classes", a->classes, "label count of a --images list file (default: its first entry's)")
      ->check(whole_number(1, int64_t{1} << 20));
  app.add_flag("--class-folders", a->class_folders,
               "--images DIR holds DIR/<class>/<image>: every image, labelled by its folder (names kept for vts "
               "search)")
      ->needs(images);
  app.add_option("--split", a->split, "which split of the dataset protocol to encode (without --images)")
      ->check(CLI::IsMember({"database", "query", "train"}))->capture_default_str()->excludes(images);
  app.add_option("--dataset", a->dataset, "dataset protocol (default: the one the model was trained on)")
      ->excludes(images);
  app.add_option("--data-dir", a->data_dir, "dataset folder (as for vts train)");
  app.add_option("--image-root", a->image_root, "folder the list files' image paths are relative to");
  app.add_option("--seed", a->seed, "seed of the protocol split (default: the training run's)")
      ->check(whole_number(0, std::numeric_limits<int64_t>::max()));
  app.add_option("--batch", a->batch, "images per forward pass")->check(whole_number(1, kMaxBatch))->capture_default_str();
  auto* workers = app.add_option("--workers", a->workers,
                                 "image decoding threads (default: up to 4 on the CPU, up to 8 with --device cuda)")
                      ->check(whole_number(0, kMaxWorkers));
  app.add_option("--threads", a->threads, "compute threads (default: OMP_NUM_THREADS or all cores)")
      ->check(whole_number(1, kMaxThreads));
  app.add_option("--device", a->device,
                 "cpu, or cuda (a build with the CUDA backend and the model's config; see --gemm)")
      ->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  auto* gemm = app.add_option("--gemm", a->gemm,
                              "cuda: the GEMMs in full fp32 (codes as the CPU's, up to rounding), or on tf32 / bf16 "
                              "tensor cores (faster; outputs near zero may change sign)")
                   ->check(CLI::IsMember({"fp32", "tf32", "bf16"}))->capture_default_str();
  auto* update = app.add_flag("--update", a->update,
               "--out is an index of the same model and --images: keep the codes of images unchanged since it was "
               "encoded, encode the new and changed ones, drop the removed ones")
      ->needs(images);
  app.add_option("--save-every", a->save_every_minutes,
                 "--update: save the codes so far every this many minutes (0: only at the end), so that an "
                 "encode that stops continues from there (never while they are fewer than the index held)")
      ->check(non_negative_number())->capture_default_str()->needs(update);
  auto time_limit = std::make_shared<std::string>();
  app.add_option("--time-limit", *time_limit,
                 "--update: stop after this long from the start (3h50m, 90m, 5400 = seconds), before the next "
                 "batch, with the codes so far saved as at --save-every: the same command continues from there; "
                 "exits with status 75 (Ctrl-C and SIGTERM stop the same way, with status 130 and 143)")
      ->check(positive_duration())->needs(update);
  app.add_flag("--skip-unreadable", a->skip_unreadable,
               "leave out images that cannot be read or decoded (listed at the end) instead of stopping; "
               "with --update they are tried again next time")
      ->needs(images);
  app.add_flag("--overwrite", a->overwrite,
               "replace the index (or file) at --out; without it or --update an existing --out is refused")
      ->excludes(update);
  app.add_flag("--quiet", a->quiet, "no progress line");
  return [a, gemm, workers, time_limit] {
    if (!time_limit->empty()) a->time_limit = parse_duration(*time_limit);
    if (workers->count() == 0) a->workers = default_workers(a->device);
    check_gemm_needs_cuda(a->device, a->gemm, gemm->count() > 0);
    // --update reads --out on purpose (it is the index being brought up to date).
    check_output_is_not_an_input("--out", a->out, {{"--model", a->model}, {"--images", a->images}});
    if (!a->update && !a->overwrite) check_out_holds_no_index(a->out);
    return run_encode(*a);
  };
}

}  // namespace vts::cli
