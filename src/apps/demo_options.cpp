#include "apps/demo_options.h"

namespace llama3::apps {

void DemoOptions::add_to(CLI::App& app) {
  model.add_to(app);
  app.add_option("--input_prompts", input_prompts, "prompt file: JSON list of {prompt, context, max_length, image}");
  app.add_option("--instruct", instruct, "wrap prompts in the chat format (true|false)")->capture_default_str();
  app.add_option("--repeat_batches", repeat_batches, "consecutive batches, prompts rotated across users")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--max_seq_len", max_seq_len, "context length per user")
      ->check(CLI::Range(int64_t{2}, int64_t{131072}))
      ->capture_default_str();
  app.add_option("--batch_size", batch_size, "users decoded together")->check(CLI::Range(1, 32))->capture_default_str();
  app.add_option("--max_generated_tokens", max_generated_tokens, "tokens per user")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--paged_attention", paged_attention, "paged KV cache (false: contiguous max_seq_len per user)")
      ->capture_default_str();
  app.add_option("--page_params", page_params,
                 "JSON: page_block_size, page_max_num_blocks (default: blocks of 32, as many as --kv_memory holds)");
  app.add_option("--kv_memory", kv_memory,
                 "GiB for the KV cache (default: 90% of the memory available beside the weights, at most the "
                 "batch at max_seq_len)")
      ->check(CLI::PositiveNumber);
  app.add_option("--sampling_params", sampling_params, "JSON: temperature (0 = argmax), top_p, top_k, seed")
      ->capture_default_str();
  app.add_option("--stress_test", stress_test, "sustained decode, users recycled at max_seq_len")->capture_default_str();
  app.add_option("--start_pos", start_pos, "absolute position of every prompt's first token (RoPE offset)")
      ->check(CLI::Range(int64_t{0}, int64_t{131070}))
      ->capture_default_str();
  app.add_option("--FAKE_DEVICE", fake_device,
                 "the original's mesh presets: N150 (1x1), N300 (2x1), T3K (8x1), TG (8x4); the same as --mesh")
      ->check(CLI::IsMember({"N150", "N300", "T3K", "TG"}))
      ->each([](const std::string& text) { command_line_mesh().fake_device = text; });
  app.add_option("--report", report, "write the full report as JSON");
  app.add_option("--tokenizer", tokenizer, "tokenizer.json or tokenizer.model (default: with the weights, else built-in)");
  app.add_flag("--print_all_users", print_all_users, "stream every user's text, not only user 0's");
  app.add_option("--continuous_batching", continuous_batching, "refill a finished user's slot at once")
      ->capture_default_str();
  app.add_flag("--tsu_check", tsu_check, "fail when more than 20 iterations miss the tokens/s/user target");
  app.add_option("--tsu_targets", tsu_targets, "targets table (default demo/tsu_targets.json)");
  app.add_option("--prefill_chunk", prefill_chunk, "prompt tokens per prefill forward pass")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--step_tokens", step_tokens,
                 "tokens per forward pass: decoding users first, then prompt chunks (0: --prefill_chunk; larger "
                 "budgets prefill several users' prompts in one pass)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--prefix_caching", prefix_caching,
                 "share the KV blocks of whole prompt chunks that users have in common (paged only)")
      ->capture_default_str();
}

}  // namespace llama3::apps
