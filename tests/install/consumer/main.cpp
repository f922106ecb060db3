// Generates a few tokens through the installed public API and prints them with the model's name:
// random weights of the 1B shape cut to one layer, greedy, so the output is checkable.
#include <llama3/engine.h>

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>

int main() {
  try {
    llama3::EngineOptions o;
    o.model.weights = "random";
    o.model.layers = 1;
    o.max_batch = 1;
    o.max_seq_len = 256;
    o.kv_blocks = 16;
    llama3::Engine engine(o);
    llama3::GenerationRequest r;
    r.prompt_text = "Hello from outside";
    r.max_tokens = 4;
    r.ignore_eos = true;
    r.sampling.temperature = 0.0f;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::string tokens;
    llama3::Completion result;
    engine.submit(r, {[&](const llama3::TokenEvent& e) {
                        const std::lock_guard lock(mu);
                        tokens += std::to_string(e.token) + " ";
                      },
                      [&](const llama3::Completion& c) {
                        const std::lock_guard lock(mu);
                        result = c;
                        done = true;
                        cv.notify_all();
                      }});
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
    std::printf("model %s, %lld prompt tokens, %lld generated: %s\n", engine.model_info().name.c_str(),
                static_cast<long long>(result.prompt_tokens), static_cast<long long>(result.completion_tokens),
                tokens.c_str());
    return result.completion_tokens == 4 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
}
