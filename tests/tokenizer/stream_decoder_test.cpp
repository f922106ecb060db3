// The streaming decoder never emits a broken UTF-8 sequence: a character split across tokens
// comes out whole once its last byte arrives.
#include <gtest/gtest.h>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_fixtures.h"
#include "tokenizer/utf8.h"

namespace llama3::tokenizer {
namespace {

TEST(StreamDecoder, HoldsASplitEmojiUntilComplete) {
  const auto& tok = testing::llama3_tokenizer();
  // "😀" (F0 9F 98 80) is two tokens: 76460 = F0 9F 98, 222 = 80.
  ASSERT_EQ(tok.encode("\xF0\x9F\x98\x80", false, false), (std::vector<int32_t>{76460, 222}));
  StreamDecoder stream(tok);
  EXPECT_EQ(stream.push(9906), "Hello");
  EXPECT_EQ(stream.push(76460), "");  // three bytes of four: held back
  EXPECT_EQ(stream.push(222), "\xF0\x9F\x98\x80");
  EXPECT_EQ(stream.flush(), "");
}

TEST(StreamDecoder, EveryPieceIsValidAndTheWholeIsTheText) {
  const auto& tok = testing::llama3_tokenizer();
  for (const std::string text :
       {"Family: 👨‍👩‍👧‍👦 flags 🇺🇸🇯🇵 and 中文 text, café, Z̑ͫ̓ͪ̂ͫ̽͏̴̙̤̞͉͚̯̞̠͍A",
        "<|eot_id|> plain, 𝐀𝐁𝐂 math"}) {
    StreamDecoder stream(tok);
    std::string joined;
    for (const int32_t id : tok.encode(text, true, false)) {
      const std::string piece = stream.push(id);
      EXPECT_TRUE(utf8::is_valid(piece)) << testing::quoted(piece);
      joined += piece;
    }
    joined += stream.flush();
    EXPECT_EQ(joined, "<|begin_of_text|>" + text);
  }
}

TEST(StreamDecoder, IncompleteLeftoverFlushesAsReplacement) {
  const auto& tok = testing::llama3_tokenizer();
  StreamDecoder stream(tok);
  EXPECT_EQ(stream.push(76460), "");
  EXPECT_EQ(stream.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(stream.flush(), "");
}

TEST(StreamDecoder, BytesThatCanNeverCompleteComeOutAtOnce) {
  const auto& tok = testing::llama3_tokenizer();
  StreamDecoder stream(tok);
  EXPECT_EQ(stream.push(76460), "");                     // F0 9F 98 waits...
  EXPECT_EQ(stream.push(9906), "\xEF\xBF\xBDHello");     // ...and "H" proves it broken
  EXPECT_EQ(stream.push(222), "\xEF\xBF\xBD");           // a lone continuation byte
}

TEST(StreamDecoder, SpecialTokensComeOutAsTheirNames) {
  const auto& tok = testing::llama3_tokenizer();
  StreamDecoder stream(tok);
  EXPECT_EQ(stream.push(128009), "<|eot_id|>");
}

TEST(StreamDecoder, IdOutOfRangeIsAnError) {
  const auto& tok = testing::llama3_tokenizer();
  StreamDecoder stream(tok);
  EXPECT_THROW(stream.push(128256), Error);
  EXPECT_THROW(stream.push(-1), Error);
}

}  // namespace
}  // namespace llama3::tokenizer
