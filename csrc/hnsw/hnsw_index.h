// An HNSW index over float32 vectors: the graph, its vector storage and the
// locking that lets searches run while other threads add.
//
// Node ids are dense and assigned in insertion order. Capacity grows by
// doubling under an exclusive lock (the only moment searches wait); adds
// and searches otherwise share the lock and run concurrently.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "common/types.h"
#include "hnsw/dense_vectors.h"
#include "hnsw/graph.h"
#include "hnsw/visited.h"

namespace vecdb {

class HnswIndex {
 public:
  HnswIndex(std::size_t dim, Metric metric, const HnswParams& params);

  std::size_t dim() const { return vectors_.dim(); }
  Metric metric() const { return vectors_.metric(); }
  const HnswParams& params() const { return graph_.params(); }
  // Ids assigned so far (deleted ones included): ids are < size().
  std::size_t size() const { return size_.load(std::memory_order_acquire); }
  std::size_t deleted_count() const { return deleted_count_.load(std::memory_order_acquire); }
  std::size_t memory_bytes() const;

  // Inserts n rows (validated by the caller) on up to n_threads threads;
  // returns the id of the first. One add runs at a time; searches go on.
  std::int64_t add(const float* rows, std::size_t n, std::size_t n_threads);

  // The whole index as bytes: a versioned, checksummed format (see
  // hnsw_index.cpp). Adds wait while it is written; searches go on.
  std::vector<std::uint8_t> serialize() const;
  // Rebuilds an index from serialize() output; a truncated, corrupted or
  // unknown-version input throws vecdb::Error, never yields a broken index.
  static std::unique_ptr<HnswIndex> deserialize(const std::uint8_t* data, std::size_t size);

  // Marks nodes deleted: never returned again, still used to navigate.
  // Throws on an id >= size() (before marking any); deleting twice is a
  // no-op. Returns how many were newly deleted.
  std::size_t remove(const std::int64_t* ids, std::size_t n);

  // k nearest live nodes of each query among the first `visible` ids, beam
  // width ef (at least k). ids/distances hold m x k, padded with -1 / +inf.
  void search(const float* queries, std::size_t m, std::size_t k, std::size_t ef,
              std::size_t visible, const std::uint64_t* allowed, std::size_t n_threads,
              std::int64_t* ids, float* distances) const;

 private:
  mutable std::mutex add_mutex_;
  DenseVectors vectors_;
  HnswGraph graph_;
  std::atomic<std::size_t> size_{0};
  std::atomic<std::size_t> deleted_count_{0};
  std::vector<std::uint64_t> deleted_;  // bitset over capacity, atomic bit ops
  mutable std::shared_mutex growth_;
  mutable VisitedPool visited_;
};

}  // namespace vecdb
