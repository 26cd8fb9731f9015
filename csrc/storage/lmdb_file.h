// Checks an LMDB data file (data.mdb) from outside LMDB, without trusting a
// byte of it: LMDB keeps no checksums and trusts its pages, so a truncated
// file kills a process that maps it (SIGBUS) and a damaged page trips an
// assertion (abort) or sends it reading wild memory. This reads the file
// the way mdb.c lays it out (two meta pages, then B-tree, overflow and free
// pages) and reports what is wrong instead.
//
// Levels:
// - kMeta: both meta pages and the file size against the newest one's last
//   page (what must hold before LMDB may map the file).
// - kMain: also the main database's pages (where vecdb keeps its format key
//   and settings), returning its values.
// - kStructure: also every branch and leaf page of every tree (the main
//   database, each named database, duplicate sub-databases, the free list):
//   the page number each header carries, page type by depth, bounds of
//   every node, key order within pages and against the parent's separators,
//   entry and page counts against the database records, overflow and
//   free-list page numbers within the file, no page used twice or both used
//   and free. It reads each branch and leaf page once; overflow pages are
//   not read.
// - kFull: also each overflow page's header and extent, and that every page
//   up to the last is used or free exactly once (LMDB's invariant).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace vecdb {
namespace lmdbfile {

enum class Level { kMeta = 0, kMain = 1, kStructure = 2, kFull = 3 };

struct Problem {
  std::string database;  // "meta", "main", "free list" or a named database
  std::uint64_t page;    // 0 when not about one page
  std::string text;
};

struct NamedDatabase {
  std::string name;
  std::uint16_t flags = 0;
  std::uint16_t depth = 0;
  std::uint64_t entries = 0;
  std::uint64_t root = 0;
};

struct Report {
  std::uint64_t file_bytes = 0;
  std::uint64_t page_size = 0;
  std::uint64_t last_page = 0;
  std::uint64_t txnid = 0;
  bool snapshot_found = true;  // false: no meta page holds the txnid asked for
  std::uint64_t pages_read = 0;
  std::vector<Problem> problems;
  std::uint64_t problems_omitted = 0;
  std::vector<NamedDatabase> databases;  // found in the main database (kMain and up)
  // Entries of the main database that are plain values held in the page
  // (vecdb's settings and format key), so callers can read them before
  // LMDB opens the file.
  std::vector<std::pair<std::string, std::string>> main_values;
};

// Called now and then during a kFull check with (pages done, pages in all).
using Progress = std::function<void(std::uint64_t, std::uint64_t)>;

// Checks the file at `path`. `txnid` 0 checks the newest meta; another value
// checks the snapshot of that transaction (a caller holding a read
// transaction pins it against a concurrent writer), or reports
// snapshot_found = false if neither meta page holds it any more.
Report check_file(const std::string& path, Level level, std::uint64_t txnid, const Progress& progress);

}  // namespace lmdbfile
}  // namespace vecdb
