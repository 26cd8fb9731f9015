// Bindings for checks of a caller's arrays that Python makes before any
// index sees them: one native pass instead of numpy temporaries on every
// call (a search's query check was a tenth of its time above the index).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>

#include "bindings/array_checks.h"
#include "bindings/register.h"

namespace vecdb {
namespace bindings {

void register_arrays(py::module_& m) {
  m.def(
      "first_nonfinite_row",
      [](const py::array& matrix) {
        VECDB_REQUIRE(matrix.ndim() == 2, "first_nonfinite_row needs a 2-D array");
        VECDB_REQUIRE(matrix.flags() & py::array::c_style, "first_nonfinite_row needs a C-contiguous array");
        VectorsView view;
        view.dtype = dtype_of(matrix, "matrix");
        view.data = matrix.data();
        view.n = static_cast<std::size_t>(matrix.shape(0));
        view.dim = static_cast<std::size_t>(matrix.shape(1));
        return first_nonfinite_row(view);
      },
      py::arg("matrix"),
      "Index of the first row of a C-contiguous float32, float16 or int8 matrix holding NaN or infinity, or -1.");
}

}  // namespace bindings
}  // namespace vecdb
