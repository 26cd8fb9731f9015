#include "hnsw/graph.h"

#include <algorithm>
#include <cmath>
#include <queue>

#include "common/error.h"

namespace vecdb {
namespace {

std::uint32_t load_acquire(const std::uint32_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void store_release(std::uint32_t* p, std::uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

struct Closer {
  bool operator()(const Neighbor& a, const Neighbor& b) const { return a.first > b.first; }
};
struct Farther {
  bool operator()(const Neighbor& a, const Neighbor& b) const { return a.first < b.first; }
};
using MinQueue = std::priority_queue<Neighbor, std::vector<Neighbor>, Closer>;   // closest on top
using MaxQueue = std::priority_queue<Neighbor, std::vector<Neighbor>, Farther>;  // farthest on top

}  // namespace

HnswGraph::HnswGraph(const HnswParams& params)
    : params_(params),
      level_scale_(1.0 / std::log(static_cast<double>(std::max<std::size_t>(params.M, 2)))),
      level0_stride_(1 + 2 * params.M) {
  VECDB_REQUIRE(params.M >= 2 && params.M <= 256, "M must be between 2 and 256");
  VECDB_REQUIRE(params.ef_construction >= 1, "ef_construction must be >= 1");
}

void HnswGraph::reserve(std::size_t capacity) {
  if (capacity <= levels_.size()) return;
  VECDB_REQUIRE(capacity < (std::size_t{1} << 32) - 1, "an HNSW graph holds at most 2^32 - 2 nodes");
  level0_.resize(capacity * level0_stride_, 0);
  upper_.resize(capacity);
  levels_.resize(capacity, 0);
}

int HnswGraph::level_for(std::uint32_t node) const {
  // Uniform in (0, 1] from 53 random bits; level = floor(-ln(u) / ln(M)).
  const std::uint64_t bits = splitmix64(params_.seed * 0x2545f4914f6cdd1dull + node) >> 11;
  const double u = (static_cast<double>(bits) + 1.0) / 9007199254740992.0;
  return std::min(static_cast<int>(-std::log(u) * level_scale_), 30);
}

std::uint32_t* HnswGraph::links(std::uint32_t node, int level) {
  if (level == 0) return level0_.data() + static_cast<std::size_t>(node) * level0_stride_;
  return upper_[node].get() + static_cast<std::size_t>(level - 1) * (1 + params_.M);
}

const std::uint32_t* HnswGraph::links(std::uint32_t node, int level) const {
  return const_cast<HnswGraph*>(this)->links(node, level);
}

std::uint32_t HnswGraph::greedy_descent(const DistanceComputer& distance, std::uint32_t start,
                                        int from_level, int to_level) const {
  std::uint32_t current = start;
  float current_distance = distance.to_query(current);
  for (int level = from_level; level > to_level; --level) {
    bool moved = true;
    while (moved) {
      moved = false;
      const std::uint32_t* list = links(current, level);
      const std::uint32_t count = load_acquire(list);
      for (std::uint32_t i = 1; i <= count; ++i) {
        const std::uint32_t candidate = load_acquire(list + i);
        const float d = distance.to_query(candidate);
        if (d < current_distance) {
          current_distance = d;
          current = candidate;
          moved = true;
        }
      }
    }
  }
  return current;
}

std::vector<Neighbor> HnswGraph::search_layer(const DistanceComputer& distance, std::uint32_t start,
                                              std::size_t ef, int level, const ResultFilter& filter,
                                              VisitedSet& visited) const {
  MinQueue candidates;
  MaxQueue results;
  const float start_distance = distance.to_query(start);
  visited.insert(start);
  candidates.emplace(start_distance, start);
  if (filter.accepts(start)) results.emplace(start_distance, start);
  float worst = results.size() >= ef ? results.top().first : INFINITY;

  while (!candidates.empty()) {
    const Neighbor current = candidates.top();
    if (current.first > worst) break;
    candidates.pop();
    const std::uint32_t* list = links(current.second, level);
    const std::uint32_t count = load_acquire(list);
    for (std::uint32_t i = 1; i <= count; ++i) distance.prefetch(load_acquire(list + i));
    for (std::uint32_t i = 1; i <= count; ++i) {
      const std::uint32_t node = load_acquire(list + i);
      if (!visited.insert(node)) continue;
      const float d = distance.to_query(node);
      if (results.size() < ef || d < worst) {
        candidates.emplace(d, node);
        if (filter.accepts(node)) {
          results.emplace(d, node);
          if (results.size() > ef) results.pop();
          if (results.size() >= ef) worst = results.top().first;
        }
      }
    }
  }
  std::vector<Neighbor> sorted(results.size());
  for (std::size_t i = sorted.size(); i-- > 0;) {
    sorted[i] = results.top();
    results.pop();
  }
  return sorted;
}

std::vector<std::uint32_t> HnswGraph::select_neighbors(const DistanceComputer& distance,
                                                       const std::vector<Neighbor>& sorted_candidates,
                                                       std::size_t max_count) const {
  // Keep a candidate only if it is closer to the base node than to every
  // neighbour already kept: links then point in diverse directions.
  std::vector<std::uint32_t> kept;
  kept.reserve(max_count);
  for (const Neighbor& candidate : sorted_candidates) {
    if (kept.size() >= max_count) break;
    bool diverse = true;
    for (std::uint32_t other : kept) {
      if (distance.between(candidate.second, other) < candidate.first) {
        diverse = false;
        break;
      }
    }
    if (diverse) kept.push_back(candidate.second);
  }
  return kept;
}

void HnswGraph::write_links(std::uint32_t node, int level, const std::vector<std::uint32_t>& ids) {
  std::uint32_t* list = links(node, level);
  const std::uint32_t old_count = load_acquire(list);
  // Grow: entries first, then the count. Shrink: the count first. A reader
  // then never sees a count covering unwritten entries.
  if (ids.size() < old_count) store_release(list, static_cast<std::uint32_t>(ids.size()));
  for (std::size_t i = 0; i < ids.size(); ++i) store_release(list + 1 + i, ids[i]);
  store_release(list, static_cast<std::uint32_t>(ids.size()));
}

void HnswGraph::connect(std::uint32_t from, std::uint32_t to, int level, const DistanceComputer& distance) {
  std::lock_guard<std::mutex> lock(lock_for(from));
  std::uint32_t* list = links(from, level);
  const std::uint32_t count = load_acquire(list);
  const std::size_t limit = max_links(level);
  for (std::uint32_t i = 1; i <= count; ++i)
    if (load_acquire(list + i) == to) return;
  if (count < limit) {
    store_release(list + 1 + count, to);
    store_release(list, count + 1);
    return;
  }
  std::vector<Neighbor> candidates;
  candidates.reserve(count + 1);
  candidates.emplace_back(distance.between(from, to), to);
  for (std::uint32_t i = 1; i <= count; ++i) {
    const std::uint32_t node = load_acquire(list + i);
    candidates.emplace_back(distance.between(from, node), node);
  }
  std::sort(candidates.begin(), candidates.end());
  write_links(from, level, select_neighbors(distance, candidates, limit));
}

void HnswGraph::insert(std::uint32_t node, const DistanceComputer& distance, VisitedPool& pool) {
  VECDB_ASSERT(node < capacity());
  const int level = level_for(node);
  levels_[node] = static_cast<std::uint8_t>(level);
  if (level > 0) upper_[node].reset(new std::uint32_t[static_cast<std::size_t>(level) * (1 + params_.M)]());

  std::uint64_t entry = entry_.load(std::memory_order_acquire);
  if (entry == kNoEntry) {
    std::lock_guard<std::mutex> lock(entry_mutex_);
    entry = entry_.load(std::memory_order_acquire);
    if (entry == kNoEntry) {
      entry_.store((static_cast<std::uint64_t>(level) << 32) | node, std::memory_order_release);
      return;
    }
  }
  const int entry_level = static_cast<int>(entry >> 32);
  std::uint32_t current = greedy_descent(distance, static_cast<std::uint32_t>(entry), entry_level, level);

  // First the node's own links on every level, then the links that make it
  // reachable: a search that reaches the node can always leave it again.
  const int top = std::min(level, entry_level);
  std::vector<std::vector<std::uint32_t>> chosen(static_cast<std::size_t>(top) + 1);
  auto visited = pool.borrow(capacity());
  for (int l = top; l >= 0; --l) {
    visited->reset(capacity());
    const std::vector<Neighbor> candidates =
        search_layer(distance, current, params_.ef_construction, l, ResultFilter{capacity()}, *visited);
    chosen[l] = select_neighbors(distance, candidates, params_.M);
    {
      std::lock_guard<std::mutex> lock(lock_for(node));
      write_links(node, l, chosen[l]);
    }
    if (!candidates.empty()) current = candidates.front().second;
  }
  for (int l = top; l >= 0; --l)
    for (std::uint32_t neighbor : chosen[l]) connect(neighbor, node, l, distance);

  if (level > entry_level) {
    std::lock_guard<std::mutex> lock(entry_mutex_);
    if (level > static_cast<int>(entry_.load(std::memory_order_acquire) >> 32))
      entry_.store((static_cast<std::uint64_t>(level) << 32) | node, std::memory_order_release);
  }
}

std::vector<Neighbor> HnswGraph::search(const DistanceComputer& distance, std::size_t k, std::size_t ef,
                                        const ResultFilter& filter, VisitedPool& pool) const {
  const std::uint64_t entry = entry_.load(std::memory_order_acquire);
  if (entry == kNoEntry || k == 0) return {};
  const std::uint32_t start =
      greedy_descent(distance, static_cast<std::uint32_t>(entry), static_cast<int>(entry >> 32), 0);
  auto visited = pool.borrow(capacity());
  std::vector<Neighbor> found =
      search_layer(distance, start, std::max(ef, k), 0, filter, *visited);
  if (found.size() > k) found.resize(k);
  return found;
}

std::size_t HnswGraph::memory_bytes() const {
  std::size_t bytes = level0_.capacity() * sizeof(std::uint32_t) + levels_.capacity() +
                      upper_.capacity() * sizeof(upper_[0]);
  for (std::size_t node = 0; node < levels_.size(); ++node)
    bytes += static_cast<std::size_t>(levels_[node]) * (1 + params_.M) * sizeof(std::uint32_t);
  return bytes;
}

}  // namespace vecdb

namespace vecdb {

void HnswGraph::write(ByteWriter& out, std::size_t size) const {
  out.put<std::uint64_t>(entry_.load(std::memory_order_acquire));
  out.put_bytes(levels_.data(), size);
  out.put_bytes(level0_.data(), size * level0_stride_ * sizeof(std::uint32_t));
  for (std::size_t node = 0; node < size; ++node) {
    if (levels_[node] > 0)
      out.put_bytes(upper_[node].get(), levels_[node] * (1 + params_.M) * sizeof(std::uint32_t));
  }
}

void HnswGraph::read(ByteReader& in, std::size_t size) {
  VECDB_ASSERT(capacity() >= size);
  const std::string& what = in.what();
  const std::uint64_t entry = in.get<std::uint64_t>();
  in.get_bytes(levels_.data(), size);
  in.get_bytes(level0_.data(), size * level0_stride_ * sizeof(std::uint32_t));
  for (std::size_t node = 0; node < size; ++node) {
    const int level = levels_[node];
    VECDB_REQUIRE(level <= 30, what + " is corrupt: node " + std::to_string(node) + " has level " +
                                   std::to_string(level));
    if (level > 0) {
      upper_[node].reset(new std::uint32_t[static_cast<std::size_t>(level) * (1 + params_.M)]);
      in.get_bytes(upper_[node].get(), static_cast<std::size_t>(level) * (1 + params_.M) * sizeof(std::uint32_t));
    }
    for (int l = 0; l <= level; ++l) {
      const std::uint32_t* list = links(static_cast<std::uint32_t>(node), l);
      VECDB_REQUIRE(list[0] <= max_links(l), what + " is corrupt: too many links at node " + std::to_string(node));
      for (std::uint32_t i = 1; i <= list[0]; ++i)
        VECDB_REQUIRE(list[i] < size && levels_[list[i]] >= l,
                      what + " is corrupt: bad link from node " + std::to_string(node));
    }
  }
  if (size == 0) {
    VECDB_REQUIRE(entry == kNoEntry, what + " is corrupt: entry point in an empty graph");
  } else {
    const auto node = static_cast<std::uint32_t>(entry);
    VECDB_REQUIRE(entry != kNoEntry && node < size && static_cast<int>(entry >> 32) == levels_[node],
                  what + " is corrupt: bad entry point");
  }
  entry_.store(entry, std::memory_order_release);
}

}  // namespace vecdb
