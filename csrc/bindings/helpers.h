// Helpers the binding files share: thread counts, dimension checks and
// running a search without the GIL (bindings/gil.h) into fresh numpy arrays.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "bindings/array_checks.h"
#include "bindings/gil.h"
#include "common/bytes.h"
#include "common/error.h"
#include "common/types.h"

namespace vecdb {
namespace bindings {
namespace py = pybind11;

constexpr std::size_t kMaxThreads = 256;

inline std::size_t thread_count(int threads) {
  VECDB_REQUIRE(threads >= 1, "threads must be >= 1, got " + std::to_string(threads));
  return std::min<std::size_t>(static_cast<std::size_t>(threads), kMaxThreads);
}

// Index constructors take a Python int; a negative one must not wrap around.
inline std::size_t checked_dim(long long dim) {
  VECDB_REQUIRE(dim >= 1 && static_cast<std::size_t>(dim) <= vecdb::kMaxDim,
                "dimension must be between 1 and " + std::to_string(vecdb::kMaxDim) + ", got " +
                    std::to_string(dim));
  return static_cast<std::size_t>(dim);
}

// Rows of `dtype` to store in an index of dimension `dim` (add, refill).
inline VectorsView rows_to_store(const py::array& vectors, DType dtype, std::size_t dim) {
  const VectorsView rows = matrix_view(vectors, dtype, "vectors");
  VECDB_REQUIRE(rows.dim == dim,
                "vectors have dimension " + std::to_string(rows.dim) + ", expected " + std::to_string(dim));
  return rows;
}

inline DType query_dtype_for(DType base) { return base == DType::I8 ? DType::I8 : DType::F32; }

inline VectorsView query_view(const py::array& queries, DType base_dtype, std::size_t dim) {
  VectorsView q = vecdb::matrix_view(queries, query_dtype_for(base_dtype), "queries");
  VECDB_REQUIRE(q.dim == dim, "queries have dimension " + std::to_string(q.dim) +
                                  ", expected " + std::to_string(dim));
  return q;
}

// Runs a search without the GIL into freshly allocated (m x width) arrays.
template <class Search>
inline py::tuple search_into_arrays(std::size_t m, std::size_t width, Search&& search) {
  py::array_t<std::int64_t> ids({m, width});
  py::array_t<float> distances({m, width});
  std::int64_t* ids_out = ids.mutable_data();
  float* distances_out = distances.mutable_data();
  {
    WithoutGil without_gil;
    search(ids_out, distances_out);
  }
  return py::make_tuple(std::move(ids), std::move(distances));
}

// Candidate ids of a re-rank: a C-contiguous (n_queries, r) int64 array.
// Returns r.
inline std::size_t candidate_width(const py::array& candidate_ids, std::size_t n_queries) {
  VECDB_REQUIRE(candidate_ids.ndim() == 2 && candidate_ids.dtype().kind() == 'i' &&
                    candidate_ids.dtype().itemsize() == 8 && (candidate_ids.flags() & py::array::c_style),
                "candidate ids must be a C-contiguous 2-D int64 array");
  VECDB_REQUIRE(static_cast<std::size_t>(candidate_ids.shape(0)) == n_queries,
                "candidate ids have " + std::to_string(candidate_ids.shape(0)) + " rows for " +
                    std::to_string(n_queries) + " queries");
  return static_cast<std::size_t>(candidate_ids.shape(1));
}

inline std::size_t result_width(long long k, std::size_t n) {
  VECDB_REQUIRE(k >= 1, "k must be >= 1, got " + std::to_string(k));
  return std::min<std::size_t>(static_cast<std::size_t>(k), n);
}

inline py::bytes sink_bytes(MemorySink& sink) {
  return py::bytes(reinterpret_cast<const char*>(sink.bytes().data()), sink.bytes().size());
}

// Reads the bytes of a Python buffer (bytes, bytearray, memoryview) in
// place; info must outlive the source.
inline MemorySource buffer_source(const py::buffer_info& info, const std::string& what) {
  VECDB_REQUIRE(info.ndim == 1 && info.itemsize == 1 && (info.shape[0] <= 1 || info.strides[0] == 1),
                what + " must be contiguous bytes");
  return MemorySource(static_cast<const std::uint8_t*>(info.ptr), static_cast<std::size_t>(info.shape[0]));
}

}  // namespace bindings
}  // namespace vecdb
