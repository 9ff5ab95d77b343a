#pragma once
// Retrieval protocols: which images train the model, which are queries, which form the database
// searched, and how many results mAP looks at (hashing-spec §1.4, §5). Every random choice comes
// from ProtocolOptions::seed, so a seed names a split.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vts/data/cifar10.hpp"
#include "vts/data/dataset.hpp"
#include "vts/data/fashion_mnist.hpp"
#include "vts/data/list_dataset.hpp"

namespace vts::data {

struct ProtocolOptions {
  // fashion-mnist: folder of the four IDX files ("" = kFashionMnistDir).
  // cifar10*: folder of data_batch_1.bin .. test_batch.bin (required).
  // list datasets and list: folder holding train.txt, test.txt and database.txt (required).
  // folder: the folder of class folders, <data_dir>/<class>/<image> (required).
  std::string data_dir;
  // List datasets and list: the folder the lists' image paths are relative to ("" = data_dir).
  std::string image_root;
  // Seed of the per-class split (fashion-mnist, cifar10*, folder). List datasets have fixed splits.
  uint64_t seed = 0;
  // Side of the output images; 0 = the protocol's own (fashion-mnist 28, cifar10* 224, lists and
  // folder 224).
  // cifar10* with 32 skips the resize.
  int image_size = 0;
  // List datasets and folder: shorter side after the first resize; 0 = image_size * 8 / 7 rounded
  // (256 for 224).
  int resize_size = 0;
  // Augmentation of the train split. Unset = the reference behaviour: list datasets (and folder)
  // flip and random-crop (spec §5.3), fashion-mnist and cifar10* do not augment. true on fashion-mnist turns
  // on random translation (fashion_pad) and flips (fashion_hflip); cifar10* has none to turn on.
  std::optional<bool> train_augment;
  int fashion_pad = 2;
  bool fashion_hflip = true;
  float fashion_erase = 0.0f;  // random-erasing probability of the augmented train split
  // Per-class query / train counts of fashion-mnist, cifar10* and folder; 0 = the protocol's
  // numbers. On the reference datasets only for small experiments: results with other counts are
  // not comparable to the references.
  int64_t query_per_class = 0;
  int64_t train_per_class = 0;
  // folder and list: channels the images are decoded to (3 RGB, 1 grey); 0 = 3.
  int channels = 0;
  // List datasets and folder: bytes of resized images to keep in memory, one ResizedImageCache
  // shared by the three splits (0: decode every image on every visit).
  int64_t image_cache_bytes = 0;
};

struct Split {
  std::shared_ptr<Dataset> train, query, database;
  // Number of ranked database items mAP considers; -1 = the whole database. (DeepHash slices
  // [0:-1] for -1 and so drops the last ranked item; the evaluation decides whether to copy that.)
  int64_t topk = -1;
  std::string name;
  int num_classes = 0;
  // folder: the class folders' names; list: classes.txt's, where given; empty for the others.
  std::vector<std::string> class_names;
};

// Query, train and remaining pool positions after a per-class split: for each class in order,
// its positions (ascending) are permuted and the first `query_per_class` go to the query set,
// the next `train_per_class` to train, the others to `rest`; each list is class-grouped.
struct ClassSplit {
  std::vector<int64_t> query, train, rest;
};

inline ClassSplit split_per_class(const std::vector<int32_t>& labels, int num_classes, int64_t query_per_class,
                                  int64_t train_per_class, Generator& gen, const std::string& what) {
  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(num_classes));
  for (size_t i = 0; i < labels.size(); ++i) {
    VTS_CHECK(labels[i] >= 0 && labels[i] < num_classes, what, ": item ", i, " has label ", labels[i],
              ", expected [0, ", num_classes, ")");
    by_class[static_cast<size_t>(labels[i])].push_back(static_cast<int64_t>(i));
  }
  VTS_CHECK(query_per_class >= 0 && train_per_class >= 1, what, ": expected at least 0 query and 1 train image ",
            "per class, found ", query_per_class, " query and ", train_per_class, " train");
  ClassSplit out;
  for (int c = 0; c < num_classes; ++c) {
    const auto& ids = by_class[static_cast<size_t>(c)];
    const auto n = static_cast<int64_t>(ids.size());
    // Compared without adding the two counts: from the command line either can be near 2^63.
    if (query_per_class > n || train_per_class > n - query_per_class)
      throw Error(vts::detail::concat(what, ": class ", c, " needs ", query_per_class, " query + ",
                                      train_per_class, " train images, found only ", n));
    const std::vector<int64_t> perm = gen.permutation(n);
    for (int64_t k = 0; k < n; ++k) {
      const int64_t id = ids[static_cast<size_t>(perm[static_cast<size_t>(k)])];
      if (k < query_per_class) out.query.push_back(id);
      else if (k < query_per_class + train_per_class) out.train.push_back(id);
      else out.rest.push_back(id);
    }
  }
  return out;
}

inline std::vector<std::string> protocol_names() {
  return {"fashion-mnist", "cifar10",      "cifar10-1",    "cifar10-2", "imagenet", "nuswide_21",
          "nuswide_21_m",  "nuswide_81_m", "coco",         "mirflickr", "voc2012",   "folder",
          "list"};
}

// How a protocol's mAP is taken (hashing-spec §1.4 and §4.3): the cut-off (−1: the whole database)
// and whether "the whole database" means the reference's slice without the last-ranked item. The
// slice is kept where reference logs exist to compare with; our own protocols (fashion-mnist,
// folder, list) rank every item.
struct MapSettings {
  int64_t topk = -1;
  bool all_but_last = false;
};
inline MapSettings map_settings(const std::string& protocol) {
  const bool ours = protocol == "fashion-mnist" || protocol == "folder" || protocol == "list";
  int64_t topk = -1;
  if (protocol == "imagenet") topk = 1000;
  if (protocol == "nuswide_21" || protocol == "nuswide_21_m" || protocol == "nuswide_81_m" || protocol == "coco")
    topk = 5000;
  return {topk, !ours};
}

namespace detail {

// The folder protocol's transforms: the list datasets' (train: random crop and flip), for grey
// images (channels 1) normalised with ImageNet's three means and stds averaged.
inline ImageTransform folder_transform(bool train, int resize, int size, int channels) {
  VTS_CHECK(channels == 0 || channels == 1 || channels == 3, "folder: expected 1 (grey) or 3 (RGB) channels, found ",
            channels);
  ImageTransform t = train ? ImageTransform::imagenet_train(resize, size) : ImageTransform::imagenet_eval(resize, size);
  if (channels == 1) {
    t.mean = {(t.mean[0] + t.mean[1] + t.mean[2]) / 3.0f};
    t.stddev = {(t.stddev[0] + t.stddev[1] + t.stddev[2]) / 3.0f};
  }
  return t;
}

// One cache of resized images for the splits of a protocol, or none.
inline std::shared_ptr<ResizedImageCache> protocol_cache(const ProtocolOptions& opt) {
  return opt.image_cache_bytes > 0 ? std::make_shared<ResizedImageCache>(opt.image_cache_bytes) : nullptr;
}

inline Split pool_protocol(const std::string& name, std::shared_ptr<const ImagePool> pool, int64_t query_pc,
                           int64_t train_pc, const ProtocolOptions& opt, const ImageTransform& train_t,
                           const ImageTransform& eval_t) {
  Generator gen(derive_seed(opt.seed, Stream::split, 0));
  ClassSplit s = split_per_class(pool->labels, pool->num_classes, opt.query_per_class ? opt.query_per_class : query_pc,
                                 opt.train_per_class ? opt.train_per_class : train_pc, gen, name);
  std::vector<int64_t> database;
  if (name == "cifar10-1") {  // database = train ∪ rest, train first
    database = s.train;
    database.insert(database.end(), s.rest.begin(), s.rest.end());
  } else if (name == "cifar10-2") {  // database = train
    database = s.train;
  } else {  // fashion-mnist, cifar10: the rest, disjoint from train and query
    database = std::move(s.rest);
  }
  if (name == "fashion-mnist") {
    // Our own protocol keeps every split in the files' order (classes interleaved) rather than the
    // reference CIFAR code's class-grouped order. mAP breaks Hamming-distance ties by database
    // position, and with a class-grouped database every tie would rank lower class numbers first:
    // a systematic bias by class, where file order is neutral.
    std::sort(s.query.begin(), s.query.end());
    std::sort(s.train.begin(), s.train.end());
    std::sort(database.begin(), database.end());
  }
  Split out;
  out.name = name;
  out.topk = -1;
  out.num_classes = pool->num_classes;
  out.train = std::make_shared<PoolDataset>(pool, std::move(s.train), train_t);
  out.query = std::make_shared<PoolDataset>(pool, std::move(s.query), eval_t);
  out.database = std::make_shared<PoolDataset>(pool, std::move(database), eval_t);
  return out;
}

}  // namespace detail

// The transform a protocol applies to its query and database images, for an image of `image_size`
// (0 = the protocol's own) — also what `vts encode` and `vts search` apply to images from files,
// so a query image is seen exactly as the database was. `channels` matters to folder only (1: grey,
// normalised with the mean and std of ImageNet's three channels averaged; 0 or 3: RGB).
inline ImageTransform eval_transform(const std::string& name, int image_size = 0, int resize_size = 0,
                                     int channels = 0) {
  if (name == "fashion-mnist") return fashion_mnist_transform({}, image_size ? image_size : 28);
  if (name == "cifar10" || name == "cifar10-1" || name == "cifar10-2") return cifar10_transform(image_size ? image_size : 224);
  const auto names = protocol_names();
  VTS_CHECK(std::find(names.begin(), names.end(), name) != names.end(), "eval_transform: unknown protocol '",
            name, "'");
  const int size = image_size ? image_size : 224;
  const int resize = resize_size ? resize_size : (size * 8 + 3) / 7;
  if (name == "folder" || name == "list") return detail::folder_transform(false, resize, size, channels);
  return ImageTransform::imagenet_eval(resize, size);
}

namespace detail {

// The folder protocol's split: per class (images in path order, then a seeded permutation as
// split_per_class draws it) the first `query` images are queries — 10 % of the class rounded, at
// least one, unless opt.query_per_class says — and of the others the first `train` train the model
// (all of them unless opt.train_per_class says); the database is every image that is not a query,
// the training images included, as in the DeepHash list protocols.
inline Split folder_protocol(const ProtocolOptions& opt) {
  VTS_CHECK(!opt.data_dir.empty(), "folder: needs a data directory (--data-dir, ProtocolOptions::data_dir): the "
                                   "folder of class folders, <dir>/<class>/<image>; none was given");
  VTS_CHECK(opt.query_per_class >= 0 && opt.train_per_class >= 0, "folder: expected per-class counts >= 0, found ",
            opt.query_per_class, " query and ", opt.train_per_class, " train");
  const int size = opt.image_size ? opt.image_size : 224;
  const int resize = opt.resize_size ? opt.resize_size : (size * 8 + 3) / 7;
  const int channels = opt.channels ? opt.channels : 3;
  const ImageTransform eval_t = folder_transform(false, resize, size, opt.channels);  // checks channels first
  const ImageTransform train_t = folder_transform(true, resize, size, opt.channels);
  const ListFile all = list_class_folders(opt.data_dir);
  const auto classes = static_cast<size_t>(all.num_classes);
  std::vector<std::vector<int64_t>> by_class(classes);
  for (int64_t i = 0; i < all.size(); ++i)
    for (size_t c = 0; c < classes; ++c)
      if (all.labels[static_cast<size_t>(i) * classes + c]) by_class[c].push_back(i);
  Generator gen(derive_seed(opt.seed, Stream::split, 0));
  std::vector<int64_t> query, train, database;
  for (size_t c = 0; c < classes; ++c) {
    const auto n = static_cast<int64_t>(by_class[c].size());
    const int64_t q = opt.query_per_class ? opt.query_per_class : std::max<int64_t>(1, (n + 5) / 10);
    // Compared without adding the counts: from the command line either can be near 2^63. Without
    // a train count, every image after the queries trains, and that must be at least one.
    const int64_t t = opt.train_per_class ? opt.train_per_class : std::max<int64_t>(n - q, 1);
    if (q >= n || t > n - q)
      throw Error(vts::detail::concat("folder '", opt.data_dir, "': class '", all.class_names[c], "' needs ", q,
                                      " query + ", t, " train images, found only ", n,
                                      " (every class needs at least one training image after its queries)"));
    const std::vector<int64_t> perm = gen.permutation(n);
    for (int64_t k = 0; k < n; ++k) {
      const int64_t id = by_class[c][static_cast<size_t>(perm[static_cast<size_t>(k)])];
      (k < q ? query : database).push_back(id);
      if (k >= q && k < q + t) train.push_back(id);
    }
  }
  // Class folders make the listing class-grouped, and mAP breaks Hamming-distance ties by database
  // position: a class-grouped database would rank lower-numbered classes first in every tie. So
  // each split comes in an order drawn from the seed (fashion-mnist keeps its interleaved file order
  // for the same reason).
  for (auto* ids : {&query, &train, &database}) {
    std::sort(ids->begin(), ids->end());
    const std::vector<int64_t> order = gen.permutation(static_cast<int64_t>(ids->size()));
    std::vector<int64_t> shuffled(ids->size());
    for (size_t k = 0; k < ids->size(); ++k) shuffled[k] = (*ids)[static_cast<size_t>(order[k])];
    *ids = std::move(shuffled);
  }
  const auto cache = protocol_cache(opt);
  auto make = [&](const std::vector<int64_t>& ids, const ImageTransform& t) {
    auto ds = std::make_shared<ListDataset>(select_entries(all, ids), opt.data_dir, t, channels);
    ds->set_cache(cache);
    return ds;
  };
  Split out;
  out.name = "folder";
  out.topk = -1;
  out.num_classes = all.num_classes;
  out.class_names = all.class_names;
  out.train = make(train, opt.train_augment.value_or(true) ? train_t : eval_t);
  out.query = make(query, eval_t);
  out.database = make(database, eval_t);
  return out;
}

// The list protocol: your own DeepHash lists, any number of classes, an image may have several.
// data_dir holds train.txt, test.txt (the queries) and database.txt, a path and C labels of 0/1 per
// line; C is train.txt's first entry's label count, and every line of the three files must have as
// many. An optional classes.txt names the label columns, one per line. The images go through the
// folder protocol's transforms (grey for channels 1); mAP ranks the whole database.
inline Split list_protocol(const ProtocolOptions& opt) {
  VTS_CHECK(!opt.data_dir.empty(), "list: needs a data directory (--data-dir, ProtocolOptions::data_dir): the "
                                   "folder holding train.txt, test.txt and database.txt; none was given");
  VTS_CHECK(opt.query_per_class == 0 && opt.train_per_class == 0,
            "list: the split is the one train.txt, test.txt and database.txt list; expected no per-class counts, "
            "found ", opt.query_per_class, " query and ", opt.train_per_class, " train");
  const int size = opt.image_size ? opt.image_size : 224;
  const int resize = opt.resize_size ? opt.resize_size : (size * 8 + 3) / 7;
  const int channels = opt.channels ? opt.channels : 3;
  const ImageTransform eval_t = folder_transform(false, resize, size, opt.channels);  // checks channels first
  const ImageTransform train_t = folder_transform(true, resize, size, opt.channels);
  const std::filesystem::path dir(opt.data_dir);
  const std::string train_list = (dir / "train.txt").string();
  const ListFirstEntry first = list_first_entry(train_list);
  if (first.labels == 0)
    throw IoError(vts::detail::concat(train_list, ":", first.line, ": expected an image path and its labels (0 or 1, ",
                                      "one per class), found ", first.fields, first.fields == 1 ? " field" : " fields",
                                      first.fields == 1 ? "" : " that are not all 0 or 1 after the path"));
  const int classes = first.labels;
  const std::string root = opt.image_root.empty() ? opt.data_dir : opt.image_root;
  const auto cache = protocol_cache(opt);
  auto load = [&](const char* file, const ImageTransform& t) {
    auto ds = std::make_shared<ListDataset>(read_list_file((dir / file).string(), classes), root, t, channels);
    ds->set_cache(cache);
    return ds;
  };
  Split out;
  out.name = "list";
  out.topk = -1;
  out.num_classes = classes;
  if (std::filesystem::exists(dir / "classes.txt"))
    out.class_names = read_class_names((dir / "classes.txt").string(), classes);
  out.train = load("train.txt", opt.train_augment.value_or(true) ? train_t : eval_t);
  out.query = load("test.txt", eval_t);
  out.database = load("database.txt", eval_t);
  return out;
}

}  // namespace detail

// Builds a protocol by name (see protocol_names()). Throws vts::Error for an unknown name or bad
// options and vts::IoError for missing or malformed files.
//   fashion-mnist  70,000 pooled; per class 100 query / 500 train / rest database
//                  → 1,000 / 5,000 / 64,000; database disjoint from both; topk = -1 (all).
//   cifar10        60,000 pooled; per class 100 / 500 → 1,000 / 5,000 / 54,000 (database = rest).
//   cifar10-1      as cifar10, database = train then rest → 59,000.
//   cifar10-2      per class 1,000 / 5,000 → 10,000 / 50,000 / 50,000 (database = train).
//   list datasets  train.txt / test.txt (query) / database.txt; C and topk per spec §1.4.
//   folder         your own images, <data_dir>/<class>/<image>: per class 10 % query (at least
//                  one), the rest train; database = all but the queries; topk = -1.
//   list           your own lists: train.txt / test.txt (query) / database.txt with any number
//                  of classes (multi-label allowed), optional classes.txt; topk = -1.
inline Split make_protocol(const std::string& name, const ProtocolOptions& opt = {}) {
  VTS_CHECK(opt.image_size >= 0 && opt.resize_size >= 0, "make_protocol: expected sizes >= 0, found image_size ",
            opt.image_size, " and resize_size ", opt.resize_size);
  if (name == "folder") return detail::folder_protocol(opt);
  if (name == "list") return detail::list_protocol(opt);
  if (name == "fashion-mnist") {
    const int size = opt.image_size ? opt.image_size : 28;
    auto pool = load_fashion_mnist(opt.data_dir.empty() ? std::string(kFashionMnistDir) : opt.data_dir);
    const FashionAugment aug{opt.train_augment.value_or(false), opt.fashion_pad, opt.fashion_hflip,
                             opt.fashion_erase};
    return detail::pool_protocol(name, pool, 100, 500, opt, fashion_mnist_transform(aug, size),
                                 eval_transform(name, size));
  }
  if (name == "cifar10" || name == "cifar10-1" || name == "cifar10-2") {
    VTS_CHECK(!opt.train_augment.value_or(false), name,
              ": expected no training augmentation (the reference protocol has none, spec §5.3), "
              "found train_augment = true");
    const int size = opt.image_size ? opt.image_size : 224;
    auto pool = load_cifar10(opt.data_dir);
    const bool big = name == "cifar10-2";
    const ImageTransform t = eval_transform(name, size);
    return detail::pool_protocol(name, pool, big ? 1000 : 100, big ? 5000 : 500, opt, t, t);
  }
  struct ListConfig {
    const char* name;
    int classes;
  };
  static const ListConfig lists[] = {{"imagenet", 100},    {"nuswide_21", 21}, {"nuswide_21_m", 21},
                                     {"nuswide_81_m", 81}, {"coco", 80},       {"mirflickr", 38},
                                     {"voc2012", 20}};
  for (const ListConfig& cfg : lists) {
    if (name != cfg.name) continue;
    VTS_CHECK(!opt.data_dir.empty(), name, ": needs a data directory (--data-dir, ProtocolOptions::data_dir): the "
                                           "folder holding train.txt, test.txt and database.txt; none was given");
    VTS_CHECK(opt.query_per_class == 0 && opt.train_per_class == 0, name,
              ": the split is the one train.txt, test.txt and database.txt list; expected no per-class counts, "
              "found ", opt.query_per_class, " query and ", opt.train_per_class, " train");
    const int size = opt.image_size ? opt.image_size : 224;
    const int resize = opt.resize_size ? opt.resize_size : (size * 8 + 3) / 7;
    const std::string root = opt.image_root.empty() ? opt.data_dir : opt.image_root;
    const std::filesystem::path dir(opt.data_dir);
    const auto cache = detail::protocol_cache(opt);
    auto load = [&](const char* file, const ImageTransform& t) {
      auto ds = std::make_shared<ListDataset>(read_list_file((dir / file).string(), cfg.classes), root, t);
      ds->set_cache(cache);
      return ds;
    };
    const ImageTransform eval_t = eval_transform(name, size, resize);
    Split out;
    out.name = name;
    out.topk = map_settings(name).topk;
    out.num_classes = cfg.classes;
    out.train = load("train.txt", opt.train_augment.value_or(true) ? ImageTransform::imagenet_train(resize, size)
                                                                    : eval_t);
    out.query = load("test.txt", eval_t);
    out.database = load("database.txt", eval_t);
    return out;
  }
  std::string known;
  for (const auto& n : protocol_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error(vts::detail::concat("make_protocol: unknown protocol '", name, "'; expected one of ", known));
}

}  // namespace vts::data
