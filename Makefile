# codeprof -- developer entry points.
#
#   make demo    set up .venv, build + install the package, profile examples/video_pipeline.py
#   make test    C tests (build/), C tests under ASan+UBSan (build-asan/) and ThreadSanitizer
#                (build-tsan/), pytest on Python 3.11 with torch (.venv) and on 3.12 and 3.13
#                without torch (.venv312, .venv313), a bounded libFuzzer run (build-fuzz/, test-fuzz)
#   make bench   bench/run_all.sh in .venv
#   make clean   remove build trees (make distclean also removes the venvs)
#
# Set-up is idempotent: venvs are created once, their packages are (re)checked only when this
# Makefile changes (stamp files), and the package itself is rebuilt incrementally and reinstalled
# on every run so that a stale build can never hide a change in the C code.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

ROOT    := $(CURDIR)
VENV    := $(ROOT)/.venv
VENV312 := $(ROOT)/.venv312
VENV313 := $(ROOT)/.venv313
NPROC   := $(shell nproc 2>/dev/null || echo 2)

# Interpreters: the pyenv builds when present, else whatever is on PATH.
PY311 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.11.*/bin/python3.11) \
                     $(shell command -v python3.11 2>/dev/null))
PY312 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12.*/bin/python3.12) \
                     $(shell command -v python3.12 2>/dev/null))
PY313 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13.*/bin/python3.13) \
                     $(shell command -v python3.13 2>/dev/null))

# torch is always pinned (pip finds the CPU wheel in the local wheelhouse when there is one).
TORCH_REQ    := torch==2.13.0
BUILD_PKGS   := scikit-build-core cmake ninja
COMMON_PKGS  := numpy opencv-python-headless pytest $(BUILD_PKGS)
VENV_PKGS    := $(TORCH_REQ) $(COMMON_PKGS) yappi pyinstrument
VENV312_PKGS := $(COMMON_PKGS) yappi pyinstrument
# 3.13: only what the tests need (no torch: its tests skip; no peer profilers).
VENV313_PKGS := $(COMMON_PKGS)

CMAKE := $(VENV)/bin/cmake
CTEST := $(VENV)/bin/ctest
PIP_QUIET := -q --disable-pip-version-check
# Wall-clock cap for each pytest leg (real-run tests have their own subprocess timeouts).
PYTEST_TIMEOUT ?= 1200
DEMO_SCRIPT ?= examples/video_pipeline.py
DEMO_ARGS ?=

.PHONY: help demo test test-c test-asan test-tsan test-valgrind test-py311 test-py312 test-py313 test-fuzz \
        fuzzdeps bench clean distclean sysdeps venv venv312 venv313 install install312 install313 \
        dev build format

help:
	@echo "make demo | make test | make bench | make clean | make distclean"
	@echo "  parts of test: test-c test-asan test-tsan test-valgrind test-py311 test-py312 test-py313 test-fuzz"
	@echo "  set-up: venv venv312 venv313 install install312 install313 dev (editable)"

# ---------------------------------------------------------------------------
# System prerequisites (C compiler, pkg-config, cmocka)
# ---------------------------------------------------------------------------
sysdeps:
	@missing=""; \
	command -v cc >/dev/null 2>&1 || missing="$$missing build-essential"; \
	command -v pkg-config >/dev/null 2>&1 || missing="$$missing pkg-config"; \
	{ command -v pkg-config >/dev/null 2>&1 && pkg-config --exists cmocka; } || missing="$$missing libcmocka-dev"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "[sysdeps] installing:$$missing"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing pkg-config >/dev/null; \
	  else \
	    echo "[sysdeps] missing:$$missing"; \
	    echo "[sysdeps] install them with: sudo apt-get update && sudo apt-get install -y$$missing pkg-config"; \
	    exit 1; \
	  fi; \
	fi

# ---------------------------------------------------------------------------
# Virtual environments
# ---------------------------------------------------------------------------
$(VENV)/bin/python:
	@if [ -z "$(PY311)" ]; then echo "python3.11 not found (looked in ~/.pyenv/versions/3.11.*/bin and PATH); set PY311=/path/to/python3.11"; exit 1; fi
	$(PY311) -m venv $(VENV)

$(VENV312)/bin/python:
	@if [ -z "$(PY312)" ]; then echo "python3.12 not found (looked in ~/.pyenv/versions/3.12.*/bin and PATH); set PY312=/path/to/python3.12"; exit 1; fi
	$(PY312) -m venv $(VENV312)

$(VENV313)/bin/python:
	@if [ -z "$(PY313)" ]; then echo "python3.13 not found (looked in ~/.pyenv/versions/3.13.*/bin and PATH); set PY313=/path/to/python3.13"; exit 1; fi
	$(PY313) -m venv $(VENV313)

$(VENV)/.codeprof-deps: $(VENV)/bin/python Makefile
	@echo "[venv] .venv: $(VENV_PKGS)"
	@$(VENV)/bin/pip install $(PIP_QUIET) $(VENV_PKGS) 2>&1 | { grep -v "^WARNING: Location" || true; }
	@touch $@

$(VENV312)/.codeprof-deps: $(VENV312)/bin/python Makefile
	@echo "[venv] .venv312: $(VENV312_PKGS)"
	@$(VENV312)/bin/pip install $(PIP_QUIET) $(VENV312_PKGS) 2>&1 | { grep -v "^WARNING: Location" || true; }
	@if $(VENV312)/bin/python -c "import torch" 2>/dev/null; then \
	  echo ".venv312 must not contain torch (its leg checks that torch tests skip); remove it: $(VENV312)/bin/pip uninstall -y torch"; exit 1; fi
	@touch $@

$(VENV313)/.codeprof-deps: $(VENV313)/bin/python Makefile
	@echo "[venv] .venv313: $(VENV313_PKGS)"
	@$(VENV313)/bin/pip install $(PIP_QUIET) $(VENV313_PKGS) 2>&1 | { grep -v "^WARNING: Location" || true; }
	@if $(VENV313)/bin/python -c "import torch" 2>/dev/null; then \
	  echo ".venv313 must not contain torch (its leg checks that torch tests skip); remove it: $(VENV313)/bin/pip uninstall -y torch"; exit 1; fi
	@touch $@

venv: $(VENV)/.codeprof-deps
venv312: $(VENV312)/.codeprof-deps
venv313: $(VENV313)/.codeprof-deps

# Build + (re)install the package: incremental CMake build in build-py/<wheel tag>, always reinstalled.
install: venv
	@echo "[install] code-profiler -> .venv"
	@$(VENV)/bin/pip install $(PIP_QUIET) --no-deps --no-build-isolation --force-reinstall $(ROOT) \
	  > $(ROOT)/build-py/install-311.log 2>&1 || { tail -40 $(ROOT)/build-py/install-311.log; exit 1; }
install: | build-py-dir

install312: venv312
	@echo "[install] code-profiler -> .venv312"
	@$(VENV312)/bin/pip install $(PIP_QUIET) --no-deps --no-build-isolation --force-reinstall $(ROOT) \
	  > $(ROOT)/build-py/install-312.log 2>&1 || { tail -40 $(ROOT)/build-py/install-312.log; exit 1; }
install312: | build-py-dir

install313: venv313
	@echo "[install] code-profiler -> .venv313"
	@$(VENV313)/bin/pip install $(PIP_QUIET) --no-deps --no-build-isolation --force-reinstall $(ROOT) \
	  > $(ROOT)/build-py/install-313.log 2>&1 || { tail -40 $(ROOT)/build-py/install-313.log; exit 1; }
install313: | build-py-dir

# Editable install for iterating on the Python facade: .py edits are live; rerun after C edits.
# (make test replaces it with a regular install.)
dev: venv | build-py-dir
	@echo "[dev] editable code-profiler -> .venv"
	@$(VENV)/bin/pip install $(PIP_QUIET) --no-deps --no-build-isolation --force-reinstall -e $(ROOT) \
	  > $(ROOT)/build-py/install-dev.log 2>&1 || { tail -40 $(ROOT)/build-py/install-dev.log; exit 1; }

.PHONY: build-py-dir
build-py-dir:
	@mkdir -p $(ROOT)/build-py

# ---------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------
demo: install
	@mkdir -p profiles
	$(VENV)/bin/codeprof run $(DEMO_ARGS) $(DEMO_SCRIPT)

# ---------------------------------------------------------------------------
# test
# ---------------------------------------------------------------------------
# Every leg runs even when an earlier one fails (-k); the exit status is the failure.
TEST_LEGS ?= test-c test-asan test-tsan test-valgrind test-fuzz test-py311 test-py312 test-py313
test:
	@$(MAKE) -k $(TEST_LEGS) || { echo "[test] FAILED: see the legs above"; exit 1; }
	@echo "[test] all legs passed"

# Library + C tests, plain build.
build test-c: sysdeps venv
	@$(CMAKE) -S $(ROOT) -B $(ROOT)/build -DCODEPROF_BUILD_TESTS=ON -DCODEPROF_SANITIZE=OFF \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo > $(ROOT)/build-configure.log 2>&1 \
	  || { tail -30 $(ROOT)/build-configure.log; exit 1; }
	@$(CMAKE) --build $(ROOT)/build -j$(NPROC) > $(ROOT)/build/build.log 2>&1 \
	  || { grep -E -B2 -A6 ": (fatal )?error:|undefined reference" $(ROOT)/build/build.log | head -80; exit 1; }
	@if [ "$@" = test-c ]; then echo "[test-c] ctest build/"; \
	  cd $(ROOT)/build && $(CTEST) --output-on-failure -j$(NPROC); fi

# The same under AddressSanitizer + UBSan, at -O1 (usual for ASan; -O0 is needlessly slow).
# LeakSanitizer needs ptrace; where a sandbox forbids it (a probe then dies with "LeakSanitizer has
# encountered a fatal error"), leaks are not checked and this says so.
test-asan: sysdeps venv
	@$(CMAKE) -S $(ROOT) -B $(ROOT)/build-asan -DCODEPROF_BUILD_TESTS=ON -DCODEPROF_SANITIZE=ON \
	  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1" > $(ROOT)/build-asan-configure.log 2>&1 \
	  || { tail -30 $(ROOT)/build-asan-configure.log; exit 1; }
	@$(CMAKE) --build $(ROOT)/build-asan -j$(NPROC) > $(ROOT)/build-asan/build.log 2>&1 \
	  || { grep -E -B2 -A6 ": (fatal )?error:|undefined reference" $(ROOT)/build-asan/build.log | head -80; exit 1; }
	@probe=$(ROOT)/build-asan/lsan-probe; \
	printf 'int main(void) { return 0; }\n' > $$probe.c; \
	leaks=0; \
	if cc -fsanitize=address $$probe.c -o $$probe 2>/dev/null && ASAN_OPTIONS=detect_leaks=1 $$probe >/dev/null 2>&1; then \
	  leaks=1; \
	else \
	  echo "[test-asan] LeakSanitizer does not work here (it needs ptrace): running with detect_leaks=0"; \
	fi; \
	echo "[test-asan] ctest build-asan/ (detect_leaks=$$leaks)"; \
	cd $(ROOT)/build-asan && \
	ASAN_OPTIONS=detect_leaks=$$leaks:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$(CTEST) --output-on-failure -j$(NPROC)

# libFuzzer on the total readers (tests/fuzz): the spool reader and the worker model reader,
# FUZZ_SECONDS in all, half each, and the saved-report reader (JSON -> model), FUZZ_REPORT_SECONDS
# (a bounded CI run).  Needs clang and its libFuzzer runtime
# (Debian: clang + libclang-rt-<major>-dev); fuzzdeps installs them as root.  New inputs go to
# build-fuzz/corpus-work-<corpus>; the committed seeds (tests/fuzz/corpus/<corpus>) are read only.
# A crash leaves its input in build-fuzz/ (<harness>-crash-*) and fails the leg.
FUZZ_SECONDS ?= 60
FUZZ_REPORT_SECONDS ?= 30
FUZZ_CC ?= clang

fuzzdeps:
	@probe=$$(mktemp -d); printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > $$probe/f.c; \
	if ! { command -v $(FUZZ_CC) >/dev/null 2>&1 && $(FUZZ_CC) -fsanitize=fuzzer $$probe/f.c -o $$probe/f >/dev/null 2>&1; }; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "[fuzzdeps] installing clang and its libFuzzer runtime"; \
	    apt-get update -qq >/dev/null; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang >/dev/null; \
	    major=$$(clang -dumpversion | cut -d. -f1); \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libclang-rt-$$major-dev >/dev/null 2>&1 || \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libclang-common-$$major-dev >/dev/null; \
	  fi; \
	  $(FUZZ_CC) -fsanitize=fuzzer $$probe/f.c -o $$probe/f >/dev/null 2>&1 || { rm -rf $$probe; \
	    echo "[fuzzdeps] $(FUZZ_CC) with libFuzzer not available: apt-get install clang libclang-rt-dev"; exit 1; }; \
	fi; rm -rf $$probe

test-fuzz: fuzzdeps venv
	@$(CMAKE) -S $(ROOT) -B $(ROOT)/build-fuzz -DCMAKE_C_COMPILER=$(FUZZ_CC) -DCODEPROF_BUILD_FUZZ=ON \
	  -DCMAKE_BUILD_TYPE=Debug > $(ROOT)/build-fuzz-configure.log 2>&1 \
	  || { tail -30 $(ROOT)/build-fuzz-configure.log; exit 1; }
	@$(CMAKE) --build $(ROOT)/build-fuzz --target fuzz_spool_reader fuzz_model_reader fuzz_report_reader \
	  -j$(NPROC) \
	  > $(ROOT)/build-fuzz-build.log 2>&1 \
	  || { grep -E -B2 -A6 ": (fatal )?error:|undefined reference" $(ROOT)/build-fuzz-build.log | head -80; exit 1; }
	@half=$$(( $(FUZZ_SECONDS) / 2 )); [ $$half -ge 1 ] || half=1; \
	for pair in spool_reader:spool:$$half model_reader:model:$$half \
	            report_reader:report:$(FUZZ_REPORT_SECONDS); do \
	  h=fuzz_$${pair%%:*}; rest=$${pair#*:}; c=$${rest%%:*}; secs=$${rest##*:}; \
	  mkdir -p $(ROOT)/build-fuzz/corpus-work-$$c; \
	  echo "[test-fuzz] $$h for $$secs s over tests/fuzz/corpus/$$c"; \
	  ( cd $(ROOT)/build-fuzz && ./$$h -max_total_time=$$secs -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
	      -print_final_stats=1 -artifact_prefix=$(ROOT)/build-fuzz/$$h- \
	      corpus-work-$$c $(ROOT)/tests/fuzz/corpus/$$c > $$h.log 2>&1 ) \
	  || { tail -60 $(ROOT)/build-fuzz/$$h.log; \
	       echo "[test-fuzz] FAILED: reproduce with build-fuzz/$$h build-fuzz/$$h-crash-*"; exit 1; }; \
	  grep -E "^(Done|stat::number_of_executed_units|stat::new_units_added)" $(ROOT)/build-fuzz/$$h.log \
	    | sed "s/^/[test-fuzz] $$h: /"; \
	done

# The C tests under ThreadSanitizer (-O1 -g; CP_TSAN_BUILD=1 makes the recording barrier use
# atomics TSan can check).  Some kernels place mappings where TSan's shadow memory must go (a
# high vm.mmap_rnd_bits): TSan then dies with "FATAL: ThreadSanitizer: unexpected memory mapping";
# a probe detects it and the tests then run under `setarch <arch> -R` (no ASLR).  Where neither
# works the leg fails and says why; TSAN_SKIP=1 skips it on purpose.
test-tsan: sysdeps venv
	@if [ "$${TSAN_SKIP:-0}" = 1 ]; then echo "[test-tsan] skipped (TSAN_SKIP=1)"; exit 0; fi; \
	$(CMAKE) -S $(ROOT) -B $(ROOT)/build-tsan -DCODEPROF_BUILD_TESTS=ON -DCODEPROF_SANITIZE=OFF \
	  -DCODEPROF_TSAN=ON -DCODEPROF_BUILD_SHARED=OFF -DCMAKE_BUILD_TYPE=Debug \
	  > $(ROOT)/build-tsan-configure.log 2>&1 \
	  || { tail -30 $(ROOT)/build-tsan-configure.log; exit 1; }; \
	$(CMAKE) --build $(ROOT)/build-tsan -j$(NPROC) > $(ROOT)/build-tsan/build.log 2>&1 \
	  || { grep -E -B2 -A6 ": (fatal )?error:|undefined reference" $(ROOT)/build-tsan/build.log | head -80; exit 1; }; \
	probe=$(ROOT)/build-tsan/tsan-probe; \
	printf '#include <pthread.h>\nstatic void *f(void *a) { return a; }\nint main(void) { pthread_t t; if (pthread_create(&t, 0, f, 0)) return 1; return pthread_join(t, 0); }\n' > $$probe.c; \
	cc -fsanitize=thread -g $$probe.c -o $$probe -pthread \
	  || { echo "[test-tsan] cannot link a ThreadSanitizer program (install libtsan for this gcc)"; exit 1; }; \
	wrap=""; \
	if ! $$probe > $$probe.log 2>&1; then \
	  if grep -q "unexpected memory mapping" $$probe.log && \
	     setarch "$$(uname -m)" -R $$probe > $$probe.log 2>&1; then \
	    wrap="setarch $$(uname -m) -R"; \
	    echo "[test-tsan] this kernel's mmap layout breaks TSan: running the tests under '$$wrap'"; \
	  else \
	    echo "[test-tsan] ThreadSanitizer does not run here:"; head -5 $$probe.log; \
	    echo "[test-tsan] (try: sysctl vm.mmap_rnd_bits=28, or TSAN_SKIP=1 to skip this leg)"; exit 1; \
	  fi; \
	fi; \
	echo "[test-tsan] ctest build-tsan/"; \
	cd $(ROOT)/build-tsan && \
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:die_after_fork=0 \
	$$wrap $(CTEST) --output-on-failure -j$(NPROC)

# The allocator-facing C tests (the heap tracker, the memory sink and build, the native preload
# library's tests) under valgrind's memcheck, on the plain build: invalid accesses, uses of
# uninitialised memory and definite leaks fail the leg.
VALGRIND_TESTS = $(sort $(wildcard $(ROOT)/tests/c/test_heap*.c $(ROOT)/tests/c/test_memsink*.c \
                                   $(ROOT)/tests/c/test_build_mem*.c $(ROOT)/tests/c/test_preload*.c))
test-valgrind: build
	@if ! command -v valgrind >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "[test-valgrind] installing valgrind"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; \
	  else \
	    echo "[test-valgrind] valgrind missing: sudo apt-get install -y valgrind"; exit 1; \
	  fi; \
	fi; \
	rc=0; for src in $(VALGRIND_TESTS); do \
	  t=$$(basename $$src .c); \
	  echo "[test-valgrind] $$t"; \
	  ( cd $(ROOT)/build && timeout 1200 valgrind -q --error-exitcode=1 --leak-check=full \
	      --errors-for-leak-kinds=definite,indirect ./$$t > $(ROOT)/build/$$t.valgrind.log 2>&1 ) \
	    || { rc=1; echo "[test-valgrind] $$t FAILED:"; grep -v '^\[' $(ROOT)/build/$$t.valgrind.log | tail -40; }; \
	done; exit $$rc

# pytest exits 5 when it collects nothing; that is accepted only when no test file exists at all.
define run_pytest
	@if [ ! -d $(ROOT)/tests/python ]; then echo "[$(1)] no tests/python directory"; exit 0; fi; \
	echo "[$(1)] pytest tests/python ($(2))"; \
	rc=0; cd $(ROOT) && timeout $(PYTEST_TIMEOUT) $(2)/bin/python -m pytest -q -p no:cacheprovider tests/python || rc=$$?; \
	if [ $$rc = 5 ] && [ -z "$$(find $(ROOT)/tests/python -name 'test_*.py' -print -quit)" ]; then \
	  echo "[$(1)] no Python tests exist yet"; rc=0; fi; \
	exit $$rc
endef

test-py311: install
	$(call run_pytest,test-py311,$(VENV))

test-py312: install312
	$(call run_pytest,test-py312,$(VENV312))

test-py313: install313
	$(call run_pytest,test-py313,$(VENV313))

# ---------------------------------------------------------------------------
# bench, format, clean
# ---------------------------------------------------------------------------
bench: install
	PATH="$(VENV)/bin:$$PATH" bash bench/run_all.sh

format:
	@command -v clang-format >/dev/null || { echo "clang-format not installed (apt-get install -y clang-format)"; exit 1; }
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-tsan build-fuzz build-py build-configure.log \
	  build-asan-configure.log build-tsan-configure.log build-fuzz-configure.log \
	  build-fuzz-build.log dist \
	  python/*.egg-info profiles
	find . -path ./.venv -prune -o -path ./.venv312 -prune -o -path ./.venv313 -prune \
	  -o -name __pycache__ -type d -print \
	  | xargs rm -rf

distclean: clean
	rm -rf $(VENV) $(VENV312) $(VENV313)
