// Reading stored payloads (MessagePack, as vecdb writes them: maps with
// string keys, arrays, strings, integers, floats, booleans, nil) in place,
// without building Python objects: what a payload filter needs to test a
// field. Every read is bounds-checked; a value that does not parse leaves
// the reader failed (ok() false) and callers report the record undecided,
// so the Python decoder, which names the damage, has the last word.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace vecdb {

// An integer as MessagePack holds one (int64 or uint64): sign and magnitude.
struct Integer {
  bool negative = false;
  std::uint64_t magnitude = 0;  // |value|; 2^63 for INT64_MIN

  long double as_long_double() const {  // exact: long double keeps 64 mantissa bits on x86-64
    const long double m = static_cast<long double>(magnitude);
    return negative ? -m : m;
  }
};

// One scalar of a payload, or the kind of a container or a missing field.
struct Scalar {
  enum class Kind { kMissing, kNull, kBool, kInt, kFloat, kStr, kArray, kMap };
  Kind kind = Kind::kMissing;
  bool boolean = false;
  Integer integer;
  double real = 0.0;
  std::string_view text;
  std::uint32_t length = 0;  // elements of an array or map
};

class MsgpackReader {
 public:
  MsgpackReader(const std::uint8_t* data, std::size_t size) : at_(data), end_(data + size) {}

  bool ok() const { return ok_; }
  bool done() const { return at_ == end_; }

  // The value here, consumed; for an array or a map, only its header (its
  // elements follow).
  Scalar read() {
    Scalar value;
    const int tag = byte();
    if (tag < 0) return fail(value);
    if (tag <= 0x7f) return integer(value, false, static_cast<std::uint64_t>(tag));
    if (tag <= 0x8f) return container(value, Scalar::Kind::kMap, tag & 0x0f);
    if (tag <= 0x9f) return container(value, Scalar::Kind::kArray, tag & 0x0f);
    if (tag <= 0xbf) return string(value, tag & 0x1f);
    if (tag >= 0xe0) return integer(value, true, static_cast<std::uint64_t>(0x100 - tag));
    switch (tag) {
      case 0xc0: value.kind = Scalar::Kind::kNull; return value;
      case 0xc2: case 0xc3: value.kind = Scalar::Kind::kBool; value.boolean = tag == 0xc3; return value;
      case 0xca: { std::uint64_t bits; if (!big_endian(4, bits)) return fail(value);
                   float f; const std::uint32_t b32 = static_cast<std::uint32_t>(bits);
                   std::memcpy(&f, &b32, 4); value.kind = Scalar::Kind::kFloat; value.real = f; return value; }
      case 0xcb: { std::uint64_t bits; if (!big_endian(8, bits)) return fail(value);
                   value.kind = Scalar::Kind::kFloat; std::memcpy(&value.real, &bits, 8); return value; }
      case 0xcc: return unsigned_of(value, 1);
      case 0xcd: return unsigned_of(value, 2);
      case 0xce: return unsigned_of(value, 4);
      case 0xcf: return unsigned_of(value, 8);
      case 0xd0: return signed_of(value, 1);
      case 0xd1: return signed_of(value, 2);
      case 0xd2: return signed_of(value, 4);
      case 0xd3: return signed_of(value, 8);
      case 0xd9: return sized_string(value, 1);
      case 0xda: return sized_string(value, 2);
      case 0xdb: return sized_string(value, 4);
      case 0xdc: return sized_container(value, Scalar::Kind::kArray, 2);
      case 0xdd: return sized_container(value, Scalar::Kind::kArray, 4);
      case 0xde: return sized_container(value, Scalar::Kind::kMap, 2);
      case 0xdf: return sized_container(value, Scalar::Kind::kMap, 4);
      default: return fail(value);  // bin, ext, reserved: vecdb stores none of them in payloads
    }
  }

  // Consumes the value here, containers whole.
  void skip() { skip_values(1); }

  // Consumes the elements of a container whose header read() returned.
  void skip_contents(const Scalar& header) {
    if (header.kind == Scalar::Kind::kArray) skip_values(header.length);
    if (header.kind == Scalar::Kind::kMap) skip_values(2 * static_cast<std::size_t>(header.length));
  }

 private:
  void skip_values(std::size_t pending) {
    while (pending > 0 && ok_) {
      const Scalar value = read();
      --pending;
      if (value.kind == Scalar::Kind::kArray) pending += value.length;
      if (value.kind == Scalar::Kind::kMap) pending += 2 * static_cast<std::size_t>(value.length);
    }
  }

  int byte() {
    if (at_ == end_) return -1;
    return *at_++;
  }

  bool big_endian(std::size_t count, std::uint64_t& out) {
    if (static_cast<std::size_t>(end_ - at_) < count) return false;
    out = 0;
    for (std::size_t i = 0; i < count; ++i) out = (out << 8) | at_[i];
    at_ += count;
    return true;
  }

  Scalar fail(Scalar& value) {
    ok_ = false;
    value.kind = Scalar::Kind::kMissing;
    return value;
  }

  static Scalar integer(Scalar& value, bool negative, std::uint64_t magnitude) {
    value.kind = Scalar::Kind::kInt;
    value.integer = Integer{negative && magnitude != 0, magnitude};
    return value;
  }

  Scalar unsigned_of(Scalar& value, std::size_t count) {
    std::uint64_t bits;
    if (!big_endian(count, bits)) return fail(value);
    return integer(value, false, bits);
  }

  Scalar signed_of(Scalar& value, std::size_t count) {
    std::uint64_t bits;
    if (!big_endian(count, bits)) return fail(value);
    const std::uint64_t sign = std::uint64_t{1} << (8 * count - 1);
    if ((bits & sign) == 0) return integer(value, false, bits);
    // The value is bits - 2^(8 count): its magnitude, in unsigned arithmetic
    // (2^63 for INT64_MIN).
    const std::uint64_t magnitude = count == 8 ? ~bits + 1 : (std::uint64_t{1} << (8 * count)) - bits;
    return integer(value, true, magnitude);
  }

  Scalar string(Scalar& value, std::size_t length) {
    if (static_cast<std::size_t>(end_ - at_) < length) return fail(value);
    value.kind = Scalar::Kind::kStr;
    value.text = std::string_view(reinterpret_cast<const char*>(at_), length);
    at_ += length;
    return value;
  }

  Scalar sized_string(Scalar& value, std::size_t count) {
    std::uint64_t length;
    if (!big_endian(count, length)) return fail(value);
    return string(value, static_cast<std::size_t>(length));
  }

  Scalar container(Scalar& value, Scalar::Kind kind, std::uint64_t length) {
    value.kind = kind;
    value.length = static_cast<std::uint32_t>(length);
    return value;
  }

  Scalar sized_container(Scalar& value, Scalar::Kind kind, std::size_t count) {
    std::uint64_t length;
    if (!big_endian(count, length)) return fail(value);
    // Each element takes at least a byte: a longer count is damage, not data.
    if (length > static_cast<std::uint64_t>(end_ - at_)) return fail(value);
    return container(value, kind, length);
  }

  const std::uint8_t* at_;
  const std::uint8_t* end_;
  bool ok_ = true;
};

}  // namespace vecdb
