# Wurley: build, run and test. `make help` lists the targets.

TARGET  := aarch64-unknown-none-softfloat
ELF     := target/$(TARGET)/release/wurley
IMAGE   := target/wurley.bin
HOST    := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')

SMP     ?= 2
MEM     ?= 1G
CPU     ?= max,pauth-impdef=on
BOOTARGS ?=
export SMP MEM CPU BOOTARGS

.PHONY: help deps build run debug test test-host test-qemu fmt-check clippy clean

help:
	@echo "make run      boot Wurley in QEMU (SMP=$(SMP) MEM=$(MEM) BOOTARGS=...); quit with Ctrl-A X"
	@echo "make test     everything CI runs: format, clippy, host tests, QEMU boot tests"
	@echo "make debug    start QEMU halted with a gdb stub and print the gdb command"
	@echo "make build    build $(IMAGE) (arm64 Image format) and $(ELF) (ELF with symbols)"
	@echo "make deps     install QEMU, dtc, llvm-objcopy and the Rust target if missing"

deps:
	@qemu/deps.sh

build: deps
	cargo build --release
	llvm-objcopy -O binary $(ELF) $(IMAGE)
	@echo "built $(IMAGE) ($$(stat -c %s $(IMAGE)) bytes)"

run: build
	qemu/run.sh $(IMAGE)

debug: build
	@echo "QEMU is halted with a gdb stub on localhost:1234. In another terminal run:"
	@echo "    gdb-multiarch $(ELF) -ex 'target remote localhost:1234'"
	@echo "(the image is position independent: once it is loaded at its base, e.g. 0x40200000 on"
	@echo " QEMU virt, use 'add-symbol-file $(ELF) -o 0x40200000' so symbols match)"
	qemu/run.sh $(IMAGE) -S -gdb tcp::1234

fmt-check:
	cargo fmt --all -- --check

clippy: deps
	cargo clippy --workspace --target $(HOST) --all-targets -- -D warnings
	cargo clippy --release -- -D warnings

test-host: deps
	cargo test --workspace --target $(HOST) --lib --bins

test-qemu: build
	WURLEY_IMAGE=$(IMAGE) cargo test --target $(HOST) --test '*'

test: fmt-check clippy build
	WURLEY_IMAGE=$(IMAGE) cargo test --workspace --target $(HOST)

clean:
	cargo clean
