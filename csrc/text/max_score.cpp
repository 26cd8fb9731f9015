// Top-k search of the inverted index by block-max MaxScore (Turtle and
// Flood, 1995; windowed over blocks as Lucene's MaxScoreBulkScorer),
// document at a time.
//
// Each query term has an upper bound on what it can add to a score. With the
// terms sorted by bound, the cheapest prefix whose bounds sum below the k-th
// best score so far is "non-essential": a point holding only those terms
// cannot enter the top k, so candidates come from the other (essential)
// terms' lists alone, and a candidate stops being scored as soon as what is
// left to add cannot lift it to the k-th score.
//
// Bounds are taken per window of documents, not per list: a window ends
// where the first of the lists' current blocks (kPostingBlock postings)
// ends, so inside it every term is bounded by its current block's bound.
// A common term's blocks mostly score low: in most windows it becomes
// non-essential (probed by galloping search, never walked), and a window
// whose bounds together cannot reach the k-th score is skipped whole.
//
// Inside a window, the essential terms' postings are summed term at a time
// into an array by document, then each document reached is finished (the
// non-essential terms probed while they can still lift it) in order.
//
// Ties are kept exactly: pruning needs a bound strictly below the k-th
// score (a point equal to it may still enter by a smaller label), and each
// bound is raised by a relative margin larger than float rounding, so the
// result is the brute-force top k.
#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>

#include "common/error.h"
#include "kernels/topk.h"
#include "text/inverted_index.h"

namespace vecdb {

namespace {

// Covers the rounding of a float sum of a few hundred terms.
constexpr float kBoundMargin = 1e-4f;
constexpr std::uint32_t kNoDocument = std::numeric_limits<std::uint32_t>::max();
// Documents per window at most (its sums: 16 KiB, in L1).
constexpr std::size_t kMaxWindow = 4096;

struct Cursor {
  const PostingList* list;
  std::size_t pos;
  float multiplier;  // the query weight, times idf for BM25
  float window_bound;

  bool done() const { return pos >= list->docs.size(); }
  std::uint32_t doc() const { return list->docs[pos]; }
  std::size_t block() const { return pos / kPostingBlock; }

  // Moves to the first entry >= doc (galloping, then binary search).
  void seek(std::uint32_t doc) {
    const std::uint32_t* docs = list->docs.data();
    const std::size_t end = list->docs.size();
    if (pos >= end || docs[pos] >= doc) return;
    std::size_t step = 1;
    std::size_t low = pos;
    while (low + step < end && docs[low + step] < doc) {
      low += step;
      step *= 2;
    }
    const std::size_t high = std::min(low + step, end);
    pos = static_cast<std::size_t>(std::lower_bound(docs + low + 1, docs + high, doc) - docs);
  }
};

bool allowed_label(std::int64_t label, const std::uint64_t* allowed, std::uint64_t bits) {
  if (allowed == nullptr) return true;
  if (label < 0 || static_cast<std::uint64_t>(label) >= bits) return false;
  return (allowed[label >> 6] >> (label & 63)) & 1u;
}

}  // namespace

SearchResult InvertedIndex::search(const std::vector<std::string>& terms, const float* query_weights,
                                   std::size_t k, const std::uint64_t* allowed, std::uint64_t allowed_bits,
                                   const CorpusStatistics* corpus) const {
  for (std::size_t t = 0; t < terms.size(); ++t) {
    VECDB_REQUIRE(std::isfinite(query_weights[t]), "query term weights must be finite");
  }
  if (corpus != nullptr) {
    VECDB_REQUIRE(corpus->document_frequencies.size() == terms.size(), "corpus statistics need one df per term");
    VECDB_REQUIRE(std::isfinite(corpus->points) && std::isfinite(corpus->total_length) && corpus->points >= 0 &&
                      corpus->total_length >= 0,
                  "corpus statistics must be finite and >= 0");
  }
  std::shared_lock<std::shared_mutex> lock(mutex_);
  SearchResult result;
  const std::size_t n_live = current_.size();
  if (k == 0 || n_live == 0) return result;
  const double n_corpus = corpus != nullptr ? std::max(corpus->points, static_cast<double>(n_live)) : n_live;
  const double corpus_length = corpus != nullptr ? corpus->total_length : live_length_;

  // BM25's length normalisation: tf / (tf + c + d * length).
  const double average_length = corpus_length / n_corpus;
  const float c = bm25_.k1 * (1.0f - bm25_.b);
  const float d = average_length > 0 ? static_cast<float>(bm25_.k1 * bm25_.b / average_length) : 0.0f;
  const bool bm25 = scoring_ == TermScoring::Bm25;

  struct QueryTerm {
    std::uint32_t id;
    float weight;  // summed over repeats
    double df;
  };
  std::vector<QueryTerm> query;
  for (std::size_t t = 0; t < terms.size(); ++t) {
    const auto found = term_ids_.find(terms[t]);
    if (found == term_ids_.end() || lists_[found->second].live == 0) continue;
    auto same = std::find_if(query.begin(), query.end(), [&](const QueryTerm& q) { return q.id == found->second; });
    if (same == query.end()) {
      const double local_df = lists_[found->second].live;
      // Never below this shard's own count (a caller's stale sum would make idf negative).
      const double df = corpus != nullptr ? std::max(corpus->document_frequencies[t], local_df) : local_df;
      query.push_back({found->second, query_weights[t], std::min(df, n_corpus)});
    } else {
      same->weight += query_weights[t];
    }
  }
  std::vector<Cursor> cursors;
  cursors.reserve(query.size());
  for (const QueryTerm& term : query) {
    float multiplier = term.weight;
    if (bm25) multiplier *= static_cast<float>(std::log(1.0 + (n_corpus - term.df + 0.5) / (term.df + 0.5)));
    cursors.push_back({&lists_[term.id], 0, multiplier, 0.0f});
  }

  const auto bound_of = [&](const Cursor& cursor, const PostingBounds& bounds) {
    const float bound = bm25 ? cursor.multiplier * (bounds.max_weight / (bounds.max_weight + c + d * bounds.min_length))
                             : std::max(cursor.multiplier * bounds.max_weight, cursor.multiplier * bounds.min_weight);
    return std::max(bound, 0.0f) * (1.0f + kBoundMargin) + std::numeric_limits<float>::min();
  };
  const auto contribution = [&](const Cursor& cursor, std::uint32_t doc) {
    const float weight = cursor.list->weights[cursor.pos];
    if (bm25) return cursor.multiplier * (weight / (weight + c + d * lengths_[doc]));
    return cursor.multiplier * weight;
  };

  TopK top(std::min(k, n_live));
  float threshold = -std::numeric_limits<float>::infinity();  // the k-th best score once k are kept
  std::vector<float> below(cursors.size() + 1, 0.0f);          // below[i]: bounds of cursors [0, i) summed
  // A window's essential postings are summed term at a time into these (by
  // document - window start), then its documents are finished one by one in
  // order: no per-candidate pass over the essential lists.
  std::vector<float> sums(kMaxWindow, 0.0f);
  std::vector<std::uint64_t> touched(kMaxWindow / 64, 0);
  while (true) {
    cursors.erase(std::remove_if(cursors.begin(), cursors.end(), [](const Cursor& cursor) { return cursor.done(); }),
                  cursors.end());
    if (cursors.empty()) break;
    const std::size_t n = cursors.size();
    // The window: from the first document left, up to where the first
    // current block ends (so each term's block bound holds in it), at most
    // kMaxWindow documents.
    std::uint32_t window_start = kNoDocument;
    std::uint32_t window_end = kNoDocument;
    for (Cursor& cursor : cursors) {
      window_start = std::min(window_start, cursor.doc());
      window_end = std::min(window_end, cursor.list->block_last[cursor.block()]);
      cursor.window_bound = bound_of(cursor, cursor.list->blocks[cursor.block()]);
    }
    window_end = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(window_end, static_cast<std::uint64_t>(window_start) + kMaxWindow - 1));
    std::sort(cursors.begin(), cursors.end(),
              [](const Cursor& a, const Cursor& b) { return a.window_bound < b.window_bound; });
    for (std::size_t i = 0; i < n; ++i) below[i + 1] = below[i] + cursors[i].window_bound;
    std::size_t first_essential = 0;
    while (first_essential < n && below[first_essential + 1] < threshold) ++first_essential;

    if (first_essential < n) {
      for (std::size_t i = first_essential; i < n; ++i) {
        Cursor& cursor = cursors[i];
        const std::uint32_t* docs = cursor.list->docs.data();
        const std::size_t end = cursor.list->docs.size();
        for (; cursor.pos < end && docs[cursor.pos] <= window_end; ++cursor.pos) {
          const std::uint32_t offset = docs[cursor.pos] - window_start;
          sums[offset] += contribution(cursor, docs[cursor.pos]);
          touched[offset >> 6] |= std::uint64_t{1} << (offset & 63);
        }
      }
      const std::size_t words = (static_cast<std::size_t>(window_end - window_start) >> 6) + 1;
      for (std::size_t word = 0; word < words; ++word) {
        for (std::uint64_t bits = touched[word]; bits != 0; bits &= bits - 1) {
          const std::size_t offset = (word << 6) + static_cast<std::size_t>(__builtin_ctzll(bits));
          float score = sums[offset];
          sums[offset] = 0.0f;
          const std::uint32_t candidate = window_start + static_cast<std::uint32_t>(offset);
          if (dead_[candidate] || !allowed_label(documents_[candidate].label, allowed, allowed_bits)) continue;
          bool pruned = false;
          for (std::size_t i = first_essential; i-- > 0;) {
            if (score + below[i + 1] < threshold) {
              pruned = true;
              break;
            }
            Cursor& cursor = cursors[i];
            cursor.seek(candidate);
            if (!cursor.done() && cursor.doc() == candidate) score += contribution(cursor, candidate);
          }
          if (pruned || score < threshold) continue;
          top.push(-score, documents_[candidate].label);
          threshold = -top.threshold();  // -inf until k are kept
        }
        touched[word] = 0;
      }
    }
    // Past the window: what it held either was scored or could not reach the k-th score.
    if (window_end == kNoDocument) break;
    for (Cursor& cursor : cursors) cursor.seek(window_end + 1);
  }
  const std::size_t found = top.size();
  result.labels.resize(found);
  result.scores.resize(found);
  top.write_sorted(found, result.labels.data(), result.scores.data());
  for (float& score : result.scores) score = -score;
  return result;
}

}  // namespace vecdb
