// Classifier pretraining (hash::pretrain_classifier, paper §2.3; `vts train --pretrain-epochs`): it
// learns the classes of a small striped dataset — the loss falls well below chance, ln 3 — with one
// report per step in order; it trains the backbone it is given and nothing else outside it; the
// same seed gives the same result; a learning rate that makes the loss diverge is reported.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "stripes.hpp"
#include "vts/hash/trainer.hpp"
#include "vts/nn/vit.hpp"

namespace {

using vts_test::Stripes;
using vts_test::Tiny8;
using Backbone = vts::nn::ViT<Tiny8>;

struct Run {
  double result = 0;
  std::vector<vts::hash::StepReport> reports;
  std::vector<std::vector<float>> weights;
};

Run pretrain(int64_t epochs, double lr, uint64_t seed = 5) {
  vts::Generator init(11);
  Backbone backbone(init);
  const vts::data::LoaderOptions lo{.batch_size = 16, .shuffle = true, .num_workers = 0, .seed = seed};
  vts::data::Loader loader(std::make_shared<Stripes>(), lo);
  const vts::hash::OptimizerOptions opt{.name = "adamw", .lr = lr, .weight_decay = 0.01, .schedule = "cosine",
                                        .warmup_epochs = 1};
  Run run;
  run.result = vts::hash::pretrain_classifier(backbone, loader, epochs, opt, seed,
                                              [&](const vts::hash::StepReport& r) { run.reports.push_back(r); });
  for (const auto& p : vts::nn::parameters(backbone)) run.weights.push_back(p.to_vector());
  return run;
}

}  // namespace

TEST_CASE("classifier pretraining learns the classes and trains the backbone", "[pretrain]") {
  constexpr int64_t kEpochs = 8;
  const Run run = pretrain(kEpochs, 3e-3);
  REQUIRE(run.reports.size() == static_cast<size_t>(kEpochs * 3));  // 48 images, batches of 16
  double first_epoch = 0, last_epoch = 0;
  for (size_t i = 0; i < run.reports.size(); ++i) {
    const auto& r = run.reports[i];
    INFO("report " << i);
    CHECK(r.epoch == static_cast<int64_t>(i / 3));
    CHECK(r.step == static_cast<int64_t>(i % 3));
    CHECK(r.steps_in_epoch == 3);
    CHECK(std::isfinite(r.loss));
    CHECK(r.images_per_s > 0);
    if (r.epoch == 0) first_epoch += r.loss / 3;
    if (r.epoch == kEpochs - 1) last_epoch += r.loss / 3;
  }
  INFO("first epoch " << first_epoch << ", last epoch " << last_epoch);
  CHECK(run.result == Approx(last_epoch).epsilon(1e-12));
  CHECK(first_epoch > 0.8);              // near chance (ln 3 ≈ 1.10) at the start
  CHECK(last_epoch < 0.5 * first_epoch);  // and it learned
  // The warm-up then the cosine: the rate rises over the first epoch and ends low.
  CHECK(run.reports[1].lr > run.reports[0].lr);
  CHECK(run.reports.back().lr < 0.1 * run.reports[3].lr);

  // The backbone it was given moved; a second run with the same seed ends with the same bytes.
  vts::Generator init(11);
  Backbone untouched(init);
  const auto before = vts::nn::parameters(untouched);
  REQUIRE(before.size() == run.weights.size());
  size_t moved = 0;
  for (size_t i = 0; i < before.size(); ++i) moved += before[i].to_vector() != run.weights[i];
  CHECK(moved == before.size());
  const Run again = pretrain(kEpochs, 3e-3);
  CHECK(again.result == run.result);
  CHECK(again.weights == run.weights);
}

TEST_CASE("classifier pretraining reports a diverging loss", "[pretrain]") {
  CHECK_THROWS_WITH(pretrain(3, 1e6), Catch::Contains("diverged") && Catch::Contains("--pretrain-lr"));
}
