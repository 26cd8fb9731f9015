// Run-time choice of the kernel table by CPU features.
#include <atomic>
#include <string>
#include <vector>

#include "common/error.h"
#include "kernels/kernels.h"

namespace vecdb {
namespace {

const KernelTable* table_for(SimdLevel level) {
  switch (level) {
    case SimdLevel::AVX512: return avx512_kernels();
    case SimdLevel::AVX2: return avx2_kernels();
    case SimdLevel::Portable: return portable_kernels();
  }
  return nullptr;
}

bool level_supported(SimdLevel level, const CpuFeatures& f) {
  if (table_for(level) == nullptr) return false;
  switch (level) {
    case SimdLevel::AVX512: return f.avx512f && f.avx2 && f.fma && f.f16c;
    case SimdLevel::AVX2: return f.avx2 && f.fma && f.f16c;
    case SimdLevel::Portable: return true;
  }
  return false;
}

SimdLevel best_level() {
  const std::vector<SimdLevel> levels = available_simd_levels();
  return levels.back();
}

std::atomic<int>& active_level_storage() {
  static std::atomic<int> level{static_cast<int>(best_level())};
  return level;
}

}  // namespace

CpuFeatures cpu_features() {
  CpuFeatures f;
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
  // __builtin_cpu_supports also checks that the OS saves the AVX / AVX-512
  // register state (XCR0), not just the CPUID bits.
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.f16c = __builtin_cpu_supports("f16c");
  f.avx512f = __builtin_cpu_supports("avx512f");
#endif
  return f;
}

std::vector<SimdLevel> available_simd_levels() {
  const CpuFeatures f = cpu_features();
  std::vector<SimdLevel> levels;
  for (SimdLevel level : {SimdLevel::Portable, SimdLevel::AVX2, SimdLevel::AVX512}) {
    if (level_supported(level, f)) levels.push_back(level);
  }
  return levels;
}

SimdLevel active_simd_level() {
  return static_cast<SimdLevel>(active_level_storage().load(std::memory_order_relaxed));
}

const KernelTable& kernels() { return *table_for(active_simd_level()); }

void set_simd_level(SimdLevel level) {
  VECDB_REQUIRE(level_supported(level, cpu_features()),
                std::string("SIMD level '") + simd_level_name(level) +
                    "' is not supported by this CPU or build");
  active_level_storage().store(static_cast<int>(level), std::memory_order_relaxed);
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::AVX512: return "avx512";
    case SimdLevel::AVX2: return "avx2";
    case SimdLevel::Portable: return "portable";
  }
  return "unknown";
}

SimdLevel simd_level_from_name(const std::string& name) {
  for (SimdLevel level : {SimdLevel::Portable, SimdLevel::AVX2, SimdLevel::AVX512}) {
    if (name == simd_level_name(level)) return level;
  }
  throw Error("unknown SIMD level '" + name + "'; expected one of: portable, avx2, avx512");
}

}  // namespace vecdb
