#include "hnsw/hnsw_index.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "common/error.h"
#include "common/parallel.h"

namespace vecdb {

HnswIndex::HnswIndex(std::size_t dim, Metric metric, const HnswParams& params)
    : vectors_(dim, metric), graph_(params) {
  VECDB_REQUIRE(dim >= 1 && dim <= kMaxDim, "dimension must be between 1 and " + std::to_string(kMaxDim));
}

std::size_t HnswIndex::memory_bytes() const {
  std::shared_lock<std::shared_mutex> lock(growth_);
  return vectors_.memory_bytes() + graph_.memory_bytes();
}

std::int64_t HnswIndex::add(const float* rows, std::size_t n, std::size_t n_threads) {
  std::lock_guard<std::mutex> adding(add_mutex_);
  const std::size_t first = size();
  if (n == 0) return static_cast<std::int64_t>(first);
  if (first + n > graph_.capacity()) {
    std::unique_lock<std::shared_mutex> growing(growth_);
    const std::size_t capacity = std::max(first + n, 2 * graph_.capacity());
    graph_.reserve(capacity);
    vectors_.reserve(capacity);
    deleted_.resize((capacity + 63) / 64, 0);
  }
  std::shared_lock<std::shared_mutex> shared(growth_);
  for (std::size_t i = 0; i < n; ++i)
    vectors_.set(static_cast<std::uint32_t>(first + i), rows + i * dim());
  // Small batches insert in order on one thread: a single-threaded build is
  // deterministic for a given seed.
  const std::size_t threads = n >= 64 ? n_threads : 1;
  parallel_for(n, threads, [&](std::size_t i, std::size_t) {
    const auto node = static_cast<std::uint32_t>(first + i);
    const DenseDistance distance(vectors_, vectors_.row(node));
    graph_.insert(node, distance, visited_);
  });
  size_.store(first + n, std::memory_order_release);
  return static_cast<std::int64_t>(first);
}

std::size_t HnswIndex::remove(const std::int64_t* ids, std::size_t n) {
  std::shared_lock<std::shared_mutex> shared(growth_);
  const std::size_t count = size();
  for (std::size_t i = 0; i < n; ++i)
    VECDB_REQUIRE(ids[i] >= 0 && static_cast<std::size_t>(ids[i]) < count,
                  "id " + std::to_string(ids[i]) + " is out of range [0, " + std::to_string(count) + ")");
  std::size_t newly = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto id = static_cast<std::size_t>(ids[i]);
    const std::uint64_t bit = std::uint64_t{1} << (id & 63);
    const std::uint64_t before = __atomic_fetch_or(&deleted_[id >> 6], bit, __ATOMIC_RELAXED);
    if (!(before & bit)) ++newly;
  }
  deleted_count_.fetch_add(newly, std::memory_order_acq_rel);
  return newly;
}

void HnswIndex::search(const float* queries, std::size_t m, std::size_t k, std::size_t ef,
                       std::size_t visible, const std::uint64_t* allowed, std::size_t n_threads,
                       std::int64_t* ids, float* distances) const {
  std::shared_lock<std::shared_mutex> shared(growth_);
  const ResultFilter filter{visible, allowed, deleted_.data()};
  const std::size_t chunk = 16;
  const std::size_t n_chunks = (m + chunk - 1) / chunk;
  parallel_for(n_chunks, m >= 2 * chunk ? n_threads : 1, [&](std::size_t c, std::size_t) {
    std::vector<float> prepared(dim());
    for (std::size_t q = c * chunk; q < std::min(m, (c + 1) * chunk); ++q) {
      vectors_.prepare_query(queries + q * dim(), prepared.data());
      const DenseDistance distance(vectors_, prepared.data());
      const std::vector<Neighbor> found = graph_.search(distance, k, ef, filter, visited_);
      for (std::size_t r = 0; r < k; ++r) {
        const bool hit = r < found.size();
        ids[q * k + r] = hit ? static_cast<std::int64_t>(found[r].second) : -1;
        distances[q * k + r] = hit ? found[r].first : std::numeric_limits<float>::infinity();
      }
    }
  });
}

}  // namespace vecdb
