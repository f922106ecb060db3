// `llama3 chat`: an interactive conversation in the terminal (llama.cpp's conversation mode,
// `ollama run`). Line editing and history come from libedit (BSD-licensed, readline's API); the
// reply streams as it is generated; the conversation's KV blocks stay in the engine's prefix
// cache between turns, so a turn prefills only its new message. Ctrl-C stops a reply, Ctrl-D or
// /exit quits. With stdin not a terminal it reads one message per line and prints each reply on
// stdout (statistics on stderr), for scripts.
#include <editline/readline.h>
#include <fmt/core.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "apps/chat_session.h"
#include "apps/cli_options.h"
#include "apps/command.h"
#include "core/error.h"
#include "core/user_cache.h"
#include "runtime/sampler.h"

namespace llama3::apps {
namespace {

struct ChatOptions {
  ModelOptions model;
  std::optional<std::string> tokenizer;
  std::optional<std::string> system;
  std::string sampling_params = R"({"temperature":0.6,"top_p":0.9,"top_k":32,"seed":42})";
  int64_t max_seq_len = 8192;
  int64_t max_tokens = 1024;
  std::optional<double> kv_memory;
};

std::atomic<bool> g_interrupt{false};

void on_sigint(int) { g_interrupt = true; }

// Raw model output may hold control bytes (random weights certainly do): shown as U+FFFD on a
// terminal rather than sent to it as escape sequences.
std::string printable(const std::string& text) {
  std::string out;
  for (unsigned char ch : text) {
    if (ch < 0x20 && ch != '\n' && ch != '\t') {
      out += "\xEF\xBF\xBD";
    } else if (ch == 0x7F) {
      out += "\xEF\xBF\xBD";
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out;
}

const char* kHelp =
    "Commands:\n"
    "  /help         this text\n"
    "  /reset        forget the conversation (the system prompt stays)\n"
    "  /save FILE    write the conversation as JSON\n"
    "  /stats        tokens, speed and context used\n"
    "  /exit         quit (or Ctrl-D)\n"
    "Ctrl-C stops a reply. End a line with \\ to continue the message on the next line, or put the\n"
    "message between lines of \"\"\".\n";

std::string turn_summary(const TurnResult& r) {
  return fmt::format("[{} prompt tokens prefilled, {} from the cache · first token {:.0f} ms · {} tokens, {:.1f} tokens/s]",
                     r.prefilled_tokens, r.prompt_tokens - r.prefilled_tokens, r.ttft_ms, r.reply_tokens,
                     r.tokens_per_s());
}

class Terminal {
 public:
  explicit Terminal(bool interactive) : interactive_(interactive) {
    if (!interactive_) return;
    using_history();
    history_path_ = (user_cache_root() / "chat_history").string();
    read_history(history_path_.c_str());
  }
  ~Terminal() {
    if (interactive_) write_history(history_path_.c_str());
  }
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  // The next message (several lines joined), or nullopt at end of input.
  std::optional<std::string> read_message() {
    std::string message;
    bool block = false;  // between """ lines
    for (;;) {
      std::optional<std::string> line = read_line(message.empty() && !block ? ">>> " : "... ");
      if (!line) {
        if (g_interrupt.exchange(false)) {  // Ctrl-C at the prompt: drop what was typed
          std::fputs("\n", stdout);
          message.clear();
          block = false;
          continue;
        }
        if (message.empty()) return std::nullopt;
        return message;
      }
      if (*line == "\"\"\"") {
        if (block) break;
        block = true;
        continue;
      }
      if (block) {
        message += *line + "\n";
        continue;
      }
      if (!line->empty() && line->back() == '\\') {
        message += line->substr(0, line->size() - 1) + "\n";
        continue;
      }
      message += *line;
      break;
    }
    while (!message.empty() && message.back() == '\n') message.pop_back();
    if (interactive_ && !message.empty()) add_history(message.c_str());
    return message;
  }

 private:
  std::optional<std::string> read_line(const char* prompt) {
    if (interactive_) {
      std::unique_ptr<char, decltype(&std::free)> line(readline(prompt), &std::free);
      if (!line) return std::nullopt;
      return std::string(line.get());
    }
    std::string line;
    if (!std::getline(std::cin, line)) return std::nullopt;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }

  bool interactive_;
  std::string history_path_;
};

int run_chat(const ChatOptions& o) {
  o.model.apply_threads();
  const bool interactive = ::isatty(STDIN_FILENO) && ::isatty(STDOUT_FILENO);
  const runtime::SamplingParams sp = runtime::parse_sampling_params(o.sampling_params);

  EngineOptions eo;
  eo.model = o.model.spec(o.tokenizer);
  eo.max_batch = 1;
  eo.max_queue = 0;
  eo.max_seq_len = o.max_seq_len;
  eo.kv_memory_gb = o.kv_memory;
  if (!o.model.settle_memory(eo)) return 0;
  Engine engine(eo);
  const ModelInfo& info = engine.model_info();
  ChatSession chat(engine, o.system, {sp.temperature, sp.top_p, sp.top_k, sp.seed}, o.max_tokens);
  FILE* info_out = interactive ? stdout : stderr;
  fmt::print(info_out, "llama3 chat: {} ({} weights, {} layers, {}), context {} tokens. /help for commands, Ctrl-C "
             "stops a reply, Ctrl-D quits.\n",
             info.name, info.weights, info.n_layers, info.optimizations, info.max_seq_len);
  std::fflush(info_out);

  struct sigaction sa = {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  struct sigaction previous = {};
  ::sigaction(SIGINT, &sa, &previous);

  Terminal terminal(interactive);
  int exit_code = 0;
  for (;;) {
    g_interrupt = false;
    const std::optional<std::string> message = terminal.read_message();
    if (!message) break;
    if (message->empty()) continue;
    if ((*message)[0] == '/') {
      const std::string command = message->substr(0, message->find(' '));
      const std::string arg = message->find(' ') == std::string::npos ? "" : message->substr(message->find(' ') + 1);
      if (command == "/exit" || command == "/quit" || command == "/bye") break;
      if (command == "/help") {
        fmt::print(info_out, "{}", kHelp);
      } else if (command == "/reset") {
        chat.reset();
        fmt::print(info_out, "[conversation reset]\n");
      } else if (command == "/save") {
        if (arg.empty()) {
          fmt::print(info_out, "usage: /save FILE\n");
        } else {
          std::ofstream f(arg);
          if (f << chat.to_json().dump(2) << "\n") {
            fmt::print(info_out, "[saved {} turns to {}]\n", chat.turns(), arg);
          } else {
            fmt::print(info_out, "[cannot write {}]\n", arg);
          }
        }
      } else if (command == "/stats") {
        int64_t generated = 0;
        for (const TurnResult& r : chat.history()) generated += r.reply_tokens;
        fmt::print(info_out, "[{} turns · context {} of {} tokens used · {} tokens generated]\n", chat.turns(),
                   chat.context_tokens(), chat.context_limit(), generated);
        if (!chat.history().empty()) fmt::print(info_out, "last turn: {}\n", turn_summary(chat.history().back()));
      } else {
        fmt::print(info_out, "unknown command {} (/help lists them)\n", command);
      }
      std::fflush(info_out);
      continue;
    }
    try {
      const TurnResult r = chat.send(
          *message,
          [interactive](const std::string& text) {
            const std::string shown = interactive ? printable(text) : text;
            std::fwrite(shown.data(), 1, shown.size(), stdout);
            std::fflush(stdout);
          },
          g_interrupt);
      std::fputs("\n", stdout);
      if (r.dropped_turns > 0) {
        fmt::print(info_out, "[context full: the oldest {} exchange{} dropped]\n", r.dropped_turns,
                   r.dropped_turns > 1 ? "s were" : " was");
      }
      if (r.interrupted) fmt::print(info_out, "[stopped]\n");
      if (r.context_full) {
        fmt::print(info_out, "[the context is full ({} tokens): /reset to start over, or the oldest exchanges will "
                   "be dropped]\n", chat.context_limit());
      }
      fmt::print(info_out, "{}{}{}\n", interactive ? "\x1b[2m" : "", turn_summary(r), interactive ? "\x1b[0m" : "");
    } catch (const std::exception& e) {
      fmt::print(info_out, "[{}]\n", e.what());
      if (!interactive) exit_code = 1;  // a script must see the message was not answered
    }
    std::fflush(stdout);
    std::fflush(info_out);
  }
  ::sigaction(SIGINT, &previous, nullptr);
  if (interactive) std::fputs("\n", stdout);
  return exit_code;
}

const CommandRegistrar kRegistrar{
    "chat", "interactive chat in the Llama 3 chat format (one message per line when stdin is not a terminal)",
    [](CLI::App& app) {
      auto o = std::make_shared<ChatOptions>();
      o->model.add_to(app);
      app.add_option("--tokenizer", o->tokenizer,
                     "tokenizer.json or tokenizer.model (default: with the weights, else built-in)");
      app.add_option("--system", o->system, "system prompt");
      app.add_option("--sampling_params", o->sampling_params, "JSON: temperature (0 = argmax), top_p, top_k, seed")
          ->capture_default_str();
      app.add_option("--max_seq_len", o->max_seq_len, "the conversation's context in tokens")
          ->check(CLI::Range(int64_t{2}, int64_t{131072}))
          ->capture_default_str();
      app.add_option("--max_tokens", o->max_tokens, "tokens per reply at most")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
      app.add_option("--kv_memory", o->kv_memory, "GiB for the KV cache (default: what the context needs)")
          ->check(CLI::PositiveNumber);
      return [o] { return run_chat(*o); };
    }};

}  // namespace
}  // namespace llama3::apps
