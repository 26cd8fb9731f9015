// The HNSW graph of Malkov & Yashunin: layered proximity graph, greedy
// descent through the upper layers, ef-bounded beam search on layer 0,
// neighbour-selection heuristic with pruning; M links per node on upper
// layers and 2*M on layer 0.
//
// The graph knows nothing about vectors: every distance comes from a
// DistanceComputer. It never stores a node before the caller has made the
// node's data readable.
//
// Concurrency: insert() may run on many threads at once and concurrently
// with search(). Writers serialize per node with striped locks; readers take
// no locks and read link entries with acquire loads, so they see each link
// either before or after an update, never a half-written node (a node id is
// stored in a list only after that node's own data and links are written).
// Growing the capacity is the caller's job and must exclude every reader and
// writer (the index holds a reader-writer lock for that).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "common/bytes.h"
#include "hnsw/distance_computer.h"
#include "hnsw/visited.h"

namespace vecdb {

struct HnswParams {
  std::size_t M = 16;
  std::size_t ef_construction = 200;
  std::uint64_t seed = 0;
};

using Neighbor = std::pair<float, std::uint32_t>;  // (distance, node)

// Which nodes a search may return (it still walks through the others): ids
// below `visible`, whose bit is set in `allowed` (if given) and clear in
// `excluded` (if given; deleted nodes). Bits are read atomically, so another
// thread may set excluded bits during the search.
struct ResultFilter {
  std::size_t visible = 0;
  const std::uint64_t* allowed = nullptr;
  const std::uint64_t* excluded = nullptr;

  bool accepts(std::uint32_t node) const {
    if (node >= visible) return false;
    if (allowed && !((allowed[node >> 6] >> (node & 63)) & 1u)) return false;
    return !excluded || !((__atomic_load_n(excluded + (node >> 6), __ATOMIC_RELAXED) >> (node & 63)) & 1u);
  }
};

class HnswGraph {
 public:
  explicit HnswGraph(const HnswParams& params);

  const HnswParams& params() const { return params_; }
  std::size_t capacity() const { return levels_.size(); }

  // Caller excludes all concurrent access.
  void reserve(std::size_t capacity);

  // Level of a node: a deterministic function of the seed and the node id,
  // so a build's shape does not depend on thread scheduling.
  int level_for(std::uint32_t node) const;

  // Links node into the graph; distance is bound to node's own vector.
  void insert(std::uint32_t node, const DistanceComputer& distance, VisitedPool& pool);

  // Up to k nearest nodes to the computer's query that `filter` accepts,
  // closest first.
  std::vector<Neighbor> search(const DistanceComputer& distance, std::size_t k, std::size_t ef,
                               const ResultFilter& filter, VisitedPool& pool) const;

  std::size_t memory_bytes() const;

  // The first `size` nodes' levels, links and the entry point. The caller
  // excludes writers while saving; read() expects an empty graph reserved
  // for at least `size` nodes and validates every link.
  void write(ByteWriter& out, std::size_t size) const;
  void read(ByteReader& in, std::size_t size);

 private:
  static constexpr std::size_t kLockStripes = 1024;
  static constexpr std::uint64_t kNoEntry = ~std::uint64_t{0};

  std::size_t max_links(int level) const { return level == 0 ? 2 * params_.M : params_.M; }
  // [count, id_0, ..., id_{max-1}] for node at level.
  std::uint32_t* links(std::uint32_t node, int level);
  const std::uint32_t* links(std::uint32_t node, int level) const;
  std::mutex& lock_for(std::uint32_t node) const { return node_locks_[node % kLockStripes]; }

  std::uint32_t greedy_descent(const DistanceComputer& distance, std::uint32_t start, int from_level,
                               int to_level) const;
  std::vector<Neighbor> search_layer(const DistanceComputer& distance, std::uint32_t start, std::size_t ef,
                                     int level, const ResultFilter& filter, VisitedSet& visited) const;
  std::vector<std::uint32_t> select_neighbors(const DistanceComputer& distance,
                                              const std::vector<Neighbor>& sorted_candidates,
                                              std::size_t max_count) const;
  void connect(std::uint32_t from, std::uint32_t to, int level, const DistanceComputer& distance);
  void write_links(std::uint32_t node, int level, const std::vector<std::uint32_t>& ids);

  HnswParams params_;
  double level_scale_;
  std::size_t level0_stride_;
  std::vector<std::uint32_t> level0_;                      // capacity x (1 + 2M)
  std::vector<std::unique_ptr<std::uint32_t[]>> upper_;    // per node, levels 1..L
  std::vector<std::uint8_t> levels_;
  std::atomic<std::uint64_t> entry_{kNoEntry};             // (level << 32) | node
  std::mutex entry_mutex_;
  mutable std::array<std::mutex, kLockStripes> node_locks_;
};

}  // namespace vecdb
