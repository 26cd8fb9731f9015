// Contiguous, growable storage of fixed-dimension vectors (float32, float16
// or int8), plus their inverse norms when the metric is cosine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/types.h"
#include "flat/vectors_view.h"

namespace vecdb {

class VectorStore {
 public:
  VectorStore(std::size_t dim, DType dtype, bool keep_inv_norms);

  std::size_t dim() const { return dim_; }
  DType dtype() const { return dtype_; }
  std::size_t size() const { return size_; }
  std::size_t row_bytes() const { return dim_ * dtype_size(dtype_); }

  // Appends n rows of this store's dtype (validated by the caller).
  void append(const void* rows, std::size_t n, std::size_t n_threads);

  // Borrowed view; invalidated by the next append.
  VectorsView view() const;

  // Bytes of vector and norm storage in use.
  std::size_t memory_bytes() const;

 private:
  std::size_t dim_;
  DType dtype_;
  bool keep_inv_norms_;
  std::size_t size_ = 0;
  std::vector<std::uint8_t> bytes_;
  std::vector<float> inv_norms_;
};

}  // namespace vecdb
