// A payload filter evaluated on stored payloads in place (MessagePack bytes),
// for filters on fields without a payload index: the Python reference
// (vecdb.query.filters, Filter.matches) decodes every payload into dicts and
// tests it in the interpreter, ~8 us a point; this reads the fields a filter
// names straight from the bytes.
//
// Same semantics as the reference, which the tests hold it to: dotted paths
// step into maps only; a list value matches when it or any element does;
// equality needs the same kind (booleans are not numbers; ints and floats
// compare exactly, as Python's do); comparisons only between numbers or
// between strings (by code point: UTF-8 byte order); $exists on any value.
// Negations are Not nodes, as the parser builds them. Operands the native
// form cannot hold (lists, integers past 64 bits) are refused when the
// filter is built, and the reference evaluates that filter instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "filters/msgpack_reader.h"

namespace vecdb {

// An operand of a condition: a scalar it owns.
struct Operand {
  Scalar::Kind kind = Scalar::Kind::kNull;  // kNull, kBool, kInt, kFloat or kStr
  bool boolean = false;
  Integer integer;
  double real = 0.0;
  std::string text;
};

struct FilterNode {
  enum class Type { kAnd, kOr, kNot, kExists, kEqual, kIn, kGreater, kGreaterEqual, kLess, kLessEqual };
  Type type = Type::kAnd;
  std::vector<std::unique_ptr<FilterNode>> children;  // kAnd, kOr (any number), kNot (one)
  std::vector<std::string> path;                      // conditions: the field's dotted parts
  std::vector<Operand> operands;                      // one, or the options of kIn
};

// What a payload's test came to: the record matches, does not, or its bytes
// did not parse (the caller decodes it the reference way, which reports the damage).
enum class Verdict : std::uint8_t { kNo = 0, kYes = 1, kUndecided = 2 };

Verdict evaluate(const FilterNode& node, const std::uint8_t* payload, std::size_t size);

}  // namespace vecdb
