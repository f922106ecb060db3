// Stop strings over text that arrives in pieces, and the log-probabilities that go with the
// text actually sent.
#include <gtest/gtest.h>

#include "server/output_assembler.h"
#include "server/stop_matcher.h"

namespace llama3::server {
namespace {

// Feeds `pieces` one by one; returns what was released, piece by piece, then the flush.
std::vector<std::string> run(StopMatcher& m, const std::vector<std::string>& pieces) {
  std::vector<std::string> out;
  for (const std::string& p : pieces) out.push_back(m.feed(p));
  out.push_back(m.flush());
  return out;
}

TEST(StopMatcher, WithoutStopsEverythingPassesAtOnce) {
  StopMatcher m({});
  EXPECT_EQ(run(m, {"ab", "c"}), (std::vector<std::string>{"ab", "c", ""}));
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, StopInsideOnePieceCutsBeforeIt) {
  StopMatcher m({"END"});
  EXPECT_EQ(m.feed("abcENDxyz"), "abc");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.feed("more"), "");
  EXPECT_EQ(m.flush(), "");
  EXPECT_EQ(m.released(), 3u);
}

TEST(StopMatcher, StopAcrossPiecesIsHeldBackUntilDecided) {
  StopMatcher m({"END"});
  EXPECT_EQ(m.feed("abE"), "ab");  // "E" could start END
  EXPECT_EQ(m.feed("N"), "");      // "EN" still could
  EXPECT_EQ(m.feed("D!"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.released(), 2u);
}

TEST(StopMatcher, FalseStartIsReleasedWhenItCannotMatch) {
  StopMatcher m({"END"});
  EXPECT_EQ(m.feed("xE"), "x");
  EXPECT_EQ(m.feed("Nx"), "ENx");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.feed("EN"), "");
  EXPECT_EQ(m.flush(), "EN");  // the generation ended: what was held goes out
  EXPECT_EQ(m.released(), 6u);
}

TEST(StopMatcher, EarliestOfSeveralStopsWins) {
  StopMatcher m({"world", "lo w", "o"});
  EXPECT_EQ(m.feed("hello world"), "hel");  // "lo w" starts first
  StopMatcher n({"bc", "abcd"});
  EXPECT_EQ(n.feed("xab"), "x");  // "ab" could start abcd, "b" could start bc
  EXPECT_EQ(n.feed("c"), "a");   // "bc" matched at offset 2
  EXPECT_TRUE(n.stopped());
}

TEST(StopMatcher, OverlappingPrefixKeepsLongestCandidate) {
  StopMatcher m({"aab"});
  EXPECT_EQ(m.feed("a"), "");
  EXPECT_EQ(m.feed("a"), "");
  EXPECT_EQ(m.feed("a"), "a");  // "aaa": the last two could still start aab
  EXPECT_EQ(m.feed("b"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.released(), 1u);
}

TEST(StopMatcher, MultiByteStopString) {
  StopMatcher m({"ü!"});
  EXPECT_EQ(m.feed("gr\xC3"), "gr");  // a partial UTF-8 lead byte that starts the stop
  EXPECT_EQ(m.feed("\xBC!"), "");
  EXPECT_TRUE(m.stopped());
}

TokenEvent token(int32_t id, std::string text, float logprob) {
  TokenEvent e;
  e.token = id;
  e.text = std::move(text);
  e.logprob = TokenLogprob{id, logprob};
  e.top_logprobs = {{id, logprob}, {id + 1, logprob - 1.0f}};
  return e;
}

std::string spell(int32_t id) { return "<" + std::to_string(id) + ">"; }

TEST(OutputAssembler, LogprobsFollowTheTextSent) {
  OutputAssembler a({"STOP"}, true, spell);
  OutputDelta d = a.add(token(1, "Hi ", -0.5f));
  EXPECT_EQ(d.text, "Hi ");
  ASSERT_EQ(d.logprobs.size(), 1u);
  EXPECT_EQ(d.logprobs[0].token, "<1>");
  EXPECT_FLOAT_EQ(d.logprobs[0].logprob, -0.5f);
  ASSERT_EQ(d.logprobs[0].top.size(), 2u);
  EXPECT_EQ(d.logprobs[0].top[1].first, "<2>");
  EXPECT_EQ(d.logprobs[0].text_offset, 0u);

  d = a.add(token(2, "thereST", -1.0f));  // "ST" held back: could start STOP
  EXPECT_EQ(d.text, "there");
  ASSERT_EQ(d.logprobs.size(), 1u);
  EXPECT_EQ(d.logprobs[0].text_offset, 3u);

  d = a.add(token(3, "OP", -2.0f));  // completes STOP: the token only spelled the stop string
  EXPECT_EQ(d.text, "");
  EXPECT_TRUE(d.logprobs.empty());
  EXPECT_TRUE(a.stopped());
  EXPECT_EQ(a.tokens(), 3);
  EXPECT_TRUE(a.add(token(4, "late", -1.0f)).empty());
  EXPECT_TRUE(a.finish().empty());
  EXPECT_EQ(a.tokens(), 3);
}

TEST(OutputAssembler, FinishReleasesHeldTextAndTokens) {
  OutputAssembler a({"xyz"}, true, spell);
  EXPECT_EQ(a.add(token(1, "abx", -1.0f)).text, "ab");
  const OutputDelta d = a.add(token(2, "", -1.0f));  // a token with no text yet
  EXPECT_TRUE(d.empty());
  const OutputDelta end = a.finish();
  EXPECT_EQ(end.text, "x");
  ASSERT_EQ(end.logprobs.size(), 1u);
  EXPECT_EQ(end.logprobs[0].token, "<2>");
  EXPECT_FALSE(a.stopped());
  EXPECT_EQ(a.tokens(), 2);
}

TEST(OutputAssembler, NoLogprobsUnlessAsked) {
  OutputAssembler a({}, false, [](int32_t) -> std::string {
    ADD_FAILURE() << "spelled a token without logprobs";
    return "";
  });
  const OutputDelta d = a.add(token(1, "a", -1.0f));
  EXPECT_EQ(d.text, "a");
  EXPECT_TRUE(d.logprobs.empty());
}

}  // namespace
}  // namespace llama3::server
