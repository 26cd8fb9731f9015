// An allocator that aligns every block to a cache line, so a vector whose
// byte size is a multiple of 64 (d = 16, 128, 384, 768 floats...) starts and
// ends on line boundaries and a distance reads no partial line.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace vecdb {

template <class T, std::size_t Alignment = 64>
struct AlignedAllocator {
  using value_type = T;
  template <class U>
  struct rebind {
    using other = AlignedAllocator<U, Alignment>;
  };

  AlignedAllocator() = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U, Alignment>&) {}

  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(Alignment)));
  }
  void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t(Alignment)); }

  template <class U>
  bool operator==(const AlignedAllocator<U, Alignment>&) const { return true; }
  template <class U>
  bool operator!=(const AlignedAllocator<U, Alignment>&) const { return false; }
};

template <class T>
using AlignedVector = std::vector<T, AlignedAllocator<T>>;

// Resizes v to exactly `size` elements of allocation: growing reserves the
// exact size first (no geometric over-allocation), shrinking gives memory
// back.
template <class Vector>
void resize_exactly(Vector& v, std::size_t size) {
  if (size > v.capacity()) v.reserve(size);
  v.resize(size);
  if (size < v.capacity()) v.shrink_to_fit();
}

}  // namespace vecdb
