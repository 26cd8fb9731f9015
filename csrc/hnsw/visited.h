// Per-search "visited" marks that cost nothing to clear: each search bumps an
// epoch and a node counts as visited when its tag equals the epoch. Sets are
// pooled so concurrent searches each borrow their own.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "common/aligned.h"

namespace vecdb {

class VisitedSet {
 public:
  // Prepares for a search over nodes [0, capacity).
  void reset(std::size_t capacity) {
    if (tags_.size() < capacity) {
      tags_.assign(capacity, 0);
      epoch_ = 0;
    }
    if (++epoch_ == 0) {  // wrapped: old tags could collide, start over
      std::fill(tags_.begin(), tags_.end(), 0);
      epoch_ = 1;
    }
  }
  bool contains(std::uint32_t node) const { return tags_[node] == epoch_; }
  void prefetch(std::uint32_t node) const { __builtin_prefetch(tags_.data() + node); }
  // Marks node; returns false if it was already visited.
  bool insert(std::uint32_t node) {
    if (tags_[node] == epoch_) return false;
    tags_[node] = epoch_;
    return true;
  }

 private:
  AlignedVector<std::uint16_t> tags_;
  std::uint16_t epoch_ = 0;
};

class VisitedPool {
 public:
  class Lease {
   public:
    Lease(VisitedPool& pool, std::unique_ptr<VisitedSet> set) : pool_(pool), set_(std::move(set)) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { pool_.give_back(std::move(set_)); }
    VisitedSet& operator*() { return *set_; }
    VisitedSet* operator->() { return set_.get(); }

   private:
    VisitedPool& pool_;
    std::unique_ptr<VisitedSet> set_;
  };

  // Drops the pooled sets (their size follows the largest capacity seen;
  // after a compaction that is too large).
  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    free_.clear();
  }

  Lease borrow(std::size_t capacity) {
    std::unique_ptr<VisitedSet> set;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!free_.empty()) {
        set = std::move(free_.back());
        free_.pop_back();
      }
    }
    if (!set) set = std::make_unique<VisitedSet>();
    set->reset(capacity);
    return Lease(*this, std::move(set));
  }

 private:
  void give_back(std::unique_ptr<VisitedSet> set) {
    std::lock_guard<std::mutex> lock(mutex_);
    free_.push_back(std::move(set));
  }

  std::mutex mutex_;
  std::vector<std::unique_ptr<VisitedSet>> free_;
};

}  // namespace vecdb
