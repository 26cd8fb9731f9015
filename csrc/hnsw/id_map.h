// Caller ids -> slots. Ids handed out automatically (0, 1, 2...) or chosen
// densely by a database are the common case: they live in a plain array
// indexed by id (4 bytes an id, one load to look up). Ids spread far
// apart (hashes, timestamps) switch the map to a hash table for good.
// Not thread-safe: the index changes it with its writer lock and its id-map
// lock held, and reads it under one of the two.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace vecdb {

class IdMap {
 public:
  static constexpr std::uint32_t kAbsent = ~std::uint32_t{0};

  std::size_t size() const { return size_; }

  std::uint32_t find(std::int64_t id) const {
    if (!sparse_) return static_cast<std::uint64_t>(id) < dense_.size() ? dense_[id] : kAbsent;
    const auto found = hashed_.find(id);
    return found == hashed_.end() ? kAbsent : found->second;
  }

  // Brings in what find(id) reads, where that is one place (dense ids).
  void prefetch(std::int64_t id) const {
    if (!sparse_ && static_cast<std::uint64_t>(id) < dense_.size()) __builtin_prefetch(dense_.data() + id);
  }

  // Maps id to slot; returns the slot it had (kAbsent if none). id >= 0.
  std::uint32_t set(std::int64_t id, std::uint32_t slot) {
    if (!sparse_ && static_cast<std::uint64_t>(id) >= dense_.size()) {
      if (static_cast<std::uint64_t>(id) < dense_limit(size_ + 1)) {
        dense_.resize(std::max<std::size_t>(static_cast<std::size_t>(id) + 1, dense_.size() * 3 / 2), kAbsent);
      } else {
        become_sparse();
      }
    }
    std::uint32_t previous;
    if (sparse_) {
      const auto [it, inserted] = hashed_.try_emplace(id, slot);
      previous = inserted ? kAbsent : it->second;
      it->second = slot;
    } else {
      previous = dense_[id];
      dense_[id] = slot;
    }
    size_ += previous == kAbsent;
    return previous;
  }

  // Removes id; returns its slot (kAbsent if it was not there).
  std::uint32_t erase(std::int64_t id) {
    std::uint32_t slot = kAbsent;
    if (sparse_) {
      const auto found = hashed_.find(id);
      if (found != hashed_.end()) {
        slot = found->second;
        hashed_.erase(found);
      }
    } else if (static_cast<std::uint64_t>(id) < dense_.size()) {
      slot = dense_[id];
      dense_[id] = kAbsent;
    }
    size_ -= slot != kAbsent;
    return slot;
  }

  // Room for `count` ids below `id_bound` without rehashing or regrowing.
  void reserve(std::size_t count, std::uint64_t id_bound) {
    if (!sparse_ && id_bound > dense_.size() && id_bound <= dense_limit(count)) dense_.reserve(id_bound);
    if (sparse_) hashed_.reserve(count);
  }

  // Every slot s becomes new_slot[s] (compaction renumbering).
  void renumber(const std::vector<std::uint32_t>& new_slot) {
    if (sparse_) {
      for (auto& entry : hashed_) entry.second = new_slot[entry.second];
    } else {
      for (std::uint32_t& slot : dense_)
        if (slot != kAbsent) slot = new_slot[slot];
    }
  }

  std::size_t memory_bytes() const {
    // A hash node holds a next pointer, the id and the slot (rounded up by
    // malloc), plus a bucket pointer per bucket.
    return dense_.capacity() * sizeof(std::uint32_t) + hashed_.size() * 32 + hashed_.bucket_count() * sizeof(void*);
  }

 private:
  // Dense while the array would cost at most ~2 entries per id mapped.
  static std::uint64_t dense_limit(std::size_t count) { return 2 * static_cast<std::uint64_t>(count) + 1024; }

  void become_sparse() {
    hashed_.reserve(size_ + 1);
    for (std::size_t id = 0; id < dense_.size(); ++id)
      if (dense_[id] != kAbsent) hashed_.emplace(static_cast<std::int64_t>(id), dense_[id]);
    dense_.clear();
    dense_.shrink_to_fit();
    sparse_ = true;
  }

  bool sparse_ = false;
  std::size_t size_ = 0;
  std::vector<std::uint32_t> dense_;
  std::unordered_map<std::int64_t, std::uint32_t> hashed_;
};

}  // namespace vecdb
