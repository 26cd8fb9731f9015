// Bindings for payload filters evaluated natively on stored payloads
// (filters/): a filter built once from the tree vecdb.query.native_filter
// gives, then tested on chunks of LMDB records.
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bindings/gil.h"
#include "bindings/register.h"
#include "common/error.h"
#include "filters/payload_filter.h"

namespace py = pybind11;

namespace vecdb {
namespace bindings {
namespace {

constexpr std::size_t kLabelBytes = 8;  // payload keys: the label, big-endian

Operand operand_of(const py::tuple& spec) {
  const std::string kind = spec[0].cast<std::string>();
  Operand operand;
  if (kind == "null") {
    operand.kind = Scalar::Kind::kNull;
  } else if (kind == "bool") {
    operand.kind = Scalar::Kind::kBool;
    operand.boolean = spec[1].cast<bool>();
  } else if (kind == "int") {
    operand.kind = Scalar::Kind::kInt;
    operand.integer = Integer{spec[1].cast<bool>(), spec[2].cast<std::uint64_t>()};
  } else if (kind == "float") {
    operand.kind = Scalar::Kind::kFloat;
    operand.real = spec[1].cast<double>();
  } else if (kind == "str") {
    operand.kind = Scalar::Kind::kStr;
    operand.text = spec[1].cast<std::string>();
  } else {
    throw Error("unknown operand kind in a native filter: " + kind);
  }
  return operand;
}

const std::pair<const char*, FilterNode::Type> kTypes[] = {
    {"and", FilterNode::Type::kAnd},     {"or", FilterNode::Type::kOr},
    {"not", FilterNode::Type::kNot},     {"exists", FilterNode::Type::kExists},
    {"eq", FilterNode::Type::kEqual},    {"in", FilterNode::Type::kIn},
    {"gt", FilterNode::Type::kGreater},  {"gte", FilterNode::Type::kGreaterEqual},
    {"lt", FilterNode::Type::kLess},     {"lte", FilterNode::Type::kLessEqual}};

std::unique_ptr<FilterNode> node_of(const py::tuple& spec) {
  const std::string name = spec[0].cast<std::string>();
  auto node = std::make_unique<FilterNode>();
  bool known = false;
  for (const auto& [type_name, type] : kTypes) {
    if (name == type_name) {
      node->type = type;
      known = true;
    }
  }
  VECDB_REQUIRE(known, "unknown node in a native filter: " + name);
  using Type = FilterNode::Type;
  if (node->type == Type::kAnd || node->type == Type::kOr || node->type == Type::kNot) {
    for (const py::handle child : spec[1].cast<py::list>()) node->children.push_back(node_of(child.cast<py::tuple>()));
    VECDB_REQUIRE(node->type != Type::kNot || node->children.size() == 1, "a native $not takes one filter");
    return node;
  }
  for (const py::handle part : spec[1].cast<py::list>()) node->path.push_back(part.cast<std::string>());
  VECDB_REQUIRE(!node->path.empty(), "a native condition needs a field path");
  if (node->type == Type::kIn) {
    for (const py::handle option : spec[2].cast<py::list>()) node->operands.push_back(operand_of(option.cast<py::tuple>()));
  } else if (node->type != Type::kExists) {
    node->operands.push_back(operand_of(spec[2].cast<py::tuple>()));
  }
  return node;
}

class NativePayloadFilter {
 public:
  explicit NativePayloadFilter(const py::tuple& spec) : root_(node_of(spec)) {}

  // Labels and verdicts (0 no, 1 yes, 2 undecided) of (key, stored value)
  // pairs whose values end in `check_bytes` bytes of checksum, already checked.
  py::tuple match(const py::list& pairs, std::size_t check_bytes) const {
    const auto n = static_cast<py::ssize_t>(pairs.size());
    py::array_t<std::int64_t> labels(n);
    py::array_t<std::uint8_t> verdicts(n);
    std::vector<std::pair<const std::uint8_t*, std::size_t>> payloads(static_cast<std::size_t>(n));
    auto* label_out = labels.mutable_data();
    for (py::ssize_t i = 0; i < n; ++i) {
      const py::tuple pair = pairs[static_cast<std::size_t>(i)].cast<py::tuple>();
      const py::buffer_info key = py::buffer(pair[0]).request();
      const py::buffer_info value = py::buffer(pair[1]).request();
      VECDB_REQUIRE(key.size == static_cast<py::ssize_t>(kLabelBytes), "a payload key is not a label");
      VECDB_REQUIRE(value.size >= static_cast<py::ssize_t>(check_bytes), "a payload value is shorter than its check");
      std::uint64_t label = 0;
      const auto* key_bytes = static_cast<const std::uint8_t*>(key.ptr);
      for (std::size_t b = 0; b < kLabelBytes; ++b) label = (label << 8) | key_bytes[b];
      label_out[i] = static_cast<std::int64_t>(label);
      payloads[static_cast<std::size_t>(i)] = {static_cast<const std::uint8_t*>(value.ptr),
                                               static_cast<std::size_t>(value.size) - check_bytes};
    }
    auto* verdict_out = verdicts.mutable_data();
    {
      // The bytes stay alive: `pairs` holds them, and the caller holds `pairs`.
      WithoutGil without_gil;
      for (std::size_t i = 0; i < payloads.size(); ++i)
        verdict_out[i] = static_cast<std::uint8_t>(evaluate(*root_, payloads[i].first, payloads[i].second));
    }
    return py::make_tuple(labels, verdicts);
  }

 private:
  std::unique_ptr<FilterNode> root_;
};

}  // namespace

void register_filters(py::module_& m) {
  py::class_<NativePayloadFilter>(m, "PayloadFilter",
                                  "A payload filter tested on stored payloads (MessagePack) in place.")
      .def(py::init<const py::tuple&>(), py::arg("spec"))
      .def("match", &NativePayloadFilter::match, py::arg("pairs"), py::arg("check_bytes"),
           "Labels and verdicts (0 no, 1 yes, 2 undecided: decode it) of checked (key, value) pairs.");
}

}  // namespace bindings
}  // namespace vecdb
