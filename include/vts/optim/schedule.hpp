#pragma once
// Learning-rate schedules: each maps a count t (an epoch or an iteration; the caller decides which
// and says so by when it calls) to a learning rate, with no hidden state, so resuming at count t
// gives exactly the rate an uninterrupted run had there. set_lr(optimizer, schedule, t) writes it.
//   FixedLR(lr)                                  lr for every t
//   StepLR(base, step_size, gamma)               base·γ^⌊t/step_size⌋ (PyTorch's StepLR, set by epoch)
//   WarmupCosineLR(base, warmup, total, final)   linear 0 → base over t ∈ [0, warmup), then
//                                                final + (base − final)·½(1 + cos(π·(t − warmup)/(total − warmup)))
// WarmupCosineLR with final = 0 is the WarmupCosineSchedule of jeonsworld/ViT-pytorch (LambdaLR
// with cycles = 0.5), except that past `total` it stays at `final` instead of rising again.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

#include "vts/core/error.hpp"

namespace vts::optim {

// Not PyTorch's ConstantLR (which scales the rate by a factor for a number of iterations): this
// one is simply the same rate forever, the schedule of runs that have none.
class FixedLR {
 public:
  explicit FixedLR(double lr) : lr_(lr) { VTS_CHECK(lr >= 0.0, "FixedLR: learning rate must be >= 0, got ", lr); }
  double operator()(int64_t) const { return lr_; }

 private:
  double lr_;
};

class StepLR {
 public:
  StepLR(double base_lr, int64_t step_size, double gamma = 0.1)
      : base_(base_lr), step_size_(step_size), gamma_(gamma) {
    VTS_CHECK(base_lr >= 0.0, "StepLR: base learning rate must be >= 0, got ", base_lr);
    VTS_CHECK(step_size > 0, "StepLR: step_size must be > 0, got ", step_size);
    VTS_CHECK(gamma >= 0.0, "StepLR: gamma must be >= 0, got ", gamma);
  }
  double operator()(int64_t epoch) const {
    VTS_CHECK(epoch >= 0, "StepLR: epoch must be >= 0, got ", epoch);
    return base_ * std::pow(gamma_, static_cast<double>(epoch / step_size_));
  }

 private:
  double base_;
  int64_t step_size_;
  double gamma_;
};

class WarmupCosineLR {
 public:
  WarmupCosineLR(double base_lr, int64_t warmup_steps, int64_t total_steps, double final_lr = 0.0)
      : base_(base_lr), final_(final_lr), warmup_(warmup_steps), total_(total_steps) {
    VTS_CHECK(base_lr >= 0.0 && final_lr >= 0.0, "WarmupCosineLR: rates must be >= 0, got base ", base_lr,
              " and final ", final_lr);
    VTS_CHECK(warmup_steps >= 0 && total_steps >= warmup_steps, "WarmupCosineLR: need 0 <= warmup_steps <= ",
              "total_steps, got warmup ", warmup_steps, " and total ", total_steps);
  }
  double operator()(int64_t step) const {
    VTS_CHECK(step >= 0, "WarmupCosineLR: step must be >= 0, got ", step);
    if (step < warmup_) return base_ * static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_));
    const double progress = std::min(1.0, static_cast<double>(step - warmup_) /
                                              static_cast<double>(std::max<int64_t>(1, total_ - warmup_)));
    return final_ + (base_ - final_) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  }

 private:
  double base_, final_;
  int64_t warmup_, total_;
};

// Sets the optimizer's rate to schedule(t) and returns it.
template <class Optim, class Schedule>
double set_lr(Optim& optimizer, const Schedule& schedule, int64_t t) {
  const double lr = schedule(t);
  optimizer.set_lr(lr);
  return lr;
}

}  // namespace vts::optim
