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

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace vecdb {

class PayloadCache {
 public:
  explicit PayloadCache(std::size_t budget_bytes) : budget_bytes_(budget_bytes) {}

  bool has(std::int64_t label) const { return payloads_.count(label) != 0; }

  // Caches `payload` (never empty: msgpack of {} is one byte) for `label`
  // (>= 0) unless the budget is spent; whether it holds it now.
  bool add(std::int64_t label, std::string_view payload) {
    if (has(label)) return true;
    const std::size_t cost = payload.size() + kEntryBytes;
    if (payload.empty() || used_bytes_ + cost > budget_bytes_) return false;
    payloads_.emplace(label, std::string(payload));
    used_bytes_ += cost;
    return true;
  }

  // Counts the batches of labels forgotten: a search that read payloads
  // from LMDB adds them only if no write forgot any since it began (else
  // it could put back a payload a write had just replaced).
  std::uint64_t generation() const { return generation_; }
  void next_generation() { ++generation_; }

  void forget(std::int64_t label) {
    const auto found = payloads_.find(label);
    if (found == payloads_.end()) return;
    used_bytes_ -= found->second.size() + kEntryBytes;
    payloads_.erase(found);
  }

  // Forgets every label (a read-only handle that caught up with another
  // process's writes does not know which labels they changed).
  void clear() {
    payloads_ = {};
    used_bytes_ = 0;
    ++generation_;
  }

  // The payload of a cached label (has(label) must hold).
  std::string_view payload(std::int64_t label) const { return payloads_.at(label); }

  std::size_t memory_bytes() const { return used_bytes_ + payloads_.bucket_count() * sizeof(void*); }

 private:
  // What an entry costs beside its bytes (hash node, key, string header), roughly.
  static constexpr std::size_t kEntryBytes = 64;
  std::size_t budget_bytes_;
  std::size_t used_bytes_ = 0;
  std::uint64_t generation_ = 0;
  // A map, not a vector by label: memory follows what is cached, not the largest label met.
  std::unordered_map<std::int64_t, std::string> payloads_;
};

}  // namespace vecdb
