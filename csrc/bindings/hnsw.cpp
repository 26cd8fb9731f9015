// Bindings for the HNSW graph index: building, removing and compacting,
// filtered and exact search, re-ranking by stored vectors, persistence.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bindings/array_checks.h"
#include "bindings/helpers.h"
#include "bindings/register.h"
#include "common/bytes.h"
#include "common/error.h"
#include "hnsw/hnsw_index.h"
#include "pq/product_quantizer.h"

namespace vecdb {
namespace bindings {
namespace {

py::dict hnsw_stats(const HnswIndex& self) {
  const HnswIndexStats stats = self.stats();
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

}  // namespace

void register_hnsw(py::module_& m) {
  py::class_<HnswIndex>(m, "HnswIndex")
      .def(py::init([](long long dim, const std::string& metric, const std::string& dtype, long long M,
                       long long ef_construction, unsigned long long seed,
                       const std::shared_ptr<ProductQuantizer>& quantizer) {
             VECDB_REQUIRE(M >= 2 && M <= 256, "M must be between 2 and 256, got " + std::to_string(M));
             VECDB_REQUIRE(ef_construction >= 1 && ef_construction <= 100000,
                           "ef_construction must be between 1 and 100000, got " + std::to_string(ef_construction));
             HnswParams params;
             params.M = static_cast<std::size_t>(M);
             params.ef_construction = static_cast<std::size_t>(ef_construction);
             params.seed = seed;
             if (quantizer) {
               // A copy: retraining the caller's quantizer must not change
               // what this index's codes mean.
               auto codebooks = std::make_shared<const ProductQuantizer>(*quantizer);
               return new HnswIndex(checked_dim(dim), metric_from_name(metric), DType::PQ8, params,
                                    std::move(codebooks));
             }
             const DType storage = dtype_from_name(dtype);
             VECDB_REQUIRE(storage != DType::I8, "an HNSW index stores float32 or float16 vectors, not int8");
             return new HnswIndex(checked_dim(dim), metric_from_name(metric), storage, params);
           }),
           py::arg("dim"), py::arg("metric"), py::arg("dtype"), py::arg("M"), py::arg("ef_construction"),
           py::arg("seed"), py::arg("quantizer") = nullptr)
      .def_property_readonly("dim", &HnswIndex::dim)
      .def_property_readonly("metric", [](const HnswIndex& self) { return metric_name(self.metric()); })
      .def_property_readonly("dtype", [](const HnswIndex& self) { return dtype_name(self.dtype()); })
      .def_property_readonly("M", [](const HnswIndex& self) { return self.params().M; })
      .def_property_readonly("ef_construction", [](const HnswIndex& self) { return self.params().ef_construction; })
      .def_property_readonly("seed", [](const HnswIndex& self) { return self.params().seed; })
      .def_property_readonly("quantizer",
                             [](const HnswIndex& self) -> std::shared_ptr<ProductQuantizer> {
                               if (!self.pq()) return nullptr;
                               return std::make_shared<ProductQuantizer>(*self.pq());
                             })
      .def_property_readonly("size", &HnswIndex::size)
      .def_property_readonly("deleted_count", &HnswIndex::deleted_count)
      .def_property_readonly("id_bound", &HnswIndex::id_bound)
      .def_property_readonly("memory_bytes", &HnswIndex::memory_bytes)
      .def("stats", &hnsw_stats)
      .def(
          "add",
          [](HnswIndex& self, const py::array& vectors, const py::object& ids, int threads) {
            const VectorsView rows = rows_to_store(vectors, DType::F32, self.dim());
            py::array_t<std::int64_t, py::array::c_style> id_values;
            if (!ids.is_none()) id_values = id_array(ids, static_cast<long long>(rows.n));
            const std::int64_t* id_data = ids.is_none() ? nullptr : id_values.data();
            const std::size_t n_threads = thread_count(threads);
            WithoutGil without_gil;
            return self.add(static_cast<const float*>(rows.data), rows.n, id_data, n_threads);
          },
          py::arg("vectors"), py::arg("ids"), py::arg("threads"))
      .def(
          "remove",
          [](HnswIndex& self, const py::object& ids) {
            const auto id_values = id_array(ids, -1);
            WithoutGil without_gil;
            return self.remove(id_values.data(), static_cast<std::size_t>(id_values.shape(0)));
          },
          py::arg("ids"))
      .def(
          "compact",
          [](HnswIndex& self, int threads) {
            const std::size_t n_threads = thread_count(threads);
            WithoutGil without_gil;
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
            const BitsetView filter = bitset_view(allowed);
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
            const BitsetView filter = bitset_view(allowed);
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
            const BitsetView filter = bitset_view(allowed);
            WithoutGil without_gil;
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
            const auto id_values = id_array(ids, -1);
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
          [](const HnswIndex& self, int fd, bool live_vectors) {
            WithoutGil without_gil;
            FileSink sink(fd);
            self.save(sink, live_vectors ? HnswIndex::SavedVectors::kAll : HnswIndex::SavedVectors::kRetired);
          },
          py::arg("fd"), py::arg("live_vectors") = true,
          "Write the index to an open file descriptor; without live_vectors, only retired slots' vectors "
          "(read it back with HnswRefill).")
      .def_static(
          "load",
          [](int fd) {
            WithoutGil without_gil;
            FileSource source(fd);
            return HnswIndex::load(source);
          },
          py::arg("fd"), "Read an index from an open file descriptor.")
      .def("serialize",
           [](const HnswIndex& self) {
             MemorySink sink;
             {
               WithoutGil without_gil;
               self.save(sink);
             }
             return sink_bytes(sink);
           })
      .def_static(
          "deserialize",
          [](const py::buffer& data) {
            const py::buffer_info info = data.request();
            MemorySource source = buffer_source(info, "index data");
            WithoutGil without_gil;
            return HnswIndex::load(source);
          },
          py::arg("data"));

  py::class_<HnswRefill>(m, "HnswRefill")
      .def(py::init([](int fd) {
             WithoutGil without_gil;
             FileSource source(fd);
             return new HnswRefill(source);
           }),
           py::arg("fd"), "Read an index saved with or without its live vectors from an open file descriptor.")
      .def_property_readonly("awaiting", &HnswRefill::awaiting)
      .def(
          "fill",
          [](HnswRefill& self, const py::array& vectors, const py::object& ids, int threads) {
            const VectorsView rows = rows_to_store(vectors, DType::F32, self.dim());
            const auto id_values = id_array(ids, static_cast<long long>(rows.n));
            const std::size_t n_threads = thread_count(threads);
            WithoutGil without_gil;
            return self.fill(static_cast<const float*>(rows.data), id_values.data(), rows.n, n_threads);
          },
          py::arg("vectors"), py::arg("ids"), py::arg("threads"))
      .def("finish", [](HnswRefill& self) {
        WithoutGil without_gil;
        return self.finish();
      });
}

}  // namespace bindings
}  // namespace vecdb
