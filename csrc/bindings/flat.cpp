// Bindings for exact search: knn and pairwise over a caller's array, the
// FlatIndex, and the exact re-ranking of any shortlist (a PQ scan's, a
// graph's): it reads only the candidates' full vectors.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "bindings/array_checks.h"
#include "bindings/helpers.h"
#include "bindings/register.h"
#include "common/error.h"
#include "flat/distances.h"
#include "flat/flat_index.h"
#include "flat/flat_search.h"
#include "flat/rerank.h"

namespace vecdb {
namespace bindings {
namespace {

FlatSearchParams search_params(std::size_t k, Metric metric, const py::object& allowed, std::size_t n,
                               int threads) {
  FlatSearchParams params;
  params.k = k;
  params.metric = metric;
  params.allowed = allowed_words(allowed, n);
  params.n_threads = thread_count(threads);
  return params;
}

py::tuple knn(const py::array& base_array, const py::array& queries_array, long long k,
              const std::string& metric_name, const py::object& allowed, int threads) {
  const VectorsView base =
      matrix_view(base_array, dtype_of(base_array, "data"), "data");
  const VectorsView queries = query_view(queries_array, base.dtype, base.dim);
  const FlatSearchParams params = search_params(
      result_width(k, base.n), metric_from_name(metric_name), allowed, base.n, threads);
  return search_into_arrays(queries.n, params.k, [&](std::int64_t* ids, float* distances) {
    flat_search(base, queries, params, ids, distances);
  });
}

py::array_t<float> pairwise(const py::array& base_array, const py::array& queries_array,
                            const std::string& metric_name, int threads) {
  const VectorsView base =
      matrix_view(base_array, dtype_of(base_array, "data"), "data");
  const VectorsView queries = query_view(queries_array, base.dtype, base.dim);
  const Metric metric = metric_from_name(metric_name);
  const std::size_t n_threads = thread_count(threads);
  py::array_t<float> out({queries.n, base.n});
  float* out_data = out.mutable_data();
  {
    WithoutGil without_gil;
    pairwise_distances(base, queries, metric, n_threads, out_data);
  }
  return out;
}

}  // namespace

void register_flat(py::module_& m) {
  m.def("knn", &knn, py::arg("data"), py::arg("queries"), py::arg("k"), py::arg("metric"),
        py::arg("allowed"), py::arg("threads"),
        "Exact k-NN of each query row among data rows (see vecdb.knn).");
  m.def("pairwise", &pairwise, py::arg("data"), py::arg("queries"), py::arg("metric"),
        py::arg("threads"), "Distance matrix (queries x data) (see vecdb.pairwise_distances).");
  py::class_<FlatIndex>(m, "FlatIndex")
      .def(py::init([](long long dim, const std::string& metric, const std::string& dtype) {
             return new FlatIndex(checked_dim(dim), metric_from_name(metric), dtype_from_name(dtype));
           }),
           py::arg("dim"), py::arg("metric"), py::arg("dtype"))
      .def_property_readonly("dim", &FlatIndex::dim)
      .def_property_readonly("metric",
                             [](const FlatIndex& self) { return metric_name(self.metric()); })
      .def_property_readonly("dtype",
                             [](const FlatIndex& self) { return dtype_name(self.dtype()); })
      .def_property_readonly("size", &FlatIndex::size)
      .def_property_readonly("memory_bytes", &FlatIndex::memory_bytes)
      .def(
          "add",
          [](FlatIndex& self, const py::array& vectors, int threads) {
            const VectorsView rows = rows_to_store(vectors, self.dtype(), self.dim());
            const std::size_t n_threads = thread_count(threads);
            WithoutGil without_gil;
            return self.add(rows.data, rows.n, n_threads);
          },
          py::arg("vectors"), py::arg("threads"))
      .def(
          "search",
          [](const FlatIndex& self, const py::array& queries_array, long long k,
             const py::object& allowed, int threads, long long visible) {
            const VectorsView queries = query_view(queries_array, self.dtype(), self.dim());
            // add() may run concurrently: search exactly the rows the caller
            // saw (and sized its filter for).
            VECDB_REQUIRE(visible >= 0, "visible must be >= 0");
            const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(visible), self.size());
            const FlatSearchParams params =
                search_params(result_width(k, n), self.metric(), allowed, n, threads);
            return search_into_arrays(queries.n, params.k, [&](std::int64_t* ids, float* d) {
              self.search(queries, n, params, ids, d);
            });
          },
          py::arg("queries"), py::arg("k"), py::arg("allowed"), py::arg("threads"),
          py::arg("visible"))
      .def(
          "copy_rows",
          [](const FlatIndex& self, const py::array_t<std::int64_t, py::array::c_style>& ids) {
            VECDB_REQUIRE(ids.ndim() == 1, "ids must be a 1-D array");
            const std::size_t count = static_cast<std::size_t>(ids.shape(0));
            py::array out(py::dtype(dtype_name(self.dtype())), {count, self.dim()});
            self.copy_rows(ids.data(), count, out.mutable_data());
            return out;
          },
          py::arg("ids"));

  m.def(
      "rerank",
      [](const py::array& queries_array, const py::array& candidate_ids, const py::array& candidate_vectors,
         const std::string& metric, long long k, int threads) {
        const VectorsView queries = matrix_view(queries_array, DType::F32, "queries");
        const std::size_t r = candidate_width(candidate_ids, queries.n);
        const VectorsView vectors = matrix_view(candidate_vectors, DType::F32, "candidate vectors");
        VECDB_REQUIRE(vectors.n == queries.n * r && vectors.dim == queries.dim,
                      "candidate vectors must be (queries x candidates, dim) = (" + std::to_string(queries.n * r) +
                          ", " + std::to_string(queries.dim) + ")");
        const std::size_t width = result_width(k, r);
        const Metric parsed = metric_from_name(metric);
        const std::size_t n_threads = thread_count(threads);
        const auto* ids_in = static_cast<const std::int64_t*>(candidate_ids.data());
        return search_into_arrays(queries.n, width, [&](std::int64_t* ids, float* d) {
          rerank(static_cast<const float*>(queries.data), queries.n, queries.dim, ids_in,
                 static_cast<const float*>(vectors.data), r, parsed, width, n_threads, ids, d);
        });
      },
      py::arg("queries"), py::arg("candidate_ids"), py::arg("candidate_vectors"), py::arg("metric"), py::arg("k"),
      py::arg("threads"), "Exact re-ranking of each query's candidates (see vecdb.rerank).");
}

}  // namespace bindings
}  // namespace vecdb
