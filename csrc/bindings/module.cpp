// The vecdb._core module: the one place where native errors become Python
// exceptions, then each binding file's part (bindings/register.h). No logic
// lives here.
#include <pybind11/pybind11.h>

#include <exception>

#include "bindings/register.h"
#include "common/error.h"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "vecdb native core: SIMD distance kernels and exact search.";

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const vecdb::Error& e) {
      const py::object error = py::module_::import("vecdb.errors").attr("InvalidArgumentError");
      PyErr_SetString(error.ptr(), e.what());
    }
  });

  vecdb::bindings::register_flat(m);
  vecdb::bindings::register_simd(m);
  vecdb::bindings::register_hnsw(m);
  vecdb::bindings::register_pq(m);
  vecdb::bindings::register_storage(m);
  vecdb::bindings::register_ids(m);
  vecdb::bindings::register_arrays(m);
  vecdb::bindings::register_filters(m);
  vecdb::bindings::register_text(m);
  vecdb::bindings::register_fusion(m);
}
