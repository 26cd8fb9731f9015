// Bindings for the fusion of a hybrid search's rankings (fusion/).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bindings/register.h"
#include "common/error.h"
#include "fusion/fusion.h"

namespace py = pybind11;

namespace vecdb {
namespace bindings {
namespace {

using Labels = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;
using Scores = py::array_t<float, py::array::c_style | py::array::forcecast>;

py::tuple fuse_rankings(const std::vector<Labels>& labels, const std::vector<Scores>& scores,
                        const std::vector<double>& weights, const std::string& kind, double rrf_k, long long k) {
  VECDB_REQUIRE(labels.size() == scores.size() && labels.size() == weights.size(),
                "fusion needs labels, scores and a weight for each ranking");
  VECDB_REQUIRE(kind == "rrf" || kind == "dbsf", "fusion kind must be 'rrf' or 'dbsf', got '" + kind + "'");
  VECDB_REQUIRE(std::isfinite(rrf_k) && rrf_k >= 0, "rrf k must be a finite number >= 0");
  VECDB_REQUIRE(k >= 1, "k must be >= 1, got " + std::to_string(k));
  std::vector<Ranking> rankings;
  for (std::size_t r = 0; r < labels.size(); ++r) {
    VECDB_REQUIRE(labels[r].ndim() == 1 && scores[r].ndim() == 1 && labels[r].shape(0) == scores[r].shape(0),
                  "each ranking needs as many scores as labels, as 1-D arrays");
    VECDB_REQUIRE(std::isfinite(weights[r]), "fusion weights must be finite");
    rankings.push_back({labels[r].data(), scores[r].data(), static_cast<std::size_t>(labels[r].shape(0)), weights[r]});
  }
  const Fused fused = fuse(rankings, kind == "rrf" ? FusionKind::Rrf : FusionKind::Dbsf, rrf_k,
                           static_cast<std::size_t>(k));
  py::array_t<std::int64_t> out_labels(static_cast<py::ssize_t>(fused.labels.size()));
  py::array_t<double> out_scores(static_cast<py::ssize_t>(fused.scores.size()));
  std::copy(fused.labels.begin(), fused.labels.end(), out_labels.mutable_data());
  std::copy(fused.scores.begin(), fused.scores.end(), out_scores.mutable_data());
  return py::make_tuple(std::move(out_labels), std::move(out_scores));
}

}  // namespace

void register_fusion(py::module_& m) {
  m.def("fuse", &fuse_rankings, py::arg("labels"), py::arg("scores"), py::arg("weights"), py::arg("kind"),
        py::arg("rrf_k"), py::arg("k"),
        "The k best labels of rankings (labels best first, scores higher-better, a weight each) fused by 'rrf' "
        "(weight / (rrf_k + rank)) or 'dbsf' (weight * score mapped to [0, 1] by mean +- 3 std): "
        "(labels, scores), ties by the smaller label.");
}

}  // namespace bindings
}  // namespace vecdb
