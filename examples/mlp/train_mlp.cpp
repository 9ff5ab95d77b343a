// A two-layer MLP (Linear → ReLU → Linear) trained with cross-entropy and Adam on a seeded
// synthetic problem: 8 Gaussian blobs in 16 dimensions, two per class, with the two blobs of a
// class placed on opposite sides of the origin so that no linear classifier separates the
// classes well — the hidden layer has to do work.
//
//   vts_example_mlp [--steps N] [--seed S] [--lr LR] [--quiet]
//
// Prints the full-training-set loss every 50 steps and the final train/test accuracy. Exits 1 if
// the training loss did not fall at least tenfold, so the program doubles as an end-to-end smoke
// test of the tensor library, the autograd, the initialisers and the optimizer.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "vts/nn/init.hpp"
#include "vts/optim/optim.hpp"
#include "vts/vts.hpp"

namespace {

using Tensor = vts::Tensor<float>;
namespace init = vts::nn::init;

constexpr int64_t kDim = 16, kClasses = 4, kBlobsPerClass = 2, kHidden = 64;

struct Dataset {
  Tensor x;                      // [n, kDim]
  std::vector<int64_t> labels;  // n class indices
};

// Blob b has centre ±c_{b mod 4} (sign by b / 4) and belongs to class b mod 4; points are the
// centre plus N(0, 1) noise.
Dataset make_blobs(int64_t n, const Tensor& centres, vts::Generator& gen) {
  Dataset d{Tensor::empty(vts::Shape{n, kDim}), std::vector<int64_t>(static_cast<size_t>(n))};
  init::normal_(d.x, 0.0, 1.0, gen);
  float* x = d.x.data();
  const float* c = centres.data();
  for (int64_t i = 0; i < n; ++i) {
    const auto blob = static_cast<int64_t>(gen.next_below(kClasses * kBlobsPerClass));
    const int64_t cls = blob % kClasses;
    const float sign = blob < kClasses ? 1.0f : -1.0f;
    for (int64_t j = 0; j < kDim; ++j) x[i * kDim + j] += sign * c[cls * kDim + j];
    d.labels[static_cast<size_t>(i)] = cls;
  }
  return d;
}

struct Mlp {
  Tensor w1 = Tensor::empty(vts::Shape{kHidden, kDim}), b1 = Tensor::empty(vts::Shape{kHidden});
  Tensor w2 = Tensor::empty(vts::Shape{kClasses, kHidden}), b2 = Tensor::empty(vts::Shape{kClasses});

  explicit Mlp(vts::Generator& gen) {
    init::linear_(w1, b1, gen);
    init::linear_(w2, b2, gen);
    for (Tensor* p : {&w1, &b1, &w2, &b2}) p->requires_grad_();
  }
  std::vector<Tensor> parameters() const { return {w1, b1, w2, b2}; }
  Tensor operator()(const Tensor& x) const { return vts::linear(vts::relu(vts::linear(x, w1, b1)), w2, b2); }
};

float loss_on(const Mlp& net, const Dataset& d) {
  vts::NoGradGuard no_grad;
  return vts::cross_entropy(net(d.x), d.labels).item();
}

double accuracy_on(const Mlp& net, const Dataset& d) {
  vts::NoGradGuard no_grad;
  const Tensor logits = net(d.x);
  const float* l = logits.data();
  int64_t right = 0;
  for (size_t i = 0; i < d.labels.size(); ++i) {
    int64_t best = 0;
    for (int64_t k = 1; k < kClasses; ++k)
      if (l[i * kClasses + k] > l[i * kClasses + best]) best = k;
    right += best == d.labels[i];
  }
  return static_cast<double>(right) / static_cast<double>(d.labels.size());
}

}  // namespace

int main(int argc, char** argv) {
  int64_t steps = 400, batch = 128;
  uint64_t seed = 1;
  double lr = 1e-2;
  bool quiet = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "vts_example_mlp: %s expects a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--steps") steps = std::atoll(value());
    else if (a == "--seed") seed = std::strtoull(value(), nullptr, 10);
    else if (a == "--lr") lr = std::atof(value());
    else if (a == "--quiet") quiet = true;
    else {
      std::fprintf(stderr, "usage: vts_example_mlp [--steps N] [--seed S] [--lr LR] [--quiet]\n");
      return 2;
    }
  }
  if (steps <= 0 || lr <= 0.0) {
    std::fprintf(stderr, "vts_example_mlp: --steps and --lr must be positive\n");
    return 2;
  }

  try {
    vts::Generator gen(seed);
    // Centres lie ~1.5·√16 = 6 from the origin and the noise has norm ~4, so neighbouring blobs
    // touch; each class sits on both sides of the origin, so a linear rule cannot separate it.
    Tensor centres = init::normal_(Tensor::empty(vts::Shape{kClasses, kDim}), 0.0, 1.5, gen);
    const Dataset train = make_blobs(2048, centres, gen), test = make_blobs(1024, centres, gen);

    Mlp net(gen);
    vts::optim::Adam<float> opt(net.parameters(), {.lr = lr});
    const float initial = loss_on(net, train);
    if (!quiet) std::printf("step %5d  train loss %.5f\n", 0, initial);

    const int64_t n = static_cast<int64_t>(train.labels.size());
    std::vector<int64_t> order;
    int64_t cursor = n;
    for (int64_t step = 1; step <= steps; ++step) {
      if (cursor + batch > n) {  // a fresh shuffle per epoch; the tail of the last one is dropped
        order = gen.permutation(n);
        cursor = 0;
      }
      const std::vector<int64_t> rows(order.begin() + cursor, order.begin() + cursor + batch);
      cursor += batch;
      std::vector<int64_t> labels(rows.size());
      for (size_t i = 0; i < rows.size(); ++i) labels[i] = train.labels[static_cast<size_t>(rows[i])];

      opt.zero_grad();
      const Tensor loss = vts::cross_entropy(net(vts::index_select(train.x, rows)), labels);
      loss.backward();
      opt.step();
      if (!quiet && step % 50 == 0) std::printf("step %5lld  train loss %.5f\n", static_cast<long long>(step), loss_on(net, train));
    }

    const float final_loss = loss_on(net, train);
    const double train_acc = accuracy_on(net, train), test_acc = accuracy_on(net, test);
    std::printf("final train loss %.5f (from %.5f, %.1fx lower), train accuracy %.4f, test accuracy %.4f\n",
                final_loss, initial, initial / final_loss, train_acc, test_acc);
    if (!(final_loss * 10.0f <= initial)) {
      std::fprintf(stderr, "vts_example_mlp: FAILED: the loss fell only %.2fx (need 10x)\n", initial / final_loss);
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vts_example_mlp: %s\n", e.what());
    return 1;
  }
}
