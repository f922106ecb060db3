#pragma once
// What an engine with given options will allocate, found before loading: the model's shape and
// precision, the KV pool's size and the memory plan. The engine's constructor and
// Engine::plan_memory (--dry_run) share it, so the plan printed is the plan enforced.
#include "llama3/engine.h"
#include "model/model_factory.h"
#include "runtime/kv_pool_plan.h"
#include "runtime/memory_plan.h"

namespace llama3::runtime {

struct EnginePlan {
  model::ModelRequest request;
  model::ModelPlan model;
  KvPoolPlan pool;
  MemoryPlan memory;
};

// Throws llama3::Error on invalid options (the constructor turns it into EngineError).
EnginePlan plan_engine(const EngineOptions& options);

}  // namespace llama3::runtime
