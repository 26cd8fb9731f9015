// Bindings for vecdb's storage layer: the checksum of vecdb's binary formats,
// CRC-32C over stored values (one value, a batch of (key, value) pairs as
// py-lmdb returns them, or fixed-size rows) and the LMDB data-file check.
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>
#include <string_view>

#include "bindings/helpers.h"
#include "bindings/register.h"
#include "common/bytes.h"
#include "common/error.h"
#include "storage/crc32c.h"
#include "storage/lmdb_file.h"

namespace py = pybind11;

namespace vecdb {
namespace bindings {
namespace {

constexpr std::size_t kCheckBytes = 4;  // the CRC-32C trailer of a stored value
// Stored numbers are little-endian and read in place.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "vecdb reads its stored values on little-endian hosts");

struct Bytes {
  const std::uint8_t* data;
  std::size_t size;
};

Bytes bytes_of(py::handle object, const char* what) {
  char* data = nullptr;
  Py_ssize_t size = 0;
  if (PyBytes_Check(object.ptr())) {
    PyBytes_AsStringAndSize(object.ptr(), &data, &size);
    return {reinterpret_cast<const std::uint8_t*>(data), static_cast<std::size_t>(size)};
  }
  throw py::type_error(std::string(what) + " must be bytes");
}

bool c_contiguous(const py::buffer_info& info) {
  py::ssize_t expected = info.itemsize;
  for (py::ssize_t axis = info.ndim - 1; axis >= 0; --axis) {
    if (info.shape[axis] != 1 && info.strides[axis] != expected) return false;
    expected *= info.shape[axis];
  }
  return true;
}

std::uint32_t stored_check(const std::uint8_t* trailer) {
  std::uint32_t value;
  std::memcpy(&value, trailer, kCheckBytes);  // little-endian, as written
  return value;
}

// The checksum a value of `key` carries: CRC-32C over key then value,
// continuing from the database's seed.
std::uint32_t value_check(std::uint32_t seed, Bytes key, const std::uint8_t* value, std::size_t size) {
  return crc32c(crc32c(seed, key.data, key.size), value, size);
}

bool intact(std::uint32_t seed, Bytes key, Bytes stored) {
  if (stored.size < kCheckBytes) return false;
  const std::size_t size = stored.size - kCheckBytes;
  return value_check(seed, key, stored.data, size) == stored_check(stored.data + size);
}

py::bytes seal(std::uint32_t seed, const py::bytes& key, const py::buffer& value) {
  const py::buffer_info info = value.request();
  VECDB_REQUIRE(c_contiguous(info), "value must be contiguous bytes");
  const std::size_t size = static_cast<std::size_t>(info.size * info.itemsize);
  std::string out(size + kCheckBytes, '\0');
  std::memcpy(out.data(), info.ptr, size);
  const std::uint32_t check = value_check(seed, bytes_of(key, "key"), static_cast<const std::uint8_t*>(info.ptr), size);
  std::memcpy(out.data() + size, &check, kCheckBytes);
  return py::bytes(out);
}

// Calls visit(i, key, value) on each (key, value) tuple of a list or tuple
// (as py-lmdb returns them) until it returns false; returns where it stopped
// (n if it never did).
template <class Visit>
Py_ssize_t visit_pairs(const py::object& pairs, Visit&& visit) {
  if (!PyList_Check(pairs.ptr()) && !PyTuple_Check(pairs.ptr())) throw py::type_error("pairs must be a list or tuple");
  const Py_ssize_t n = PySequence_Fast_GET_SIZE(pairs.ptr());
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* pair = PySequence_Fast_GET_ITEM(pairs.ptr(), i);
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) throw py::type_error("pairs must be (key, value) tuples");
    if (!visit(bytes_of(PyTuple_GET_ITEM(pair, 0), "key"), bytes_of(PyTuple_GET_ITEM(pair, 1), "value"))) return i;
  }
  return n;
}

// Index of the first damaged (key, value) pair, or -1.
long long first_damaged_pair(std::uint32_t seed, const py::object& pairs) {
  const Py_ssize_t stop = visit_pairs(pairs, [&](Bytes key, Bytes value) { return intact(seed, key, value); });
  return stop == PySequence_Fast_GET_SIZE(pairs.ptr()) ? -1 : static_cast<long long>(stop);
}

// The keys of (key, value) pairs, concatenated, once every value passed
// its check: (keys, -1); else (b"", index of the first damaged pair).
py::tuple checked_keys(std::uint32_t seed, const py::object& pairs) {
  std::string keys;
  const Py_ssize_t stop = visit_pairs(pairs, [&](Bytes key, Bytes value) {
    keys.append(reinterpret_cast<const char*>(key.data), key.size);
    return intact(seed, key, value);
  });
  if (stop < PySequence_Fast_GET_SIZE(pairs.ptr())) return py::make_tuple(py::bytes(), stop);
  return py::make_tuple(py::bytes(keys), -1);
}

// {key: value without its check} of (key, value) pairs once every value
// passed its check: (dict, -1); else ({}, index of the first damaged pair).
py::tuple opened_values(std::uint32_t seed, const py::object& pairs) {
  py::dict values;
  const Py_ssize_t stop = visit_pairs(pairs, [&](Bytes key, Bytes value) {
    if (!intact(seed, key, value)) return false;
    values[py::bytes(reinterpret_cast<const char*>(key.data), key.size)] =
        py::bytes(reinterpret_cast<const char*>(value.data), value.size - kCheckBytes);
    return true;
  });
  if (stop < PySequence_Fast_GET_SIZE(pairs.ptr())) return py::make_tuple(py::dict(), stop);
  return py::make_tuple(values, -1);
}

// The values of (key, value) pairs, each `row_bytes` long sealed with its
// key, as the rows of one (n, row_bytes - 4) uint8 array without their
// checks, and the keys concatenated: (rows, keys, -1) once every pair
// passed; else (empty, b"", index of the first damaged or wrong-sized
// pair). One pass for what re-ranking reads (hundreds of vectors a query).
py::tuple opened_rows(std::uint32_t seed, const py::object& pairs, std::size_t row_bytes) {
  VECDB_REQUIRE(row_bytes > kCheckBytes, "row_bytes must exceed the check bytes");
  if (!PyList_Check(pairs.ptr()) && !PyTuple_Check(pairs.ptr())) throw py::type_error("pairs must be a list or tuple");
  const std::size_t width = row_bytes - kCheckBytes;
  const auto n = static_cast<std::size_t>(PySequence_Fast_GET_SIZE(pairs.ptr()));
  py::array_t<std::uint8_t> rows({n, width});
  std::uint8_t* row = rows.mutable_data();
  std::string keys;
  const Py_ssize_t stop = visit_pairs(pairs, [&](Bytes key, Bytes value) {
    if (value.size != row_bytes || !intact(seed, key, value)) return false;
    keys.append(reinterpret_cast<const char*>(key.data), key.size);
    std::memcpy(row, value.data, width);
    row += width;
    return true;
  });
  if (static_cast<std::size_t>(stop) < n)
    return py::make_tuple(py::array_t<std::uint8_t>(std::vector<py::ssize_t>{0, static_cast<py::ssize_t>(width)}),
                          py::bytes(), stop);
  return py::make_tuple(rows, py::bytes(keys), -1);
}

// (key, value) pairs as (key, value sealed with its key), in one call for a
// write batch.
py::list seal_pairs(std::uint32_t seed, const py::object& pairs) {
  py::list sealed;
  visit_pairs(pairs, [&](Bytes key, Bytes value) {
    std::string out(value.size + kCheckBytes, '\0');
    std::memcpy(out.data(), value.data, value.size);
    const std::uint32_t check = value_check(seed, key, value.data, value.size);
    std::memcpy(out.data() + value.size, &check, kCheckBytes);
    sealed.append(py::make_tuple(py::bytes(reinterpret_cast<const char*>(key.data), key.size), py::bytes(out)));
    return true;
  });
  return sealed;
}

// Rows of `width` bytes each sealed with its key (keys: n keys of one size,
// concatenated); returns an (n, width + 4) uint8 array.
py::array_t<std::uint8_t> seal_rows(std::uint32_t seed, const py::bytes& keys, const py::buffer& rows,
                                     std::size_t width) {
  const py::buffer_info info = rows.request();
  const std::size_t total = static_cast<std::size_t>(info.size * info.itemsize);
  VECDB_REQUIRE(width > 0 && total % width == 0, "rows must be a whole number of rows of the given width");
  VECDB_REQUIRE(c_contiguous(info), "rows must be C-contiguous");
  const std::size_t n = total / width;
  const Bytes all_keys = bytes_of(keys, "keys");
  VECDB_REQUIRE(n == 0 ? all_keys.size == 0 : all_keys.size % n == 0, "keys must be one fixed-size key per row");
  const std::size_t key_size = n ? all_keys.size / n : 0;
  py::array_t<std::uint8_t> out({n, width + kCheckBytes});
  std::uint8_t* target = out.mutable_data();
  const auto* source = static_cast<const std::uint8_t*>(info.ptr);
  {
    WithoutGil without_gil;
    for (std::size_t row = 0; row < n; ++row) {
      std::uint8_t* sealed = target + row * (width + kCheckBytes);
      std::memcpy(sealed, source + row * width, width);
      const std::uint32_t check = value_check(seed, {all_keys.data + row * key_size, key_size}, sealed, width);
      std::memcpy(sealed + width, &check, kCheckBytes);
    }
  }
  return out;
}

// Index of the first damaged row of `row_bytes` (trailer included), or -1.
// With keys, each row was sealed with its key; without, the row's leading
// bytes are its key (packed LMDB records of one key size).
long long first_damaged_row(std::uint32_t seed, const py::object& keys, const py::buffer& rows,
                            std::size_t row_bytes) {
  const py::buffer_info info = rows.request();
  const std::size_t total = static_cast<std::size_t>(info.size * info.itemsize);
  VECDB_REQUIRE(c_contiguous(info), "rows must be C-contiguous");
  VECDB_REQUIRE(row_bytes > kCheckBytes && total % row_bytes == 0, "rows must be a whole number of sealed rows");
  const std::size_t n = total / row_bytes;
  Bytes all_keys{nullptr, 0};
  if (!keys.is_none()) {
    all_keys = bytes_of(keys, "keys");
    VECDB_REQUIRE(n == 0 ? all_keys.size == 0 : all_keys.size % n == 0, "keys must be one fixed-size key per row");
  }
  const std::size_t key_size = n ? all_keys.size / n : 0;
  const auto* source = static_cast<const std::uint8_t*>(info.ptr);
  WithoutGil without_gil;
  for (std::size_t row = 0; row < n; ++row) {
    const std::uint8_t* value = source + row * row_bytes;
    const Bytes key{all_keys.data ? all_keys.data + row * key_size : nullptr, key_size};
    if (value_check(seed, key, value, row_bytes - kCheckBytes) != stored_check(value + row_bytes - kCheckBytes))
      return static_cast<long long>(row);
  }
  return -1;
}

// A label's (or block's) LMDB key: 8 bytes big-endian.
void write_label_key(std::uint64_t value, std::uint8_t (&key)[8]) {
  for (int byte = 0; byte < 8; ++byte) key[byte] = static_cast<std::uint8_t>(value >> (56 - 8 * byte));
}

// The blocks (label >> shift) of `labels`, each once in key order, as their
// LMDB keys (8 bytes big-endian), and each label's position among them: a
// block read once serves all its rows.
py::tuple block_keys(const py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>& labels, int shift) {
  VECDB_REQUIRE(labels.ndim() == 1, "labels must be one-dimensional");
  VECDB_REQUIRE(shift >= 0 && shift < 63, "shift must be between 0 and 62");
  const std::size_t n = static_cast<std::size_t>(labels.size());
  const std::int64_t* label = labels.data();
  std::vector<std::pair<std::uint64_t, std::size_t>> order(n);
  for (std::size_t i = 0; i < n; ++i) {
    VECDB_REQUIRE(label[i] >= 0, "labels must be >= 0");
    order[i] = {static_cast<std::uint64_t>(label[i]) >> shift, i};
  }
  std::sort(order.begin(), order.end());
  py::array_t<std::int64_t> position(static_cast<py::ssize_t>(n));
  std::int64_t* at = position.mutable_data();
  py::list keys;
  std::int64_t blocks = -1;
  for (std::size_t j = 0; j < n; ++j) {
    if (j == 0 || order[j].first != order[j - 1].first) {
      std::uint8_t key[8];
      write_label_key(order[j].first, key);
      keys.append(py::bytes(reinterpret_cast<const char*>(key), sizeof key));
      ++blocks;
    }
    at[order[j].second] = blocks;
  }
  return py::make_tuple(keys, position);
}

// A buffer's bytes, held until destroyed (None: no bytes).
class HeldBuffer {
 public:
  explicit HeldBuffer(py::handle object) {
    if (object.is_none()) return;
    if (PyObject_GetBuffer(object.ptr(), &view_, PyBUF_SIMPLE) != 0) throw py::error_already_set();
    held_ = true;
  }
  HeldBuffer(HeldBuffer&& other) noexcept : view_(other.view_), held_(other.held_) { other.held_ = false; }
  HeldBuffer(const HeldBuffer&) = delete;
  HeldBuffer& operator=(const HeldBuffer&) = delete;
  HeldBuffer& operator=(HeldBuffer&&) = delete;
  ~HeldBuffer() {
    if (held_) PyBuffer_Release(&view_);
  }
  Bytes bytes() const {
    return held_ ? Bytes{static_cast<const std::uint8_t*>(view_.buf), static_cast<std::size_t>(view_.len)}
                 : Bytes{nullptr, 0};
  }

 private:
  Py_buffer view_{};
  bool held_ = false;
};

// Copies the float32 vectors of `labels` out of their blocks into `out`
// ((n, dim) float32): label i's row is in values[position[i]] (bytes, a
// buffer into LMDB's map, or None for a missing block) at slot
// label & (rows_per_block - 1), after a header of `header_bytes`; a row is
// its floats and the CRC-32C seal of its key (the label, 8 bytes
// big-endian) and floats. Returns which rows passed their seal: a row past
// its block's end, in a missing block or damaged did not (its output row is
// left as it was). Rows pass their checks before anything is copied.
py::array_t<bool> gather_sealed_rows(std::uint32_t seed, const py::list& values,
                                     const py::array_t<std::int64_t, py::array::c_style>& labels,
                                     const py::array_t<std::int64_t, py::array::c_style>& position,
                                     std::size_t rows_per_block, std::size_t header_bytes, py::array& out) {
  const std::size_t n = static_cast<std::size_t>(labels.size());
  VECDB_REQUIRE(labels.ndim() == 1 && position.ndim() == 1 && static_cast<std::size_t>(position.size()) == n,
                "labels and position must be one-dimensional and of one length");
  // Checked, never converted: a converted copy would be filled instead.
  VECDB_REQUIRE(out.dtype().is(py::dtype::of<float>()) && out.ndim() == 2 &&
                    static_cast<std::size_t>(out.shape(0)) == n && out.shape(1) > 0 &&
                    (out.flags() & py::array::c_style) && out.writeable(),
                "out must be a writeable C-contiguous (n, dim) float32 array");
  VECDB_REQUIRE(rows_per_block > 0 && (rows_per_block & (rows_per_block - 1)) == 0,
                "rows_per_block must be a power of two");
  const std::size_t float_bytes = 4 * static_cast<std::size_t>(out.shape(1));
  const std::size_t row_bytes = float_bytes + kCheckBytes;
  std::vector<HeldBuffer> blocks;
  blocks.reserve(values.size());
  for (py::handle value : values) blocks.emplace_back(value);
  const std::int64_t* label = labels.data();
  const std::int64_t* at = position.data();
  for (std::size_t i = 0; i < n; ++i) {
    VECDB_REQUIRE(label[i] >= 0, "labels must be >= 0");
    VECDB_REQUIRE(at[i] >= 0 && static_cast<std::size_t>(at[i]) < blocks.size(), "position out of range");
  }
  py::array_t<bool> passed(static_cast<py::ssize_t>(n));
  bool* ok = passed.mutable_data();
  auto* target = reinterpret_cast<std::uint8_t*>(out.mutable_data());
  {
    WithoutGil without_gil;
    for (std::size_t i = 0; i < n; ++i) {
      const Bytes block = blocks[static_cast<std::size_t>(at[i])].bytes();
      const std::size_t start = header_bytes + (static_cast<std::uint64_t>(label[i]) & (rows_per_block - 1)) * row_bytes;
      ok[i] = block.data != nullptr && start + row_bytes <= block.size;
      if (!ok[i]) continue;
      std::uint8_t key[8];
      write_label_key(static_cast<std::uint64_t>(label[i]), key);
      const std::uint8_t* row = block.data + start;
      ok[i] = value_check(seed, {key, sizeof key}, row, float_bytes) == stored_check(row + float_bytes);
      if (ok[i]) std::memcpy(target + i * float_bytes, row, float_bytes);  // stored little-endian, as x86 and ARM hold floats
    }
  }
  return passed;
}

py::dict check_lmdb_file(const std::string& path, const std::string& level_name, std::uint64_t txnid,
                         const py::object& progress) {
  const lmdbfile::Level level = level_name == "meta"        ? lmdbfile::Level::kMeta
                                : level_name == "main"      ? lmdbfile::Level::kMain
                                : level_name == "structure" ? lmdbfile::Level::kStructure
                                : level_name == "full"      ? lmdbfile::Level::kFull
                                                            : throw Error("level must be meta, main, structure or full");
  lmdbfile::Progress report_progress;
  if (!progress.is_none()) {
    report_progress = [&progress](std::uint64_t done, std::uint64_t total) {
      py::gil_scoped_acquire acquire;
      progress(done, total);
    };
  }
  lmdbfile::Report report;
  {
    WithoutGil without_gil;
    report = lmdbfile::check_file(path, level, txnid, report_progress);
  }
  py::list problems;
  for (const lmdbfile::Problem& problem : report.problems)
    problems.append(py::make_tuple(py::bytes(problem.database), problem.page, problem.text));  // names: any bytes
  py::list databases;
  for (const lmdbfile::NamedDatabase& database : report.databases) {
    py::dict entry;
    entry["name"] = py::bytes(database.name);
    entry["flags"] = database.flags;
    entry["depth"] = database.depth;
    entry["entries"] = database.entries;
    entry["root"] = database.root;
    databases.append(entry);
  }
  py::dict main_values;
  for (const auto& [key, value] : report.main_values) main_values[py::bytes(key)] = py::bytes(value);
  py::dict out;
  out["file_bytes"] = report.file_bytes;
  out["page_size"] = report.page_size;
  out["last_page"] = report.last_page;
  out["txnid"] = report.txnid;
  out["snapshot_found"] = report.snapshot_found;
  out["pages_read"] = report.pages_read;
  out["problems"] = problems;
  out["problems_omitted"] = report.problems_omitted;
  out["databases"] = databases;
  out["main_values"] = main_values;
  return out;
}

}  // namespace

void register_storage(py::module_& m) {
  m.def(
      "checksum64",
      [](const py::bytes& data) {
        const std::string_view view = data;
        return checksum64(view.data(), view.size());
      },
      py::arg("data"), "The checksum stamped on vecdb's binary formats.");
  m.def(
      "crc32c",
      [](const py::buffer& data, std::uint32_t crc) {
        const py::buffer_info info = data.request();
        VECDB_REQUIRE(c_contiguous(info), "data must be contiguous");
        return crc32c(crc, info.ptr, static_cast<std::size_t>(info.size * info.itemsize));
      },
      py::arg("data"), py::arg("crc") = 0,
      "CRC-32C of the bytes, continuing from `crc` (crc32c(b, crc32c(a)) == crc32c(a + b)).");
  m.def("crc32c_implementations", &crc32c_implementations, "CRC-32C implementations usable here, slowest first.");
  m.def("crc32c_implementation", &crc32c_implementation, "The CRC-32C implementation in use.");
  m.def("set_crc32c_implementation", &set_crc32c_implementation, py::arg("name"),
        "Force a CRC-32C implementation (for tests).");
  m.def("seal_value", &seal, py::arg("seed"), py::arg("key"), py::arg("value"),
        "The value followed by its 4-byte check: CRC-32C of key then value, from the seed.");
  m.def(
      "value_intact",
      [](std::uint32_t seed, const py::bytes& key, const py::bytes& stored) {
        return intact(seed, bytes_of(key, "key"), bytes_of(stored, "stored"));
      },
      py::arg("seed"), py::arg("key"), py::arg("stored"), "Whether a sealed value matches its check.");
  m.def("first_damaged_pair", &first_damaged_pair, py::arg("seed"), py::arg("pairs"),
        "Index of the first (key, sealed value) pair whose check fails, or -1.");
  m.def("checked_keys", &checked_keys, py::arg("seed"), py::arg("pairs"),
        "(concatenated keys, -1) once every (key, sealed value) pair passed its check, else (b'', first damaged).");
  m.def("opened_values", &opened_values, py::arg("seed"), py::arg("pairs"),
        "({key: value without its check}, -1) once every (key, sealed value) pair passed, else ({}, first damaged).");
  m.def("opened_rows", &opened_rows, py::arg("seed"), py::arg("pairs"), py::arg("row_bytes"),
        "((n, row_bytes - 4) uint8 rows, keys concatenated, -1) of (key, sealed value) pairs once every one passed, "
        "else (empty, b'', first damaged or wrong-sized).");
  m.def("seal_pairs", &seal_pairs, py::arg("seed"), py::arg("pairs"),
        "[(key, value sealed with key)] for a list of (key, value) bytes pairs.");
  m.def("seal_rows", &seal_rows, py::arg("seed"), py::arg("keys"), py::arg("rows"), py::arg("width"),
        "Rows of `width` bytes, each sealed with its key, as an (n, width + 4) uint8 array.");
  m.def("first_damaged_row", &first_damaged_row, py::arg("seed"), py::arg("keys"), py::arg("rows"),
        py::arg("row_bytes"), "Index of the first sealed row whose check fails, or -1.");
  m.def("block_keys", &block_keys, py::arg("labels"), py::arg("shift"),
        "(keys of the distinct blocks label >> shift, in order; each label's position among them).");
  m.def("gather_sealed_rows", &gather_sealed_rows, py::arg("seed"), py::arg("values"), py::arg("labels"),
        py::arg("position"), py::arg("rows_per_block"), py::arg("header_bytes"), py::arg("out"),
        "Copy the float32 rows of labels out of their blocks' values into out; returns which passed their seal.");
  m.def("check_lmdb_file", &check_lmdb_file, py::arg("path"), py::arg("level"), py::arg("txnid") = 0,
        py::arg("progress") = py::none(),
        "Check an LMDB data file: meta pages and size (meta), the main database (main), every B-tree page "
        "(structure), every page (full).");
}

}  // namespace bindings
}  // namespace vecdb
