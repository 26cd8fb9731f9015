// The layout this reads is LMDB 0.9's on-disk format (mdb.c) for 64-bit
// builds: every page starts with a 16-byte header {u64 pgno; u16 pad;
// u16 flags; u16 lower; u16 upper} (an overflow page keeps a u32 page count
// where lower and upper would be); pages 0 and 1 are meta pages holding
// {u32 magic, u32 version, u64 address, u64 mapsize, two 48-byte database
// records (free list, main), u64 last page, u64 txnid} after the header; a
// database record is {u32 pad, u16 flags, u16 depth, u64 branch pages,
// u64 leaf pages, u64 overflow pages, u64 entries, u64 root}. Branch and
// leaf pages hold an array of u16 node offsets after the header; a node is
// {u16 lo, u16 hi, u16 flags, u16 key size, key, data}, where a leaf's data
// size is lo | hi << 16 and a branch's child page is lo | hi << 16 | flags << 32.
//
// Nothing read from the file is trusted: every offset and size is checked
// against the page (or the mapping) before it is followed.
#include "storage/lmdb_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"

namespace vecdb {
namespace lmdbfile {
namespace {

constexpr std::uint32_t kMagic = 0xBEEFC0DEu;
constexpr std::uint32_t kDataVersion = 1;
constexpr std::uint64_t kHeader = 16;      // PAGEHDRSZ
constexpr std::uint64_t kNodeHeader = 8;   // NODESIZE
constexpr std::uint64_t kRecordBytes = 48;  // sizeof(MDB_db)
constexpr std::uint64_t kMetaBytes = kHeader + 24 + 2 * kRecordBytes + 16;
constexpr std::uint64_t kNoPage = ~std::uint64_t{0};  // P_INVALID: an empty tree
constexpr unsigned kMaxDepth = 32;                    // CURSOR_STACK
constexpr std::uint64_t kMinPageSize = 256, kMaxPageSize = 65536;
constexpr std::size_t kMaxProblems = 200;
constexpr std::uint64_t kProgressEvery = 16384;
constexpr std::uint64_t kPrefetchAhead = 8;

constexpr std::uint16_t kBranch = 0x01, kLeaf = 0x02, kOverflow = 0x04, kMetaPage = 0x08, kDirty = 0x10,
                        kLeaf2 = 0x20, kSubPage = 0x40;
constexpr std::uint16_t kBigData = 0x01, kSubData = 0x02, kDupData = 0x04;
constexpr std::uint16_t kReverseKey = 0x02, kDupSort = 0x04, kIntegerKey = 0x08, kDupFixed = 0x10,
                        kIntegerDup = 0x20, kReverseDup = 0x40;
constexpr std::uint16_t kPersistentFlags = kReverseKey | kDupSort | kIntegerKey | kDupFixed | kIntegerDup | kReverseDup;

template <class T>
T load(const std::uint8_t* p) {
  T value;
  std::memcpy(&value, p, sizeof value);
  return value;
}

struct Record {
  std::uint32_t pad = 0;
  std::uint16_t flags = 0;
  std::uint16_t depth = 0;
  std::uint64_t branch = 0, leaf = 0, overflow = 0, entries = 0, root = kNoPage;
};

Record parse_record(const std::uint8_t* p) {
  Record r;
  r.pad = load<std::uint32_t>(p);
  r.flags = load<std::uint16_t>(p + 4);
  r.depth = load<std::uint16_t>(p + 6);
  r.branch = load<std::uint64_t>(p + 8);
  r.leaf = load<std::uint64_t>(p + 16);
  r.overflow = load<std::uint64_t>(p + 24);
  r.entries = load<std::uint64_t>(p + 32);
  r.root = load<std::uint64_t>(p + 40);
  return r;
}

struct Meta {
  std::string problem;  // empty: usable
  std::uint64_t page_size = 0;
  Record free, main;
  std::uint64_t last = 0, txnid = 0;
};

std::string hex(std::uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

std::string page_kind(std::uint16_t flags) {
  if (flags == 0) return "blank (zeroed?)";
  std::string kind;
  const std::pair<std::uint16_t, const char*> names[] = {{kBranch, "branch"}, {kLeaf, "leaf"},
                                                           {kOverflow, "overflow"}, {kMetaPage, "meta"},
                                                           {kDirty, "dirty"}, {kLeaf2, "leaf2"},
                                                           {kSubPage, "sub-page"}};
  for (const auto& name : names) {
    if (flags & name.first) kind += (kind.empty() ? "" : "+") + std::string(name.second);
  }
  if (flags & ~(kBranch | kLeaf | kOverflow | kMetaPage | kDirty | kLeaf2 | kSubPage))
    kind += (kind.empty() ? "" : "+") + std::string("unknown flags");
  return kind + " (flags " + hex(flags) + ")";
}

// A record must describe either an empty tree or one rooted inside the file.
std::string record_problem(const Record& r, std::uint64_t last, bool check_flags) {
  if (check_flags && (r.flags & ~kPersistentFlags))
    return "has unknown flags " + hex(r.flags);
  if (r.root == kNoPage) {
    if (r.depth != 0 || r.entries != 0 || r.branch != 0 || r.leaf != 0 || r.overflow != 0)
      return "has no root page but claims " + std::to_string(r.entries) + " entries at depth " +
             std::to_string(r.depth);
    return "";
  }
  if (r.root < 2 || r.root > last)
    return "has its root at page " + std::to_string(r.root) + ", outside pages 2.." + std::to_string(last);
  if (r.depth < 1 || r.depth > kMaxDepth) return "has an impossible depth " + std::to_string(r.depth);
  return "";
}

Meta parse_meta(const std::uint8_t* p, int index) {
  Meta meta;
  const std::string which = "meta page " + std::to_string(index);
  const std::uint16_t flags = load<std::uint16_t>(p + 10);
  if (!(flags & kMetaPage)) {
    meta.problem = which + " is not a meta page (" + page_kind(flags) + ")";
    return meta;
  }
  if (load<std::uint32_t>(p + 16) != kMagic) {
    meta.problem = which + " lacks LMDB's magic number (not an LMDB file, or its first pages are damaged)";
    return meta;
  }
  if (load<std::uint32_t>(p + 20) != kDataVersion) {
    meta.problem = which + " has LMDB data version " + std::to_string(load<std::uint32_t>(p + 20)) +
                   " (expected " + std::to_string(kDataVersion) + ")";
    return meta;
  }
  meta.free = parse_record(p + 40);
  meta.main = parse_record(p + 40 + kRecordBytes);
  meta.last = load<std::uint64_t>(p + 40 + 2 * kRecordBytes);
  meta.txnid = load<std::uint64_t>(p + 48 + 2 * kRecordBytes);
  meta.page_size = meta.free.pad;
  const std::uint64_t size = meta.page_size;
  if (size < kMinPageSize || size > kMaxPageSize || (size & (size - 1)))
    meta.problem = which + " gives an impossible page size " + std::to_string(size);
  else if (meta.last < 1)
    meta.problem = which + " gives an impossible last page " + std::to_string(meta.last);
  else if (std::string free = record_problem(meta.free, meta.last, false); !free.empty())
    meta.problem = which + ": the free-list record " + free;
  else if (std::string main = record_problem(meta.main, meta.last, true); !main.empty())
    meta.problem = which + ": the main database record " + main;
  return meta;
}

class File {
 public:
  explicit File(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    VECDB_REQUIRE(fd_ >= 0, "cannot open " + path + ": " + std::strerror(errno));
    struct stat info;
    VECDB_REQUIRE(::fstat(fd_, &info) == 0, "cannot stat " + path + ": " + std::strerror(errno));
    size_ = static_cast<std::uint64_t>(info.st_size);
  }
  ~File() {
    if (map_ != nullptr) ::munmap(map_, mapped_);
    ::close(fd_);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  std::uint64_t size() const { return size_; }

  // Reads up to `size` bytes at `offset`; returns how many were read.
  std::uint64_t read(void* out, std::uint64_t size, std::uint64_t offset) const {
    std::uint64_t done = 0;
    while (done < size) {
      const ssize_t got = ::pread(fd_, static_cast<char*>(out) + done, size - done, offset + done);
      if (got < 0 && errno == EINTR) continue;
      VECDB_REQUIRE(got >= 0, std::string("cannot read the data file: ") + std::strerror(errno));
      if (got == 0) break;
      done += static_cast<std::uint64_t>(got);
    }
    return done;
  }

  // Maps the first `bytes` (no more than the file holds, so no access can
  // fault past its end).
  const std::uint8_t* map(std::uint64_t bytes) {
    VECDB_REQUIRE(bytes <= size_, "internal error: mapping past the end of the data file");
    void* address = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd_, 0);
    VECDB_REQUIRE(address != MAP_FAILED, std::string("cannot map the data file: ") + std::strerror(errno));
    map_ = address;
    mapped_ = bytes;
    return static_cast<const std::uint8_t*>(address);
  }

 private:
  int fd_;
  std::uint64_t size_ = 0;
  void* map_ = nullptr;
  std::uint64_t mapped_ = 0;
};

struct Key {
  const std::uint8_t* data = nullptr;
  std::uint64_t size = 0;
};

enum class Order { kBytes, kInteger, kNone };

int compare(Order order, Key a, Key b) {
  if (order == Order::kInteger && a.size == b.size && (a.size == 4 || a.size == 8)) {
    const std::uint64_t x = a.size == 8 ? load<std::uint64_t>(a.data) : load<std::uint32_t>(a.data);
    const std::uint64_t y = b.size == 8 ? load<std::uint64_t>(b.data) : load<std::uint32_t>(b.data);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  const std::uint64_t common = a.size < b.size ? a.size : b.size;
  const int by_bytes = common ? std::memcmp(a.data, b.data, common) : 0;
  if (by_bytes != 0) return by_bytes;
  return a.size < b.size ? -1 : a.size > b.size ? 1 : 0;
}

enum class Role { kMain, kNamed, kDuplicates, kFreeList };

struct Tree {
  std::string name;
  Role role;
  std::uint16_t flags;  // the database's flags (for duplicates: its parent's)
  Record record;
  Order order = Order::kBytes;  // of this tree's keys
  Order dup_order = Order::kBytes;  // of the duplicates under each key
  std::uint64_t branch = 0, leaf = 0, overflow = 0, entries = 0;
};

class Walker {
 public:
  Walker(const std::uint8_t* map, std::uint64_t page_size, std::uint64_t last, Level level, Report& report,
         const Progress& progress)
      : map_(map), page_size_(page_size), last_(last), main_only_(level == Level::kMain),
        full_(level == Level::kFull), report_(report),
        progress_(progress), marks_(last + 1, kUnseen) {}

  void walk(const Meta& meta) {
    Tree main{"main", Role::kMain, meta.main.flags, meta.main};
    main.order = order_of(meta.main.flags, false);
    walk_tree(main);
    for (const auto& [name, record] : named_) {
      NamedDatabase found;
      found.name = name;
      found.flags = record.flags;
      found.depth = record.depth;
      found.entries = record.entries;
      found.root = record.root;
      report_.databases.push_back(found);
      if (main_only_) continue;
      const std::string problem = record_problem(record, last_, true);
      if (!problem.empty()) {
        add(name, 0, "its record in the main database " + problem);
        continue;
      }
      Tree tree{name, Role::kNamed, record.flags, record};
      tree.order = order_of(record.flags, false);
      tree.dup_order = order_of(record.flags, true);
      walk_tree(tree);
    }
    if (main_only_) return;
    Tree free{"free list", Role::kFreeList, 0, meta.free};
    free.order = Order::kInteger;
    walk_tree(free);
    for (std::uint64_t page : free_pages_) mark_free(page);
    if (full_) account();
  }

 private:
  enum Mark : std::uint8_t { kUnseen = 0, kTreePage = 1, kOverflowPage = 2, kFreePage = 3 };

  static Order order_of(std::uint16_t flags, bool duplicates) {
    if (duplicates) return flags & kReverseDup ? Order::kNone : flags & kIntegerDup ? Order::kInteger : Order::kBytes;
    return flags & kReverseKey ? Order::kNone : flags & kIntegerKey ? Order::kInteger : Order::kBytes;
  }

  const std::uint8_t* page(std::uint64_t number) const { return map_ + number * page_size_; }

  // The header and the last line of a page (where its first nodes sit).
  void prefetch(std::uint64_t number) const {
    if (number < 2 || number > last_) return;
    __builtin_prefetch(page(number));
    __builtin_prefetch(page(number) + page_size_ - 64);
  }

  void add(const std::string& database, std::uint64_t page_number, const std::string& text) {
    if (report_.problems.size() < kMaxProblems)
      report_.problems.push_back({database, page_number, text});
    else
      ++report_.problems_omitted;
  }

  void tick() {
    ++report_.pages_read;
    if (progress_ && report_.pages_read % kProgressEvery == 0) progress_(report_.pages_read, last_ + 1);
  }

  // Claims a page for a tree; false (and a problem) if it cannot be read.
  bool claim(const Tree& tree, std::uint64_t number, const char* what) {
    if (number < 2 || number > last_) {
      add(tree.name, number, std::string("a ") + what + " pointer leads to page " + std::to_string(number) +
                                 ", outside the file's pages 2.." + std::to_string(last_));
      return false;
    }
    if (marks_[number] != kUnseen) {
      add(tree.name, number, std::string("page ") + std::to_string(number) +
                                 " is reached twice (a loop, or a page shared between trees)");
      return false;
    }
    marks_[number] = kTreePage;
    tick();
    return true;
  }

  void walk_tree(Tree& tree) {
    const Record& record = tree.record;
    if (record.root == kNoPage) return;  // checked by record_problem
    walk_page(tree, record.root, 1, nullptr, nullptr);
    const bool pages_differ = tree.branch != record.branch || tree.leaf != record.leaf ||
                              (full_ && tree.overflow != record.overflow);
    if (tree.entries != record.entries || pages_differ) {
      add(tree.name, record.root,
          "its record claims " + std::to_string(record.entries) + " entries in " + std::to_string(record.branch) +
              " branch, " + std::to_string(record.leaf) + " leaf and " + std::to_string(record.overflow) +
              " overflow pages; the tree holds " + std::to_string(tree.entries) + " entries in " +
              std::to_string(tree.branch) + " branch and " + std::to_string(tree.leaf) + " leaf pages" +
              (full_ ? " and " + std::to_string(tree.overflow) + " overflow pages" : ""));
    }
  }

  // Key order within a page and against the separators above it:
  // low <= key < high, each key above the one before.
  bool in_order(Tree& tree, Order order, std::uint64_t number, Key key, const Key* previous, const Key* low,
                const Key* high) {
    if (order == Order::kNone) return true;
    if ((previous != nullptr && compare(order, *previous, key) >= 0) ||
        (low != nullptr && compare(order, key, *low) < 0) || (high != nullptr && compare(order, key, *high) >= 0)) {
      add(tree.name, number, "keys are out of order (a damaged key or a misplaced page)");
      return false;
    }
    return true;
  }

  void walk_page(Tree& tree, std::uint64_t number, unsigned level, const Key* low, const Key* high) {
    if (!claim(tree, number, level == 1 ? "root" : "child")) return;
    const std::uint8_t* p = page(number);
    const std::uint64_t header_number = load<std::uint64_t>(p);
    const std::uint16_t flags = load<std::uint16_t>(p + 10);
    const bool leaf = level == tree.record.depth;
    const bool leaf2 = leaf && tree.role == Role::kDuplicates && (tree.flags & kDupFixed);
    const std::uint16_t expected = leaf ? static_cast<std::uint16_t>(kLeaf | (leaf2 ? kLeaf2 : 0)) : kBranch;
    if (flags != expected) {
      add(tree.name, number, "page " + std::to_string(number) + " is " + page_kind(flags) + " where a " +
                                 (leaf ? "leaf" : "branch") + " page belongs (level " + std::to_string(level) +
                                 " of " + std::to_string(tree.record.depth) + ")");
      return;
    }
    if (header_number != number) {
      add(tree.name, number, "page " + std::to_string(number) + " says it is page " + std::to_string(header_number) +
                                 " (a stale or misplaced page)");
      return;
    }
    const std::uint64_t lower = load<std::uint16_t>(p + 12), upper = load<std::uint16_t>(p + 14);
    if (lower < kHeader || upper > page_size_ || lower > upper || ((lower - kHeader) & 1) || lower == kHeader) {
      add(tree.name, number, "page " + std::to_string(number) + " has impossible bounds (lower " +
                                 std::to_string(lower) + ", upper " + std::to_string(upper) + ")");
      return;
    }
    const std::uint64_t count = (lower - kHeader) / 2;
    if (leaf) {
      ++tree.leaf;
      if (leaf2) {
        walk_fixed_keys(tree, number, p, page_size_, count, tree.record.pad, low, high);
        return;
      }
      walk_leaf(tree, number, p, count, upper, low, high);
      return;
    }
    ++tree.branch;
    std::vector<std::pair<std::uint64_t, Key>> children;
    children.reserve(count);
    Key previous;
    for (std::uint64_t i = 0; i < count; ++i) {
      const std::uint8_t* node = node_at(tree, number, p, i, upper);
      if (node == nullptr) return;
      const Key key{node + kNodeHeader, load<std::uint16_t>(node + 6)};
      // A branch's first key is implicit (it stands for everything below the next).
      if (i > 0 && !in_order(tree, tree.order, number, key, i > 1 ? &previous : nullptr, low, high)) return;
      previous = key;
      const std::uint64_t child = load<std::uint16_t>(node) | std::uint64_t{load<std::uint16_t>(node + 2)} << 16 |
                                  std::uint64_t{load<std::uint16_t>(node + 4)} << 32;
      children.emplace_back(child, key);
    }
    for (std::uint64_t i = 0; i < children.size(); ++i) {
      // The walk is bound by memory latency (a page's header, then its
      // nodes): ask for pages a few children ahead before they are needed.
      if (i + kPrefetchAhead < children.size()) prefetch(children[i + kPrefetchAhead].first);
      const Key* child_low = i == 0 ? low : &children[i].second;
      const Key* child_high = i + 1 < children.size() ? &children[i + 1].second : high;
      walk_page(tree, children[i].first, level + 1, child_low, child_high);
    }
  }

  // Node i of a page, if its header and key lie in the page's node area;
  // else nullptr (and a problem).
  const std::uint8_t* node_at(Tree& tree, std::uint64_t number, const std::uint8_t* p, std::uint64_t i,
                              std::uint64_t upper) {
    const std::uint64_t offset = load<std::uint16_t>(p + kHeader + 2 * i);
    if (offset >= upper && offset + kNodeHeader <= page_size_ &&
        offset + kNodeHeader + load<std::uint16_t>(p + offset + 6) <= page_size_)
      return p + offset;
    add(tree.name, number, "node " + std::to_string(i) + " of page " + std::to_string(number) +
                               " lies outside the page's node area");
    return nullptr;
  }

  void walk_leaf(Tree& tree, std::uint64_t number, const std::uint8_t* p, std::uint64_t count, std::uint64_t upper,
                 const Key* low, const Key* high) {
    Key previous;
    for (std::uint64_t i = 0; i < count; ++i) {
      const std::uint8_t* node = node_at(tree, number, p, i, upper);
      if (node == nullptr) return;
      const std::uint16_t node_flags = load<std::uint16_t>(node + 4);
      const std::uint64_t key_size = load<std::uint16_t>(node + 6);
      const std::uint64_t data_size = load<std::uint16_t>(node) | std::uint64_t{load<std::uint16_t>(node + 2)} << 16;
      const std::uint64_t held = node_flags & kBigData ? 8 : data_size;  // bytes of data inside the page
      if (static_cast<std::uint64_t>(node - p) + kNodeHeader + key_size + held > page_size_) {
        add(tree.name, number, "the data of node " + std::to_string(i) + " runs past the end of page " +
                                   std::to_string(number));
        return;
      }
      const Key key{node + kNodeHeader, key_size};
      if (!in_order(tree, tree.order, number, key, i > 0 ? &previous : nullptr, low, high)) return;
      previous = key;
      const std::uint8_t* data = node + kNodeHeader + key_size;
      if (!leaf_data(tree, number, i, key, node_flags, data, data_size)) return;
    }
  }

  // One leaf node's data; false stops the page's walk.
  bool leaf_data(Tree& tree, std::uint64_t number, std::uint64_t i, Key key, std::uint16_t node_flags,
                 const std::uint8_t* data, std::uint64_t data_size) {
    const bool dupsort = tree.role == Role::kNamed && (tree.flags & kDupSort);
    auto where = [&] { return "node " + std::to_string(i) + " of page " + std::to_string(number); };
    switch (node_flags) {
      case 0:
        ++tree.entries;
        if (tree.role == Role::kMain)
          report_.main_values.emplace_back(std::string(reinterpret_cast<const char*>(key.data), key.size),
                                           std::string(reinterpret_cast<const char*>(data), data_size));
        if (tree.role == Role::kFreeList) free_list_entry(tree, number, data, data_size);
        return true;
      case kBigData: {
        ++tree.entries;
        const std::uint8_t* value = overflow(tree, number, load<std::uint64_t>(data), data_size);
        if (value != nullptr && tree.role == Role::kFreeList) free_list_entry(tree, number, value, data_size);
        return true;
      }
      case kSubData:
        if (tree.role != Role::kMain || data_size != kRecordBytes) break;
        ++tree.entries;
        named_.emplace_back(std::string(reinterpret_cast<const char*>(key.data), key.size), parse_record(data));
        return true;
      case kDupData | kSubData: {
        if (!dupsort || data_size != kRecordBytes) break;
        Tree duplicates{tree.name, Role::kDuplicates, tree.flags, parse_record(data)};
        duplicates.order = tree.dup_order;
        const std::string problem = record_problem(duplicates.record, last_, false);
        if (!problem.empty()) {
          add(tree.name, number, "the duplicates record in " + where() + " " + problem);
          return false;
        }
        walk_tree(duplicates);
        tree.entries += duplicates.record.entries;
        return true;
      }
      case kDupData:
        if (!dupsort) break;
        return sub_page(tree, number, where, data, data_size);
      default:
        break;
    }
    add(tree.name, number, where() + " has flags " + hex(node_flags) + " that do not belong in " +
                               (tree.role == Role::kMain ? "the main database" : "this database"));
    return false;
  }

  // Duplicates kept inside the node: a small leaf page of their own.
  template <class Where>
  bool sub_page(Tree& tree, std::uint64_t number, const Where& where, const std::uint8_t* sub, std::uint64_t size) {
    if (size < kHeader) {
      add(tree.name, number, "the duplicates held in " + where() + " are cut short");
      return false;
    }
    const std::uint16_t flags = load<std::uint16_t>(sub + 10);
    const std::uint64_t lower = load<std::uint16_t>(sub + 12), upper = load<std::uint16_t>(sub + 14);
    const bool fixed = tree.flags & kDupFixed;
    const std::uint16_t expected = static_cast<std::uint16_t>(kLeaf | kSubPage | (fixed ? kLeaf2 : 0));
    if ((flags & ~kDirty) != expected || lower < kHeader || upper > size || lower > upper ||
        ((lower - kHeader) & 1) || lower == kHeader) {
      add(tree.name, number, "the duplicates held in " + where() + " have a damaged header");
      return false;
    }
    const std::uint64_t count = (lower - kHeader) / 2;
    if (fixed) return walk_fixed_keys(tree, number, sub, size, count, load<std::uint16_t>(sub + 8), nullptr, nullptr);
    Key previous;
    for (std::uint64_t i = 0; i < count; ++i) {
      const std::uint64_t offset = load<std::uint16_t>(sub + kHeader + 2 * i);
      const std::uint64_t key_size = offset + kNodeHeader <= size ? load<std::uint16_t>(sub + offset + 6) : 0;
      if (offset < upper || offset + kNodeHeader + key_size > size) {
        add(tree.name, number, "a duplicate held in " + where() + " lies outside its space");
        return false;
      }
      const Key key{sub + offset + kNodeHeader, key_size};
      if (!in_order(tree, tree.dup_order, number, key, i > 0 ? &previous : nullptr, nullptr, nullptr)) return false;
      previous = key;
    }
    tree.entries += count;
    return true;
  }

  // Fixed-size keys packed after a header: DUPFIXED duplicates.
  bool walk_fixed_keys(Tree& tree, std::uint64_t number, const std::uint8_t* p, std::uint64_t size,
                       std::uint64_t count, std::uint64_t key_size, const Key* low, const Key* high) {
    if (key_size == 0 || kHeader + count * key_size > size) {
      add(tree.name, number, "fixed-size duplicates of " + std::to_string(key_size) + " bytes do not fit page " +
                                 std::to_string(number));
      return false;
    }
    const Order order = tree.role == Role::kDuplicates ? tree.order : tree.dup_order;
    Key previous;
    for (std::uint64_t i = 0; i < count; ++i) {
      const Key key{p + kHeader + i * key_size, key_size};
      if (!in_order(tree, order, number, key, i > 0 ? &previous : nullptr, low, high)) return false;
      previous = key;
    }
    tree.entries += count;
    return true;
  }

  // A value kept on overflow pages; returns its bytes if they lie in the file.
  const std::uint8_t* overflow(Tree& tree, std::uint64_t number, std::uint64_t first, std::uint64_t size) {
    std::uint64_t pages = (kHeader - 1 + size) / page_size_ + 1;
    if (first < 2 || first > last_ || pages > last_ - first + 1) {
      add(tree.name, number, "a value on page " + std::to_string(number) + " points to overflow pages " +
                                 std::to_string(first) + "+" + std::to_string(pages) + ", outside the file");
      return nullptr;
    }
    const std::uint8_t* p = page(first);
    if (full_) {
      const std::uint16_t flags = load<std::uint16_t>(p + 10);
      const std::uint64_t stated = load<std::uint32_t>(p + 12);
      if (flags != kOverflow || load<std::uint64_t>(p) != first || stated < pages || stated > last_ - first + 1) {
        add(tree.name, first, "overflow page " + std::to_string(first) + " is " + page_kind(flags) +
                                  " with a damaged header (a value of " + std::to_string(size) + " bytes starts there)");
        return nullptr;
      }
      pages = stated;
    }
    for (std::uint64_t k = first; k < first + pages; ++k) {
      if (marks_[k] != kUnseen) {
        add(tree.name, k, "overflow page " + std::to_string(k) + " also belongs to another value or tree");
        return nullptr;
      }
      marks_[k] = kOverflowPage;
    }
    tree.overflow += pages;
    return p + kHeader;
  }

  // A free-list record: a count, then that many page numbers (room reserved
  // beyond them is allowed); they are claimed once every tree is walked.
  void free_list_entry(Tree& tree, std::uint64_t number, const std::uint8_t* data, std::uint64_t size) {
    const std::uint64_t count = size >= 8 ? load<std::uint64_t>(data) : ~std::uint64_t{0};
    if (size % 8 != 0 || count > size / 8 - 1) {
      add(tree.name, number, "a free-list record on page " + std::to_string(number) + " is damaged");
      return;
    }
    for (std::uint64_t i = 1; i <= count; ++i) free_pages_.push_back(load<std::uint64_t>(data + 8 * i));
  }

  void mark_free(std::uint64_t number) {
    if (number < 2 || number > last_) {
      add("free list", number, "lists page " + std::to_string(number) + ", outside the file's pages 2.." +
                                   std::to_string(last_));
    } else if (marks_[number] != kUnseen) {
      add("free list", number, "lists page " + std::to_string(number) + " as free while it " +
                                   (marks_[number] == kFreePage ? "is listed already" : "holds data") +
                                   " (the next write would overwrite it)");
    } else {
      marks_[number] = kFreePage;
    }
  }

  void account() {
    std::uint64_t missing = 0, first = 0;
    for (std::uint64_t number = 2; number <= last_; ++number) {
      if (marks_[number] == kUnseen && missing++ == 0) first = number;
    }
    if (missing)
      add("free list", first, std::to_string(missing) + " page(s) (the first is " + std::to_string(first) +
                                  ") are neither in a tree nor free (lost to damage)");
  }

  const std::uint8_t* map_;
  std::uint64_t page_size_, last_;
  bool main_only_, full_;
  Report& report_;
  const Progress& progress_;
  std::vector<std::uint8_t> marks_;
  std::vector<std::pair<std::string, Record>> named_;
  std::vector<std::uint64_t> free_pages_;
};

}  // namespace

Report check_file(const std::string& path, Level level, std::uint64_t txnid, const Progress& progress) {
  Report report;
  File file(path);
  report.file_bytes = file.size();
  auto fail = [&](const std::string& text) {
    report.problems.push_back({"meta", 0, text});
    return report;
  };
  std::uint8_t first[kMetaBytes];
  if (file.read(first, kMetaBytes, 0) < kMetaBytes)
    return fail("the file holds " + std::to_string(file.size()) + " bytes, too few for LMDB's meta pages");
  Meta metas[2] = {parse_meta(first, 0), Meta{}};
  if (!metas[0].problem.empty()) return fail(metas[0].problem);
  const std::uint64_t page_size = metas[0].page_size;
  std::uint8_t second[kMetaBytes];
  if (file.size() < 2 * page_size || file.read(second, kMetaBytes, page_size) < kMetaBytes)
    return fail("the file holds " + std::to_string(file.size()) + " bytes, too few for its two meta pages of " +
                std::to_string(page_size) + " bytes");
  metas[1] = parse_meta(second, 1);
  if (!metas[1].problem.empty()) return fail(metas[1].problem);
  if (metas[1].page_size != page_size)
    return fail("the meta pages disagree on the page size (" + std::to_string(page_size) + " and " +
                std::to_string(metas[1].page_size) + ")");
  // LMDB uses the meta with the larger transaction id.
  const Meta* meta = &metas[metas[0].txnid < metas[1].txnid ? 1 : 0];
  if (txnid != 0) {
    meta = metas[0].txnid == txnid ? &metas[0] : metas[1].txnid == txnid ? &metas[1] : nullptr;
    if (meta == nullptr) {
      report.snapshot_found = false;
      return report;
    }
  }
  report.page_size = page_size;
  report.last_page = meta->last;
  report.txnid = meta->txnid;
  if (meta->last >= file.size() / page_size)
    return fail("the file holds " + std::to_string(file.size()) + " bytes but LMDB's last used page is page " +
                std::to_string(meta->last) + " of " + std::to_string(page_size) + " bytes: the file was cut short");
  const std::uint64_t used = (meta->last + 1) * page_size;
  if (level == Level::kMeta) return report;
  const std::uint8_t* map = file.map(used);
  Walker(map, page_size, meta->last, level, report, progress).walk(*meta);
  return report;
}

}  // namespace lmdbfile
}  // namespace vecdb
