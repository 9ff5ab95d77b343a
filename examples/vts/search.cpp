// `vts search`: the nearest codes of one or many query images in an index file, as tables, JSON and
// PNG galleries; `vts export`: an index's codes as the files FAISS and Milvus load.
#include <algorithm>
#include <cstdint>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "gallery.hpp"
#include "model.hpp"
#include "vts/data/list_dataset.hpp"
#include "vts/data/source.hpp"
#include "vts/index/codes.hpp"
#include "vts/index/export.hpp"
#include "vts/index/index_file.hpp"
#include "vts/index/search.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/gemm.hpp"
#endif

namespace vts::cli {
namespace {

namespace fs = std::filesystem;

// Item i's labels: class names where the index has them (a folder dataset's), else numbers.
std::string label_text(const index::IndexFile& idx, const std::vector<std::string>& names, int64_t i) {
  if (!idx.has_labels()) return "-";
  std::string s;
  for (int64_t c = 0; c < idx.num_classes(); ++c)
    if (idx.labels().has(i, c))
      s += (s.empty() ? "" : ",") + (names.empty() ? std::to_string(c) : names[static_cast<size_t>(c)]);
  return s.empty() ? "none" : s;
}

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
  bool exclude_query = false;
  int workers = 1;
  int threads = 0;
  std::string device = "cpu";  // where the queries are encoded
  std::string gemm = "fp32";
};

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
  check_image_list("--queries", a.queries, "use --image for a single query");
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
    if (std::string q = data::detail::trim_blanks(line); !q.empty()) sources.push_back(std::move(q));
  }
  if (in.bad()) throw IoError("reading the query list '" + a.queries + "' failed");
  if (sources.size() == before)
    throw IoError("query list '" + a.queries + "': expected one image file or file#record per line, found none");
  return sources;
}

// A query as the index spells its sources: an absolute, normalised path, with its #record.
std::string comparable_source(const std::string& query) {
  const data::SourceRef ref = data::parse_source(query);
  const std::string file = absolute_path(ref.file);
  return ref.record >= 0 ? file + "#" + std::to_string(ref.record) : file;
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
    if (!record) decoded = data::decode_image(sources_[static_cast<size_t>(i)], channels_);
    const data::ImageU8& im = record ? *record : decoded;
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
#if defined(VTS_WITH_CUDA)
  if (a.device == "cuda") cuda::set_fp32_gemm(cuda::fp32_gemm_from_string(a.gemm));
#endif
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
  const std::unique_ptr<HashModel> model = load_hash_model(model_path, a.device);
  if (!(model->identity() == fp.identity))
    throw Error("model '" + model->checkpoint() + "' is not the one index '" + a.index +
                "' was built with (its codes would not be comparable):" + identity_difference(fp.identity, model->identity()));

  const int channels = static_cast<int>(model->identity().channels);
  auto query_ds = std::make_shared<QueryImages>(queries, channels, model->transform());
  const int64_t bits = model->identity().bits, n = query_ds->size();
  const int workers = one_query ? 0 : a.workers;
  const std::vector<float> u = model->encode(
      query_ds,
      {.batch_size = std::min<int64_t>(n, 64), .workers = workers, .flip_average = model->identity().flip_average});
  const index::PackedCodes q = index::pack_codes(u.data(), n, bits);

  // --exclude-query: the item that is the query itself (the same file or record, as the index
  // spells it: absolute and normalised) is not its own neighbour.
  std::vector<std::string> own_source(static_cast<size_t>(n));
  if (a.exclude_query)
    for (size_t i = 0; i < own_source.size(); ++i) own_source[i] = comparable_source(queries[i]);
  std::vector<Neighbours> results(static_cast<size_t>(n));
  auto add = [&](int64_t i, int64_t item, int32_t distance, size_t limit) {
    Neighbours& nb = results[static_cast<size_t>(i)];
    if (item < 0 || nb.items.size() >= limit) return;  // an empty slot (k > the index's size), or enough
    if (a.exclude_query && idx.path(item) == own_source[static_cast<size_t>(i)]) return;
    nb.items.push_back(item);
    nb.distances.push_back(distance);
  };
  const auto t0 = std::chrono::steady_clock::now();
  if (a.radius >= 0) {
    const index::RadiusResult r = index::radius_search(idx.codes(), q, a.radius);
    for (int64_t i = 0; i < n; ++i) {
      const auto begin = static_cast<size_t>(r.offsets[static_cast<size_t>(i)]);
      const auto end = static_cast<size_t>(r.offsets[static_cast<size_t>(i) + 1]);
      for (size_t j = begin; j < end; ++j) add(i, r.indices[j], r.distances[j], SIZE_MAX);
    }
  } else {
    // One more than asked, in case the query itself is among them; never more than the index holds
    // (the result has a slot for each, so -k 10^9 would otherwise ask for gigabytes of empty ones).
    const int64_t k = std::min<int64_t>(a.k + (a.exclude_query ? 1 : 0), idx.size());
    const index::KnnResult r = index::knn_search(idx.codes(), q, k);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < r.k; ++j) add(i, r.index(i, j), r.distance(i, j), static_cast<size_t>(a.k));
  }
  const double search_ms = seconds_since(t0) * 1e3;

  const bool json_stdout = a.json == "-";
  if (!json_stdout) {
    for (size_t i = 0; i < queries.size(); ++i) {
      const Neighbours& nb = results[i];
      std::printf("%squery %s: %zu %s among %lld codes of %lld bits", i ? "\n" : "", queries[i].c_str(),
                  nb.items.size(),
                  a.radius >= 0 ? ("within radius " + std::to_string(a.radius)).c_str() : "nearest",
                  static_cast<long long>(idx.size()), static_cast<long long>(bits));
      if (one_query) std::printf(" (%.2f ms)", search_ms);
      std::printf("\n%5s %9s  %-8s %s\n", "rank", "distance", "label", "path");
      for (size_t j = 0; j < nb.items.size(); ++j)
        std::printf("%5zu %9d  %-8s %.*s\n", j + 1, nb.distances[j],
                    label_text(idx, fp.contents.class_names, nb.items[j]).c_str(),
                    static_cast<int>(idx.path(nb.items[j]).size()), idx.path(nb.items[j]).data());
    }
    if (!one_query)
      std::printf("\n%zu queries, encoded on the %s, searched among %lld codes in %.2f ms\n", queries.size(),
                  a.device == "cuda" ? "GPU" : "CPU", static_cast<long long>(idx.size()), search_ms);
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
  auto* k = app.add_option("-k", a->k, "number of neighbours")->check(whole_number(1, kMaxCount))->capture_default_str();
  app.add_option("--radius", a->radius, "every item within this Hamming distance instead of the k nearest")
      ->check(whole_number(0, kMaxCount))->excludes(k);
  app.add_option("--model", a->model, "model checkpoint (default: the one the index was built with)");
  auto* gallery = app.add_option("--gallery", a->gallery,
                                 "PNG of the query and its neighbours; with several queries (or --json -) none unless "
                                 "given, and for several a folder of one PNG each")
                      ->capture_default_str();
  app.add_flag("--no-gallery", a->no_gallery, "do not write the PNG")->excludes(gallery);
  app.add_flag("--exclude-query", a->exclude_query,
               "an index item that is the query itself (the same file or record) is not listed as a neighbour");
  app.add_option("--json", a->json, "also write the results as JSON to this file ('-': JSON on stdout, no tables)");
  auto* workers = app.add_option("--workers", a->workers, "image decoding threads for several queries (default: up "
                                                          "to 4)")
                      ->check(whole_number(0, kMaxWorkers));
  app.add_option("--threads", a->threads, "compute threads (default: OMP_NUM_THREADS or all cores)")
      ->check(whole_number(1, kMaxThreads));
  app.add_option("--device", a->device,
                 "where the queries are encoded: cpu, or cuda (a build with the CUDA backend and the model's config)")
      ->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  auto* gemm = app.add_option("--gemm", a->gemm, "cuda: the GEMMs in fp32 (default), or on tf32 / bf16 tensor cores")
                   ->check(CLI::IsMember({"fp32", "tf32", "bf16"}))->capture_default_str();
  return [a, image, queries, gallery, workers, gemm] {
    check_gemm_needs_cuda(a->device, a->gemm, gemm->count() > 0);
    if (image->count() == 0 && queries->count() == 0)
      throw Error("vts search: expected a query: --image FILE (repeatable) or --queries DIR|LIST, found neither");
    a->gallery_given = gallery->count() > 0;
    std::vector<std::pair<std::string, std::string>> inputs = {
        {"--index", a->index}, {"--model", a->model}, {"--queries", a->queries}};
    for (const std::string& image : a->images) inputs.emplace_back("--image", image);
    check_output_is_not_an_input("--json", a->json, inputs);
    const bool gallery_written = !a->no_gallery && (a->gallery_given || (a->images.size() == 1 && a->queries.empty()));
    if (gallery_written) check_output_is_not_an_input("--gallery", a->gallery, inputs);
    if (workers->count() == 0) a->workers = default_workers("cpu");
    return run_search(*a);
  };
}

Run add_export_command(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  app.add_option("--index", a->index, "index file written by vts encode")->required()->check(CLI::ExistingFile);
  app.add_option("--format", a->format, "faiss: an IndexBinaryFlat file; milvus: vectors.npy and ids.npy in a folder")
      ->required()->check(CLI::IsMember({"faiss", "milvus"}));
  app.add_option("--out", a->out, "faiss: the file; milvus: the folder")->required();
  return [a] {
    check_output_is_not_an_input("--out", a->out, {{"--index", a->index}});
    return run_export(*a);
  };
}

}  // namespace vts::cli
