// Allocation for the big arrays of an index (vectors, links, visited tags).
//
// Growing leaves new elements uninitialized (no zeroing pass over memory
// that is written before it is read anyway: a gigabyte of vectors loads
// in one pass, not two); ask for a value (resize(n, 0)) where one matters.
//
// Every block is aligned to a cache line, so a vector whose byte size is a
// multiple of 64 (d = 16, 128, 384, 768 floats...) starts and ends on line
// boundaries and a distance reads no partial line. Blocks of 4 MiB and more
// are aligned to 2 MiB and advised as transparent huge pages: a graph search
// reads vectors scattered over the whole arena, and with 4 KiB pages nearly
// each of them costs a TLB miss (the kernel's default THP mode, "madvise",
// gives huge pages only to memory that asks).
#pragma once

#include <cstddef>
#include <new>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace vecdb {

template <class T>
struct AlignedAllocator {
  using value_type = T;
  static constexpr std::size_t kLine = 64;
  static constexpr std::size_t kHugePage = std::size_t{2} << 20;

  AlignedAllocator() = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U>&) {}

  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < 2 * kHugePage) return static_cast<T*>(::operator new(bytes, std::align_val_t(kLine)));
    const std::size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* block = ::operator new(rounded, std::align_val_t(kHugePage));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    madvise(block, rounded, MADV_HUGEPAGE);  // advice: refused or not, the memory is usable
#endif
    return static_cast<T*>(block);
  }
  void deallocate(T* p, std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    ::operator delete(p, std::align_val_t(bytes < 2 * kHugePage ? kLine : kHugePage));
  }

  // Default-initialization: plain numbers stay uninitialized.
  template <class U>
  void construct(U* p) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }

  template <class U>
  bool operator==(const AlignedAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const AlignedAllocator<U>&) const { return false; }
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
