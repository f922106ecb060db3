// A vision model behind the public engine API: images go with the request, are encoded once per
// request, keep it out of the prefix cache (its keys and values depend on the images, not only
// on its tokens), and bad images or counts are invalid_request errors without callbacks.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>

#include "llama3/engine.h"
#include "mllama_fixture.h"

namespace llama3 {
namespace {

struct Result {
  std::vector<int32_t> tokens;
  Completion done;
};

Result run(Engine& engine, GenerationRequest r) {
  std::mutex mu;
  std::condition_variable cv;
  Result out;
  bool finished = false;
  RequestCallbacks cb{[&](const TokenEvent& e) {
                        const std::lock_guard lock(mu);
                        out.tokens.push_back(e.token);
                      },
                      [&](const Completion& c) {
                        const std::lock_guard lock(mu);
                        out.done = c;
                        finished = true;
                        cv.notify_all();
                      }};
  engine.submit(std::move(r), std::move(cb));
  std::unique_lock lock(mu);
  EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(120), [&] { return finished; }));
  return out;
}

class VisionEngine : public ::testing::Test {
 protected:
  static Engine& engine() {
    static Engine e([] {
      EngineOptions o;
      o.model.model_dir = (testing::vocab_mllama().dir / "meta").string();
      o.model.optimizations = "bf16";
      o.model.weight_cache = false;
      o.max_batch = 4;
      o.max_seq_len = 512;
      o.kv_blocks = 64;
      o.block_size = 32;
      o.prefill_chunk = 32;
      return o;
    }());
    return e;
  }
  static std::string image(const char* name) { return testing::read_text(testing::vocab_mllama().dir / "images" / name); }
  // A prompt of several full blocks after the image, so a prefix cache would have blocks to share.
  static GenerationRequest request(const char* image_name) {
    GenerationRequest r;
    std::string text = "<|image|>";
    for (int i = 0; i < 40; ++i) text += " the quick brown fox";
    r.prompt_text = text;
    r.images = {image(image_name)};
    r.sampling.temperature = 0;
    r.max_tokens = 4;
    r.ignore_eos = true;
    return r;
  }
};

TEST_F(VisionEngine, ModelInfoSaysItTakesImages) {
  const ModelInfo& info = engine().model_info();
  EXPECT_TRUE(info.vision);
  EXPECT_EQ(info.image_token_id, 128256);
  EXPECT_GE(info.max_images, 1);
}

TEST_F(VisionEngine, ImageRequestsAreNeverServedFromThePrefixCache) {
  const Result first = run(engine(), request("wide.png"));
  ASSERT_EQ(first.done.reason, FinishReason::length) << first.done.error;
  const Result again = run(engine(), request("wide.png"));
  EXPECT_EQ(again.done.cached_prompt_tokens, 0);
  EXPECT_EQ(again.tokens, first.tokens);
  // The same tokens with another image: a cache keyed by tokens would have answered as before.
  const Result other = run(engine(), request("tall.jpg"));
  EXPECT_EQ(other.done.cached_prompt_tokens, 0);
  EXPECT_NE(other.tokens, first.tokens);
  // Text requests still share blocks among themselves.
  GenerationRequest text = request("wide.png");
  text.images.clear();
  text.prompt_text = text.prompt_text->substr(9);  // without the marker
  run(engine(), text);
  EXPECT_GT(run(engine(), text).done.cached_prompt_tokens, 0);
}

TEST_F(VisionEngine, BadImagesAndCountsAreInvalidRequests) {
  auto refused = [&](GenerationRequest r, const std::string& what) {
    try {
      engine().submit(std::move(r), {});
      ADD_FAILURE() << "accepted; expected: " << what;
    } catch (const EngineError& e) {
      EXPECT_EQ(e.kind(), EngineError::Kind::invalid_request);
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  GenerationRequest r = request("wide.png");
  r.images.push_back(image("tall.jpg"));  // one marker, two images
  refused(r, "1 image tokens (<|image|>) for 2 images");
  r = request("wide.png");
  r.images = {image("wide.png").substr(0, 100)};  // a truncated PNG
  refused(r, "image 1");
  r = request("wide.png");
  r.prompt_text = "<|image|><|image|><|image|><|image|><|image|> five";
  r.images.assign(5, image("wide.png"));
  refused(r, "at most 4");
  r = request("wide.png");
  r.prompt_text.reset();
  r.prompt_tokens = {128000, 128256, 128256};
  refused(r, "2 image tokens");
}

}  // namespace
}  // namespace llama3
