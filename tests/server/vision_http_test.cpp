// Llama 3.2 Vision over HTTP: OpenAI-style image_url content parts with data: URLs reach the
// engine as the request's images (the same answer as the engine called directly), and bad images
// or image parts are 400s naming what is wrong.
#include <gtest/gtest.h>

#include "http_test_helpers.h"
#include "mllama_fixture.h"
#include "server/api_error.h"
#include "server/openai_request.h"

namespace llama3::server::testing {
namespace {

std::string base64(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[v & 63] : '=';
  }
  return out;
}

json image_part(const std::string& url) { return {{"type", "image_url"}, {"image_url", {{"url", url}}}}; }

json chat_with(const json& content) {
  return {{"messages", {{{"role", "user"}, {"content", content}}}}, {"temperature", 0}, {"max_tokens", 6},
          {"ignore_eos", true}};
}

TEST(VisionRequest, ImagePartsBecomeTheMessagesImages) {
  const json body = {{"messages",
                      {{{"role", "user"}, {"content", {image_part("data:image/png;base64,aGVsbG8="), {{"type", "text"}, {"text", "What?"}}}}},
                       {{"role", "assistant"}, {"content", "A cat."}},
                       {{"role", "user"},
                        {"content", {{{"type", "text"}, {"text", "And "}}, {{"type", "image_url"}, {"image_url", "data:image/jpeg;base64,d29ybGQ="}}}}}}}};
  const OpenAiRequest r = parse_request(Endpoint::chat_completions, body.dump());
  EXPECT_EQ(r.generation.images, (std::vector<std::string>{"hello", "world"}));
  ASSERT_EQ(r.generation.messages.size(), 3u);
  EXPECT_EQ(r.generation.messages[0].images, 1);
  EXPECT_EQ(r.generation.messages[0].content, "What?");
  EXPECT_EQ(r.generation.messages[1].images, 0);
  EXPECT_EQ(r.generation.messages[2].images, 1);
}

TEST(VisionRequest, BadImagePartsAre400s) {
  for (const json& part : {image_part("https://example.com/cat.png"), image_part("data:image/png,rawbytes"),
                           image_part("data:image/png;base64,%%%%"), json{{"type", "image_url"}},
                           json{{"type", "image_url"}, {"image_url", {{"url", 5}}}}}) {
    try {
      parse_request(Endpoint::chat_completions, chat_with({part}).dump());
      ADD_FAILURE() << "accepted " << part;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 400) << part;
      EXPECT_EQ(e.param().value_or(""), "messages[0].content") << part;
    }
  }
}

class VisionHttp : public ::testing::Test {
 protected:
  static TestServer& server() {
    static TestServer s([] {
      EngineOptions o = tiny_engine_options();
      o.model.model_dir = (llama3::testing::vocab_mllama().dir / "hf").string();
      o.model.weights = std::nullopt;
      o.model.layers = std::nullopt;
      o.model.optimizations = "bf16";
      o.model.weight_cache = false;
      return o;
    }());
    return s;
  }
  static std::string image(const char* name) {
    return llama3::testing::read_text(llama3::testing::vocab_mllama().dir / "images" / name);
  }
};

TEST_F(VisionHttp, DataUrlImageAnswersAsTheEngineDoes) {
  const auto r = post(server(), "/v1/chat/completions",
                      chat_with({image_part("data:image/png;base64," + base64(image("wide.png"))),
                                 {{"type", "text"}, {"text", "What is in this picture?"}}}));
  ASSERT_EQ(r.status, 200) << r.body;
  GenerationRequest direct = direct_request(6);
  direct.sampling.temperature = 0;
  direct.messages = {{"user", "What is in this picture?", 1}};
  direct.images = {image("wide.png")};
  const Direct want = generate_direct(server().engine(), direct);
  EXPECT_EQ(r.json_body()["choices"][0]["message"]["content"], want.text);
  EXPECT_EQ(r.json_body()["usage"]["prompt_tokens"], want.done.prompt_tokens);
  // Another image, another answer (greedy over random weights: the image reaches the model).
  direct.images = {image("tall.jpg")};
  EXPECT_NE(generate_direct(server().engine(), direct).tokens, want.tokens);
}

TEST_F(VisionHttp, BadImagesAre400s) {
  expect_error(post(server(), "/v1/chat/completions",
                    chat_with({image_part("data:image/png;base64," + base64("not a png at all")), {{"type", "text"}, {"text", "Hi"}}})),
               400, "invalid_request_error");
  json five = json::array();
  for (int i = 0; i < 5; ++i) five.push_back(image_part("data:image/png;base64," + base64(image("wide.png"))));
  expect_error(post(server(), "/v1/chat/completions", chat_with(five)), 400, "invalid_request_error");
  // A text-only model refuses an image.
  expect_error(post(shared_server(), "/v1/chat/completions",
                    chat_with({image_part("data:image/png;base64," + base64(image("wide.png")))})),
               400, "invalid_request_error");
}

}  // namespace
}  // namespace llama3::server::testing
