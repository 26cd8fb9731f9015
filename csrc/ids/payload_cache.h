// The payloads of a collection's labels as stored (msgpack bytes, checked
// when read from LMDB), held in memory so that a search returning payloads
// reads nothing from LMDB either: Qdrant keeps payloads in RAM by default
// for the same reason. Unlike an id, a label's payload changes when its
// point is upserted again, so the collection's writer forgets the labels it
// writes (under its write lock, before searches may trust the cache again).
// Filled as searches meet labels, up to a byte budget; past it, payloads are
// read from LMDB as before.
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

class PayloadCache {
 public:
  explicit PayloadCache(std::size_t budget_bytes) : budget_bytes_(budget_bytes) {}

  bool has(std::int64_t label) const {
    return label >= 0 && static_cast<std::size_t>(label) < payloads_.size() &&
           !payloads_[static_cast<std::size_t>(label)].empty();
  }

  // Caches `payload` (never empty: msgpack of {} is one byte) for `label`
  // (>= 0) unless the budget is spent; whether it did.
  bool add(std::int64_t label, std::string_view payload) {
    const auto slot = static_cast<std::size_t>(label);
    if (has(label) || payload.empty()) return has(label);
    if (used_bytes_ + payload.size() > budget_bytes_) return false;
    if (slot >= payloads_.size()) payloads_.resize(std::max(slot + 1, 2 * payloads_.size()));
    payloads_[slot].assign(payload.data(), payload.size());
    used_bytes_ += payload.size();
    return true;
  }

  // Counts the batches of labels forgotten: a search that read payloads
  // from LMDB adds them only if no write forgot any since it began (else
  // it could put back a payload a write had just replaced).
  std::uint64_t generation() const { return generation_; }
  void next_generation() { ++generation_; }

  void forget(std::int64_t label) {
    if (!has(label)) return;
    std::string& payload = payloads_[static_cast<std::size_t>(label)];
    used_bytes_ -= payload.size();
    std::string().swap(payload);
  }

  // The payload of a cached label (has(label) must hold).
  std::string_view payload(std::int64_t label) const { return payloads_[static_cast<std::size_t>(label)]; }

  std::size_t memory_bytes() const { return payloads_.capacity() * sizeof(std::string) + used_bytes_; }

 private:
  std::size_t budget_bytes_;
  std::size_t used_bytes_ = 0;
  std::uint64_t generation_ = 0;
  std::vector<std::string> payloads_;  // by label: empty when not cached
};

}  // namespace vecdb
