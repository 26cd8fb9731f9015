// Bindings for product quantization: the quantizer (training, codes, lookup
// tables, ADC search over a code matrix).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "bindings/helpers.h"
#include "bindings/register.h"
#include "common/bytes.h"
#include "pq/adc_search.h"
#include "pq/product_quantizer.h"

namespace vecdb {
namespace bindings {
namespace {

using Codes = py::array_t<std::uint8_t, py::array::c_style>;

// A (n x m) uint8 code matrix for this quantizer.
Codes code_matrix(const ProductQuantizer& pq, const py::array& codes) {
  VECDB_REQUIRE(codes.ndim() == 2 && codes.dtype().kind() == 'u' && codes.dtype().itemsize() == 1 &&
                    (codes.flags() & py::array::c_style),
                "codes must be a C-contiguous 2-D uint8 array");
  VECDB_REQUIRE(static_cast<std::size_t>(codes.shape(1)) == pq.m(),
                "codes have " + std::to_string(codes.shape(1)) + " bytes per vector, the quantizer " +
                    std::to_string(pq.m()));
  return Codes::ensure(codes);
}

VectorsView rows_for(const ProductQuantizer& pq, const py::array& rows, const char* what) {
  const VectorsView view = matrix_view(rows, DType::F32, what);
  VECDB_REQUIRE(view.dim == pq.dim(), std::string(what) + " have dimension " + std::to_string(view.dim) +
                                          ", expected " + std::to_string(pq.dim()));
  return view;
}

// The vectors codes stand for, by `decode` (the caller's space) or
// decode_rotated (the rotated space codes live in), without the GIL.
py::array_t<float> decoded(const ProductQuantizer& self, const py::array& codes_array,
                           void (ProductQuantizer::*decode)(const std::uint8_t*, std::size_t, float*) const) {
  const Codes codes = code_matrix(self, codes_array);
  const auto n = static_cast<std::size_t>(codes.shape(0));
  py::array_t<float> out({n, self.dim()});
  float* data = out.mutable_data();
  WithoutGil without_gil;
  (self.*decode)(codes.data(), n, data);
  return out;
}

std::shared_ptr<ProductQuantizer> load_pq(Source& source) {
  return std::shared_ptr<ProductQuantizer>(ProductQuantizer::load(source).release());
}

}  // namespace

void register_pq(py::module_& m) {
  py::class_<ProductQuantizer, std::shared_ptr<ProductQuantizer>>(m, "ProductQuantizer")
      .def(py::init([](long long dim, long long sub_vectors, const std::string& metric) {
             VECDB_REQUIRE(sub_vectors >= 1, "m (sub-vectors) must be >= 1, got " + std::to_string(sub_vectors));
             return std::make_shared<ProductQuantizer>(checked_dim(dim), static_cast<std::size_t>(sub_vectors),
                                                       metric_from_name(metric));
           }),
           py::arg("dim"), py::arg("m"), py::arg("metric"))
      .def_property_readonly("dim", &ProductQuantizer::dim)
      .def_property_readonly("m", &ProductQuantizer::m)
      .def_property_readonly("metric", [](const ProductQuantizer& self) { return metric_name(self.metric()); })
      .def_property_readonly("trained", &ProductQuantizer::trained)
      .def_property_readonly("centroids",
                             [](const ProductQuantizer& self) {
                               self.require_trained();
                               py::array_t<float> out({self.m(), ProductQuantizer::kCentroids, self.sub_dim()});
                               std::copy(self.centroids().begin(), self.centroids().end(), out.mutable_data());
                               return out;
                             })
      .def_property_readonly("rotation",
                             [](const ProductQuantizer& self) -> py::object {
                               if (self.rotation().empty()) return py::none();
                               py::array_t<float> out({self.dim(), self.dim()});
                               std::copy(self.rotation().begin(), self.rotation().end(), out.mutable_data());
                               return std::move(out);
                             })
      .def(
          "set_rotation",
          [](ProductQuantizer& self, const py::object& rotation) {
            if (rotation.is_none()) return self.set_rotation(nullptr);
            const VectorsView view = matrix_view(py::reinterpret_borrow<py::array>(rotation), DType::F32, "rotation");
            VECDB_REQUIRE(view.n == self.dim() && view.dim == self.dim(),
                          "the rotation must be a " + std::to_string(self.dim()) + " x " + std::to_string(self.dim()) +
                              " matrix");
            self.set_rotation(static_cast<const float*>(view.data));
          },
          py::arg("rotation"))
      .def("decode_rotated", [](const ProductQuantizer& self, const py::array& codes) {
             return decoded(self, codes, &ProductQuantizer::decode_rotated);
           }, py::arg("codes"))
      .def(
          "train",
          [](ProductQuantizer& self, const py::array& rows, long long iterations, long long max_samples,
             unsigned long long seed, int threads) {
            const VectorsView view = rows_for(self, rows, "training vectors");
            VECDB_REQUIRE(iterations >= 1 && iterations <= 1000,
                          "iterations must be between 1 and 1000, got " + std::to_string(iterations));
            VECDB_REQUIRE(max_samples >= 256, "max_samples must be at least 256, got " + std::to_string(max_samples));
            PqTrainParams params;
            params.iterations = static_cast<std::size_t>(iterations);
            params.max_samples = static_cast<std::size_t>(max_samples);
            params.seed = seed;
            params.n_threads = thread_count(threads);
            WithoutGil without_gil;
            self.train(static_cast<const float*>(view.data), view.n, params);
          },
          py::arg("rows"), py::arg("iterations"), py::arg("max_samples"), py::arg("seed"), py::arg("threads"))
      .def(
          "encode",
          [](const ProductQuantizer& self, const py::array& rows, int threads) {
            const VectorsView view = rows_for(self, rows, "vectors");
            Codes codes({view.n, self.m()});
            std::uint8_t* out = codes.mutable_data();
            const std::size_t n_threads = thread_count(threads);
            {
              WithoutGil without_gil;
              self.encode(static_cast<const float*>(view.data), view.n, out, n_threads);
            }
            return codes;
          },
          py::arg("rows"), py::arg("threads"))
      .def("decode", [](const ProductQuantizer& self, const py::array& codes) {
             return decoded(self, codes, &ProductQuantizer::decode);
           }, py::arg("codes"))
      .def(
          "lookup_tables",
          [](const ProductQuantizer& self, const py::array& queries) {
            const VectorsView view = rows_for(self, queries, "queries");
            self.require_trained();
            py::array_t<float> out({view.n, self.m(), ProductQuantizer::kCentroids});
            float* data = out.mutable_data();
            std::vector<float> prepared(self.dim());
            for (std::size_t q = 0; q < view.n; ++q) {
              self.prepare_query(static_cast<const float*>(view.data) + q * self.dim(), prepared.data());
              self.lookup_table(prepared.data(), data + q * self.m() * ProductQuantizer::kCentroids);
            }
            return out;
          },
          py::arg("queries"))
      .def(
          "search",
          [](const ProductQuantizer& self, const py::array& queries_array, const py::array& codes_array, long long k,
             const py::object& allowed, int threads) {
            const VectorsView queries = rows_for(self, queries_array, "queries");
            const Codes codes = code_matrix(self, codes_array);
            self.require_trained();
            const auto n = static_cast<std::size_t>(codes.shape(0));
            const BitsetView filter = bitset_view(allowed);
            const std::size_t width = result_width(k, n);
            const std::size_t n_threads = thread_count(threads);
            return search_into_arrays(queries.n, width, [&](std::int64_t* ids, float* d) {
              adc_search(self, static_cast<const float*>(queries.data), queries.n, codes.data(), n, width,
                         filter.words, filter.bits, n_threads, ids, d);
            });
          },
          py::arg("queries"), py::arg("codes"), py::arg("k"), py::arg("allowed"), py::arg("threads"))
      .def("serialize",
           [](const ProductQuantizer& self) {
             MemorySink sink;
             self.save(sink);
             return sink_bytes(sink);
           })
      .def_static(
          "deserialize",
          [](const py::buffer& data) {
            const py::buffer_info info = data.request();
            MemorySource source = buffer_source(info, "codebook data");
            return load_pq(source);
          },
          py::arg("data"));

}

}  // namespace bindings
}  // namespace vecdb
