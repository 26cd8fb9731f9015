// How the HNSW graph reaches vectors: only through this interface, so one
// graph serves float32, float16, PQ codes or a truncated (MRL) prefix. It
// lives outside hnsw/ so that the storages implementing it (dense_vectors.h,
// pq/pq_distance.h) do not depend on the graph.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vecdb {

class DistanceComputer {
 public:
  virtual ~DistanceComputer() = default;
  // Distance from the query this computer is bound to.
  virtual float to_query(std::uint32_t node) const = 0;
  // Four distances from the query at once: a neighbour list is scored in
  // groups of four, which keeps several memory streams in flight.
  virtual void to_query4(const std::uint32_t* nodes, float* out) const {
    for (int i = 0; i < 4; ++i) out[i] = to_query(nodes[i]);
  }
  // Distance between two stored nodes (graph construction and pruning).
  virtual float between(std::uint32_t a, std::uint32_t b) const = 0;
  // Hint that these nodes' data will be read soon.
  virtual void prefetch(const std::uint32_t* nodes, std::size_t count) const = 0;
};

}  // namespace vecdb
