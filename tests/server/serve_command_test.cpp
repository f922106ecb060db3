// `llama3 serve` as users run it: the line it prints, OpenAI's own JavaScript client against it,
// a graceful stop on SIGTERM/SIGINT (exit 0, also with a stream in flight), and bad flags.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <nlohmann/json.hpp>

#include "serve_process.h"
#include "server_test_util.h"

namespace llama3::server::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using llama3::testing::run_command;
using llama3::testing::shell_quote;

const std::vector<std::string> kTinyModel = {"--layers", "1", "--weights", "random", "--max_seq_len", "512",
                                             "--max_batch", "4", "--port", "0"};

std::vector<std::string> args(std::vector<std::string> extra) {
  std::vector<std::string> all = kTinyModel;
  all.insert(all.end(), extra.begin(), extra.end());
  return all;
}

TEST(ServeCommand, OpenAiJavaScriptClient) {
  SKIP_WITHOUT_TOKENIZER();
  const fs::path modules = fs::path(LLAMA3_SOURCE_DIR) / ".cache/npm/node_modules";
  if (run_command("command -v node").exit_code != 0) GTEST_SKIP() << "node is not on PATH (scripts/setup.sh installs it)";
  if (!fs::exists(modules / "openai/package.json")) {
    GTEST_SKIP() << "openai is not in " << modules.string() << " (run scripts/setup.sh)";
  }
  ServeProcess serve(args({"--api_key", "test-key"}));
  const int port = serve.wait_for_port();
  ASSERT_GT(port, 0) << serve.stdout_text() << serve.stderr_text();
  EXPECT_THAT(serve.stdout_text(), HasSubstr("model Llama-3.2-1B"));
  EXPECT_THAT(serve.stdout_text(), HasSubstr("API key required"));

  const auto r = run_command("node " + shell_quote(std::string(LLAMA3_SOURCE_DIR) + "/tests/server/openai_client_test.mjs") +
                             " " + shell_quote(modules.string()) + " http://127.0.0.1:" + std::to_string(port) +
                             "/v1 test-key");
  ASSERT_EQ(r.exit_code, 0) << r.err << "\nserver: " << serve.stderr_text();
  const json out = json::parse(r.out);
  EXPECT_EQ(out["models"], json::parse(R"([{"id": "Llama-3.2-1B", "owned_by": "llama3"}])"));

  EXPECT_EQ(out["chat"]["object"], "chat.completion");
  EXPECT_EQ(out["chat"]["finish_reason"], "length");
  EXPECT_EQ(out["chat"]["usage"]["completion_tokens"], 5);
  EXPECT_EQ(out["chat"]["usage"]["total_tokens"],
            out["chat"]["usage"]["prompt_tokens"].get<int>() + 5);
  EXPECT_FALSE(out["chat"]["content"].get<std::string>().empty());
  // Streamed with the same seed: the same text, the usage in the last chunk.
  EXPECT_EQ(out["chat_stream"]["content"], out["chat"]["content"]);
  EXPECT_EQ(out["chat_stream"]["finish_reason"], "length");
  EXPECT_EQ(out["chat_stream"]["usage"], out["chat"]["usage"]);
  EXPECT_GE(out["chat_stream"]["chunks"], 3);

  EXPECT_EQ(out["completion"]["finish_reason"], "length");
  EXPECT_EQ(out["completion"]["usage"]["completion_tokens"], 4);
  EXPECT_EQ(out["completion"]["logprob_tokens"], 4);
  EXPECT_EQ(out["completion_stream"]["text"], out["completion"]["text"]);
  EXPECT_EQ(out["completion_stream"]["finish_reason"], "length");

  // The SDK turns our errors into its own classes, with our code and param.
  EXPECT_EQ(out["errors"]["unknown_model"]["status"], 404);
  EXPECT_EQ(out["errors"]["unknown_model"]["class"], "NotFoundError");
  EXPECT_EQ(out["errors"]["unknown_model"]["code"], "model_not_found");
  EXPECT_EQ(out["errors"]["n_two"]["status"], 400);
  EXPECT_EQ(out["errors"]["n_two"]["class"], "BadRequestError");
  EXPECT_EQ(out["errors"]["n_two"]["param"], "n");
  EXPECT_EQ(out["errors"]["bad_key"]["status"], 401);
  EXPECT_EQ(out["errors"]["bad_key"]["class"], "AuthenticationError");

  EXPECT_EQ(serve.stop(SIGTERM), 0) << serve.stderr_text();
  EXPECT_THAT(serve.stderr_text(), HasSubstr("SIGTERM received, stopping"));
}

// Sampled with a seed, a chat request through the server gets the text the demo's first user
// gets for the same message: both run it through the engine, the user's random stream is 0, and
// the demo's other users (here the same message on streams 1 and 2) do not enter its rows.
TEST(ServeCommand, SeededChatTextEqualsTheDemosFirstUser) {
  SKIP_WITHOUT_TOKENIZER();
  llama3::testing::TempDir dir("serve-vs-demo");
  llama3::testing::write_text(dir / "prompt.json", R"([{"prompt": "Tell me about the sea."}])");
  const std::string sampling = R"({"temperature":0.8,"top_p":0.95,"top_k":40,"seed":7})";
  const auto demo = run_command(llama3::testing::cli() + " demo --weights random --layers 1 --batch_size 3 "
                                "--max_generated_tokens 16 --input_prompts " + (dir / "prompt.json").string() +
                                " --sampling_params " + shell_quote(sampling) + " --report " +
                                (dir / "report.json").string());
  ASSERT_EQ(demo.exit_code, 0) << demo.err;
  const auto report = nlohmann::json::parse(llama3::testing::read_text(dir / "report.json"));
  const std::string demo_text = report["users"][0]["text"].get<std::string>();
  ASSERT_EQ(report["users"][0]["generated_tokens"].size(), 16u) << "no stop token: the texts compare whole";
  EXPECT_NE(report["users"][1]["text"], report["users"][0]["text"]) << "the users' random streams differ";

  ServeProcess serve(args({}));
  const int port = serve.wait_for_port();
  ASSERT_GT(port, 0) << serve.stdout_text() << serve.stderr_text();
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60);
  const nlohmann::json body = {{"messages", {{{"role", "user"}, {"content", "Tell me about the sea."}}}},
                               {"max_tokens", 16}, {"temperature", 0.8}, {"top_p", 0.95}, {"top_k", 40}, {"seed", 7}};
  const auto res = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(res) << "no response";
  ASSERT_EQ(res->status, 200) << res->body;
  const auto j = nlohmann::json::parse(res->body);
  EXPECT_EQ(j["choices"][0]["message"]["content"].get<std::string>(), demo_text);
  EXPECT_EQ(j["usage"]["prompt_tokens"], report["users"][0]["prompt_tokens"].size());
}

// Greedy, the server and `llama3 generate` produce the same text for the same prompt: both
// prefill in chunks of 256 and decode one token at a time, and the server's other work does not
// enter a request's rows. The prompt spans two chunks.
TEST(ServeCommand, GreedyTextEqualsLlama3Generate) {
  SKIP_WITHOUT_TOKENIZER();
  std::string prompt;
  for (int i = 0; i < 40; ++i) prompt += "The quick brown fox jumps over the lazy dog. ";
  const auto gen = run_command(llama3::testing::cli() + " generate --weights random --layers 1 --prompt " +
                               shell_quote(prompt) + " --max_generated_tokens 12");
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  const auto expected = nlohmann::json::parse(gen.out);
  ASSERT_GT(expected["prompt"].size(), 256u) << "the prompt must span two prefill chunks";

  ServeProcess serve(args({}));
  const int port = serve.wait_for_port();
  ASSERT_GT(port, 0) << serve.stdout_text() << serve.stderr_text();
  // Busy the server with another request meanwhile: it must not change this one's text.
  auto other = std::async(std::launch::async, [&] {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60);
    return c.Post("/v1/completions", R"({"prompt": "Something else", "max_tokens": 30, "seed": 3})", "application/json");
  });
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60);
  const nlohmann::json body = {{"prompt", prompt}, {"max_tokens", 12}, {"temperature", 0}};
  const auto res = c.Post("/v1/completions", body.dump(), "application/json");
  ASSERT_TRUE(res) << "no response";
  ASSERT_EQ(res->status, 200) << res->body;
  const auto j = nlohmann::json::parse(res->body);
  EXPECT_EQ(j["choices"][0]["text"].get<std::string>(), expected["text"].get<std::string>());
  EXPECT_EQ(j["usage"]["prompt_tokens"].get<size_t>(), expected["prompt"].size());
  EXPECT_EQ(j["usage"]["completion_tokens"].get<size_t>(), expected["generated"].size());
  other.get();
}

// SIGINT with a client streaming: the stream ends, the process exits 0 promptly.
TEST(ServeCommand, SigintStopsWithAStreamInFlight) {
  SKIP_WITHOUT_TOKENIZER();
  ServeProcess serve(args({}));
  const int port = serve.wait_for_port();
  ASSERT_GT(port, 0) << serve.stdout_text() << serve.stderr_text();
  std::promise<void> first_bytes;
  auto client = std::async(std::launch::async, [&] {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30);
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body = R"({"prompt": "Hi", "max_tokens": 400, "ignore_eos": true, "stream": true})";
    req.set_header("Content-Type", "application/json");
    bool told = false;
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
      if (!told) first_bytes.set_value();
      told = true;
      return true;
    };
    c.send(req);
  });
  first_bytes.get_future().wait();
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(serve.stop(SIGINT), 0) << serve.stderr_text();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  client.get();
  EXPECT_THAT(serve.stderr_text(), HasSubstr("SIGINT received, stopping"));
}

TEST(ServeCommand, BadFlagsAndBusyPortAreCleanErrors) {
  SKIP_WITHOUT_TOKENIZER();
  const std::string cli = "env -u LLAMA_DIR -u HF_MODEL " + llama3::testing::cli() + " serve --layers 1 --weights random ";
  for (const char* bad : {"--max_batch 33", "--port 70000", "--max_seq_len 0", "--kv_memory -1"}) {
    const auto r = run_command(cli + bad);
    EXPECT_NE(r.exit_code, 0) << bad;
    EXPECT_LT(r.exit_code, 128) << bad << " crashed: " << r.err;
  }
  // A port another server holds: one line naming it.
  ServeProcess first(args({}));
  const int port = first.wait_for_port();
  ASSERT_GT(port, 0) << first.stderr_text();
  ServeProcess second({"--layers", "1", "--weights", "random", "--max_seq_len", "512", "--port", std::to_string(port)});
  EXPECT_EQ(second.wait_exit(std::chrono::seconds(60)), 1) << second.stdout_text();
  EXPECT_THAT(second.stderr_text(), HasSubstr("cannot listen on 127.0.0.1:" + std::to_string(port)));
  EXPECT_EQ(first.stop(SIGTERM), 0);
}

}  // namespace
}  // namespace llama3::server::testing
