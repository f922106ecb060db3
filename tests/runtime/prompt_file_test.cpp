#include "runtime/prompt_file.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "runtime/url_cache.h"
#include "test_support.h"

namespace llama3::runtime {
namespace {

namespace fs = std::filesystem;
using llama3::testing::read_text;
using llama3::testing::TempDir;
using llama3::testing::write_text;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

// A minimal HTTP/1.1 server on 127.0.0.1 (an ephemeral port) for the download tests: serves a
// fixed table of paths, one connection at a time, on its own thread; nothing else is contacted.
class LocalHttpServer {
 public:
  struct Route {
    int status = 200;
    std::string body;
    std::string location;  // for redirects
    bool hang = false;     // accept, read the request, never answer (until stop)
  };

  explicit LocalHttpServer(std::map<std::string, Route> routes) : routes_(std::move(routes)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(fd_, 8) != 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len)) {
      ::close(fd_);
      throw std::runtime_error("bind/listen failed");
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~LocalHttpServer() { stop(); }

  void stop() {
    if (stopping_.exchange(true)) return;
    thread_.join();
    ::close(fd_);
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int requests() const { return requests_; }

 private:
  // Waits up to 50 ms for `fd` to be readable, so the loop notices stop() promptly.
  bool readable(int fd) const {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 50) > 0;
  }

  void serve() {
    while (!stopping_) {
      if (!readable(fd_)) continue;
      const int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) continue;
      handle(client);
      ::close(client);
    }
  }

  void handle(int client) {
    std::string request;
    char buffer[4096];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (request.find("\r\n\r\n") == std::string::npos) {
      if (stopping_ || std::chrono::steady_clock::now() > deadline) return;
      if (!readable(client)) continue;
      const ssize_t n = ::recv(client, buffer, sizeof(buffer), 0);
      if (n <= 0) return;
      request.append(buffer, static_cast<size_t>(n));
    }
    ++requests_;
    const size_t start = request.find(' ') + 1;
    const std::string path = request.substr(start, request.find(' ', start) - start);
    const auto it = routes_.find(path);
    Route route = it != routes_.end() ? it->second : Route{404, "not found", "", false};
    if (route.hang) {
      while (!stopping_) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      return;
    }
    std::string response = "HTTP/1.1 " + std::to_string(route.status) + " X\r\n";
    response += "Content-Length: " + std::to_string(route.body.size()) + "\r\n";
    if (!route.location.empty()) response += "Location: " + route.location + "\r\n";
    response += "Connection: close\r\n\r\n" + route.body;
    for (size_t sent = 0; sent < response.size();) {
      const ssize_t n = ::send(client, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
  }

  std::map<std::string, Route> routes_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
};

// A local port with nothing listening: bound then closed, so connecting is refused.
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

const std::string kText = "The lighthouse keeper counted ships.\nNone came.\n";

// --- downloads -------------------------------------------------------------------------------

TEST(FetchUrl, DownloadsAndFollowsRedirects) {
  LocalHttpServer server({{"/text", {200, kText}}, {"/moved", {302, "", "/text"}}});
  EXPECT_EQ(fetch_url(server.url("/text")), kText);
  EXPECT_EQ(fetch_url(server.url("/moved")), kText);
}

TEST(FetchUrl, HttpErrorStatusIsAnError) {
  LocalHttpServer server({{"/broken", {500, "oops"}}});
  EXPECT_THAT([&] { fetch_url(server.url("/missing")); },
              ThrowsMessage<Error>(HasSubstr("HTTP status 404")));
  EXPECT_THAT([&] { fetch_url(server.url("/broken")); },
              ThrowsMessage<Error>(HasSubstr("HTTP status 500")));
}

TEST(FetchUrl, UnreachablePortIsAnError) {
  const std::string url = "http://127.0.0.1:" + std::to_string(closed_port()) + "/x";
  EXPECT_THAT([&] { fetch_url(url); }, ThrowsMessage<Error>(HasSubstr("cannot fetch '" + url)));
}

TEST(FetchUrl, TotalTimeoutIsEnforced) {
  LocalHttpServer server({{"/slow", {200, "", "", true}}});
  FetchOptions options;
  options.total_timeout_s = 1;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THAT([&] { fetch_url(server.url("/slow"), options); },
              ThrowsMessage<Error>(HasSubstr("timed out")));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 10.0);  // 1 s limit; generous margin for a loaded machine
}

TEST(FetchUrl, OversizedBodyIsAnError) {
  LocalHttpServer server({{"/big", {200, std::string(5000, 'x')}}});
  FetchOptions options;
  options.max_bytes = 1000;
  EXPECT_THAT([&] { fetch_url(server.url("/big"), options); },
              ThrowsMessage<Error>(HasSubstr("larger than 1000 bytes")));
}

TEST(FetchUrl, RejectsOtherSchemesAndBadUrls) {
  EXPECT_THAT([] { fetch_url("ftp://127.0.0.1/x"); },
              ThrowsMessage<Error>(HasSubstr("only http:// and https://")));
  EXPECT_THAT([] { fetch_url("http://127.0.0.1/a b"); },
              ThrowsMessage<Error>(HasSubstr("space or control character")));
}

TEST(UrlCache, KeyIsFnv1a64Hex) {
  EXPECT_EQ(url_cache_key(""), "cbf29ce484222325");  // FNV-1a 64 of the empty string
  EXPECT_EQ(url_cache_key("a"), "af63dc4c8601ec8c");  // published FNV-1a 64 test vector
  EXPECT_NE(url_cache_key("http://x/1"), url_cache_key("http://x/2"));
}

TEST(UrlCache, ServesFromCacheOnceFetchedEvenWhenTheServerIsGone) {
  TempDir dir("url-cache");
  const fs::path cache = dir / "cache";
  LocalHttpServer server({{"/text", {200, kText}}});
  const std::string url = server.url("/text");
  const auto first = fetch_url_cached(url, cache);
  EXPECT_EQ(first.body, kText);
  EXPECT_FALSE(first.from_cache);
  EXPECT_TRUE(first.warning.empty()) << first.warning;
  const auto second = fetch_url_cached(url, cache);
  EXPECT_TRUE(second.from_cache);
  EXPECT_EQ(second.body, kText);
  EXPECT_EQ(server.requests(), 1);
  server.stop();
  const auto third = fetch_url_cached(url, cache);
  EXPECT_TRUE(third.from_cache);
  EXPECT_EQ(third.body, kText);
  // Not cached, server gone: an error.
  EXPECT_THROW(fetch_url_cached(server.url("/other"), cache), Error);
  // One entry, no temporary files left behind.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(cache)) names.push_back(e.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{url_cache_key(url) + ".cache"});
}

TEST(UrlCache, EntryForAnotherUrlIsAMiss) {
  // Simulates a hash collision: the entry's first line names another URL.
  TempDir dir("url-cache-collision");
  LocalHttpServer server({{"/text", {200, kText}}});
  const std::string url = server.url("/text");
  write_text(dir / (url_cache_key(url) + ".cache"), "http://elsewhere/\nWRONG TEXT");
  const auto fetched = fetch_url_cached(url, dir.path());
  EXPECT_FALSE(fetched.from_cache);
  EXPECT_EQ(fetched.body, kText);
  EXPECT_EQ(read_text(dir / (url_cache_key(url) + ".cache")), url + "\n" + kText);
}

TEST(UrlCache, FailedDownloadIsNotCached) {
  TempDir dir("url-cache-404");
  LocalHttpServer server({});
  EXPECT_THROW(fetch_url_cached(server.url("/missing"), dir / "cache"), Error);
  EXPECT_FALSE(fs::exists(dir / "cache") && !fs::is_empty(dir / "cache"));
}

TEST(UrlCache, UnwritableCacheIsOnlyAWarning) {
  TempDir dir("url-cache-unwritable");
  write_text(dir / "not-a-dir", "x");  // the cache "folder" is a file
  LocalHttpServer server({{"/text", {200, kText}}});
  const auto fetched = fetch_url_cached(server.url("/text"), dir / "not-a-dir");
  EXPECT_EQ(fetched.body, kText);
  EXPECT_THAT(fetched.warning, HasSubstr("could not cache"));
}

// --- prompt files ----------------------------------------------------------------------------

TEST(PromptFile, LoadsEntries) {
  TempDir dir("prompt-file");
  write_text(dir / "p.json", R"([
    {"prompt": "What is 2+2?"},
    {"prompt": "Summarize.", "context": "texts/a.txt", "max_length": 100},
    {"prompt": "Go", "context": "https://example.invalid/x", "max_length": -1}
  ])");
  const auto specs = load_prompt_file(dir / "p.json");
  ASSERT_EQ(specs.size(), 3u);
  EXPECT_EQ(specs[0].prompt, "What is 2+2?");
  EXPECT_EQ(specs[0].context, "");
  EXPECT_EQ(specs[0].max_length, -1);
  EXPECT_EQ(specs[1].context, "texts/a.txt");
  EXPECT_EQ(specs[1].max_length, 100);
  EXPECT_EQ(specs[2].max_length, -1);
}

TEST(PromptFile, RejectsBadFilesNamingFileAndEntry) {
  TempDir dir("prompt-file-bad");
  const std::pair<const char*, const char*> cases[] = {
      {"[{\"prompt\": \"a\"}", "invalid JSON"},
      {"{\"prompt\": \"a\"}", "expected a JSON list of prompts"},
      {"[]", "the list of prompts is empty"},
      {"[{\"prompt\": \"a\"}, 3]", "entry [1]: expected an object"},
      {"[{\"prompt\": \"a\", \"contxt\": \"b\"}]", "entry [0]: unknown key 'contxt'"},
      {"[{\"context\": \"b\"}]", "entry [0]: 'prompt' is missing"},
      {"[{\"prompt\": \"\"}]", "entry [0]: 'prompt' is empty"},
      {"[{\"prompt\": 5}]", "entry [0]: 'prompt' must be a string"},
      {"[{\"prompt\": \"a\"}, {\"prompt\": \"b\", \"context\": [\"x\"]}]",
       "entry [1]: 'context' must be a string"},
      {"[{\"prompt\": \"a\", \"max_length\": \"10\"}]", "'max_length' must be an integer"},
      {"[{\"prompt\": \"a\", \"max_length\": 1.5}]", "'max_length' must be an integer"},
      {"[{\"prompt\": \"a\", \"max_length\": -2}]", "'max_length' must be an integer >= -1"},
      {"[{\"prompt\": \"\xff\"}]", "invalid JSON"},
  };
  const fs::path file = dir / "bad.json";
  for (const auto& [content, message] : cases) {
    write_text(file, content);
    EXPECT_THAT([&] { load_prompt_file(file); },
                ThrowsMessage<Error>(AllOf(HasSubstr(file.string()), HasSubstr(message))))
        << content;
  }
  EXPECT_THAT([&] { load_prompt_file(dir / "missing.json"); },
              ThrowsMessage<Error>(HasSubstr("no such file")));
}

// --- resolving contexts ----------------------------------------------------------------------

TEST(ResolvePrompt, NoContextIsJustThePrompt) {
  const auto r = resolve_prompt({"Hello?", "", 10}, "/nonexistent", "/nonexistent");
  EXPECT_EQ(r.text, "Hello?");
  EXPECT_TRUE(r.error.empty());
}

TEST(ResolvePrompt, LocalPathsAndFileUrls) {
  TempDir dir("resolve-local");
  fs::create_directories(dir / "texts" / "with space");
  write_text(dir / "texts" / "a.txt", "Alpha text.");
  write_text(dir / "texts" / "with space" / "b.txt", "Beta text.");
  const fs::path cache = dir / "cache";
  EXPECT_EQ(resolve_prompt({"Q?", "texts/a.txt"}, dir.path(), cache).text, "Alpha text.\n\nQ?");
  const std::string absolute = (dir / "texts" / "a.txt").string();
  EXPECT_EQ(resolve_prompt({"Q?", absolute}, "/nonexistent", cache).text, "Alpha text.\n\nQ?");
  EXPECT_EQ(resolve_prompt({"Q?", "file://" + absolute}, "/x", cache).text, "Alpha text.\n\nQ?");
  EXPECT_EQ(resolve_prompt({"Q?", "file://localhost" + absolute}, "/x", cache).text,
            "Alpha text.\n\nQ?");
  const std::string escaped = "file://" + (dir / "texts").string() + "/with%20space/b.txt";
  EXPECT_EQ(resolve_prompt({"Q?", escaped}, "/x", cache).text, "Beta text.\n\nQ?");
}

TEST(ResolvePrompt, ContextProblemsAreReportedNotThrown) {
  TempDir dir("resolve-errors");
  fs::create_directories(dir / "folder");
  write_text(dir / "latin1.txt", "caf\xe9");
  const std::pair<std::string, std::string> cases[] = {
      {"missing.txt", "no such file"},
      {"folder", "not a regular file"},
      {"latin1.txt", "not valid UTF-8 (byte 3)"},
      {"file://relative.txt", "needs an absolute path"},
      {"file:///tmp/%zz", "bad percent-escape"},
      {"ftp://127.0.0.1/x", "unsupported URL scheme"},
  };
  for (const auto& [context, message] : cases) {
    const auto r = resolve_prompt({"Q?", context}, dir.path(), dir / "cache");
    EXPECT_THAT(r.error, HasSubstr(message)) << context;
    EXPECT_TRUE(r.text.empty());
  }
  EXPECT_THAT(resolve_prompt({"Q?", "missing.txt"}, dir.path(), dir / "cache").error,
              HasSubstr((dir / "missing.txt").string()));
}

TEST(ResolvePrompt, ClipsToCodePointsWithoutSplittingCharacters) {
  TempDir dir("resolve-clip");
  // 'é' is 2 bytes, '€' 3, '😀' 4: clipping by bytes would cut them.
  write_text(dir / "u.txt", "\xEF\xBB\xBF" "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z");
  const auto clip = [&](int64_t n) {
    return resolve_prompt({"Q", "u.txt", n}, dir.path(), dir / "cache").text;
  };
  EXPECT_EQ(clip(-1), "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z\n\nQ");  // BOM dropped
  EXPECT_EQ(clip(0), "Q");  // nothing left of the context: no separator either
  EXPECT_EQ(clip(1), "a\n\nQ");
  EXPECT_EQ(clip(2), "a\xC3\xA9\n\nQ");
  EXPECT_EQ(clip(3), "a\xC3\xA9\xE2\x82\xAC\n\nQ");
  EXPECT_EQ(clip(4), "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\n\nQ");
  EXPECT_EQ(clip(5), clip(-1));
  EXPECT_EQ(clip(500), clip(-1));
}

TEST(ResolvePrompt, DownloadsHttpContextOnceThenUsesTheCache) {
  TempDir dir("resolve-http");
  LocalHttpServer server({{"/ctx", {200, "Remote context."}}});
  const PromptSpec spec{"Q?", server.url("/ctx"), 6};
  EXPECT_EQ(resolve_prompt(spec, dir.path(), dir / "cache").text, "Remote\n\nQ?");
  server.stop();
  const auto again = resolve_prompt(spec, dir.path(), dir / "cache");
  EXPECT_EQ(again.text, "Remote\n\nQ?");
  EXPECT_TRUE(again.error.empty());
  const auto missing = resolve_prompt({"Q?", server.url("/gone")}, dir.path(), dir / "cache");
  EXPECT_THAT(missing.error, HasSubstr("cannot fetch"));
}

TEST(ResolvePrompt, HttpNotFoundIsThatUsersError) {
  TempDir dir("resolve-404");
  LocalHttpServer server({});
  const auto r = resolve_prompt({"Q?", server.url("/nope")}, dir.path(), dir / "cache");
  EXPECT_THAT(r.error, HasSubstr("HTTP status 404"));
  EXPECT_TRUE(r.text.empty());
}

// --- the committed demo prompt files ---------------------------------------------------------

TEST(DemoPrompts, AllLoadAndResolveOffline) {
  const fs::path prompts = fs::path(LLAMA3_SOURCE_DIR) / "demo" / "prompts";
  TempDir cache("demo-prompts-cache");
  int files = 0;
  for (const auto& entry : fs::directory_iterator(prompts)) {
    if (entry.path().extension() != ".json") continue;
    ++files;
    for (const auto& spec : load_prompt_file(entry.path())) {
      const auto r = resolve_prompt(spec, prompts, cache.path());
      EXPECT_TRUE(r.error.empty()) << entry.path() << ": " << r.error;
      EXPECT_FALSE(r.text.empty());
    }
  }
  EXPECT_GE(files, 4);
  EXPECT_EQ(load_prompt_file(prompts / "questions_128.json").size(), 32u);
}

TEST(DemoPrompts, LongContextsHaveTheAdvertisedSizeAndTheirAnswer) {
  // The generated chronicle runs ~4.5 characters per Llama 3 token (measured with the Llama 3.1
  // tokenizer: 4034, 32729 and 102736 tokens), so these character counts mean >= 4k, 32k and
  // 100k tokens of context. Each text must hold the one sentence its question asks about.
  const fs::path prompts = fs::path(LLAMA3_SOURCE_DIR) / "demo" / "prompts";
  TempDir cache("demo-long-cache");
  struct Case {
    const char* file;
    size_t min_chars;
    const char* answer;
  };
  const Case cases[] = {{"long_context_4k.json", 18000, "Wilhelmina Starling"},
                        {"long_context_32k.json", 147000, "Augustin Pell"},
                        {"long_context_100k.json", 460000, "Marigold Fenn"}};
  for (const auto& c : cases) {
    const auto specs = load_prompt_file(prompts / c.file);
    ASSERT_EQ(specs.size(), 1u) << c.file;
    const auto r = resolve_prompt(specs[0], prompts, cache.path());
    EXPECT_GE(r.text.size(), c.min_chars) << c.file;
    EXPECT_LT(r.text.size(), c.min_chars * 5 / 4) << c.file;
    const size_t at = r.text.find(c.answer);
    ASSERT_NE(at, std::string::npos) << c.file;
    EXPECT_EQ(r.text.find(c.answer, at + 1), std::string::npos) << c.file << ": not unique";
    // Placed about 60% of the way in: neither trivially at the start nor at the end.
    EXPECT_GT(at, r.text.size() / 2) << c.file;
    EXPECT_LT(at, r.text.size() * 3 / 4) << c.file;
  }
}

}  // namespace
}  // namespace llama3::runtime
