// Releasing the GIL around native work, safely at interpreter exit.
#pragma once

#include <Python.h>

#include <chrono>
#include <thread>

namespace vecdb {
namespace bindings {

// Releases the GIL for its scope, like py::gil_scoped_release, but survives
// the interpreter shutting down meanwhile. A daemon thread (a user's, or a
// collection's background indexer) still in native code then cannot have
// the GIL back: CPython before 3.14 ends it with pthread_exit, a forced
// unwind, which aborts the whole process ("terminate called without an
// active exception") when it meets a noexcept destructor such as pybind11's.
// This thread stops there instead, as CPython 3.14 does itself, until the
// process exits (daemon threads never delay that).
class WithoutGil {
 public:
  WithoutGil() : state_(PyEval_SaveThread()) {}
  WithoutGil(const WithoutGil&) = delete;
  WithoutGil& operator=(const WithoutGil&) = delete;
  ~WithoutGil() {
    try {
      PyEval_RestoreThread(state_);
    } catch (...) {
      // The only thing a C function can throw is that forced unwind. Caught
      // by `...`, not as abi::__forced_unwind&: the unwind carries no C++
      // object, and binding that reference to it is undefined behaviour
      // (UBSan: "reference binding to null pointer"). Never leaves this
      // handler: one that ended without rethrowing would abort too.
      for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
    }
  }

 private:
  PyThreadState* state_;
};

}  // namespace bindings
}  // namespace vecdb
