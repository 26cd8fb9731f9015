// Streams for versioned binary formats: a writer and a reader that checksum
// every byte as it passes, over memory or a file descriptor. Sections are
// read straight into their final arrays (no staging copy), so loading a large
// index costs one pass over the bytes; a reader refuses to run past the end,
// so a truncated file is a clear error, never a wild read.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"

namespace vecdb {

// A 64-bit checksum over a byte stream, fed in pieces of any size: four
// independent multiply-rotate lanes over 32-byte blocks (several GB/s, so
// loading stays bound by the disk), then a mix of the lanes and the length.
// Catches truncation and bit rot; it is not a defence against an adversary.
class Checksum {
 public:
  void update(const void* data, std::size_t size) {
    const auto* bytes = static_cast<const std::uint8_t*>(data);
    length_ += size;
    if (buffered_ > 0) {
      const std::size_t take = size < kBlock - buffered_ ? size : kBlock - buffered_;
      std::memcpy(buffer_ + buffered_, bytes, take);
      buffered_ += take, bytes += take, size -= take;
      if (buffered_ < kBlock) return;
      block(buffer_);
      buffered_ = 0;
    }
    for (; size >= kBlock; bytes += kBlock, size -= kBlock) block(bytes);
    std::memcpy(buffer_, bytes, size);
    buffered_ = size;
  }

  std::uint64_t digest() const {
    std::uint64_t h = length_;
    for (std::uint64_t lane : lanes_) h = mix(h ^ mix(lane));
    for (std::size_t i = 0; i < buffered_; ++i) h = mix(h ^ (buffer_[i] + kOdd[i & 3]));
    return mix(h);
  }

 private:
  static constexpr std::size_t kBlock = 32;
  static constexpr std::uint64_t kOdd[4] = {0x9e3779b97f4a7c15ull, 0xbf58476d1ce4e5b9ull,
                                            0x94d049bb133111ebull, 0xd6e8feb86659fd93ull};

  static std::uint64_t rotl(std::uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
  static std::uint64_t mix(std::uint64_t x) {  // splitmix64's finalizer: a bijection
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  }
  void block(const std::uint8_t* p) {
    for (int lane = 0; lane < 4; ++lane) {
      std::uint64_t word;
      std::memcpy(&word, p + 8 * lane, 8);
      lanes_[lane] = rotl(lanes_[lane] + word * kOdd[lane], 29) * kOdd[(lane + 1) & 3];
    }
  }

  std::uint64_t lanes_[4] = {1, 2, 3, 4};
  std::uint64_t length_ = 0;
  std::uint8_t buffer_[kBlock];
  std::size_t buffered_ = 0;
};

inline std::uint64_t checksum64(const void* data, std::size_t size) {
  Checksum sum;
  sum.update(data, size);
  return sum.digest();
}

// Where a ByteWriter's bytes go.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void write(const void* data, std::size_t size) = 0;
};

class MemorySink final : public Sink {
 public:
  void write(const void* data, std::size_t size) override {
    const auto* bytes = static_cast<const std::uint8_t*>(data);
    bytes_.insert(bytes_.end(), bytes, bytes + size);
  }
  std::vector<std::uint8_t>& bytes() { return bytes_; }

 private:
  std::vector<std::uint8_t> bytes_;
};

// Writes to an open file descriptor (the caller opens, fsyncs and closes it).
class FileSink final : public Sink {
 public:
  explicit FileSink(int fd) : fd_(fd) {}
  void write(const void* data, std::size_t size) override {
    const auto* bytes = static_cast<const std::uint8_t*>(data);
    while (size > 0) {
      const ssize_t written = ::write(fd_, bytes, size < kChunk ? size : kChunk);
      if (written < 0 && errno == EINTR) continue;
      VECDB_REQUIRE(written > 0, std::string("cannot write the index file: ") + std::strerror(errno));
      bytes += written, size -= static_cast<std::size_t>(written);
    }
  }

 private:
  static constexpr std::size_t kChunk = std::size_t{1} << 30;
  int fd_;
};

// Appends plain values and byte ranges, checksumming them; finish() stamps
// the checksum of everything written before it.
class ByteWriter {
 public:
  explicit ByteWriter(Sink& sink) : sink_(sink) {}

  template <class T>
  void put(T value) {
    static_assert(std::is_trivially_copyable<T>::value, "plain values only");
    put_bytes(&value, sizeof(T));
  }
  void put_bytes(const void* data, std::size_t size) {
    if (size == 0) return;
    const auto* bytes = static_cast<const std::uint8_t*>(data);
    // Small values gather in a buffer; big sections go straight through.
    if (size > kBuffer - buffered_) flush();
    if (size >= kBuffer) {
      checksum_.update(bytes, size);
      sink_.write(bytes, size);
      return;
    }
    std::memcpy(buffer_ + buffered_, bytes, size);
    buffered_ += size;
  }
  void finish() {
    flush();
    const std::uint64_t digest = checksum_.digest();
    sink_.write(&digest, sizeof(digest));
  }

 private:
  static constexpr std::size_t kBuffer = 4096;
  void flush() {
    if (buffered_ == 0) return;
    checksum_.update(buffer_, buffered_);
    sink_.write(buffer_, buffered_);
    buffered_ = 0;
  }

  Sink& sink_;
  Checksum checksum_;
  std::uint8_t buffer_[kBuffer];
  std::size_t buffered_ = 0;
};

// Where a ByteReader's bytes come from; size() is known up front so that
// sizes read from a header can be checked before anything is allocated.
class Source {
 public:
  virtual ~Source() = default;
  virtual std::uint64_t size() const = 0;
  // Reads exactly `size` bytes or throws.
  virtual void read(void* out, std::size_t size) = 0;
};

class MemorySource final : public Source {
 public:
  MemorySource(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint64_t size() const override { return size_; }
  void read(void* out, std::size_t size) override {
    std::memcpy(out, data_ + offset_, size);
    offset_ += size;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t offset_ = 0;
};

class FileSource final : public Source {
 public:
  explicit FileSource(int fd) : fd_(fd) {
    struct stat info;
    VECDB_REQUIRE(::fstat(fd, &info) == 0, std::string("cannot stat the index file: ") + std::strerror(errno));
    const off_t position = ::lseek(fd, 0, SEEK_CUR);
    size_ = info.st_size > position && position >= 0 ? static_cast<std::uint64_t>(info.st_size - position) : 0;
  }
  std::uint64_t size() const override { return size_; }
  void read(void* out, std::size_t size) override {
    auto* bytes = static_cast<std::uint8_t*>(out);
    while (size > 0) {
      const ssize_t got = ::read(fd_, bytes, size < kChunk ? size : kChunk);
      if (got < 0 && errno == EINTR) continue;
      VECDB_REQUIRE(got >= 0, std::string("cannot read the index file: ") + std::strerror(errno));
      VECDB_REQUIRE(got > 0, "the index file ended early (was it truncated while being read?)");
      bytes += got, size -= static_cast<std::size_t>(got);
    }
  }

 private:
  static constexpr std::size_t kChunk = std::size_t{1} << 30;
  int fd_;
  std::uint64_t size_ = 0;
};

// Reads what a ByteWriter wrote. Every read is bounds-checked against the
// bytes left before the trailing checksum; verify_checksum() must be called
// after the last section and before the data is trusted.
class ByteReader {
 public:
  ByteReader(Source& source, std::string what) : source_(source), what_(std::move(what)) {
    const std::uint64_t total = source.size();
    VECDB_REQUIRE(total >= sizeof(std::uint64_t), what_ + " is truncated (" + std::to_string(total) + " bytes)");
    body_ = total - sizeof(std::uint64_t);
  }

  template <class T>
  T get() {
    static_assert(std::is_trivially_copyable<T>::value, "plain values only");
    T value;
    get_bytes(&value, sizeof(T));
    return value;
  }
  void get_bytes(void* out, std::size_t size) {
    if (size == 0) return;
    VECDB_REQUIRE(size <= remaining(), what_ + " is truncated or corrupt (needed " + std::to_string(size) +
                                           " more bytes at offset " + std::to_string(offset_) + ")");
    // Chunks small enough to be checksummed while still in cache.
    auto* bytes = static_cast<std::uint8_t*>(out);
    for (std::size_t done = 0; done < size;) {
      const std::size_t step = size - done < kChunk ? size - done : kChunk;
      source_.read(bytes + done, step);
      checksum_.update(bytes + done, step);
      done += step;
    }
    offset_ += size;
  }
  // Bytes left before the checksum.
  std::uint64_t remaining() const { return body_ - offset_; }
  const std::string& what() const { return what_; }

  void verify_checksum() {
    VECDB_REQUIRE(remaining() == 0, what_ + " has " + std::to_string(remaining()) + " unexpected trailing bytes");
    std::uint64_t stored;
    source_.read(&stored, sizeof(stored));
    VECDB_REQUIRE(stored == checksum_.digest(), what_ + " is corrupt or truncated (checksum mismatch)");
  }

 private:
  static constexpr std::size_t kChunk = std::size_t{1} << 20;
  Source& source_;
  std::string what_;
  Checksum checksum_;
  std::uint64_t body_ = 0;
  std::uint64_t offset_ = 0;
};

}  // namespace vecdb
