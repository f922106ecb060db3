# The two entry points of the README. Both install what is missing first.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
DEMO_ARGS ?=

.PHONY: setup configure build cli demo test sanitize-build test-sanitize fuzz bench peer-bench bench-serve-table stress-serve bench-mesh-links clean

setup:
	@scripts/setup.sh

configure: setup
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release >/dev/null

# The demo needs only the binary; the tests build everything.
cli: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target llama3

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

demo: cli
	$(BUILD_DIR)/llama3 demo $(DEMO_ARGS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j 2

# The whole suite again, built by clang with AddressSanitizer + UndefinedBehaviorSanitizer (any
# report fails its test), in its own folder; the same build carries the libFuzzer harnesses.
SAN_DIR ?= build-sanitize
sanitize-build: setup
	@cmake -S . -B $(SAN_DIR) -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ -DLLAMA3_FUZZ=ON -DLLAMA3_BENCH=OFF >/dev/null
	@cmake --build $(SAN_DIR) -j $(JOBS)

test-sanitize: sanitize-build
	cd $(SAN_DIR) && ctest --output-on-failure -j 2

# Each fuzzer for FUZZ_SECONDS (FUZZ_ONLY="gguf pth" for some); see fuzz/README.md.
FUZZ_SECONDS ?= 60
fuzz: sanitize-build
	fuzz/run.sh $(SAN_DIR) $(FUZZ_SECONDS)

bench: build
	$(BUILD_DIR)/bench/llama3_bench

# Our engine and llama.cpp (prebuilt, from npm) side by side on the same GGUF files: minutes, so
# not part of `make test`. PEER_BENCH_ARGS passes options (see bench/peer/peer_bench.mjs --help).
PEER_BENCH_ARGS ?=
peer-bench: cli
	@bench/peer/install.sh
	node bench/peer/peer_bench.mjs --llama3 $(BUILD_DIR)/llama3 $(PEER_BENCH_ARGS)

# docs/PERF.md's serving table: the server under its load generator per (layers, prefix caching,
# concurrency); ~20 minutes on 2 cores. LAYERS, CACHING, CONCURRENCY, RUNS: see the script.
bench-serve-table: cli
	bench/serve_table.sh $(BUILD_DIR)/llama3

# The stress test through the server: `llama3 serve --check_finite` under bench-serve rounds for
# MINUTES (default 30), RSS read between rounds; see the script for LAYERS, THREADS, REQUESTS.
stress-serve: cli
	bench/serve_stress.sh $(BUILD_DIR)/llama3

# docs/PERF.md's mesh-over-links table: 2 ranks in network namespaces joined by shaped veth
# links (tc tbf), per RATES (default 10gbit 25gbit unlimited); needs root. ~1 minute per rate.
RATES ?=
bench-mesh-links: cli
	LLAMA3=$(BUILD_DIR)/llama3 bench/mesh_links.sh $(RATES)

clean:
	rm -rf $(BUILD_DIR) $(SAN_DIR)
