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
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/optim.hpp"
#endif

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
    this->params_.for_each_with_grad([&](size_t i, const Tensor<T, D>& p, const Tensor<T, D>& g) {
      ++this->slots_[i].step;
      const int64_t n = p.numel();
      if (o.momentum == 0.0) {
        const kernel::Sgd<T> f{T(-this->lr_), T(o.weight_decay), o.maximize};
        optim_update(D{}, n, f, p.data(), g.data());
        return;
      }
      bool first = false;
      Tensor<T, D>& buf = this->ensure_buffer(i, 0, &first);
      auto run = [&](auto nesterov) {
        const kernel::SgdMomentum<T, decltype(nesterov)::value> f{
            T(-this->lr_), T(o.weight_decay), T(o.momentum), T(1.0 - o.dampening), o.maximize, first};
        optim_update(D{}, n, f, p.data(), g.data(), buf.data());
      };
      if (o.nesterov) run(std::true_type{});
      else run(std::false_type{});
    });
  }

 private:
  SgdOptions options_;
};

}  // namespace vts::optim
