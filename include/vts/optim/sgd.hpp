#pragma once
// SGD with optional momentum, dampening, Nesterov momentum and L2 weight decay, as PyTorch 1.13's
// torch.optim.SGD (one parameter group):
//   d ← ∇θ (negated when maximize) + wd·θ
//   momentum ≠ 0:  buf ← d on the parameter's first update, else buf ← μ·buf + (1 − dampening)·d;
//                  d ← d + μ·buf (Nesterov) or d ← buf
//   θ ← θ − lr·d
// State: "momentum_buffer" per parameter when momentum ≠ 0.
#include "vts/optim/optimizer.hpp"
#include "vts/optim/update.hpp"

namespace vts::optim {

struct SgdOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool maximize = false;
};

template <class T, class D = Cpu>
class Sgd : public Optimizer<T, D> {
  using Base = Optimizer<T, D>;

 public:
  using options_type = SgdOptions;

  explicit Sgd(ParamList<T, D> params, SgdOptions options = {})
      : Base(std::move(params), options.lr, options.momentum != 0.0 ? std::vector<std::string>{"momentum_buffer"}
                                                                    : std::vector<std::string>{}),
        options_(options) {
    VTS_CHECK(options.momentum >= 0.0, "Sgd: momentum must be >= 0, got ", options.momentum);
    VTS_CHECK(options.weight_decay >= 0.0, "Sgd: weight_decay must be >= 0, got ", options.weight_decay);
    VTS_CHECK(!options.nesterov || (options.momentum > 0.0 && options.dampening == 0.0),
              "Sgd: Nesterov momentum needs momentum > 0 and dampening 0 (got momentum ", options.momentum,
              ", dampening ", options.dampening, ")");
  }

  const SgdOptions& options() const { return options_; }

  void step() {
    NoGradGuard no_grad;
    ++this->steps_;
    const SgdOptions& o = options_;
    typename Base::UpdateBatch updates(*this);
    this->params_.for_each_with_grad([&](size_t i, const Tensor<T, D>& p, const Tensor<T, D>& g) {
      using S = typename Base::state_type;
      ++this->slots_[i].step;
      if (o.momentum == 0.0) {
        const kernel::Sgd<S> f{S(-this->lr_), S(o.weight_decay), o.maximize};
        this->apply_update(i, f, p, g);
        return;
      }
      bool first = false;
      Tensor<S, D>& buf = this->ensure_buffer(i, 0, &first);
      auto run = [&](auto nesterov) {
        const kernel::SgdMomentum<S, decltype(nesterov)::value> f{
            S(-this->lr_), S(o.weight_decay), S(o.momentum), S(1.0 - o.dampening), o.maximize, first};
        this->apply_update(i, f, p, g, buf.data());
      };
      if (o.nesterov) run(std::true_type{});
      else run(std::false_type{});
    });
    updates.launch();
  }

 private:
  SgdOptions options_;
};

}  // namespace vts::optim
