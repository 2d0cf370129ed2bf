# Wurley: build, run and test. `make help` lists the targets.

TARGET  := aarch64-unknown-none-softfloat
ELF     := target/$(TARGET)/release/wurley
IMAGE   := target/wurley.bin
HOST    := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
GUEST   := target/guest
BUNDLE  := target/bundle.dtb

# The guest: Debian's arm64 cloud kernel and a busybox initramfs (qemu/guest/).
KERNEL    ?= $(GUEST)/Image
INITRD    ?= $(GUEST)/initramfs.cpio.gz
BOOTARGS  ?= console=ttyAMA0 rdinit=/init
VCPUS     ?= 2
GUEST_MEM ?= 512M
VMS       ?= 1
# The machine: one physical CPU per vCPU by default (vCPUs are pinned).
SMP       ?= $(shell echo $$(( $(VCPUS) * $(VMS) )))
MEM       ?= $(if $(filter 1,$(VMS)),1G,2G)
CPU       ?= max,pauth-impdef=on
# Options for the hypervisor itself (/chosen/bootargs), e.g. loglevel=debug.
WURLEY_ARGS ?=
export SMP MEM CPU KERNEL INITRD VCPUS GUEST_MEM

.PHONY: help deps build guest bundle run run-bare run-hyp debug bench test test-host test-qemu \
        fmt-check clippy clean

help:
	@echo "make run       Linux ($(VCPUS) vCPUs) under Wurley in QEMU, a shell on the console; quit: Ctrl-A X"
	@echo "               overrides: KERNEL= INITRD= BOOTARGS= VCPUS= GUEST_MEM= VMS= SMP= MEM= WURLEY_ARGS="
	@echo "make run-bare  the same kernel and initramfs directly under QEMU, for comparison"
	@echo "make run-hyp   Wurley alone (no guests)"
	@echo "make test      everything CI runs: format, clippy, host tests, QEMU and Linux tests"
	@echo "make bench     hypercall, IPC, interrupt and boot costs under QEMU -icount; docs/benchmarks.md"
	@echo "make debug     start QEMU halted with a gdb stub and print the gdb command"
	@echo "make build     build $(IMAGE) (arm64 Image format) and $(ELF) (ELF with symbols)"
	@echo "make guest     fetch the Debian kernel and build the initramfs into $(GUEST)"
	@echo "make deps      install QEMU, dtc, llvm-objcopy and the Rust target if missing"

deps:
	@qemu/deps.sh

build: deps
	cargo build --release
	llvm-objcopy -O binary $(ELF) $(IMAGE)
	@echo "built $(IMAGE) ($$(stat -c %s $(IMAGE)) bytes)"

$(GUEST)/Image: qemu/guest/fetch-kernel.sh qemu/guest/lib.sh
	qemu/guest/fetch-kernel.sh $(GUEST)

# The initramfs carries the kernel's modules from $(GUEST)/modules/, which fetch-kernel.sh writes
# before the Image (and touches the Image last when they are up to date): depending on the Image
# rebuilds the initramfs when the kernel or fetch-kernel.sh's module list changes.
$(GUEST)/initramfs.cpio.gz: qemu/guest/init qemu/guest/build-initramfs.sh qemu/guest/lib.sh $(GUEST)/Image
	qemu/guest/build-initramfs.sh $(GUEST)

guest: deps $(GUEST)/Image $(GUEST)/initramfs.cpio.gz
	@echo "guest kernel: $$(cat $(GUEST)/kernel-version)"

bundle: guest
	qemu/mkbundle.sh $(BUNDLE) $(KERNEL) $(INITRD) "$(BOOTARGS)" $(VCPUS) $(GUEST_MEM) $(VMS)

run: build bundle
	BOOTARGS="$(WURLEY_ARGS)" INITRD=$(BUNDLE) qemu/run.sh $(IMAGE)

run-bare: guest
	BOOTARGS="$(BOOTARGS)" qemu/guest/run-bare.sh $(if $(TEST),wurley.test=$(TEST))

run-hyp: build
	BOOTARGS="$(WURLEY_ARGS)" INITRD= qemu/run.sh $(IMAGE)

debug: build
	@command -v gdb-multiarch >/dev/null || echo "(install gdb-multiarch: sudo apt-get install gdb-multiarch)"
	@echo "QEMU is halted with a gdb stub on localhost:1234. In another terminal run:"
	@echo "    gdb-multiarch -ex 'add-symbol-file $(ELF) -o 0x40200000' -ex 'target remote localhost:1234'"
	@echo "(the image is position independent and QEMU virt loads it at 0x40200000)"
	BOOTARGS="$(WURLEY_ARGS)" INITRD= qemu/run.sh $(IMAGE) -S -gdb tcp::1234

# Timings are reported, never asserted. BENCH_ARGS: bench/bench.py's options (e.g. --no-boot).
bench: build guest
	python3 bench/bench.py $(BENCH_ARGS)

fmt-check:
	cargo fmt --all -- --check

clippy: deps
	cargo clippy --workspace --target $(HOST) --all-targets -- -D warnings
	cargo clippy --release -- -D warnings
	cargo clippy --release -p wurley-rm -p wurley-rt -p vmapi-guest -p hypcall-probe -p bench-guest \
		--target aarch64-unknown-none-softfloat -- -D warnings

test-host: deps
	cargo test --workspace --target $(HOST) --lib --bins

test-qemu: build guest
	WURLEY_IMAGE=$(IMAGE) cargo test --target $(HOST) --test '*'

test: fmt-check clippy build guest
	@echo "guest kernel: $$(cat $(GUEST)/kernel-version)"
	WURLEY_IMAGE=$(IMAGE) cargo test --workspace --target $(HOST)

clean:
	cargo clean
