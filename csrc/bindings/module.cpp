// pybind11 bindings for vecdb._core: buffer checks, GIL release and the one
// place where native errors become Python exceptions. No logic lives here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bindings/array_checks.h"
#include "bindings/helpers.h"
#include "common/bytes.h"
#include "common/error.h"
#include "common/parallel.h"
#include "flat/distances.h"
#include "flat/flat_index.h"
#include "flat/flat_search.h"
#include "hnsw/hnsw_index.h"
#include "pq/product_quantizer.h"
#include "kernels/kernels.h"

namespace py = pybind11;
using namespace vecdb::bindings;
using vecdb::DType;
using vecdb::Metric;
using vecdb::VectorsView;

namespace {

vecdb::FlatSearchParams search_params(std::size_t k, Metric metric, const py::object& allowed,
                                      std::size_t n, int threads) {
  vecdb::FlatSearchParams params;
  params.k = k;
  params.metric = metric;
  params.allowed = vecdb::allowed_words(allowed, n);
  params.n_threads = thread_count(threads);
  return params;
}


py::tuple knn(const py::array& base_array, const py::array& queries_array, long long k,
              const std::string& metric_name, const py::object& allowed, int threads) {
  const VectorsView base =
      vecdb::matrix_view(base_array, vecdb::dtype_of(base_array, "data"), "data");
  const VectorsView queries = query_view(queries_array, base.dtype, base.dim);
  const vecdb::FlatSearchParams params = search_params(
      result_width(k, base.n), vecdb::metric_from_name(metric_name), allowed, base.n, threads);
  return search_into_arrays(queries.n, params.k, [&](std::int64_t* ids, float* distances) {
    vecdb::flat_search(base, queries, params, ids, distances);
  });
}

py::array_t<float> pairwise(const py::array& base_array, const py::array& queries_array,
                            const std::string& metric_name, int threads) {
  const VectorsView base =
      vecdb::matrix_view(base_array, vecdb::dtype_of(base_array, "data"), "data");
  const VectorsView queries = query_view(queries_array, base.dtype, base.dim);
  const Metric metric = vecdb::metric_from_name(metric_name);
  const std::size_t n_threads = thread_count(threads);
  py::array_t<float> out({queries.n, base.n});
  float* out_data = out.mutable_data();
  {
    py::gil_scoped_release release;
    vecdb::pairwise_distances(base, queries, metric, n_threads, out_data);
  }
  return out;
}

py::dict cpu_features() {
  const vecdb::CpuFeatures f = vecdb::cpu_features();
  py::dict d;
  d["avx2"] = f.avx2;
  d["fma"] = f.fma;
  d["f16c"] = f.f16c;
  d["avx512f"] = f.avx512f;
  return d;
}

std::vector<std::string> simd_levels() {
  std::vector<std::string> names;
  for (vecdb::SimdLevel level : vecdb::available_simd_levels())
    names.emplace_back(vecdb::simd_level_name(level));
  return names;
}

void bind_flat_index(py::module_& m) {
  py::class_<vecdb::FlatIndex>(m, "FlatIndex")
      .def(py::init([](long long dim, const std::string& metric, const std::string& dtype) {
             return new vecdb::FlatIndex(checked_dim(dim),
                                         vecdb::metric_from_name(metric),
                                         vecdb::dtype_from_name(dtype));
           }),
           py::arg("dim"), py::arg("metric"), py::arg("dtype"))
      .def_property_readonly("dim", &vecdb::FlatIndex::dim)
      .def_property_readonly("metric",
                             [](const vecdb::FlatIndex& self) { return vecdb::metric_name(self.metric()); })
      .def_property_readonly("dtype",
                             [](const vecdb::FlatIndex& self) { return vecdb::dtype_name(self.dtype()); })
      .def_property_readonly("size", &vecdb::FlatIndex::size)
      .def_property_readonly("memory_bytes", &vecdb::FlatIndex::memory_bytes)
      .def(
          "add",
          [](vecdb::FlatIndex& self, const py::array& vectors, int threads) {
            const VectorsView rows = vecdb::matrix_view(vectors, self.dtype(), "vectors");
            VECDB_REQUIRE(rows.dim == self.dim(), "vectors have dimension " +
                                                      std::to_string(rows.dim) + ", expected " +
                                                      std::to_string(self.dim()));
            const std::size_t n_threads = thread_count(threads);
            py::gil_scoped_release release;
            return self.add(rows.data, rows.n, n_threads);
          },
          py::arg("vectors"), py::arg("threads"))
      .def(
          "search",
          [](const vecdb::FlatIndex& self, const py::array& queries_array, long long k,
             const py::object& allowed, int threads, long long visible) {
            const VectorsView queries = query_view(queries_array, self.dtype(), self.dim());
            // add() may run concurrently: search exactly the rows the caller
            // saw (and sized its filter for).
            VECDB_REQUIRE(visible >= 0, "visible must be >= 0");
            const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(visible), self.size());
            const vecdb::FlatSearchParams params =
                search_params(result_width(k, n), self.metric(), allowed, n, threads);
            return search_into_arrays(queries.n, params.k, [&](std::int64_t* ids, float* d) {
              self.search(queries, n, params, ids, d);
            });
          },
          py::arg("queries"), py::arg("k"), py::arg("allowed"), py::arg("threads"),
          py::arg("visible"))
      .def(
          "copy_rows",
          [](const vecdb::FlatIndex& self, const py::array_t<std::int64_t, py::array::c_style>& ids) {
            VECDB_REQUIRE(ids.ndim() == 1, "ids must be a 1-D array");
            const std::size_t count = static_cast<std::size_t>(ids.shape(0));
            py::array out(py::dtype(vecdb::dtype_name(self.dtype())), {count, self.dim()});
            self.copy_rows(ids.data(), count, out.mutable_data());
            return out;
          },
          py::arg("ids"));
}

py::dict hnsw_stats(const vecdb::HnswIndex& self) {
  const vecdb::HnswIndexStats stats = self.stats();
  py::dict d;
  d["live"] = stats.live;
  d["deleted"] = stats.deleted;
  d["capacity"] = stats.capacity;
  d["vector_bytes"] = stats.vector_bytes;
  d["graph_bytes"] = stats.graph_bytes;
  d["id_map_bytes"] = stats.id_map_bytes;
  d["memory_bytes"] = stats.vector_bytes + stats.graph_bytes + stats.id_map_bytes;
  d["nodes_per_level"] = stats.graph.nodes_per_level;
  d["mean_out_degree"] = stats.graph.mean_out_degree;
  d["entry_level"] = stats.graph.entry_level;
  d["copies"] = stats.graph.copies;
  return d;
}

void bind_hnsw_index(py::module_& m) {
  using vecdb::HnswIndex;
  py::class_<HnswIndex>(m, "HnswIndex")
      .def(py::init([](long long dim, const std::string& metric, const std::string& dtype, long long M,
                       long long ef_construction, unsigned long long seed,
                       const std::shared_ptr<vecdb::ProductQuantizer>& quantizer) {
             VECDB_REQUIRE(M >= 2 && M <= 256, "M must be between 2 and 256, got " + std::to_string(M));
             VECDB_REQUIRE(ef_construction >= 1 && ef_construction <= 100000,
                           "ef_construction must be between 1 and 100000, got " + std::to_string(ef_construction));
             vecdb::HnswParams params;
             params.M = static_cast<std::size_t>(M);
             params.ef_construction = static_cast<std::size_t>(ef_construction);
             params.seed = seed;
             if (quantizer) {
               // A copy: retraining the caller's quantizer must not change
               // what this index's codes mean.
               auto codebooks = std::make_shared<const vecdb::ProductQuantizer>(*quantizer);
               return new HnswIndex(checked_dim(dim), vecdb::metric_from_name(metric), DType::PQ8, params,
                                    std::move(codebooks));
             }
             const DType storage = vecdb::dtype_from_name(dtype);
             VECDB_REQUIRE(storage != DType::I8, "an HNSW index stores float32 or float16 vectors, not int8");
             return new HnswIndex(checked_dim(dim), vecdb::metric_from_name(metric), storage, params);
           }),
           py::arg("dim"), py::arg("metric"), py::arg("dtype"), py::arg("M"), py::arg("ef_construction"),
           py::arg("seed"), py::arg("quantizer") = nullptr)
      .def_property_readonly("dim", &HnswIndex::dim)
      .def_property_readonly("metric", [](const HnswIndex& self) { return vecdb::metric_name(self.metric()); })
      .def_property_readonly("dtype", [](const HnswIndex& self) { return vecdb::dtype_name(self.dtype()); })
      .def_property_readonly("M", [](const HnswIndex& self) { return self.params().M; })
      .def_property_readonly("ef_construction", [](const HnswIndex& self) { return self.params().ef_construction; })
      .def_property_readonly("seed", [](const HnswIndex& self) { return self.params().seed; })
      .def_property_readonly("quantizer",
                             [](const HnswIndex& self) -> std::shared_ptr<vecdb::ProductQuantizer> {
                               if (!self.pq()) return nullptr;
                               return std::make_shared<vecdb::ProductQuantizer>(*self.pq());
                             })
      .def_property_readonly("size", &HnswIndex::size)
      .def_property_readonly("deleted_count", &HnswIndex::deleted_count)
      .def_property_readonly("id_bound", &HnswIndex::id_bound)
      .def_property_readonly("memory_bytes", &HnswIndex::memory_bytes)
      .def("stats", &hnsw_stats)
      .def(
          "add",
          [](HnswIndex& self, const py::array& vectors, const py::object& ids, int threads) {
            const VectorsView rows = vecdb::matrix_view(vectors, DType::F32, "vectors");
            VECDB_REQUIRE(rows.dim == self.dim(), "vectors have dimension " + std::to_string(rows.dim) +
                                                      ", expected " + std::to_string(self.dim()));
            py::array_t<std::int64_t, py::array::c_style> id_values;
            if (!ids.is_none()) id_values = vecdb::id_array(ids, static_cast<long long>(rows.n));
            const std::int64_t* id_data = ids.is_none() ? nullptr : id_values.data();
            const std::size_t n_threads = thread_count(threads);
            py::gil_scoped_release release;
            return self.add(static_cast<const float*>(rows.data), rows.n, id_data, n_threads);
          },
          py::arg("vectors"), py::arg("ids"), py::arg("threads"))
      .def(
          "remove",
          [](HnswIndex& self, const py::object& ids) {
            const auto id_values = vecdb::id_array(ids, -1);
            py::gil_scoped_release release;
            return self.remove(id_values.data(), static_cast<std::size_t>(id_values.shape(0)));
          },
          py::arg("ids"))
      .def(
          "compact",
          [](HnswIndex& self, int threads) {
            const std::size_t n_threads = thread_count(threads);
            py::gil_scoped_release release;
            return self.compact(n_threads);
          },
          py::arg("threads"))
      .def(
          "search",
          [](const HnswIndex& self, const py::array& queries_array, long long k, long long ef,
             const py::object& allowed, int threads) {
            const VectorsView queries = query_view(queries_array, DType::F32, self.dim());
            VECDB_REQUIRE(ef >= 1, "ef must be >= 1, got " + std::to_string(ef));
            const std::size_t width = result_width(k, self.size());
            const vecdb::BitsetView filter = vecdb::bitset_view(allowed);
            const std::size_t n_threads = thread_count(threads);
            return search_into_arrays(queries.n, width, [&](std::int64_t* ids, float* d) {
              self.search(static_cast<const float*>(queries.data), queries.n, width, static_cast<std::size_t>(ef),
                          filter.words, filter.bits, n_threads, ids, d);
            });
          },
          py::arg("queries"), py::arg("k"), py::arg("ef"), py::arg("allowed"), py::arg("threads"))
      .def(
          "exact_search",
          [](const HnswIndex& self, const py::array& queries_array, long long k, const py::object& allowed,
             int threads) {
            const VectorsView queries = query_view(queries_array, DType::F32, self.dim());
            const vecdb::BitsetView filter = vecdb::bitset_view(allowed);
            VECDB_REQUIRE(filter.words != nullptr, "exact_search needs an allowed-id filter");
            const std::size_t width = result_width(k, self.size());
            const std::size_t n_threads = thread_count(threads);
            return search_into_arrays(queries.n, width, [&](std::int64_t* ids, float* d) {
              self.exact_search(static_cast<const float*>(queries.data), queries.n, width, filter.words, filter.bits,
                                n_threads, ids, d);
            });
          },
          py::arg("queries"), py::arg("k"), py::arg("allowed"), py::arg("threads"))
      .def(
          "count",
          [](const HnswIndex& self, const py::object& allowed) {
            const vecdb::BitsetView filter = vecdb::bitset_view(allowed);
            py::gil_scoped_release release;
            return self.count(filter.words, filter.bits);
          },
          py::arg("allowed"))
      .def(
          "rerank",
          [](const HnswIndex& self, const py::array& queries_array, const py::array& candidate_ids, long long k,
             int threads) {
            const VectorsView queries = query_view(queries_array, DType::F32, self.dim());
            const std::size_t r = candidate_width(candidate_ids, queries.n);
            const std::size_t width = result_width(k, r);
            const std::size_t n_threads = thread_count(threads);
            const auto* candidates = static_cast<const std::int64_t*>(candidate_ids.data());
            return search_into_arrays(queries.n, width, [&](std::int64_t* ids, float* d) {
              self.rerank(static_cast<const float*>(queries.data), queries.n, candidates, r, width, n_threads, ids, d);
            });
          },
          py::arg("queries"), py::arg("candidate_ids"), py::arg("k"), py::arg("threads"))
      .def("contains", &HnswIndex::contains, py::arg("id"))
      .def(
          "get_vectors",
          [](const HnswIndex& self, const py::object& ids) {
            const auto id_values = vecdb::id_array(ids, -1);
            const auto n = static_cast<std::size_t>(id_values.shape(0));
            py::array_t<float> out({n, self.dim()});
            py::array_t<bool> found(n);
            self.get_vectors(id_values.data(), n, out.mutable_data(), found.mutable_data());
            return py::make_tuple(std::move(out), std::move(found));
          },
          py::arg("ids"))
      .def("ids",
           [](const HnswIndex& self) {
             const std::vector<std::int64_t> ids = self.ids();
             py::array_t<std::int64_t> out(ids.size());
             std::copy(ids.begin(), ids.end(), out.mutable_data());
             return out;
           })
      .def(
          "save",
          [](const HnswIndex& self, int fd) {
            py::gil_scoped_release release;
            vecdb::FileSink sink(fd);
            self.save(sink);
          },
          py::arg("fd"), "Write the index to an open file descriptor.")
      .def_static(
          "load",
          [](int fd) {
            py::gil_scoped_release release;
            vecdb::FileSource source(fd);
            return HnswIndex::load(source);
          },
          py::arg("fd"), "Read an index from an open file descriptor.")
      .def("serialize",
           [](const HnswIndex& self) {
             vecdb::MemorySink sink;
             {
               py::gil_scoped_release release;
               self.save(sink);
             }
             return sink_bytes(sink);
           })
      .def_static(
          "deserialize",
          [](const py::buffer& data) {
            const py::buffer_info info = data.request();
            vecdb::MemorySource source = buffer_source(info, "index data");
            py::gil_scoped_release release;
            return HnswIndex::load(source);
          },
          py::arg("data"));
}

}  // namespace

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

  m.def("knn", &knn, py::arg("data"), py::arg("queries"), py::arg("k"), py::arg("metric"),
        py::arg("allowed"), py::arg("threads"),
        "Exact k-NN of each query row among data rows (see vecdb.knn).");
  m.def("pairwise", &pairwise, py::arg("data"), py::arg("queries"), py::arg("metric"),
        py::arg("threads"), "Distance matrix (queries x data) (see vecdb.pairwise_distances).");
  m.def("cpu_features", &cpu_features, "CPU features detected at run time.");
  m.def("simd_levels", &simd_levels, "SIMD levels usable on this CPU, slowest first.");
  m.def("simd_level", [] { return std::string(vecdb::simd_level_name(vecdb::active_simd_level())); },
        "The SIMD level in use.");
  m.def("set_simd_level",
        [](const std::string& name) { vecdb::set_simd_level(vecdb::simd_level_from_name(name)); },
        py::arg("name"), "Force a SIMD level (for tests and benchmarks).");
  m.def("hardware_threads", &vecdb::hardware_threads, "Hardware threads available.");
  m.def(
      "checksum64",
      [](const py::bytes& data) {
        const std::string_view view = data;
        return vecdb::checksum64(view.data(), view.size());
      },
      py::arg("data"), "The checksum stamped on vecdb's binary formats.");
  bind_flat_index(m);
  bind_hnsw_index(m);
  bind_pq(m);
  bind_storage(m);
}
