// Slots by the bytes of their stored row: how an index finds that a vector
// it is adding is already stored (and so becomes a copy of that slot's graph
// node instead of a node of its own; see graph.h).
//
// Identity is decided on the stored row, byte for byte: what the graph
// would compare (a cosine vector after normalizing, a float16 vector after
// rounding, PQ codes), and for every metric, since a distance of zero does
// not mean identical for inner product. Open addressing over slot numbers
// (4 bytes an entry, at most half full); a row's hash is computed from its
// bytes whenever it is needed, so nothing else is kept per slot.
//
// Not thread-safe: the index uses it from its writer only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/bytes.h"
#include "distance/dense_vectors.h"

namespace vecdb {

class RowTable {
 public:
  static constexpr std::uint32_t kAbsent = ~std::uint32_t{0};

  // The recorded slot whose row equals `slot`'s, or kAbsent after recording
  // `slot` (rows must not change while recorded).
  std::uint32_t find_or_add(std::uint32_t slot, const DenseVectors& rows) {
    if (2 * (size_ + 1) > entries_.size()) grow(rows);
    const void* row = rows.row(slot);
    for (std::size_t i = home(row, rows);; i = (i + 1) & (entries_.size() - 1)) {
      const std::uint32_t entry = entries_[i];
      if (entry == kAbsent) {
        entries_[i] = slot;
        ++size_;
        return kAbsent;
      }
      if (std::memcmp(rows.row(entry), row, rows.row_bytes()) == 0) return entry;
    }
  }

  void clear() {
    entries_.clear();
    entries_.shrink_to_fit();
    size_ = 0;
  }

  std::size_t memory_bytes() const { return entries_.capacity() * sizeof(std::uint32_t); }

 private:
  std::size_t home(const void* row, const DenseVectors& rows) const {
    return static_cast<std::size_t>(checksum64(row, rows.row_bytes())) & (entries_.size() - 1);
  }

  void grow(const DenseVectors& rows) {
    const std::vector<std::uint32_t> old = std::move(entries_);
    entries_.assign(old.empty() ? 16 : 2 * old.size(), kAbsent);
    for (std::uint32_t entry : old) {
      if (entry == kAbsent) continue;
      std::size_t i = home(rows.row(entry), rows);
      while (entries_[i] != kAbsent) i = (i + 1) & (entries_.size() - 1);
      entries_[i] = entry;
    }
  }

  std::vector<std::uint32_t> entries_;  // a power of two long (or empty); kAbsent: free
  std::size_t size_ = 0;
};

}  // namespace vecdb
