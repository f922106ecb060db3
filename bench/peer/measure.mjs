// Measurement hygiene for benchmarks on a small shared machine, usable by any side of the benchmark.
//
// Prebuilt llama.cpp spins its threads and slows down 10-40x when another process takes a core, and
// our engine suffers too, so each measurement
//   1. first waits until the other processes leave the CPUs idle (bounded),
//   2. counts the CPU time other processes took while it ran: the machine's busy time (/proc/stat)
//      minus this process's own (/proc/self/stat, including reaped children),
//   3. is redone (bounded) when that exceeds a threshold, and is reported as disturbed otherwise.
// Linux only. Times in /proc are in clock ticks (USER_HZ, 100 per second on Linux).
import { readFileSync } from "node:fs";
import { spawn } from "node:child_process";

const TICK_S = 0.01; // USER_HZ is 100 on every Linux architecture that node supports

export const DEFAULTS = Object.freeze({
  idle_window_s: 0.5,         // one /proc/stat sample window while waiting for idle
  idle_max_others_cores: 0.05, // idle: other processes use under 5% of one core in a window
  idle_timeout_s: 120,         // total idle waiting per measurement (then runs go ahead: idle: false)
  disturbed_cores: 0.05,       // disturbed: others used over 5% of one core on average during the run...
  disturbed_min_s: 0.03,       // ...and over 30 ms in all (tick accounting is coarse)
  max_redos: 5,                // disturbed runs redone per measurement, at most
  watch_s: 0.25,               // how often a run is checked for disturbance while it runs
});

// Busy and idle ticks of the whole machine. Steal counts as busy: a hypervisor taking the CPU
// disturbs a run like a process does.
export function machineTicks() {
  const f = readFileSync("/proc/stat", "utf8").split("\n", 1)[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  return { busy: user + nice + system + irq + softirq + (steal || 0), idle: idle + iowait };
}

// CPU ticks used by this process (all threads) and by its children that have been waited for.
export function ownTicks() {
  const s = readFileSync("/proc/self/stat", "utf8");
  // The command name (field 2) may contain spaces: fields are counted after its closing ')'.
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ").map(Number);
  const [utime, stime, cutime, cstime] = f.slice(11, 15);
  return utime + stime + cutime + cstime;
}

// A snapshot; `othersSince(snapshot)` is the CPU time, in seconds, other processes used since.
export function cpuSnapshot() {
  return { machine: machineTicks(), own: ownTicks(), t: performance.now() };
}

export function othersSince(snap) {
  const now = cpuSnapshot();
  const busy = now.machine.busy - snap.machine.busy;
  const own = now.own - snap.own;
  return {
    others_s: Math.max(0, busy - own) * TICK_S,
    own_s: own * TICK_S,
    wall_s: (now.t - snap.t) / 1000,
  };
}

const sleep = (s) => new Promise((r) => setTimeout(r, s * 1000));

// Waits until other processes use under `idle_max_others_cores` of a core over one window.
// Returns { idle, waited_s, others_cores } (others_cores: the last window's load).
export async function waitForIdle(options = {}) {
  const o = { ...DEFAULTS, ...options };
  const start = performance.now();
  let others_cores = Infinity;
  for (;;) {
    const snap = cpuSnapshot();
    await sleep(o.idle_window_s);
    const d = othersSince(snap);
    others_cores = d.others_s / d.wall_s;
    const waited_s = (performance.now() - start) / 1000;
    if (others_cores < o.idle_max_others_cores) return { idle: true, waited_s, others_cores };
    if (waited_s >= o.idle_timeout_s) return { idle: false, waited_s, others_cores };
  }
}

export function isDisturbed(others_s, wall_s, options = {}) {
  const o = { ...DEFAULTS, ...options };
  return others_s > o.disturbed_min_s && others_s > o.disturbed_cores * wall_s;
}

// The bounds of one measurement, shared by its repetitions so that a busy machine costs at most
// idle_timeout_s of waiting and max_redos extra runs per measurement, however many repetitions.
export function newBudget(options = {}) {
  const o = { ...DEFAULTS, ...options };
  return { idle_s: o.idle_timeout_s, redos: o.max_redos };
}

// Runs `fn` (sync or async) once under the rules: idle wait, then the run, redone while disturbed
// and the budget allows. Returns
//   { result, wall_s, own_cpu_s, others_cpu_s, disturbed, redos, idle: {idle, waited_s, others_cores},
//     discarded: [{wall_s, others_cpu_s, signalled}] }
// `result` is fn's return value for the kept run, `idle` the wait before it, `disturbed` whether it
// was disturbed too (the budget ran out).
// A disturbed run can take 10-40x its time, so the run is watched (every watch_s): once it is
// disturbed and a redo is allowed, the AbortSignal passed to fn({signal}) fires; fn may stop early
// (its result is then discarded; an error it throws after the signal counts as stopping).
// options.progress, if given, is called with a line of text after each run.
export async function runUndisturbed(fn, options = {}, budget = newBudget(options)) {
  const o = { ...DEFAULTS, ...options };
  const discarded = [];
  for (;;) {
    const idle = await waitForIdle({ ...o, idle_timeout_s: budget.idle_s });
    budget.idle_s = Math.max(0, budget.idle_s - idle.waited_s);
    const snap = cpuSnapshot();
    const stop = new AbortController();
    const watch = setInterval(() => {
      const d = othersSince(snap);
      if (budget.redos > 0 && isDisturbed(d.others_s, d.wall_s, o)) stop.abort();
    }, o.watch_s * 1000);
    let result;
    try {
      result = await fn({ signal: stop.signal });
    } catch (e) {
      if (!stop.signal.aborted) throw e;
    } finally {
      clearInterval(watch);
    }
    const d = othersSince(snap);
    const signalled = stop.signal.aborted; // fn may have stopped early: a disturbed run either way
    const disturbed = signalled || isDisturbed(d.others_s, d.wall_s, o);
    const redo = disturbed && budget.redos > 0;
    o.progress?.(`${d.wall_s.toFixed(2)} s, others took ${d.others_s.toFixed(2)} s of CPU` +
                 `${idle.idle ? "" : " (never idle)"}${disturbed ? (redo ? ": disturbed, redo" : ": disturbed, kept") : ""}`);
    if (!redo) {
      return { result, wall_s: d.wall_s, own_cpu_s: d.own_s, others_cpu_s: d.others_s, disturbed,
               redos: discarded.length, idle, discarded };
    }
    budget.redos -= 1;
    discarded.push({ wall_s: d.wall_s, others_cpu_s: d.others_s, signalled });
  }
}

// Runs `fn` `reps` times, each under runUndisturbed, with one budget. Returns the list of
// runUndisturbed results.
export async function repeat(reps, fn, options = {}) {
  const budget = newBudget(options);
  const runs = [];
  for (let i = 0; i < reps; ++i) runs.push(await runUndisturbed(fn, options, budget));
  return runs;
}

// Runs a child process to completion (no measurement rules). Resolves to { stdout, stderr, code,
// signal }; rejects when the command cannot start or fails (unless options.allow_failure).
// options.signal (an AbortSignal) kills it; options.spawn goes to child_process.spawn.
export function runCommand(cmd, args = [], options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], signal: options.signal, ...options.spawn });
    const out = [], err = [];
    child.stdout.on("data", (b) => out.push(b));
    child.stderr.on("data", (b) => err.push(b));
    child.on("error", reject);
    // 'close': the child has exited, was reaped (its ticks are in our cutime) and its pipes are drained.
    child.on("close", (code, signal) => {
      const r = { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), code, signal };
      if ((code !== 0 || signal) && !options.allow_failure) {
        reject(new Error(`${cmd} ${args.join(" ")} failed (${signal ?? "exit " + code}):\n${r.stderr.slice(-2000)}`));
      } else {
        resolve(r);
      }
    });
  });
}

// One run of a child process under the rules of runUndisturbed, with a budget of its own: its
// object, whose `result` is runCommand's. The child's CPU time counts as ours once it has exited;
// a child disturbed while a redo is allowed is killed and run again.
// Repeated measurements: repeat(n, ({ signal }) => runCommand(cmd, args, { signal }), options).
export function measureCommand(cmd, args = [], options = {}) {
  return runUndisturbed(({ signal }) => runCommand(cmd, args, { ...options, signal }), options);
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return null;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

// { best, median, values, n }: best is the maximum for rates (higherIsBetter), the minimum for times.
export function summarize(values, { higherIsBetter = true } = {}) {
  if (values.length === 0) return { best: null, median: null, values: [], n: 0 };
  const best = higherIsBetter ? Math.max(...values) : Math.min(...values);
  return { best, median: round(median(values), 6), values, n: values.length };
}

// Hygiene facts for a list of runUndisturbed results, to put next to the figures.
export function hygiene(runs) {
  return {
    disturbed_runs_kept: runs.filter((r) => r.disturbed).length,
    redos: runs.reduce((a, r) => a + r.redos, 0),
    never_idle: runs.filter((r) => !r.idle.idle).length,
    idle_waited_s: round(runs.reduce((a, r) => a + r.idle.waited_s, 0), 2),
    others_cpu_s: runs.map((r) => round(r.others_cpu_s, 3)),
    discarded: runs.flatMap((r) => r.discarded).map((d) => ({ ...d, wall_s: round(d.wall_s, 3), others_cpu_s: round(d.others_cpu_s, 3) })),
  };
}

export function round(x, digits = 3) {
  if (x == null || !Number.isFinite(x)) return x;
  const m = 10 ** digits;
  return Math.round(x * m) / m;
}

