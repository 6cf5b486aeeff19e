// SPDX-License-Identifier: GPL-2.0
/*
 * hmm-bench: time faulting and migrating a range to the test_hmm device in
 * two walks (hmm_range_fault(REQ_FAULT) then migrate_vma_setup(),
 * HMM_DMIRROR_MIGRATE_FAULT_TWO_WALKS) and in one walk
 * (hmm_range_fault(REQ_FAULT | REQ_MIGRATE), HMM_DMIRROR_MIGRATE_ON_FAULT),
 * and plain migrate_vma_setup() migration (HMM_DMIRROR_MIGRATE_TO_DEV, the
 * only one the base kernel has, and what nouveau calls per chunk), and the
 * calls of xe's and amdkfd's fault handlers in their order
 * (HMM_DMIRROR_MIGRATE_LIKE_XE, HMM_DMIRROR_MIGRATE_LIKE_AMDKFD).  Runs as
 * root inside the bench VM; prints one raw line per measurement,
 * scripts/benchreport.py does the statistics.
 *
 *   hmm-bench info
 *   hmm-bench seq   [-s SIZES] [-r REPS] [-c SCENARIOS] [-m SCN=MiB,...]
 *                   [-R SCN=N,...] [-g]
 *   hmm-bench plain [-s SIZES] [-r REPS] [-c present,thp] [-o] [-g] [-P]
 *   hmm-bench drivers [-s SIZES] [-r REPS] [-c SCENARIOS] [-m SCN=MiB,...]
 *   hmm-bench hrf   [-s SIZES] [-r REPS] [-g]
 *   hmm-bench walks [-s SIZE]  [-c SCENARIOS] [-p]
 *   hmm-bench prof  reset|dump
 *
 * SIZES are MiB, comma separated; REPS is one count or one per size; -m
 * caps the size of some scenarios (e.g. cow=64), -R their repetitions.
 * plain -o also runs the one walk, interleaved with the plain migration.
 * -g times the kernel functions of the setup phase with the function_graph
 * tracer (depth 1: hmm_range_fault, migrate_vma_setup, migrate_vma_pages,
 * migrate_vma_finalize) during the whole-migration runs.  "walks" counts
 * calls of the page-table walk entry points (and of handle_mm_fault) with
 * kprobe events, and the MMU notifier invalidations they cause; -p: the
 * plain sequence only (base kernel).  "drivers" times the whole migration
 * of the one walk against the three drivers' sequences, interleaved, the
 * order rotating per repetition.  "hrf" times hmm_range_fault() without
 * HMM_PFN_REQ_MIGRATE, as both kernels have it: HMM_DMIRROR_READ (faulting)
 * on present and never-touched pages, HMM_DMIRROR_SNAPSHOT on present pages.
 *
 * -P (any mode but info and prof): reset /proc/profile after the warm-up and
 * print it at the end, as "prof dump" does.  "prof" resets or prints the
 * kernel's /proc/profile (CONFIG_PROFILING, booted with profile=N: make
 * profile): "P <step>" (the bytes of text a counter covers), then
 * "p <index> <hits>" for every non-zero counter (scripts/profreport.py maps
 * them to functions).
 *
 * Output lines:
 *   T <scenario> <MiB> <seq> <phase> <rep> <ms> <ret> <cpages> [<func>=<us>...]
 *   W <scenario> <MiB> <seq> <phase> ret=<ret> <probe>=<hits>... [migrate_invalidations=<n>]
 *   I <key> <value>
 * phase "drivers": a whole migration of the drivers mode.
 * seq: two, one, plain, xe, amdkfd, xe-one-walk (xe's with MIGRATE_VMA_FAULT,
 * as the xe RFC calls it), hrf-fault, hrf-snapshot; phase: setup (SETUP_ONLY: collect, then put
 * everything back) or whole (fault + migrate + read back through the device).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* lib/test_hmm_uapi.h of the series (the base has 0x00-0x09 only). */
struct hmm_dmirror_cmd {
	uint64_t addr, ptr, npages, cpages, faults;
};
#define HMM_DMIRROR_READ		_IOWR('H', 0x00, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_MIGRATE_TO_DEV	_IOWR('H', 0x02, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_SNAPSHOT		_IOWR('H', 0x04, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_FLAGS		_IOWR('H', 0x08, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_MIGRATE_ON_FAULT	_IOWR('H', 0x0a, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_MIGRATE_FAULT_TWO_WALKS _IOWR('H', 0x0b, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_MIGRATE_LIKE_XE	_IOWR('H', 0x0d, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_MIGRATE_LIKE_AMDKFD	_IOWR('H', 0x0e, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_FLAG_NO_COMPOUND	(1ULL << 1)
#define HMM_DMIRROR_FLAG_READ_FAULT	(1ULL << 2)
#define HMM_DMIRROR_FLAG_SETUP_ONLY	(1ULL << 3)
#define HMM_DMIRROR_FLAG_SETUP_FAULT	(1ULL << 4)

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

#define MiB (1024UL * 1024)
#define PMD (2 * MiB)
#define TRACEFS "/sys/kernel/tracing"

static long pagesz;
/* the phase printed for whole migrations: "whole", or "drivers" in that mode */
static const char *whole_phase = "whole";
static int dev_fd = -1;
static char *readback;		/* HMM ioctls copy the device's view here */
static size_t readback_len;

enum scn { PRESENT, UNTOUCHED, ZEROPAGE, ROFILE, COW, THP, THP_SPLIT, SWAP, NSCN };
static const char *const scn_name[NSCN] = {
	"present", "untouched", "zeropage", "rofile", "cow", "thp", "thp-split", "swap",
};
enum seq { TWO, ONE, PLAIN, XE, KFD, XE1, NSEQ, HRF_FAULT = NSEQ, HRF_SNAPSHOT };
static const char *const seq_name[] = {
	"two", "one", "plain", "xe", "amdkfd", "xe-one-walk", "hrf-fault", "hrf-snapshot",
};
/* what the base kernel has too */
#define BASE_SEQ(q) ((q) == PLAIN || (q) == HRF_FAULT || (q) == HRF_SNAPSHOT)

static void die(const char *what)
{
	fprintf(stderr, "hmm-bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- tracefs ---------------------------------------------------------- */

static int tfs_write(const char *file, const char *val, int append)
{
	char path[256];
	int fd, ret = 0;

	snprintf(path, sizeof(path), TRACEFS "/%s", file);
	fd = open(path, O_WRONLY | (append ? O_APPEND : O_TRUNC));
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static char *tfs_read(const char *file)
{
	char path[256], *buf = NULL;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), TRACEFS "/%s", file);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	for (;;) {
		if (cap - len < 65536) {
			cap = cap ? 2 * cap : 1 << 20;
			buf = realloc(buf, cap + 1);
			if (!buf)
				die("realloc");
		}
		n = read(fd, buf + len, cap - len);
		if (n <= 0)
			break;
		len += n;
	}
	close(fd);
	buf[len] = 0;
	return buf;
}

/* ---- the function_graph tracer for the setup phase ------------------- */

static const char *const graph_funcs[] = {
	"hmm_range_fault", "migrate_vma_setup", "migrate_vma_pages",
	"migrate_vma_finalize",
};
#define NGRAPH (sizeof(graph_funcs) / sizeof(graph_funcs[0]))
static int graph_on;

static int graph_setup(void)
{
	size_t i;
	int ret = 0;

	tfs_write("tracing_on", "0", 0);
	tfs_write("current_tracer", "nop", 0);
	/* one function per write: the filter takes the first name of each */
	for (i = 0; i < NGRAPH; i++)
		ret |= tfs_write("set_ftrace_filter", graph_funcs[i], i > 0);
	if (ret || tfs_write("max_graph_depth", "1", 0) ||
	    tfs_write("options/funcgraph-tail", "1", 0) ||
	    tfs_write("buffer_size_kb", "4096", 0) ||
	    tfs_write("current_tracer", "function_graph", 0)) {
		fprintf(stderr, "hmm-bench: no function_graph tracer: setup not traced\n");
		return -1;
	}
	graph_on = 1;
	return 0;
}

static void graph_teardown(void)
{
	if (!graph_on)
		return;
	tfs_write("tracing_on", "0", 0);
	tfs_write("current_tracer", "nop", 0);
	tfs_write("set_ftrace_filter", "", 0);
	tfs_write("max_graph_depth", "0", 0);
	graph_on = 0;
}

static void graph_start(void)
{
	if (!graph_on)
		return;
	tfs_write("trace", "", 0);	/* clear */
	tfs_write("tracing_on", "1", 0);
}

/* Sum the durations of the depth-0 calls per function into us[]. */
static void graph_stop(double *us, int *calls)
{
	char *buf, *line, *save;
	size_t i;

	memset(us, 0, NGRAPH * sizeof(*us));
	memset(calls, 0, NGRAPH * sizeof(*calls));
	if (!graph_on)
		return;
	tfs_write("tracing_on", "0", 0);
	buf = tfs_read("trace");
	if (!buf)
		return;
	if (getenv("HMM_BENCH_DEBUG")) {
		char *x = tfs_read("set_ftrace_filter");

		printf("filter: %s\n", x);
		free(x);
		x = tfs_read("max_graph_depth");
		printf("depth: %s\n", x);
		free(x);
		x = tfs_read("current_tracer");
		printf("tracer: %s\n", x);
		free(x);
		fputs(buf, stdout);
	}
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *u = strstr(line, " us ");
		char *bar, *p;
		double d;

		if (!u || line[0] == '#')
			continue;
		/* the number ends right before " us " */
		p = u;
		while (p > line && (p[-1] == '.' || (p[-1] >= '0' && p[-1] <= '9')))
			p--;
		d = strtod(p, NULL);
		bar = strchr(u, '|');
		if (!bar)
			continue;
		for (i = 0; i < NGRAPH; i++) {
			size_t n = strlen(graph_funcs[i]);
			char *f = strstr(bar, graph_funcs[i]);

			/* "func();", or "}" with the name in a comment */
			if (f && (f[n] == '(' || f[n] == ' ')) {
				us[i] += d;
				calls[i]++;
				break;
			}
		}
	}
	free(buf);
}

/* ---- kprobe events for the walk counts -------------------------------- */

static const char *const probe_funcs[] = {
	/* the walk entry points of mm/pagewalk.c */
	"walk_page_range", "walk_page_range_mm_unsafe", "walk_page_range_vma",
	"walk_page_range_vma_unsafe", "walk_page_vma", "walk_page_mapping",
	"__walk_page_range",
	/* what the sequences call, and the faults they take */
	"hmm_range_fault", "migrate_vma_setup", "handle_mm_fault",
	/* every MMU notifier invalidation, the migrations' own included */
	"__mmu_notifier_invalidate_range_start",
};
#define NPROBE (sizeof(probe_funcs) / sizeof(probe_funcs[0]))
static int probe_ok[NPROBE];
static int migrate_probe_ok;

static void probes_setup(void)
{
	char buf[256];
	size_t i;

	tfs_write("tracing_on", "0", 0);
	tfs_write("current_tracer", "nop", 0);
	tfs_write("events/hb/enable", "0", 0);
	tfs_write("kprobe_events", "", 0);
	for (i = 0; i < NPROBE; i++) {
		snprintf(buf, sizeof(buf), "p:hb/%s %s\n", probe_funcs[i],
			 probe_funcs[i]);
		probe_ok[i] = tfs_write("kprobe_events", buf, 1) == 0;
		if (!probe_ok[i])
			printf("I noprobe %s\n", probe_funcs[i]);
	}
	/*
	 * MMU_NOTIFY_MIGRATE invalidations: the same function with the event
	 * of its struct mmu_notifier_range (mm, start, end, flags, event) and
	 * a filter; kprobe_profile counts every hit, filtered or not, so
	 * these are counted in the trace buffer.
	 */
	migrate_probe_ok =
		!tfs_write("kprobe_events",
			   "p:hb/inval_migrate __mmu_notifier_invalidate_range_start ev=+28(%di):u32\n", 1) &&
		!tfs_write("events/hb/inval_migrate/filter", "ev == 6", 0);
	if (!migrate_probe_ok)
		printf("I noprobe inval_migrate\n");
	if (tfs_write("events/hb/enable", "1", 0))
		fprintf(stderr, "hmm-bench: cannot enable the kprobe events\n");
}

static void migrate_count_start(void)
{
	if (!migrate_probe_ok)
		return;
	tfs_write("trace", "", 0);
	tfs_write("tracing_on", "1", 0);
}

static long migrate_count_stop(void)
{
	char *buf, *p;
	long n = 0;

	if (!migrate_probe_ok)
		return -1;
	tfs_write("tracing_on", "0", 0);
	buf = tfs_read("trace");
	for (p = buf; p && (p = strstr(p, " inval_migrate:")); p++)
		n++;
	free(buf);
	return n;
}

static void probes_teardown(void)
{
	tfs_write("events/hb/enable", "0", 0);
	tfs_write("kprobe_events", "", 0);
}

/* kprobe_profile: "<event> <hits> <misses>" per line */
static void probes_read(unsigned long *hits)
{
	char *buf = tfs_read("kprobe_profile"), *line, *save;
	size_t i;

	memset(hits, 0, NPROBE * sizeof(*hits));
	if (!buf)
		return;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char name[128];
		unsigned long h;

		if (sscanf(line, "%127s %lu", name, &h) != 2)
			continue;
		for (i = 0; i < NPROBE; i++) {
			const char *n = strrchr(name, '/');

			n = n ? n + 1 : name;
			if (probe_ok[i] && !strcmp(n, probe_funcs[i]))
				hits[i] = h;
		}
	}
	free(buf);
}

/* ---- memory per scenario ---------------------------------------------- */

struct region {
	char *p;
	size_t len;
	pid_t child;
};

static int file_fd = -1;
static size_t file_len;

/* A tmpfs file with data in every page, for the read-only scenario. */
static void rofile_create(size_t len)
{
	char *buf = malloc(MiB);
	size_t off;

	if (file_fd >= 0 && file_len == len)
		return;
	if (file_fd >= 0)
		close(file_fd);
	unlink("/tmp/hmm-bench.file");
	file_fd = open("/tmp/hmm-bench.file", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (file_fd < 0 || !buf)
		die("/tmp/hmm-bench.file");
	memset(buf, 0x5a, MiB);
	for (off = 0; off < len; off += MiB)
		if (pwrite(file_fd, buf, MiB, off) != (ssize_t)MiB)
			die("pwrite");
	free(buf);
	file_len = len;
}

static void rofile_drop(void)
{
	if (file_fd >= 0)
		close(file_fd);
	file_fd = -1;
	unlink("/tmp/hmm-bench.file");
}

static unsigned long swap_kb(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];
	unsigned long kb = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Swap: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static unsigned long anon_huge_kb(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];
	unsigned long kb = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static int checked_thp, checked_swap;

static void prepare(enum scn s, size_t len, struct region *r)
{
	char *map, *p;
	size_t i;

	map = mmap(NULL, len + PMD, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (map == MAP_FAILED)
		die("mmap");
	p = (char *)(((uintptr_t)map + PMD - 1) & ~(PMD - 1));
	if (p > map)
		munmap(map, p - map);
	munmap(p + len, map + PMD - p);
	if (s == ROFILE) {
		if (mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED,
			 file_fd, 0) == MAP_FAILED)
			die("mmap file");
	}
	r->p = p;
	r->len = len;
	r->child = 0;
	madvise(p, len, (s == THP || s == THP_SPLIT) ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);

	switch (s) {
	case UNTOUCHED:
		break;
	case ZEROPAGE:
	case ROFILE: {
		volatile char sum = 0;

		for (i = 0; i < len; i += pagesz)
			sum += p[i];
		break;
	}
	case PRESENT:
	case COW:
	case THP:
	case THP_SPLIT:
	case SWAP:
		for (i = 0; i < len; i += pagesz)
			*(unsigned long *)(p + i) = i | 1;
		break;
	default:
		break;
	}
	if ((s == THP || s == THP_SPLIT) && !checked_thp) {
		printf("I thp_backed_kb %lu of %zu\n", anon_huge_kb(), len / 1024);
		checked_thp = 1;
	}
	if (s == SWAP) {
		unsigned long before = swap_kb();

		if (madvise(p, len, MADV_PAGEOUT))
			die("MADV_PAGEOUT");
		if (!checked_swap) {
			printf("I swapped_kb %lu of %zu\n", swap_kb() - before, len / 1024);
			checked_swap = 1;
		}
	}
	if (s == COW) {
		fflush(stdout);
		r->child = fork();
		if (r->child < 0)
			die("fork");
		if (r->child == 0) {
			for (;;)
				pause();
		}
	}
}

static void release(struct region *r)
{
	if (r->child > 0) {
		kill(r->child, SIGKILL);
		waitpid(r->child, NULL, 0);
	}
	munmap(r->p, r->len);
}

/* ---- the measured operations ----------------------------------------- */

static int set_flags(uint64_t flags)
{
	struct hmm_dmirror_cmd cmd = { .npages = flags };

	return ioctl(dev_fd, HMM_DMIRROR_FLAGS, &cmd) ? -errno : 0;
}

static int do_cmd(unsigned long req, struct region *r, uint64_t *cpages)
{
	struct hmm_dmirror_cmd cmd = {
		.addr = (uintptr_t)r->p,
		.ptr = (uintptr_t)readback,
		.npages = r->len / pagesz,
	};
	int ret;

	do
		ret = ioctl(dev_fd, req, &cmd) ? -errno : 0;
	while (ret == -EINTR);
	*cpages = cmd.cpages;
	return ret;
}

static const unsigned long seq_req[] = {
	HMM_DMIRROR_MIGRATE_FAULT_TWO_WALKS,
	HMM_DMIRROR_MIGRATE_ON_FAULT,
	HMM_DMIRROR_MIGRATE_TO_DEV,
	HMM_DMIRROR_MIGRATE_LIKE_XE,
	HMM_DMIRROR_MIGRATE_LIKE_AMDKFD,
	HMM_DMIRROR_MIGRATE_LIKE_XE,	/* with HMM_DMIRROR_FLAG_SETUP_FAULT */
	HMM_DMIRROR_READ,	/* hmm_range_fault(REQ_FAULT), 64 pages a call */
	HMM_DMIRROR_SNAPSHOT,	/* hmm_range_fault() without faulting */
};

static void measure(enum scn s, size_t len, enum seq q, int setup, int rep,
		    int trace)
{
	struct region r;
	uint64_t flags = 0, cpages = 0;
	double t0, t1, us[NGRAPH];
	int calls[NGRAPH], ret;
	size_t i;

	prepare(s, len, &r);
	if (setup)
		flags |= HMM_DMIRROR_FLAG_SETUP_ONLY;
	if (s == THP_SPLIT)
		flags |= HMM_DMIRROR_FLAG_NO_COMPOUND;
	if (q == XE1)
		flags |= HMM_DMIRROR_FLAG_SETUP_FAULT;
	if (!BASE_SEQ(q) && set_flags(flags))
		die("HMM_DMIRROR_FLAGS");
	if (BASE_SEQ(q))
		set_flags(0);	/* the series' kernel; 7.3 refuses it */
	if (trace)
		graph_start();
	t0 = now_ms();
	ret = do_cmd(seq_req[q], &r, &cpages);
	t1 = now_ms();
	if (trace)
		graph_stop(us, calls);
	release(&r);
	printf("T %s %zu %s %s %d %.3f %d %llu", scn_name[s], len / MiB,
	       seq_name[q], setup ? "setup" : whole_phase, rep, t1 - t0, ret,
	       (unsigned long long)cpages);
	if (trace && graph_on)
		for (i = 0; i < NGRAPH; i++)
			printf(" %s=%.1f/%d", graph_funcs[i], us[i], calls[i]);
	printf("\n");
	fflush(stdout);
}

/* ---- options ------------------------------------------------------------ */

static int parse_list(const char *s, long *out, int max)
{
	int n = 0;

	while (s && *s && n < max) {
		out[n++] = strtol(s, (char **)&s, 10);
		if (*s == ',')
			s++;
	}
	return n;
}

static int parse_scn(const char *s, int *on)
{
	char buf[256], *t, *save;
	int i, any;

	snprintf(buf, sizeof(buf), "%s", s);
	for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		any = 0;
		for (i = 0; i < NSCN; i++)
			if (!strcmp(t, scn_name[i]))
				on[i] = any = 1;
		if (!any) {
			fprintf(stderr, "hmm-bench: unknown scenario %s\n", t);
			exit(2);
		}
	}
	return 0;
}

static int have_swap(void)
{
	FILE *f = fopen("/proc/swaps", "r");
	char line[256];
	int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n++;
	fclose(f);
	return n > 1;
}

static void cat(const char *key, const char *path)
{
	char line[512];
	FILE *f = fopen(path, "r");

	if (!f)
		return;
	if (fgets(line, sizeof(line), f))
		printf("I %s %s", key, line);
	fclose(f);
}

/* /proc/profile: one u32 step, then one u32 counter per step bytes of text. */
static int prof(const char *what)
{
	uint32_t buf[4096];
	unsigned long idx = 0;
	ssize_t n, i;
	int fd;

	fd = open("/proc/profile", strcmp(what, "reset") ? O_RDONLY : O_WRONLY);
	if (fd < 0)
		die("/proc/profile (a kernel with CONFIG_PROFILING booted with profile=N)");
	if (!strcmp(what, "reset")) {
		/* not sizeof(int) bytes: that would set the multiplier */
		if (write(fd, "reset\n", 6) != 6)
			die("reset /proc/profile");
		close(fd);
		return 0;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (i = 0; i < n / 4; i++, idx++) {
			if (idx == 0)
				printf("P %u\n", buf[0]);
			else if (buf[i])
				printf("p %lu %u\n", idx - 1, buf[i]);
		}
	}
	close(fd);
	return n < 0;
}

static void info(void)
{
	cat("kernel", "/proc/sys/kernel/osrelease");
	cat("cmdline", "/proc/cmdline");
	cat("thp_enabled", "/sys/kernel/mm/transparent_hugepage/enabled");
	cat("thp_defrag", "/sys/kernel/mm/transparent_hugepage/defrag");
	cat("clocksource", "/sys/devices/system/clocksource/clocksource0/current_clocksource");
	cat("memtotal", "/proc/meminfo");
	printf("I swap %s\n", have_swap() ? "yes" : "no");
	printf("I ncpu %ld\n", sysconf(_SC_NPROCESSORS_ONLN));
}

int main(int argc, char **argv)
{
	long sizes[16] = { 2, 8, 64, 256, 512 }, reps[16] = { 5 };
	int nsizes = 5, nreps = 1, on[NSCN] = { 0 }, graph = 0, plain_only = 0;
	long maxsize[NSCN] = { 0 }, maxreps[NSCN] = { 0 };
	int with_one = 0, cflag = 0, profile = 0;
	const char *mode;
	int opt, i, si;
	size_t maxlen;

	setvbuf(stdout, NULL, _IOLBF, 0);
	pagesz = sysconf(_SC_PAGESIZE);
	if (argc < 2) {
		fprintf(stderr, "usage: hmm-bench info|seq|plain|walks [options]\n");
		return 2;
	}
	mode = argv[1];
	optind = 2;
	while ((opt = getopt(argc, argv, "s:r:c:m:R:gpoP")) != -1) {
		switch (opt) {
		case 'o': with_one = 1; break;
		case 'P': profile = 1; break;
		case 'm':
		case 'R': {
			/* scenario=MiB,...: the largest size for a scenario */
			char buf[256], *t, *save, *eq;

			snprintf(buf, sizeof(buf), "%s", optarg);
			for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				eq = strchr(t, '=');
				if (!eq)
					continue;
				*eq = 0;
				for (i = 0; i < NSCN; i++)
					if (!strcmp(t, scn_name[i]))
						(opt == 'm' ? maxsize : maxreps)[i] = atol(eq + 1);
			}
			break;
		}
		case 's': nsizes = parse_list(optarg, sizes, 16); break;
		case 'r': nreps = parse_list(optarg, reps, 16); break;
		case 'c': parse_scn(optarg, on); cflag = 1; break;
		case 'g': graph = 1; break;
		case 'p': plain_only = 1; break;
		default: return 2;
		}
	}
	for (i = 0; i < NSCN; i++)
		if (on[i])
			break;
	if (i == NSCN)
		for (i = 0; i < NSCN; i++)
			on[i] = 1;
	if (!strcmp(mode, "info")) {
		info();
		return 0;
	}
	if (!strcmp(mode, "prof"))
		return prof(argc > optind ? argv[optind] : "dump");

	dev_fd = open("/dev/hmm_dmirror0", O_RDWR);
	if (dev_fd < 0)
		die("/dev/hmm_dmirror0");
	maxlen = 0;
	for (si = 0; si < nsizes; si++)
		if ((size_t)sizes[si] * MiB > maxlen)
			maxlen = sizes[si] * MiB;
	readback_len = maxlen;
	readback = mmap(NULL, maxlen, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (readback == MAP_FAILED)
		die("mmap readback");
	/* 4 KiB pages, so that AnonHugePages counts the scenarios' THPs only */
	madvise(readback, maxlen, MADV_NOHUGEPAGE);
	madvise(readback, maxlen, MADV_DONTFORK);
	memset(readback, 0, maxlen);
	if (!have_swap())
		on[SWAP] = 0;
	if (graph)
		graph_setup();
	/*
	 * Warm up: the driver adds device memory in 256 MiB chunks on first
	 * use and keeps it; do that before timing anything.
	 */
	if (strcmp(mode, "walks")) {
		struct region r;
		uint64_t cpages;
		double t0 = now_ms();
		int ret;

		set_flags(0);
		prepare(PRESENT, maxlen, &r);
		ret = do_cmd(HMM_DMIRROR_MIGRATE_TO_DEV, &r, &cpages);
		release(&r);
		printf("I warmup %zu MiB plain ret=%d %.1f ms\n", maxlen / MiB, ret,
		       now_ms() - t0);
	}
	if (profile && prof("reset"))
		return 1;

	if (!strcmp(mode, "seq")) {
		for (i = 0; i < NSCN; i++) {
			if (!on[i])
				continue;
			for (si = 0; si < nsizes; si++) {
				size_t len = sizes[si] * MiB;
				int n = reps[si < nreps ? si : nreps - 1], rep;

				if (maxsize[i] && sizes[si] > maxsize[i])
					continue;
				if (maxreps[i] && n > maxreps[i])
					n = maxreps[i];
				if (i == ROFILE)
					rofile_create(len);
				checked_thp = checked_swap = 0;
				for (rep = 0; rep < n; rep++) {
					/* interleaved, alternating the order */
					enum seq a = rep & 1 ? ONE : TWO;
					enum seq b = rep & 1 ? TWO : ONE;

					measure(i, len, a, 1, rep, 0);
					measure(i, len, b, 1, rep, 0);
					measure(i, len, a, 0, rep, graph);
					measure(i, len, b, 0, rep, graph);
				}
				if (i == ROFILE)
					rofile_drop();
			}
		}
	} else if (!strcmp(mode, "plain")) {
		/* present pages unless -c names scenarios (present, thp) */
		if (!cflag)
			for (i = 0; i < NSCN; i++)
				on[i] = i == PRESENT;
		for (i = 0; i < NSCN; i++) {
			if (!on[i] || (i != PRESENT && i != THP))
				continue;
			for (si = 0; si < nsizes; si++) {
				int n = reps[si < nreps ? si : nreps - 1], rep;
				size_t len = sizes[si] * MiB;

				for (rep = 0; rep < n; rep++) {
					/* -o: the one walk too, interleaved (series only) */
					if (with_one && (rep & 1))
						measure(i, len, ONE, 0, rep, graph);
					measure(i, len, PLAIN, 0, rep, graph);
					if (with_one && !(rep & 1))
						measure(i, len, ONE, 0, rep, graph);
				}
			}
		}
	} else if (!strcmp(mode, "drivers")) {
		/* the one walk and the drivers' sequences, whole migrations */
		static const enum seq dq[] = { ONE, XE, KFD, PLAIN, XE1 };
		const int nd = sizeof(dq) / sizeof(dq[0]);

		whole_phase = "drivers";
		if (!cflag)
			for (i = 0; i < NSCN; i++)
				on[i] = i == PRESENT || i == UNTOUCHED || i == ZEROPAGE ||
					i == COW || i == SWAP || i == THP;
		for (i = 0; i < NSCN; i++) {
			if (!on[i])
				continue;
			for (si = 0; si < nsizes; si++) {
				int n = reps[si < nreps ? si : nreps - 1], rep, k;
				size_t len = sizes[si] * MiB;

				if (maxsize[i] && sizes[si] > maxsize[i])
					continue;
				if (maxreps[i] && n > maxreps[i])
					n = maxreps[i];
				checked_thp = checked_swap = 0;
				for (rep = 0; rep < n; rep++)
					for (k = 0; k < nd; k++)
						measure(i, len, dq[(rep + k) % nd], 0, rep, 0);
			}
		}
	} else if (!strcmp(mode, "hrf")) {
		for (si = 0; si < nsizes; si++) {
			int n = reps[si < nreps ? si : nreps - 1], rep;
			size_t len = sizes[si] * MiB;

			for (rep = 0; rep < n; rep++) {
				measure(PRESENT, len, HRF_SNAPSHOT, 0, rep, graph);
				measure(PRESENT, len, HRF_FAULT, 0, rep, graph);
				measure(UNTOUCHED, len, HRF_FAULT, 0, rep, graph);
			}
		}
	} else if (!strcmp(mode, "walks")) {
		unsigned long h0[NPROBE], h1[NPROBE];
		size_t len = sizes[0] * MiB, k;

		graph_teardown();
		probes_setup();
		for (i = 0; i < NSCN; i++) {
			int nq = plain_only ? 1 : NSEQ, qi, ph;

			if (!on[i] || (plain_only && i != PRESENT))
				continue;
			if (i == ROFILE)
				rofile_create(len);
			for (qi = 0; qi < nq; qi++) {
				enum seq q = plain_only ? PLAIN : (enum seq)qi;

				if (q == PLAIN && i != PRESENT && i != THP)
					continue;
				for (ph = 1; ph >= 0; ph--) {
					struct region r;
					uint64_t cpages;
					long nmig;
					uint64_t flags = (ph ? HMM_DMIRROR_FLAG_SETUP_ONLY : 0) |
						(i == THP_SPLIT ? HMM_DMIRROR_FLAG_NO_COMPOUND : 0) |
						(q == XE1 ? HMM_DMIRROR_FLAG_SETUP_FAULT : 0);
					int ret;

					if (q == PLAIN && ph)
						continue;	/* no SETUP_ONLY on 7.3 */
					prepare(i, len, &r);
					if (q != PLAIN && set_flags(flags))
						die("HMM_DMIRROR_FLAGS");
					if (q == PLAIN)
						set_flags(0);
					probes_read(h0);
					migrate_count_start();
					ret = do_cmd(seq_req[q], &r, &cpages);
					nmig = migrate_count_stop();
					probes_read(h1);
					release(&r);
					printf("W %s %zu %s %s ret=%d", scn_name[i],
					       len / MiB, seq_name[q],
					       ph ? "setup" : "whole", ret);
					for (k = 0; k < NPROBE; k++)
						if (probe_ok[k])
							printf(" %s=%lu", probe_funcs[k],
							       h1[k] - h0[k]);
					if (nmig >= 0)
						printf(" migrate_invalidations=%ld", nmig);
					printf("\n");
				}
			}
			if (i == ROFILE)
				rofile_drop();
		}
		probes_teardown();
	} else {
		fprintf(stderr, "hmm-bench: unknown mode %s\n", mode);
		return 2;
	}
	graph_teardown();
	if (!plain_only && strcmp(mode, "plain") && strcmp(mode, "hrf"))
		set_flags(0);
	return profile ? prof("dump") : 0;
}
