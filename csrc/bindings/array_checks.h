// Strict checks at the numpy boundary. The Python layer converts user input
// to the exact layout first; these checks make the native module safe on its
// own: a wrong dtype, shape or layout is refused, never reinterpreted.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "common/error.h"
#include "common/types.h"
#include "flat/vectors_view.h"

namespace vecdb {
namespace py = pybind11;

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F16: return "float16";
    case DType::I8: return "int8";
    case DType::PQ8: return "pq8";
  }
  return "unknown";
}

inline DType dtype_from_name(const std::string& name) {
  if (name == "float32") return DType::F32;
  if (name == "float16") return DType::F16;
  if (name == "int8") return DType::I8;
  throw Error("unknown dtype '" + name + "'; expected float32, float16 or int8");
}

inline Metric metric_from_name(const std::string& name) {
  if (name == "l2") return Metric::L2;
  if (name == "ip") return Metric::IP;
  if (name == "cosine") return Metric::Cosine;
  throw Error("unknown metric '" + name + "'; expected l2, ip or cosine");
}

inline const char* metric_name(Metric m) {
  return m == Metric::L2 ? "l2" : (m == Metric::IP ? "ip" : "cosine");
}

inline DType dtype_of(const py::array& a, const char* what) {
  const py::dtype dt = a.dtype();
  VECDB_REQUIRE(dt.attr("isnative").cast<bool>(), std::string(what) + " must be in native byte order");
  const char kind = dt.kind();
  const auto size = dt.itemsize();
  if (kind == 'f' && size == 4) return DType::F32;
  if (kind == 'f' && size == 2) return DType::F16;
  if (kind == 'i' && size == 1) return DType::I8;
  throw Error(std::string(what) + " has unsupported dtype " + py::str(dt).cast<std::string>());
}

// Index of the first row holding NaN or +-inf, or -1. Integer rows are always
// finite. Tests the exponent bits as integers so the loop vectorizes: a
// search over a caller's matrix pays one fast pass, not a scalar one.
inline std::int64_t first_nonfinite_row(const VectorsView& v) {
  if (v.dtype == DType::I8) return -1;
  for (std::size_t i = 0; i < v.n; ++i) {
    unsigned nonfinite = 0;
    const auto* bytes = static_cast<const unsigned char*>(v.row(i));
    if (v.dtype == DType::F32) {
      for (std::size_t j = 0; j < v.dim; ++j) {
        std::uint32_t bits;
        std::memcpy(&bits, bytes + 4 * j, 4);  // memcpy: no aliasing UB
        nonfinite |= (bits & 0x7f800000u) == 0x7f800000u;
      }
    } else {
      for (std::size_t j = 0; j < v.dim; ++j) {
        std::uint16_t bits;
        std::memcpy(&bits, bytes + 2 * j, 2);
        nonfinite |= (bits & 0x7c00u) == 0x7c00u;
      }
    }
    if (nonfinite) return static_cast<std::int64_t>(i);
  }
  return -1;
}

// A borrowed view of a C-contiguous 2-D array of the expected dtype whose
// values are all finite.
inline VectorsView matrix_view(const py::array& a, DType expected, const char* what) {
  VECDB_REQUIRE(a.ndim() == 2, std::string(what) + " must be a 2-D array, got " +
                                   std::to_string(a.ndim()) + "-D");
  const DType dtype = dtype_of(a, what);
  VECDB_REQUIRE(dtype == expected, std::string(what) + " must be " + dtype_name(expected) +
                                       ", got " + dtype_name(dtype));
  VECDB_REQUIRE(a.flags() & py::array::c_style, std::string(what) + " must be C-contiguous");
  VectorsView v;
  v.dtype = dtype;
  v.data = a.data();
  v.n = static_cast<std::size_t>(a.shape(0));
  v.dim = static_cast<std::size_t>(a.shape(1));
  VECDB_REQUIRE(v.dim >= 1 && v.dim <= kMaxDim, std::string(what) + " dimension must be between 1 and " +
                                                    std::to_string(kMaxDim) + ", got " +
                                                    std::to_string(v.dim));
  const std::int64_t bad = first_nonfinite_row(v);
  VECDB_REQUIRE(bad < 0, std::string("row ") + std::to_string(bad) + " of " + what +
                             " contains NaN or infinity");
  return v;
}

// A filter bitset: a contiguous 1-D uint64 array; bit i of word i / 64 is
// id i. The array must stay referenced while the view is used.
struct BitsetView {
  const std::uint64_t* words = nullptr;
  std::uint64_t bits = 0;
};

inline BitsetView bitset_view(const py::object& allowed) {
  if (allowed.is_none()) return {};
  VECDB_REQUIRE(py::isinstance<py::array>(allowed), "allowed bitset must be a numpy array");
  const auto words = py::reinterpret_borrow<py::array>(allowed);
  VECDB_REQUIRE(words.ndim() == 1 && words.dtype().kind() == 'u' && words.dtype().itemsize() == 8 &&
                    (words.flags() & py::array::c_style),
                "allowed bitset must be a contiguous 1-D uint64 array");
  return {static_cast<const std::uint64_t*>(words.data()), static_cast<std::uint64_t>(words.shape(0)) * 64};
}

// The allowed-id bitset of an index of n vectors: it must cover every id.
inline const std::uint64_t* allowed_words(const py::object& allowed, std::size_t n) {
  const BitsetView view = bitset_view(allowed);
  VECDB_REQUIRE(view.words == nullptr || view.bits >= n,
                "allowed bitset has " + std::to_string(view.bits / 64) + " words; " + std::to_string((n + 63) / 64) +
                    " are needed for " + std::to_string(n) + " vectors");
  return view.words;
}

// A 1-D int64 id array of the expected length (-1: any length).
inline py::array_t<std::int64_t, py::array::c_style> id_array(const py::object& ids, long long expected) {
  VECDB_REQUIRE(py::isinstance<py::array>(ids), "ids must be a numpy array");
  const auto array = py::reinterpret_borrow<py::array>(ids);
  VECDB_REQUIRE(array.ndim() == 1 && array.dtype().kind() == 'i' && array.dtype().itemsize() == 8 &&
                    (array.flags() & py::array::c_style),
                "ids must be a contiguous 1-D int64 array");
  VECDB_REQUIRE(expected < 0 || array.shape(0) == expected,
                "got " + std::to_string(array.shape(0)) + " ids for " + std::to_string(expected) + " vectors");
  return py::array_t<std::int64_t, py::array::c_style>::ensure(array);
}

}  // namespace vecdb
