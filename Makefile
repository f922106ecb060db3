# The two entry points of the README. Both install what is missing first.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
DEMO_ARGS ?=

.PHONY: setup configure build cli demo test bench clean

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

bench: build
	$(BUILD_DIR)/bench/llama3_bench

clean:
	rm -rf $(BUILD_DIR)
