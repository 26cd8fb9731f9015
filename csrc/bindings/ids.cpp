// Bindings for the id cache (ids/id_cache.h): the ids of a search's labels
// as Python objects, built here rather than per hit in Python.
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "bindings/register.h"
#include "common/error.h"
#include "ids/id_cache.h"

namespace py = pybind11;

namespace vecdb {
namespace bindings {
namespace {

using Labels = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

constexpr char kIntTag = 'i';
constexpr char kStrTag = 's';
constexpr std::size_t kIntKeyBytes = 9;  // the tag, then 8 bytes big-endian

// The id an id key stands for (the inverse of vecdb.storage.keys.user_id_key).
py::object id_of(std::string_view key) {
  if (key.size() == kIntKeyBytes && key[0] == kIntTag) {
    std::uint64_t biased = 0;
    for (std::size_t i = 1; i < kIntKeyBytes; ++i) biased = (biased << 8) | static_cast<unsigned char>(key[i]);
    // Stored as value + 2^63: flipping the top bit gives the value back.
    return py::reinterpret_steal<py::object>(
        PyLong_FromLongLong(static_cast<long long>(biased ^ (std::uint64_t{1} << 63))));
  }
  VECDB_REQUIRE(!key.empty() && key[0] == kStrTag, "an id key has an unknown tag");
  PyObject* text = PyUnicode_DecodeUTF8(key.data() + 1, static_cast<Py_ssize_t>(key.size() - 1), "surrogatepass");
  if (text == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(text);
}

py::array_t<std::int64_t> missing(const IdCache& cache, const Labels& labels) {
  const std::int64_t* data = labels.data();
  std::vector<std::int64_t> absent;
  for (py::ssize_t i = 0; i < labels.size(); ++i)
    if (data[i] >= 0 && !cache.has(data[i])) absent.push_back(data[i]);
  py::array_t<std::int64_t> out(static_cast<py::ssize_t>(absent.size()));
  if (!absent.empty()) std::memcpy(out.mutable_data(), absent.data(), absent.size() * sizeof(std::int64_t));
  return out;
}

void add(IdCache& cache, const Labels& labels, const py::list& keys) {
  VECDB_REQUIRE(labels.ndim() == 1 && static_cast<std::size_t>(labels.size()) == keys.size(),
                "add needs one id key per label");
  const std::int64_t* data = labels.data();
  for (py::ssize_t i = 0; i < labels.size(); ++i) {
    VECDB_REQUIRE(data[i] >= 0, "labels are >= 0");
    VECDB_REQUIRE(PyBytes_Check(keys[i].ptr()), "id keys are bytes");
    const std::string_view key = keys[i].cast<std::string_view>();
    VECDB_REQUIRE(!key.empty(), "an id key is never empty");
    cache.add(data[i], key);
  }
}

// Per row of a (queries, k) label matrix, the ids up to its first -1.
py::list ids(const IdCache& cache, const Labels& labels) {
  VECDB_REQUIRE(labels.ndim() == 2, "labels must be a (queries, k) matrix");
  const py::ssize_t rows = labels.shape(0), width = labels.shape(1);
  const std::int64_t* data = labels.data();
  py::list out(rows);
  for (py::ssize_t row = 0; row < rows; ++row) {
    py::list found;
    for (py::ssize_t column = 0; column < width; ++column) {
      const std::int64_t label = data[row * width + column];
      if (label < 0) break;
      VECDB_REQUIRE(cache.has(label), "label " + std::to_string(label) + " is not in the id cache");
      found.append(id_of(cache.key(label)));
    }
    out[static_cast<std::size_t>(row)] = std::move(found);
  }
  return out;
}

}  // namespace

void register_ids(py::module_& m) {
  py::class_<IdCache>(m, "IdCache", "The ids of a collection's labels, filled as searches meet them.")
      .def(py::init<>())
      .def("missing", &missing, py::arg("labels"), "The labels (>= 0) of `labels` not cached yet.")
      .def("add", &add, py::arg("labels"), py::arg("keys"), "Cache the id key of each label.")
      .def("ids", &ids, py::arg("labels"),
           "Per row of a (queries, k) label matrix, the ids of its labels up to the first -1.")
      .def_property_readonly("memory_bytes", &IdCache::memory_bytes);
}

}  // namespace bindings
}  // namespace vecdb
