#pragma once
// llama3's public C++ API: load a Llama 3 model once, then submit generation requests from any
// thread. A background thread runs the scheduler: requests join the running batch at the next
// step and leave when they finish; long prompts are prefilled in chunks between the decode steps
// of the running requests (a token budget per step); full KV blocks are shared between requests
// with the same prefix (prefix caching); when the KV pool runs out the youngest request is
// preempted and resumed later with its text unchanged.
//
// Nothing here exposes kernels, tensors or file formats. Errors are llama3::EngineError (a
// std::runtime_error) with a one-line message.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace llama3 {

class EngineError : public std::runtime_error {
 public:
  enum class Kind {
    invalid_request,  // the request cannot be served as given (400 in HTTP terms)
    queue_full,       // too many requests waiting (429)
    shutting_down,    // the engine is stopping (503)
  };
  EngineError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

// Which model, as the CLI's model options say it (`llama3 --help`).
struct ModelSpec {
  std::string preset = "Llama-3.2-1B";      // random weights of this preset's shape
  std::optional<std::string> weights;       // random | instruct | general; unset: a checkpoint if configured
  std::optional<std::string> model_dir;     // a Meta or Hugging Face folder, or a .gguf file
  std::optional<int64_t> layers;            // keep the first N layers
  uint64_t seed = 0;                        // random weights
  std::optional<std::string> optimizations; // performance | accuracy | bf16 | native
  std::optional<std::string> precision;     // JSON overrides of single keys
  std::optional<std::string> kv_cache;      // bf16 | f32 | q8
  bool weight_cache = true;
  std::optional<std::string> tokenizer;     // tokenizer.json / tokenizer.model; default: with the weights, else built in
  // N150 | N300 | T3K | TG or TxD: more than one rank splits the model over the ranks of the MPI
  // job this process is rank 0 of (the others run the binary's follower loop); also names the
  // weight cache's folder.
  std::string mesh = "N150";
  std::string mesh_payload = "fp32";  // the all-reduces' payload on a mesh: fp32 | bf16 (half the bytes)
  int threads = 0;                    // worker threads of a mesh's other ranks (0: each rank's default)
};

// What one scheduler step did (EngineOptions::on_step).
struct StepStats {
  int64_t step = 0;            // 0, 1, 2, ...
  double ms = 0.0;             // the step's wall time (forward pass, sampling, callbacks)
  int decode_tokens = 0;       // requests that advanced one token
  int64_t prefill_tokens = 0;  // prompt tokens computed (prefix-cache hits excluded)
  int running = 0;             // requests holding a slot after the step
  int64_t waiting = 0;         // requests queued after the step
  int64_t kv_blocks_used = 0;  // held by the running requests during the step's forward pass
};

struct EngineOptions {
  ModelSpec model;
  int max_batch = 32;            // requests decoding together (1..32)
  int64_t max_seq_len = 8192;    // prompt + generated tokens of one request
  int64_t max_queue = 256;       // requests waiting beyond the running batch; more: queue_full
  int64_t prefill_chunk = 256;   // prompt tokens per forward pass of a prefill
  int64_t step_tokens = 512;     // token budget of one step: decode tokens first, then prefill chunks
  bool prefix_caching = true;
  std::optional<double> kv_memory_gb;  // KV pool size; default: what fits beside the weights with a margin
  std::optional<int64_t> kv_blocks;    // exact number of KV blocks (tests); overrides kv_memory_gb
  int64_t block_size = 32;
  // Plan against this many GiB instead of what the machine has (MemAvailable, lowered to the
  // cgroup's limit): the weights, the KV pool, the activations and the runtime must fit, or the
  // constructor refuses before loading anything.
  std::optional<double> memory_limit_gb;
  // RoPE position of every prompt's first token (the original demo's start_pos): prompts run as
  // if that many tokens preceded them. 0 for normal use.
  int64_t position_offset = 0;
  // Check every row of logits for NaN/Inf before sampling; a request that meets one fails with
  // an error naming the position (the stress test runs with it).
  bool check_finite = false;
  // The original demo's static batches: while any running request is still being prefilled,
  // no request decodes, so every decode step is a pure decode step and a request's time to first
  // token is its own prefill. Off for serving, where decoding users must not stall behind every
  // newcomer's prompt.
  bool decode_waits_for_prefill = false;
  // Called after every step on the engine's thread (keep it short): per-step timing for the
  // demo's iteration lines and reports.
  std::function<void(const StepStats&)> on_step;
};

struct SamplingOptions {
  float temperature = 0.6f;  // 0: greedy
  float top_p = 0.9f;
  int top_k = 32;            // 0: no limit
  uint64_t seed = 42;
};

struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
  // Vision models: how many of the request's images come at the start of this message's content
  // (Meta's chat format puts the image items before the text; each becomes one <|image|> token).
  int images = 0;
};

struct GenerationRequest {
  // Exactly one of these: token ids, a raw text prompt (encoded with one BOS), or chat messages
  // (Llama 3 chat format, ending with the assistant header).
  std::vector<int32_t> prompt_tokens;
  std::optional<std::string> prompt_text;
  std::vector<ChatMessage> messages;
  // Vision models (Llama 3.2 11B Vision): PNG or JPEG file contents, one per <|image|> of the
  // prompt, in order. Token ids mark each with the image token (ModelInfo::image_token_id); a text
  // with "<|image|>" where each goes, or with none (all images right after the BOS); chat messages
  // with ChatMessage::images.
  std::vector<std::string> images;

  SamplingOptions sampling;
  int64_t max_tokens = 128;            // generated tokens at most (>= 1)
  std::vector<int32_t> stop_tokens;    // besides the model's end-of-turn tokens
  bool ignore_eos = false;             // do not stop at the model's end-of-turn tokens
  int top_logprobs = -1;               // -1: no log-probabilities; 0..20: the token's and the top N
  // Random stream of the sampler: the same seed, stream and prompt give the same text whatever
  // else runs (0 unless the caller wants several different samples from one seed).
  uint64_t sampler_stream = 0;
  // Prefix caching normally reuses only whole prefill chunks of a cached prompt prefix, so the
  // text never depends on what was cached. true: reuse every cached full block, so a
  // conversation's next turn prefills little more than the new message (the rest of its chunk
  // then runs at other boundaries, and the logits may differ from an uncached run in the last
  // bits). Send the conversation as token ids, the previous turns exactly as they were
  // generated, for the blocks to match.
  bool reuse_all_cached_blocks = false;
};

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
};

struct TokenEvent {
  int32_t token = 0;
  std::string text;  // the bytes this token completes (UTF-8 kept whole across tokens)
  std::optional<TokenLogprob> logprob;
  std::vector<TokenLogprob> top_logprobs;
};

enum class FinishReason { stop, length, cancelled, error };

struct Completion {
  FinishReason reason = FinishReason::stop;
  std::string error;                 // reason == error: what went wrong
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;  // of which came from the prefix cache
  int64_t completion_tokens = 0;
  double ttft_ms = 0.0;              // submit to first token
  double total_ms = 0.0;
  int64_t preemptions = 0;           // times it gave its KV blocks back and waited again
  // reason == stop: the token that ended it (its text is not part of the reply, so on_token may
  // not have been called for it).
  std::optional<int32_t> stop_token;
};

// Called on the engine's thread: keep them short (copy, push to a queue, notify).
struct RequestCallbacks {
  std::function<void(const TokenEvent&)> on_token;
  std::function<void(const Completion&)> on_done;  // exactly once per accepted request
};

struct EngineMetrics {
  int64_t requests_waiting = 0;
  int64_t requests_running = 0;
  int64_t requests_finished = 0;  // stop or length
  int64_t requests_cancelled = 0;
  int64_t requests_failed = 0;
  int64_t prompt_tokens = 0;
  int64_t prompt_tokens_cached = 0;  // prompt tokens served from the prefix cache
  int64_t generated_tokens = 0;
  int64_t preemptions = 0;
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;    // held by running requests
  int64_t kv_blocks_cached = 0;  // free but holding a reusable prefix
  int64_t steps = 0;
  int64_t logits_checked = 0;    // rows checked for NaN/Inf (EngineOptions::check_finite)
  int64_t logits_nonfinite = 0;  // of those, rows holding NaN/Inf (their requests failed)
};

struct ModelInfo {
  std::string name;        // e.g. Llama-3.2-1B
  int64_t n_layers = 0;
  int64_t vocab_size = 0;
  int64_t max_seq_len = 0; // the engine's limit per request
  bool vision = false;      // takes images (GenerationRequest::images)
  int64_t image_token_id = -1;  // the <|image|> token of a vision model (vocab_size: 128256)
  int64_t max_images = 0;       // images per request
  std::string weights;     // random | instruct | general
  std::string format;      // random | meta | huggingface | gguf
  std::string optimizations;     // the precision mode: performance | accuracy | bf16 | native
  std::string precision;         // every matrix's format as JSON, e.g. {"ff1_3":"q4",...,"kv_cache":"bf16"}
  std::string kv_cache;          // bf16 | f32 | q8
  int64_t kv_blocks = 0;         // the KV pool
  int64_t kv_block_size = 0;
  size_t kv_cache_bytes = 0;
  double load_seconds = 0.0;
  std::string weight_cache;      // what the weight cache did (built, used, off, ...)
};

// The memory an engine with these options would need, against what is available
// (Engine::plan_memory): nothing is loaded.
struct MemoryPlanReport {
  std::string text;    // the plan, a few lines: each part, the total, the memory available, the verdict
  bool fits = true;
  std::string error;   // !fits: the one-line error the constructor would throw
};

class Engine {
 public:
  // What the constructor would allocate, found from the model's config alone. Throws EngineError
  // on options the constructor would refuse for other reasons.
  static MemoryPlanReport plan_memory(const EngineOptions& options);

  // Loads the model and starts the scheduler thread. Throws EngineError on bad options or a
  // model that cannot be loaded.
  explicit Engine(const EngineOptions& options);
  ~Engine();  // cancels what is still running (on_done with cancelled) and joins the thread
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates and queues a request; returns its id. Throws EngineError (invalid_request,
  // queue_full, shutting_down) without calling any callback.
  uint64_t submit(GenerationRequest request, RequestCallbacks callbacks);
  // Stops a request at the next step (its blocks are freed at once); on_done gets cancelled.
  // Unknown or finished ids are ignored.
  void cancel(uint64_t id);

  // The request's prompt as token ids, as submit() would encode it (for counting and checks).
  std::vector<int32_t> encode_prompt(const GenerationRequest& request) const;
  // Decodes and checks the request's images against its prompt as submit() would (the count,
  // the files, the limits), throwing its EngineError: callers that prepare requests ahead (the
  // demo) report a bad image per request, not when submitting.
  void check_images(const GenerationRequest& request) const;
  std::string decode(const std::vector<int32_t>& tokens) const;

  EngineMetrics metrics() const;
  const ModelInfo& model_info() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llama3
