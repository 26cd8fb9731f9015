// Bindings for kernel selection: what the CPU offers, the SIMD levels usable
// on it, the one in use (forced by tests and benchmarks), hardware threads.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "bindings/register.h"
#include "common/parallel.h"
#include "kernels/kernels.h"

namespace vecdb {
namespace bindings {
namespace py = pybind11;
namespace {

py::dict cpu_feature_flags() {
  const CpuFeatures f = cpu_features();
  py::dict d;
  d["avx2"] = f.avx2;
  d["fma"] = f.fma;
  d["f16c"] = f.f16c;
  d["avx512f"] = f.avx512f;
  return d;
}

std::vector<std::string> simd_level_names() {
  std::vector<std::string> names;
  for (SimdLevel level : available_simd_levels())
    names.emplace_back(simd_level_name(level));
  return names;
}

}  // namespace

void register_simd(py::module_& m) {
  m.def("cpu_features", &cpu_feature_flags, "CPU features detected at run time.");
  m.def("simd_levels", &simd_level_names, "SIMD levels usable on this CPU, slowest first.");
  m.def("simd_level", [] { return std::string(simd_level_name(active_simd_level())); },
        "The SIMD level in use.");
  m.def("set_simd_level",
        [](const std::string& name) { set_simd_level(simd_level_from_name(name)); },
        py::arg("name"), "Force a SIMD level (for tests and benchmarks).");
  m.def("hardware_threads", &hardware_threads, "Hardware threads available.");
}

}  // namespace bindings
}  // namespace vecdb
