// GGUF at the model and CLI level: `llama3 convert --to gguf` of a random model with the real
// vocabulary in each type, read back and compared with what the reference's independent writer
// (tests/reference/gguf_file.py) makes of the same weights; quantized files converted again stay
// bit-identical; @huggingface/gguf's parser reads the whole file as ours does; the tokenizer the
// file carries encodes as tokenizer.json does; and damaged models fail with one line naming the
// problem.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/gguf_file.h"
#include "io/gguf_reader_dump.h"
#include "model/checkpoint_loader.h"
#include "model/gguf_checkpoint.h"
#include "model/gguf_edit.h"
#include "model/reference_compare.h"
#include "model/reference_models.h"
#include "test_support.h"

namespace llama3::testing {
namespace {

using nlohmann::json;

const char* const kTypes[] = {"bf16", "f16", "f32", "q8_0", "q4_0"};
// The types the engine holds as stored (F16/F32 become bf16 at load).
const char* const kNativeTypes[] = {"bf16", "q8_0", "q4_0"};

const fs::path kTokenizer = LLAMA3_DEFAULT_TOKENIZER;

#define SKIP_WITHOUT_TOKENIZER()                                                                    \
  if (!fs::exists(kTokenizer)) GTEST_SKIP() << kTokenizer.string() << " is missing (run scripts/setup.sh)"

// `llama3 convert --to gguf` of `model` (a folder or .gguf file) into `out`, with the Llama 3
// tokenizer embedded.
fs::path convert(const fs::path& model, const std::string& type, const fs::path& out) {
  const CommandResult r =
      run_command(cli() + " convert --model_dir " + shell_quote(model.string()) + " --to gguf " +
                  shell_quote(out.string()) + " --type " + type + " --tokenizer " +
                  shell_quote(kTokenizer.string()));
  if (r.exit_code != 0) throw std::runtime_error("llama3 convert --type " + type + " failed:\n" + r.err);
  return out;
}

// Metadata as {key: entry} of reader_dump's form.
json metadata_by_key(const io::GgufFile& f) {
  json out = json::object();
  const json dump = io::testing::reader_dump(f);  // the loop below must not range over a temporary's member
  for (const auto& entry : dump["metadata"]) out[entry["key"].get<std::string>()] = entry;
  return out;
}

std::vector<float> f32_values(const io::GgufTensor& t) {
  std::vector<float> v(t.data.size() / 4);
  std::memcpy(v.data(), t.data.data(), v.size() * 4);
  return v;
}

// ---------------------------------------------------------------------------------------------
// What convert writes.
// ---------------------------------------------------------------------------------------------

class GgufConvert : public ::testing::TestWithParam<const char*> {};

// Every tensor byte for byte as the independent writer encodes the same bf16 weights (names,
// dims, types, q/k rows in Meta's order, ggml's Q8_0/Q4_0 rounding), the llama.* metadata alike,
// and the config read back equal to the source folder's. rope_freqs.weight is the exception:
// we compute the divisors in double and round once, the converter (and so the Python writer)
// in float32 throughout; they differ by at most one float32 step (measured 9.1e-8 relative).
TEST_P(GgufConvert, WritesWhatTheIndependentWriterWrites) {
  SKIP_WITHOUT_TOKENIZER();
  const std::string type = GetParam();
  const ReferenceModel& m = real_vocab_model();
  TempDir tmp("gguf-convert");
  const io::GgufFile ours(convert(m.folder("hf"), type, tmp / (type + ".gguf")));
  const io::GgufFile theirs(m.folder("py_" + type) / "model.gguf");

  ASSERT_EQ(ours.tensors().size(), theirs.tensors().size());
  for (const io::GgufTensor& want : theirs.tensors()) {
    SCOPED_TRACE(want.name);
    const io::GgufTensor* got = ours.find(want.name);
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(got->type, want.type);
    EXPECT_EQ(got->dims, want.dims);
    ASSERT_EQ(got->data.size(), want.data.size());
    if (want.name == model::kGgufRopeFreqs) {
      const std::vector<float> a = f32_values(*got), b = f32_values(want);
      for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1.2e-7 * b[i]) << "divisor " << i;
    } else {
      EXPECT_EQ(std::memcmp(got->data.data(), want.data.data(), want.data.size()), 0) << "bytes differ";
    }
  }
  // The llama.* and general.* keys both write agree in type and value (the converter's
  // general.type and attention.key/value_length are optional: llama.cpp derives them).
  const json a = metadata_by_key(ours), b = metadata_by_key(theirs);
  for (const auto& [key, entry] : b.items()) {
    if (key == "general.name") continue;
    if (!a.contains(key)) {
      EXPECT_TRUE(key == "general.type" || key == "llama.attention.key_length" || key == "llama.attention.value_length")
          << "we do not write " << key;
      continue;
    }
    EXPECT_EQ(a[key], entry) << key;
  }
  expect_gguf_config_equals_hf(model::config_from_gguf(ours), model::checkpoint_config(m.folder("hf")));
}

// A Q8_0/Q4_0 (or BF16) file converted to its own type again is the same file, tensors bit for
// bit: the engine holds the blocks losslessly (its packed layout is a permutation of ggml's)
// and the tokenizer survives the round trip through our tokenizer.
class GgufReconvert : public ::testing::TestWithParam<const char*> {};

TEST_P(GgufReconvert, ConvertingAFileToItsOwnTypeIsLossless) {
  SKIP_WITHOUT_TOKENIZER();
  const std::string type = GetParam();
  TempDir tmp("gguf-reconvert");
  const fs::path first = convert(real_vocab_model().folder("hf"), type, tmp / "first.gguf");
  const io::GgufFile a(first);
  const io::GgufFile b(convert(first, type, tmp / "second.gguf"));
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    const io::GgufTensor& x = a.tensors()[i];
    const io::GgufTensor& y = b.tensors()[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.type, y.type);
    EXPECT_EQ(x.dims, y.dims);
    EXPECT_TRUE(x.data.size() == y.data.size() && std::memcmp(x.data.data(), y.data.data(), x.data.size()) == 0)
        << x.name << ": bytes differ";
  }
  json ma = metadata_by_key(a), mb = metadata_by_key(b);
  ma.erase("general.name");
  mb.erase("general.name");
  EXPECT_TRUE(ma == mb) << "metadata changed";
}

std::string type_name(const ::testing::TestParamInfo<const char*>& info) { return info.param; }
INSTANTIATE_TEST_SUITE_P(Types, GgufConvert, ::testing::ValuesIn(kTypes), type_name);
INSTANTIATE_TEST_SUITE_P(Types, GgufReconvert, ::testing::ValuesIn(kNativeTypes), type_name);

// @huggingface/gguf (npm) parses the whole model file, tokenizer arrays included, into the same
// header, metadata (keys, types, values) and tensor infos as our reader.
TEST(GgufConvertOther, IndependentParserReadsTheWholeModelFile) {
  SKIP_WITHOUT_TOKENIZER();
  const fs::path modules = fs::path(LLAMA3_SOURCE_DIR) / ".cache/npm/node_modules";
  if (run_command("command -v node").exit_code != 0) GTEST_SKIP() << "node is not on PATH (scripts/setup.sh installs it)";
  if (!fs::exists(modules / "@huggingface/gguf/package.json")) {
    GTEST_SKIP() << "@huggingface/gguf is not in " << modules.string() << " (run scripts/setup.sh)";
  }
  TempDir tmp("gguf-node");
  for (const char* type : {"bf16", "q4_0"}) {
    SCOPED_TRACE(type);
    const fs::path file = convert(real_vocab_model().folder("hf"), type, tmp / (std::string(type) + ".gguf"));
    const CommandResult r = run_command("node " + shell_quote(std::string(LLAMA3_SOURCE_DIR) + "/tests/io/gguf_dump.cjs") +
                                        " " + shell_quote(modules.string()) + " " +
                                        shell_quote(file.string()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const json theirs = json::parse(r.out);
    const json ours = io::testing::reader_dump(io::GgufFile(file));
    ASSERT_EQ(theirs["metadata"].size(), ours["metadata"].size());
    for (size_t i = 0; i < ours["metadata"].size(); ++i) {
      EXPECT_TRUE(theirs["metadata"][i] == ours["metadata"][i]) << "metadata " << ours["metadata"][i]["key"];
    }
    EXPECT_EQ(theirs["tensors"], ours["tensors"]);
    for (const char* field : {"version", "tensor_count", "kv_count", "data_offset"}) {
      EXPECT_EQ(theirs[field], ours[field]) << field;
    }
    // The vocabulary really is in there.
    const auto tokens = std::find_if(ours["metadata"].begin(), ours["metadata"].end(),
                                     [](const json& e) { return e["key"] == "tokenizer.ggml.tokens"; });
    ASSERT_NE(tokens, ours["metadata"].end());
    EXPECT_EQ((*tokens)["value"].size(), 128256u);
  }
}

// `llama3 tokenize --model FILE.gguf` uses the tokenizer the file carries; it encodes as the
// tokenizer.json the file was made with.
TEST(GgufConvertOther, TokenizerInTheFileEncodesAsTokenizerJson) {
  SKIP_WITHOUT_TOKENIZER();
  TempDir tmp("gguf-tokenize");
  const fs::path file = convert(real_vocab_model().folder("hf"), "q4_0", tmp / "model.gguf");
  const std::vector<std::string> texts = {
      "Hello, world!", "  leading spaces\tand tabs\n\nnew lines  ", "Ünïcödé — 日本語 🦙 ﷽", "1234567 3.14159 1e-9",
      "don't you'll WE'RE", "<|begin_of_text|>special<|eot_id|>"};
  const std::vector<std::string> flags = {"", "--bos --eos", "--allow-special", "--chat --system 'Be brief.'"};
  for (const std::string& text : texts) {
    for (const std::string& f : flags) {
      const std::string args = " --text " + shell_quote(text) + " " + f;
      const CommandResult from_gguf = run_command(cli() + " tokenize --model " + shell_quote(file.string()) + args);
      const CommandResult from_json = run_command(cli() + " tokenize --tokenizer " + shell_quote(kTokenizer.string()) + args);
      ASSERT_EQ(from_gguf.exit_code, 0) << from_gguf.err;
      ASSERT_EQ(from_json.exit_code, 0) << from_json.err;
      EXPECT_EQ(from_gguf.out, from_json.out) << text << " " << f;
      EXPECT_GT(json::parse(from_gguf.out).size(), 0u);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Damaged models: one line on stderr naming the problem, a clean exit, never a crash.
// ---------------------------------------------------------------------------------------------

void expect_one_line_error(const fs::path& model, const std::string& needle) {
  const CommandResult r = run_command(cli() + " generate --model_dir " + shell_quote(model.string()) +
                                      " --tokens 1,2,3 --max_generated_tokens 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_LT(r.exit_code, 128) << "crashed: " << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "should mention " << needle << ": " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "not one line: " << r.err;
}

class GgufBadModel : public ::testing::Test {
 protected:
  // A good small model (gqa_tied_s8: dim 256, 4 heads on 2, 2 layers, tied) to damage.
  fs::path good() const { return gqa_tied_s8().folder("gguf") / "model.gguf"; }
  fs::path damaged(const GgufEdit& edit) const {
    const fs::path out = tmp_ / "damaged.gguf";
    write_edited_gguf(good(), out, edit);
    return out;
  }
  TempDir tmp_{"gguf-bad"};
};

TEST_F(GgufBadModel, TheUndamagedCopyRuns) {
  const CommandResult r = run_command(cli() + " generate --model_dir " + shell_quote(damaged({}).string()) +
                                      " --tokens 1,2,3 --max_generated_tokens 1");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(GgufBadModel, AnotherArchitectureIsNamed) {
  GgufEdit e;
  e.strings["general.architecture"] = "qwen2";
  expect_one_line_error(damaged(e), "\"qwen2\"");
}

TEST_F(GgufBadModel, MissingTensorIsNamed) {
  GgufEdit e;
  e.drop_tensors = {"blk.1.ffn_down.weight"};
  expect_one_line_error(damaged(e), "blk.1.ffn_down.weight");
}

TEST_F(GgufBadModel, WrongDimsAreNamed) {
  GgufEdit e;
  e.tensors["blk.0.attn_k.weight"].dims = std::vector<int64_t>{256, 64};  // kv dim is 128
  expect_one_line_error(damaged(e), "blk.0.attn_k.weight");
  GgufEdit swapped;
  swapped.tensors["blk.0.ffn_gate.weight"].dims = std::vector<int64_t>{768, 256};  // [rows, cols]: transposed
  expect_one_line_error(damaged(swapped), "blk.0.ffn_gate.weight");
}

TEST_F(GgufBadModel, TypeTheEngineDoesNotRunIsNamed) {
  GgufEdit e;
  e.tensors["blk.0.attn_q.weight"].type = GgmlType::IQ2_XS;
  const fs::path file = damaged(e);
  expect_one_line_error(file, "IQ2_XS");
  expect_one_line_error(file, "blk.0.attn_q.weight");
}

TEST_F(GgufBadModel, KvHeadsThatDoNotDivideHeadsAreNamed) {
  GgufEdit e;
  e.u32s["llama.attention.head_count_kv"] = 3;  // 4 query heads
  expect_one_line_error(damaged(e), "head_count_kv");
}

TEST_F(GgufBadModel, FolderWithTwoGgufFilesNamesBoth) {
  fs::create_directories(tmp_ / "two");
  fs::copy_file(good(), tmp_ / "two" / "a.gguf");
  fs::copy_file(good(), tmp_ / "two" / "b.gguf");
  expect_one_line_error(tmp_ / "two", "a.gguf, b.gguf");
}

TEST_F(GgufBadModel, TruncatedFileIsNamed) {
  const fs::path file = tmp_ / "truncated.gguf";
  fs::copy_file(good(), file);
  fs::resize_file(file, fs::file_size(file) - 1000);
  expect_one_line_error(file, "truncated.gguf");
}

}  // namespace
}  // namespace llama3::testing
