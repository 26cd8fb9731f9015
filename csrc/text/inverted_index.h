// An inverted index over one field of a collection's points: for each term,
// the points that hold it with a weight (a term frequency for BM25 text, a
// learned weight for sparse vectors), searched top-k by dynamic pruning
// (MaxScore, text/max_score.cpp).
//
// Points are given by the caller's labels. Internally each stored version of
// a point gets a fresh document number, so posting lists stay sorted by
// appending: replacing a point retires its old document (a dead bit) and
// appends a new one. Dead documents are skipped by searches and dropped from
// the lists once they are as many as the live ones (compact()).
//
// Searches run concurrently with each other and with writes: a
// reader-writer lock keeps a write (which may reallocate lists) from moving
// memory under a running search.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/bytes.h"

namespace vecdb {

// How a point's weight for a term becomes its score.
enum class TermScoring {
  // Okapi BM25, Lucene's variant: idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5)),
  // score = sum over query terms of q_w * idf(t) * tf / (tf + k1 * (1 - b + b * len / avg_len)),
  // where len is a point's token count (the sum of its weights).
  Bm25,
  // Dot product of sparse vectors: sum over shared terms of q_w * w.
  Dot,
};

struct Bm25Parameters {
  float k1 = 1.2f;
  float b = 0.75f;
};

// One stored version of a point: what removing it needs.
struct Document {
  std::int64_t label;
  float length;          // sum of its weights (BM25's document length)
  std::uint32_t first;   // its terms: term_refs_[first, first + count)
  std::uint32_t count;
};

// Postings per block: a block's bounds let a search skip or demote a term
// where its postings score low (block-max MaxScore, text/max_score.cpp).
constexpr std::size_t kPostingBlock = 64;

// What one block of a list (or a whole list) can score: bounds over every
// entry it has held since the list was last compacted (dead ones too: a
// bound may be loose, never low).
struct PostingBounds {
  float max_weight = 0.0f;
  float min_weight = 0.0f;
  float min_length = 0.0f;

  void include(float weight, float length, bool first);
};

struct PostingList {
  std::vector<std::uint32_t> docs;  // ascending
  std::vector<float> weights;       // parallel to docs
  std::uint32_t live = 0;           // live documents holding the term (BM25's df)
  PostingBounds bounds;             // of the whole list
  std::vector<PostingBounds> blocks;         // of postings [b * kPostingBlock, (b + 1) * kPostingBlock)
  std::vector<std::uint32_t> block_last;     // each block's last document

  void append(std::uint32_t doc, float weight, float length);
};

// BM25's collection statistics: how many points hold text, their total
// length, and how many hold each query term. A sharded collection sums its
// shards' (statistics()) and searches each shard with the sums, so every
// shard scores as one index would.
struct CorpusStatistics {
  double points = 0;
  double total_length = 0;
  std::vector<double> document_frequencies;  // by query term
};

struct SearchResult {
  std::vector<std::int64_t> labels;
  std::vector<float> scores;  // best first; ties by the smaller label
};

class InvertedIndex {
 public:
  InvertedIndex(TermScoring scoring, Bm25Parameters bm25);

  TermScoring scoring() const { return scoring_; }
  Bm25Parameters bm25() const { return bm25_; }

  // Sets the terms of n points: point i holds terms[offsets[i], offsets[i+1])
  // with their weights (finite; a term at most once per point, not checked
  // here). A point given no terms is removed. Labels must be distinct.
  void set(const std::int64_t* labels, std::size_t n, const std::int64_t* offsets,
           const std::vector<std::string>& terms, const float* weights);

  // Removes points (labels not held are skipped).
  void remove(const std::int64_t* labels, std::size_t n);

  // The k best points holding at least one of the query's terms (distinct;
  // unknown terms score nothing), among those whose label bit is set in
  // `allowed` (null: all; labels at or past `allowed_bits` are not allowed).
  // `corpus` (null: this index's own) gives the statistics to score with.
  SearchResult search(const std::vector<std::string>& terms, const float* query_weights, std::size_t k,
                      const std::uint64_t* allowed, std::uint64_t allowed_bits,
                      const CorpusStatistics* corpus = nullptr) const;

  // This index's statistics for these query terms.
  CorpusStatistics statistics(const std::vector<std::string>& terms) const;

  // The live points' terms and weights, in a versioned, checksummed form
  // (a snapshot: reopening loads it instead of re-reading every point's
  // terms from LMDB), and an index rebuilt from it (points in the same
  // order, so the same document numbers: the same answers, ties included).
  void save(Sink& sink) const;
  static std::unique_ptr<InvertedIndex> load(Source& source);

  std::size_t size() const;        // live points
  std::size_t vocabulary() const;  // terms held by at least one live point
  std::size_t memory_bytes() const;
  bool contains(std::int64_t label) const;

 private:
  std::uint32_t term_id(const std::string& term);
  void retire(std::uint32_t doc);  // under the write lock
  void compact();                  // under the write lock
  bool compaction_due() const;

  TermScoring scoring_;
  Bm25Parameters bm25_;
  std::unordered_map<std::string, std::uint32_t> term_ids_;
  std::vector<PostingList> lists_;             // by term id
  std::vector<Document> documents_;            // by document number
  std::vector<std::uint8_t> dead_;             // by document number
  std::vector<float> lengths_;                 // by document number: what scoring reads, packed
  std::vector<std::uint32_t> term_refs_;       // the documents' term ids, concatenated
  std::unordered_map<std::int64_t, std::uint32_t> current_;  // label -> its live document
  std::size_t dead_count_ = 0;
  std::size_t live_terms_ = 0;
  double live_length_ = 0.0;  // sum of live documents' lengths
  mutable std::shared_mutex mutex_;
};

}  // namespace vecdb
