// Bindings for what hits need of each label, held in memory (ids/): the id
// cache and the payload cache, and the hits of a search built from them
// here rather than per hit in Python.
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bindings/register.h"
#include "common/error.h"
#include "ids/id_cache.h"
#include "ids/payload_cache.h"

namespace py = pybind11;

namespace vecdb {
namespace bindings {
namespace {

using Labels = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;
using Distances = py::array_t<float, py::array::c_style | py::array::forcecast>;

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

// The distinct labels >= 0 of `labels`, ascending, for which `keep` holds.
template <typename Keep>
std::vector<std::int64_t> distinct_labels(const Labels& labels, Keep keep) {
  const std::int64_t* data = labels.data();
  std::vector<std::int64_t> found;
  for (py::ssize_t i = 0; i < labels.size(); ++i)
    if (data[i] >= 0 && keep(data[i])) found.push_back(data[i]);
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  return found;
}

// The distinct labels (>= 0) of `labels` that `cache` (an IdCache or a PayloadCache) lacks, ascending.
template <typename Cache>
py::list missing(const Cache& cache, const Labels& labels) {
  return py::cast(distinct_labels(labels, [&](std::int64_t label) { return !cache.has(label); }));
}

// Calls `add(label, bytes)` for each label with its bytes value from `values`.
template <typename Add>
void add_each(const Labels& labels, const py::list& values, Add add) {
  VECDB_REQUIRE(labels.ndim() == 1 && static_cast<std::size_t>(labels.size()) == values.size(),
                "add needs one value per label");
  const std::int64_t* data = labels.data();
  for (py::ssize_t i = 0; i < labels.size(); ++i) {
    VECDB_REQUIRE(data[i] >= 0, "labels are >= 0");
    VECDB_REQUIRE(PyBytes_Check(values[i].ptr()), "cached values are bytes");
    const std::string_view value = values[i].cast<std::string_view>();
    VECDB_REQUIRE(!value.empty(), "a cached value is never empty");
    add(data[i], value);
  }
}

// What a hit reports for a distance (smaller is closer): the Euclidean
// distance for l2 (never negative), the similarity otherwise. In float32, as
// vecdb.query.searcher computes it with numpy: every path reports one score.
// A search that ranks by score (text, sparse, fused) passes its scores as
// they are (`scores`).
double score_of(float distance, bool l2, bool scores) {
  if (scores) return static_cast<double>(distance);
  if (l2) return static_cast<double>(std::sqrt(std::max(distance, 0.0f)));
  return static_cast<double>(1.0f - distance);
}

// A new instance of `hit_type` (a plain class: a dataclass without
// __post_init__) with its four attributes set, without calling its
// __init__ (a Python frame per hit was a tenth of a search's time above the
// index). Steals `id`, `score` and `payload`.
py::object new_hit(PyTypeObject* hit_type, PyObject* id, PyObject* score, PyObject* payload) {
  // Interned once, never freed: attribute names live as long as the module.
  static PyObject* const names[] = {PyUnicode_InternFromString("id"), PyUnicode_InternFromString("score"),
                                    PyUnicode_InternFromString("payload"), PyUnicode_InternFromString("vector")};
  const py::object values[] = {py::reinterpret_steal<py::object>(id), py::reinterpret_steal<py::object>(score),
                               py::reinterpret_steal<py::object>(payload), py::none()};
  for (const py::object& value : values)
    if (!value) throw py::error_already_set();
  const py::tuple no_args;
  py::object hit = py::reinterpret_steal<py::object>(hit_type->tp_new(hit_type, no_args.ptr(), nullptr));
  if (!hit) throw py::error_already_set();
  for (int i = 0; i < 4; ++i)
    if (PyObject_SetAttr(hit.ptr(), names[i], values[i].ptr()) != 0) throw py::error_already_set();
  return hit;
}

// Holds CPython's automatic garbage collection off for its scope. Only
// around loops that run no Python code (no bytecode, no finalizer): no
// other thread can run meanwhile, so none sees the switch. A batch's hits
// are ~11,000 new tracked objects, which set off ~15 young-generation
// collections and their promotions, two fifths of the loop's time; held
// off, the next allocation after it collects once.
class GcPaused {
 public:
#if PY_VERSION_HEX >= 0x030A0000
  GcPaused() : was_enabled_(PyGC_Disable() == 1) {}
  ~GcPaused() {
    if (was_enabled_) PyGC_Enable();
  }
#else
  GcPaused() : gc_(py::module_::import("gc")), was_enabled_(gc_.attr("isenabled")().cast<bool>()) {
    gc_.attr("disable")();
  }
  ~GcPaused() {
    if (!was_enabled_) return;
    PyObject* result = PyObject_CallMethod(gc_.ptr(), "enable", nullptr);  // never throws out of a destructor
    if (result == nullptr) PyErr_Clear();
    Py_XDECREF(result);
  }
#endif
  GcPaused(const GcPaused&) = delete;
  GcPaused& operator=(const GcPaused&) = delete;

 private:
#if PY_VERSION_HEX < 0x030A0000
  py::module_ gc_;
#endif
  bool was_enabled_;
};

// Per row of a (queries, k) result, a hit for each label up to its first
// -1: its id from `ids`; with `payloads` (a PayloadCache, else None) its
// payload decoded by `decode` from the cache or from `read` (a dict label ->
// bytes of those the cache lacks), a label in neither (its point deleted
// after the index answered) giving no hit.
py::list hits(const py::object& hit_type, const IdCache& ids, const py::object& payloads, const py::dict& read,
              const py::object& decode, const Labels& labels, const Distances& distances, bool l2, bool scores) {
  VECDB_REQUIRE(labels.ndim() == 2 && distances.ndim() == 2 && labels.shape(0) == distances.shape(0) &&
                    labels.shape(1) == distances.shape(1),
                "labels and distances must be (queries, k) matrices of one shape");
  VECDB_REQUIRE(PyType_Check(hit_type.ptr()), "hit_type must be a class");
  const PayloadCache* cache = payloads.is_none() ? nullptr : &payloads.cast<const PayloadCache&>();
  auto* type = reinterpret_cast<PyTypeObject*>(hit_type.ptr());
  const py::ssize_t rows = labels.shape(0), width = labels.shape(1);
  const std::int64_t* label_data = labels.data();
  const float* distance_data = distances.data();
  py::list out(rows);
  // Without payloads the loop runs no Python code (decode is Python).
  std::optional<GcPaused> gc_paused;
  if (cache == nullptr) gc_paused.emplace();
  for (py::ssize_t row = 0; row < rows; ++row) {
    py::list found;
    for (py::ssize_t column = 0; column < width; ++column) {
      const std::int64_t label = label_data[row * width + column];
      if (label < 0) break;
      VECDB_REQUIRE(ids.has(label), "label " + std::to_string(label) + " is not in the id cache");
      py::object payload = py::none();
      if (cache != nullptr) {
        if (cache->has(label)) {
          const std::string_view bytes = cache->payload(label);
          payload = decode(py::bytes(bytes.data(), bytes.size()));
        } else {
          PyObject* stored = PyDict_GetItemWithError(read.ptr(), py::int_(label).ptr());  // borrowed
          if (stored == nullptr) {
            if (PyErr_Occurred()) throw py::error_already_set();
            continue;
          }
          payload = decode(py::reinterpret_borrow<py::object>(stored));
        }
      }
      const double score = score_of(distance_data[row * width + column], l2, scores);
      found.append(new_hit(type, id_of(ids.key(label)).release().ptr(), PyFloat_FromDouble(score),
                           payload.release().ptr()));
    }
    out[static_cast<std::size_t>(row)] = std::move(found);
  }
  return out;
}

}  // namespace

void register_ids(py::module_& m) {
  m.def("hits", &hits, py::arg("hit_type"), py::arg("ids"), py::arg("payloads"), py::arg("read"), py::arg("decode"),
        py::arg("labels"), py::arg("distances"), py::arg("l2"), py::arg("scores") = false,
        "Per row of a (queries, k) result, a hit_type for each label up to the first -1: its id from the IdCache "
        "`ids`, its score (sqrt of the distance for l2, 1 - distance otherwise; with `scores`, `distances` holds "
        "the scores to report) and, with `payloads` (a "
        "PayloadCache; None: payloads None), its payload decode(bytes) from the cache or from `read` "
        "(label -> bytes); a label in neither gives no hit.");
  py::class_<IdCache>(m, "IdCache", "The ids of a collection's labels, filled as searches meet them.")
      .def(py::init<>())
      .def("missing", &missing<IdCache>, py::arg("labels"),
           "The distinct labels (>= 0) of `labels` not cached yet, ascending.")
      .def(
          "add",
          [](IdCache& cache, const Labels& labels, const py::list& keys) {
            add_each(labels, keys, [&](std::int64_t label, std::string_view key) { cache.add(label, key); });
          },
          py::arg("labels"), py::arg("keys"), "Cache the id key of each label.")
      .def_property_readonly("memory_bytes", &IdCache::memory_bytes);
  py::class_<PayloadCache>(m, "PayloadCache",
                           "The stored payloads (msgpack) of a collection's labels, up to a byte budget.")
      .def(py::init<std::size_t>(), py::arg("budget_bytes"))
      .def("missing", &missing<PayloadCache>, py::arg("labels"),
           "The distinct labels (>= 0) of `labels` not cached, ascending.")
      .def(
          "add",
          [](PayloadCache& cache, const Labels& labels, const py::list& payloads, std::uint64_t generation) {
            if (generation != cache.generation()) return;
            add_each(labels, payloads, [&](std::int64_t label, std::string_view payload) { cache.add(label, payload); });
          },
          py::arg("labels"), py::arg("payloads"), py::arg("generation"),
          "Cache each label's payload while the budget lasts, unless labels were forgotten since `generation`.")
      .def(
          "forget",
          [](PayloadCache& cache, const Labels& labels) {
            cache.next_generation();
            const std::int64_t* data = labels.data();
            for (py::ssize_t i = 0; i < labels.size(); ++i) cache.forget(data[i]);
          },
          py::arg("labels"), "Drop the cached payloads of these labels (their points were written).")
      .def("clear", &PayloadCache::clear, "Forget every label (and start a new generation).")
      .def_property_readonly("generation", &PayloadCache::generation,
                             "How many times labels were forgotten (see add).")
      .def_property_readonly("memory_bytes", &PayloadCache::memory_bytes);
}

}  // namespace bindings
}  // namespace vecdb
