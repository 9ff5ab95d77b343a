#pragma once
// Error checking for every CUDA, cuBLAS and cuDNN call in vts::cuda. A failure throws
// vts::cuda::CudaError whose message names the call as written, the library's error string, and
// the file and line; nothing prints and exits. Destructors use the _NOTHROW form, which reports to
// stderr instead (an exception escaping a destructor would terminate the program).
#include <cuda_runtime.h>

#include <cctype>
#include <cstdio>
#include <string>

#include "vts/backend/cuda/runtime.hpp"

namespace vts::cuda::detail {

[[noreturn]] void throw_cuda_error(const char* library, int code, const char* error_string, const char* call,
                                   const char* file, int line);
void report_cuda_error(const char* library, int code, const char* error_string, const char* call,
                       const char* file, int line) noexcept;
const char* cublas_error_string(int status) noexcept;
// After a launch: checks the launch error and, in debug mode (set_sync_after_launch / VTS_CUDA_SYNC),
// synchronises so an execution fault is attributed to this kernel.
// While profiling (profile.hpp) it also marks the op, named `kernel` (and `detail`: see type_label).
void check_launch(const char* kernel, const char* file, int line, const char* detail = nullptr);

// The name of a type without its namespaces ("Mul", "Scale<float>"), from the compiler's
// signature of this function; static storage, made on first use. For profile names.
template <class T>
const char* type_label() {
  // Read here, not inside the lambda, whose own signature would name no T.
  static const std::string label = [](std::string s) {  // "... type_label() [with T = vts::fn::Mul]"
    const auto eq = s.find("T = ");
    if (eq == std::string::npos) return std::string("?");
    s = s.substr(eq + 4);
    const auto end = s.find_first_of(";]");
    if (end != std::string::npos) s.resize(end);
    for (auto a = s.find("(anonymous namespace)::"); a != std::string::npos; a = s.find("(anonymous namespace)::"))
      s.erase(a, 23);
    std::string out;  // drop every "ns::" qualifier, inside template arguments too
    size_t word = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == ':' && i + 1 < s.size() && s[i + 1] == ':') {
        out.resize(word);
        ++i;
        continue;
      }
      out += s[i];
      if (!(std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_')) word = out.size();
    }
    return out;
  }(__PRETTY_FUNCTION__);
  return label.c_str();
}

}  // namespace vts::cuda::detail

#define VTS_CUDA_CHECK(call)                                                                        \
  do {                                                                                              \
    const cudaError_t vts_err_ = (call);                                                            \
    if (vts_err_ != cudaSuccess) {                                                                  \
      cudaGetLastError(); /* clear a non-sticky error so later calls are not blamed */             \
      ::vts::cuda::detail::throw_cuda_error("CUDA", static_cast<int>(vts_err_), cudaGetErrorString(vts_err_), \
                                            #call, __FILE__, __LINE__);                             \
    }                                                                                               \
  } while (0)

#define VTS_CUDA_CHECK_NOTHROW(call)                                                                \
  do {                                                                                              \
    const cudaError_t vts_err_ = (call);                                                            \
    if (vts_err_ != cudaSuccess)                                                                    \
      ::vts::cuda::detail::report_cuda_error("CUDA", static_cast<int>(vts_err_), cudaGetErrorString(vts_err_), \
                                             #call, __FILE__, __LINE__);                            \
  } while (0)

#define VTS_CUBLAS_CHECK(call)                                                                      \
  do {                                                                                              \
    const int vts_st_ = static_cast<int>(call);                                                     \
    if (vts_st_ != 0)                                                                               \
      ::vts::cuda::detail::throw_cuda_error("cuBLAS", vts_st_, ::vts::cuda::detail::cublas_error_string(vts_st_), \
                                            #call, __FILE__, __LINE__);                             \
  } while (0)

// Place right after a <<<...>>> launch; `name` is the kernel's name for the message.
#define VTS_CUDA_CHECK_LAUNCH(name) ::vts::cuda::detail::check_launch(name, __FILE__, __LINE__)
// The same for a kernel instantiated per functor: `label` names it in profiles (type_label).
#define VTS_CUDA_CHECK_LAUNCH_OF(name, label) ::vts::cuda::detail::check_launch(name, __FILE__, __LINE__, label)
