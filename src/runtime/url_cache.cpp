#include "runtime/url_cache.h"

#include <curl/curl.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <system_error>

#include "core/error.h"
#include "core/progress.h"

namespace llama3::runtime {

namespace fs = std::filesystem;

namespace {

bool starts_with_scheme(std::string_view url, std::string_view scheme) {
  if (url.size() < scheme.size()) return false;
  for (size_t i = 0; i < scheme.size(); ++i) {
    const char c = url[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != scheme[i]) return false;
  }
  return true;
}

void check_url(const std::string& url) {
  check(starts_with_scheme(url, "http://") || starts_with_scheme(url, "https://"),
        "cannot fetch '{}': only http:// and https:// URLs can be downloaded", url);
  for (const char c : url) {
    // Control characters and spaces are not valid in a URL (and would break the cache format).
    check(static_cast<unsigned char>(c) > ' ' && c != 0x7f,
          "cannot fetch '{}': the URL contains a space or control character", url);
  }
}

// libcurl's global state must be set up once before any handle is made, from one thread.
void init_curl() {
  static std::once_flag once;
  std::call_once(once, [] {
    check(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK, "libcurl initialization failed");
  });
}

struct Download {
  std::string body;
  size_t max_bytes = 0;
  bool too_large = false;
};

size_t on_data(char* data, size_t size, size_t count, void* user) {
  auto* download = static_cast<Download*>(user);
  const size_t bytes = size * count;
  if (download->body.size() + bytes > download->max_bytes) {
    download->too_large = true;
    return 0;  // makes libcurl abort the transfer with CURLE_WRITE_ERROR
  }
  download->body.append(data, bytes);
  return bytes;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::string fetch_url(const std::string& url, const FetchOptions& options) {
  check_url(url);
  init_curl();
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> handle(curl_easy_init(), curl_easy_cleanup);
  check(handle != nullptr, "cannot fetch '{}': libcurl could not create a handle", url);
  CURL* h = handle.get();
  Download download;
  download.max_bytes = options.max_bytes;
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
#if LIBCURL_VERSION_NUM >= 0x075500  // 7.85: the string forms; the bitmasks are deprecated
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(h, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_s);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, options.total_timeout_s);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM: safe with threads
  curl_easy_setopt(h, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");  // any encoding libcurl can decode
  curl_easy_setopt(h, CURLOPT_USERAGENT, "llama3-demo/0.1");
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &download);
  // Progress once the size is known (silent for a download that ends within a second).
  std::optional<Progress> progress;
  const auto on_progress = [&](curl_off_t total, curl_off_t now) {
    if (total <= 0) return;
    if (!progress) progress.emplace("fetching " + url, static_cast<double>(total) / 1e6, "MB");
    progress->set(static_cast<double>(now) / 1e6);
  };
  using ProgressFn = decltype(on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION,
                   +[](void* fn, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) -> int {
                     (*static_cast<const ProgressFn*>(fn))(total, now);
                     return 0;
                   });
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &on_progress);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  const CURLcode result = curl_easy_perform(h);
  if (progress) progress->finish();
  if (download.too_large) {
    fail("cannot fetch '{}': the response is larger than {} bytes", url, options.max_bytes);
  }
  if (result != CURLE_OK) {
    fail("cannot fetch '{}': {}", url, error[0] ? error : curl_easy_strerror(result));
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  check(status < 400, "cannot fetch '{}': HTTP status {}", url, status);
  return std::move(download.body);
}

std::string url_cache_key(std::string_view url) {
  uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a 64 offset basis
  for (const char c : url) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;  // FNV 64 prime
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string key(16, '0');
  for (int i = 15; i >= 0; --i, hash >>= 4) key[static_cast<size_t>(i)] = kHex[hash & 15];
  return key;
}

CachedFetch fetch_url_cached(const std::string& url, const fs::path& cache_dir,
                             const FetchOptions& options) {
  check_url(url);
  const fs::path entry = cache_dir / (url_cache_key(url) + ".cache");
  CachedFetch result;
  std::error_code ec;
  if (fs::is_regular_file(entry, ec)) {
    std::string stored = read_file(entry);
    const size_t newline = stored.find('\n');
    if (newline != std::string::npos && std::string_view(stored).substr(0, newline) == url) {
      result.body = stored.substr(newline + 1);
      result.from_cache = true;
      return result;
    }
  }
  result.body = fetch_url(url, options);
  // Store: a temporary file unique to this process and call, renamed into place (atomic on
  // POSIX), so readers see either no entry or a whole one.
  static std::atomic<uint64_t> counter{0};
  const fs::path temp = cache_dir / (url_cache_key(url) + ".tmp-" + std::to_string(::getpid()) +
                                     "-" + std::to_string(counter++));
  fs::create_directories(cache_dir, ec);
  if (!ec) {
    std::ofstream out(temp, std::ios::binary);
    out << url << '\n' << result.body;
    out.close();
    if (!out) ec = std::make_error_code(std::errc::io_error);
  }
  if (!ec) fs::rename(temp, entry, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    result.warning = "could not cache '" + url + "' in " + cache_dir.string() + ": " + ec.message();
  }
  return result;
}

}  // namespace llama3::runtime
