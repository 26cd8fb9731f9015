#include "fusion/fusion.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace vecdb {

namespace {

// A branch's scores mapped to [0, 1] by mean +- 3 standard deviations.
std::vector<double> normalized(const Ranking& ranking) {
  double mean = 0.0;
  for (std::size_t i = 0; i < ranking.size; ++i) mean += ranking.scores[i];
  mean /= static_cast<double>(ranking.size);
  double variance = 0.0;
  for (std::size_t i = 0; i < ranking.size; ++i) {
    const double deviation = ranking.scores[i] - mean;
    variance += deviation * deviation;
  }
  const double spread = std::sqrt(variance / static_cast<double>(ranking.size));
  std::vector<double> mapped(ranking.size, 0.5);
  if (spread == 0.0) return mapped;
  const double low = mean - 3.0 * spread;
  for (std::size_t i = 0; i < ranking.size; ++i) {
    mapped[i] = std::clamp((ranking.scores[i] - low) / (6.0 * spread), 0.0, 1.0);
  }
  return mapped;
}

}  // namespace

Fused fuse(const std::vector<Ranking>& rankings, FusionKind kind, double rrf_k, std::size_t k) {
  std::vector<std::pair<std::int64_t, double>> parts;  // label, contribution
  for (const Ranking& ranking : rankings) {
    if (ranking.size == 0 || ranking.weight == 0.0) continue;
    const std::vector<double> mapped = kind == FusionKind::Dbsf ? normalized(ranking) : std::vector<double>();
    for (std::size_t i = 0; i < ranking.size; ++i) {
      const double part = kind == FusionKind::Rrf ? ranking.weight / (rrf_k + static_cast<double>(i + 1))
                                                  : ranking.weight * mapped[i];
      parts.emplace_back(ranking.labels[i], part);
    }
  }
  // Sum each label's parts (sorted by label, then in branch order), then rank.
  std::stable_sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<double, std::int64_t>> totals;  // -score, label
  for (std::size_t i = 0; i < parts.size();) {
    double total = 0.0;
    std::size_t j = i;
    for (; j < parts.size() && parts[j].first == parts[i].first; ++j) total += parts[j].second;
    totals.emplace_back(-total, parts[i].first);
    i = j;
  }
  const std::size_t kept = std::min(k, totals.size());
  std::partial_sort(totals.begin(), totals.begin() + static_cast<std::ptrdiff_t>(kept), totals.end());
  Fused fused;
  fused.labels.reserve(kept);
  fused.scores.reserve(kept);
  for (std::size_t i = 0; i < kept; ++i) {
    fused.labels.push_back(totals[i].second);
    fused.scores.push_back(-totals[i].first);
  }
  return fused;
}

}  // namespace vecdb
