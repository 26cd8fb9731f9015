// Bounded top-k selection: keeps the k smallest (distance, id) pairs.
//
// Ties in distance are broken by the smaller id, so the result is the same
// whichever way the scan was split across threads or blocks. NaN distances
// (only possible when finite inputs overflow) rank as +inf.
// k == 0 keeps nothing.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace vecdb {

class TopK {
 public:
  struct Entry {
    float distance;
    std::int64_t id;
  };

  explicit TopK(std::size_t k) : k_(k) { heap_.reserve(k); }

  std::size_t size() const { return heap_.size(); }

  void push(float distance, std::int64_t id) {
    if (std::isnan(distance)) distance = std::numeric_limits<float>::infinity();
    const Entry entry{distance, id};
    if (heap_.size() < k_) {
      heap_.push_back(entry);
      std::push_heap(heap_.begin(), heap_.end(), closer);
    } else if (k_ > 0 && closer(entry, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), closer);
      heap_.back() = entry;
      std::push_heap(heap_.begin(), heap_.end(), closer);
    }
  }

  // Distance of the worst kept entry, +inf until k entries are kept: a
  // candidate farther than this cannot enter.
  float threshold() const {
    return heap_.size() < k_ ? std::numeric_limits<float>::infinity() : heap_.front().distance;
  }

  void merge(const TopK& other) {
    for (const Entry& e : other.heap_) push(e.distance, e.id);
  }

  // Writes `width` results closest first; slots beyond size() get id -1 and
  // distance +inf.
  void write_sorted(std::size_t width, std::int64_t* ids, float* distances) {
    std::sort_heap(heap_.begin(), heap_.end(), closer);
    for (std::size_t r = 0; r < width; ++r) {
      const bool found = r < heap_.size();
      ids[r] = found ? heap_[r].id : -1;
      distances[r] = found ? heap_[r].distance : std::numeric_limits<float>::infinity();
    }
    heap_.clear();
  }

 private:
  // Strict order used as the heap's "less": the worst kept entry is on top.
  static bool closer(const Entry& a, const Entry& b) {
    return a.distance < b.distance || (a.distance == b.distance && a.id < b.id);
  }

  std::size_t k_;
  std::vector<Entry> heap_;
};

}  // namespace vecdb
