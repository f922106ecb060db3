// Our GGUF files and llama.cpp, both ways: llama.cpp (the benchmark peer's prebuilt libllama,
// driven by bench/peer/llamacpp_ctypes.py) loads what `llama3 convert --to gguf` writes and
// computes what we compute; and the engine runs what llama.cpp's own quantizer writes (K-quants,
// converted to Q8_0 at load) and agrees with llama.cpp on it. Skipped where the peer is not
// installed (bench/peer/install.sh installs it into .cache/peer).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/quant_blocks.h"
#include "io/gguf_file.h"
#include "model/checkpoint_loader.h"
#include "model/forward_helpers.h"
#include "model/llama_model.h"
#include "model/model_weights.h"
#include "model/reference_models.h"
#include "test_support.h"

namespace llama3::testing {
namespace {

using nlohmann::json;

const fs::path kPeerLibs =
    fs::path(LLAMA3_SOURCE_DIR) / ".cache/peer/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64";
const fs::path kTokenizer = LLAMA3_DEFAULT_TOKENIZER;

// Max |our logit - llama.cpp's| relative to the row's max(1, max |logit|), teacher-forced, per
// format. The two engines hold the same weights but round activations differently: for BF16
// weights llama.cpp rounds each product's input to bf16 (we keep float32); for Q8_0/Q4_0 both
// round to int8 blocks of 32, llama.cpp with an fp16 scale and we with a float32 one, and each
// rounding flip spreads to later positions (the same effect as against the float64 reference,
// gguf_reference_test.cpp); for K-quants llama.cpp rounds inputs to Q8_K (blocks of 256) while
// we run the weights converted to Q8_0. Measured (288 positions for our files, 128 for
// llama.cpp's): bf16 8.7e-3, q8_0 2.4e-2, q4_0 3.0e-2, Q8_0 2.9e-2, Q4_K_M 5.6e-2, Q5_K_M 5.9e-2,
// Q6_K 4.7e-2. Bounds ~2x that. A misread tensor is off by far more (q/k in the wrong order:
// ~1 relative, gguf_reference_test.cpp).
double peer_logit_tol(const std::string& type) {
  if (type == "bf16") return 2e-2;
  if (type == "q8_0" || type == "q4_0" || type == "Q8_0") return 6e-2;
  return 1.2e-1;  // K-quants
}

// Top-1 agreement with llama.cpp over the 128 teacher-forced positions. A random model's logits
// are flat (near ties everywhere), so the activation rounding above flips some argmaxes: measured
// Q4_K_M 86.7%, Q5_K_M 93.8%, Q6_K 93.0%, and 91.4% on the Q8_0 file whose weights both engines
// hold bit for bit. A layout or scale bug gives a few percent (1/128256 by chance).
constexpr double kPeerTop1Agreement = 0.80;

// What the engine holds of a K-quant matrix after converting it to Q8_0, against the file's own
// values: ggml's Q8_0 rounding of each block (half a step of max/127 at most) is ~0.4% relative
// RMS on these weights (measured 0.37% for Q4_K, Q5_K and Q6_K alike); Q8_0 stays exact.
constexpr double kConversionRmsTol = 1e-2;

#define SKIP_WITHOUT_PEER()                                                                                  \
  if (!fs::exists(kPeerLibs / "libllama.v0.5.0.so"))                                                         \
    GTEST_SKIP() << "llama.cpp peer not installed: " << kPeerLibs.string()                                   \
                 << "/libllama.v0.5.0.so not found (bench/peer/install.sh installs it)";                     \
  if (!fs::exists(kTokenizer)) GTEST_SKIP() << kTokenizer.string() << " is missing (run scripts/setup.sh)"

// Runs the ctypes driver; returns its JSON.
json peer(const std::string& args) {
  const CommandResult r = run_command(std::string(LLAMA3_PYTHON) + " " +
                                      shell_quote(std::string(LLAMA3_SOURCE_DIR) + "/bench/peer/llamacpp_ctypes.py") +
                                      " --lib-dir " + shell_quote(kPeerLibs.string()) + " " + args);
  if (r.exit_code != 0) throw std::runtime_error("llamacpp_ctypes.py " + args + " failed:\n" + r.err);
  return json::parse(r.out);
}

fs::path convert(const std::string& type, const fs::path& out) {
  const CommandResult r = run_command(cli() + " convert --model_dir " +
                                      shell_quote(real_vocab_model().folder("hf").string()) + " --to gguf " +
                                      shell_quote(out.string()) + " --type " + type + " --tokenizer " +
                                      shell_quote(kTokenizer.string()));
  if (r.exit_code != 0) throw std::runtime_error("llama3 convert failed:\n" + r.err);
  return out;
}

// The first `n` tokens of a real text, as our tokenizer encodes it with BOS (from the file).
std::vector<int32_t> text_tokens(const fs::path& model, size_t n) {
  const std::string text = read_text(fs::path(LLAMA3_SOURCE_DIR) / "demo/texts/chronicle_4k.txt").substr(0, 8 * n);
  const CommandResult r = run_command(cli() + " tokenize --bos --model " + shell_quote(model.string()) +
                                      " --text " + shell_quote(text));
  if (r.exit_code != 0) throw std::runtime_error("llama3 tokenize failed:\n" + r.err);
  std::vector<int32_t> ids = json::parse(r.out).get<std::vector<int32_t>>();
  if (ids.size() < n) throw std::runtime_error("the text is too short");
  ids.resize(n);
  return ids;
}

std::string csv(const std::vector<int32_t>& ids) { return join_tokens(ids); }

// llama.cpp's logits at every position of each sequence, one after the other: [rows][vocab].
std::vector<float> peer_logits(const fs::path& model, const std::vector<std::vector<int32_t>>& seqs,
                               const fs::path& out) {
  std::string tokens;
  for (const auto& s : seqs) tokens += " --tokens " + csv(s);
  peer("logits " + shell_quote(model.string()) + " --kv f32" + tokens + " --out " +
       shell_quote(out.string()));
  std::ifstream in(out, std::ios::binary);
  std::vector<float> v(static_cast<size_t>(fs::file_size(out)) / 4);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
  return v;
}

// Ours, in-process, with the precision GGUF files load with by default (native), the same rows.
std::vector<float> engine_logits(const fs::path& model, const std::vector<std::vector<int32_t>>& seqs) {
  model::LoadedCheckpoint ck = model::load_checkpoint(model, {}, model::precision_mode("native"));
  model::LlamaModel m(ck.config, std::move(ck.weights));
  std::vector<float> out;
  for (const auto& s : seqs) {
    const std::vector<float> rows = model::full_logits(m, s, kernels::KvDType::F32);
    out.insert(out.end(), rows.begin(), rows.end());
  }
  return out;
}

// Row by row: our argmax, theirs, their lead over their runner-up, max |ours - theirs|, the
// row's scale max(1, max |theirs|), and the lead below which our argmax can differ from theirs:
// with d = ours - theirs and t their argmax, ours picks some v != t only if theirs[t] - theirs[v]
// <= d[v] - d[t], so only if their lead <= max(d) - d[t].
struct RowComparison {
  int32_t ours_top1 = 0, theirs_top1 = 0;
  double theirs_lead = 0, max_diff = 0, scale = 1, flip_lead = 0;
};

std::vector<RowComparison> compare_rows(const std::vector<float>& ours, const std::vector<float>& theirs,
                                        int64_t vocab) {
  if (ours.size() != theirs.size()) throw std::runtime_error("logits of different sizes");
  std::vector<RowComparison> rows(ours.size() / static_cast<size_t>(vocab));
  for (size_t p = 0; p < rows.size(); ++p) {
    const float* x = ours.data() + p * static_cast<size_t>(vocab);
    const float* y = theirs.data() + p * static_cast<size_t>(vocab);
    RowComparison& r = rows[p];
    r.ours_top1 = static_cast<int32_t>(std::max_element(x, x + vocab) - x);
    r.theirs_top1 = static_cast<int32_t>(std::max_element(y, y + vocab) - y);
    double second = -INFINITY, max_d = -INFINITY;
    for (int64_t v = 0; v < vocab; ++v) {
      if (v != r.theirs_top1) second = std::max(second, static_cast<double>(y[v]));
      r.scale = std::max(r.scale, static_cast<double>(std::abs(y[v])));
      r.max_diff = std::max(r.max_diff, static_cast<double>(std::abs(x[v] - y[v])));
      max_d = std::max(max_d, static_cast<double>(x[v]) - y[v]);
    }
    r.theirs_lead = y[r.theirs_top1] - second;
    r.flip_lead = max_d - (static_cast<double>(x[r.theirs_top1]) - y[r.theirs_top1]);
  }
  return rows;
}

double max_relative_diff(const std::vector<RowComparison>& rows) {
  double worst = 0;
  for (const auto& r : rows) worst = std::max(worst, r.max_diff / r.scale);
  return worst;
}

size_t top1_equal(const std::vector<RowComparison>& rows) {
  return static_cast<size_t>(std::count_if(rows.begin(), rows.end(), [](const auto& r) { return r.ours_top1 == r.theirs_top1; }));
}

// ---------------------------------------------------------------------------------------------
// llama.cpp on our files.
// ---------------------------------------------------------------------------------------------

class PeerOnOurFiles : public ::testing::TestWithParam<const char*> {};

// llama.cpp loads the file (with the tokenizer we embedded), tokenizes a text as we do, its
// logits stay within peer_logit_tol of ours, and its greedy continuations equal ours (made by
// `llama3 generate`: prefill, then cached decode) up to their first near tie: a step where its
// lead is small enough for the two engines' logit difference there (teacher-forced on the same
// tokens, RowComparison::flip_lead) to flip the choice. A random model's logits are flat, so
// near ties come early: several prompts, to check enough steps.
TEST_P(PeerOnOurFiles, LlamaCppLoadsItAndGreedyTokensEqualOurs) {
  SKIP_WITHOUT_PEER();
  const std::string type = GetParam();
  TempDir tmp("peer-ours");
  const fs::path file = convert(type, tmp / (type + ".gguf"));

  const std::string text = read_text(fs::path(LLAMA3_SOURCE_DIR) / "demo/texts/chronicle_4k.txt").substr(0, 300);
  const auto theirs_ids = peer("tokenize " + shell_quote(file.string()) + " --special --text " +
                               shell_quote(text))["tokens"].get<std::vector<int32_t>>();
  const CommandResult ours_ids = run_command(cli() + " tokenize --bos --model " + shell_quote(file.string()) +
                                             " --text " + shell_quote(text));
  EXPECT_EQ(theirs_ids, json::parse(ours_ids.out).get<std::vector<int32_t>>()) << "tokenizers differ";

  constexpr int kSteps = 8;
  const std::vector<int32_t> text_ids = text_tokens(file, 40);
  std::vector<std::vector<int32_t>> prompts;
  std::string args;
  for (size_t n = 8; n <= 40; n += 4) {
    prompts.emplace_back(text_ids.begin(), text_ids.begin() + static_cast<long>(n));
    args += " --tokens " + csv(prompts.back());
  }
  const json theirs = peer("greedy " + shell_quote(file.string()) + " --kv f32 --n " + std::to_string(kSteps) + args);
  std::vector<std::vector<int32_t>> seqs;  // prompt + llama.cpp's continuation
  for (size_t k = 0; k < prompts.size(); ++k) {
    seqs.push_back(prompts[k]);
    for (const auto& t : theirs["runs"][k]["tokens"]) seqs.back().push_back(t.get<int32_t>());
  }
  const auto rows = compare_rows(engine_logits(file, seqs), peer_logits(file, seqs, tmp / "l.f32"), 128256);

  size_t checked = 0, first_row = 0;
  for (size_t k = 0; k < prompts.size(); ++k) {
    SCOPED_TRACE("prompt of " + std::to_string(prompts[k].size()));
    const CommandResult r = run_command(cli() + " generate --model_dir " + shell_quote(file.string()) +
                                        " --kv_cache f32 --max_generated_tokens " + std::to_string(kSteps) +
                                        " --tokens " + csv(prompts[k]));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto ours = json::parse(r.out)["generated"].get<std::vector<int32_t>>();
    const auto their_tokens = theirs["runs"][k]["tokens"].get<std::vector<int32_t>>();
    const auto margins = theirs["runs"][k]["margins"].get<std::vector<double>>();
    ASSERT_EQ(ours.size(), static_cast<size_t>(kSteps));
    // Step i is predicted at row prompt.size() - 1 + i of this sequence.
    const size_t step_row = first_row + prompts[k].size() - 1;
    size_t decided = 0;
    while (decided < ours.size() && margins[decided] > rows[step_row + decided].flip_lead) ++decided;
    for (size_t i = 0; i < decided; ++i) EXPECT_EQ(ours[i], their_tokens[i]) << "greedy step " << i;
    checked += decided;
    first_row += seqs[k].size();
  }
  std::printf("[ peer ] %s: greedy equal at the %zu of %zu steps before each prompt's first near tie; "
              "teacher-forced over %zu positions: max logit diff %.3g relative, top-1 equal at %zu\n",
              type.c_str(), checked, prompts.size() * kSteps, rows.size(), max_relative_diff(rows), top1_equal(rows));
  // Measured 55 (bf16), 21 (q8_0), 32 (q4_0) of 72.
  EXPECT_GE(checked, 8u) << "too few decisive steps: the test would check little";
  EXPECT_LE(max_relative_diff(rows), peer_logit_tol(type));
}

std::string type_name(const ::testing::TestParamInfo<const char*>& info) { return info.param; }
INSTANTIATE_TEST_SUITE_P(Types, PeerOnOurFiles, ::testing::Values("bf16", "q8_0", "q4_0"), type_name);

// llama.cpp's own quantizer makes the very Q8_0 file we write from the same bf16 weights.
TEST(PeerQuantizer, LlamaCppsQ8_0IsOursByteForByte) {
  SKIP_WITHOUT_PEER();
  TempDir tmp("peer-q8");
  const fs::path bf16 = convert("bf16", tmp / "bf16.gguf");
  peer("quantize " + shell_quote(bf16.string()) + " " + shell_quote((tmp / "theirs.gguf").string()) +
       " --type Q8_0");
  const io::GgufFile theirs(tmp / "theirs.gguf");
  const io::GgufFile ours(convert("q8_0", tmp / "ours.gguf"));
  ASSERT_EQ(theirs.tensors().size(), ours.tensors().size());
  for (const io::GgufTensor& t : theirs.tensors()) {
    const io::GgufTensor* o = ours.find(t.name);
    ASSERT_NE(o, nullptr) << t.name;
    EXPECT_EQ(o->type, t.type) << t.name;
    EXPECT_TRUE(o->data.size() == t.data.size() && std::memcmp(o->data.data(), t.data.data(), t.data.size()) == 0)
        << t.name << ": bytes differ";
  }
}

// ---------------------------------------------------------------------------------------------
// Our engine on llama.cpp's K-quant files.
// ---------------------------------------------------------------------------------------------

// Relative RMS error of what the engine holds (each matrix converted to Q8_0 at load) against
// the file's own dequantized values, worst matrix.
double conversion_error(const fs::path& file) {
  const io::GgufFile f(file);
  model::LoadedCheckpoint ck = model::load_checkpoint(file, {}, model::precision_mode("native"));
  const model::ModelWeights& w = ck.weights;
  double worst = 0;
  auto check = [&](const model::Matrix& m, const std::string& name) {
    const io::GgufTensor* t = f.find(name);
    const size_t row_bytes = t->data.size() / static_cast<size_t>(m.rows);
    std::vector<float> want(static_cast<size_t>(m.cols)), got(static_cast<size_t>(m.cols));
    double err = 0, norm = 0;
    for (int64_t r = 0; r < m.rows; ++r) {
      dequantize_row(t->type, t->data.subspan(static_cast<size_t>(r) * row_bytes, row_bytes), want);
      model::matrix_row_f32(m, r, got.data());
      for (size_t c = 0; c < want.size(); ++c) {
        err += (got[c] - want[c]) * static_cast<double>(got[c] - want[c]);
        norm += want[c] * static_cast<double>(want[c]);
      }
    }
    worst = std::max(worst, std::sqrt(err / norm));
  };
  check(w.output, "token_embd.weight");  // tied
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    check(w.layers[l].wq, p + "attn_q.weight");
    check(w.layers[l].wk, p + "attn_k.weight");
    check(w.layers[l].wv, p + "attn_v.weight");
    check(w.layers[l].wo, p + "attn_output.weight");
    check(w.layers[l].w1, p + "ffn_gate.weight");
    check(w.layers[l].w3, p + "ffn_up.weight");
    check(w.layers[l].w2, p + "ffn_down.weight");
  }
  return worst;
}

class PeerKQuants : public ::testing::TestWithParam<const char*> {};

// The engine loads what llama_model_quantize makes of our BF16 file (K-quants convert to Q8_0)
// and agrees with llama.cpp on it, teacher-forced over 128 tokens of a real text.
TEST_P(PeerKQuants, EngineAgreesWithLlamaCppOnItsFile) {
  SKIP_WITHOUT_PEER();
  const std::string type = GetParam();
  TempDir tmp("peer-kquant");
  const fs::path bf16 = convert("bf16", tmp / "bf16.gguf");
  const fs::path file = tmp / (type + ".gguf");
  peer("quantize " + shell_quote(bf16.string()) + " " + shell_quote(file.string()) + " --type " + type);
  const std::vector<std::vector<int32_t>> tokens = {text_tokens(file, 128)};
  const std::vector<float> theirs = peer_logits(file, tokens, tmp / "l.f32");
  const auto rows = compare_rows(engine_logits(file, tokens), theirs, 128256);
  // For scale: how much the format itself moves llama.cpp's own top-1 from its BF16 run.
  const auto format_effect = compare_rows(peer_logits(bf16, tokens, tmp / "bf16.f32"), theirs, 128256);
  const double conv = conversion_error(file);
  const double n = static_cast<double>(rows.size());
  std::printf("[ peer ] %s: top-1 agreement with llama.cpp %zu/%zu (%.1f%%), max logit diff %.3g relative; "
              "llama.cpp's own %s vs BF16: top-1 %.1f%%, max diff %.3g; conversion to Q8_0: worst matrix %.3g "
              "relative RMS\n",
              type.c_str(), top1_equal(rows), rows.size(), 100.0 * static_cast<double>(top1_equal(rows)) / n,
              max_relative_diff(rows), type.c_str(), 100.0 * static_cast<double>(top1_equal(format_effect)) / n,
              max_relative_diff(format_effect), conv);
  EXPECT_GE(static_cast<double>(top1_equal(rows)), kPeerTop1Agreement * n);
  EXPECT_LE(max_relative_diff(rows), peer_logit_tol(type));
  EXPECT_LE(conv, type == "Q8_0" ? 0.0 : kConversionRmsTol);
}

INSTANTIATE_TEST_SUITE_P(Types, PeerKQuants, ::testing::Values("Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"), type_name);

}  // namespace
}  // namespace llama3::testing
