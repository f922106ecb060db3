// The JSON a user gives on the command line or in files: the demo's prompt file,
// --sampling_params, --page_params, --precision, and the checkpoint config readers (Meta's
// params.json, Hugging Face's config.json). The first byte picks the parser, the rest is the text.
// Properties: rejected input is a llama3::Error with a message; accepted values are in range
// (sampling parameters pass their own validation, a config passes ModelConfig::validate).
#include "fuzz_support.h"
#include "model/model_config.h"
#include "model/precision.h"
#include "runtime/kv_pool_plan.h"
#include "runtime/prompt_file.h"
#include "runtime/sampler.h"

using namespace llama3;

namespace {

void config_file(const char* name, std::span<const uint8_t> text) {
  const std::filesystem::path dir = fuzz::scratch_dir() / "ckpt";
  std::filesystem::create_directories(dir);
  std::filesystem::remove(dir / "params.json");
  std::filesystem::remove(dir / "config.json");
  std::filesystem::rename(fuzz::write_scratch("c.json", text), dir / name);
  model::ModelConfig c;
  if (fuzz::accepts([&] { c = model::load_model_config(dir); })) {
    fuzz::accepts([&] { c.validate(); });
    fuzz::require(c.dim > 0 && c.n_layers > 0 && c.n_heads > 0 && c.n_kv_heads > 0 && c.vocab_size > 0,
                  "a config with a non-positive size was accepted");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::span<const uint8_t> rest(data + 1, size - 1);
  const std::string_view text(reinterpret_cast<const char*>(rest.data()), rest.size());
  switch (data[0] % 6) {
    case 0: {
      std::vector<runtime::PromptSpec> prompts;
      if (fuzz::accepts([&] { prompts = runtime::load_prompt_file(fuzz::write_scratch("prompts.json", rest)); })) {
        fuzz::require(!prompts.empty(), "an empty prompt list was accepted");
        for (const auto& p : prompts) fuzz::require(!p.prompt.empty() && p.max_length >= -1, "a bad prompt entry was accepted");
      }
      break;
    }
    case 1: {
      runtime::SamplingParams p;
      if (fuzz::accepts([&] { p = runtime::parse_sampling_params(text); })) {
        if (!fuzz::accepts([&] { runtime::validate_sampling_params(p); })) fuzz::finding("parsed sampling params fail validation");
      }
      break;
    }
    case 2: {
      runtime::KvPoolRequest r;
      if (fuzz::accepts([&] { runtime::parse_page_params(text, r); })) {
        fuzz::require(r.block_size.value_or(1) > 0 && r.num_blocks.value_or(1) > 0, "non-positive page params accepted");
      }
      break;
    }
    case 3:
      fuzz::accepts([&] { (void)model::make_precision("performance", text); });
      break;
    case 4:
      config_file("params.json", rest);
      break;
    default:
      config_file("config.json", rest);
  }
  return 0;
}
