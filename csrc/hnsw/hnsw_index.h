// An HNSW index: the graph, its vector storage, the ids ("labels") callers
// know vectors by, and the locking that lets searches run while other
// threads add, replace, delete or compact.
//
// Vectors live in dense slots (graph nodes) in insertion order; a label is a
// caller's int64 id, mapped to its slot. Replacing a label's vector inserts
// the new vector in a fresh slot and retires the old slot, which stays in
// the graph as a deleted node (never returned, still navigable) until
// compact() repairs the links around deleted nodes, renumbers the slots
// densely and gives their memory back. add() compacts on its own when the
// index would otherwise grow while a quarter of its slots are deleted, so
// inserts reuse the room deleted vectors held.
//
// A vector whose stored row equals one already held (byte for byte; see
// row_table.h) still gets a slot and keeps its own id, but becomes a copy
// of that slot's graph node rather than a node of its own (see graph.h):
// many identical vectors then cost the graph nothing and cannot make
// others unreachable. Deleting a head while copies of it live leaves it in
// the graph; compaction keeps its slot and moves one live copy's id there.
//
// Locking: one writer at a time (add, remove, compact) holds write_mutex_;
// searches never take it. Moving memory (growth, the renumbering step of a
// compaction) takes growth_ exclusively: the only moments searches wait.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "common/bytes.h"
#include "common/types.h"
#include "distance/dense_vectors.h"
#include "hnsw/graph.h"
#include "hnsw/id_map.h"
#include "hnsw/row_table.h"
#include "hnsw/visited.h"

namespace vecdb {

// What an index holds, for introspection.
struct HnswIndexStats {
  std::size_t live = 0;
  std::size_t deleted = 0;  // retired slots awaiting compaction
  std::size_t capacity = 0;
  std::size_t vector_bytes = 0;
  std::size_t graph_bytes = 0;
  std::size_t id_map_bytes = 0;  // ids, deleted bits, replacements, id -> slot map, row table
  GraphStats graph;
};

class HnswIndex {
 public:
  // dtype PQ8 stores product-quantization codes of `pq` (trained, same
  // dimension and metric) instead of vectors; searches then rank by ADC
  // distance, and get_vectors() returns the decoded approximations.
  HnswIndex(std::size_t dim, Metric metric, DType dtype, const HnswParams& params,
            std::shared_ptr<const ProductQuantizer> pq = nullptr);

  std::size_t dim() const { return vectors_.dim(); }
  Metric metric() const { return vectors_.metric(); }
  DType dtype() const { return vectors_.dtype(); }
  const std::shared_ptr<const ProductQuantizer>& pq() const { return vectors_.pq(); }
  const HnswParams& params() const { return graph_.params(); }
  // Live vectors (added and not deleted).
  std::size_t size() const { return live_.load(std::memory_order_acquire); }
  std::size_t deleted_count() const;
  // One more than the largest id ever assigned: every id is below it.
  std::int64_t id_bound() const { return next_id_.load(std::memory_order_acquire); }
  std::size_t memory_bytes() const;
  HnswIndexStats stats() const;

  // Inserts n rows (validated by the caller) on up to n_threads threads.
  // With ids, a row whose id exists replaces that vector; ids must be >= 0
  // and distinct. Without ids (nullptr), rows get the ids id_bound(),
  // id_bound() + 1, ... Returns the first id given out (or -1 with ids).
  // Nothing changes if the ids are invalid.
  std::int64_t add(const float* rows, std::size_t n, const std::int64_t* ids, std::size_t n_threads);

  // Deletes the vectors with these ids (ids not present are skipped; a
  // negative id throws before anything is deleted). Returns how many were
  // deleted. Deleted vectors are never returned and still guide searches.
  std::size_t remove(const std::int64_t* ids, std::size_t n);

  // Repairs the graph around deleted vectors and gives their slots'
  // memory back. Returns the number of slots reclaimed.
  std::size_t compact(std::size_t n_threads);

  // k nearest live vectors of each query with beam width ef (at least k),
  // restricted to ids whose bit is set in `allowed` (allowed_bits bits over
  // ids; nullptr: no restriction). ids/distances hold m x k, padded with
  // -1 / +inf. Each id appears at most once per query.
  void search(const float* queries, std::size_t m, std::size_t k, std::size_t ef, const std::uint64_t* allowed,
              std::uint64_t allowed_bits, std::size_t n_threads, std::int64_t* ids, float* distances) const;

  // Exact k nearest live vectors among those whose id passes `allowed`
  // (required): a scan of the allowed vectors in place, for filters that
  // keep so few vectors that a graph search would wander. Same output
  // contract as search(); ties go to the smaller id.
  void exact_search(const float* queries, std::size_t m, std::size_t k, const std::uint64_t* allowed,
                    std::uint64_t allowed_bits, std::size_t n_threads, std::int64_t* ids, float* distances) const;

  // Live vectors whose id passes `allowed` (as in search()): what a planner
  // weighs a graph search against a scan of the allowed ids with.
  std::size_t count(const std::uint64_t* allowed, std::uint64_t allowed_bits) const;

  // Exact distances from each query to its r candidates (ids; -1 and ids
  // not in the index are skipped; distinct per query), the k nearest kept:
  // the re-rank stage of a search whose shortlist came from another index
  // (a prefix of the dimensions). Same output contract as search(); a
  // repeated candidate would be returned twice. Runs while another thread
  // inserts or deletes (the id lookups wait briefly for the id map, as a
  // search waits only for growth and compaction's renumbering).
  void rerank(const float* queries, std::size_t m, const std::int64_t* candidates, std::size_t r, std::size_t k,
              std::size_t n_threads, std::int64_t* ids, float* distances) const;

  bool contains(std::int64_t id) const;
  // Stored vectors (normalized for cosine) as float32 into the rows of out
  // (n x dim); found[i] tells whether ids[i] is present (its row is left
  // untouched if not).
  void get_vectors(const std::int64_t* ids, std::size_t n, float* out, bool* found) const;
  // Live ids in slot order.
  std::vector<std::int64_t> ids() const;

  // The whole index in a versioned, checksummed format (see hnsw_index.cpp).
  // Writers wait while it is written; searches go on. With
  // SavedVectors::kRetired only the retired slots' vectors are written: for
  // a caller that keeps the live vectors itself (a collection's are in
  // LMDB) and gives them back through HnswRefill.
  enum class SavedVectors : std::uint32_t { kAll = 0, kRetired = 1 };
  void save(Sink& sink, SavedVectors saved = SavedVectors::kAll) const;
  // Rebuilds an index from save() output; a truncated, corrupted or
  // unknown-version input throws vecdb::Error, never yields a broken index.
  // Output saved without its live vectors is refused (read it with
  // HnswRefill).
  static std::unique_ptr<HnswIndex> load(Source& source);

 private:
  // A filter allowing fewer than one id per this many slots is read id by
  // id (accepted_slots).
  static constexpr std::size_t kSparseFilterSlots = 8;

  friend class HnswRefill;

  // load() and HnswRefill: the index as saved; its live slots' vectors are
  // unset if *saved says kRetired (then the copies are not checked yet).
  static std::unique_ptr<HnswIndex> read(Source& source, SavedVectors* saved);
  // Throws unless every copy's vector equals its head's.
  void check_copies(const char* what) const;
  void grow_to(std::size_t capacity);
  // Grows own_labels_ over the published slots that hold their own number.
  void extend_own_labels();
  ResultFilter result_filter(std::size_t visible, const std::uint64_t* allowed, std::uint64_t allowed_bits) const;
  // The live slots (published, not deleted) whose id passes `allowed` (every
  // live slot if null), read from the id map when the filter is sparse, else
  // by testing every slot: what exact_search scans and count() counts.
  std::vector<std::uint32_t> accepted_slots(const std::uint64_t* allowed, std::uint64_t allowed_bits) const;
  std::size_t compact_locked(std::size_t n_threads);
  // Fills heads_ from the graph nodes that are not copies, unless it is
  // filled already.
  void record_heads();
  void check_new_ids(const std::int64_t* ids, std::size_t n) const;
  // Runs fn(distance computer bound to the slot's own vector).
  template <class Fn>
  void with_node_distance(std::uint32_t slot, Fn&& fn) const;
  template <class Fn>
  void with_query_distance(const float* prepared, Fn&& fn) const;

  mutable std::mutex write_mutex_;
  DenseVectors vectors_;
  HnswGraph graph_;
  std::atomic<std::size_t> slots_{0};         // slots in use (live and deleted)
  std::uint64_t sequence_ = 0;                // inserts ever made: seeds node levels
  std::atomic<std::size_t> live_{0};
  std::atomic<std::int64_t> next_id_{0};
  std::vector<std::int64_t> labels_;          // slot -> id
  // Slots below this hold their own number as id (see ResultFilter): set
  // after their labels, and only grown, except by compaction and loading,
  // which no search overlaps.
  std::atomic<std::size_t> own_labels_{0};
  IdMap slot_of_;                             // id -> live slot
  // Graph nodes (not copies) by row. Filled by the first add() after a load
  // or a compaction rather than by them: hashing every row costs about
  // what reading the file does, and many loaded indexes are only searched.
  RowTable heads_;
  bool heads_recorded_ = false;
  // Guards slot_of_ against readers that do not hold write_mutex_
  // (rerank): writers change it under this lock, exclusively and briefly.
  mutable std::shared_mutex id_map_mutex_;
  std::vector<std::uint64_t> deleted_;        // bits over slots, set atomically
  std::vector<std::uint32_t> replaced_by_;    // slot -> the slot that replaced it (0: none; see ResultFilter)
  mutable std::shared_mutex growth_;
  mutable VisitedPool visited_;
};

// An index read from save(..., kRetired) output, waiting for its live
// vectors: fill() them (by id, from wherever the caller keeps them), then
// finish() hands over the index. Nothing can search it before.
class HnswRefill {
 public:
  explicit HnswRefill(Source& source);

  std::size_t dim() const { return dim_; }
  // Stores the rows (n x dim float32) of these ids on up to n_threads
  // threads; ids the index does not hold live are skipped (a caller may pass
  // points added after the save). Returns how many were stored.
  std::size_t fill(const float* rows, const std::int64_t* ids, std::size_t n, std::size_t n_threads);
  // Live slots still without a vector.
  std::size_t awaiting() const { return awaiting_; }
  // The index. A live slot left unfilled takes the vector of a filled copy
  // of its node (copies are identical), else zeros: the caller is about to
  // replace or delete such points (they changed after the save), and their
  // slots then only route searches. Throws if copies disagree.
  std::unique_ptr<HnswIndex> finish();

 private:
  std::unique_ptr<HnswIndex> index_;
  std::size_t dim_;
  std::vector<std::uint64_t> filled_;  // bits over slots; retired slots count as filled
  std::size_t awaiting_ = 0;
};

}  // namespace vecdb
