// `llama3 chat` driven as a person drives it: in a terminal (tmux: send-keys, capture-pane), and
// through a pipe as a script would. A tiny model with the real vocabulary, written as a Hugging
// Face folder, and the real tokenizer.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "model/checkpoint_writer.h"
#include "model/random_weights.h"
#include "test_support.h"
#include "tiny_model.h"

namespace llama3::testing {
namespace {

using ::testing::HasSubstr;

struct TurnFigures {
  int prefilled = 0, cached = 0, reply = 0;
};

// Every "[N prompt tokens prefilled, M from the cache · ... · K tokens, ...]" line, in order.
std::vector<TurnFigures> turn_lines(const std::string& text) {
  static const std::regex re(R"(\[(\d+) prompt tokens prefilled, (\d+) from the cache [^\]]* (\d+) tokens, )");
  std::vector<TurnFigures> out;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
    out.push_back({std::stoi((*it)[1]), std::stoi((*it)[2]), std::stoi((*it)[3])});
  }
  return out;
}

class ChatTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_dir_ = new TempDir("chat-model");
    model::ModelConfig c = tiny_config(128256, true, 32.0);
    c.max_seq_len = 32768;  // room for a reply long enough to interrupt
    model::write_hf_folder(c, model::random_weights(c, 5), model_dir_->path());
  }
  static void TearDownTestSuite() { delete model_dir_; }

  static std::string chat_command(const std::string& args) {
    return "env -u LLAMA_DIR -u HF_MODEL " + cli() + " chat --model_dir " + model_dir_->path().string() + " " + args;
  }

  static TempDir* model_dir_;
};
TempDir* ChatTest::model_dir_ = nullptr;

// A tmux server of its own (-L), so tests never meet each other's or a user's sessions.
class Tmux {
 public:
  Tmux(const std::string& name, const std::string& command) : socket_("llama3-test-" + name) {
    run_command(tmux("kill-server"));
    const auto r = run_command(tmux("new-session -d -s chat -x 160 -y 50 " + shell_quote(command + "; echo EXIT=$?; sleep 60")));
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  ~Tmux() { run_command(tmux("kill-server")); }

  std::string screen() { return run_command(tmux("capture-pane -p -S -1000 -t chat")).out; }
  void keys(const std::string& keys) { run_command(tmux("send-keys -t chat " + keys)); }
  void type(const std::string& text) { run_command(tmux("send-keys -t chat -l " + shell_quote(text))); }
  void line(const std::string& text) {
    type(text);
    keys("Enter");
  }
  // Waits until `pred(screen)` holds; false after `seconds`.
  template <typename Pred>
  bool wait_for(Pred pred, double seconds = 60.0) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      if (pred(screen())) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  bool wait_for_text(const std::string& needle, size_t count = 1, double seconds = 60.0) {
    return wait_for([&](const std::string& s) { return occurrences(s, needle) >= count; }, seconds);
  }
  static size_t occurrences(const std::string& s, const std::string& needle) {
    size_t n = 0;
    for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1)) ++n;
    return n;
  }

 private:
  std::string tmux(const std::string& args) const { return "tmux -L " + socket_ + " " + args; }
  std::string socket_;
};

TEST_F(ChatTest, InATerminal_TwoTurnsReuseTheCacheThenResetMultiLineAndStats) {
  ASSERT_EQ(run_command("command -v tmux").exit_code, 0) << "tmux is missing: scripts/setup.sh installs it";
  Tmux t("terminal", chat_command("--max_seq_len 32768 --max_tokens 8 --system 'You are a terse assistant. Answer every "
                                "question in as few words as you can, and never apologize or repeat the question.'"));
  ASSERT_TRUE(t.wait_for_text(">>>")) << t.screen();

  // Two turns: the second prefills its own message (and the end of the first turn's last,
  // partial block) and takes the rest of the conversation from the cache.
  t.line("Hello there");
  ASSERT_TRUE(t.wait_for_text("tokens/s]", 1)) << t.screen();
  t.line("And again");
  ASSERT_TRUE(t.wait_for_text("tokens/s]", 2)) << t.screen();
  auto turns = turn_lines(t.screen());
  ASSERT_EQ(turns.size(), 2u) << t.screen();
  EXPECT_EQ(turns[0].cached, 0);
  EXPECT_GE(turns[1].cached, 32) << "the first turn's full blocks come from the cache";
  EXPECT_LT(turns[1].prefilled, 32 + 12) << "only the new message and a partial block are prefilled";

  // /reset, then a message over two lines.
  ASSERT_TRUE(t.wait_for_text(">>>", 3));
  t.line("/reset");
  ASSERT_TRUE(t.wait_for_text("[conversation reset]")) << t.screen();
  t.line("first line\\");
  ASSERT_TRUE(t.wait_for_text("...")) << t.screen();
  t.line("second line");
  ASSERT_TRUE(t.wait_for_text("tokens/s]", 3)) << t.screen();

  // /stats after the reset: one turn.
  t.line("/stats");
  ASSERT_TRUE(t.wait_for_text("[1 turns")) << t.screen();
}

TEST_F(ChatTest, InATerminal_CtrlCStopsALongReplyAndTheChatGoesOn) {
  Tmux t("interrupt", chat_command("--max_seq_len 32768 --max_tokens 30000"));
  ASSERT_TRUE(t.wait_for_text(">>>")) << t.screen();
  t.line("Tell me a very long story");
  // The reply has started when the line after the prompt has text.
  ASSERT_TRUE(t.wait_for([](const std::string& s) {
    const size_t at = s.find("Tell me a very long story\n");
    return at != std::string::npos && s.size() > at + 40 && s.find_first_not_of(" \n", at + 26) != std::string::npos;
  })) << t.screen();
  t.keys("C-c");
  ASSERT_TRUE(t.wait_for_text("[stopped]", 1, 30)) << t.screen();
  ASSERT_TRUE(t.wait_for_text("tokens/s]")) << t.screen();
  const auto turns = turn_lines(t.screen());
  ASSERT_EQ(turns.size(), 1u);
  EXPECT_LT(turns[0].reply, 30000) << "Ctrl-C ended the reply early";

  // Ctrl-C at the prompt drops the line typed so far; the chat goes on.
  t.type("never sent");
  t.keys("C-c");
  t.line("/stats");
  ASSERT_TRUE(t.wait_for_text("[1 turns")) << t.screen();
  t.keys("C-d");
  ASSERT_TRUE(t.wait_for_text("EXIT=0")) << t.screen();
}

TEST_F(ChatTest, InATerminal_AMessageTooLongForTheContextIsRefusedAndTheChatGoesOn) {
  Tmux t("too-long", chat_command("--max_seq_len 64 --max_tokens 4"));
  ASSERT_TRUE(t.wait_for_text(">>>")) << t.screen();
  std::string long_message;
  for (int i = 0; i < 40; ++i) long_message += "word" + std::to_string(i) + " ";
  t.line(long_message);
  ASSERT_TRUE(t.wait_for_text("does not fit the context of 64 tokens")) << t.screen();
  t.line("Hi");
  ASSERT_TRUE(t.wait_for_text("tokens/s]")) << t.screen();
  t.line("/exit");
  ASSERT_TRUE(t.wait_for_text("EXIT=0")) << t.screen();
}

// Through a pipe: one message per line, each reply on stdout, the figures on stderr.
TEST_F(ChatTest, PipedMessagesGetOneReplyEachAndTheConversationIsSaved) {
  TempDir dir("chat-pipe");
  const std::string save = (dir / "conversation.json").string();
  const auto r = run_command("printf 'Hello there\\nWhat did I say?\\n/save " + save + "\\n' | " +
                             chat_command("--max_tokens 6 --sampling_params '{\"temperature\":0}' --system 'You are a terse "
                                          "assistant. Answer every question in as few words as you can, and never "
                                          "apologize or repeat the question back to the user.'"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto turns = turn_lines(r.err);
  ASSERT_EQ(turns.size(), 2u) << r.err;
  EXPECT_GE(turns[1].cached, 32);
  EXPECT_EQ(r.out.find("prompt tokens prefilled"), std::string::npos) << "stdout holds only the replies";
  const auto j = nlohmann::json::parse(read_text(save));
  ASSERT_EQ(j["messages"].size(), 5u);
  EXPECT_EQ(j["messages"][0]["role"], "system");
  EXPECT_EQ(j["messages"][1]["content"], "Hello there");
  EXPECT_EQ(j["messages"][3]["content"], "What did I say?");
  EXPECT_EQ(j["messages"][4]["role"], "assistant");
  EXPECT_NE(r.out.find(j["messages"][2]["content"].get<std::string>()), std::string::npos)
      << "the saved reply is the one printed";

  // A message that cannot fit: one line on stderr, exit code 1, the next message still answered.
  const auto bad = run_command("printf 'w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w "
                               "w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w\\nHi\\n' | " +
                               chat_command("--max_seq_len 48 --max_tokens 4"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("does not fit the context of 48 tokens"));
  EXPECT_EQ(turn_lines(bad.err).size(), 1u) << bad.err;

  // A conversation longer than the context: the oldest exchanges are dropped, and it says so.
  std::string many;
  for (int i = 0; i < 10; ++i) many += "Message number " + std::to_string(i) + "\\n";
  const auto full = run_command("printf '" + many + "' | " + chat_command("--max_seq_len 96 --max_tokens 4"));
  EXPECT_EQ(full.exit_code, 0) << full.err;
  EXPECT_EQ(turn_lines(full.err).size(), 10u) << full.err;
  EXPECT_THAT(full.err, HasSubstr("[context full: the oldest"));
}

}  // namespace
}  // namespace llama3::testing
