// Little helpers for versioned binary formats: an appending writer, a reader
// that refuses to run past the end (a truncated file is a clear error, never
// a wild read), and the checksum stamped on every file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "common/error.h"

namespace vecdb {

class ByteWriter {
 public:
  template <class T>
  void put(T value) {
    static_assert(std::is_trivially_copyable<T>::value, "plain values only");
    put_bytes(&value, sizeof(T));
  }
  void put_bytes(const void* data, std::size_t size) {
    const auto* bytes = static_cast<const std::uint8_t*>(data);
    out_.insert(out_.end(), bytes, bytes + size);
  }
  std::vector<std::uint8_t>& bytes() { return out_; }

 private:
  std::vector<std::uint8_t> out_;
};

class ByteReader {
 public:
  ByteReader(const std::uint8_t* data, std::size_t size, std::string what)
      : data_(data), size_(size), what_(std::move(what)) {}

  template <class T>
  T get() {
    static_assert(std::is_trivially_copyable<T>::value, "plain values only");
    T value;
    get_bytes(&value, sizeof(T));
    return value;
  }
  void get_bytes(void* out, std::size_t size) {
    VECDB_REQUIRE(size <= size_ - offset_, what_ + " is truncated or corrupt (needed " +
                                               std::to_string(size) + " more bytes at offset " +
                                               std::to_string(offset_) + ")");
    std::memcpy(out, data_ + offset_, size);
    offset_ += size;
  }
  std::size_t offset() const { return offset_; }
  std::size_t remaining() const { return size_ - offset_; }
  const std::string& what() const { return what_; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t offset_ = 0;
  std::string what_;
};

// FNV-1a, 64-bit: catches truncation and bit rot (not an adversary).
inline std::uint64_t checksum64(const std::uint8_t* data, std::size_t size) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < size; ++i) {
    hash ^= data[i];
    hash *= 0x100000001b3ull;
  }
  return hash;
}

}  // namespace vecdb
