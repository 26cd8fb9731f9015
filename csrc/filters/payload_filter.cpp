#include "filters/payload_filter.h"

#include <cmath>
#include <string_view>

namespace vecdb {
namespace {

using Kind = Scalar::Kind;

enum class Order { kLess, kEqual, kGreater, kUnordered };

bool is_number(Kind kind) { return kind == Kind::kInt || kind == Kind::kFloat; }

template <typename T>
Order order_of(const T& a, const T& b) {
  return a < b ? Order::kLess : b < a ? Order::kGreater : Order::kEqual;
}

Order order_integers(const Integer& a, const Integer& b) {
  if (a.negative != b.negative) return a.negative ? Order::kLess : Order::kGreater;
  const Order magnitudes = order_of(a.magnitude, b.magnitude);
  if (!a.negative || magnitudes == Order::kEqual) return magnitudes;
  return magnitudes == Order::kLess ? Order::kGreater : Order::kLess;  // -3 > -5
}

// Numbers compare exactly, as Python's int and float do: long double holds
// every int64, uint64 and double value exactly.
Order order_numbers(Kind kind_a, const Integer& int_a, double real_a, Kind kind_b, const Integer& int_b,
                    double real_b) {
  if (kind_a == Kind::kInt && kind_b == Kind::kInt) return order_integers(int_a, int_b);
  const long double a = kind_a == Kind::kInt ? int_a.as_long_double() : static_cast<long double>(real_a);
  const long double b = kind_b == Kind::kInt ? int_b.as_long_double() : static_cast<long double>(real_b);
  if (std::isnan(a) || std::isnan(b)) return Order::kUnordered;
  return order_of(a, b);
}

Order order(const Scalar& value, const Operand& operand) {
  if (is_number(value.kind) && is_number(operand.kind))
    return order_numbers(value.kind, value.integer, value.real, operand.kind, operand.integer, operand.real);
  if (value.kind == Kind::kStr && operand.kind == Kind::kStr) {
    // UTF-8 byte order is code point order, Python's order of str.
    const int found = value.text.compare(std::string_view(operand.text));
    return found < 0 ? Order::kLess : found > 0 ? Order::kGreater : Order::kEqual;
  }
  return Order::kUnordered;  // other kinds never compare
}

bool equal(const Scalar& value, const Operand& operand) {
  if (is_number(value.kind) && is_number(operand.kind)) return order(value, operand) == Order::kEqual;
  if (value.kind != operand.kind) return false;
  switch (value.kind) {
    case Kind::kNull: return true;
    case Kind::kBool: return value.boolean == operand.boolean;
    case Kind::kStr: return value.text == operand.text;
    default: return false;
  }
}

// Whether one scalar (not a list: its elements are tested one by one) passes the condition.
bool passes(const FilterNode& node, const Scalar& value) {
  using Type = FilterNode::Type;
  if (node.type == Type::kEqual) return equal(value, node.operands[0]);
  if (node.type == Type::kIn) {
    for (const Operand& option : node.operands)
      if (equal(value, option)) return true;
    return false;
  }
  const Order found = order(value, node.operands[0]);
  if (found == Order::kUnordered) return false;
  switch (node.type) {
    case Type::kGreater: return found == Order::kGreater;
    case Type::kGreaterEqual: return found != Order::kLess;
    case Type::kLess: return found == Order::kLess;
    case Type::kLessEqual: return found != Order::kGreater;
    default: return false;
  }
}

Verdict verdict(bool yes) { return yes ? Verdict::kYes : Verdict::kNo; }

Verdict condition(const FilterNode& node, const std::uint8_t* payload, std::size_t size) {
  MsgpackReader reader(payload, size);
  Scalar value = reader.read();
  for (const std::string& part : node.path) {
    if (value.kind != Kind::kMap) return verdict(false);  // paths step into maps only: missing
    bool found = false;
    for (std::uint32_t entry = 0; entry < value.length && !found && reader.ok(); ++entry) {
      const Scalar key = reader.read();
      if (key.kind == Kind::kStr && key.text == part) {
        found = true;
      } else {
        reader.skip_contents(key);
        reader.skip();
      }
    }
    if (!reader.ok()) return Verdict::kUndecided;
    if (!found) return verdict(false);
    value = reader.read();
    if (!reader.ok()) return Verdict::kUndecided;
  }
  if (node.type == FilterNode::Type::kExists) return verdict(true);
  if (value.kind == Kind::kMap) return verdict(false);
  if (value.kind != Kind::kArray) return verdict(passes(node, value));
  // A list matches when an element does (the list itself equals no scalar).
  for (std::uint32_t element = 0; element < value.length; ++element) {
    const Scalar item = reader.read();
    if (!reader.ok()) return Verdict::kUndecided;
    if (item.kind == Kind::kArray || item.kind == Kind::kMap) {
      reader.skip_contents(item);
      continue;
    }
    if (passes(node, item)) return verdict(true);
  }
  return reader.ok() ? verdict(false) : Verdict::kUndecided;
}

}  // namespace

Verdict evaluate(const FilterNode& node, const std::uint8_t* payload, std::size_t size) {
  using Type = FilterNode::Type;
  switch (node.type) {
    case Type::kAnd:
    case Type::kOr: {
      const Verdict decisive = node.type == Type::kAnd ? Verdict::kNo : Verdict::kYes;
      bool undecided = false;
      for (const auto& child : node.children) {
        const Verdict found = evaluate(*child, payload, size);
        if (found == decisive) return decisive;
        undecided = undecided || found == Verdict::kUndecided;
      }
      if (undecided) return Verdict::kUndecided;
      return node.type == Type::kAnd ? Verdict::kYes : Verdict::kNo;
    }
    case Type::kNot: {
      const Verdict found = evaluate(*node.children[0], payload, size);
      if (found == Verdict::kUndecided) return found;
      return found == Verdict::kYes ? Verdict::kNo : Verdict::kYes;
    }
    default:
      return condition(node, payload, size);
  }
}

}  // namespace vecdb
