#include "cnncore/runtime.hpp"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "cuda_api.hpp"
#include "parallel.hpp"

#if defined(CNNCORE_USE_OPENMP)
#include <omp.h>
#endif

#ifndef CNNCORE_VERSION_STRING
#define CNNCORE_VERSION_STRING "dev"
#endif
#ifndef CNNCORE_COMPILER_STRING
#define CNNCORE_COMPILER_STRING "unknown"
#endif

namespace cnncore {

const char* version() { return CNNCORE_VERSION_STRING; }

// ---- threads -----------------------------------------------------------------------------------
namespace {
int default_threads() {
#if defined(CNNCORE_USE_OPENMP)
  // omp_get_max_threads() already reflects OMP_NUM_THREADS.
  return std::max(1, omp_get_max_threads());
#else
  return 1;
#endif
}
std::atomic<int> g_threads{0};
}  // namespace

void set_num_threads(int n) {
  CNNCORE_CHECK_VALUE(n >= 1, "set_num_threads: n must be >= 1, but got ", n);
#if defined(CNNCORE_USE_OPENMP)
  g_threads.store(n);
  omp_set_num_threads(n);
#else
  g_threads.store(1);
#endif
}

namespace {
std::atomic<bool> g_deterministic{false};
}  // namespace

void set_deterministic_algorithms(bool on) { g_deterministic.store(on); }
bool deterministic_algorithms() { return g_deterministic.load(std::memory_order_relaxed); }

int get_num_threads() {
  int n = g_threads.load(std::memory_order_relaxed);
  if (n == 0) {
    n = default_threads();
    g_threads.store(n);
  }
  return n;
}

// ---- ISA ---------------------------------------------------------------------------------------
const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "baseline";
  }
}

Isa isa_from_name(const std::string& name) {
  if (name == "baseline") return Isa::Baseline;
  if (name == "avx2") return Isa::Avx2;
  if (name == "avx512") return Isa::Avx512;
  throw ValueError(detail::concat("isa: expected one of 'baseline', 'avx2', 'avx512', but got '",
                                  name, "'"));
}

bool cpu_supports(Isa isa) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  switch (isa) {
    case Isa::Baseline: return true;
    case Isa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::Avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }
  return false;
#else
  return isa == Isa::Baseline;
#endif
}

std::vector<Isa> compiled_isas() {
  std::vector<Isa> v{Isa::Baseline};
#if defined(CNNCORE_BUILD_AVX2)
  v.push_back(Isa::Avx2);
#endif
#if defined(CNNCORE_BUILD_AVX512)
  v.push_back(Isa::Avx512);
#endif
  return v;
}

std::vector<Isa> available_isas() {
  std::vector<Isa> v;
  for (Isa i : compiled_isas())
    if (cpu_supports(i)) v.push_back(i);
  return v;
}

namespace {
std::string g_isa_note;

Isa detect_isa() {
  Isa best = Isa::Baseline;
  for (Isa i : available_isas()) best = i;
  if (const char* env = std::getenv("CNNCORE_ISA")) {
    std::string want(env);
    if (!want.empty()) {
      Isa w;
      try {
        w = isa_from_name(want);
      } catch (const ValueError&) {
        g_isa_note = "CNNCORE_ISA='" + want + "' is not one of baseline, avx2, avx512; ignored";
        return best;
      }
      if (static_cast<int>(w) <= static_cast<int>(best)) return w;
      g_isa_note = "CNNCORE_ISA=" + want + " asked for a path this build or CPU lacks; using " +
                   isa_name(best);
    }
  }
  return best;
}

std::atomic<int> g_isa{-1};
}  // namespace

Isa active_isa() {
  int v = g_isa.load(std::memory_order_acquire);
  if (v < 0) {
    static std::once_flag once;
    std::call_once(once, [] { g_isa.store(static_cast<int>(detect_isa())); });
    v = g_isa.load();
  }
  return static_cast<Isa>(v);
}

void set_isa(Isa isa) {
  bool ok = false;
  for (Isa i : available_isas()) ok = ok || i == isa;
  if (!ok) {
    std::string avail;
    for (Isa i : available_isas()) avail += std::string(avail.empty() ? "" : ", ") + isa_name(i);
    throw ValueError(detail::concat("set_isa: '", isa_name(isa),
                                    "' is not available here (compiled and supported: ", avail,
                                    ")"));
  }
  active_isa();  // settle the one-time detection first so it cannot overwrite this choice
  g_isa.store(static_cast<int>(isa));
}

// ---- random numbers ----------------------------------------------------------------------------
namespace {
std::mutex g_rng_mutex;
RngState g_rng{0x5eed5eedULL, 0};

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace

void manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(g_rng_mutex);
  g_rng = RngState{seed, 0};
}

RngState get_rng_state() {
  std::lock_guard<std::mutex> lock(g_rng_mutex);
  return g_rng;
}

void set_rng_state(RngState state) {
  std::lock_guard<std::mutex> lock(g_rng_mutex);
  g_rng = state;
}

RngState rng_reserve(uint64_t n) {
  std::lock_guard<std::mutex> lock(g_rng_mutex);
  RngState s = g_rng;
  g_rng.offset += n;
  return s;
}

float rng_uniform(RngState s, uint64_t i) {
  const uint64_t h = mix64(mix64(s.seed + 0x9e3779b97f4a7c15ULL) ^ (s.offset + i));
  return static_cast<float>(h >> 40) * (1.0f / 16777216.0f);
}

namespace {
// Box-Muller over the counter pair (2j, 2j+1) gives two normals: element 2j takes the cosine,
// 2j+1 the sine. u1 in (0, 1] keeps the log finite.
inline void normal_pair(RngState s, uint64_t j, float& c, float& d) {
  const float u1 = 1.0f - rng_uniform(s, 2 * j);
  const float u2 = rng_uniform(s, 2 * j + 1);
  const float r = std::sqrt(-2.0f * std::log(u1));
  const float a = 6.2831853071795864f * u2;
  c = r * std::cos(a);
  d = r * std::sin(a);
}
}  // namespace

float rng_normal(RngState s, uint64_t i) {
  float c, d;
  normal_pair(s, i / 2, c, d);
  return (i & 1) ? d : c;
}

void uniform_(Tensor& t, float low, float high) {
  CNNCORE_CHECK_VALUE(t.is_contiguous(), "uniform_: the tensor must be contiguous");
  float* p = t.data<float>();
  const int64_t n = t.numel();
  const RngState s = rng_reserve(static_cast<uint64_t>(n));
  parallel_for(0, n, 16384, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) p[i] = low + (high - low) * rng_uniform(s, i);
  });
}

void normal_(Tensor& t, float mean, float std) {
  CNNCORE_CHECK_VALUE(t.is_contiguous(), "normal_: the tensor must be contiguous");
  float* p = t.data<float>();
  const int64_t n = t.numel();
  const RngState s = rng_reserve(static_cast<uint64_t>(n + (n & 1)));
  // Chunks are split on pairs so every pair is computed once; the values equal rng_normal(s, i)
  // whatever the thread count.
  const int64_t pairs = (n + 1) / 2;
  parallel_for(0, pairs, 8192, [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) {
      float c, d;
      normal_pair(s, static_cast<uint64_t>(j), c, d);
      p[2 * j] = mean + std * c;
      if (2 * j + 1 < n) p[2 * j + 1] = mean + std * d;
    }
  });
}

Tensor randn(const Shape& shape) {
  Tensor t = Tensor::empty(shape);
  normal_(t, 0.0f, 1.0f);
  return t;
}

Tensor rand(const Shape& shape) {
  Tensor t = Tensor::empty(shape);
  uniform_(t, 0.0f, 1.0f);
  return t;
}

// ---- build info --------------------------------------------------------------------------------
std::map<std::string, std::string> build_info() {
  std::map<std::string, std::string> m;
  m["version"] = version();
  m["compiler"] = CNNCORE_COMPILER_STRING;
  std::string compiled, cpu;
  for (Isa i : compiled_isas()) compiled += std::string(compiled.empty() ? "" : ",") + isa_name(i);
  for (Isa i : {Isa::Baseline, Isa::Avx2, Isa::Avx512})
    if (cpu_supports(i)) cpu += std::string(cpu.empty() ? "" : ",") + isa_name(i);
  m["isas_compiled"] = compiled;
  m["cpu_isas"] = cpu;
  m["isa"] = isa_name(active_isa());
  std::string notes = g_isa_note;
#if defined(CNNCORE_USE_OPENMP)
  m["openmp"] = "yes";
#else
  m["openmp"] = "no";
  notes += std::string(notes.empty() ? "" : "; ") +
           "built without OpenMP: every kernel runs on one thread";
#endif
#if !defined(CNNCORE_BUILD_AVX512)
  notes += std::string(notes.empty() ? "" : "; ") +
           "built without AVX-512 kernels (the compiler lacks them): AVX-512 CPUs use the AVX2 path";
#endif
#if !defined(CNNCORE_BUILD_AVX2)
  notes += std::string(notes.empty() ? "" : "; ") + "built without AVX2 kernels: baseline SIMD only";
#endif
#if defined(CNNCORE_BUILD_AVX512)
  if (!cpu_supports(Isa::Avx512))
    notes += std::string(notes.empty() ? "" : "; ") +
             "this CPU has no AVX-512: its kernels are compiled in but the best path here is " +
             isa_name(cpu_supports(Isa::Avx2) ? Isa::Avx2 : Isa::Baseline);
#endif
  m["num_threads"] = std::to_string(get_num_threads());
#if defined(CNNCORE_WITH_CUDA)
  m["cuda"] = "yes";
  if (cuda::device_count() == 0)
    notes += std::string(notes.empty() ? "" : "; ") + "CUDA backend compiled in, but " +
             cuda::unavailable_reason();
#else
  m["cuda"] = "no";
#endif
  m["notes"] = notes;
  return m;
}

}  // namespace cnncore
