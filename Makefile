# rampart: everything installs into .venv from PyPI; Debian packages only where no wheel exists (Icarus Verilog).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
JOBS   ?= 2

.PHONY: install sysdeps test test-all demo bench lint clean

install: $(STAMP) sysdeps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e .
	touch $(STAMP)

# Debian packages, only where no wheel exists: Icarus Verilog (the second simulator of the cross-check), the
# lz4/zlib headers Verilator's FST waveform writer compiles against, and Chromium (the HTML report is checked in a
# real headless browser, tb/reports/test_report_browser.py), and for the PulseDL-II RV32 SoC (rtl/pulsedl) the
# bare-metal RISC-V cross compiler, its C library and qemu-user (qemu-riscv32, the ISA reference).
SYSDEPS_MISSING = $(shell command -v iverilog >/dev/null 2>&1 || echo iverilog; \
                          test -f /usr/include/lz4.h || echo liblz4-dev; test -f /usr/include/zlib.h || echo zlib1g-dev; \
                          command -v chromium >/dev/null 2>&1 || echo chromium; \
                          command -v riscv64-unknown-elf-gcc >/dev/null 2>&1 || echo gcc-riscv64-unknown-elf; \
                          test -d /usr/lib/picolibc/riscv64-unknown-elf || echo picolibc-riscv64-unknown-elf; \
                          command -v qemu-riscv32 >/dev/null 2>&1 || echo qemu-user)
sysdeps:
	@if [ -n "$(strip $(SYSDEPS_MISSING))" ]; then \
	  echo "installing Debian packages: $(SYSDEPS_MISSING)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSDEPS_MISSING) >/dev/null; fi

lint: install
	$(VENV)/bin/ruff check .

test: install lint
	$(PY) -m pytest -q -n $(JOBS) -m "not slow"

test-all: install lint
	$(PY) -m pytest -q -n $(JOBS)

demo: install
	$(VENV)/bin/rampart demo -o demo-out

bench: install
	$(PY) benchmarks/sim_speed.py --write BENCHMARKS.md
	$(PY) benchmarks/sim_speed.py --design npu --write BENCHMARKS.md
	$(PY) benchmarks/fi_speed.py --write BENCHMARKS.md

clean:
	rm -rf $(VENV) build demo-out .pytest_cache
