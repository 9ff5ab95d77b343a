#pragma once
// Errors carry what was expected and what was found; the library never prints and exits.
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace vts {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ShapeError : public Error {
 public:
  using Error::Error;
};

class IoError : public Error {
 public:
  using Error::Error;
};

// backward() met a tensor saved for it that was written in place after the forward pass.
class ModifiedSavedTensorError : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <class... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  return os.str();
}
}  // namespace detail

}  // namespace vts

// VTS_CHECK(cond, parts...) throws vts::Error with the parts streamed together.
#define VTS_CHECK(cond, ...)                                                \
  do {                                                                      \
    if (!(cond)) throw ::vts::Error(::vts::detail::concat(__VA_ARGS__));    \
  } while (0)

#define VTS_CHECK_SHAPE(cond, ...)                                               \
  do {                                                                           \
    if (!(cond)) throw ::vts::ShapeError(::vts::detail::concat(__VA_ARGS__));    \
  } while (0)
