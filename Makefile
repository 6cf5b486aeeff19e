# hmmwalk workbench: one HMM walk that faults and migrates.
#
#   make              base tree, series branch, VM kernel and hmm-tests (the main job)
#   make check        the whole test pipeline (see README.md)
#
# Everything is built under .work/ (ignored by git); downloads and ccache
# live in ~/.cache/hmmwalk.  KERNEL=/path/to/linux uses your own mainline
# checkout instead of Debian's linux-source-7.3 (a worktree is added).

SHELL := /bin/bash
S := scripts

ifneq ($(KERNEL),)
export USER_KERNEL := $(abspath $(KERNEL))
endif
# scripts/common.sh sets KTREE (the working tree) itself; KERNEL only ever
# names the user's checkout (USER_KERNEL in the scripts).
unexport KERNEL
override KERNEL :=

.PHONY: all base tree export verify kernel check kunit kunit-x86 selftest xe \
	build-patch expect debug bench profile send deps sparse help clean

all: kernel
	@echo "==> done: series tree .work/linux (branch $${BRANCH:-hmm-migrate}), VM kernel .work/build/x86, hmm-tests .work/build/x86-tests"
	@echo "==> next: 'make check' runs every test; 'make help' lists the narrow targets"

# Every target that needs the base tree installs the tools first (nothing
# to do, and no root needed, once they are there): make and make check are
# the whole set-up.
base: deps
	$(S)/base.sh

tree: base
	$(S)/tree.sh

export:
	$(S)/export.sh

verify: base
	$(S)/verify.sh

kernel: tree
	$(S)/kernel.sh

check: base
	$(S)/check.sh

# One KUnit suite in UML (all the series' suites without SUITE=).
kunit: base
	$(S)/kunit.sh um '' '' worktree '$(SUITE)'

# The series' KUnit suites on x86_64 under QEMU (kunit.py run --arch=x86_64
# with the series' *_x86_64.kunitconfig, a kernel of its own).
kunit-x86: base
	$(S)/kunit.sh x86 '' '' worktree '$(SUITE)'

# One hmm-tests test by name (TEST=migrate, or TEST=hmm.hmm_device_private.migrate),
# all of them without TEST=, in the VM on the working tree's kernel.
selftest: base
	$(S)/selftest.sh '$(TEST)'

# Patch N of branch $(BRANCH) built on its own with W=1 and sparse.
build-patch: base
	@test -n "$(N)" || { echo "usage: make build-patch N=<patch number>"; exit 2; }
	$(S)/buildpatch.sh $(N)

# The xe RFC series' patches one by one with DRM_XE (check step 4 runs it).
xe: base
	$(S)/xe.sh

# Regenerate expect/ (base-kernel hmm-tests results) from a base-kernel run.
expect: base
	$(S)/expect.sh

# hmm-tests on a KASAN + PROVE_LOCKING + DEBUG_VM kernel (not part of check).
debug: base
	$(S)/debug.sh '$(TEST)'

# Two walks versus one, and base versus series, timed in TCG VMs (issue 5):
# writes bench/results.md, bench/time-vs-size.png and bench/raw/.
bench: base
	$(S)/bench.sh

# Where plain migrate_vma_setup() migration spends its time, base against
# series (/proc/profile in TCG VMs; not part of check): .work/profile/report.txt.
profile: base
	$(S)/profile.sh

# Both series' emails through b4 (nothing sent); SERIES=fixes|feature|xe for one.
send:
	SERIES='$(SERIES)' scripts/send.sh $(OUT)

# Install the tools (needs root or sudo): what .ci/run does before make check.
deps:
	$(S)/deps.sh

sparse:
	$(S)/sparse.sh

clean:
	rm -rf .work/build .work/check-logs .work/*-run

help:
	@echo 'make                 base tree, series branch, VM kernel and hmm-tests (the main job)'
	@echo 'make check           every test step (README.md); logs in .work/check-logs'
	@echo 'make base|tree       the base tree / branches hmm-fixes, hmm-migrate from patches/ (FORCE=1 to recreate)'
	@echo 'make export|verify   branch -> patches/ and copies / fresh base + patches/ == copies'
	@echo 'make kunit [SUITE=]  KUnit in UML;  make kunit-x86 [SUITE=]  on x86_64 under QEMU (every case)'
	@echo 'make selftest [TEST=name]   hmm-tests in the VM;  make debug [TEST=]  on a KASAN/lockdep kernel'
	@echo 'make build-patch N=n patch n, counted over both series (the fixes first), built alone, W=1 + sparse'
	@echo 'make expect          regenerate expect/ from a base-kernel run'
	@echo 'make bench           benchmarks (bench/results.md)'
	@echo 'make profile         base vs series, /proc/profile of plain migration (PROF_SIZE= PROF_REPS= PROF_ROUNDS=)'
	@echo 'make send [SERIES=fixes|feature|xe] [OUT=dir]  b4 emails of the series, nothing sent'
	@echo 'make xe              the xe RFC patches one by one with DRM_XE, W=1 + sparse (scripts/xe.sh)'
	@echo 'make deps            install the tools (root or sudo)'
	@echo ''
	@echo 'Settings (make VAR=value, or the environment):'
	@echo '  KERNEL=/path/to/linux   your own mainline checkout as the base (a worktree is added)'
	@echo '  FORCE=1                 make tree: recreate branches that differ from patches/'
	@echo '  SUITE= TEST= N= SERIES= OUT=   the target arguments above'
	@echo '  JOBS=n                  parallel kernel build jobs (default: cores + 1)'
	@echo '  VM_ACCEL=auto|kvm|tcg   QEMU accelerator (auto: KVM only if a probe guest boots)'
	@echo '  VM_TIMEOUT= VM_MEM= VM_SMP= VM_APPEND= VM_ZRAM= VM_EACH=regex   VM runs (scripts/vm.sh)'
	@echo '  SPARSE=/path/to/sparse  the sparse to use (default: the one make deps builds)'
	@echo '  MIRROR=url              the Debian mirror for the private apt lists'
	@echo '  BENCH_*                 benchmark sizes, repetitions and rounds (scripts/bench.sh header)'
	@echo '  WORK= CACHE=            work directory (.work) and download/ccache cache (~/.cache/hmmwalk)'
