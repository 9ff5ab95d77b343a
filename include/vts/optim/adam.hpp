#pragma once
// Adam and AdamW as PyTorch 1.13's torch.optim.Adam / AdamW (one parameter group, single-tensor
// path). With t the parameter's own update count:
//   Adam:  g ← ∇θ (negated when maximize) + wd·θ           (L2 term in the gradient)
//   AdamW: θ ← θ·(1 − lr·wd), g ← ∇θ                        (decoupled decay, applied first)
//   m ← β1·m + (1 − β1)·g,  v ← β2·v + (1 − β2)·g²          (both start at 0)
//   amsgrad: v̂ ← max(v̂, v) and v̂ replaces v below
//   θ ← θ − [lr / (1 − β1^t)] · m / (√v / √(1 − β2^t) + eps)
// The bias corrections are computed in double on the host each step, as PyTorch does in Python.
// State per parameter: "step", "exp_avg", "exp_avg_sq", plus "max_exp_avg_sq" with amsgrad.
#include <cmath>
#include <type_traits>

#include "vts/optim/optimizer.hpp"
#include "vts/optim/update.hpp"

namespace vts::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
  bool maximize = false;
};

// AdamW's options differ only in the default decay, which is PyTorch's (1e-2). A separate
// aggregate (not a derived struct) so that designated initialisers work: {.lr = 1e-4}.
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
  bool maximize = false;
};

namespace detail {

template <class T, class D, bool Decoupled>
class AdamImpl : public Optimizer<T, D> {
  using Base = Optimizer<T, D>;

 public:
  using options_type = std::conditional_t<Decoupled, AdamWOptions, AdamOptions>;

  explicit AdamImpl(ParamList<T, D> params, options_type options = {})
      : Base(std::move(params), options.lr, buffer_names_for(options)), options_(options) {
    const char* who = Decoupled ? "AdamW" : "Adam";
    VTS_CHECK(options.beta1 >= 0.0 && options.beta1 < 1.0, who, ": beta1 must be in [0, 1), got ", options.beta1);
    VTS_CHECK(options.beta2 >= 0.0 && options.beta2 < 1.0, who, ": beta2 must be in [0, 1), got ", options.beta2);
    VTS_CHECK(options.eps >= 0.0, who, ": eps must be >= 0, got ", options.eps);
    VTS_CHECK(options.weight_decay >= 0.0, who, ": weight_decay must be >= 0, got ", options.weight_decay);
  }

  const options_type& options() const { return options_; }

  void step() {
    NoGradGuard no_grad;
    ++this->steps_;
    const options_type& o = options_;
    const double lr = this->lr_;
    typename Base::UpdateBatch updates(*this);
    this->params_.for_each_with_grad([&](size_t i, const Tensor<T, D>& p, const Tensor<T, D>& g) {
      using S = typename Base::state_type;
      const double t = static_cast<double>(++this->slots_[i].step);
      const double bias_correction1 = 1.0 - std::pow(o.beta1, t);
      const double bias_correction2 = 1.0 - std::pow(o.beta2, t);
      const double step_size = lr / bias_correction1;
      S* m = this->ensure_buffer(i, 0).data();
      S* v = this->ensure_buffer(i, 1).data();
      auto make = [&](auto amsgrad) {
        return kernel::Adam<S, Decoupled, decltype(amsgrad)::value>{S(-step_size),
                                                                    S(std::sqrt(bias_correction2)),
                                                                    S(o.beta1),
                                                                    S(1.0 - o.beta1),
                                                                    S(o.beta2),
                                                                    S(1.0 - o.beta2),
                                                                    S(o.eps),
                                                                    S(o.weight_decay),
                                                                    S(1.0 - lr * o.weight_decay),
                                                                    o.maximize};
      };
      if (o.amsgrad) {
        this->apply_update(i, make(std::true_type{}), p, g, m, v, this->ensure_buffer(i, 2).data());
      } else {
        this->apply_update(i, make(std::false_type{}), p, g, m, v);
      }
    });
    updates.launch();
  }

 private:
  static std::vector<std::string> buffer_names_for(const options_type& o) {
    std::vector<std::string> names{"exp_avg", "exp_avg_sq"};
    if (o.amsgrad) names.push_back("max_exp_avg_sq");
    return names;
  }
  options_type options_;
};

}  // namespace detail

template <class T, class D = Cpu>
using Adam = detail::AdamImpl<T, D, false>;
template <class T, class D = Cpu>
using AdamW = detail::AdamImpl<T, D, true>;

}  // namespace vts::optim
