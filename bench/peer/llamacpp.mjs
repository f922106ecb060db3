#!/usr/bin/env node
// The llama.cpp side of the side-by-side benchmark: prebuilt llama.cpp CPU binaries driven through
// node-llama-cpp (installed by bench/peer/install.sh). Measures prefill, batch-1 decode and batched
// decode under the hygiene rules of measure.mjs, and records llama.cpp's teacher-forced top-k
// predictions and greedy continuations for the accuracy comparison. See README.md for the JSON.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve, basename } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import * as measure from "./measure.mjs";

const USAGE = `usage: node bench/peer/llamacpp.mjs --model F.gguf --threads N [--json OUT]
  [--prompt_tokens FILE.json] [--pp 512] [--tg 128] [--batched 8,32] [--batched_tg 128]
  [--short_prompt 16] [--depth 0] [--ubatch 0] [--kv_type f16|q8_0] [--reps 5] [--teacher_forced FILE.json]
  [--greedy N] [--flash_attn auto|on|off] [--idle_timeout 120] [--max_redos 5]
--pp 0 / --tg 0 skip those measurements; token files hold a JSON array of ids (or {"tokens": [...]}).
--depth N decodes after N prompt tokens (llama-bench's -d) instead of --short_prompt; --ubatch N feeds
prefills N tokens per llama_decode (0: all at once).`;

const HERE = dirname(fileURLToPath(import.meta.url));
const PEER_DIR = resolve(process.env.PEER_DIR ?? join(HERE, "../../.cache/peer"));
const BOS = 128000;

class UsageError extends Error {}

function parse_options() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        model: { type: "string" }, threads: { type: "string" }, json: { type: "string" },
        prompt_tokens: { type: "string" }, pp: { type: "string", default: "512" },
        tg: { type: "string", default: "128" }, batched: { type: "string", default: "" },
        batched_tg: { type: "string", default: "128" }, short_prompt: { type: "string", default: "16" },
        depth: { type: "string", default: "0" }, ubatch: { type: "string", default: "0" },
        kv_type: { type: "string", default: "f16" },
        reps: { type: "string", default: "5" }, teacher_forced: { type: "string" },
        greedy: { type: "string", default: "0" }, flash_attn: { type: "string", default: "auto" },
        idle_timeout: { type: "string", default: String(measure.DEFAULTS.idle_timeout_s) },
        max_redos: { type: "string", default: String(measure.DEFAULTS.max_redos) },
        help: { type: "boolean" },
      },
    }));
  } catch (e) {
    throw new UsageError(e.message);
  }
  if (values.help) { console.log(USAGE); process.exit(0); }
  const int = (name, min) => {
    const v = Number(values[name]);
    if (!Number.isInteger(v) || v < min) throw new UsageError(`--${name} must be an integer >= ${min}, got '${values[name]}'`);
    return v;
  };
  if (!values.model) throw new UsageError("--model is required");
  if (!existsSync(values.model)) throw new UsageError(`--model: no such file: ${values.model}`);
  if (values.threads === undefined) throw new UsageError("--threads is required");
  if (!["auto", "on", "off"].includes(values.flash_attn)) throw new UsageError("--flash_attn must be auto, on or off");
  if (!["f16", "q8_0"].includes(values.kv_type)) throw new UsageError("--kv_type must be f16 or q8_0");
  const batched = values.batched === "" ? [] : values.batched.split(",").map((s) => {
    const v = Number(s);
    if (!Number.isInteger(v) || v < 1) throw new UsageError(`--batched: '${s}' is not a positive integer`);
    return v;
  });
  return {
    model: resolve(values.model), threads: int("threads", 1), json: values.json,
    prompt_tokens: values.prompt_tokens, pp: int("pp", 0), tg: int("tg", 0), batched,
    batched_tg: int("batched_tg", 1), short_prompt: int("short_prompt", 1), reps: int("reps", 1),
    depth: int("depth", 0), ubatch: int("ubatch", 0), kv_type: values.kv_type.toUpperCase(),
    teacher_forced: values.teacher_forced, greedy: int("greedy", 0),
    flash_attn: { auto: "auto", on: true, off: false }[values.flash_attn],
    hygiene: { idle_timeout_s: int("idle_timeout", 0), max_redos: int("max_redos", 0) },
  };
}

function read_tokens(path, what, n_vocab) {
  let data;
  try {
    data = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new UsageError(`${what} ${path}: ${e.message}`);
  }
  const tokens = Array.isArray(data) ? data : data?.tokens;
  if (!Array.isArray(tokens) || tokens.length === 0) throw new UsageError(`${what} ${path}: expected a non-empty JSON array of token ids or {"tokens": [...]}`);
  const bad = tokens.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= n_vocab);
  if (bad >= 0) throw new UsageError(`${what} ${path}: entry ${bad} (${JSON.stringify(tokens[bad])}) is not a token id of this model (vocabulary of ${n_vocab})`);
  return tokens;
}

// The default prompt when no file is given: BOS, then ids spread over the ordinary vocabulary by a
// fixed stride. Written into the JSON so the other side can use the very same list.
function default_prompt(n) {
  return Array.from({ length: n }, (_, i) => (i === 0 ? BOS : (i * 7919) % 128000));
}

async function load_node_llama_cpp() {
  const require = createRequire(join(PEER_DIR, "package.json"));
  let entry;
  try {
    entry = require.resolve("node-llama-cpp");
  } catch (e) {
    throw new Error(`node-llama-cpp is not installed in ${PEER_DIR} (run bench/peer/install.sh): ${e.message}`);
  }
  const nlc = await import(pathToFileURL(entry).href);
  return { nlc, version: await nlc.getModuleVersion() };
}

// llama.cpp's own counters (llama_perf_context): decode time measured inside llama_decode +
// llama_synchronize, per context. node-llama-cpp exposes them only as the log lines of
// llama_perf_context_print (printTimings), which also resets them; the logger below captures them.
// The logger also keeps the log line that says how flash attention "auto" resolved.
class NativeTimer {
  constructor() { this.capturing = null; this.notes = []; }
  logger(level, message) {
    if (this.capturing) this.capturing.push(message);
    else if (level === "error" || level === "fatal" || level === "warn") process.stderr.write(`llama.cpp ${level}: ${message}\n`);
    else if (/Flash Attention/.test(message)) this.notes.push(message.trim());
  }
  // Returns { ms, tokens, multi_token_tokens, single_token_runs } since the last call (or the
  // context's creation) and resets the counters. llama.cpp files a decode of several tokens under
  // "prompt eval" and a decode of one token under "eval", whatever the phase.
  async take(context) {
    this.capturing = [];
    await context.printTimings();
    const text = this.capturing.join("\n");
    this.capturing = null;
    const p = /prompt eval time =\s*([\d.]+) ms \/\s*(\d+) tokens/.exec(text);
    const e = /print:\s+eval time =\s*([\d.]+) ms \/\s*(\d+) runs/.exec(text);
    if (!p || !e) return null;
    // llama_perf_context reports a count of 0 as 1 (it divides by it): a zero time means none.
    const p_ms = Number(p[1]), e_ms = Number(e[1]);
    const multi = p_ms > 0 ? Number(p[2]) : 0, single = e_ms > 0 ? Number(e[2]) : 0;
    return { ms: p_ms + e_ms, tokens: multi + single, multi_token_tokens: multi, single_token_runs: single };
  }
}

function loaded_cpu_backend() {
  const libs = readFileSync("/proc/self/maps", "utf8").split("\n").map((l) => l.split(/\s+/)[5]).filter((p) => p && /libggml-cpu[^/]*\.so/.test(p));
  return [...new Set(libs)];
}

class Peer {
  constructor(model, options, timer) {
    Object.assign(this, { model, options, timer });
  }

  async context(sequences, per_sequence_ctx, batch_size) {
    // node-llama-cpp sets n_ubatch = n_batch: batchSize is the tokens of one llama_decode.
    const ctx = await this.model.createContext({
      sequences, contextSize: per_sequence_ctx, batchSize: batch_size, threads: this.options.threads,
      flashAttention: this.options.flash_attn, performanceTracking: true,
      ...(this.options.kv_type === "F16" ? {} : {
        experimentalKvCacheKeyType: this.options.kv_type, experimentalKvCacheValueType: this.options.kv_type,
      }),
    });
    if (ctx.currentThreads !== this.options.threads) throw new Error(`llama.cpp context runs ${ctx.currentThreads} threads, not ${this.options.threads}`);
    return ctx;
  }

  // Tokens per llama_decode of a prefill of n tokens.
  ubatch(n) {
    return this.options.ubatch > 0 ? Math.min(n, this.options.ubatch) : n;
  }

  // Prefill of `tokens` in a fresh context, logits for the last position only (as llama-bench).
  async prefill(tokens) {
    const ctx = await this.context(1, tokens.length + 1, this.ubatch(tokens.length));
    try {
      const seq = ctx.getSequence();
      const input = tokens.map((t, i) => (i === tokens.length - 1 ? [t, { generateNext: { token: true } }] : t));
      const t0 = performance.now();
      await seq.controlledEvaluate(input);
      const wall_s = (performance.now() - t0) / 1000;
      return { wall_s, native: await this.timer.take(ctx), tokens: tokens.length };
    } finally {
      await ctx.dispose();
    }
  }

  // `sequences` sequences decode `n` tokens each, in lockstep (one llama_decode of `sequences`
  // tokens per step), after each has been prefilled with `prompt` (untimed). Greedy, EOS ignored.
  // Returns null when `signal` fires (a disturbed run, to be redone).
  async decode(sequences, prompt, n, signal) {
    const ctx = await this.context(sequences, prompt.length + n + 1, Math.max(sequences, this.ubatch(prompt.length)));
    const its = [];
    try {
      const seqs = Array.from({ length: sequences }, () => ctx.getSequence());
      if (prompt.length > 1) await Promise.all(seqs.map((s) => s.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1))));
      await this.timer.take(ctx); // resets the counters: the prefill is not timed
      for (const s of seqs) its.push(s.evaluate(prompt.slice(-1), { yieldEogToken: true }));
      const t0 = performance.now();
      for (let step = 0; step < n; ++step) {
        if (signal?.aborted) return null;
        const results = await Promise.all(its.map((it) => it.next()));
        if (results.some((r) => r.done)) throw new Error(`llama.cpp stopped generating at step ${step}`);
      }
      const wall_s = (performance.now() - t0) / 1000;
      return { wall_s, native: await this.timer.take(ctx), tokens: sequences * n };
    } finally {
      await Promise.all(its.map((it) => it.return()));
      await ctx.dispose();
    }
  }

  async greedy(prompt, n) {
    const ctx = await this.context(1, prompt.length + n + 1, prompt.length);
    try {
      const out = [];
      for await (const token of ctx.getSequence().evaluate(prompt, { yieldEogToken: true })) {
        out.push(token);
        if (out.length === n) break;
      }
      return out;
    } finally {
      await ctx.dispose();
    }
  }

  // One pass over `tokens` with the logits of every position: entry i is llama.cpp's prediction
  // for the token after tokens[0..i].
  async teacher_forced(tokens) {
    const ctx = await this.context(1, tokens.length + 1, tokens.length);
    try {
      const next = { token: true, logits: { filter: { tokens: [], includeTop: 5 } } };
      const out = await ctx.getSequence().controlledEvaluate(tokens.map((t) => [t, { generateNext: next }]));
      return tokens.map((_, i) => {
        const r = out[i]?.next;
        if (r?.token == null || r.logits == null) throw new Error(`llama.cpp returned no logits for position ${i}`);
        const top5 = [...r.logits.entries()].slice(0, 5);
        return { top1: r.token, logit: r.logits.get(r.token) ?? null, top5: top5.map(([t]) => t), top5_logits: top5.map(([, l]) => l) };
      });
    } finally {
      await ctx.dispose();
    }
  }
}

// Runs `once({signal})` (returning {wall_s, native, tokens}) for `reps` undisturbed repetitions
// after one untimed warm-up, and summarizes tokens/s by wall clock and by llama.cpp's counters.
async function rate(name, options, once) {
  process.stderr.write(`${name}: warm-up\n`);
  await once({});
  let rep = 0;
  const progress = (line) => process.stderr.write(`${name} run ${++rep}: ${line}\n`);
  const runs = await measure.repeat(options.reps, once, { ...options.hygiene, progress });
  const wall = runs.map((r) => measure.round(r.result.tokens / r.result.wall_s, 2));
  const native = runs.map((r) => (r.result.native?.tokens === r.result.tokens ? measure.round(r.result.tokens / (r.result.native.ms / 1000), 2) : null));
  const native_ok = native.every((v) => v !== null);
  return {
    tokens_per_s: {
      wall: measure.summarize(wall),
      native: native_ok ? measure.summarize(native) : { error: "llama.cpp's counters did not count the expected tokens", counted: runs.map((r) => r.result.native) },
    },
    native_counters: runs.map((r) => r.result.native),
    hygiene: measure.hygiene(runs),
  };
}

// JSON with one line per small object and per array of numbers, so token lists stay readable.
function to_json(v, indent = "") {
  const flat = JSON.stringify(v);
  if (v === null || typeof v !== "object" || flat.length <= 250 || (Array.isArray(v) && v.every((x) => x === null || typeof x !== "object"))) return flat;
  const inner = indent + " ";
  const items = Array.isArray(v) ? v.map((x) => inner + to_json(x, inner)) : Object.entries(v).map(([k, x]) => `${inner}${JSON.stringify(k)}: ${to_json(x, inner)}`);
  const [open, close] = Array.isArray(v) ? ["[", "]"] : ["{", "}"];
  return `${open}\n${items.join(",\n")}\n${indent}${close}`;
}

async function main() {
  const options = parse_options();
  const { nlc, version } = await load_node_llama_cpp();
  const timer = new NativeTimer();
  const llama = await nlc.getLlama({
    gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true, progressLogs: false,
    maxThreads: 0, // no cap: the context's `threads` is then the exact thread count
    logLevel: nlc.LlamaLogLevel.info, logger: (level, message) => timer.logger(level, message),
  });
  const model = await llama.loadModel({ modelPath: options.model, gpuLayers: 0 });
  const peer = new Peer(model, options, timer);
  const n_vocab = model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length ?? Infinity; // llama.cpp checks too

  const from_file = options.prompt_tokens !== undefined;
  const prompt = from_file ? read_tokens(options.prompt_tokens, "--prompt_tokens", n_vocab) : default_prompt(Math.max(options.pp, options.short_prompt, options.depth));
  if (options.pp > prompt.length) throw new UsageError(`--pp ${options.pp} needs ${options.pp} prompt tokens, ${options.prompt_tokens} has ${prompt.length}`);
  if (options.depth > prompt.length) throw new UsageError(`--depth ${options.depth} needs ${options.depth} prompt tokens, ${options.prompt_tokens} has ${prompt.length}`);
  const short = prompt.slice(0, Math.min(options.short_prompt, prompt.length));
  const tg_prompt = options.depth > 0 ? prompt.slice(0, options.depth) : short;

  const backend = loaded_cpu_backend();
  const report = {
    peer: {
      engine: "llama.cpp (prebuilt CPU binaries via node-llama-cpp)",
      node_llama_cpp: version,
      llama_cpp_release: llama.llamaCppRelease,
      build_type: llama.buildType,
      cpu_backend: backend.map((p) => basename(p)),
      cpu_backend_path: backend,
      system_info: llama.systemInfo,
    },
    machine: { cpu: cpus()[0]?.model, logical_cpus: cpus().length, loadavg_at_start: loadavg(), node: process.version },
    model: { path: options.model, size_bytes: model.size, description: model.typeDescription },
    settings: {
      threads: options.threads, reps: options.reps, warmup_runs: 1, short_prompt_tokens: short.length,
      depth: options.depth, ubatch: options.ubatch || "all",
      flash_attn: { requested: options.flash_attn, resolved: null },
      kv_cache_type: options.kv_type === "F16" ? (nlc.GgmlType[model.defaultContextKvCacheKeyType] ?? model.defaultContextKvCacheKeyType) : options.kv_type,
      sampling: "greedy (argmax), EOS ignored",
    },
    hygiene_rules: { ...measure.DEFAULTS, ...options.hygiene },
    timing: {
      wall: "performance.now() around the node-llama-cpp calls of the timed phase: llama_decode plus the wrapper's JS batching, sampling (argmax over the vocabulary per sequence and step) and N-API round trips",
      native: "llama.cpp's own counters (llama_perf_context: t_p_eval_ms + t_eval_ms) for the same phase: llama_decode + llama_synchronize only",
    },
    prompt: { source: from_file ? resolve(options.prompt_tokens) : "default", n_tokens: prompt.length, tokens: prompt },
  };
  const say = (s) => process.stderr.write(s + "\n");
  const line = (name, r) => say(`${name}: ${r.tokens_per_s.wall.best} tok/s wall best (median ${r.tokens_per_s.wall.median}), native best ${r.tokens_per_s.native.best ?? "n/a"} (median ${r.tokens_per_s.native.median ?? "n/a"})${r.hygiene.disturbed_runs_kept ? ` [${r.hygiene.disturbed_runs_kept} disturbed]` : ""}`);
  say(`llama.cpp ${JSON.stringify(llama.llamaCppRelease)} ${report.peer.cpu_backend.join(",")}, ${options.threads} threads, ${basename(options.model)}`);

  if (options.pp > 0) {
    const r = await rate(`pp${options.pp}`, options, () => peer.prefill(prompt.slice(0, options.pp)));
    report.pp = { n_tokens: options.pp, ...r };
    line(`pp${options.pp}`, r);
  }
  if (options.tg > 0) {
    const name = `tg${options.tg}${options.depth > 0 ? ` @ d${options.depth}` : ""}`;
    const r = await rate(name, options, ({ signal }) => peer.decode(1, tg_prompt, options.tg, signal));
    report.tg = { n_tokens: options.tg, prompt_tokens: tg_prompt.length, ...r };
    line(name, r);
  }
  if (options.batched.length) report.batched = [];
  for (const s of options.batched) {
    const r = await rate(`batched ${s}x${options.batched_tg}`, options, ({ signal }) => peer.decode(s, short, options.batched_tg, signal));
    report.batched.push({ sequences: s, tokens_per_sequence: options.batched_tg, prompt_tokens: short.length, ...r });
    line(`batched ${s}x${options.batched_tg}`, r);
  }
  if (options.teacher_forced !== undefined) {
    const tokens = read_tokens(options.teacher_forced, "--teacher_forced", n_vocab);
    report.teacher_forced = { source: resolve(options.teacher_forced), n_tokens: tokens.length, tokens, positions: await peer.teacher_forced(tokens) };
    say(`teacher_forced: ${tokens.length} positions`);
  }
  if (options.greedy > 0) {
    const p = from_file ? prompt : short;
    report.greedy = { prompt_tokens: p.length, n_tokens: options.greedy, tokens: await peer.greedy(p, options.greedy) };
    say(`greedy: ${report.greedy.tokens.slice(0, 16).join(" ")}${options.greedy > 16 ? " ..." : ""}`);
  }

  // Known once a context has been made: llama.cpp logs how "auto" resolved.
  const flash = timer.notes.findLast((l) => /Flash Attention (enabled|disabled)/.test(l));
  report.settings.flash_attn.resolved = flash ? /enabled/.test(flash) : null;

  const json = to_json(report);
  if (options.json) writeFileSync(options.json, json + "\n");
  else process.stdout.write(json + "\n");
  await model.dispose();
  await llama.dispose();
}

main().catch((e) => {
  process.stderr.write(e instanceof UsageError ? `llamacpp.mjs: ${e.message}\n${USAGE}\n` : `llamacpp.mjs: ${e.stack ?? e}\n`);
  process.exit(e instanceof UsageError ? 2 : 1);
});
