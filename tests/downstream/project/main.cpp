// Trains y = 3x − 1 with the autograd: proves the headers, targets and flags work from outside.
#include <vts/vts.hpp>

#include <cmath>
#include <cstdio>

int main() {
  using vts::Tensor;
  auto w = Tensor<float>::zeros({1, 1}).requires_grad_();
  auto b = Tensor<float>::zeros({1}).requires_grad_();
  auto x = Tensor<float>::from_vector({-1, 0, 1, 2}, {4, 1});
  auto y = Tensor<float>::from_vector({-4, -1, 2, 5}, {4, 1});
  for (int step = 0; step < 500; ++step) {
    auto loss = vts::mean(vts::pow(vts::linear(x, w, b) - y, 2.0f));
    w.zero_grad();
    b.zero_grad();
    loss.backward();
    vts::NoGradGuard guard;
    w.copy_(w.detach() - 0.1f * w.grad());
    b.copy_(b.detach() - 0.1f * b.grad());
  }
  const float wv = w.item(), bv = b.item();
  std::printf("w = %.4f, b = %.4f (GEMMs: %s)\n", wv, bv, vts::cpu::gemm_uses_openblas() ? "OpenBLAS" : "Eigen");
  return std::fabs(wv - 3) < 1e-3 && std::fabs(bv + 1) < 1e-3 ? 0 : 1;
}
