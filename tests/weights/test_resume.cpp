// Resuming: a run trained for 2 epochs, saved with io::add_training_state, then restored into
// freshly built objects with io::read_training_state and trained 2 more epochs, must end with the
// same bytes — every parameter, the optimizer's moments, the loss's state, the dropout generator —
// as one uninterrupted 4-epoch run with the same seed. This is what `vts train --resume` does.
//
// The run is chosen so that every piece of state matters: dropout is on (the generator), AdamW
// with a warm-up + cosine schedule (moments, step counts and the epoch-dependent rate), a shuffled
// loader with augmentation keyed by (seed, epoch, item), and losses with memory banks (DSH),
// centers (CSQ), a trained classifier that lives in the loss (GreedyHash) and targets rewritten
// every epoch (DPN-A). Two controls show the comparison can fail: resuming without the generator,
// or without the optimizer state, ends elsewhere.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vts/hash/trainer.hpp"
#include "vts/io/checkpoint.hpp"
#include "weights_test_util.hpp"

using namespace vts_weights_test;
namespace io = vts::io;
namespace hl = vts::hash::loss;

namespace {

using ResumeNet = vts::hash::HashNetwork<vts::nn::ViT<Tiny8>, vts::hash::AllTokenHead<32>>;
constexpr uint64_t kSeed = 42;
constexpr int64_t kBits = 8, kEpochs = 4;

// 48 8x8 images of 3 classes: a class-dependent stripe plus per-item noise, randomly flipped by
// the augmentation generator the loader hands over.
class Stripes final : public vts::data::Dataset {
 public:
  int64_t size() const override { return 48; }
  int num_classes() const override { return 3; }
  vts::data::ImageSpec spec() const override { return {1, 8, 8}; }
  void get(int64_t i, float* image, float* label, vts::Generator& aug) const override {
    check_index(i);
    vts::Generator noise(1000 + static_cast<uint64_t>(i));
    const int64_t c = i % 3;
    const bool flip = aug.next_u32() & 1u;
    for (int64_t y = 0; y < 8; ++y)
      for (int64_t x = 0; x < 8; ++x) {
        const int64_t xx = flip ? 7 - x : x;
        image[y * 8 + x] = ((xx + c * 2) % 6 < 2 ? 1.0f : -0.5f) + 0.3f * static_cast<float>(noise.next_double());
      }
    get_label(i, label);
  }
  void get_label(int64_t i, float* label) const override {
    for (int c = 0; c < 3; ++c) label[c] = (i % 3 == c) ? 1.0f : 0.0f;
  }
};

template <class Loss>
using TrainerOf = vts::hash::Trainer<ResumeNet, Loss>;

template <class Loss>
std::unique_ptr<TrainerOf<Loss>> make_trainer(double mixup = 0.0, double ema = 0.0) {
  vts::Generator gen(kSeed);
  ResumeNet net(kBits, gen);
  hl::Config cfg;
  cfg.bits = kBits;
  cfg.classes = 3;
  cfg.train_size = 48;
  Loss loss(cfg, gen);
  if constexpr (requires { loss.adaptive_targets; }) loss.adaptive_targets = true;
  vts::hash::OptimizerOptions opt{.name = "adamw", .lr = 3e-3, .weight_decay = 0.05, .schedule = "cosine",
                                  .warmup_epochs = 1, .final_lr = 1e-5};
  auto t = std::make_unique<TrainerOf<Loss>>(std::move(net), std::move(loss), opt, kSeed);
  t->set_mixup(mixup);
  t->set_ema(ema);
  return t;
}

vts::data::Loader make_loader() {
  return vts::data::Loader(std::make_shared<Stripes>(),
                           {.batch_size = 8, .shuffle = true, .num_workers = 0, .seed = kSeed});
}

// Every float the run owns, as raw bytes by name: parameters, optimizer state, loss state, the
// dropout generator.
template <class Loss>
std::map<std::string, std::vector<uint8_t>> everything(TrainerOf<Loss>& t) {
  std::map<std::string, std::vector<uint8_t>> out;
  auto put = [&](const std::string& name, const vts::Tensor<float>& x) {
    const std::vector<float> v = x.to_vector();
    std::vector<uint8_t> b(v.size() * sizeof(float));
    if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
    out[name] = std::move(b);
  };
  t.network().visit("model", [&](const std::string& n, vts::Tensor<float>& x) { put(n, x); });
  std::visit([&](auto& o) {
    for (const auto& [n, x] : o.state()) put("optim." + n, x);
  }, t.optimizer());
  t.loss().state([&](const std::string& n, vts::Tensor<float>& x) { put("loss." + n, x); });
  if (t.ema_enabled()) {
    auto ema = t.ema_weights();
    ema.visit("ema", [&](const std::string& n, vts::Tensor<float>& x) { put(n, x); });
    const int64_t steps = t.ema_steps();
    out["ema_steps"] = std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(&steps),
                                            reinterpret_cast<const uint8_t*>(&steps) + sizeof steps);
  }
  const uint64_t rng[2] = {t.dropout_rng().seed(), t.dropout_rng().offset()};
  out["rng"] = std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(rng), reinterpret_cast<const uint8_t*>(rng) + 16);
  return out;
}

template <class Loss>
std::vector<std::string> differing(const std::map<std::string, std::vector<uint8_t>>& a,
                                   const std::map<std::string, std::vector<uint8_t>>& b) {
  std::vector<std::string> names;
  for (const auto& [n, bytes] : a)
    if (!b.count(n) || b.at(n) != bytes) names.push_back(n);
  for (const auto& [n, bytes] : b)
    if (!a.count(n)) names.push_back(n);
  return names;
}

enum class Skip { nothing, generator, optimizer };

// Trains 2 epochs, saves, builds everything anew, restores (leaving out `skip`), trains to 4.
template <class Loss>
std::map<std::string, std::vector<uint8_t>> interrupted_run(const std::string& path, Skip skip, double mixup = 0.0,
                                                            double ema = 0.0) {
  {
    auto first = make_trainer<Loss>(mixup, ema);
    auto loader = make_loader();
    for (int64_t e = 0; e < 2; ++e) first->train_epoch(loader, e, kEpochs);
    io::CheckpointWriter w;
    io::add_training_state(w, *first);
    w.metadata() = {{"config", Tiny8::name}, {"loss", Loss::name}, {"bits", kBits}, {"epoch", 2}};
    w.write(path);
  }
  auto resumed = make_trainer<Loss>(mixup, ema);
  io::CheckpointReader r(path);
  r.expect_metadata("loss", Loss::name);
  r.layer("model", resumed->network());
  r.loss("loss", resumed->loss());
  if (skip != Skip::optimizer) r.optimizer("optim", resumed->optimizer());
  else r.ignore("optim.");
  if (skip != Skip::generator) r.generator("rng.dropout", resumed->dropout_rng());
  else r.ignore("rng.");
  if (resumed->ema_enabled()) {
    auto ema = resumed->ema_weights();
    r.layer("ema", ema);
    r.counter("ema_steps", resumed->ema_steps());
  }
  r.commit();
  const int64_t start = r.metadata().at("epoch").get<int64_t>();
  REQUIRE(start == 2);
  auto loader = make_loader();
  for (int64_t e = start; e < kEpochs; ++e) resumed->train_epoch(loader, e, kEpochs);
  return everything<Loss>(*resumed);
}

}  // namespace

TEMPLATE_TEST_CASE("resume: 2 + 2 epochs through a checkpoint equal 4 uninterrupted epochs, bit for bit",
                   "[resume][checkpoint]", hl::Dsh<float>, hl::Csq<float>, hl::GreedyHash<float>, hl::Dpn<float>) {
  using Loss = TestType;
  TempDir dir;
  auto straight = make_trainer<Loss>();
  {
    auto loader = make_loader();
    for (int64_t e = 0; e < kEpochs; ++e) straight->train_epoch(loader, e, kEpochs);
  }
  const auto want = everything<Loss>(*straight);
  const auto got = interrupted_run<Loss>(dir / "last.safetensors", Skip::nothing);
  const auto diff = differing<Loss>(want, got);
  INFO("differing: " << diff.size() << (diff.empty() ? "" : ", first " + diff.front()));
  CHECK(diff.empty());
  CHECK(want.size() == got.size());
}

TEST_CASE("resume: leaving out the generator or the optimizer state changes the result", "[resume][checkpoint]") {
  using Loss = hl::Csq<float>;
  TempDir dir;
  auto straight = make_trainer<Loss>();
  {
    auto loader = make_loader();
    for (int64_t e = 0; e < kEpochs; ++e) straight->train_epoch(loader, e, kEpochs);
  }
  const auto want = everything<Loss>(*straight);
  const auto no_rng = interrupted_run<Loss>(dir / "a.safetensors", Skip::generator);
  CHECK(differing<Loss>(want, no_rng).size() > 10);  // dropout masks differ → every weight moves
  CHECK(no_rng.at("rng") != want.at("rng"));
  const auto no_optim = interrupted_run<Loss>(dir / "b.safetensors", Skip::optimizer);
  CHECK(differing<Loss>(want, no_optim).size() > 10);
}

TEST_CASE("resume: mixup draws from the saved generator, so a resumed CSQ run is exact too", "[resume][mixup]") {
  using Loss = hl::Csq<float>;
  TempDir dir;
  auto straight = make_trainer<Loss>(0.4);
  auto plain = make_trainer<Loss>();
  {
    auto loader = make_loader();
    auto loader2 = make_loader();
    for (int64_t e = 0; e < kEpochs; ++e) {
      straight->train_epoch(loader, e, kEpochs);
      plain->train_epoch(loader2, e, kEpochs);
    }
  }
  const auto want = everything<Loss>(*straight);
  CHECK_FALSE(differing<Loss>(want, everything<Loss>(*plain)).empty());  // mixup changed the run
  const auto diff = differing<Loss>(want, interrupted_run<Loss>(dir / "last.safetensors", Skip::nothing, 0.4));
  INFO("differing: " << diff.size() << (diff.empty() ? "" : ", first " + diff.front()));
  CHECK(diff.empty());
}

TEST_CASE("resume: mixup is refused for losses that need hard labels", "[resume][mixup]") {
  CHECK_THROWS_WITH(make_trainer<hl::Dsh<float>>(0.2), Catch::Contains("dsh does not"));
  CHECK_NOTHROW(make_trainer<hl::Dsh<float>>(0.0));
}

TEST_CASE("resume: the weight average (EMA) and its warm-up step count come back exactly", "[resume][ema]") {
  using Loss = hl::Csq<float>;
  TempDir dir;
  auto straight = make_trainer<Loss>(0.0, 0.9);
  {
    auto loader = make_loader();
    for (int64_t e = 0; e < kEpochs; ++e) straight->train_epoch(loader, e, kEpochs);
  }
  const auto want = everything<Loss>(*straight);
  REQUIRE(want.count("ema_steps") == 1);
  const auto diff = differing<Loss>(want, interrupted_run<Loss>(dir / "last.safetensors", Skip::nothing, 0.0, 0.9));
  INFO("differing: " << diff.size() << (diff.empty() ? "" : ", first " + diff.front()));
  CHECK(diff.empty());
}

TEST_CASE("resume: io::read_training_state restores EMA when the checkpoint has it and leaves it otherwise",
          "[resume][ema]") {
  using Loss = hl::Csq<float>;
  TempDir dir;
  auto with_ema = make_trainer<Loss>(0.0, 0.9);
  auto loader = make_loader();
  with_ema->train_epoch(loader, 0, kEpochs);
  io::CheckpointWriter w;
  io::add_training_state(w, *with_ema);
  w.metadata() = {{"epoch", 1}};
  w.write(dir / "ema.safetensors");
  auto plain = make_trainer<Loss>();  // EMA off: the average in the file is skipped, not an error
  io::CheckpointReader r1(dir / "ema.safetensors");
  io::read_training_state(r1, *plain);
  CHECK(io::has_ema_state(r1));
  CHECK_NOTHROW(r1.commit());
  auto again = make_trainer<Loss>(0.0, 0.9);
  io::CheckpointReader r2(dir / "ema.safetensors");
  io::read_training_state(r2, *again);
  r2.commit();
  CHECK(again->ema_steps() == with_ema->ema_steps());
  CHECK(everything<Loss>(*again) == everything<Loss>(*with_ema));
}

// The checkpoint writer reads tensors at write() and refuses those changed since add(): that needs
// every in-place writer of the trainer's state to move its version, the CPU's raw-pointer EMA
// update and EMA swap included.
TEST_CASE("resume: a training state changed between add() and write() is refused, the EMA's too", "[resume][ema]") {
  using Loss = hl::Csq<float>;
  using Catch::Matchers::Contains;
  TempDir dir;
  auto t = make_trainer<Loss>(0.0, 0.9);
  auto loader = make_loader();
  t->train_epoch(loader, 0, kEpochs);
  io::CheckpointWriter whole, ema_only;
  io::add_training_state(whole, *t);
  auto ema = t->ema_weights();
  ema_only.add_layer("ema", ema);
  t->train_epoch(loader, 1, kEpochs);
  CHECK_THROWS_WITH(whole.write(dir / "last.safetensors"), Contains("was written to after it was added"));
  CHECK_THROWS_WITH(ema_only.write(dir / "ema.safetensors"),
                    Contains("tensor 'ema.") && Contains("was written to after it was added"));
  // Added while the average is swapped in, written after it is swapped out: refused, not the live
  // weights saved under the average's name.
  io::CheckpointWriter swapped;
  t->with_eval_weights([&] { swapped.add_layer("model", t->network()); });
  CHECK_THROWS_WITH(swapped.write(dir / "best.safetensors"),
                    Contains("tensor 'model.") && Contains("was written to after it was added"));
  CHECK(std::filesystem::is_empty(dir.path));
}

// With drop_last and a batch larger than the dataset (or an empty dataset) an epoch has no step;
// train_epoch used to return a mean loss of 0 for it, which reads as a perfect epoch.
TEST_CASE("train_epoch refuses a loader that yields no batch", "[trainer]") {
  using Catch::Matchers::Contains;
  auto trainer = make_trainer<hl::Csq<>>();
  vts::data::Loader loader(std::make_shared<Stripes>(), {.batch_size = 64, .drop_last = true, .num_workers = 0});
  CHECK_THROWS_WITH(trainer->train_epoch(loader, 0, kEpochs),
                    Contains("train_epoch: the loader yields no batch (48 items, batch size 64, drop_last)"));
}

namespace {

// The epoch means and final state of a run stopped inside epoch 1 after `stop_after` of its 6
// batches, saved with its EpochProgress, restored into new objects and trained to the end.
// `progress_kept` false: the restored run starts the stopped epoch from its first batch instead.
template <class Loss>
std::pair<std::vector<double>, std::map<std::string, std::vector<uint8_t>>> stopped_inside_epoch(
    const std::string& path, int64_t stop_after, bool progress_kept = true, double mixup = 0.0, double ema = 0.0,
    int workers = 0) {
  std::vector<double> means;
  auto loader_with = [&] {
    return vts::data::Loader(std::make_shared<Stripes>(),
                             {.batch_size = 8, .shuffle = true, .num_workers = workers, .seed = kSeed});
  };
  vts::hash::EpochProgress saved;
  {
    auto first = make_trainer<Loss>(mixup, ema);
    auto loader = loader_with();
    means.push_back(first->train_epoch(loader, 0, kEpochs));
    int64_t asked = 0;
    vts::hash::EpochProgress progress;
    const bool ended = first->train_epoch_until(loader, 1, kEpochs, progress, [&] { return asked++ == stop_after; });
    REQUIRE_FALSE(ended);
    REQUIRE(progress.steps == stop_after);
    saved = progress;
    io::CheckpointWriter w;
    io::add_training_state(w, *first);
    w.metadata() = {{"epoch", 1}, {"steps", progress.steps}, {"loss_sum", progress.loss_sum}};
    w.write(path);
  }
  auto resumed = make_trainer<Loss>(mixup, ema);
  io::CheckpointReader r(path);
  io::read_training_state(r, *resumed);
  r.commit();
  vts::hash::EpochProgress progress;
  if (progress_kept) progress = {r.metadata().at("steps").get<int64_t>(), r.metadata().at("loss_sum").get<double>()};
  CHECK(progress.loss_sum == (progress_kept ? saved.loss_sum : 0.0));  // through the JSON and back, exactly
  auto loader = loader_with();
  REQUIRE(resumed->train_epoch_until(loader, 1, kEpochs, progress, {}));
  CHECK(progress.steps == 6);
  means.push_back(progress.mean_loss());
  for (int64_t e = 2; e < kEpochs; ++e) means.push_back(resumed->train_epoch(loader, e, kEpochs));
  return {means, everything<Loss>(*resumed)};
}

template <class Loss>
std::pair<std::vector<double>, std::map<std::string, std::vector<uint8_t>>> unbroken_run(double mixup = 0.0,
                                                                                           double ema = 0.0) {
  std::vector<double> means;
  auto t = make_trainer<Loss>(mixup, ema);
  auto loader = make_loader();
  for (int64_t e = 0; e < kEpochs; ++e) means.push_back(t->train_epoch(loader, e, kEpochs));
  return {means, everything<Loss>(*t)};
}

}  // namespace

// What `vts train` does on Ctrl-C, SIGTERM or --time-limit: stop before a batch, save, and later go
// on from that batch.
TEMPLATE_TEST_CASE("resume: a run stopped inside an epoch and resumed there equals an unbroken run, bit for bit",
                   "[resume][checkpoint]", hl::Dsh<float>, hl::Csq<float>, hl::GreedyHash<float>, hl::Dpn<float>,
                   hl::HashNet<float>, hl::Idhn<float>) {
  using Loss = TestType;
  TempDir dir;
  const auto [want_means, want] = unbroken_run<Loss>();
  for (const int64_t stop_after : {int64_t(0), int64_t(1), int64_t(4)}) {
    INFO("stopped before batch " << stop_after << " of epoch 1");
    const auto [means, got] = stopped_inside_epoch<Loss>(dir / "part.safetensors", stop_after);
    const auto diff = differing<Loss>(want, got);
    INFO("differing: " << diff.size() << (diff.empty() ? "" : ", first " + diff.front()));
    CHECK(diff.empty());
    CHECK(means == want_means);  // the stopped epoch's mean too: the sum went on in batch order
  }
}

TEST_CASE("resume inside an epoch: exact with mixup, EMA and loader workers, and not when the epoch starts over",
          "[resume][checkpoint]") {
  using Loss = hl::Csq<float>;
  TempDir dir;
  const auto [want_means, want] = unbroken_run<Loss>(0.4, 0.9);
  const auto [means, got] = stopped_inside_epoch<Loss>(dir / "a.safetensors", 3, true, 0.4, 0.9, 2);
  CHECK(differing<Loss>(want, got).empty());
  CHECK(means == want_means);
  // The control: the same checkpoint, the epoch started again from batch 0 (the progress ignored),
  // trains three batches twice and ends elsewhere.
  const auto [means_again, again] = stopped_inside_epoch<Loss>(dir / "b.safetensors", 3, false, 0.4, 0.9);
  CHECK(differing<Loss>(want, again).size() > 10);
  CHECK(means_again != want_means);
}

// A stop asked for while the last batch trains comes too late for this epoch: it ends (its
// end-of-epoch work done) and the stop is the next epoch's to take, before its first batch.
TEST_CASE("train_epoch_until: a stop after the last batch ends the epoch", "[trainer]") {
  auto trainer = make_trainer<hl::Csq<>>();
  auto loader = make_loader();
  int64_t asked = 0;
  vts::hash::EpochProgress progress;
  CHECK(trainer->train_epoch_until(loader, 0, kEpochs, progress, [&] { return asked++ >= 6; }));
  CHECK(asked == 6);
  CHECK(progress.steps == 6);
  vts::hash::EpochProgress next;
  CHECK_FALSE(trainer->train_epoch_until(loader, 1, kEpochs, next, [&] { return asked++ >= 6; }));
  CHECK(next.steps == 0);
  CHECK(next.loss_sum == 0.0);
}

TEST_CASE("train_epoch_until refuses a progress outside the epoch", "[trainer]") {
  using Catch::Matchers::Contains;
  auto trainer = make_trainer<hl::Csq<>>();
  auto loader = make_loader();
  vts::hash::EpochProgress past{6, 1.0};
  CHECK_THROWS_WITH(trainer->train_epoch_until(loader, 0, kEpochs, past, {}),
                    Contains("expected an epoch's progress of 0 to 5 batches (the loader has 6) and a finite loss sum, "
                             "found 6 batches"));
  vts::hash::EpochProgress negative{-1, 0.0};
  CHECK_THROWS_WITH(trainer->train_epoch_until(loader, 0, kEpochs, negative, {}), Contains("found -1 batches"));
  CHECK_THROWS_WITH(loader.start_epoch(0, 7), Contains("expected a first batch from 0 to 6"));
}

// ---- stopping inside the classifier pretraining (`vts train --pretrain-epochs`) ----------------

namespace {

using PretrainBackbone = vts::nn::ViT<Tiny8>;
using Pretrainer = vts::hash::ClassifierPretrainer<PretrainBackbone>;
constexpr int64_t kPretrainEpochs = 3;
const vts::hash::OptimizerOptions kPretrainOpt{.name = "adamw", .lr = 3e-3, .weight_decay = 0.05,
                                               .schedule = "cosine", .warmup_epochs = 1};

// Every tensor and the generator of a pretraining's state, as bytes by checkpoint key.
std::map<std::string, std::vector<uint8_t>> pretraining_bytes(Pretrainer& p) {
  io::CheckpointWriter w;
  io::add_pretraining_state(w, p);
  std::map<std::string, std::vector<uint8_t>> out;
  for (const auto& [key, array] : w.arrays()) out[key] = array.bytes;
  return out;
}

struct PretrainResult {
  std::vector<double> means;  // of each epoch
  std::map<std::string, std::vector<uint8_t>> state;
};

PretrainResult unbroken_pretraining() {
  vts::Generator init(kSeed);
  PretrainBackbone backbone(init);
  Pretrainer p(backbone, 3, kPretrainOpt, kSeed);
  auto loader = make_loader();
  PretrainResult r;
  for (int64_t e = 0; e < kPretrainEpochs; ++e) {
    vts::hash::EpochProgress progress;
    REQUIRE(p.train_epoch_until(loader, e, kPretrainEpochs, progress, {}));
    r.means.push_back(progress.mean_loss());
  }
  r.state = pretraining_bytes(p);
  return r;
}

// Pretrains, stops in epoch 1 before its batch `stop_after`, saves, restores into a backbone drawn
// from another seed and a new pretrainer, and trains to the end. `progress_ignored`: the restored
// run starts the stopped epoch from its first batch instead.
PretrainResult stopped_pretraining(const std::string& path, int64_t stop_after, bool progress_ignored = false) {
  PretrainResult r;
  {
    vts::Generator init(kSeed);
    PretrainBackbone backbone(init);
    Pretrainer p(backbone, 3, kPretrainOpt, kSeed);
    auto loader = make_loader();
    vts::hash::EpochProgress progress;
    REQUIRE(p.train_epoch_until(loader, 0, kPretrainEpochs, progress, {}));
    r.means.push_back(progress.mean_loss());
    progress = {};
    int64_t asked = 0;
    REQUIRE_FALSE(p.train_epoch_until(loader, 1, kPretrainEpochs, progress, [&] { return asked++ == stop_after; }));
    REQUIRE(progress.steps == stop_after);
    io::CheckpointWriter w;
    io::add_pretraining_state(w, p);
    w.metadata() = {{"steps", progress.steps}, {"loss_sum", progress.loss_sum}};
    w.write(path);
  }
  vts::Generator other(kSeed + 1);
  PretrainBackbone backbone(other);
  Pretrainer p(backbone, 3, kPretrainOpt, kSeed + 1);
  io::CheckpointReader reader(path);
  io::read_pretraining_state(reader, p);
  reader.commit();
  vts::hash::EpochProgress progress;
  if (!progress_ignored)
    progress = {reader.metadata().at("steps").get<int64_t>(), reader.metadata().at("loss_sum").get<double>()};
  auto loader = make_loader();
  REQUIRE(p.train_epoch_until(loader, 1, kPretrainEpochs, progress, {}));
  r.means.push_back(progress.mean_loss());
  for (int64_t e = 2; e < kPretrainEpochs; ++e) {
    progress = {};
    REQUIRE(p.train_epoch_until(loader, e, kPretrainEpochs, progress, {}));
    r.means.push_back(progress.mean_loss());
  }
  r.state = pretraining_bytes(p);
  return r;
}

}  // namespace

TEST_CASE("pretraining: a classifier pretraining stopped inside an epoch and resumed there equals an unbroken one",
          "[resume][checkpoint][pretrain]") {
  TempDir dir;
  const PretrainResult want = unbroken_pretraining();
  REQUIRE(want.state.count("pretrain.rng"));
  REQUIRE(want.state.count("pretrain.classifier.fc.weight"));
  for (const int64_t stop_after : {int64_t(0), int64_t(2), int64_t(5)}) {
    INFO("stopped before batch " << stop_after << " of epoch 1");
    const PretrainResult got = stopped_pretraining(dir / "p.safetensors", stop_after);
    CHECK(got.state == want.state);
    CHECK(got.means == want.means);
  }
  // The control: the same checkpoint with the epoch started again from its first batch trains two
  // batches twice and ends elsewhere.
  const PretrainResult again = stopped_pretraining(dir / "q.safetensors", 2, true);
  CHECK(again.state != want.state);
  CHECK(again.means != want.means);
}

// The one-call form is the same pretraining: its backbone ends with the pretrainer's bytes.
TEST_CASE("pretraining: pretrain_classifier trains the backbone as ClassifierPretrainer does", "[pretrain]") {
  const PretrainResult want = unbroken_pretraining();
  vts::Generator init(kSeed);
  PretrainBackbone backbone(init);
  auto loader = make_loader();
  const double last = vts::hash::pretrain_classifier(backbone, loader, kPretrainEpochs, kPretrainOpt, kSeed);
  CHECK(last == want.means.back());
  size_t compared = 0;
  backbone.visit("pretrain.backbone", [&](const std::string& name, vts::Tensor<float>& t) {
    const std::vector<float> v = t.to_vector();
    std::vector<uint8_t> bytes(v.size() * sizeof(float));
    std::memcpy(bytes.data(), v.data(), bytes.size());
    INFO(name);
    REQUIRE(want.state.count(name));
    CHECK(want.state.at(name) == bytes);
    ++compared;
  });
  CHECK(compared > 10);
}

TEST_CASE("pretraining: train_epoch_until refuses a progress outside the epoch", "[pretrain]") {
  using Catch::Matchers::Contains;
  vts::Generator init(kSeed);
  PretrainBackbone backbone(init);
  Pretrainer p(backbone, 3, kPretrainOpt, kSeed);
  auto loader = make_loader();
  vts::hash::EpochProgress past{6, 1.0};
  CHECK_THROWS_WITH(p.train_epoch_until(loader, 0, kPretrainEpochs, past, {}),
                    Contains("pretrain_classifier: expected an epoch's progress of 0 to 5 batches (the loader has 6)"));
  vts::hash::EpochProgress not_finite{2, std::nan("")};
  CHECK_THROWS_WITH(p.train_epoch_until(loader, 0, kPretrainEpochs, not_finite, {}),
                    Contains("found 2 batches and a sum of nan"));
  // A head sized for other classes than the loader's dataset has.
  Pretrainer five(backbone, 5, kPretrainOpt, kSeed);
  vts::hash::EpochProgress start;
  CHECK_THROWS_WITH(five.train_epoch_until(loader, 0, kPretrainEpochs, start, {}),
                    Contains("the head has 5 classes, the loader's dataset 3"));
}
