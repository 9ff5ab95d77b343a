// `vts encode`, `vts search`, `vts export`: from a trained model to a searchable index of binary
// codes, queries by image (one, or a folder or list of them, with JSON results), the retrieval
// quality of one index against another, and the files FAISS and Milvus load.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "commands.hpp"
#include "gallery.hpp"
#include "model.hpp"
#include "svg_plot.hpp"
#include "vts/data/list_dataset.hpp"
#include "vts/data/protocol.hpp"
#include "vts/data/source.hpp"
#include "vts/eval/retrieval.hpp"
#include "vts/index/codes.hpp"
#include "vts/index/export.hpp"
#include "vts/index/index_file.hpp"
#include "vts/index/labels.hpp"
#include "vts/index/search.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/gemm.hpp"
#endif

namespace vts::cli {
namespace {

namespace fs = std::filesystem;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string absolute_or_empty(const std::string& p) { return p.empty() ? p : fs::absolute(p).lexically_normal().string(); }

// Item i's labels: class names where the index has them (a folder dataset's), else numbers.
std::string label_text(const index::IndexFile& idx, const std::vector<std::string>& names, int64_t i) {
  if (!idx.has_labels()) return "-";
  std::string s;
  for (int64_t c = 0; c < idx.num_classes(); ++c)
    if (idx.labels().has(i, c))
      s += (s.empty() ? "" : ",") + (names.empty() ? std::to_string(c) : names[static_cast<size_t>(c)]);
  return s.empty() ? "none" : s;
}

// The fields in which a model's identity differs from the one an index was encoded with.
std::string identity_difference(const ModelIdentity& want, const ModelIdentity& got) {
  const nlohmann::json w = want.to_json(), g = got.to_json();
  std::string diff;
  for (const auto& [key, value] : w.items())
    if (g[key] != value) diff += " " + key + ": index " + value.dump() + ", model " + g[key].dump() + ";";
  return diff;
}

// ---- vts encode ---------------------------------------------------------------------------------

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
  std::string images;  // a folder of images, or a DeepHash list file with --classes
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
  double save_every_minutes = 5;  // --update: save the codes so far this often
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
                       const data::Dataset& ds) {
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
  plan.previous_row.assign(static_cast<size_t>(ds.size()), -1);
  for (int64_t i = 0; i < ds.size(); ++i) {
    const std::string source = ds.source(i);
    const auto it = row_of.find(source);
    if (it == row_of.end()) {
      ++plan.added;
    } else if (change_time_ns(source) >= fp.contents.encode_started_ns - margin_ns) {
      ++plan.changed;
    } else {
      plan.previous_row[static_cast<size_t>(i)] = it->second;
      ++plan.kept;
      continue;
    }
    plan.to_encode.push_back(i);
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
      VTS_CHECK(a.classes > 0, "--images '", a.images, "' is a file: expected --classes C for a DeepHash list "
                               "(a path and C labels of 0/1 per line), or a folder of images");
      list = data::read_list_file(a.images, a.classes);
      root = a.image_root.empty() ? fs::path(a.images).parent_path().string() : a.image_root;
    }
    root = absolute_or_empty(root.empty() ? "." : root);
    ds = std::make_shared<data::ListDataset>(list, root, model.transform(), static_cast<int>(id.channels));
    contents.encode_started_ns = started_ns;
    what = a.images;
  } else {
    data::ProtocolOptions popt;
    popt.data_dir = absolute_or_empty(a.data_dir);
    popt.image_root = absolute_or_empty(a.image_root);
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
              id.head.c_str(), id.loss.c_str(), static_cast<long long>(id.bits), source.what.c_str(), static_cast<long long>(n),
              a.device == "cuda" ? "GPU" : "CPU");
  std::fflush(stdout);

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
  const auto bytes = static_cast<size_t>(codes.code_bytes());
  std::vector<uint8_t> has_code(static_cast<size_t>(n), 0);
  std::map<int64_t, std::string> unreadable;  // --skip-unreadable: rows left out, with the reason
  std::vector<int64_t> to_encode;
  std::optional<index::IndexFile> previous;
  if (a.update && fs::exists(a.out)) {
    previous.emplace(index::open_index_file(a.out));
    UpdatePlan plan = plan_update(*previous, a.out, *model, *ds);
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
      paths[j] = ds->source(rows[j]);
    }
    index::Labels labels;
    if (classes > 0) labels = index::Labels::from_multi_hot(part_labels, static_cast<int64_t>(classes));
    if (fs::path(a.out).has_parent_path()) fs::create_directories(fs::path(a.out).parent_path());
    index::write_index_file(a.out, {.codes = part, .labels = labels, .paths = paths, .fingerprint = model->fingerprint(contents)});
    return rows.size();
  };

  const hash::EncodeOptions encode_options{.batch_size = a.batch, .workers = a.workers, .flip_average = id.flip_average};
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
    auto last_save = std::chrono::steady_clock::now();
    size_t saved = 0;
    for (size_t begin = 0; begin < to_encode.size(); begin += chunk) {
      const std::vector<int64_t> ids(to_encode.begin() + static_cast<ptrdiff_t>(begin),
                                     to_encode.begin() + static_cast<ptrdiff_t>(std::min(begin + chunk, to_encode.size())));
      auto part = std::make_shared<data::ListDataset>(data::select_entries(source.list, ids), source.root,
                                                      model->transform(), static_cast<int>(id.channels));
      index::PackedCodes encoded;
      try {
        encoded = encode(part, &ids, [&](int64_t done, int64_t) {
          progress(static_cast<int64_t>(begin) + done, static_cast<int64_t>(to_encode.size()));
        });
      } catch (const std::exception& e) {
        if (begin == 0 && previous == std::nullopt) throw;  // nothing to save
        const size_t rows = write(false);
        throw Error(std::string(e.what()) + "\nprogress saved: " + a.out + " holds the " + std::to_string(rows) +
                    " images encoded so far; remove or replace the image and run the same command to continue");
      }
      for (size_t j = 0; j < ids.size(); ++j) {
        std::memcpy(codes.data() + static_cast<size_t>(ids[j]) * bytes, encoded.data() + j * bytes, bytes);
        has_code[static_cast<size_t>(ids[j])] = 1;
      }
      if (a.save_every_minutes > 0 && begin + chunk < to_encode.size() &&
          seconds_since(last_save) >= 60 * a.save_every_minutes) {
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

// ---- vts search ---------------------------------------------------------------------------------

struct SearchArgs {
  std::string index, model;
  std::vector<std::string> images;  // --image, in order: image files or sources as the index lists them
  std::string queries;              // --queries: a folder of images, or a text file of sources
  int64_t k = 10;
  int64_t radius = -1;
  std::string gallery = "gallery.png";
  bool gallery_given = false;
  bool no_gallery = false;
  std::string json;  // "-": JSON on stdout instead of the tables
  int workers = 1;
  int threads = 0;
};

std::string trimmed(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// The queries: every --image in order, then what --queries names — each image below a folder
// (sorted, as `vts encode --images` lists them), or the lines of a text file, one image file or
// dataset source (file#record) per line, blank lines skipped.
std::vector<std::string> query_sources(const SearchArgs& a) {
  std::vector<std::string> sources = a.images;
  if (a.queries.empty()) return sources;
  if (fs::is_directory(a.queries)) {
    for (const std::string& p : data::list_image_folder(a.queries).images)
      sources.push_back((fs::path(a.queries) / p).string());
    return sources;
  }
  VTS_CHECK(!data::detail::is_image_file_name(fs::path(a.queries).filename().string()), "--queries '", a.queries,
            "': expected a folder of images or a text file listing queries, found an image file (use --image for "
            "a single query)");
  std::ifstream in(a.queries, std::ios::binary);
  if (!in) throw IoError("cannot open the query list '" + a.queries + "': " + std::strerror(errno));
  std::string line;
  int64_t line_number = 0;
  const size_t before = sources.size();
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find('\0') != std::string::npos)
      throw IoError("query list '" + a.queries + "', line " + std::to_string(line_number) +
                    ": expected text (one image file or file#record per line), found a NUL byte");
    if (std::string q = trimmed(line); !q.empty()) sources.push_back(std::move(q));
  }
  if (in.bad()) throw IoError("reading the query list '" + a.queries + "' failed");
  if (sources.size() == before)
    throw IoError("query list '" + a.queries + "': expected one image file or file#record per line, found none");
  return sources;
}

// The queries seen through the model's evaluation transform. Records of IDX and CIFAR containers
// are read up front through one reader, which parses each container once (records are small);
// image files are decoded when the loader asks for them, so a folder of photos is never all in
// memory at once.
class QueryImages final : public data::Dataset {
 public:
  QueryImages(std::vector<std::string> sources, int channels, data::ImageTransform t)
      : sources_(std::move(sources)), channels_(channels), transform_(std::move(t)), records_(sources_.size()) {
    VTS_CHECK(transform_.fixed_output(), "QueryImages: expected a transform with a fixed output size");
    data::SourceImageReader reader;
    for (size_t i = 0; i < sources_.size(); ++i)
      if (data::parse_source(sources_[i]).record >= 0) records_[i] = reader.read(sources_[i], channels_);
    const auto [h, w] = transform_.output_size(1, 1);
    spec_ = {channels_, h, w};
  }
  int64_t size() const override { return static_cast<int64_t>(sources_.size()); }
  int num_classes() const override { return 0; }
  data::ImageSpec spec() const override { return spec_; }
  void get(int64_t i, float* image, float*, Generator& rng) const override {
    check_index(i);
    const auto& record = records_[static_cast<size_t>(i)];
    data::ImageU8 decoded;
    const data::ImageU8& im = record ? *record : (decoded = data::decode_image(sources_[static_cast<size_t>(i)], channels_));
    transform_.apply(im.pixels.data(), im.height, im.width, im.channels, image, rng);
  }
  void get_label(int64_t, float*) const override {}
  std::string source(int64_t i) const override { return sources_.at(static_cast<size_t>(i)); }

 private:
  std::vector<std::string> sources_;
  int channels_;
  data::ImageTransform transform_;
  std::vector<std::optional<data::ImageU8>> records_;
  data::ImageSpec spec_;
};

// One query's neighbours, in rank order.
struct Neighbours {
  std::vector<int64_t> items;
  std::vector<int32_t> distances;
};

// Gallery file of query q of n in folder `dir`: its number, then its file name with characters
// other than letters, digits, '.', '-' and '_' replaced (a source's '#' included).
std::string gallery_file_name(const std::string& dir, size_t q, size_t n, const std::string& source) {
  std::string name = fs::path(source).filename().string();
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  std::string number = std::to_string(q + 1);
  number.insert(0, std::to_string(n).size() - number.size(), '0');
  return (fs::path(dir) / (number + "-" + fs::path(name).stem().string() + ".png")).string();
}

void write_query_gallery(const std::string& path, data::SourceImageReader& reader, int channels,
                         const std::string& query, const Neighbours& nb, const index::IndexFile& idx,
                         const std::vector<std::string>& class_names) {
  std::vector<GalleryTile> tiles;
  tiles.push_back({reader.read(query, channels), "query", true});
  const size_t shown = std::min<size_t>(nb.items.size(), 50);  // a gallery, not the whole radius
  for (size_t j = 0; j < shown; ++j) {
    const std::string source(idx.path(nb.items[j]));
    std::string caption = "d=" + std::to_string(nb.distances[j]);
    if (idx.has_labels()) caption += (class_names.empty() ? " c" : " ") + label_text(idx, class_names, nb.items[j]);
    try {
      tiles.push_back({reader.read(source, channels), caption, false});
    } catch (const IoError& e) {
      throw IoError("gallery: neighbour " + std::to_string(j + 1) + " (" + source + ") of query " + query + ": " +
                    e.what() + "; pass --no-gallery to list the results without images");
    }
  }
  write_gallery_png(path, tiles);
}

nlohmann::ordered_json results_json(const SearchArgs& a, const index::IndexFile& idx, const IndexFingerprint& fp,
                            const std::string& model_path, const std::vector<std::string>& queries,
                            const std::vector<Neighbours>& results) {
  nlohmann::ordered_json j;
  j["index"] = a.index;
  j["model"] = model_path;
  j["bits"] = idx.bits();
  j["items"] = idx.size();
  if (a.radius >= 0) j["radius"] = a.radius;
  else j["k"] = a.k;
  if (!fp.contents.class_names.empty()) j["classes"] = fp.contents.class_names;
  nlohmann::ordered_json& list = j["queries"] = nlohmann::ordered_json::array();
  for (size_t q = 0; q < queries.size(); ++q) {
    nlohmann::ordered_json hits = nlohmann::ordered_json::array();
    for (size_t r = 0; r < results[q].items.size(); ++r) {
      const int64_t item = results[q].items[r];
      nlohmann::ordered_json hit = {{"rank", r + 1}, {"distance", results[q].distances[r]}, {"item", item},
                            {"source", std::string(idx.path(item))}};
      if (idx.has_labels()) {
        nlohmann::ordered_json labels = nlohmann::ordered_json::array();
        for (int64_t c = 0; c < idx.num_classes(); ++c)
          if (idx.labels().has(item, c)) {
            if (fp.contents.class_names.empty()) labels.push_back(c);
            else labels.push_back(fp.contents.class_names[static_cast<size_t>(c)]);
          }
        hit["labels"] = std::move(labels);
      }
      hits.push_back(std::move(hit));
    }
    list.push_back({{"query", queries[q]}, {"results", std::move(hits)}});
  }
  return j;
}

int run_search(const SearchArgs& a) {
  if (a.threads > 0) cpu::set_num_threads(a.threads);
  const index::IndexFile idx = index::open_index_file(a.index);
  const IndexFingerprint fp = parse_index_fingerprint(idx.fingerprint(), a.index);
  if (!fp.contents.class_names.empty() && static_cast<int64_t>(fp.contents.class_names.size()) != idx.num_classes())
    throw IoError("index '" + a.index + "': expected " + std::to_string(idx.num_classes()) +
                  " class names (one per label column), found " + std::to_string(fp.contents.class_names.size()));
  const std::string model_path = a.model.empty() ? fp.checkpoint : a.model;
  VTS_CHECK(!model_path.empty(), "index '", a.index, "' names no model checkpoint; pass --model");
  if (a.model.empty() && !fs::exists(model_path))
    throw IoError("index '" + a.index + "' was built with the model '" + model_path +
                  "', which no longer exists; pass --model with that checkpoint (or a copy of it)");
  const std::vector<std::string> queries = query_sources(a);
  const bool one_query = queries.size() == 1;
  // Several queries write galleries only into a folder named by --gallery (a default file name
  // would be overwritten query after query), and JSON on stdout is for programs, which did not ask
  // for a PNG in the current folder.
  const bool galleries = !a.no_gallery && (a.gallery_given || (one_query && a.json != "-"));
  if (galleries && !one_query) {
    VTS_CHECK(!fs::exists(a.gallery) || fs::is_directory(a.gallery), "--gallery '", a.gallery,
              "': with several queries, expected a folder for one PNG per query, found a file");
    fs::create_directories(a.gallery);
  }
  const std::unique_ptr<HashModel> model = load_hash_model(model_path);
  if (!(model->identity() == fp.identity))
    throw Error("model '" + model->checkpoint() + "' is not the one index '" + a.index +
                "' was built with (its codes would not be comparable):" + identity_difference(fp.identity, model->identity()));

  const int channels = static_cast<int>(model->identity().channels);
  auto query_ds = std::make_shared<QueryImages>(queries, channels, model->transform());
  const int64_t bits = model->identity().bits, n = query_ds->size();
  const int workers = one_query ? 0 : a.workers;
  const std::vector<float> u = model->encode(
      query_ds, {.batch_size = std::min<int64_t>(n, 64), .workers = workers, .flip_average = model->identity().flip_average});
  const index::PackedCodes q = index::pack_codes(u.data(), n, bits);

  std::vector<Neighbours> results(static_cast<size_t>(n));
  const auto t0 = std::chrono::steady_clock::now();
  if (a.radius >= 0) {
    const index::RadiusResult r = index::radius_search(idx.codes(), q, a.radius);
    for (int64_t i = 0; i < n; ++i) {
      const auto b = static_cast<size_t>(r.offsets[static_cast<size_t>(i)]);
      const auto e = static_cast<size_t>(r.offsets[static_cast<size_t>(i) + 1]);
      results[static_cast<size_t>(i)].items.assign(r.indices.begin() + b, r.indices.begin() + e);
      results[static_cast<size_t>(i)].distances.assign(r.distances.begin() + b, r.distances.begin() + e);
    }
  } else {
    const index::KnnResult r = index::knn_search(idx.codes(), q, a.k);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < r.k; ++j)
        if (r.index(i, j) >= 0) {
          results[static_cast<size_t>(i)].items.push_back(r.index(i, j));
          results[static_cast<size_t>(i)].distances.push_back(r.distance(i, j));
        }
  }
  const double search_ms = seconds_since(t0) * 1e3;

  const bool json_stdout = a.json == "-";
  if (!json_stdout) {
    for (size_t i = 0; i < queries.size(); ++i) {
      const Neighbours& nb = results[i];
      std::printf("%squery %s: %zu %s among %lld codes of %lld bits", i ? "\n" : "", queries[i].c_str(), nb.items.size(),
                  a.radius >= 0 ? ("within radius " + std::to_string(a.radius)).c_str() : "nearest",
                  static_cast<long long>(idx.size()), static_cast<long long>(bits));
      if (one_query) std::printf(" (%.2f ms)", search_ms);
      std::printf("\n%5s %9s  %-8s %s\n", "rank", "distance", "label", "path");
      for (size_t j = 0; j < nb.items.size(); ++j)
        std::printf("%5zu %9d  %-8s %.*s\n", j + 1, nb.distances[j], label_text(idx, fp.contents.class_names, nb.items[j]).c_str(),
                    static_cast<int>(idx.path(nb.items[j]).size()), idx.path(nb.items[j]).data());
    }
    if (!one_query)
      std::printf("\n%zu queries searched among %lld codes in %.2f ms\n", queries.size(),
                  static_cast<long long>(idx.size()), search_ms);
  }
  if (!a.json.empty()) {
    const std::string text = results_json(a, idx, fp, model->checkpoint(), queries, results).dump(1) + "\n";
    if (json_stdout) {
      std::fwrite(text.data(), 1, text.size(), stdout);
    } else {
      if (fs::path(a.json).has_parent_path()) fs::create_directories(fs::path(a.json).parent_path());
      write_text(a.json, text);
      std::printf("results: %s\n", a.json.c_str());
    }
  }
  // The tables and the JSON are out before the galleries, which read every neighbour's image.
  std::fflush(stdout);
  if (galleries) {
    data::SourceImageReader reader;
    for (size_t i = 0; i < queries.size(); ++i) {
      const std::string path = one_query ? a.gallery : gallery_file_name(a.gallery, i, queries.size(), queries[i]);
      write_query_gallery(path, reader, channels, queries[i], results[i], idx, fp.contents.class_names);
    }
    std::fprintf(json_stdout ? stderr : stdout, "%s: %s\n", one_query ? "gallery" : "galleries", a.gallery.c_str());
  }
  return 0;
}

// ---- vts evaluate -------------------------------------------------------------------------------

struct EvaluateArgs {
  std::string queries, database, out;
  int64_t topk = 0;  // 0: the protocol's for a protocol's query and database splits, else -1 (all)
  bool reference_slice = false;
  std::vector<int64_t> precision_at = {100, 1000};
  int64_t radius = 2;
  int threads = 0;
};

struct EvalIndex {
  std::string path;
  index::IndexFile file;
  IndexFingerprint fp;
};

EvalIndex open_labelled_index(const std::string& path, const char* role) {
  EvalIndex e{path, index::open_index_file(path), {}};
  e.fp = parse_index_fingerprint(e.file.fingerprint(), path);
  if (!e.file.has_labels())
    throw Error(std::string(role) + " index '" + path + "' holds no labels, and mAP needs them: encode a labelled "
                "dataset split, --images DIR --class-folders, or --images list.txt --classes C");
  const auto& names = e.fp.contents.class_names;
  if (!names.empty() && static_cast<int64_t>(names.size()) != e.file.num_classes())
    throw IoError("index '" + path + "': expected " + std::to_string(e.file.num_classes()) +
                  " class names (one per label column), found " + std::to_string(names.size()));
  return e;
}

// The queries' and the database's labels over one set of columns. Where both indexes name their
// classes, columns are matched by name, so a held-out folder may hold fewer classes, or others; a
// query class the database lacks gets a column of its own, and nothing is relevant to its queries.
// Otherwise the two must have as many columns, taken to mean the same classes.
struct AlignedLabels {
  index::Labels queries, database;
  std::vector<std::string> names;  // of the columns, where known
  int64_t query_only_classes = 0;
};

index::Labels relabelled(index::LabelsView from, const std::vector<int64_t>& column_of, int64_t columns) {
  std::vector<uint8_t> hot(static_cast<size_t>(from.count * columns), 0);
  for (int64_t i = 0; i < from.count; ++i)
    for (int64_t c = 0; c < from.classes; ++c)
      if (from.has(i, c)) hot[static_cast<size_t>(i * columns + column_of[static_cast<size_t>(c)])] = 1;
  return index::Labels::from_multi_hot(hot, columns);
}

AlignedLabels align_labels(const EvalIndex& q, const EvalIndex& db) {
  const auto &qn = q.fp.contents.class_names, &dn = db.fp.contents.class_names;
  const int64_t qc = q.file.num_classes(), dc = db.file.num_classes();
  AlignedLabels out;
  std::vector<int64_t> q_column(static_cast<size_t>(qc)), db_column(static_cast<size_t>(dc));
  for (int64_t c = 0; c < dc; ++c) db_column[static_cast<size_t>(c)] = c;
  if (!qn.empty() && !dn.empty()) {
    out.names = dn;
    for (int64_t c = 0; c < qc; ++c) {
      const auto it = std::find(dn.begin(), dn.end(), qn[static_cast<size_t>(c)]);
      if (it != dn.end()) {
        q_column[static_cast<size_t>(c)] = it - dn.begin();
      } else {
        q_column[static_cast<size_t>(c)] = static_cast<int64_t>(out.names.size());
        out.names.push_back(qn[static_cast<size_t>(c)]);
        ++out.query_only_classes;
      }
    }
  } else {
    if (qc != dc)
      throw Error("query index '" + q.path + "' has " + std::to_string(qc) + " label columns and database index '" +
                  db.path + "' " + std::to_string(dc) + ": expected the same classes (indexes of class folders are "
                  "matched by class name; these do not both name theirs)");
    for (int64_t c = 0; c < qc; ++c) q_column[static_cast<size_t>(c)] = c;
    out.names = qn.empty() ? dn : qn;
  }
  const auto columns = std::max<int64_t>(static_cast<int64_t>(out.names.size()), dc);
  out.queries = relabelled(q.file.labels(), q_column, columns);
  out.database = relabelled(db.file.labels(), db_column, columns);
  return out;
}

int run_evaluate(const EvaluateArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  if (a.threads > 0) cpu::set_num_threads(a.threads);
  const EvalIndex q = open_labelled_index(a.queries, "query");
  const EvalIndex db = open_labelled_index(a.database, "database");
  if (!(q.fp.identity == db.fp.identity))
    throw Error("the query index '" + a.queries + "' and the database index '" + a.database +
                "' were encoded by different models (their codes are not comparable):" +
                identity_difference(q.fp.identity, db.fp.identity));
  const AlignedLabels labels = align_labels(q, db);

  // A protocol's own query and database splits are scored as `vts train` scores them.
  data::MapSettings settings;
  const IndexContents &qc = q.fp.contents, &dc = db.fp.contents;
  const bool protocol = qc.split == "query" && dc.split == "database" && qc.dataset == dc.dataset;
  if (protocol) settings = data::map_settings(qc.dataset);
  if (a.topk != 0) settings.topk = a.topk;
  if (a.reference_slice) settings.all_but_last = true;

  eval::EvalOptions eo;
  eo.topk = settings.topk;
  eo.minus_one = settings.all_but_last ? eval::TopkAll::all_but_last : eval::TopkAll::all;
  eo.pr_curve = true;
  eo.precision_at = a.precision_at;
  eo.radius = a.radius;
  const eval::EvalResult r = eval::evaluate(q.file.codes(), labels.queries, db.file.codes(), labels.database, eo);

  std::unordered_set<std::string_view> db_sources;
  for (int64_t i = 0; i < db.file.size(); ++i) db_sources.insert(db.file.path(i));
  int64_t shared = 0;
  for (int64_t i = 0; i < q.file.size(); ++i) shared += db_sources.count(q.file.path(i)) > 0;

  const std::string cutoff = settings.topk < 0 ? (settings.all_but_last ? "all (all but the last)" : "all")
                                               : std::to_string(settings.topk);
  std::printf("vts evaluate: %lld queries against %lld database items, %lld bits, %zu classes%s\n",
              static_cast<long long>(q.file.size()), static_cast<long long>(db.file.size()),
              static_cast<long long>(db.file.bits()), labels.names.empty() ? static_cast<size_t>(db.file.num_classes())
                                                                             : labels.names.size(),
              protocol ? (" (" + qc.dataset + "'s query and database splits)").c_str() : "");
  std::printf("mAP@%s = %.4f", cutoff.c_str(), r.map);
  for (size_t i = 0; i < a.precision_at.size(); ++i)
    std::printf("  P@%lld = %.4f", static_cast<long long>(a.precision_at[i]), r.precision_at[i]);
  if (a.radius >= 0)
    std::printf("  P(r<=%lld) = %.4f (%.1f %% of queries retrieve something, %.1f items on average)",
                static_cast<long long>(a.radius), r.radius.precision, 100 * r.radius.queries_with_hits,
                r.radius.mean_retrieved);
  std::printf("\n");
  if (labels.query_only_classes > 0) {
    std::string missing;
    for (size_t c = labels.names.size() - static_cast<size_t>(labels.query_only_classes); c < labels.names.size(); ++c)
      missing += (missing.empty() ? "'" : ", '") + labels.names[c] + "'";
    std::printf("note: the database has no class %s; nothing is relevant to those queries (AP 0)\n", missing.c_str());
  }
  if (shared > 0)
    std::printf("note: %lld of %lld queries are also in the database (the same source): each finds itself at "
                "distance 0, which raises mAP; encode disjoint query and database images for a fair figure\n",
                static_cast<long long>(shared), static_cast<long long>(q.file.size()));

  if (!a.out.empty()) {
    fs::create_directories(a.out);
    nlohmann::ordered_json m;
    m["map"] = r.map;
    m["topk"] = settings.topk;
    m["all_but_last"] = settings.all_but_last;
    for (size_t i = 0; i < a.precision_at.size(); ++i)
      m["precision_at_" + std::to_string(a.precision_at[i])] = r.precision_at[i];
    if (a.radius >= 0) {
      const std::string key = "precision_radius" + std::to_string(a.radius);
      m[key] = r.radius.precision;
      m[key + "_queries_with_hits"] = r.radius.queries_with_hits;
      m[key + "_mean_retrieved"] = r.radius.mean_retrieved;
    }
    m["bits"] = db.file.bits();
    m["queries"] = q.file.size();
    m["database"] = db.file.size();
    m["queries_in_database"] = shared;
    if (!labels.names.empty()) m["classes"] = labels.names;
    m["query_index"] = fs::absolute(a.queries).lexically_normal().string();
    m["database_index"] = fs::absolute(a.database).lexically_normal().string();
    m["model"] = q.fp.identity.to_json();
    m["seconds"] = seconds_since(t0);
    write_text((fs::path(a.out) / "metrics.json").string(), m.dump(2) + "\n");
    nlohmann::ordered_json per_query = nlohmann::ordered_json::array();
    for (int64_t i = 0; i < q.file.size(); ++i)
      per_query.push_back({{"query", std::string(q.file.path(i))}, {"ap", r.average_precision[static_cast<size_t>(i)]}});
    write_text((fs::path(a.out) / "per_query.json").string(), per_query.dump(1) + "\n");
    const eval::PrCurve pr = eval::pr_curve_reference_points(r.pr);
    const eval::PrCurve plot = eval::subsample_pr_curve(r.pr, 400);
    write_text((fs::path(a.out) / "pr_curve.json").string(),
               nlohmann::json{{"index", pr.index}, {"P", pr.precision}, {"R", pr.recall}}.dump() + "\n");
    const std::string title = "Precision-recall, " + q.fp.identity.loss + ", " + std::to_string(db.file.bits()) +
                              " bits (mAP " + std::to_string(r.map).substr(0, 6) + ")";
    write_text((fs::path(a.out) / "pr_curve.svg").string(),
               svg_line_plot(title, "recall", "precision", {{q.fp.identity.loss, plot.recall, plot.precision}}));
    std::printf("wrote metrics.json, per_query.json, pr_curve.json and pr_curve.svg to %s\n", a.out.c_str());
  }
  return 0;
}

// ---- vts export ---------------------------------------------------------------------------------

struct ExportArgs {
  std::string index, format, out;
};

int run_export(const ExportArgs& a) {
  const index::IndexFile idx = index::open_index_file(a.index);
  if (a.format == "faiss") {
    index::export_faiss_binary_flat(a.out, idx.codes());
    std::printf("wrote FAISS IndexBinaryFlat (d = %lld, %lld codes) to %s; faiss.read_index_binary loads it and "
                "search returns row numbers of %s\n",
                static_cast<long long>(idx.bits()), static_cast<long long>(idx.size()), a.out.c_str(), a.index.c_str());
    return 0;
  }
  fs::create_directories(a.out);
  const std::string vectors = (fs::path(a.out) / "vectors.npy").string(), ids = (fs::path(a.out) / "ids.npy").string();
  index::export_milvus(vectors, ids, idx.codes());
  std::printf("wrote Milvus bulk-insert files %s (uint8 %lld x %lld, BINARY_VECTOR dim %lld) and %s (int64 row "
              "numbers of %s)\n",
              vectors.c_str(), static_cast<long long>(idx.size()), static_cast<long long>(idx.bits() / 8),
              static_cast<long long>(idx.bits()), ids.c_str(), a.index.c_str());
  return 0;
}

}  // namespace

Run add_encode_command(CLI::App& app) {
  auto a = std::make_shared<EncodeArgs>();
  app.add_option("--model", a->model, "checkpoint written by vts train, or its --out folder (best.safetensors)")
      ->required()->check(CLI::ExistingPath);
  app.add_option("--out", a->out, "index file to write")->required();
  auto* images = app.add_option("--images", a->images,
                                "a folder of images (searched recursively), or a DeepHash list file with --classes")
                     ->check(CLI::ExistingPath);
  app.add_option("--classes", a->classes, "label count of a --images list file")->check(CLI::PositiveNumber);
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
  app.add_option("--seed", a->seed, "seed of the protocol split (default: the training run's)");
  app.add_option("--batch", a->batch, "images per forward pass")->check(CLI::PositiveNumber)->capture_default_str();
  auto* workers = app.add_option("--workers", a->workers,
                                 "image decoding threads (default: up to 4 on the CPU, up to 8 with --device cuda)")
                      ->check(CLI::NonNegativeNumber);
  app.add_option("--threads", a->threads, "compute threads (default: OMP_NUM_THREADS or all cores)");
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
                 "encode that stops continues from there")
      ->check(CLI::NonNegativeNumber)->capture_default_str()->needs(update);
  app.add_flag("--skip-unreadable", a->skip_unreadable,
               "leave out images that cannot be read or decoded (listed at the end) instead of stopping; "
               "with --update they are tried again next time")
      ->needs(images);
  app.add_flag("--quiet", a->quiet, "no progress line");
  return [a, gemm, workers] {
    if (workers->count() == 0) a->workers = default_workers(a->device);
    if (a->device != "cuda" && gemm->count() > 0)
      throw Error("--gemm " + a->gemm + " applies to --device cuda; the CPU GEMMs are Eigen's fp32");
    return run_encode(*a);
  };
}

Run add_search_command(CLI::App& app) {
  auto a = std::make_shared<SearchArgs>();
  app.add_option("--index", a->index, "index file written by vts encode")->required()->check(CLI::ExistingFile);
  auto* image = app.add_option("--image", a->images,
                               "query image: an image file, or a dataset source as the index lists them "
                               "(file#record); repeat for several queries");
  auto* queries = app.add_option("--queries", a->queries,
                                 "several queries: a folder (every image below it), or a text file with one image "
                                 "file or file#record per line")
                      ->check(CLI::ExistingPath);
  auto* k = app.add_option("-k", a->k, "number of neighbours")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--radius", a->radius, "every item within this Hamming distance instead of the k nearest")
      ->check(CLI::NonNegativeNumber)->excludes(k);
  app.add_option("--model", a->model, "model checkpoint (default: the one the index was built with)");
  auto* gallery = app.add_option("--gallery", a->gallery,
                                 "PNG of the query and its neighbours; with several queries (or --json -) none unless "
                                 "given, and for several a folder of one PNG each")
                      ->capture_default_str();
  app.add_flag("--no-gallery", a->no_gallery, "do not write the PNG")->excludes(gallery);
  app.add_option("--json", a->json, "also write the results as JSON to this file ('-': JSON on stdout, no tables)");
  auto* workers = app.add_option("--workers", a->workers, "image decoding threads for several queries (default: up "
                                                          "to 4)")
                      ->check(CLI::NonNegativeNumber);
  app.add_option("--threads", a->threads, "compute threads (default: OMP_NUM_THREADS or all cores)");
  return [a, image, queries, gallery, workers] {
    if (image->count() == 0 && queries->count() == 0)
      throw Error("vts search: expected a query: --image FILE (repeatable) or --queries DIR|LIST, found neither");
    a->gallery_given = gallery->count() > 0;
    if (workers->count() == 0) a->workers = default_workers("cpu");
    return run_search(*a);
  };
}

Run add_evaluate_command(CLI::App& app) {
  auto a = std::make_shared<EvaluateArgs>();
  app.add_option("--queries", a->queries, "index of the queries (labelled), written by vts encode")
      ->required()->check(CLI::ExistingFile);
  app.add_option("--database", a->database, "index of the database (labelled), written by the same model")
      ->required()->check(CLI::ExistingFile);
  app.add_option("--topk", a->topk,
                 "mAP@k (0: the protocol's when the indexes are a protocol's query and database splits, as vts "
                 "train reports; otherwise, and for -1, the whole database)")
      ->capture_default_str();
  app.add_flag("--reference-slice", a->reference_slice,
               "mAP over the whole database leaves out the last-ranked item, as the reference code does (set "
               "already for the reference protocols' splits)");
  app.add_option("--precision-at", a->precision_at, "P@k for each of these k")
      ->delimiter(',')->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--radius", a->radius, "precision within this Hamming radius (-1: none)")->capture_default_str();
  app.add_option("--out", a->out, "folder for metrics.json, per_query.json, pr_curve.json and pr_curve.svg");
  app.add_option("--threads", a->threads, "compute threads (default: OMP_NUM_THREADS or all cores)");
  return [a] {
    if (a->topk < -1) throw Error("--topk: expected k > 0, 0 (the protocol's) or -1 (all), found " + std::to_string(a->topk));
    if (a->radius < -1) throw Error("--radius: expected r >= 0 or -1 (none), found " + std::to_string(a->radius));
    return run_evaluate(*a);
  };
}

Run add_export_command(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  app.add_option("--index", a->index, "index file written by vts encode")->required()->check(CLI::ExistingFile);
  app.add_option("--format", a->format, "faiss: an IndexBinaryFlat file; milvus: vectors.npy and ids.npy in a folder")
      ->required()->check(CLI::IsMember({"faiss", "milvus"}));
  app.add_option("--out", a->out, "faiss: the file; milvus: the folder")->required();
  return [a] { return run_export(*a); };
}

}  // namespace vts::cli
