// Vision Transformer hashing through the library alone — what `vts train` does, in one page, for
// research code that wants its own loop around it:
//
//   vts_example_hashing [--data-dir DIR] [--epochs N] [--bits K] [--quiet]
//
// With --data-dir, DIR holds your images in class folders (DIR/<class>/<image>, the `folder`
// protocol: 10 % of each class are queries, the rest train and form the database). Without it, the
// Fashion-MNIST files of Debian's dataset-fashion-mnist, kept small so the example runs in seconds:
// 20 queries and 100 training images per class, the first 5,000 of the remaining images as the
// database (through a Dataset of our own below: a dataset is five virtual functions).
//
// The model is a type: ViTTiny28 backbone, the paper's all-token hash head, CSQ loss — swap any of
// the three in the `using` lines. After training it encodes queries and database to K-bit codes,
// scores mAP over the whole database, and lists the nearest codes of the first query. Exits 1 if
// the mAP is not at least 0.4 (chance is ~0.1 with ten classes), so it doubles as a smoke test.
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "vts/data/data.hpp"
#include "vts/eval/retrieval.hpp"
#include "vts/hash/losses.hpp"
#include "vts/hash/trainer.hpp"
#include "vts/index/codes.hpp"
#include "vts/index/search.hpp"
#include "vts/nn/vit.hpp"

namespace {

using namespace vts;

using Config = nn::ViTTiny28;                                  // 1 x 28 x 28 grey images
using Network = hash::HashNetwork<nn::ViT<Config>, hash::AllTokenHead<>>;
using Loss = hash::loss::Csq<>;

// The first n items of another dataset: a user-defined Dataset, as the loader and encoder take any.
class FirstItems final : public data::Dataset {
 public:
  FirstItems(std::shared_ptr<const data::Dataset> inner, int64_t n)
      : inner_(std::move(inner)), n_(std::min(n, inner_->size())) {}
  int64_t size() const override { return n_; }
  int num_classes() const override { return inner_->num_classes(); }
  data::ImageSpec spec() const override { return inner_->spec(); }
  void get(int64_t i, float* image, float* label, Generator& rng) const override {
    check_index(i);
    inner_->get(i, image, label, rng);
  }
  void get_label(int64_t i, float* label) const override {
    check_index(i);
    inner_->get_label(i, label);
  }
  std::string source(int64_t i) const override { return inner_->source(i); }

 private:
  std::shared_ptr<const data::Dataset> inner_;
  int64_t n_;
};

std::string class_of(const data::Split& split, const data::Dataset& ds, int64_t i) {
  std::vector<float> row(static_cast<size_t>(ds.num_classes()));
  ds.get_label(i, row.data());
  for (size_t c = 0; c < row.size(); ++c)
    if (row[c] > 0.5f) return split.class_names.empty() ? std::to_string(c) : split.class_names[c];
  return "-";
}

}  // namespace

int main(int argc, char** argv) {
  std::string data_dir;
  int64_t epochs = 12, bits = 64;
  bool quiet = false;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (!std::strcmp(argv[i], "--data-dir") && has_value) data_dir = argv[++i];
    else if (!std::strcmp(argv[i], "--epochs") && has_value) epochs = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--bits") && has_value) bits = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--quiet")) quiet = true;
    else {
      std::fprintf(stderr, "usage: %s [--data-dir DIR] [--epochs N] [--bits K] [--quiet]\n", argv[0]);
      return 2;
    }
  }
  const uint64_t seed = 1;
  try {
    // 1. The data: a protocol gives train, query and database splits, already transformed to the
    //    model's input (size and channels come from the config).
    data::ProtocolOptions popt;
    popt.seed = seed;
    popt.image_size = static_cast<int>(Config::image);
    popt.channels = static_cast<int>(Config::channels);
    if (!data_dir.empty()) {
      popt.data_dir = data_dir;
      popt.image_cache_bytes = int64_t{1} << 30;  // decode each image once
    } else {
      popt.query_per_class = 20;
      popt.train_per_class = 100;
    }
    data::Split split = data::make_protocol(data_dir.empty() ? "fashion-mnist" : "folder", popt);
    if (data_dir.empty()) {
      split.database = std::make_shared<FirstItems>(split.database, 5000);
      split.class_names = {"t-shirt", "trouser", "pullover", "dress", "coat",
                           "sandal",  "shirt",   "sneaker",  "bag",   "boot"};
    }
    std::printf("%s: %lld train, %lld query, %lld database images, %d classes\n", split.name.c_str(),
                static_cast<long long>(split.train->size()), static_cast<long long>(split.query->size()),
                static_cast<long long>(split.database->size()), split.num_classes);

    // 2. The model and its loss, seeded; the trainer owns both, plus AdamW and the schedule.
    Generator gen(seed);
    Network net(bits, gen);
    hash::loss::Config loss_config;
    loss_config.bits = bits;
    loss_config.classes = split.num_classes;
    loss_config.train_size = split.train->size();  // losses with a memory bank size it by this
    Loss loss(loss_config, gen);
    hash::Trainer<Network, Loss> trainer(std::move(net), std::move(loss),
                                         {.name = "adamw", .lr = 1e-3, .weight_decay = 0.05, .schedule = "cosine"},
                                         seed);

    // 3. Training: the loader shuffles per epoch from the seed; the same seed gives the same bits.
    data::Loader loader(split.train, {.batch_size = 64, .shuffle = true, .num_workers = 1, .seed = seed});
    for (int64_t e = 0; e < epochs; ++e) {
      const double mean_loss = trainer.train_epoch(loader, e, epochs, [](const hash::StepReport&) {});
      if (!quiet) std::printf("epoch %lld/%lld  loss %.4f\n", static_cast<long long>(e + 1),
                              static_cast<long long>(epochs), mean_loss);
    }

    // 4. Codes: the network's outputs, one row of K per image; bit k is output k > 0.
    const std::vector<float> uq = trainer.encode(split.query, 256, 1);
    const std::vector<float> udb = trainer.encode(split.database, 256, 1);
    const index::PackedCodes query_codes = index::pack_codes(uq.data(), split.query->size(), bits);
    const index::PackedCodes db_codes = index::pack_codes(udb.data(), split.database->size(), bits);

    // 5. mAP over the whole database (relevant: a shared class), and one query's neighbours.
    const auto query_labels = index::Labels::from_multi_hot(data::all_labels(*split.query), split.num_classes);
    const auto db_labels = index::Labels::from_multi_hot(data::all_labels(*split.database), split.num_classes);
    eval::EvalOptions eval_options;
    eval_options.minus_one = eval::TopkAll::all;  // not the reference's [0:-1] slice
    const eval::EvalResult r = eval::evaluate(query_codes, query_labels, db_codes, db_labels, eval_options);
    std::printf("mAP@all = %.4f\n", r.map);
    const index::KnnResult nn = index::knn_search(db_codes, query_codes, 5);
    std::printf("query 0 (%s, %s): nearest codes\n", split.query->source(0).c_str(),
                class_of(split, *split.query, 0).c_str());
    for (int64_t j = 0; j < nn.k; ++j)
      std::printf("  distance %2d  %-10s %s\n", nn.distance(0, j), class_of(split, *split.database, nn.index(0, j)).c_str(),
                  split.database->source(nn.index(0, j)).c_str());
    if (r.map < 0.4) {
      std::fprintf(stderr, "mAP %.4f is below 0.4: the model did not learn\n", r.map);
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
