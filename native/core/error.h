// Errors raised on bad user input. The binding maps each kind to the JS error class of the same
// name; nothing in the core aborts the process on input it was given.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace m2t {

enum class ErrorKind { Error, TypeError, RangeError };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& msg) : std::runtime_error(msg), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... R>
void append(std::ostringstream& os, const T& v, const R&... rest) {
  os << v;
  append(os, rest...);
}
}  // namespace detail

template <typename... A>
std::string str(const A&... parts) {
  std::ostringstream os;
  detail::append(os, parts...);
  return os.str();
}

template <typename... A>
[[noreturn]] void fail(ErrorKind kind, const A&... parts) {
  throw Error(kind, str(parts...));
}

#define M2T_CHECK(cond, ...) \
  do {                       \
    if (!(cond)) ::m2t::fail(::m2t::ErrorKind::Error, __VA_ARGS__); \
  } while (0)

}  // namespace m2t
