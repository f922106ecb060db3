#pragma once
// Downloads of prompt contexts over http(s) with libcurl, and their on-disk cache: a context is
// fetched once, then read from the cache (so the demo runs offline after the first time).
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

namespace llama3::runtime {

struct FetchOptions {
  long connect_timeout_s = 10;
  long total_timeout_s = 60;
  size_t max_bytes = size_t{64} << 20;  // a larger body is an error, not a full disk/memory
};

// GETs an http:// or https:// URL, following redirects (to http(s) only). Throws llama3::Error
// naming the URL on any other scheme, a transport error (unreachable host, timeout, TLS), an
// HTTP status >= 400, or a body over max_bytes. Proxies from the environment are honoured
// except for localhost.
std::string fetch_url(const std::string& url, const FetchOptions& options = {});

// FNV-1a 64 of the URL, as 16 lowercase hex digits: the cache entry's file name.
std::string url_cache_key(std::string_view url);

struct CachedFetch {
  std::string body;
  bool from_cache = false;
  std::string warning;  // non-empty if the download could not be stored in the cache
};

// The body of `url`: from cache_dir/<key>.cache if an earlier call stored it, else fetched with
// fetch_url and stored. An entry holds the URL on its first line and the body after it, so a
// hash collision reads as a miss, never as another URL's text. Entries are written to a
// temporary file and renamed into place, so an interrupted download is never cached. Throws
// llama3::Error as fetch_url does; failing to store the entry is only a warning.
CachedFetch fetch_url_cached(const std::string& url, const std::filesystem::path& cache_dir,
                             const FetchOptions& options = {});

}  // namespace llama3::runtime
