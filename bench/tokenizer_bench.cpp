// Tokenizer throughput, single thread, on ~1 MB of mixed text (the reference corpus: prose,
// code, many scripts, emoji, white-space runs, repeated to 1 MB). Reports input bytes/s for
// encode and output bytes/s for decode. Also the pre-tokenizer alone, hand-written scanner vs
// PCRE2 JIT on the same regex, which is why the scanner is the one used. And building the
// tokenizer: loading tokenizer.json vs from a GGUF file's vocabulary arrays, and exporting them.
// Run: build/llama3_bench --benchmark_filter=Tokenizer
// Tokenizer: $LLAMA3_TOKENIZER, else <repo>/.cache/tokenizer/tokenizer.json (scripts/setup.sh).
#define PCRE2_CODE_UNIT_WIDTH 8
#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>
#include <pcre2.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using llama3::tokenizer::Tokenizer;

const fs::path kRepo = fs::path(__FILE__).parent_path().parent_path();

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path tokenizer_path() {
  const char* env = std::getenv("LLAMA3_TOKENIZER");
  return env && *env ? fs::path(env) : kRepo / ".cache/tokenizer/tokenizer.json";
}

const Tokenizer* tokenizer() {
  static std::unique_ptr<Tokenizer> tok = [] {
    if (!fs::exists(tokenizer_path())) return std::unique_ptr<Tokenizer>();
    return std::make_unique<Tokenizer>(Tokenizer::load(tokenizer_path()));
  }();
  return tok.get();
}

// The corpus lines joined by newlines, repeated up to 1 MiB.
const std::string& mixed_text() {
  static const std::string text = [] {
    std::string joined;
    for (const auto& line : nlohmann::json::parse(read_file(kRepo / "tests/tokenizer/corpus.json"))) {
      joined += line.get<std::string>();
      joined += '\n';
    }
    std::string out;
    while (out.size() < (1u << 20)) out += joined;
    return out;
  }();
  return text;
}

void BM_TokenizerEncode(benchmark::State& state) {
  const Tokenizer* tok = tokenizer();
  if (!tok) return state.SkipWithError("no tokenizer: run scripts/setup.sh");
  const std::string& text = mixed_text();
  size_t tokens = 0;
  for (auto _ : state) {
    auto ids = tok->encode(text, true, false);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
}
BENCHMARK(BM_TokenizerEncode)->Unit(benchmark::kMillisecond);

void BM_TokenizerDecode(benchmark::State& state) {
  const Tokenizer* tok = tokenizer();
  if (!tok) return state.SkipWithError("no tokenizer: run scripts/setup.sh");
  const auto ids = tok->encode(mixed_text(), false, false);
  size_t bytes = 0;
  for (auto _ : state) {
    const std::string text = tok->decode(ids);
    bytes = text.size();
    benchmark::DoNotOptimize(text.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_TokenizerDecode)->Unit(benchmark::kMillisecond);

void BM_TokenizerStreamDecode(benchmark::State& state) {
  const Tokenizer* tok = tokenizer();
  if (!tok) return state.SkipWithError("no tokenizer: run scripts/setup.sh");
  const auto ids = tok->encode(mixed_text(), false, false);
  size_t bytes = 0;
  for (auto _ : state) {
    llama3::tokenizer::StreamDecoder stream(*tok);
    bytes = 0;
    for (const int32_t id : ids) bytes += stream.push(id).size();
    bytes += stream.flush().size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_TokenizerStreamDecode)->Unit(benchmark::kMillisecond);

void BM_TokenizerLoadJson(benchmark::State& state) {
  if (!tokenizer()) return state.SkipWithError("no tokenizer: run scripts/setup.sh");
  for (auto _ : state) benchmark::DoNotOptimize(Tokenizer::load(tokenizer_path()).vocab_size());
}
BENCHMARK(BM_TokenizerLoadJson)->Unit(benchmark::kMillisecond);

// From the arrays a GGUF reader hands over (128,256 tokens, 280,147 merges).
void BM_TokenizerFromVocab(benchmark::State& state) {
  const Tokenizer* tok = tokenizer();
  if (!tok) return state.SkipWithError("no tokenizer: run scripts/setup.sh");
  const llama3::tokenizer::OwnedVocabArrays arrays = tok->to_vocab();
  const llama3::tokenizer::VocabArrays vocab = arrays.view();
  for (auto _ : state) benchmark::DoNotOptimize(Tokenizer::from_vocab(vocab).vocab_size());
}
BENCHMARK(BM_TokenizerFromVocab)->Unit(benchmark::kMillisecond);

void BM_TokenizerToVocab(benchmark::State& state) {
  const Tokenizer* tok = tokenizer();
  if (!tok) return state.SkipWithError("no tokenizer: run scripts/setup.sh");
  for (auto _ : state) benchmark::DoNotOptimize(tok->to_vocab().merges.size());
}
BENCHMARK(BM_TokenizerToVocab)->Unit(benchmark::kMillisecond);

void BM_TokenizerPretokenizeScanner(benchmark::State& state) {
  const std::string& text = mixed_text();
  size_t pieces = 0;
  for (auto _ : state) {
    llama3::tokenizer::PieceScanner scanner(text);
    std::string_view piece;
    pieces = 0;
    while (scanner.next(piece)) ++pieces;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["pieces"] = static_cast<double>(pieces);
}
BENCHMARK(BM_TokenizerPretokenizeScanner)->Unit(benchmark::kMillisecond);

// The alternative considered: the same regex through PCRE2 with JIT (UTF + Unicode properties).
void BM_TokenizerPretokenizePcre2(benchmark::State& state) {
  static constexpr char kPattern[] =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  int error = 0;
  PCRE2_SIZE offset = 0;
  std::unique_ptr<pcre2_code, decltype(&pcre2_code_free)> code(
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPattern), PCRE2_ZERO_TERMINATED,
                    PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error, &offset, nullptr),
      pcre2_code_free);
  if (!code) return state.SkipWithError("pcre2_compile failed");
  if (pcre2_jit_compile(code.get(), PCRE2_JIT_COMPLETE) != 0) {
    return state.SkipWithError("PCRE2 JIT unavailable");
  }
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match(
      pcre2_match_data_create_from_pattern(code.get(), nullptr), pcre2_match_data_free);
  const std::string& text = mixed_text();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pieces = 0;
  for (auto _ : state) {
    pieces = 0;
    for (PCRE2_SIZE pos = 0; pos < text.size();) {
      if (pcre2_jit_match(code.get(), subject, text.size(), pos, 0, match.get(), nullptr) < 0) break;
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
      pos = ovector[1] > ovector[0] ? ovector[1] : ovector[0] + 1;
      ++pieces;
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["pieces"] = static_cast<double>(pieces);
}
BENCHMARK(BM_TokenizerPretokenizePcre2)->Unit(benchmark::kMillisecond);

}  // namespace
