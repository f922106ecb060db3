#include "server/load_client.h"

#include <fmt/core.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>
#include <stdexcept>
#include <thread>

#include "server/completion_stream_reader.h"
#include "server/prometheus_text.h"

namespace llama3::server {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Prompt ids are ordinary tokens of Llama 3's vocabulary (128000 BPE tokens before the special
// ones), and below 100000 so that a server with a ~100k vocabulary takes them as well.
constexpr int32_t kFirstToken = 0;
constexpr int32_t kEndToken = 100000;
// After the deadline, how long stopped connections get to end before the run gives up on them.
constexpr auto kStopGrace = std::chrono::seconds(5);
constexpr time_t kConnectTimeoutS = 10;
// An error body is kept to this length in a report.
constexpr size_t kErrorBodyBytes = 300;

double seconds_since(Clock::time_point start, Clock::time_point t) {
  return std::chrono::duration<double>(t - start).count();
}

void set_auth(httplib::Client& client, const LoadTarget& target) {
  if (!target.api_key.empty()) client.set_bearer_token_auth(target.api_key);
}

std::string request_body(const LoadTarget& target, const LoadOptions& o, const PlannedRequest& p) {
  json body = {{"prompt", p.prompt},
               {"max_tokens", p.max_tokens},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}},
               {"seed", p.seed}};
  if (o.ignore_eos) body["ignore_eos"] = true;
  if (!target.model.empty()) body["model"] = target.model;
  return body.dump();
}

// What the workers share with the thread that watches the deadline. Held by shared_ptr: a
// worker whose connection does not end even after stop() is left behind, and must not outlive
// what it uses.
struct RunState {
  LoadTarget target;
  LoadOptions options;
  std::vector<PlannedRequest> plan;
  Clock::time_point start;

  std::mutex mutex;
  std::condition_variable changed;
  std::vector<RequestRecord> records;
  std::set<httplib::Client*> clients;  // connections in flight, for stop() at the deadline
  size_t next = 0;
  int workers_running = 0;
  std::atomic<bool> stopping{false};  // also read by content receivers, without the mutex
};

void check_response(const PlannedRequest& p, CompletionStreamReader& reader, RequestRecord& r) {
  reader.finish();
  if (!reader.problem().empty()) {
    r.outcome = Outcome::failed;
    r.error = "malformed stream: " + reader.problem();
    return;
  }
  r.finish_reason = *reader.finish_reason();
  if (!reader.completion_tokens()) {
    r.outcome = Outcome::failed;
    r.error = "no usage chunk, though stream_options.include_usage was set";
    return;
  }
  r.output_tokens = *reader.completion_tokens();
  if (reader.prompt_tokens()) r.prompt_tokens = *reader.prompt_tokens();
  r.cached_tokens = reader.cached_tokens().value_or(0);
  const bool wrong_count = r.output_tokens < 1 || r.output_tokens > p.max_tokens ||
                           (r.finish_reason == "length" && r.output_tokens != p.max_tokens);
  if (wrong_count) {
    r.outcome = Outcome::failed;
    r.error = fmt::format("usage says {} completion tokens with finish_reason {} and max_tokens {}", r.output_tokens,
                          r.finish_reason, p.max_tokens);
    return;
  }
  r.outcome = Outcome::completed;
}

RequestRecord send_request(RunState& state, size_t index) {
  const PlannedRequest& p = state.plan[index];
  RequestRecord r;
  r.prompt_tokens = static_cast<int64_t>(p.prompt.size());
  httplib::Client client(state.target.base_url);
  client.set_connection_timeout(kConnectTimeoutS);
  client.set_write_timeout(kConnectTimeoutS);
  // A silent server is cut off at the deadline by stop(), not by a read timeout.
  client.set_read_timeout(static_cast<time_t>(std::ceil(state.options.timeout_s)) + 1);
  set_auth(client, state.target);
  {
    std::lock_guard lock(state.mutex);
    if (state.stopping) return r;  // not sent
    state.clients.insert(&client);
  }

  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.set_header("Content-Type", "application/json");
  req.set_header("Accept", "text/event-stream");
  req.body = request_body(state.target, state.options, p);
  CompletionStreamReader reader;
  std::string error_body;
  bool abandoned = false, deadline = false;
  std::optional<Clock::time_point> last_event;
  req.response_handler = [&](const httplib::Response& res) {
    r.http_status = res.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    const Clock::time_point now = Clock::now();
    if (r.http_status != 200) {
      error_body.append(data, std::min(n, kErrorBodyBytes - std::min(kErrorBodyBytes, error_body.size())));
      return true;
    }
    // Events that arrive in one read arrive together: their gaps are zero, as a client sees them.
    for (int events = reader.feed(std::string_view(data, n)); events > 0; --events) {
      if (last_event) {
        r.itl_s.push_back(seconds_since(*last_event, now));
      } else {
        r.ttft_s = seconds_since(state.start, now) - r.sent_s;
      }
      last_event = now;
    }
    if (state.stopping) {
      deadline = true;
      return false;
    }
    if (p.cancel_after > 0 && reader.content_events() >= p.cancel_after && !reader.done()) {
      abandoned = true;
      return false;  // httplib closes the connection: the server sees the client leave
    }
    return true;
  };

  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  r.sent_s = seconds_since(state.start, Clock::now());
  const bool sent = client.send(req, res, error);
  r.end_s = seconds_since(state.start, Clock::now());
  {
    std::lock_guard lock(state.mutex);
    state.clients.erase(&client);
    deadline = deadline || (!sent && state.stopping);
  }

  if (abandoned) {
    r.outcome = Outcome::cancelled;
    r.output_tokens = reader.content_events();
  } else if (deadline) {
    r.outcome = Outcome::failed;
    r.error = "stopped at the --timeout_s deadline";
  } else if (!sent) {
    r.outcome = Outcome::failed;
    // HTTP 0: no response line came back (a connection reset before the server answered).
    r.error = fmt::format("connection: {} after {} text events (HTTP {}, {:.3f} s){}", httplib::to_string(error),
                          reader.content_events(), r.http_status, r.end_s - r.sent_s,
                          reader.problem().empty() ? "" : " and a malformed stream: " + reader.problem());
  } else if (r.http_status != 200) {
    r.outcome = Outcome::failed;
    r.error = fmt::format("HTTP {}: {}", r.http_status, error_body);
  } else {
    check_response(p, reader, r);
  }
  return r;
}

void worker(const std::shared_ptr<RunState>& state) {
  for (;;) {
    size_t index = 0;
    {
      std::unique_lock lock(state->mutex);
      if (state->next >= state->plan.size()) break;
      index = state->next++;
      const auto arrival = state->start + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(state->plan[index].arrival_s));
      state->changed.wait_until(lock, arrival, [&] { return state->stopping.load(); });
      if (state->stopping) continue;  // left as not sent
      // Until it ends, a request counts as one the deadline cut off.
      state->records[index].outcome = Outcome::failed;
      state->records[index].error = "did not end within the --timeout_s deadline";
    }
    RequestRecord r = send_request(*state, index);
    std::lock_guard lock(state->mutex);
    state->records[index] = std::move(r);
  }
  std::lock_guard lock(state->mutex);
  --state->workers_running;
  state->changed.notify_all();
}

}  // namespace

std::string normalize_base_url(const std::string& url) {
  static const std::regex kBase(R"(^(https?)://(\[[0-9a-fA-F:]+\]|[^:/?#\[\]]+)(:\d{1,5})?/?$)");
  if (!std::regex_match(url, kBase)) {
    throw std::runtime_error(
        fmt::format("--url must be http://HOST[:PORT] (no path: the endpoints are /v1/... and /metrics), got '{}'", url));
  }
  return url.ends_with('/') ? url.substr(0, url.size() - 1) : url;
}

void validate(const LoadOptions& o) {
  auto require = [](bool ok, const std::string& message) {
    if (!ok) throw std::runtime_error(message);
  };
  require(o.requests >= 1, "--requests must be at least 1");
  require(o.concurrency >= 1, "--concurrency must be at least 1");
  require(o.request_rate > 0, "--request_rate must be positive (inf: all at once)");
  require(o.prompt_min >= 1 && o.prompt_min <= o.prompt_max,
          fmt::format("--prompt_tokens MIN,MAX needs 1 <= MIN <= MAX, got {},{}", o.prompt_min, o.prompt_max));
  require(o.shared_prefix >= 0, "--shared_prefix must not be negative");
  require(o.max_tokens >= 1, "--max_tokens must be at least 1");
  require(o.cancel_fraction >= 0 && o.cancel_fraction <= 1, "--cancel_fraction must be between 0 and 1");
  require(o.timeout_s > 0, "--timeout_s must be positive");
}

std::vector<PlannedRequest> plan_requests(const LoadOptions& o) {
  validate(o);
  std::mt19937_64 random(o.seed);
  std::uniform_int_distribution<int32_t> token(kFirstToken, kEndToken - 1);
  std::vector<int32_t> prefix(static_cast<size_t>(o.shared_prefix));
  for (int32_t& t : prefix) t = token(random);
  std::uniform_int_distribution<int64_t> length(o.prompt_min, o.prompt_max);
  std::bernoulli_distribution cancel(o.cancel_fraction);
  // Abandon after 1-3 text events (never after all: a 1-token answer cannot be cut short).
  std::uniform_int_distribution<int> cancel_after(1, static_cast<int>(std::clamp<int64_t>(o.max_tokens - 1, 1, 3)));
  std::exponential_distribution<double> gap(std::isinf(o.request_rate) ? 1.0 : o.request_rate);

  std::vector<PlannedRequest> plan(static_cast<size_t>(o.requests));
  double arrival = 0.0;
  for (size_t i = 0; i < plan.size(); ++i) {
    PlannedRequest& p = plan[i];
    p.prompt = prefix;
    p.prompt.resize(prefix.size() + static_cast<size_t>(length(random)));
    for (size_t k = prefix.size(); k < p.prompt.size(); ++k) p.prompt[k] = token(random);
    p.max_tokens = o.max_tokens;
    p.cancel_after = cancel(random) && o.max_tokens > 1 ? cancel_after(random) : 0;
    p.seed = o.seed + i;
    // Poisson arrivals: exponential gaps; the first request goes at once.
    if (i > 0 && !std::isinf(o.request_rate)) arrival += gap(random);
    p.arrival_s = arrival;
  }
  return plan;
}

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::completed: return "completed";
    case Outcome::failed: return "failed";
    case Outcome::cancelled: return "cancelled";
    case Outcome::not_sent: return "not sent";
  }
  return "?";
}

LoadRun run_load(const LoadTarget& target, const LoadOptions& options, const std::vector<PlannedRequest>& plan) {
  auto state = std::make_shared<RunState>();
  state->target = target;
  state->options = options;
  state->plan = plan;
  state->records.resize(plan.size());
  const int n_workers = static_cast<int>(std::min<int64_t>(options.concurrency, static_cast<int64_t>(plan.size())));
  state->workers_running = n_workers;
  state->start = Clock::now();
  const Clock::time_point deadline =
      state->start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.timeout_s));
  std::vector<std::thread> workers;
  for (int i = 0; i < n_workers; ++i) workers.emplace_back(worker, state);

  LoadRun run;
  std::unique_lock lock(state->mutex);
  if (!state->changed.wait_until(lock, deadline, [&] { return state->workers_running == 0; })) {
    run.deadline_hit = true;
    state->stopping = true;
    state->changed.notify_all();
    // stop() shuts a connection's socket; one that was just opening may miss the first call.
    const Clock::time_point give_up = Clock::now() + kStopGrace;
    while (state->workers_running > 0 && Clock::now() < give_up) {
      for (httplib::Client* c : state->clients) c->stop();
      state->changed.wait_for(lock, std::chrono::milliseconds(50), [&] { return state->workers_running == 0; });
    }
  }
  run.duration_s = seconds_since(state->start, Clock::now());
  run.records = state->records;  // a request still hung keeps its "did not end" record
  const bool all_ended = state->workers_running == 0;
  lock.unlock();
  for (std::thread& t : workers) {
    if (all_ended) {
      t.join();
    } else {
      t.detach();  // a connection stop() could not end; it holds its own share of the state
    }
  }
  return run;
}

std::optional<ServerCounters> read_server_counters(const LoadTarget& target) {
  httplib::Client client(target.base_url);
  client.set_connection_timeout(kConnectTimeoutS);
  client.set_read_timeout(kConnectTimeoutS);
  set_auth(client, target);
  const httplib::Result res = client.Get("/metrics");
  if (!res || res->status != 200) return std::nullopt;
  const PrometheusSamples s = parse_prometheus_text(res->body);
  const std::optional<double> running = sample(s, "llama3_requests_running");
  if (!running) return std::nullopt;
  ServerCounters c;
  c.requests_running = *running;
  c.prompt_tokens = sample(s, "llama3_prompt_tokens_total").value_or(0);
  c.prompt_tokens_cached = sample(s, "llama3_prompt_tokens_cached_total").value_or(0);
  c.generation_tokens = sample(s, "llama3_generation_tokens_total").value_or(0);
  c.preemptions = sample(s, "llama3_preemptions_total").value_or(0);
  c.requests_waiting = sample(s, "llama3_requests_waiting").value_or(0);
  c.kv_blocks_used = sample(s, "llama3_kv_blocks_used").value_or(0);
  c.kv_blocks_total = sample(s, "llama3_kv_blocks_total").value_or(0);
  c.logits_checked = sample(s, "llama3_logits_checked_total").value_or(0);
  c.logits_nonfinite = sample(s, "llama3_logits_nonfinite_total").value_or(0);
  c.resident_bytes = sample(s, "process_resident_memory_bytes").value_or(0);
  c.heap_in_use = sample(s, "llama3_heap_in_use_bytes").value_or(0);
  c.heap_free_held = sample(s, "llama3_heap_free_held_bytes").value_or(0);
  return c;
}

std::string first_model_id(const LoadTarget& target) {
  httplib::Client client(target.base_url);
  client.set_connection_timeout(kConnectTimeoutS);
  client.set_read_timeout(kConnectTimeoutS);
  set_auth(client, target);
  const httplib::Result res = client.Get("/v1/models");
  if (!res) throw std::runtime_error(fmt::format("cannot reach {}: {}", target.base_url, httplib::to_string(res.error())));
  if (res->status != 200) {
    throw std::runtime_error(fmt::format("GET {}/v1/models answered HTTP {}", target.base_url, res->status));
  }
  try {
    return json::parse(res->body).at("data").at(0).at("id").get<std::string>();
  } catch (const json::exception&) {
    throw std::runtime_error(fmt::format("GET {}/v1/models did not list a model", target.base_url));
  }
}

}  // namespace llama3::server
