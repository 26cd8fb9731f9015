// The ids of a collection's labels, as stored (an id key: a tag byte, then
// the id's bytes), held in memory so that a search returning ids only reads
// nothing from LMDB. A label's id never changes (a point keeps its label for
// life and labels are never reused), so an entry never goes stale: the cache
// is filled as searches meet labels and never invalidated.
//
// Not thread-safe by itself: the bindings hold the GIL for every call.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vecdb {

class IdCache {
 public:
  bool has(std::int64_t label) const {
    return label >= 0 && static_cast<std::size_t>(label) < starts_.size() &&
           starts_[static_cast<std::size_t>(label)] != kAbsent;
  }

  // Caches `key` as the id key of `label` (label >= 0; a label cached already keeps its key).
  void add(std::int64_t label, std::string_view key) {
    const auto slot = static_cast<std::size_t>(label);
    if (slot >= starts_.size()) {
      starts_.resize(std::max(slot + 1, 2 * starts_.size()), kAbsent);
      sizes_.resize(starts_.size(), 0);
    }
    if (starts_[slot] != kAbsent) return;
    starts_[slot] = arena_.size();
    sizes_[slot] = static_cast<std::uint32_t>(key.size());
    arena_.append(key.data(), key.size());
  }

  // The id key of a cached label (has(label) must hold).
  std::string_view key(std::int64_t label) const {
    const auto slot = static_cast<std::size_t>(label);
    return std::string_view(arena_).substr(starts_[slot], sizes_[slot]);
  }

  std::size_t memory_bytes() const {
    return starts_.capacity() * sizeof(std::uint64_t) + sizes_.capacity() * sizeof(std::uint32_t) +
           arena_.capacity();
  }

 private:
  static constexpr std::uint64_t kAbsent = ~std::uint64_t{0};
  std::vector<std::uint64_t> starts_;  // by label: where its key starts in arena_ (kAbsent: not cached)
  std::vector<std::uint32_t> sizes_;
  std::string arena_;
};

}  // namespace vecdb
