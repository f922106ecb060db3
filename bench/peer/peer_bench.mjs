#!/usr/bin/env node
// `make peer-bench`: our engine and llama.cpp side by side on the same machine, the same GGUF
// files, the same threads and the same prompt tokens, in one run.
//  1. writes the preset's random weights once (BF16, Q8_0 and Q4_0 GGUF files, and the Hugging Face
//     folder) with `llama3 convert` under --dir;
//  2. for each file: `llama3 bench` (ours: read bandwidth and compute peaks of this run, prefill,
//     batch-1 decode, aggregate decode) and bench/peer/llamacpp.mjs (llama.cpp: the same figures,
//     native decode time and wall time), both under measure.mjs's idle/disturbance rules;
//  3. ours on the Hugging Face folder in our own modes (performance, accuracy), for reference;
//  4. the cross-check that both engines compute the same model: BF16, teacher-forced over 256
//     tokens of text, top-1 agreement; greedy continuations compared up to the first near tie;
//  5. prints one table and writes JSON (--json) and a Markdown table (--markdown) for docs/PERF.md.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as measure from "./measure.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "../..");
const USAGE = `usage: node bench/peer/peer_bench.mjs [--llama3 build/llama3] [--model Llama-3.2-1B] [--layers N]
  [--types bf16,q8_0,q4_0] [--modes performance,accuracy] [--threads 2] [--reps 3] [--pp 512] [--tg 128]
  [--batched 8,32] [--batched_tg 32] [--dir .cache/peer-bench] [--json build/peer-bench.json]
  [--markdown build/peer-bench.md] [--crosscheck 256] [--greedy 32]`;

function options() {
  const { values } = parseArgs({
    options: {
      llama3: { type: "string", default: join(ROOT, "build/llama3") },
      model: { type: "string", default: "Llama-3.2-1B" }, layers: { type: "string", default: "" },
      types: { type: "string", default: "bf16,q8_0,q4_0" }, modes: { type: "string", default: "performance,accuracy" },
      threads: { type: "string", default: "2" }, reps: { type: "string", default: "3" },
      pp: { type: "string", default: "512" }, tg: { type: "string", default: "128" },
      batched: { type: "string", default: "8,32" }, batched_tg: { type: "string", default: "32" },
      dir: { type: "string", default: join(ROOT, ".cache/peer-bench") },
      json: { type: "string", default: join(ROOT, "build/peer-bench.json") },
      markdown: { type: "string", default: join(ROOT, "build/peer-bench.md") },
      crosscheck: { type: "string", default: "256" }, greedy: { type: "string", default: "32" },
      help: { type: "boolean" },
    },
  });
  if (values.help) { console.log(USAGE); process.exit(0); }
  const list = (s) => s.split(",").filter((x) => x !== "");
  return { ...values, types: list(values.types), modes: list(values.modes) };
}

const log = (...a) => console.error("[peer-bench]", ...a);
const run = async (cmd, args) => (await measure.runCommand(cmd, args)).stdout;

// The GGUF files and the HF folder, written once (a file that exists is reused).
async function write_models(o) {
  mkdirSync(o.dir, { recursive: true });
  const layers = o.layers ? ["--layers", o.layers] : [];
  const stem = `${o.model}${o.layers ? `-${o.layers}L` : ""}`;
  const files = {};
  for (const type of o.types) {
    files[type] = join(o.dir, `${stem}-${type}.gguf`);
    if (!existsSync(files[type])) {
      log(`writing ${files[type]}`);
      await run(o.llama3, ["convert", "--to", "gguf", files[type], "--type", type, "--model", o.model, ...layers, "--weight_cache", "off"]);
    }
  }
  const hf = join(o.dir, `${stem}-hf`);
  if (o.modes.length && !existsSync(join(hf, "config.json"))) {
    log(`writing ${hf}`);
    await run(o.llama3, ["convert", hf, "--model", o.model, ...layers, "--weight_cache", "off"]);
  }
  return { files, hf };
}

// The prompt both engines get: the public-domain text of the accuracy command, tokenized with BOS.
async function write_prompt(o, n) {
  const text = readFileSync(join(ROOT, "demo/texts/declaration_of_independence.txt"), "utf8").replace(/\n+/g, " ");
  const ids = JSON.parse((await run(o.llama3, ["tokenize", "--bos", "--text", text])).trim());
  if (ids.length < n) throw new Error(`the text has ${ids.length} tokens; ${n} needed`);
  const path = join(o.dir, `prompt-${n}.json`);
  writeFileSync(path, JSON.stringify(ids.slice(0, n)));
  return { path, ids: ids.slice(0, n) };
}

async function ours(o, model_dir, mode, prompt, out) {
  // Our bench repeats and redoes disturbed repetitions itself; the orchestrator waits for idle first.
  await measure.waitForIdle();
  await run(o.llama3, ["bench", "--model_dir", model_dir, "--optimizations", mode, "--threads", o.threads,
    "--prefill", o.pp, "--decode", o.tg, "--context", "16", "--batch_sizes", o.batched, "--steps", o.batched_tg,
    "--reps", o.reps, "--prompt_tokens", prompt, "--json", out]);
  return JSON.parse(readFileSync(out, "utf8"));
}

async function peer(o, file, prompt, out, extra = []) {
  await run("node", [join(HERE, "llamacpp.mjs"), "--model", file, "--threads", o.threads, "--pp", o.pp, "--tg", o.tg,
    "--batched", o.batched, "--batched_tg", o.batched_tg, "--short_prompt", "16", "--reps", o.reps,
    "--prompt_tokens", prompt, "--json", out, ...extra]);
  return JSON.parse(readFileSync(out, "utf8"));
}

// Top-1 agreement over the teacher-forced text, and greedy continuations compared token by token;
// at the first difference, our logits at that position say whether it was a near tie.
const NEAR_TIE = 0.05;

async function crosscheck(o, file, tf) {
  const dir = o.dir;
  const lc = JSON.parse(readFileSync(await (async () => {
    const out = join(dir, "crosscheck-llamacpp.json");
    await run("node", [join(HERE, "llamacpp.mjs"), "--model", file, "--threads", o.threads, "--pp", "0", "--tg", "0",
      "--teacher_forced", tf.path, "--prompt_tokens", tf.path, "--greedy", o.greedy, "--json", out]);
    return out;
  })(), "utf8"));
  const ours_out = join(dir, "crosscheck-ours.json");
  const gen = JSON.parse(await run(o.llama3, ["generate", "--model_dir", file, "--optimizations", "native",
    "--tokens", tf.ids.join(","), "--max_generated_tokens", o.greedy, "--logits_all", "true", "--logits_top", "5",
    "--logits_out", ours_out]));
  const rows = JSON.parse(readFileSync(ours_out, "utf8"));
  const positions = lc.teacher_forced.positions;
  // Disagreements where our top-1 leads by less than NEAR_TIE are near ties: the engines' logits
  // differ by ~1e-2 (llama.cpp rounds BF16 products' activations to bf16, its KV cache to F16).
  let agree = 0, decisive = 0, decisive_agree = 0;
  for (let i = 0; i < positions.length; ++i) {
    const same = rows[i].ids[0] === positions[i].top1;
    agree += same ? 1 : 0;
    if (rows[i].logits[0] - rows[i].logits[1] >= NEAR_TIE) {
      ++decisive;
      decisive_agree += same ? 1 : 0;
    }
  }
  const theirs = lc.greedy.tokens, mine = gen.generated;
  let same = 0;
  while (same < Math.min(theirs.length, mine.length) && theirs[same] === mine[same]) ++same;
  let divergence = null;
  if (same < Math.min(theirs.length, mine.length)) {
    const out = join(dir, "crosscheck-divergence.json");
    await run(o.llama3, ["generate", "--model_dir", file, "--optimizations", "native",
      "--tokens", [...tf.ids, ...mine.slice(0, same)].join(","), "--max_generated_tokens", "1",
      "--logits_top", "2", "--logits_out", out]);
    const top = JSON.parse(readFileSync(out, "utf8"));
    const gap = top.logits[0] - top.logits[1];
    divergence = { step: same, ours: mine[same], llama_cpp: theirs[same], our_top2_gap: gap, near_tie: gap < NEAR_TIE };
  }
  return {
    positions: positions.length, top1_agreement: agree / positions.length,
    decisive_positions: decisive, decisive_top1_agreement: decisive ? decisive_agree / decisive : null, near_tie: NEAR_TIE,
    greedy: { tokens: mine.length, equal_prefix: same, divergence },
  };
}

const fmt = (x, d = 1) => (x === undefined || x === null || Number.isNaN(x) ? "-" : x.toFixed(d));

function rows_for(type, our, lc) {
  const lc_batched = (s) => lc.batched?.find((b) => b.sequences === s);
  const our_batched = (s) => our.batches.find((b) => b.batch === s);
  const bw = our.read_bandwidth_gb_per_s * 1e9;
  const out = [];
  const add = (name, ours_tps, lc_native, lc_wall, limit_of) => out.push({
    type, name, ours: ours_tps, llama_cpp_native: lc_native, llama_cpp_wall: lc_wall,
    ratio: lc_native ? ours_tps.best / lc_native.best : null,
    ours_of_limit: limit_of(ours_tps.best), llama_cpp_of_limit: lc_native ? limit_of(lc_native.best) : null,
  });
  const ideal = our.ideal_seconds;
  // The fraction of the compute peak a rate of t tokens/s is: t x seconds per token at the peak.
  const pp_ideal = (n) => (n * ideal.layers_per_token + ideal.lm_head) / n;
  if (our.prefill) add(`pp${our.prefill.tokens}`, our.prefill.tokens_per_s, lc.pp?.tokens_per_s.native, lc.pp?.tokens_per_s.wall, (t) => t * pp_ideal(our.prefill.tokens));
  if (our.decode) add(`tg${our.decode.tokens}`, our.decode.tokens_per_s, lc.tg?.tokens_per_s.native, lc.tg?.tokens_per_s.wall, (t) => t * our.weight_bytes_per_token / bw);
  for (const b of our.batches) {
    const l = lc_batched(b.batch);
    add(`${b.batch} seqs`, our_batched(b.batch).tokens_per_s, l?.tokens_per_s.native, l?.tokens_per_s.wall, (t) => t * ideal.decode_token);
  }
  return out;
}

function table(rows) {
  const head = "| file | figure | ours t/s best (median) | llama.cpp native best (median) | llama.cpp wall best | ours / llama.cpp | ours of limit | llama.cpp of limit |";
  const lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|"];
  for (const r of rows) {
    lines.push(`| ${r.type} | ${r.name} | ${fmt(r.ours.best)} (${fmt(r.ours.median)}) | ${r.llama_cpp_native ? `${fmt(r.llama_cpp_native.best)} (${fmt(r.llama_cpp_native.median)})` : "-"} | ${fmt(r.llama_cpp_wall?.best)} | ${r.ratio ? `${fmt(r.ratio, 2)}x` : "-"} | ${fmt(100 * r.ours_of_limit, 0)}% | ${r.llama_cpp_of_limit ? `${fmt(100 * r.llama_cpp_of_limit, 0)}%` : "-"} |`);
  }
  return lines.join("\n");
}

async function main() {
  const o = options();
  if (!existsSync(o.llama3)) throw new Error(`${o.llama3} not found: build it first (make cli)`);
  const { files, hf } = await write_models(o);
  const prompt = await write_prompt(o, Math.max(Number(o.pp), 16));
  const tf = await write_prompt(o, Number(o.crosscheck));
  const result = { model: o.model, layers: o.layers || "all", threads: Number(o.threads), files, runs: {}, rows: [] };
  for (const type of o.types) {
    log(`${type}: our engine`);
    const our = await ours(o, files[type], "native", prompt.path, join(o.dir, `ours-${type}.json`));
    log(`${type}: llama.cpp`);
    const lc = await peer(o, files[type], prompt.path, join(o.dir, `llamacpp-${type}.json`));
    result.runs[type] = { ours: our, llama_cpp: lc };
    result.rows.push(...rows_for(type, our, lc));
    result.read_bandwidth_gb_per_s = Math.max(result.read_bandwidth_gb_per_s ?? 0, our.read_bandwidth_gb_per_s);
    result.llama_cpp_backend = lc.peer?.cpu_backend;
  }
  for (const mode of o.modes) {
    log(`HF folder, our ${mode} mode`);
    const our = await ours(o, hf, mode, prompt.path, join(o.dir, `ours-hf-${mode}.json`));
    result.runs[`hf-${mode}`] = { ours: our };
    result.rows.push(...rows_for(`ours ${mode} (HF)`, our, {}));
  }
  if (o.types.includes("bf16") && Number(o.crosscheck) > 0) {
    log("cross-check on BF16");
    result.crosscheck = await crosscheck(o, files.bf16, tf);
  }
  const first = Object.values(result.runs)[0]?.ours;
  const header = [
    `machine: ${o.threads} threads; read bandwidth ${fmt(result.read_bandwidth_gb_per_s)} GB/s (vectorized, all threads, best of this run);`,
    `compute peaks fp32 FMA ${fmt(first?.peak_fp32_fma_gflops, 0)} GFLOP/s, vpdpbusd ${fmt(first?.peak_vpdpbusd_gops, 0)} GOP/s;`,
    `llama.cpp: node-llama-cpp 3.22.1 prebuilt, ${result.llama_cpp_backend ?? "?"}; model ${o.model}${o.layers ? ` (${o.layers} layers)` : ""}, random weights.`,
    "Limits: tg = batch-1 tokens/s x bytes of weights per token / read bandwidth; pp and batched = tokens/s over what the",
    "compute peak of the instructions OUR kernels run the file's formats on allows (fp32 FMA for bf16, vpdpbusd for 8/4-bit);",
    `llama.cpp's fractions use the same yardstick (for BF16 it uses vdpbf16ps, ${fmt(first?.peak_vdpbf16ps_gflops, 0)} GFLOP/s here, on bf16-rounded activations).`,
    "llama.cpp native = time inside llama_decode (its perf counters); wall = around the node-llama-cpp calls.",
  ].join("\n");
  const md = `${header}\n\n${table(result.rows)}\n`;
  console.log(`\n${md}`);
  if (result.crosscheck) {
    const c = result.crosscheck;
    const d = c.greedy.divergence;
    const decisive = `${fmt(100 * c.decisive_top1_agreement, 1)}% at the ${c.decisive_positions} positions where our lead is >= ${c.near_tie}`;
    const line = `cross-check (BF16, teacher-forced ${c.positions} tokens): top-1 agreement ${fmt(100 * c.top1_agreement, 1)}% (${decisive}); ` +
      `greedy ${c.greedy.tokens} tokens equal for ${c.greedy.equal_prefix}` +
      (d ? `, then ours ${d.ours} vs llama.cpp ${d.llama_cpp} where our top-2 lead is ${fmt(d.our_top2_gap, 4)} (${d.near_tie ? "a near tie" : "NOT a near tie"})` : " (all)");
    console.log(line);
    writeFileSync(o.markdown, `${md}\n${line}\n`);
  } else {
    writeFileSync(o.markdown, md);
  }
  mkdirSync(dirname(o.json), { recursive: true });
  writeFileSync(o.json, JSON.stringify(result, null, 2));
  log(`wrote ${o.json} and ${o.markdown}`);
}

main().catch((e) => {
  console.error(`peer-bench: ${e.message}`);
  process.exit(1);
});
