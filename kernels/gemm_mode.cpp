// The process-wide choices of how fp32 GEMMs use the tensor cores and whether the linear layer's
// GEMMs use epilogues (gemm.hpp). Host code only, apart
// from gemm.cu so that the CPU emulator of tests/cuda/emu, which has its own GEMM, shares it.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "vts/backend/cuda/gemm.hpp"
#include "vts/core/error.hpp"

namespace vts::cuda {

namespace {
std::atomic<Fp32Gemm>& fp32_gemm_mode() {
  static std::atomic<Fp32Gemm> mode{Fp32Gemm::tf32};
  return mode;
}
}  // namespace

void set_fp32_gemm(Fp32Gemm mode) { fp32_gemm_mode().store(mode); }
Fp32Gemm fp32_gemm() { return fp32_gemm_mode().load(); }
const char* to_string(Fp32Gemm mode) {
  switch (mode) {
    case Fp32Gemm::tf32: return "tf32";
    case Fp32Gemm::bf16: return "bf16";
    default: return "fp32";
  }
}
Fp32Gemm fp32_gemm_from_string(const std::string& name) {
  for (Fp32Gemm mode : {Fp32Gemm::full, Fp32Gemm::tf32, Fp32Gemm::bf16})
    if (name == to_string(mode)) return mode;
  throw Error("fp32 GEMM mode must be tf32, bf16 or fp32, got '" + name + "'");
}
namespace {
std::atomic<bool>& epilogues_allowed() {
  static std::atomic<bool> allowed{[] {
    const char* env = std::getenv("VTS_GEMM_EPILOGUES");
    return !(env && std::strcmp(env, "0") == 0);
  }()};
  return allowed;
}
}  // namespace
void set_gemm_epilogues(bool allow) { epilogues_allowed().store(allow); }
bool gemm_epilogues() { return epilogues_allowed().load(); }

void set_tf32(bool allow) { set_fp32_gemm(allow ? Fp32Gemm::tf32 : Fp32Gemm::full); }
bool tf32() { return fp32_gemm() == Fp32Gemm::tf32; }

}  // namespace vts::cuda
