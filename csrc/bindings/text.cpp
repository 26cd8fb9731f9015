// Bindings for the inverted index (text/): BM25 full text and sparse
// vectors. Terms cross as Python strings (the dictionary is native, so a
// query is looked up without the GIL); labels and weights as numpy arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bindings/array_checks.h"
#include "bindings/gil.h"
#include "bindings/helpers.h"
#include "bindings/register.h"
#include "common/background_task.h"
#include "common/error.h"
#include "text/inverted_index.h"

namespace py = pybind11;

namespace vecdb {
namespace bindings {
namespace {

using Int64s = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;
using Floats = py::array_t<float, py::array::c_style | py::array::forcecast>;

TermScoring scoring_from_name(const std::string& name) {
  if (name == "bm25") return TermScoring::Bm25;
  if (name == "dot") return TermScoring::Dot;
  throw Error("scoring must be 'bm25' or 'dot', got '" + name + "'");
}

void require_1d(const py::array& array, const std::string& what, py::ssize_t length) {
  VECDB_REQUIRE(array.ndim() == 1, what + " must be 1-D");
  VECDB_REQUIRE(length < 0 || array.shape(0) == length,
                what + " has " + std::to_string(array.shape(0)) + " entries, expected " + std::to_string(length));
}

void set_points(InvertedIndex& index, const Int64s& labels, const Int64s& offsets,
                const std::vector<std::string>& terms, const Floats& weights) {
  require_1d(labels, "labels", -1);
  const auto n = labels.shape(0);
  require_1d(offsets, "offsets", n + 1);
  require_1d(weights, "weights", static_cast<py::ssize_t>(terms.size()));
  WithoutGil without_gil;
  index.set(labels.data(), static_cast<std::size_t>(n), offsets.data(), terms, weights.data());
}

void remove_points(InvertedIndex& index, const Int64s& labels) {
  require_1d(labels, "labels", -1);
  WithoutGil without_gil;
  index.remove(labels.data(), static_cast<std::size_t>(labels.shape(0)));
}

// (points, total length, document frequencies by term) <-> CorpusStatistics.
CorpusStatistics corpus_from(const py::tuple& given, std::size_t n_terms) {
  VECDB_REQUIRE(given.size() == 3, "corpus statistics are (points, total_length, document_frequencies)");
  CorpusStatistics corpus;
  corpus.points = given[0].cast<double>();
  corpus.total_length = given[1].cast<double>();
  const auto dfs = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(given[2]);
  VECDB_REQUIRE(dfs && dfs.ndim() == 1 && static_cast<std::size_t>(dfs.shape(0)) == n_terms,
                "corpus statistics need one document frequency per query term");
  for (py::ssize_t t = 0; t < dfs.shape(0); ++t) {
    VECDB_REQUIRE(std::isfinite(dfs.data()[t]) && dfs.data()[t] >= 0, "document frequencies must be finite and >= 0");
  }
  corpus.document_frequencies.assign(dfs.data(), dfs.data() + dfs.shape(0));
  return corpus;
}

py::tuple statistics(const InvertedIndex& index, const std::vector<std::string>& terms) {
  CorpusStatistics found;
  {
    WithoutGil without_gil;
    found = index.statistics(terms);
  }
  py::array_t<double> dfs(static_cast<py::ssize_t>(found.document_frequencies.size()));
  std::copy(found.document_frequencies.begin(), found.document_frequencies.end(), dfs.mutable_data());
  return py::make_tuple(found.points, found.total_length, std::move(dfs));
}

py::tuple as_arrays(const SearchResult& found) {
  Int64s labels(static_cast<py::ssize_t>(found.labels.size()));
  Floats scores(static_cast<py::ssize_t>(found.scores.size()));
  std::copy(found.labels.begin(), found.labels.end(), labels.mutable_data());
  std::copy(found.scores.begin(), found.scores.end(), scores.mutable_data());
  return py::make_tuple(std::move(labels), std::move(scores));
}

// A search's arguments, checked and copied out of Python objects (the
// bitset stays in its numpy array: whoever runs the search holds a reference).
struct SearchArguments {
  std::vector<std::string> terms;
  std::vector<float> weights;
  std::size_t k = 0;
  BitsetView bits;
  std::optional<CorpusStatistics> corpus;
};

SearchArguments search_arguments(const std::vector<std::string>& terms, const Floats& weights, long long k,
                                 const py::object& allowed, const py::object& corpus_given) {
  require_1d(weights, "query weights", static_cast<py::ssize_t>(terms.size()));
  VECDB_REQUIRE(k >= 1, "k must be >= 1, got " + std::to_string(k));
  SearchArguments arguments{terms, std::vector<float>(weights.data(), weights.data() + weights.shape(0)),
                            static_cast<std::size_t>(k), bitset_view(allowed), std::nullopt};
  if (!corpus_given.is_none()) arguments.corpus = corpus_from(corpus_given.cast<py::tuple>(), terms.size());
  return arguments;
}

SearchResult run_search(const InvertedIndex& index, const SearchArguments& arguments) {
  return index.search(arguments.terms, arguments.weights.data(), arguments.k, arguments.bits.words,
                      arguments.bits.bits, arguments.corpus ? &*arguments.corpus : nullptr);
}

py::tuple search(const InvertedIndex& index, const std::vector<std::string>& terms, const Floats& weights,
                 long long k, const py::object& allowed, const py::object& corpus_given) {
  const SearchArguments arguments = search_arguments(terms, weights, k, allowed, corpus_given);
  SearchResult found;
  {
    WithoutGil without_gil;
    found = run_search(index, arguments);
  }
  return as_arrays(found);
}

// A search started on the background thread (common/background_task.h):
// it holds the index and the bitset alive until the search has ended, even
// if nobody asks for the result.
class PendingSearch {
 public:
  PendingSearch(py::object index, py::object allowed, SearchArguments arguments)
      : index_(std::move(index)), allowed_(std::move(allowed)),
        arguments_(std::make_shared<SearchArguments>(std::move(arguments))),
        found_(std::make_shared<SearchResult>()) {
    const InvertedIndex* searched = index_.cast<const InvertedIndex*>();
    task_ = start_in_background([searched, arguments = arguments_, found = found_] {
      *found = run_search(*searched, *arguments);
    });
  }
  PendingSearch(const PendingSearch&) = delete;
  PendingSearch& operator=(const PendingSearch&) = delete;
  ~PendingSearch() {
    if (task_ == nullptr) return;
    try {
      WithoutGil without_gil;
      task_->wait();
    } catch (...) {  // nobody asked for the result: its error has no one to go to
    }
  }

  // (labels, scores), as search() returns them; raises what the search raised.
  py::tuple result() {
    VECDB_REQUIRE(task_ != nullptr, "this search's result was taken already");
    const auto task = std::move(task_);
    {
      WithoutGil without_gil;
      task->wait();
    }
    return as_arrays(*found_);
  }

 private:
  py::object index_;
  py::object allowed_;
  std::shared_ptr<SearchArguments> arguments_;
  std::shared_ptr<SearchResult> found_;
  std::shared_ptr<BackgroundTask> task_;
};

std::unique_ptr<PendingSearch> start_search(const py::object& index, const std::vector<std::string>& terms,
                                            const Floats& weights, long long k, const py::object& allowed,
                                            const py::object& corpus) {
  index.cast<const InvertedIndex&>();  // a TypeError here, not on the background thread
  return std::make_unique<PendingSearch>(index, allowed, search_arguments(terms, weights, k, allowed, corpus));
}

using Indices = py::array_t<std::uint32_t, py::array::c_style | py::array::forcecast>;

// Sparse vectors' dimension indices as terms: 4 bytes each (short strings
// stay inside std::string, no allocation), so one dictionary serves both.
std::vector<std::string> index_terms(const Indices& indices) {
  require_1d(indices, "indices", -1);
  std::vector<std::string> terms;
  terms.reserve(static_cast<std::size_t>(indices.shape(0)));
  for (py::ssize_t i = 0; i < indices.shape(0); ++i) {
    const std::uint32_t index = indices.data()[i];
    terms.emplace_back(reinterpret_cast<const char*>(&index), sizeof(index));
  }
  return terms;
}

void set_sparse(InvertedIndex& index, const Int64s& labels, const Int64s& offsets, const Indices& indices,
                const Floats& values) {
  set_points(index, labels, offsets, index_terms(indices), values);
}

py::tuple search_sparse(const InvertedIndex& index, const Indices& indices, const Floats& values, long long k,
                        const py::object& allowed) {
  return search(index, index_terms(indices), values, k, allowed, py::none());
}

std::unique_ptr<PendingSearch> start_sparse_search(const py::object& index, const Indices& indices,
                                                   const Floats& values, long long k, const py::object& allowed) {
  return start_search(index, index_terms(indices), values, k, allowed, py::none());
}

}  // namespace

void register_text(py::module_& m) {
  py::class_<PendingSearch>(m, "PendingSearch",
                            "A search running on a native background thread (InvertedIndex.start_search).")
      .def("result", &PendingSearch::result,
           "(labels, scores) when it has ended (run here if the thread had not started it yet).");
  py::class_<InvertedIndex>(m, "InvertedIndex")
      .def(py::init([](const std::string& scoring, float k1, float b) {
             return new InvertedIndex(scoring_from_name(scoring), Bm25Parameters{k1, b});
           }),
           py::arg("scoring"), py::arg("k1") = 1.2f, py::arg("b") = 0.75f)
      .def_property_readonly("scoring",
                             [](const InvertedIndex& self) {
                               return self.scoring() == TermScoring::Bm25 ? "bm25" : "dot";
                             })
      .def_property_readonly("k1", [](const InvertedIndex& self) { return self.bm25().k1; })
      .def_property_readonly("b", [](const InvertedIndex& self) { return self.bm25().b; })
      .def("__len__", &InvertedIndex::size)
      .def_property_readonly("vocabulary", &InvertedIndex::vocabulary)
      .def("memory_bytes", &InvertedIndex::memory_bytes)
      .def("__contains__", &InvertedIndex::contains)
      .def("set", &set_points, py::arg("labels"), py::arg("offsets"), py::arg("terms"), py::arg("weights"),
           "Set the terms of points: point i holds terms[offsets[i]:offsets[i+1]] with those weights "
           "(no terms: removed).")
      .def("remove", &remove_points, py::arg("labels"), "Remove points (labels not held are skipped).")
      .def("search", &search, py::arg("terms"), py::arg("weights"), py::arg("k"), py::arg("allowed") = py::none(),
           py::arg("corpus") = py::none(),
           "The k best points (labels, scores; best first) holding any of the terms, among allowed labels "
           "(a uint64 bitset by label, or None); BM25 scored with `corpus` = (points, total_length, "
           "document_frequencies by term) if given (a sharded collection's sums), else this index's own.")
      .def("set_sparse", &set_sparse, py::arg("labels"), py::arg("offsets"), py::arg("indices"), py::arg("values"),
           "set() for sparse vectors: point i holds dimensions indices[offsets[i]:offsets[i+1]] (uint32) "
           "with those values.")
      .def("search_sparse", &search_sparse, py::arg("indices"), py::arg("values"), py::arg("k"),
           py::arg("allowed") = py::none(), "search() by a sparse query vector (dot product).")
      .def("start_search", &start_search, py::arg("terms"), py::arg("weights"), py::arg("k"),
           py::arg("allowed") = py::none(), py::arg("corpus") = py::none(),
           "search() started on a native background thread, for a caller to overlap with other work: "
           "returns a PendingSearch whose result() gives what search() would.")
      .def("start_sparse_search", &start_sparse_search, py::arg("indices"), py::arg("values"), py::arg("k"),
           py::arg("allowed") = py::none(), "search_sparse() started as start_search() starts search().")
      .def("to_bytes",
           [](const InvertedIndex& self) {
             MemorySink sink;
             {
               WithoutGil without_gil;
               self.save(sink);
             }
             return sink_bytes(sink);
           },
           "The live points' terms and weights as a checksummed snapshot (from_bytes() reads it back).")
      .def_static(
          "from_bytes",
          [](const py::buffer& data) {
            const py::buffer_info info = data.request();
            MemorySource source = buffer_source(info, "text index snapshot");
            WithoutGil without_gil;
            return InvertedIndex::load(source);
          },
          py::arg("data"), "The index a to_bytes() snapshot holds (errors name damage or a format it cannot read).")
      .def("statistics", &statistics, py::arg("terms"),
           "(points, total_length, document_frequencies by term): what BM25 scores these terms with.");
}

}  // namespace bindings
}  // namespace vecdb
