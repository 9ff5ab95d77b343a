#pragma once
// RMSprop as PyTorch 1.13's torch.optim.RMSprop (one parameter group):
//   g ← ∇θ (negated when maximize) + wd·θ
//   v ← α·v + (1 − α)·g²                       (v starts at 0; no bias correction)
//   centered: ḡ ← α·ḡ + (1 − α)·g, a ← √(v − ḡ²) + eps;  otherwise a ← √v + eps
//   momentum > 0: b ← μ·b + g/a, θ ← θ − lr·b;          otherwise θ ← θ − lr·g/a
// State per parameter: "step", "square_avg", plus "grad_avg" when centered and "momentum_buffer"
// when momentum > 0 (all buffers start at zero).
#include "vts/optim/optimizer.hpp"
#include "vts/optim/update.hpp"

namespace vts::optim {

struct RmspropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;
  bool maximize = false;
};

template <class T, class D = Cpu>
class Rmsprop : public Optimizer<T, D> {
  using Base = Optimizer<T, D>;

 public:
  using options_type = RmspropOptions;

  explicit Rmsprop(ParamList<T, D> params, RmspropOptions options = {})
      : Base(std::move(params), options.lr, buffer_names_for(options)), options_(options) {
    VTS_CHECK(options.alpha >= 0.0, "Rmsprop: alpha must be >= 0, got ", options.alpha);
    VTS_CHECK(options.eps >= 0.0, "Rmsprop: eps must be >= 0, got ", options.eps);
    VTS_CHECK(options.momentum >= 0.0, "Rmsprop: momentum must be >= 0, got ", options.momentum);
    VTS_CHECK(options.weight_decay >= 0.0, "Rmsprop: weight_decay must be >= 0, got ", options.weight_decay);
  }

  const RmspropOptions& options() const { return options_; }

  void step() {
    NoGradGuard no_grad;
    ++this->steps_;
    const RmspropOptions& o = options_;
    const bool with_momentum = o.momentum > 0.0;
    typename Base::UpdateBatch updates(*this);
    this->params_.for_each_with_grad([&](size_t i, const Tensor<T, D>& p, const Tensor<T, D>& g) {
      using S = typename Base::state_type;
      ++this->slots_[i].step;
      S* sq = this->ensure_buffer(i, 0).data();
      S* extra1 = this->slots_[i].buffers.size() > 1 ? this->ensure_buffer(i, 1).data() : nullptr;
      S* extra2 = this->slots_[i].buffers.size() > 2 ? this->ensure_buffer(i, 2).data() : nullptr;
      auto make = [&](auto centered, auto momentum) {
        return kernel::Rmsprop<S, decltype(centered)::value, decltype(momentum)::value>{
            S(-this->lr_), S(o.alpha), S(1.0 - o.alpha), S(o.eps), S(o.weight_decay), S(o.momentum), o.maximize};
      };
      if (o.centered && with_momentum) {
        this->apply_update(i, make(std::true_type{}, std::true_type{}), p, g, sq, extra1, extra2);
      } else if (o.centered) {
        this->apply_update(i, make(std::true_type{}, std::false_type{}), p, g, sq, extra1);
      } else if (with_momentum) {
        this->apply_update(i, make(std::false_type{}, std::true_type{}), p, g, sq, extra1);
      } else {
        this->apply_update(i, make(std::false_type{}, std::false_type{}), p, g, sq);
      }
    });
    updates.launch();
  }

 private:
  // Buffer order matches the functor's argument order.
  static std::vector<std::string> buffer_names_for(const RmspropOptions& o) {
    std::vector<std::string> names{"square_avg"};
    if (o.centered) names.push_back("grad_avg");
    if (o.momentum > 0.0) names.push_back("momentum_buffer");
    return names;
  }
  RmspropOptions options_;
};

}  // namespace vts::optim
