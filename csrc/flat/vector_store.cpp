#include "flat/vector_store.h"

#include <cstring>

#include "common/error.h"
#include "flat/distances.h"

namespace vecdb {

VectorStore::VectorStore(std::size_t dim, DType dtype, bool keep_inv_norms)
    : dim_(dim), dtype_(dtype), keep_inv_norms_(keep_inv_norms) {
  VECDB_REQUIRE(dim >= 1 && dim <= kMaxDim,
                "dimension must be between 1 and " + std::to_string(kMaxDim));
}

void VectorStore::append(const void* rows, std::size_t n, std::size_t n_threads) {
  if (n == 0) return;
  const std::size_t old_size = size_;
  bytes_.resize((old_size + n) * row_bytes());
  std::memcpy(bytes_.data() + old_size * row_bytes(), rows, n * row_bytes());
  size_ = old_size + n;
  if (keep_inv_norms_) {
    inv_norms_.resize(size_);
    VectorsView added = view();
    added.data = added.row(old_size);
    added.n = n;
    compute_inv_norms(added, inv_norms_.data() + old_size, n_threads);
  }
}

VectorsView VectorStore::view() const {
  VectorsView v;
  v.dtype = dtype_;
  v.data = bytes_.data();
  v.n = size_;
  v.dim = dim_;
  v.inv_norms = keep_inv_norms_ ? inv_norms_.data() : nullptr;
  return v;
}

std::size_t VectorStore::memory_bytes() const {
  return bytes_.capacity() + inv_norms_.capacity() * sizeof(float);
}

}  // namespace vecdb
