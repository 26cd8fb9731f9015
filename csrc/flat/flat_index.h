// The exact index: a VectorStore searched by full scan. Searches may run
// concurrently with each other and with add(): a reader-writer lock keeps an
// append (which may reallocate) from moving memory under a running scan.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <mutex>
#include <shared_mutex>

#include "common/error.h"
#include "common/types.h"
#include "flat/flat_search.h"
#include "flat/vector_store.h"

namespace vecdb {

class FlatIndex {
 public:
  FlatIndex(std::size_t dim, Metric metric, DType dtype)
      : metric_(metric), store_(dim, dtype, metric == Metric::Cosine) {}

  std::size_t dim() const { return store_.dim(); }
  Metric metric() const { return metric_; }
  DType dtype() const { return store_.dtype(); }

  std::size_t size() const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return store_.size();
  }

  std::size_t memory_bytes() const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return store_.memory_bytes();
  }

  // Appends n rows; returns the id of the first (ids are consecutive).
  std::int64_t add(const void* rows, std::size_t n, std::size_t n_threads) {
    std::unique_lock<std::shared_mutex> lock(mutex_);
    const std::size_t first = store_.size();
    store_.append(rows, n, n_threads);
    return static_cast<std::int64_t>(first);
  }

  // Searches the first `visible` rows (the count the caller sized its
  // filter and outputs for; rows appended since are not seen).
  // params.k is the output width; ids/distances hold queries.n x k.
  void search(const VectorsView& queries, std::size_t visible, const FlatSearchParams& params,
              std::int64_t* ids, float* distances) const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    VectorsView rows = store_.view();
    if (visible < rows.n) rows.n = visible;
    flat_search(rows, queries, params, ids, distances);
  }

  // Copies rows `ids` into out (count x row bytes); throws on an unknown id.
  void copy_rows(const std::int64_t* ids, std::size_t count, void* out) const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    const VectorsView rows = store_.view();
    for (std::size_t i = 0; i < count; ++i) {
      VECDB_REQUIRE(ids[i] >= 0 && static_cast<std::size_t>(ids[i]) < rows.n,
                    "id " + std::to_string(ids[i]) + " is out of range [0, " +
                        std::to_string(rows.n) + ")");
    }
    for (std::size_t i = 0; i < count; ++i) {
      std::memcpy(static_cast<std::uint8_t*>(out) + i * store_.row_bytes(),
                  rows.row(static_cast<std::size_t>(ids[i])), store_.row_bytes());
    }
  }

 private:
  Metric metric_;
  VectorStore store_;
  mutable std::shared_mutex mutex_;
};

}  // namespace vecdb
