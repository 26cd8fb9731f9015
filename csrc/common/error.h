// Error handling for the native core.
//
// Two kinds of failure, kept apart as FAISS does: a caller's mistake (bad
// argument, wrong size) throws vecdb::Error with a message the Python layer
// shows verbatim; a broken internal invariant aborts via VECDB_ASSERT, because
// continuing would return silently wrong answers.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace vecdb {

// A user-facing error: the bindings translate it to a vecdb.errors exception.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace vecdb

#define VECDB_REQUIRE(cond, message)                 \
  do {                                               \
    if (!(cond)) throw ::vecdb::Error(message);      \
  } while (0)

#define VECDB_ASSERT(cond)                                                   \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::fprintf(stderr, "vecdb: internal invariant failed: %s (%s:%d)\n", \
                   #cond, __FILE__, __LINE__);                               \
      std::abort();                                                          \
    }                                                                        \
  } while (0)
