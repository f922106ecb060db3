// `llama3 plot REPORT.json -o FILE.png|svg`: charts of what the JSON holds, drawn by gnuplot
// (Debian's gnuplot-nox; the data goes inline as datablocks, nothing is drawn by hand):
//  - a demo report (`llama3 demo --report`): tokens/s/user per iteration with the TSU target band,
//    and time to first token per user;
//  - a stress-test report (`--stress_test true --report`): tokens/s/user and RSS over time;
//  - a bench result (`llama3 bench --json`): the roofline, achieved GOP/s of prefill and of decode
//    per batch size against the measured bandwidth and compute ceilings.
#include <fmt/core.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "apps/command.h"
#include "core/error.h"
#include "runtime/data_files.h"
#include "runtime/tsu_targets.h"

namespace llama3::apps {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct PlotOptions {
  std::string report;
  std::string output;
  std::optional<std::string> tsu_targets;  // default demo/tsu_targets.json
};

// A gnuplot string literal (single quotes: no escapes but '' for a quote).
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("''") : std::string(1, ch);
  return out + "'";
}

const json& field(const json& j, const char* key, const std::string& what) {
  check(j.is_object() && j.contains(key), "{}: no \"{}\" field", what, key);
  return j.at(key);
}

double number(const json& j, const char* key, const std::string& what) {
  const json& v = field(j, key, what);
  check(v.is_number(), "{}: \"{}\" is not a number", what, key);
  return v.get<double>();
}

// The terminal line for the output's extension, and the size of one panel.
std::string terminal(const std::string& output, int panels) {
  const std::string ext = fs::path(output).extension().string();
  const int height = 420 * panels;
  if (ext == ".png") return fmt::format("set terminal pngcairo size 1100,{} font 'sans,11'", height);
  if (ext == ".svg") return fmt::format("set terminal svg size 1100,{} font 'sans,11' background '#ffffff'", height);
  fail("-o {}: the chart is written as .png or .svg", output);
}

std::string demo_script(const json& r, const PlotOptions& o) {
  const std::string what = o.report;
  const json& summary = field(r, "summary", what);
  const json& iterations = field(r, "iterations", what);
  check(iterations.is_array() && !iterations.empty(), "{}: no iterations to plot", what);
  const bool stress = summary.contains("recycles");
  const std::string model = summary.value("model", "?");
  const int layers = summary.value("layers", 0);
  const int batch = summary.value("batch_size", 0);
  const std::string mode = summary.value("optimizations", "?");
  const std::string title = fmt::format("{}, {} layers, batch {}, {} mode, {} threads", model, layers, batch, mode,
                                        summary.value("threads", 0));

  std::string s = terminal(o.output, 2) + "\n";
  s += "set output " + quoted(o.output) + "\nset grid\nset key top right\n";
  s += "$tsu << EOD\n";
  double top = 0.0;  // the y range holds the data and the whole target band
  for (const json& it : iterations) {
    const double tsu = number(it, "tokens_per_s_per_user", what);
    top = std::max(top, tsu);
    s += fmt::format("{} {}\n", number(it, "iteration", what), tsu);
  }
  s += "EOD\n";
  s += "set multiplot layout 2,1 title " + quoted((stress ? "Stress test: " : "Demo: ") + title) + "\n";

  // Panel 1: tokens/s/user per iteration, with the target band when the table has one.
  std::string band;
  const fs::path table_path = o.tsu_targets ? fs::path(*o.tsu_targets) : runtime::data_file("demo/tsu_targets.json");
  if (fs::exists(table_path)) {
    const auto table = runtime::load_tsu_targets(table_path);
    if (const auto t = runtime::find_tsu_target(table, model, layers, batch, mode)) {
      s += fmt::format("set object 1 rect from graph 0, first {} to graph 1, first {} fc rgb '#c8e6c9' fs solid 0.6 noborder behind\n",
                       t->min_tsu, t->max_tsu);
      band = fmt::format(" (green: TSU target {:.1f}-{:.1f})", t->min_tsu, t->max_tsu);
      top = std::max(top, t->max_tsu);
    }
  }
  s += "set title " + quoted("tokens/s/user per decode iteration" + (band.empty() ? std::string(" (no TSU target for this configuration)") : band)) + "\n";
  s += fmt::format("set xlabel 'decode iteration'\nset ylabel 'tokens/s/user'\nset yrange [0:{}]\n", 1.08 * top);
  s += "plot $tsu using 1:2 with lines lw 1.5 lc rgb '#1565c0' title 'tokens/s/user'\n";
  s += "unset object 1\n";

  if (stress) {
    // Panel 2: RSS over the run.
    const json& rss = field(r, "rss_samples", what);
    check(rss.is_array() && !rss.empty(), "{}: no rss_samples (a report from an older binary?)", what);
    s += "$rss << EOD\n";
    for (const json& x : rss) {
      s += fmt::format("{} {}\n", number(x, "iteration", what), number(x, "rss_bytes", what) / (1024.0 * 1024.0));
    }
    s += "EOD\n";
    s += "set title 'resident memory (RSS) over the run: flat means nothing leaks'\n";
    s += "set xlabel 'decode iteration'\nset ylabel 'RSS (MiB)'\nset yrange [0:*]\nset xrange [*:*]\n";
    s += "plot $rss using 1:2 with linespoints pt 7 ps 0.5 lc rgb '#c62828' title 'RSS'\n";
  } else {
    // Panel 2: time to first token per user.
    const json& users = field(r, "users", what);
    s += "$ttft << EOD\n";
    s += fmt::format("# {} users\n", users.size());
    for (const json& u : users) {
      if (!u.value("error", std::string()).empty()) continue;
      s += fmt::format("{} {}\n", number(u, "user", what), number(u, "ttft_ms", what));
    }
    s += "EOD\n";
    s += "set title 'time to first token per user'\n";
    s += fmt::format("set xrange [-1:{}]\n", users.size());
    s += "set xlabel 'user'\nset ylabel 'time to first token (ms)'\nset yrange [0:*]\nset style fill solid 0.7\n";
    s += "set boxwidth 0.7\nplot $ttft using 1:2 with boxes lc rgb '#ef6c00' title 'TTFT'\n";
  }
  s += "unset multiplot\n";
  return s;
}

std::string roofline_script(const json& b, const PlotOptions& o) {
  const std::string what = o.report;
  const double bw = number(b, "read_bandwidth_gb_per_s", what);                // GB/s
  const double bytes = number(b, "weight_bytes_per_token", what);              // per decode step
  const json& ops_json = field(b, "ops_per_token", what);
  const double ops = number(ops_json, "bf16", what) + number(ops_json, "int8", what);
  const double ideal = number(field(b, "ideal_seconds", what), "decode_token", what);
  check(bytes > 0 && ops > 0 && ideal > 0 && bw > 0, "{}: zero sizes or limits", what);
  const double mode_peak = ops / ideal / 1e9;  // GOP/s: the mix of instructions this mode runs
  const double fma = number(b, "peak_fp32_fma_gflops", what);
  const double vnni = number(b, "peak_vpdpbusd_gops", what);
  const double intensity = ops / bytes;        // ops per byte of weights at batch 1

  // Points: (intensity, achieved GOP/s, label).
  std::string points;
  for (const json& row : field(b, "batches", what)) {
    const double batch = number(row, "batch", what);
    const double tps = number(field(row, "tokens_per_s", what), "best", what);
    points += fmt::format("{} {} \"decode, batch {:.0f}\"\n", batch * intensity, tps * ops / 1e9, batch);
  }
  if (b.contains("prefill")) {
    const json& p = b.at("prefill");
    const double n = number(p, "tokens", what);
    const double tps = number(field(p, "tokens_per_s", what), "best", what);
    points += fmt::format("{} {} \"prefill, {:.0f} tokens\"\n", n * intensity, tps * ops / 1e9, n);
  }
  check(!points.empty(), "{}: no decode or prefill figures to plot", what);

  std::string s = terminal(o.output, 2) + "\n";
  s += "set output " + quoted(o.output) + "\n";
  s += "$points << EOD\n" + points + "EOD\n";
  s += fmt::format("bw = {}\nmode_peak = {}\nfma = {}\nvnni = {}\n", bw, mode_peak, fma, vnni);
  s += "set logscale xy\nset grid xtics ytics mxtics mytics\nset key bottom right box opaque\n";
  s += "set xrange [0.1:10000]\nset yrange [1:*]\n";
  s += "set xlabel 'arithmetic intensity (operations per byte of weights read)'\n";
  s += "set ylabel 'achieved GOP/s (multiply-adds x 2)'\n";
  s += "set title " +
       quoted(fmt::format("Roofline: {}, {} layers, {} mode, {} threads, {} kernels", b.value("model", "?"),
                          b.value("layers", 0), b.value("mode", "?"), b.value("threads", 0), b.value("isa", "?"))) +
       "\n";
  s += "set samples 400\n";
  s += "plot (bw * x < mode_peak ? bw * x : mode_peak) with lines lw 2.5 lc rgb '#37474f' "
       "title sprintf('roofline: %.1f GB/s read bandwidth, %.0f GOP/s this mode''s peak', bw, mode_peak), "
       "fma with lines dt 2 lc rgb '#8e24aa' title sprintf('fp32 FMA peak %.0f GFLOP/s', fma), "
       "vnni with lines dt 3 lc rgb '#00897b' title sprintf('vpdpbusd peak %.0f GOP/s', vnni), "
       "$points using 1:2 with points pt 7 ps 1.6 lc rgb '#d32f2f' title 'measured (best of the repetitions)', "
       "$points using 1:2:3 with labels offset 1.2,-0.8 left font ',10' notitle\n";
  return s;
}

void run_gnuplot(const std::string& script, const std::string& output) {
  // The script goes to gnuplot's stdin; its messages stay on our stderr.
  FILE* pipe = ::popen("gnuplot", "w");
  check(pipe != nullptr, "cannot start gnuplot");
  std::fwrite(script.data(), 1, script.size(), pipe);
  const int status = ::pclose(pipe);
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  check(code != 127, "gnuplot is not installed (Debian: apt install gnuplot-nox; scripts/setup.sh installs it)");
  check(code == 0, "gnuplot failed (exit {}) drawing {}", code, output);
  check(fs::exists(output) && fs::file_size(output) > 0, "gnuplot wrote nothing to {}", output);
}

int run_plot(const PlotOptions& o) {
  std::ifstream in(o.report);
  check(static_cast<bool>(in), "cannot read {}", o.report);
  json r;
  try {
    r = json::parse(in);
  } catch (const json::exception& e) {
    fail("{} is not valid JSON: {}", o.report, e.what());
  }
  std::string script;
  if (r.is_object() && r.contains("iterations") && r.contains("summary")) {
    script = demo_script(r, o);
  } else if (r.is_object() && r.contains("batches") && r.contains("read_bandwidth_gb_per_s")) {
    script = roofline_script(r, o);
  } else {
    fail("{} is neither a demo report (llama3 demo --report) nor a bench result (llama3 bench --json)", o.report);
  }
  run_gnuplot(script, o.output);
  fmt::print("wrote {}\n", o.output);
  return 0;
}

const CommandRegistrar kRegistrar{
    "plot", "charts of a demo report, a stress test or a bench result (PNG or SVG, drawn by gnuplot)",
    [](CLI::App& app) {
      auto o = std::make_shared<PlotOptions>();
      app.add_option("report", o->report, "a JSON file from llama3 demo --report or llama3 bench --json")->required();
      app.add_option("-o,--output", o->output, "the chart: FILE.png or FILE.svg")->required();
      app.add_option("--tsu_targets", o->tsu_targets, "the demo's targets table (default demo/tsu_targets.json)");
      return [o] { return run_plot(*o); };
    }};

}  // namespace
}  // namespace llama3::apps
