// SPDX-License-Identifier: GPL-2.0
/*
 * HMM stands for Heterogeneous Memory Management, it is a helper layer inside
 * the linux kernel to help device drivers mirror a process address space in
 * the device. This allows the device to use the same address space which
 * makes communication and data exchange a lot easier.
 *
 * This framework's sole purpose is to exercise various code paths inside
 * the kernel to make sure that HMM performs as expected and to flush out any
 * bugs.
 */

#include "kselftest_harness.h"
#include "hugepage_settings.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <unistd.h>
#include <strings.h>
#include <time.h>
#include <pthread.h>
#include <limits.h>
#include <linux/mman.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include <sys/eventfd.h>
#include <linux/userfaultfd.h>
#include <poll.h>

/*
 * This is a private UAPI to the kernel test module so it isn't exported
 * in the usual include/uapi/... directory.
 */
#include <lib/test_hmm_uapi.h>
#include <mm/gup_test.h>
#include <mm/vm_util.h>

struct hmm_buffer {
	void		*ptr;
	void		*mirror;
	unsigned long	size;
	int		fd;
	uint64_t	cpages;
	uint64_t	faults;
};

enum {
	HMM_PRIVATE_DEVICE_ONE,
	HMM_PRIVATE_DEVICE_TWO,
	HMM_COHERENCE_DEVICE_ONE,
	HMM_COHERENCE_DEVICE_TWO,
};

#define ONEKB		(1 << 10)
#define ONEMEG		(1 << 20)
#define TWOMEG		(1 << 21)
#define HMM_BUFFER_SIZE (1024 << 12)
#define HMM_PATH_MAX    64
#define NTIMES		10

#define ALIGN(x, a) (((x) + (a - 1)) & (~((a) - 1)))
/* Just the flags we need, copied from mm.h: */

#ifndef FOLL_WRITE
#define FOLL_WRITE	0x01	/* check pte is writable */
#endif

#ifndef FOLL_LONGTERM
#define FOLL_LONGTERM   0x100 /* mapping lifetime is indefinite */
#endif

HUGETLB_SETUP_DEFAULT_PAGES(1)

FIXTURE(hmm)
{
	int		fd;
	unsigned int	page_size;
	unsigned int	page_shift;
};

FIXTURE_VARIANT(hmm)
{
	int     device_number;
};

FIXTURE_VARIANT_ADD(hmm, hmm_device_private)
{
	.device_number = HMM_PRIVATE_DEVICE_ONE,
};

FIXTURE_VARIANT_ADD(hmm, hmm_device_coherent)
{
	.device_number = HMM_COHERENCE_DEVICE_ONE,
};

FIXTURE(hmm2)
{
	int		fd0;
	int		fd1;
	unsigned int	page_size;
	unsigned int	page_shift;
};

FIXTURE_VARIANT(hmm2)
{
	int     device_number0;
	int     device_number1;
};

FIXTURE_VARIANT_ADD(hmm2, hmm2_device_private)
{
	.device_number0 = HMM_PRIVATE_DEVICE_ONE,
	.device_number1 = HMM_PRIVATE_DEVICE_TWO,
};

FIXTURE_VARIANT_ADD(hmm2, hmm2_device_coherent)
{
	.device_number0 = HMM_COHERENCE_DEVICE_ONE,
	.device_number1 = HMM_COHERENCE_DEVICE_TWO,
};

static int hmm_open(int unit)
{
	char pathname[HMM_PATH_MAX];
	int fd;

	snprintf(pathname, sizeof(pathname), "/dev/hmm_dmirror%d", unit);
	fd = open(pathname, O_RDWR, 0);
	if (fd < 0)
		fprintf(stderr, "could not open hmm dmirror driver (%s)\n",
			pathname);
	return fd;
}

static bool hmm_is_coherent_type(int dev_num)
{
	return (dev_num >= HMM_COHERENCE_DEVICE_ONE);
}

FIXTURE_SETUP(hmm)
{
	self->page_size = sysconf(_SC_PAGE_SIZE);
	self->page_shift = ffs(self->page_size) - 1;

	self->fd = hmm_open(variant->device_number);
	if (self->fd < 0 && hmm_is_coherent_type(variant->device_number))
		SKIP(return, "DEVICE_COHERENT not available");
	ASSERT_GE(self->fd, 0);
}

FIXTURE_SETUP(hmm2)
{
	self->page_size = sysconf(_SC_PAGE_SIZE);
	self->page_shift = ffs(self->page_size) - 1;

	self->fd0 = hmm_open(variant->device_number0);
	if (self->fd0 < 0 && hmm_is_coherent_type(variant->device_number0))
		SKIP(return, "DEVICE_COHERENT not available");
	ASSERT_GE(self->fd0, 0);
	self->fd1 = hmm_open(variant->device_number1);
	ASSERT_GE(self->fd1, 0);
}

FIXTURE_TEARDOWN(hmm)
{
	int ret = close(self->fd);

	ASSERT_EQ(ret, 0);
	self->fd = -1;
}

FIXTURE_TEARDOWN(hmm2)
{
	int ret = close(self->fd0);

	ASSERT_EQ(ret, 0);
	self->fd0 = -1;

	ret = close(self->fd1);
	ASSERT_EQ(ret, 0);
	self->fd1 = -1;
}

static int hmm_dmirror_cmd(int fd,
			   unsigned long request,
			   struct hmm_buffer *buffer,
			   unsigned long npages)
{
	struct hmm_dmirror_cmd cmd;
	int ret;

	/* Simulate a device reading system memory. */
	cmd.addr = (__u64)buffer->ptr;
	cmd.ptr = (__u64)buffer->mirror;
	cmd.npages = npages;

	for (;;) {
		ret = ioctl(fd, request, &cmd);
		if (ret == 0)
			break;
		if (errno == EINTR)
			continue;
		return -errno;
	}
	buffer->cpages = cmd.cpages;
	buffer->faults = cmd.faults;

	return 0;
}

static void hmm_buffer_free(struct hmm_buffer *buffer)
{
	if (buffer == NULL)
		return;

	if (buffer->ptr) {
		munmap(buffer->ptr, buffer->size);
		buffer->ptr = NULL;
	}
	free(buffer->mirror);
	free(buffer);
}

/*
 * Allocate a buffer structure with memory mapping and mirror.
 *
 * @mmap_size:   total size of the mmap region (may differ from @mirror_size
 *               for alignment padding in THP tests).
 * @mirror_size: size of the mirror data buffer (the actual working set).
 * @prot:        protection flags for the mmap (e.g. PROT_READ | PROT_WRITE).
 * @flags:       flags for the mmap (e.g. MAP_PRIVATE, MAP_SHARED,
 *               MAP_ANONYMOUS, MAP_HUGETLB).
 * @fd:          file descriptor for the mmap; pass -1 for MAP_ANONYMOUS.
 *
 * All internal allocations are checked; returns NULL and cleans up on any
 * failure. Caller must ASSERT_NE or otherwise check the return value.
 */
static struct hmm_buffer *hmm_buffer_alloc(unsigned long mmap_size,
						unsigned long mirror_size,
						int prot, int flags,
						int fd)
{
	struct hmm_buffer *buffer;

	buffer = malloc(sizeof(*buffer));
	if (!buffer) {
		perror("malloc buffer");
		return NULL;
	}

	buffer->fd = fd;
	buffer->size = mmap_size;
	buffer->mirror = malloc(mirror_size);
	if (!buffer->mirror) {
		perror("malloc mirror");
		free(buffer);
		return NULL;
	}

	buffer->ptr = mmap(NULL, mmap_size, prot, flags, fd, 0);
	if (buffer->ptr == MAP_FAILED) {
		perror("mmap");
		free(buffer->mirror);
		free(buffer);
		return NULL;
	}

	return buffer;
}

/*
 * Create a temporary file that will be deleted on close.
 */
static int hmm_create_file(unsigned long size)
{
	char path[HMM_PATH_MAX];
	int fd;

	strcpy(path, "/tmp");
	fd = open(path, O_TMPFILE | O_EXCL | O_RDWR, 0600);
	if (fd >= 0) {
		int r;

		do {
			r = ftruncate(fd, size);
		} while (r == -1 && errno == EINTR);
		if (!r)
			return fd;
		close(fd);
	}
	return -1;
}

/*
 * Return a random unsigned number.
 */
static unsigned int hmm_random(void)
{
	static int fd = -1;
	unsigned int r;

	if (fd < 0) {
		fd = open("/dev/urandom", O_RDONLY);
		if (fd < 0) {
			fprintf(stderr, "%s:%d failed to open /dev/urandom\n",
					__FILE__, __LINE__);
			return ~0U;
		}
	}
	read(fd, &r, sizeof(r));
	return r;
}

static void hmm_nanosleep(unsigned int n)
{
	struct timespec t;

	t.tv_sec = 0;
	t.tv_nsec = n;
	nanosleep(&t, NULL);
}

static int hmm_migrate_sys_to_dev(int fd,
				   struct hmm_buffer *buffer,
				   unsigned long npages)
{
	return hmm_dmirror_cmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, buffer, npages);
}

static int hmm_migrate_dev_to_sys(int fd,
				   struct hmm_buffer *buffer,
				   unsigned long npages)
{
	return hmm_dmirror_cmd(fd, HMM_DMIRROR_MIGRATE_TO_SYS, buffer, npages);
}

/*
 * Simple NULL test of device open/close.
 */
TEST_F(hmm, open_close)
{
}

/*
 * Read private anonymous memory.
 */
TEST_F(hmm, anon_read)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	int *ptr;
	int ret;
	int val;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	ASSERT_NE(npages, 0);
	size = npages << self->page_shift;

	buffer = hmm_buffer_alloc(size, size,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);

	/*
	 * Initialize buffer in system memory but leave the first two pages
	 * zero (pte_none and pfn_zero).
	 */
	i = 2 * self->page_size / sizeof(*ptr);
	for (ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Set buffer permission to read-only. */
	ret = mprotect(buffer->ptr, size, PROT_READ);
	ASSERT_EQ(ret, 0);

	/* Populate the CPU page table with a special zero page. */
	val = *(int *)(buffer->ptr + self->page_size);
	ASSERT_EQ(val, 0);

	/* Simulate a device reading system memory. */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_READ, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	ASSERT_EQ(buffer->faults, 1);

	/* Check what the device read. */
	ptr = buffer->mirror;
	for (i = 0; i < 2 * self->page_size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], 0);
	for (; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	hmm_buffer_free(buffer);
}

/*
 * Read private anonymous memory which has been protected with
 * mprotect() PROT_NONE.
 */
TEST_F(hmm, anon_read_prot)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	int *ptr;
	int ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	ASSERT_NE(npages, 0);
	size = npages << self->page_shift;

	buffer = hmm_buffer_alloc(size, size,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);

	/* Initialize buffer in system memory. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Initialize mirror buffer so we can verify it isn't written. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ptr[i] = -i;

	/* Protect buffer from reading. */
	ret = mprotect(buffer->ptr, size, PROT_NONE);
	ASSERT_EQ(ret, 0);

	/* Simulate a device reading system memory. */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_READ, buffer, npages);
	ASSERT_EQ(ret, -EFAULT);

	/* Allow CPU to read the buffer so we can check it. */
	ret = mprotect(buffer->ptr, size, PROT_READ);
	ASSERT_EQ(ret, 0);
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	/* Check what the device read. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], -i);

	hmm_buffer_free(buffer);
}

/*
 * Write private anonymous memory.
 */
TEST_F(hmm, anon_write)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	int *ptr;
	int ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	ASSERT_NE(npages, 0);
	size = npages << self->page_shift;

	buffer = hmm_buffer_alloc(size, size,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);

	/* Initialize data that the device will write to buffer->ptr. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Simulate a device writing system memory. */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_WRITE, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	ASSERT_EQ(buffer->faults, 1);

	/* Check what the device wrote. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	hmm_buffer_free(buffer);
}

/*
 * Write private anonymous memory which has been protected with
 * mprotect() PROT_READ.
 */
TEST_F(hmm, anon_write_prot)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	int *ptr;
	int ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	ASSERT_NE(npages, 0);
	size = npages << self->page_shift;

	buffer = hmm_buffer_alloc(size, size,
				  PROT_READ,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);

	/* Simulate a device reading a zero page of memory. */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_READ, buffer, 1);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, 1);
	ASSERT_EQ(buffer->faults, 1);

	/* Initialize data that the device will write to buffer->ptr. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Simulate a device writing system memory. */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_WRITE, buffer, npages);
	ASSERT_EQ(ret, -EPERM);

	/* Check what the device wrote. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], 0);

	/* Now allow writing and see that the zero page is replaced. */
	ret = mprotect(buffer->ptr, size, PROT_WRITE | PROT_READ);
	ASSERT_EQ(ret, 0);

	/* Simulate a device writing system memory. */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_WRITE, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	ASSERT_EQ(buffer->faults, 1);

	/* Check what the device wrote. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	hmm_buffer_free(buffer);
}

/*
 * Check that a device writing an anonymous private mapping
 * will copy-on-write if a child process inherits the mapping.
 *
 * Also verifies after fork() memory the device can be read by child.
 */
TEST_F(hmm, anon_write_child)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	void *old_ptr;
	void *map;
	int *ptr;
	pid_t pid;
	int child_fd;
	int ret, use_thp, migrate;

	for (migrate = 0; migrate < 2; ++migrate) {
		for (use_thp = 0; use_thp < 2; ++use_thp) {
			npages = ALIGN(use_thp ? read_pmd_pagesize() : HMM_BUFFER_SIZE,
				       self->page_size) >> self->page_shift;
			ASSERT_NE(npages, 0);
			size = npages << self->page_shift;

			buffer = hmm_buffer_alloc(size * 2, size,
						  PROT_READ | PROT_WRITE,
						  MAP_PRIVATE | MAP_ANONYMOUS, -1);
			ASSERT_NE(buffer, NULL);
			old_ptr = buffer->ptr;
			if (use_thp) {
				map = (void *)ALIGN((uintptr_t)buffer->ptr, size);
				ret = madvise(map, size, MADV_HUGEPAGE);
				ASSERT_EQ(ret, 0);
				buffer->ptr = map;
			}

			/* Initialize buffer->ptr so we can tell if it is written. */
			for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
				ptr[i] = i;

			/* Initialize data that the device will write to buffer->ptr. */
			for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
				ptr[i] = -i;

			if (migrate) {
				ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
				ASSERT_EQ(ret, 0);
				ASSERT_EQ(buffer->cpages, npages);

			}

			pid = fork();
			if (pid == -1)
				ASSERT_EQ(pid, 0);
			if (pid != 0) {
				waitpid(pid, &ret, 0);
				ASSERT_EQ(WIFEXITED(ret), 1);

				/* Check that the parent's buffer did not change. */
				for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
					ASSERT_EQ(ptr[i], i);

				buffer->ptr = old_ptr;
				hmm_buffer_free(buffer);
				continue;
			}

			/* Check that we see the parent's values. */
			for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
				ASSERT_EQ(ptr[i], i);
			if (!migrate) {
				for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
					ASSERT_EQ(ptr[i], -i);
			}

			/* The child process needs its own mirror to its own mm. */
			child_fd = hmm_open(0);
			ASSERT_GE(child_fd, 0);

			/* Simulate a device writing system memory. */
			ret = hmm_dmirror_cmd(child_fd, HMM_DMIRROR_WRITE, buffer, npages);
			ASSERT_EQ(ret, 0);
			ASSERT_EQ(buffer->cpages, npages);
			ASSERT_EQ(buffer->faults, 1);

			/* Check what the device wrote. */
			if (!migrate) {
				for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
					ASSERT_EQ(ptr[i], -i);
			}

			close(child_fd);
			_exit(0);
		}
	}
}

/*
 * Check that a device writing an anonymous shared mapping
 * will not copy-on-write if a child process inherits the mapping.
 */
TEST_F(hmm, anon_write_child_shared)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	int *ptr;
	pid_t pid;
	int child_fd;
	int ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	ASSERT_NE(npages, 0);
	size = npages << self->page_shift;

	buffer = hmm_buffer_alloc(size, size,
				  PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);

	/* Initialize buffer->ptr so we can tell if it is written. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Initialize data that the device will write to buffer->ptr. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ptr[i] = -i;

	pid = fork();
	if (pid == -1)
		ASSERT_EQ(pid, 0);
	if (pid != 0) {
		waitpid(pid, &ret, 0);
		ASSERT_EQ(WIFEXITED(ret), 1);

		/* Check that the parent's buffer did change. */
		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			ASSERT_EQ(ptr[i], -i);
		return;
	}

	/* Check that we see the parent's values. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], -i);

	/* The child process needs its own mirror to its own mm. */
	child_fd = hmm_open(0);
	ASSERT_GE(child_fd, 0);

	/* Simulate a device writing system memory. */
	ret = hmm_dmirror_cmd(child_fd, HMM_DMIRROR_WRITE, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	ASSERT_EQ(buffer->faults, 1);

	/* Check what the device wrote. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], -i);

	close(child_fd);
	_exit(0);
}

/*
 * Write private anonymous huge page.
 */
TEST_F(hmm, anon_write_huge)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	void *old_ptr;
	void *map;
	int *ptr;
	int ret;

	size = 2 * read_pmd_pagesize();

	buffer = hmm_buffer_alloc(size, size,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	size /= 2;
	npages = size >> self->page_shift;
	map = (void *)ALIGN((uintptr_t)buffer->ptr, size);
	ret = madvise(map, size, MADV_HUGEPAGE);
	ASSERT_EQ(ret, 0);
	old_ptr = buffer->ptr;
	buffer->ptr = map;

	/* Initialize data that the device will write to buffer->ptr. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Simulate a device writing system memory. */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_WRITE, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	ASSERT_EQ(buffer->faults, 1);

	/* Check what the device wrote. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	buffer->ptr = old_ptr;
	hmm_buffer_free(buffer);
}

/*
 * Write huge TLBFS page.
 */
TEST_F(hmm, anon_write_hugetlbfs)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long default_hsize = default_huge_page_size();
	unsigned long i;
	int *ptr;
	int ret;

	if (!hugetlb_free_default_pages())
		SKIP(return, "Not enough huge pages");

	size = ALIGN(TWOMEG, default_hsize);
	npages = size >> self->page_shift;

	buffer = hmm_buffer_alloc(size, size,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1);
	if (!buffer)
		SKIP(return, "Huge page could not be allocated");

	/* Initialize data that the device will write to buffer->ptr. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Simulate a device writing system memory. */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_WRITE, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	ASSERT_EQ(buffer->faults, 1);

	/* Check what the device wrote. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	munmap(buffer->ptr, buffer->size);
	buffer->ptr = NULL;
	hmm_buffer_free(buffer);
}

/*
 * Read mmap'ed file memory.
 */
TEST_F(hmm, file_read)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	int *ptr;
	int ret;
	int fd;
	ssize_t len;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	ASSERT_NE(npages, 0);
	size = npages << self->page_shift;

	fd = hmm_create_file(size);
	ASSERT_GE(fd, 0);

	buffer = hmm_buffer_alloc(size, size,
				  PROT_READ,
				  MAP_SHARED, fd);
	ASSERT_NE(buffer, NULL);

	/* Write initial contents of the file. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;
	len = pwrite(fd, buffer->mirror, size, 0);
	ASSERT_EQ(len, size);
	memset(buffer->mirror, 0, size);

	/* Simulate a device reading system memory. */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_READ, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	ASSERT_EQ(buffer->faults, 1);

	/* Check what the device read. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	hmm_buffer_free(buffer);
}

/*
 * Write mmap'ed file memory.
 */
TEST_F(hmm, file_write)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	int *ptr;
	int ret;
	int fd;
	ssize_t len;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	ASSERT_NE(npages, 0);
	size = npages << self->page_shift;

	fd = hmm_create_file(size);
	ASSERT_GE(fd, 0);

	buffer = hmm_buffer_alloc(size, size,
				  PROT_READ | PROT_WRITE,
				  MAP_SHARED, fd);
	ASSERT_NE(buffer, NULL);

	/* Initialize data that the device will write to buffer->ptr. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Simulate a device writing system memory. */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_WRITE, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	ASSERT_EQ(buffer->faults, 1);

	/* Check what the device wrote. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	/* Check that the device also wrote the file. */
	len = pread(fd, buffer->mirror, size, 0);
	ASSERT_EQ(len, size);
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	hmm_buffer_free(buffer);
}

/*
 * Migrate anonymous memory to device private memory.
 */
TEST_F(hmm, migrate)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	int *ptr;
	int ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	ASSERT_NE(npages, 0);
	size = npages << self->page_shift;

	buffer = hmm_buffer_alloc(size, size,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);

	/* Initialize buffer in system memory. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Migrate memory to device. */
	ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	/* Check what the device read. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	hmm_buffer_free(buffer);
}

/*
 * Migrate private file memory to device private memory.
 */
TEST_F(hmm, migrate_file_private)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	int *ptr;
	int ret;
	int fd;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	ASSERT_NE(npages, 0);
	size = npages << self->page_shift;

	fd = hmm_create_file(size);
	ASSERT_GE(fd, 0);

	buffer = hmm_buffer_alloc(size, size,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE, fd);
	ASSERT_NE(buffer, NULL);

	/* Initialize buffer in system memory. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Migrate memory to device. */
	ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	/* Check what the device read. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	hmm_buffer_free(buffer);
}

/*
 * Migrate anonymous memory to device private memory and fault some of it back
 * to system memory, then try migrating the resulting mix of system and device
 * private memory to the device.
 */
TEST_F(hmm, migrate_fault)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	int *ptr;
	int ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	ASSERT_NE(npages, 0);
	size = npages << self->page_shift;

	buffer = hmm_buffer_alloc(size, size,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);

	/* Initialize buffer in system memory. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Migrate memory to device. */
	ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	/* Check what the device read. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	/* Fault half the pages back to system memory and check them. */
	for (i = 0, ptr = buffer->ptr; i < size / (2 * sizeof(*ptr)); ++i)
		ASSERT_EQ(ptr[i], i);

	/* Migrate memory to the device again. */
	ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	/* Check what the device read. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	hmm_buffer_free(buffer);
}

TEST_F(hmm, migrate_release)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	int *ptr;
	int ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	ASSERT_NE(npages, 0);
	size = npages << self->page_shift;

	buffer = hmm_buffer_alloc(size, size,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);

	/* Initialize buffer in system memory. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Migrate memory to device. */
	ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	/* Check what the device read. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	/* Release device memory. */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_RELEASE, buffer, npages);
	ASSERT_EQ(ret, 0);

	/* Fault pages back to system memory and check them. */
	for (i = 0, ptr = buffer->ptr; i < size / (2 * sizeof(*ptr)); ++i)
		ASSERT_EQ(ptr[i], i);

	hmm_buffer_free(buffer);
}

/*
 * Migrate anonymous shared memory to device private memory.
 */
TEST_F(hmm, migrate_shared)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	int ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	ASSERT_NE(npages, 0);
	size = npages << self->page_shift;

	buffer = hmm_buffer_alloc(size, size,
				  PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);

	/* Migrate memory to device. */
	ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
	ASSERT_EQ(ret, -ENOENT);

	hmm_buffer_free(buffer);
}

/*
 * Try to migrate various memory types to device private memory.
 */
TEST_F(hmm2, migrate_mixed)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	int *ptr;
	unsigned char *p;
	int ret;
	int val;

	npages = 6;
	size = npages << self->page_shift;

	buffer = hmm_buffer_alloc(size, size,
				  PROT_NONE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	p = buffer->ptr;

	/* Migrating a protected area should be an error. */
	ret = hmm_migrate_sys_to_dev(self->fd1, buffer, npages);
	ASSERT_EQ(ret, -EINVAL);

	/* Punch a hole after the first page address. */
	ret = munmap(buffer->ptr + self->page_size, self->page_size);
	ASSERT_EQ(ret, 0);

	/* We expect an error if the vma doesn't cover the range. */
	ret = hmm_migrate_sys_to_dev(self->fd1, buffer, 3);
	ASSERT_EQ(ret, -EINVAL);

	/* Page 2 will be a read-only zero page. */
	ret = mprotect(buffer->ptr + 2 * self->page_size, self->page_size,
				PROT_READ);
	ASSERT_EQ(ret, 0);
	ptr = (int *)(buffer->ptr + 2 * self->page_size);
	val = *ptr + 3;
	ASSERT_EQ(val, 3);

	/* Page 3 will be read-only. */
	ret = mprotect(buffer->ptr + 3 * self->page_size, self->page_size,
				PROT_READ | PROT_WRITE);
	ASSERT_EQ(ret, 0);
	ptr = (int *)(buffer->ptr + 3 * self->page_size);
	*ptr = val;
	ret = mprotect(buffer->ptr + 3 * self->page_size, self->page_size,
				PROT_READ);
	ASSERT_EQ(ret, 0);

	/* Page 4-5 will be read-write. */
	ret = mprotect(buffer->ptr + 4 * self->page_size, 2 * self->page_size,
				PROT_READ | PROT_WRITE);
	ASSERT_EQ(ret, 0);
	ptr = (int *)(buffer->ptr + 4 * self->page_size);
	*ptr = val;
	ptr = (int *)(buffer->ptr + 5 * self->page_size);
	*ptr = val;

	/* Now try to migrate pages 2-5 to device 1. */
	buffer->ptr = p + 2 * self->page_size;
	ret = hmm_migrate_sys_to_dev(self->fd1, buffer, 4);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, 4);

	/* Page 5 won't be migrated to device 0 because it's on device 1. */
	buffer->ptr = p + 5 * self->page_size;
	ret = hmm_migrate_sys_to_dev(self->fd0, buffer, 1);
	ASSERT_EQ(ret, -ENOENT);
	buffer->ptr = p;

	buffer->ptr = p;
	hmm_buffer_free(buffer);
}

/*
 * Migrate anonymous memory to device memory and back to system memory
 * multiple times. In case of private zone configuration, this is done
 * through fault pages accessed by CPU. In case of coherent zone configuration,
 * the pages from the device should be explicitly migrated back to system memory.
 * The reason is Coherent device zone has coherent access by CPU, therefore
 * it will not generate any page fault.
 */
TEST_F(hmm, migrate_multiple)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	unsigned long c;
	int *ptr;
	int ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	ASSERT_NE(npages, 0);
	size = npages << self->page_shift;

	for (c = 0; c < NTIMES; c++) {
		buffer = hmm_buffer_alloc(size, size,
					  PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1);
		ASSERT_NE(buffer, NULL);

		/* Initialize buffer in system memory. */
		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			ptr[i] = i;

		/* Migrate memory to device. */
		ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
		ASSERT_EQ(ret, 0);
		ASSERT_EQ(buffer->cpages, npages);

		/* Check what the device read. */
		for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
			ASSERT_EQ(ptr[i], i);

		/* Migrate back to system memory and check them. */
		if (hmm_is_coherent_type(variant->device_number)) {
			ret = hmm_migrate_dev_to_sys(self->fd, buffer, npages);
			ASSERT_EQ(ret, 0);
			ASSERT_EQ(buffer->cpages, npages);
		}

		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			ASSERT_EQ(ptr[i], i);

		hmm_buffer_free(buffer);
	}
}

/*
 * Read anonymous memory multiple times.
 */
TEST_F(hmm, anon_read_multiple)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	unsigned long c;
	int *ptr;
	int ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	ASSERT_NE(npages, 0);
	size = npages << self->page_shift;

	for (c = 0; c < NTIMES; c++) {
		buffer = hmm_buffer_alloc(size, size,
					  PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1);
		ASSERT_NE(buffer, NULL);

		/* Initialize buffer in system memory. */
		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			ptr[i] = i + c;

		/* Simulate a device reading system memory. */
		ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_READ, buffer,
				      npages);
		ASSERT_EQ(ret, 0);
		ASSERT_EQ(buffer->cpages, npages);
		ASSERT_EQ(buffer->faults, 1);

		/* Check what the device read. */
		for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
			ASSERT_EQ(ptr[i], i + c);

		hmm_buffer_free(buffer);
	}
}

void *unmap_buffer(void *p)
{
	struct hmm_buffer *buffer = p;

	/* Delay for a bit and then unmap buffer while it is being read. */
	hmm_nanosleep(hmm_random() % 32000);
	munmap(buffer->ptr + buffer->size / 2, buffer->size / 2);
	buffer->ptr = NULL;

	return NULL;
}

/*
 * Try reading anonymous memory while it is being unmapped.
 */
TEST_F(hmm, anon_teardown)
{
	unsigned long npages;
	unsigned long size;
	unsigned long c;
	void *ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	ASSERT_NE(npages, 0);
	size = npages << self->page_shift;

	for (c = 0; c < NTIMES; ++c) {
		pthread_t thread;
		struct hmm_buffer *buffer;
		unsigned long i;
		int *ptr;
		int rc;

		buffer = hmm_buffer_alloc(size, size,
					  PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1);
		ASSERT_NE(buffer, NULL);

		/* Initialize buffer in system memory. */
		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			ptr[i] = i + c;

		rc = pthread_create(&thread, NULL, unmap_buffer, buffer);
		ASSERT_EQ(rc, 0);

		/* Simulate a device reading system memory. */
		rc = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_READ, buffer,
				     npages);
		if (rc == 0) {
			ASSERT_EQ(buffer->cpages, npages);
			ASSERT_EQ(buffer->faults, 1);

			/* Check what the device read. */
			for (i = 0, ptr = buffer->mirror;
			     i < size / sizeof(*ptr);
			     ++i)
				ASSERT_EQ(ptr[i], i + c);
		}

		pthread_join(thread, &ret);
		hmm_buffer_free(buffer);
	}
}

/*
 * Test memory snapshot without faulting in pages accessed by the device.
 */
TEST_F(hmm, mixedmap)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned char *m;
	int ret;

	npages = 1;
	size = npages << self->page_shift;

	buffer = hmm_buffer_alloc(size, npages,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE, self->fd);
	ASSERT_NE(buffer, NULL);

	/* Simulate a device snapshotting CPU pagetables. */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	/* Check what the device saw. */
	m = buffer->mirror;
	ASSERT_EQ(m[0], HMM_DMIRROR_PROT_READ);

	hmm_buffer_free(buffer);
}

/*
 * Test memory snapshot without faulting in pages accessed by the device.
 */
TEST_F(hmm2, snapshot)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	int *ptr;
	unsigned char *p;
	unsigned char *m;
	int ret;
	int val;

	npages = 7;
	size = npages << self->page_shift;

	buffer = hmm_buffer_alloc(size, npages,
				  PROT_NONE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	p = buffer->ptr;

	/* Punch a hole after the first page address. */
	ret = munmap(buffer->ptr + self->page_size, self->page_size);
	ASSERT_EQ(ret, 0);

	/* Page 2 will be read-only zero page. */
	ret = mprotect(buffer->ptr + 2 * self->page_size, self->page_size,
				PROT_READ);
	ASSERT_EQ(ret, 0);
	ptr = (int *)(buffer->ptr + 2 * self->page_size);
	val = *ptr + 3;
	ASSERT_EQ(val, 3);

	/* Page 3 will be read-only. */
	ret = mprotect(buffer->ptr + 3 * self->page_size, self->page_size,
				PROT_READ | PROT_WRITE);
	ASSERT_EQ(ret, 0);
	ptr = (int *)(buffer->ptr + 3 * self->page_size);
	*ptr = val;
	ret = mprotect(buffer->ptr + 3 * self->page_size, self->page_size,
				PROT_READ);
	ASSERT_EQ(ret, 0);

	/* Page 4-6 will be read-write. */
	ret = mprotect(buffer->ptr + 4 * self->page_size, 3 * self->page_size,
				PROT_READ | PROT_WRITE);
	ASSERT_EQ(ret, 0);
	ptr = (int *)(buffer->ptr + 4 * self->page_size);
	*ptr = val;

	/* Page 5 will be migrated to device 0. */
	buffer->ptr = p + 5 * self->page_size;
	ret = hmm_migrate_sys_to_dev(self->fd0, buffer, 1);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, 1);

	/* Page 6 will be migrated to device 1. */
	buffer->ptr = p + 6 * self->page_size;
	ret = hmm_migrate_sys_to_dev(self->fd1, buffer, 1);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, 1);

	/* Simulate a device snapshotting CPU pagetables. */
	buffer->ptr = p;
	ret = hmm_dmirror_cmd(self->fd0, HMM_DMIRROR_SNAPSHOT, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	/* Check what the device saw. */
	m = buffer->mirror;
	ASSERT_EQ(m[0], HMM_DMIRROR_PROT_ERROR);
	ASSERT_EQ(m[1], HMM_DMIRROR_PROT_ERROR);
	ASSERT_EQ(m[2], HMM_DMIRROR_PROT_ZERO | HMM_DMIRROR_PROT_READ);
	ASSERT_EQ(m[3], HMM_DMIRROR_PROT_READ);
	ASSERT_EQ(m[4], HMM_DMIRROR_PROT_WRITE);
	if (!hmm_is_coherent_type(variant->device_number0)) {
		ASSERT_EQ(m[5], HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL |
				HMM_DMIRROR_PROT_WRITE);
		ASSERT_EQ(m[6], HMM_DMIRROR_PROT_NONE);
	} else {
		ASSERT_EQ(m[5], HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL |
				HMM_DMIRROR_PROT_WRITE);
		ASSERT_EQ(m[6], HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE |
				HMM_DMIRROR_PROT_WRITE);
	}

	hmm_buffer_free(buffer);
}

/*
 * Test the hmm_range_fault() handling of large pages (PMD or PUD)
 * that should be mapped by a large page table entry.
 */
TEST_F(hmm, compound)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long default_hsize = default_huge_page_size();
	int *ptr;
	unsigned char *m;
	unsigned char prot;
	int ret;
	unsigned long i;

	/* Skip test if we can't allocate a hugetlbfs page. */
	if (!hugetlb_free_default_pages())
		SKIP(return, "Not enough huge pages");

	size = ALIGN(TWOMEG, default_hsize);
	npages = size >> self->page_shift;

	buffer = hmm_buffer_alloc(size, npages,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1);
	if (!buffer)
		SKIP(return, "Huge page could not be allocated");

	/* Initialize the pages the device will snapshot in buffer->ptr. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Simulate a device snapshotting CPU pagetables. */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	/*
	 * Check what the device saw.  The region is backed by a single huge
	 * page that the device reports either at PMD or at PUD level depending
	 * on the configured default hugepage size.  Determine that level from
	 * the first page and require every page in the range to match it
	 * exactly, so that a fragmented mapping mixing levels (or a missing
	 * large-page bit) is still caught and reported with its actual value.
	 */
	m = buffer->mirror;
	prot = HMM_DMIRROR_PROT_WRITE |
	       ((m[0] & HMM_DMIRROR_PROT_PUD) ? HMM_DMIRROR_PROT_PUD :
						HMM_DMIRROR_PROT_PMD);
	for (i = 0; i < npages; ++i)
		ASSERT_EQ(m[i], prot);

	/* Make the region read-only. */
	ret = mprotect(buffer->ptr, size, PROT_READ);
	ASSERT_EQ(ret, 0);

	/* Simulate a device snapshotting CPU pagetables. */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	/*
	 * Check what the device saw after mprotect(PROT_READ).  Same
	 * approach as above: determine the mapping level from the first
	 * page and require every page to match it exactly.
	 */
	m = buffer->mirror;
	prot = HMM_DMIRROR_PROT_READ |
	       ((m[0] & HMM_DMIRROR_PROT_PUD) ? HMM_DMIRROR_PROT_PUD :
						HMM_DMIRROR_PROT_PMD);
	for (i = 0; i < npages; ++i)
		ASSERT_EQ(m[i], prot);

	munmap(buffer->ptr, buffer->size);
	buffer->ptr = NULL;
	hmm_buffer_free(buffer);
}

/*
 * Test two devices reading the same memory (double mapped).
 */
TEST_F(hmm2, double_map)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	int *ptr;
	int ret;

	npages = 6;
	size = npages << self->page_shift;

	buffer = hmm_buffer_alloc(size, size,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);

	/* Initialize buffer in system memory. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Make region read-only. */
	ret = mprotect(buffer->ptr, size, PROT_READ);
	ASSERT_EQ(ret, 0);

	/* Simulate device 0 reading system memory. */
	ret = hmm_dmirror_cmd(self->fd0, HMM_DMIRROR_READ, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	ASSERT_EQ(buffer->faults, 1);

	/* Check what the device read. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	/* Simulate device 1 reading system memory. */
	ret = hmm_dmirror_cmd(self->fd1, HMM_DMIRROR_READ, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	ASSERT_EQ(buffer->faults, 1);

	/* Check what the device read. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	/* Migrate pages to device 1 and try to read from device 0. */
	ret = hmm_migrate_sys_to_dev(self->fd1, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	ret = hmm_dmirror_cmd(self->fd0, HMM_DMIRROR_READ, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	ASSERT_EQ(buffer->faults, 1);

	/* Check what device 0 read. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	hmm_buffer_free(buffer);
}

/*
 * Basic check of exclusive faulting.
 */
TEST_F(hmm, exclusive)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	int *ptr;
	int ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	ASSERT_NE(npages, 0);
	size = npages << self->page_shift;

	buffer = hmm_buffer_alloc(size, size,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);

	/* Initialize buffer in system memory. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Map memory exclusively for device access. */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_EXCLUSIVE, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	/* Check what the device read. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	/* Fault pages back to system memory and check them. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i]++, i);

	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i+1);

	/* Check atomic access revoked */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_CHECK_EXCLUSIVE, buffer, npages);
	ASSERT_EQ(ret, 0);

	hmm_buffer_free(buffer);
}

TEST_F(hmm, exclusive_mprotect)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	int *ptr;
	int ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	ASSERT_NE(npages, 0);
	size = npages << self->page_shift;

	buffer = hmm_buffer_alloc(size, size,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);

	/* Initialize buffer in system memory. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Map memory exclusively for device access. */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_EXCLUSIVE, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	/* Check what the device read. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	ret = mprotect(buffer->ptr, size, PROT_READ);
	ASSERT_EQ(ret, 0);

	/* Simulate a device writing system memory. */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_WRITE, buffer, npages);
	ASSERT_EQ(ret, -EPERM);

	hmm_buffer_free(buffer);
}

/*
 * Check copy-on-write works.
 */
TEST_F(hmm, exclusive_cow)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	int *ptr;
	int ret;
	pid_t pid;
	int status;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	ASSERT_NE(npages, 0);
	size = npages << self->page_shift;

	buffer = hmm_buffer_alloc(size, size,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);

	/* Initialize buffer in system memory. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Map memory exclusively for device access. */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_EXCLUSIVE, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	pid = fork();
	if (pid == -1)
		ASSERT_EQ(pid, 0);

	if (pid == 0) {
		/*
		 * Child verifies COW independently, then _exit(0)s so it does
		 * not run the test teardown.  A failed ASSERT_* here makes the
		 * harness abort() the child, so the parent sees
		 * !WIFEXITED(status) below and fails in turn.
		 */
		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			ASSERT_EQ(ptr[i]++, i);

		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			ASSERT_EQ(ptr[i], i + 1);

		_exit(0);
	}

	/* Parent: also increment to verify COW works for both processes. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i]++, i);

	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i + 1);

	/* Parent: wait for child and then free the buffer. */
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);

	hmm_buffer_free(buffer);
}

static int gup_test_exec(int gup_fd, unsigned long addr, int cmd,
			 int npages, int size, int flags)
{
	struct gup_test gup = {
		.nr_pages_per_call	= npages,
		.addr			= addr,
		.gup_flags		= FOLL_WRITE | flags,
		.size			= size,
	};

	if (ioctl(gup_fd, cmd, &gup)) {
		perror("ioctl on error\n");
		return errno;
	}

	return 0;
}

/*
 * Test get user device pages through gup_test. Setting PIN_LONGTERM flag.
 * This should trigger a migration back to system memory for both, private
 * and coherent type pages.
 * This test makes use of gup_test module. Make sure GUP_TEST_CONFIG is added
 * to your configuration before you run it.
 */
TEST_F(hmm, hmm_gup_test)
{
	struct hmm_buffer *buffer;
	int gup_fd;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	int *ptr;
	int ret;
	unsigned char *m;

	gup_fd = open("/sys/kernel/debug/gup_test", O_RDWR);
	if (gup_fd == -1)
		SKIP(return, "Skipping test, could not find gup_test driver");

	npages = 4;
	size = npages << self->page_shift;

	buffer = hmm_buffer_alloc(size, size,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);

	/* Initialize buffer in system memory. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Migrate memory to device. */
	ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	/* Check what the device read. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	ASSERT_EQ(gup_test_exec(gup_fd,
				(unsigned long)buffer->ptr,
				GUP_BASIC_TEST, 1, self->page_size, 0), 0);
	ASSERT_EQ(gup_test_exec(gup_fd,
				(unsigned long)buffer->ptr + 1 * self->page_size,
				GUP_FAST_BENCHMARK, 1, self->page_size, 0), 0);
	ASSERT_EQ(gup_test_exec(gup_fd,
				(unsigned long)buffer->ptr + 2 * self->page_size,
				PIN_FAST_BENCHMARK, 1, self->page_size, FOLL_LONGTERM), 0);
	ASSERT_EQ(gup_test_exec(gup_fd,
				(unsigned long)buffer->ptr + 3 * self->page_size,
				PIN_LONGTERM_BENCHMARK, 1, self->page_size, 0), 0);

	/* Take snapshot to CPU pagetables */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	m = buffer->mirror;
	if (hmm_is_coherent_type(variant->device_number)) {
		ASSERT_EQ(HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMM_DMIRROR_PROT_WRITE, m[0]);
		ASSERT_EQ(HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMM_DMIRROR_PROT_WRITE, m[1]);
	} else {
		ASSERT_EQ(HMM_DMIRROR_PROT_WRITE, m[0]);
		ASSERT_EQ(HMM_DMIRROR_PROT_WRITE, m[1]);
	}
	ASSERT_EQ(HMM_DMIRROR_PROT_WRITE, m[2]);
	ASSERT_EQ(HMM_DMIRROR_PROT_WRITE, m[3]);
	/*
	 * Check again the content on the pages. Make sure there's no
	 * corrupted data.
	 */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	close(gup_fd);
	hmm_buffer_free(buffer);
}

/*
 * Test copy-on-write in device pages.
 * In case of writing to COW private page(s), a page fault will migrate pages
 * back to system memory first. Then, these pages will be duplicated. In case
 * of COW device coherent type, pages are duplicated directly from device
 * memory.
 */
TEST_F(hmm, hmm_cow_in_device)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	int *ptr;
	int ret;
	unsigned char *m;
	pid_t pid;
	int status;

	npages = 4;
	size = npages << self->page_shift;

	buffer = hmm_buffer_alloc(size, size,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);

	/* Initialize buffer in system memory. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Migrate memory to device. */

	ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	pid = fork();
	if (pid == -1)
		ASSERT_EQ(pid, 0);
	if (!pid) {
		/* Child process waits for SIGKILL from the parent. */
		while (1) {
		}
		/* Should not reach this */
	}
	/* Parent process writes to COW pages(s) and gets a
	 * new copy in system. In case of device private pages,
	 * this write causes a migration to system mem first.
	 */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Terminate child and wait */
	EXPECT_EQ(0, kill(pid, SIGKILL));
	EXPECT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_NE(0, WIFSIGNALED(status));
	EXPECT_EQ(SIGKILL, WTERMSIG(status));

	/* Take snapshot to CPU pagetables */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	m = buffer->mirror;
	for (i = 0; i < npages; i++)
		ASSERT_EQ(HMM_DMIRROR_PROT_WRITE, m[i]);

	hmm_buffer_free(buffer);
}

/*
 * Migrate private anonymous huge empty page.
 */
TEST_F(hmm, migrate_anon_huge_empty)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	void *old_ptr;
	void *map;
	int *ptr;
	int ret;

	size = read_pmd_pagesize();

	buffer = hmm_buffer_alloc(2 * size, size,
				  PROT_READ,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	memset(buffer->mirror, 0xFF, size);

	npages = size >> self->page_shift;
	map = (void *)ALIGN((uintptr_t)buffer->ptr, size);
	ret = madvise(map, size, MADV_HUGEPAGE);
	ASSERT_EQ(ret, 0);
	old_ptr = buffer->ptr;
	buffer->ptr = map;

	/* Migrate memory to device. */
	ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	/* Check what the device read. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], 0);

	buffer->ptr = old_ptr;
	hmm_buffer_free(buffer);
}

/*
 * Migrate private anonymous huge zero page.
 */
TEST_F(hmm, migrate_anon_huge_zero)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	void *old_ptr;
	void *map;
	int *ptr;
	int ret;
	int val;

	size = read_pmd_pagesize();

	buffer = hmm_buffer_alloc(2 * size, size,
				  PROT_READ,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	memset(buffer->mirror, 0xFF, size);

	npages = size >> self->page_shift;
	map = (void *)ALIGN((uintptr_t)buffer->ptr, size);
	ret = madvise(map, size, MADV_HUGEPAGE);
	ASSERT_EQ(ret, 0);
	old_ptr = buffer->ptr;
	buffer->ptr = map;

	/* Initialize a read-only zero huge page. */
	val = *(int *)buffer->ptr;
	ASSERT_EQ(val, 0);

	/* Migrate memory to device. */
	ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	/* Check what the device read. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], 0);

	/* Fault pages back to system memory and check them. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i) {
		ASSERT_EQ(ptr[i], 0);
		/* If it asserts once, it probably will 500,000 times */
		if (ptr[i] != 0)
			break;
	}

	buffer->ptr = old_ptr;
	hmm_buffer_free(buffer);
}

/*
 * Migrate private anonymous huge page and free.
 */
TEST_F(hmm, migrate_anon_huge_free)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	void *old_ptr;
	void *map;
	int *ptr;
	int ret;

	size = read_pmd_pagesize();

	buffer = hmm_buffer_alloc(2 * size, size,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	memset(buffer->mirror, 0xFF, size);

	npages = size >> self->page_shift;
	map = (void *)ALIGN((uintptr_t)buffer->ptr, size);
	ret = madvise(map, size, MADV_HUGEPAGE);
	ASSERT_EQ(ret, 0);
	old_ptr = buffer->ptr;
	buffer->ptr = map;

	/* Initialize buffer in system memory. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Migrate memory to device. */
	ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	/* Check what the device read. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	/* Try freeing it. */
	ret = madvise(map, size, MADV_FREE);
	ASSERT_EQ(ret, 0);

	buffer->ptr = old_ptr;
	hmm_buffer_free(buffer);
}

/*
 * Migrate private anonymous huge page and fault back to sysmem.
 */
TEST_F(hmm, migrate_anon_huge_fault)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	unsigned char *m;
	uint64_t entry;
	void *old_ptr;
	void *map;
	int pagemap_fd;
	int *ptr;
	int ret;

	size = read_pmd_pagesize();

	buffer = hmm_buffer_alloc(2 * size, size,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	memset(buffer->mirror, 0xFF, size);

	npages = size >> self->page_shift;
	map = (void *)ALIGN((uintptr_t)buffer->ptr, size);
	old_ptr = buffer->ptr;
	buffer->ptr = map;

	/* Initialize buffer in system memory. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	ret = madvise(map, size, MADV_COLLAPSE);
	ASSERT_EQ(ret, 0);

	/* Migrate memory to device. */
	ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	/* Check what the device read. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	if (!hmm_is_coherent_type(variant->device_number)) {
		ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_SNAPSHOT,
				      buffer, npages);
		ASSERT_EQ(ret, 0);
		ASSERT_EQ(buffer->cpages, npages);

		m = buffer->mirror;
		for (i = 0; i < npages; ++i)
			ASSERT_EQ(m[i], HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL |
					HMM_DMIRROR_PROT_WRITE |
					HMM_DMIRROR_PROT_PMD);

		pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
		ASSERT_GE(pagemap_fd, 0);

		for (i = 0; i < npages; ++i) {
			entry = pagemap_get_entry(pagemap_fd,
					(char *)buffer->ptr + i * self->page_size);

			ASSERT_NE(entry & PM_SWAP, 0);
			ASSERT_FALSE(PAGEMAP_PRESENT(entry));
		}

		close(pagemap_fd);
	}

	/* Fault pages back to system memory and check them. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	buffer->ptr = old_ptr;
	hmm_buffer_free(buffer);
}

/*
 * Migrate memory and fault back to sysmem after partially unmapping.
 */
TEST_F(hmm, migrate_partial_unmap_fault)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size = read_pmd_pagesize();
	unsigned long unmap_size;
	unsigned long offsets[3];
	unsigned long i;
	void *old_ptr;
	void *map;
	int *ptr;
	int ret, j, use_thp;

	if (!size)
		size = TWOMEG;

	unmap_size = size / 2;
	offsets[0] = 0;
	offsets[1] = size / 4;
	offsets[2] = size / 2;

	for (use_thp = 0; use_thp < 2; ++use_thp) {
		for (j = 0; j < ARRAY_SIZE(offsets); ++j) {
			buffer = hmm_buffer_alloc(2 * size, size,
						  PROT_READ | PROT_WRITE,
						  MAP_PRIVATE | MAP_ANONYMOUS, -1);
			ASSERT_NE(buffer, NULL);
			memset(buffer->mirror, 0xFF, size);
			npages = size >> self->page_shift;
			map = (void *)ALIGN((uintptr_t)buffer->ptr, size);
			if (use_thp)
				ret = madvise(map, size, MADV_HUGEPAGE);
			else
				ret = madvise(map, size, MADV_NOHUGEPAGE);
			ASSERT_EQ(ret, 0);
			old_ptr = buffer->ptr;
			buffer->ptr = map;

			/* Initialize buffer in system memory. */
			for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
				ptr[i] = i;

			/* Migrate memory to device. */
			ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
			ASSERT_EQ(ret, 0);
			ASSERT_EQ(buffer->cpages, npages);

			/* Check what the device read. */
			for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
				ASSERT_EQ(ptr[i], i);

			munmap(buffer->ptr + offsets[j], unmap_size);

			/* Fault pages back to system memory and check them. */
			for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
				if (i * sizeof(int) < offsets[j] ||
				    i * sizeof(int) >= offsets[j] + unmap_size)
					ASSERT_EQ(ptr[i], i);

			buffer->ptr = old_ptr;
			hmm_buffer_free(buffer);
		}
	}
}

TEST_F(hmm, migrate_remap_fault)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size = read_pmd_pagesize();
	unsigned long offsets[3];
	unsigned long i;
	void *old_ptr, *new_ptr = NULL;
	void *map;
	int *ptr;
	int ret, j, use_thp, dont_unmap, before;

	if (!size)
		size = TWOMEG;

	offsets[0] = 0;
	offsets[1] = size / 4;
	offsets[2] = size / 2;

	for (before = 0; before < 2; ++before) {
		for (dont_unmap = 0; dont_unmap < 2; ++dont_unmap) {
			for (use_thp = 0; use_thp < 2; ++use_thp) {
				for (j = 0; j < ARRAY_SIZE(offsets); ++j) {
					int flags = MREMAP_MAYMOVE | MREMAP_FIXED;

					if (dont_unmap)
						flags |= MREMAP_DONTUNMAP;

					buffer = hmm_buffer_alloc(8 * size, size,
								  PROT_READ | PROT_WRITE,
								  MAP_PRIVATE | MAP_ANONYMOUS, -1);
					ASSERT_NE(buffer, NULL);
					memset(buffer->mirror, 0xFF, size);
					npages = size >> self->page_shift;
					map = (void *)ALIGN((uintptr_t)buffer->ptr, size);
					if (use_thp)
						ret = madvise(map, size, MADV_HUGEPAGE);
					else
						ret = madvise(map, size, MADV_NOHUGEPAGE);
					ASSERT_EQ(ret, 0);
					old_ptr = buffer->ptr;
					munmap(map + size, size * 2);
					buffer->ptr = map;

					/* Initialize buffer in system memory. */
					for (i = 0, ptr = buffer->ptr;
					     i < size / sizeof(*ptr); ++i)
						ptr[i] = i;

					if (before) {
						new_ptr = mremap((void *)map, size, size, flags,
								 map + size + offsets[j]);
						ASSERT_NE(new_ptr, MAP_FAILED);
						buffer->ptr = new_ptr;
					}

					/* Migrate memory to device. */
					ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
					ASSERT_EQ(ret, 0);
					ASSERT_EQ(buffer->cpages, npages);

					/* Check what the device read. */
					for (i = 0, ptr = buffer->mirror;
					     i < size / sizeof(*ptr); ++i)
						ASSERT_EQ(ptr[i], i);

					if (!before) {
						new_ptr = mremap((void *)map, size, size, flags,
								 map + size + offsets[j]);
						ASSERT_NE(new_ptr, MAP_FAILED);
						buffer->ptr = new_ptr;
					}

					/* Fault pages back to system memory and check them. */
					for (i = 0, ptr = buffer->ptr;
					     i < size / sizeof(*ptr); ++i)
						ASSERT_EQ(ptr[i], i);

					munmap(new_ptr, size);
					buffer->ptr = old_ptr;
					hmm_buffer_free(buffer);
				}
			}
		}
	}
}

/*
 * Migrate private anonymous huge page with allocation errors.
 */
TEST_F(hmm, migrate_anon_huge_err)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	void *old_ptr;
	void *map;
	int *ptr;
	int ret;

	size = read_pmd_pagesize();

	buffer = hmm_buffer_alloc(2 * size, 2 * size,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	memset(buffer->mirror, 0xFF, 2 * size);

	old_ptr = buffer->ptr;

	npages = size >> self->page_shift;
	map = (void *)ALIGN((uintptr_t)old_ptr, size);
	ret = madvise(map, size, MADV_HUGEPAGE);
	ASSERT_EQ(ret, 0);
	buffer->ptr = map;

	/* Initialize buffer in system memory. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Migrate memory to device but force a THP allocation error. */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_FLAGS, buffer,
			      HMM_DMIRROR_FLAG_FAIL_ALLOC);
	ASSERT_EQ(ret, 0);
	ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	/* Check what the device read. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i) {
		ASSERT_EQ(ptr[i], i);
		if (ptr[i] != i)
			break;
	}

	/* Try faulting back a single (PAGE_SIZE) page. */
	ptr = buffer->ptr;
	ASSERT_EQ(ptr[2048], 2048);

	/* unmap and remap the region to reset things. */
	ret = munmap(old_ptr, 2 * size);
	ASSERT_EQ(ret, 0);
	old_ptr = mmap(NULL, 2 * size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, buffer->fd, 0);
	ASSERT_NE(old_ptr, MAP_FAILED);
	map = (void *)ALIGN((uintptr_t)old_ptr, size);
	ret = madvise(map, size, MADV_HUGEPAGE);
	ASSERT_EQ(ret, 0);
	buffer->ptr = map;

	/* Initialize buffer in system memory. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* Migrate THP to device. */
	ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	/*
	 * Force an allocation error when faulting back a THP resident in the
	 * device.
	 */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_FLAGS, buffer,
			      HMM_DMIRROR_FLAG_FAIL_ALLOC);
	ASSERT_EQ(ret, 0);

	ret = hmm_migrate_dev_to_sys(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	ptr = buffer->ptr;
	ASSERT_EQ(ptr[2048], 2048);

	buffer->ptr = old_ptr;
	hmm_buffer_free(buffer);
}

/*
 * Migrate private anonymous huge zero page with allocation errors.
 */
TEST_F(hmm, migrate_anon_huge_zero_err)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	void *old_ptr;
	void *map;
	int *ptr;
	int ret;

	size = read_pmd_pagesize();

	buffer = hmm_buffer_alloc(2 * size, 2 * size,
				  PROT_READ,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	memset(buffer->mirror, 0xFF, 2 * size);

	old_ptr = buffer->ptr;

	npages = size >> self->page_shift;
	map = (void *)ALIGN((uintptr_t)old_ptr, size);
	ret = madvise(map, size, MADV_HUGEPAGE);
	ASSERT_EQ(ret, 0);
	buffer->ptr = map;

	/* Migrate memory to device but force a THP allocation error. */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_FLAGS, buffer,
			      HMM_DMIRROR_FLAG_FAIL_ALLOC);
	ASSERT_EQ(ret, 0);
	ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	/* Check what the device read. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], 0);

	/* Try faulting back a single (PAGE_SIZE) page. */
	ptr = buffer->ptr;
	ASSERT_EQ(ptr[2048], 0);

	/* unmap and remap the region to reset things. */
	ret = munmap(old_ptr, 2 * size);
	ASSERT_EQ(ret, 0);
	old_ptr = mmap(NULL, 2 * size, PROT_READ,
			MAP_PRIVATE | MAP_ANONYMOUS, buffer->fd, 0);
	ASSERT_NE(old_ptr, MAP_FAILED);
	map = (void *)ALIGN((uintptr_t)old_ptr, size);
	ret = madvise(map, size, MADV_HUGEPAGE);
	ASSERT_EQ(ret, 0);
	buffer->ptr = map;

	/* Initialize buffer in system memory (zero THP page). */
	ret = ptr[0];
	ASSERT_EQ(ret, 0);

	/* Migrate memory to device but force a THP allocation error. */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_FLAGS, buffer,
			      HMM_DMIRROR_FLAG_FAIL_ALLOC);
	ASSERT_EQ(ret, 0);
	ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	/* Fault the device memory back and check it. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], 0);

	buffer->ptr = old_ptr;
	hmm_buffer_free(buffer);
}

struct benchmark_results {
	double sys_to_dev_time;
	double dev_to_sys_time;
	double throughput_s2d;
	double throughput_d2s;
};

/*
 * Fault in and migrate to device memory with one of the three
 * HMM_DMIRROR_MIGRATE_*FAULT* ioctls.
 */
static const unsigned long hmm_fault_migrate_ioctls[] = {
	HMM_DMIRROR_MIGRATE_ON_FAULT,		/* one walk */
	HMM_DMIRROR_MIGRATE_FAULT_TWO_WALKS,	/* hmm_range_fault + setup */
	HMM_DMIRROR_MIGRATE_SETUP_FAULT,	/* setup with MIGRATE_VMA_FAULT */
};

static int hmm_set_flags(int fd, uint64_t flags)
{
	struct hmm_dmirror_cmd cmd = { .npages = flags };

	return ioctl(fd, HMM_DMIRROR_FLAGS, &cmd) ? -errno : 0;
}

/* Is the page at @addr swapped out?  -1 if pagemap cannot tell. */
static int hmm_page_swapped(void *addr, unsigned int page_shift)
{
	uint64_t entry;
	int fd, ret = -1;

	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		return -1;
	if (pread(fd, &entry, sizeof(entry),
		  ((uintptr_t)addr >> page_shift) * sizeof(entry)) ==
	    sizeof(entry))
		ret = !!(entry & (1ULL << 62));
	close(fd);
	return ret;
}

/*
 * Never-touched anonymous memory: nothing is faulted in, every page is
 * migrated as an empty slot and reads back as zeros, through the device and
 * through the CPU.  The same for the three ways to fault and migrate.
 */
TEST_F(hmm, migrate_on_fault_untouched)
{
	struct hmm_buffer *buffer;
	unsigned long npages, size, i, m;
	int *ptr;
	int ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	size = npages << self->page_shift;

	for (m = 0; m < ARRAY_SIZE(hmm_fault_migrate_ioctls); m++) {
		buffer = hmm_buffer_alloc(size, size, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1);
		ASSERT_NE(buffer, NULL);
		memset(buffer->mirror, 0xA5, size);

		ret = hmm_dmirror_cmd(self->fd, hmm_fault_migrate_ioctls[m],
				      buffer, npages);
		ASSERT_EQ(ret, 0);
		ASSERT_EQ(buffer->cpages, npages);
		/* Nothing to fault: one call per chunk, never retried */
		ASSERT_EQ(buffer->faults, 0);

		for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
			ASSERT_EQ(ptr[i], 0);
		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			ASSERT_EQ(ptr[i], 0);
		hmm_buffer_free(buffer);
	}
}

/*
 * Memory that maps the zero page (read, never written) is migrated as empty
 * slots, not faulted for write first.
 */
TEST_F(hmm, migrate_on_fault_zero_page)
{
	struct hmm_buffer *buffer;
	unsigned long npages, size, i;
	int *ptr;
	int ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	size = npages << self->page_shift;
	buffer = hmm_buffer_alloc(size, size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	ret = madvise(buffer->ptr, size, MADV_NOHUGEPAGE);
	ASSERT_EQ(ret, 0);

	/* Map the zero page everywhere. */
	for (i = 0, ptr = buffer->ptr; i < npages; ++i)
		ASSERT_EQ(ptr[i * self->page_size / sizeof(*ptr)], 0);
	memset(buffer->mirror, 0xA5, size);

	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_MIGRATE_ON_FAULT, buffer,
			      npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	ASSERT_EQ(buffer->faults, 0);
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], 0);

	/* The CPU sees zeros, and can write. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], 0);
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);
	hmm_buffer_free(buffer);
}

/*
 * Pages mapped read-only in a writable private file mapping need a write
 * (COW) fault before the device can write them: the walk faults and then
 * migrates them; the file keeps its data.
 */
TEST_F(hmm, migrate_on_fault_read_only)
{
	struct hmm_buffer *buffer;
	unsigned long npages, size, i;
	int *ptr;
	int fd, ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	size = npages << self->page_shift;
	fd = hmm_create_file(size);
	ASSERT_GE(fd, 0);

	buffer = hmm_buffer_alloc(size, size, PROT_READ | PROT_WRITE,
				  MAP_SHARED, fd);
	ASSERT_NE(buffer, NULL);
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;
	munmap(buffer->ptr, size);

	/* A private mapping of the file, read so every PTE is read-only. */
	buffer->ptr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE,
			   fd, 0);
	ASSERT_NE(buffer->ptr, MAP_FAILED);
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_MIGRATE_ON_FAULT, buffer,
			      npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);

	/* Writes through the private mapping do not reach the file. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = -i;
	for (i = 0; i < npages; i++) {
		int val;

		ASSERT_EQ(pread(fd, &val, sizeof(val), i * self->page_size),
			  sizeof(val));
		ASSERT_EQ(val, (int)(i * self->page_size / sizeof(int)));
	}
	hmm_buffer_free(buffer);
	close(fd);
}

/*
 * COW-shared pages after fork(): the parent faults and migrates its copy;
 * both the parent's and the child's data stay intact.
 */
TEST_F(hmm, migrate_on_fault_cow)
{
	struct hmm_buffer *buffer;
	unsigned long npages, size, i;
	int pipefd[2];
	int *ptr;
	int ret, status;
	pid_t pid;
	char c;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	size = npages << self->page_shift;
	buffer = hmm_buffer_alloc(size, size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;
	ASSERT_EQ(pipe(pipefd), 0);

	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		/* Wait for the parent to migrate and write, then check. */
		close(pipefd[1]);
		if (read(pipefd[0], &c, 1) != 1)
			_exit(2);
		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			if (ptr[i] != (int)i)
				_exit(1);
		_exit(0);
	}
	close(pipefd[0]);

	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_MIGRATE_ON_FAULT, buffer,
			      npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);
	/*
	 * Breaking COW invalidates the range before anything is collected:
	 * hmm_range_fault() returns -EBUSY once per chunk (the buffer spans
	 * at most three PMDs), and the second call collects it, although
	 * test_hmm's notifier sets its sequence for every invalidation.
	 */
	ASSERT_GE(buffer->faults, 1);
	ASSERT_LE(buffer->faults, 3);

	/* The parent writes its copy, through the CPU. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = -i;
	ASSERT_EQ(write(pipefd[1], "x", 1), 1);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], -(int)i);
	close(pipefd[1]);
	hmm_buffer_free(buffer);
}

/*
 * Swapped-out pages are swapped in and migrated in the same call.
 */
TEST_F(hmm, migrate_on_fault_swap)
{
	struct hmm_buffer *buffer;
	unsigned long npages, size, i, swapped = 0;
	int *ptr;
	int ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	size = npages << self->page_shift;
	buffer = hmm_buffer_alloc(size, size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	ret = madvise(buffer->ptr, size, MADV_NOHUGEPAGE);
	ASSERT_EQ(ret, 0);
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	ret = madvise(buffer->ptr, size, MADV_PAGEOUT);
	for (i = 0; !ret && i < npages; i++)
		swapped += hmm_page_swapped(buffer->ptr + i * self->page_size,
					    self->page_shift) == 1;
	if (!swapped) {
		hmm_buffer_free(buffer);
		SKIP(return, "no page could be swapped out (no swap device?)");
	}

	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_MIGRATE_ON_FAULT, buffer,
			      npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	/* Swapping in invalidates nothing: never retried */
	ASSERT_EQ(buffer->faults, 0);
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);
	hmm_buffer_free(buffer);
}

/*
 * The in-tree drivers' sequences (HMM_DMIRROR_MIGRATE_LIKE_XE and
 * HMM_DMIRROR_MIGRATE_LIKE_AMDKFD) on present, never-touched and swapped-out
 * memory: the device reads the data back either way.  xe's migrates every
 * page (it faults in what migrate_vma_setup() could not collect, then tries
 * again; converted to the one walk, migrate_vma_setup() faults it in);
 * amdkfd's migrates what migrate_vma_setup() collects and maps the
 * swapped-out pages from system memory, after faulting them in.
 */
TEST_F(hmm, migrate_like_drivers)
{
	/* xe's twice: as it is, and with the one walk (the xe RFC) */
	static const unsigned long ioctls[] = {
		HMM_DMIRROR_MIGRATE_LIKE_XE,
		HMM_DMIRROR_MIGRATE_LIKE_XE,
		HMM_DMIRROR_MIGRATE_LIKE_AMDKFD,
	};
	static const uint64_t flags[] = { 0, HMM_DMIRROR_FLAG_SETUP_FAULT, 0 };
	enum { PRESENT, UNTOUCHED, SWAPPED, NSCENARIOS };
	unsigned char local = HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL;
	unsigned long npages, size, i, m, sc, swapped, ondev;
	unsigned long psize = self->page_size;
	struct hmm_buffer *buffer;
	unsigned char *snap;
	bool swap_tested = false;
	int *ptr, *data;
	int ret;

	if (hmm_is_coherent_type(variant->device_number))
		local = HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL;
	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	size = npages << self->page_shift;
	snap = malloc(npages);
	ASSERT_NE(snap, NULL);

	for (m = 0; m < ARRAY_SIZE(ioctls); m++) {
		for (sc = 0; sc < NSCENARIOS; sc++) {
			buffer = hmm_buffer_alloc(size, size,
						  PROT_READ | PROT_WRITE,
						  MAP_PRIVATE | MAP_ANONYMOUS,
						  -1);
			ASSERT_NE(buffer, NULL);
			ret = madvise(buffer->ptr, size, MADV_NOHUGEPAGE);
			ASSERT_EQ(ret, 0);
			memset(buffer->mirror, 0xA5, size);
			if (sc != UNTOUCHED)
				for (i = 0, ptr = buffer->ptr;
				     i < size / sizeof(*ptr); ++i)
					ptr[i] = i;
			swapped = 0;
			if (sc == SWAPPED) {
				ret = madvise(buffer->ptr, size, MADV_PAGEOUT);
				for (i = 0; !ret && i < npages; i++)
					swapped += hmm_page_swapped(buffer->ptr +
								    i * psize,
								    self->page_shift) == 1;
				if (!swapped) {
					/* no swap device: nothing to test */
					hmm_buffer_free(buffer);
					continue;
				}
				swap_tested = true;
			}

			ASSERT_EQ(hmm_set_flags(self->fd, flags[m]), 0);
			ret = hmm_dmirror_cmd(self->fd, ioctls[m], buffer,
					      npages);
			ASSERT_EQ(hmm_set_flags(self->fd, 0), 0);
			ASSERT_EQ(ret, 0);
			ASSERT_EQ(buffer->cpages, npages);
			for (i = 0, ptr = buffer->mirror;
			     i < size / sizeof(*ptr); ++i)
				ASSERT_EQ(ptr[i], sc == UNTOUCHED ? 0 : (int)i);

			/* Where the pages are, before the CPU touches them. */
			data = buffer->mirror;
			buffer->mirror = snap;
			ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_SNAPSHOT,
					      buffer, npages);
			buffer->mirror = data;
			ASSERT_EQ(ret, 0);
			for (i = 0, ondev = 0; i < npages; i++)
				ondev += (snap[i] & 0xF0) == local;
			/* amdkfd's migrate_vma_setup() skips swap entries */
			if (ioctls[m] == HMM_DMIRROR_MIGRATE_LIKE_AMDKFD)
				ondev += swapped;
			ASSERT_EQ(ondev, npages);

			for (i = 0, ptr = buffer->ptr;
			     i < size / sizeof(*ptr); ++i)
				ASSERT_EQ(ptr[i], sc == UNTOUCHED ? 0 : (int)i);
			hmm_buffer_free(buffer);
		}
	}
	free(snap);
	if (!swap_tested)
		SKIP(return, "no page could be swapped out (no swap device?)");
}

/*
 * A THP migrates whole with MIGRATE_VMA_SELECT_COMPOUND, and split without.
 */
TEST_F(hmm, migrate_on_fault_thp)
{
	struct hmm_buffer *buffer;
	unsigned long npages, size, i;
	int compound;
	void *old_ptr;
	int *ptr;
	int ret;

	size = read_pmd_pagesize();
	if (!size)
		SKIP(return, "THP not available");
	npages = size >> self->page_shift;

	for (compound = 1; compound >= 0; compound--) {
		buffer = hmm_buffer_alloc(2 * size, size,
					  PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1);
		ASSERT_NE(buffer, NULL);
		old_ptr = buffer->ptr;
		buffer->ptr = (void *)ALIGN((uintptr_t)buffer->ptr, size);
		ret = madvise(buffer->ptr, size, MADV_HUGEPAGE);
		ASSERT_EQ(ret, 0);
		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			ptr[i] = i;

		ASSERT_EQ(hmm_set_flags(self->fd, compound ? 0 :
					HMM_DMIRROR_FLAG_NO_COMPOUND), 0);
		ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_MIGRATE_ON_FAULT,
				      buffer, npages);
		ASSERT_EQ(hmm_set_flags(self->fd, 0), 0);
		ASSERT_EQ(ret, 0);
		ASSERT_EQ(buffer->cpages, npages);
		for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
			ASSERT_EQ(ptr[i], i);
		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			ASSERT_EQ(ptr[i], i);
		buffer->ptr = old_ptr;
		hmm_buffer_free(buffer);
	}
}

/*
 * A range partly present: written pages and never-touched ones interleave;
 * all of it is migrated, the data of the written pages intact.
 */
TEST_F(hmm, migrate_on_fault_partial)
{
	struct hmm_buffer *buffer;
	unsigned long npages, size, i, per_page;
	int *ptr;
	int ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	size = npages << self->page_shift;
	per_page = self->page_size / sizeof(*ptr);
	buffer = hmm_buffer_alloc(size, size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	ret = madvise(buffer->ptr, size, MADV_NOHUGEPAGE);
	ASSERT_EQ(ret, 0);
	/* Write every third page only. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		if ((i / per_page) % 3 == 0)
			ptr[i] = i;

	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_MIGRATE_ON_FAULT, buffer,
			      npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], (i / per_page) % 3 == 0 ? (int)i : 0);
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], (i / per_page) % 3 == 0 ? (int)i : 0);
	hmm_buffer_free(buffer);
}

/*
 * A range touching a PROT_NONE page or an unmapped hole fails with -EINVAL,
 * as HMM_DMIRROR_MIGRATE_TO_DEV does, and what was already migrated before
 * the bad page stays correct.
 */
TEST_F(hmm, migrate_on_fault_bad_range)
{
	struct hmm_buffer *buffer;
	unsigned long npages, size, i;
	int *ptr;
	int ret;

	npages = 6;
	size = npages << self->page_shift;
	buffer = hmm_buffer_alloc(size, size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	/* PROT_NONE in the middle. */
	ret = mprotect(buffer->ptr + 2 * self->page_size, self->page_size,
		       PROT_NONE);
	ASSERT_EQ(ret, 0);
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_MIGRATE_ON_FAULT, buffer,
			      npages);
	ASSERT_EQ(ret, -EINVAL);

	/* A hole in the middle. */
	ret = munmap(buffer->ptr + 2 * self->page_size, self->page_size);
	ASSERT_EQ(ret, 0);
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_MIGRATE_ON_FAULT, buffer,
			      npages);
	ASSERT_EQ(ret, -EINVAL);

	/* The pages around it still hold their data. */
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i) {
		if (i / (self->page_size / sizeof(*ptr)) == 2)
			continue;
		ASSERT_EQ(ptr[i], i);
	}
	hmm_buffer_free(buffer);
}

/*
 * HMM_DMIRROR_FLAG_SETUP_ONLY collects and puts everything back: the pages
 * stay in system memory, mapped, with their data, and writable; nothing is
 * left locked or unmapped (a second collection finds them all again).
 */
TEST_F(hmm, migrate_on_fault_restore)
{
	struct hmm_buffer *buffer;
	unsigned long npages, size, i, m;
	int *ptr;
	int ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	size = npages << self->page_shift;
	buffer = hmm_buffer_alloc(size, size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	for (m = 0; m < ARRAY_SIZE(hmm_fault_migrate_ioctls); m++) {
		ASSERT_EQ(hmm_set_flags(self->fd,
					HMM_DMIRROR_FLAG_SETUP_ONLY), 0);
		ret = hmm_dmirror_cmd(self->fd, hmm_fault_migrate_ioctls[m],
				      buffer, npages);
		ASSERT_EQ(hmm_set_flags(self->fd, 0), 0);
		ASSERT_EQ(ret, 0);
		ASSERT_EQ(buffer->cpages, 0);
		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			ASSERT_EQ(ptr[i], i);
	}
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = -i;

	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_MIGRATE_ON_FAULT, buffer,
			      npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], -(int)i);
	hmm_buffer_free(buffer);
}

struct hmm_unmap_race {
	void *ptr;
	unsigned long size;
	unsigned int page_size;
	int stop;
};

static void *hmm_unmap_race_thread(void *arg)
{
	struct hmm_unmap_race *race = arg;
	unsigned long npages = race->size / race->page_size;

	while (!__atomic_load_n(&race->stop, __ATOMIC_RELAXED)) {
		unsigned long i = hmm_random() % npages;
		void *p = race->ptr + i * race->page_size;

		munmap(p, race->page_size);
		mmap(p, race->page_size, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		*(int *)p = 1;
	}
	return NULL;
}

/*
 * munmap() racing with migrate on fault: the ioctl may fail (-EINVAL when it
 * meets the hole, -ENOENT when a page went away before it was read back),
 * but it must not hang, and afterwards the whole range can still be migrated
 * (nothing was left locked or half-collected).  The racing thread maps
 * fresh system pages back, so every round has pages to migrate.
 */
TEST_F(hmm, migrate_on_fault_munmap_race)
{
	struct hmm_unmap_race race;
	struct hmm_buffer *buffer;
	unsigned long npages, size, i;
	pthread_t thread;
	char *ptr;
	struct timespec t0, t1;
	int ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	size = npages << self->page_shift;
	buffer = hmm_buffer_alloc(size, size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	/* Small pages: THPs racing with invalidation have their own test. */
	ASSERT_EQ(madvise(buffer->ptr, size, MADV_NOHUGEPAGE), 0);
	memset(buffer->ptr, 1, size);

	race.ptr = buffer->ptr;
	race.size = size;
	race.page_size = self->page_size;
	race.stop = 0;
	ASSERT_EQ(pthread_create(&thread, NULL, hmm_unmap_race_thread, &race),
		  0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_MIGRATE_ON_FAULT,
				      buffer, npages);
		ASSERT_TRUE(ret == 0 || ret == -EINVAL || ret == -EBUSY ||
			    ret == -ENOENT);
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while (t1.tv_sec - t0.tv_sec < 2);
	__atomic_store_n(&race.stop, 1, __ATOMIC_RELAXED);
	pthread_join(thread, NULL);

	/*
	 * Bring everything back to system memory (a CPU write alone does not
	 * on the coherent device), then all of it must migrate again.
	 */
	ret = hmm_migrate_dev_to_sys(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	memset(buffer->ptr, 2, size);
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_MIGRATE_ON_FAULT, buffer,
			      npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	for (i = 0, ptr = buffer->mirror; i < size; ++i)
		ASSERT_EQ(ptr[i], 2);
	hmm_buffer_free(buffer);
}

static double get_time_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (tv.tv_sec * 1000.0) + (tv.tv_usec / 1000.0);
}

static void print_benchmark_results(const char *test_name, size_t buffer_size,
				     struct benchmark_results *thp,
				     struct benchmark_results *regular)
{
	double s2d_improvement = ((regular->sys_to_dev_time - thp->sys_to_dev_time) /
				 regular->sys_to_dev_time) * 100.0;
	double d2s_improvement = ((regular->dev_to_sys_time - thp->dev_to_sys_time) /
				 regular->dev_to_sys_time) * 100.0;
	double throughput_s2d_improvement = ((thp->throughput_s2d - regular->throughput_s2d) /
					    regular->throughput_s2d) * 100.0;
	double throughput_d2s_improvement = ((thp->throughput_d2s - regular->throughput_d2s) /
					    regular->throughput_d2s) * 100.0;

	printf("\n=== %s (%.1f MB) ===\n", test_name, buffer_size / (1024.0 * 1024.0));
	printf("                     | With THP        | Without THP     | Improvement\n");
	printf("---------------------------------------------------------------------\n");
	printf("Sys->Dev Migration   | %.3f ms        | %.3f ms        | %.1f%%\n",
	       thp->sys_to_dev_time, regular->sys_to_dev_time, s2d_improvement);
	printf("Dev->Sys Migration   | %.3f ms        | %.3f ms        | %.1f%%\n",
	       thp->dev_to_sys_time, regular->dev_to_sys_time, d2s_improvement);
	printf("S->D Throughput      | %.2f GB/s      | %.2f GB/s      | %.1f%%\n",
	       thp->throughput_s2d, regular->throughput_s2d, throughput_s2d_improvement);
	printf("D->S Throughput      | %.2f GB/s      | %.2f GB/s      | %.1f%%\n",
	       thp->throughput_d2s, regular->throughput_d2s, throughput_d2s_improvement);
}

/*
 * Run a single migration benchmark
 * fd: file descriptor for hmm device
 * use_thp: whether to use THP
 * buffer_size: size of buffer to allocate
 * iterations: number of iterations
 * results: where to store results
 */
static inline int run_migration_benchmark(int fd, int use_thp, size_t buffer_size,
					   int iterations, struct benchmark_results *results)
{
	struct hmm_buffer *buffer;
	unsigned long npages = buffer_size / sysconf(_SC_PAGESIZE);
	double start, end;
	double s2d_total = 0, d2s_total = 0;
	int ret, i;
	int *ptr;

	buffer = hmm_buffer_alloc(buffer_size, buffer_size,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	if (!buffer) {
		ret = -1;
		goto cleanup;
	}
	memset(buffer->mirror, 0xFF, buffer_size);

	/* Apply THP hint if requested */
	if (use_thp)
		ret = madvise(buffer->ptr, buffer_size, MADV_HUGEPAGE);
	else
		ret = madvise(buffer->ptr, buffer_size, MADV_NOHUGEPAGE);

	if (ret)
		goto cleanup;

	/* Initialize memory to make sure pages are allocated */
	ptr = (int *)buffer->ptr;
	for (i = 0; i < buffer_size / sizeof(int); i++)
		ptr[i] = i & 0xFF;

	/* Warmup iteration */
	ret = hmm_migrate_sys_to_dev(fd, buffer, npages);
	if (ret)
		goto cleanup;

	ret = hmm_migrate_dev_to_sys(fd, buffer, npages);
	if (ret)
		goto cleanup;

	/* Benchmark iterations */
	for (i = 0; i < iterations; i++) {
		/* System to device migration */
		start = get_time_ms();

		ret = hmm_migrate_sys_to_dev(fd, buffer, npages);
		if (ret)
			goto cleanup;

		end = get_time_ms();
		s2d_total += (end - start);

		/* Device to system migration */
		start = get_time_ms();

		ret = hmm_migrate_dev_to_sys(fd, buffer, npages);
		if (ret)
			goto cleanup;

		end = get_time_ms();
		d2s_total += (end - start);
	}

	/* Calculate average times and throughput */
	results->sys_to_dev_time = s2d_total / iterations;
	results->dev_to_sys_time = d2s_total / iterations;
	results->throughput_s2d = (buffer_size / (1024.0 * 1024.0 * 1024.0)) /
				 (results->sys_to_dev_time / 1000.0);
	results->throughput_d2s = (buffer_size / (1024.0 * 1024.0 * 1024.0)) /
				 (results->dev_to_sys_time / 1000.0);

cleanup:
	hmm_buffer_free(buffer);
	return ret;
}

/*
 * Benchmark THP migration with different buffer sizes
 */
TEST_F_TIMEOUT(hmm, benchmark_thp_migration, 300)
{
	struct benchmark_results thp_results, regular_results;
	size_t thp_size = read_pmd_pagesize();
	int iterations = 5;

	if (!thp_size)
		thp_size = TWOMEG;

	printf("\nHMM THP Migration Benchmark\n");
	printf("---------------------------\n");
	printf("System page size: %ld bytes\n", sysconf(_SC_PAGESIZE));

	/* Test different buffer sizes */
	size_t test_sizes[] = {
		thp_size / 4,      /* quarter THP */
		thp_size / 2,      /* half THP */
		thp_size,          /* single THP */
		thp_size * 2,      /* two THPs */
		thp_size * 4,      /* four THPs */
		thp_size * 8,      /* eight THPs */
		thp_size * 128,    /* one twenty eight THPs */
	};

	static const char *const test_names[] = {
		"Small Buffer",
		"Half THP Size",
		"Single THP Size",
		"Two THP Size",
		"Four THP Size",
		"Eight THP Size",
		"One twenty eight THP Size"
	};

	int num_tests = ARRAY_SIZE(test_sizes);

	/* Run all tests */
	for (int i = 0; i < num_tests; i++) {
		/* Skip test sizes exceeding INT_MAX to avoid overflow */
		if (test_sizes[i] > INT_MAX)
			break;

		/* Test with THP */
		ASSERT_EQ(run_migration_benchmark(self->fd, 1, test_sizes[i],
					iterations, &thp_results), 0);

		/* Test without THP */
		ASSERT_EQ(run_migration_benchmark(self->fd, 0, test_sizes[i],
					iterations, &regular_results), 0);

		/* Print results */
		print_benchmark_results(test_names[i], test_sizes[i],
					&thp_results, &regular_results);
	}
}
/*
 * Test that HMM can fault in pages backed by userfaultfd using the
 * hmm_range_fault_unlocked_timeout() path with no timeout. This exercises
 * the lock-drop retry logic in the HMM framework.
 */
struct uffd_thread_args {
	int uffd;
	int stop_fd;
	void *page_buffer;
	unsigned long page_size;
};

static void *uffd_handler_thread(void *arg)
{
	struct uffd_thread_args *args = arg;
	struct uffd_msg msg;
	struct uffdio_copy copy;
	struct pollfd pollfd[2];
	int ret;

	pollfd[0].fd = args->uffd;
	pollfd[0].events = POLLIN;
	pollfd[1].fd = args->stop_fd;
	pollfd[1].events = POLLIN;

	while (1) {
		ret = poll(pollfd, 2, -1);
		if (ret <= 0)
			break;
		if (pollfd[1].revents)
			break;
		if (!(pollfd[0].revents & POLLIN))
			break;

		ret = read(args->uffd, &msg, sizeof(msg));
		if (ret != sizeof(msg))
			break;

		if (msg.event != UFFD_EVENT_PAGEFAULT)
			break;

		/* Fill the page with a known pattern */
		memset(args->page_buffer, 0xAB, args->page_size);

		copy.dst = msg.arg.pagefault.address & ~(args->page_size - 1);
		copy.src = (unsigned long)args->page_buffer;
		copy.len = args->page_size;
		copy.mode = 0;
		copy.copy = 0;

		ret = ioctl(args->uffd, UFFDIO_COPY, &copy);
		if (ret < 0)
			break;
	}

	return NULL;
}

TEST_F(hmm, userfaultfd_read)
{
	struct hmm_buffer *buffer;
	struct uffd_thread_args uffd_args;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	unsigned char *ptr;
	pthread_t thread;
	int uffd;
	int stop_fd;
	int ret;
	struct uffdio_api api;
	struct uffdio_register reg;
	uint64_t stop = 1;
	ssize_t nwrite;

	npages = 4;
	size = npages << self->page_shift;

	/* Create userfaultfd */
	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		SKIP(return, "userfaultfd not available");

	api.api = UFFD_API;
	api.features = 0;
	ret = ioctl(uffd, UFFDIO_API, &api);
	ASSERT_EQ(ret, 0);

	buffer = malloc(sizeof(*buffer));
	ASSERT_NE(buffer, NULL);

	buffer->fd = -1;
	buffer->size = size;
	buffer->mirror = malloc(size);
	ASSERT_NE(buffer->mirror, NULL);

	/* Create anonymous mapping */
	buffer->ptr = mmap(NULL, size,
			   PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);
	ASSERT_NE(buffer->ptr, MAP_FAILED);

	/* Register the region with userfaultfd */
	reg.range.start = (unsigned long)buffer->ptr;
	reg.range.len = size;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	ret = ioctl(uffd, UFFDIO_REGISTER, &reg);
	ASSERT_EQ(ret, 0);

	/* Set up the handler thread */
	uffd_args.uffd = uffd;
	stop_fd = eventfd(0, EFD_CLOEXEC);
	ASSERT_GE(stop_fd, 0);
	uffd_args.stop_fd = stop_fd;
	uffd_args.page_buffer = malloc(self->page_size);
	ASSERT_NE(uffd_args.page_buffer, NULL);
	uffd_args.page_size = self->page_size;

	ret = pthread_create(&thread, NULL, uffd_handler_thread, &uffd_args);
	ASSERT_EQ(ret, 0);

	/*
	 * Use the unlocked read path which allows the mmap lock to be
	 * dropped during the fault, enabling userfaultfd resolution.
	 */
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_READ_UNLOCKED,
			      buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	/* Verify the device read the data filled by the uffd handler */
	ptr = buffer->mirror;
	for (i = 0; i < size; ++i)
		ASSERT_EQ(ptr[i], (unsigned char)0xAB);

	nwrite = write(stop_fd, &stop, sizeof(stop));
	ASSERT_EQ(nwrite, sizeof(stop));
	pthread_join(thread, NULL);
	close(stop_fd);
	free(uffd_args.page_buffer);
	close(uffd);
	hmm_buffer_free(buffer);
}

/*
 * Migrate anonymous memory to the device, invalidate the device's mirror of
 * it with mprotect() and read it through the device again. The read faults
 * the pages in through hmm_range_fault(), which reports the device's own
 * pages as they are: a THP as a device private PMD, walked in pieces, then
 * after mprotect() of one page of it, as PTEs. The device must read the
 * right data each time.
 */
TEST_F(hmm, migrate_mprotect_read)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	void *old_ptr;
	int *ptr;
	int ret, use_thp;

	for (use_thp = 0; use_thp < 2; ++use_thp) {
		size = use_thp ? read_pmd_pagesize() : 16 << self->page_shift;
		if (!size)
			continue;
		npages = size >> self->page_shift;

		buffer = hmm_buffer_alloc(2 * size, size,
					  PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1);
		ASSERT_NE(buffer, NULL);
		old_ptr = buffer->ptr;
		if (use_thp) {
			buffer->ptr = (void *)ALIGN((uintptr_t)old_ptr, size);
			ret = madvise(buffer->ptr, size, MADV_HUGEPAGE);
			ASSERT_EQ(ret, 0);
		}

		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			ptr[i] = i;

		ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
		ASSERT_EQ(ret, 0);
		ASSERT_EQ(buffer->cpages, npages);

		/* Invalidate the mirror: all of the range, then one page. */
		ret = mprotect(buffer->ptr, size, PROT_READ);
		ASSERT_EQ(ret, 0);
		ret = mprotect(buffer->ptr, size, PROT_READ | PROT_WRITE);
		ASSERT_EQ(ret, 0);

		memset(buffer->mirror, 0, size);
		ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_READ, buffer,
				      npages);
		ASSERT_EQ(ret, 0);
		ASSERT_EQ(buffer->cpages, npages);
		ASSERT_EQ(buffer->faults, 1);
		for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i) {
			ASSERT_EQ(ptr[i], i);
			if (ptr[i] != i)
				break;
		}

		ret = mprotect(buffer->ptr + self->page_size, self->page_size,
			       PROT_READ);
		ASSERT_EQ(ret, 0);
		ret = mprotect(buffer->ptr + self->page_size, self->page_size,
			       PROT_READ | PROT_WRITE);
		ASSERT_EQ(ret, 0);

		memset(buffer->mirror, 0, size);
		ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_READ, buffer,
				      npages);
		ASSERT_EQ(ret, 0);
		ASSERT_EQ(buffer->cpages, npages);
		for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i) {
			ASSERT_EQ(ptr[i], i);
			if (ptr[i] != i)
				break;
		}

		/* The CPU sees the same data. */
		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i) {
			ASSERT_EQ(ptr[i], i);
			if (ptr[i] != i)
				break;
		}

		buffer->ptr = old_ptr;
		hmm_buffer_free(buffer);
	}
}

/*
 * Migrate anonymous memory to the device and fork(): the device entries
 * become read-only in parent and child. A device write through the parent's
 * mirror must still succeed and write the parent's memory (it has to break
 * COW), and the child must keep seeing the data from before the write.
 */
TEST_F(hmm, migrate_fork_write)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	int pipefd[2];
	int status;
	pid_t pid;
	int *ptr;
	int ret;

	npages = 16;
	size = npages << self->page_shift;

	buffer = hmm_buffer_alloc(size, size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);

	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	ret = pipe(pipefd);
	ASSERT_EQ(ret, 0);

	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		char c;

		/* Check the child's view once the parent's write is done. */
		close(pipefd[1]);
		while (read(pipefd[0], &c, 1) < 0 && errno == EINTR)
			;
		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			if (ptr[i] != i)
				_exit(1);
		_exit(0);
	}
	close(pipefd[0]);

	/* Simulate a device writing the parent's memory. */
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ptr[i] = -i;
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_WRITE, buffer, npages);

	/* Let the child check its memory whatever the outcome. */
	close(pipefd[1]);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);

	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i) {
		ASSERT_EQ(ptr[i], -i);
		if (ptr[i] != -i)
			break;
	}

	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);

	hmm_buffer_free(buffer);
}

struct hmm_race_args {
	char		*ptr;
	unsigned long	npages;
	unsigned long	page_size;
	unsigned long	pmd_pages;
	/* 1: pages being dropped with MADV_DONTNEED, 2: dropped */
	unsigned char	*zapped;
	unsigned int	seed;
	int		stop;
	int		err;
	unsigned long	nops;
};

/*
 * mprotect() random small pieces of the range, or a whole PMD of it, or
 * MADV_DONTNEED random small pieces.
 */
static void *hmm_race_invalidate(void *arg)
{
	struct hmm_race_args *args = arg;

	while (!__atomic_load_n(&args->stop, __ATOMIC_ACQUIRE)) {
		unsigned int r = rand_r(&args->seed);
		unsigned long first = rand_r(&args->seed) % args->npages;
		unsigned long n = 1 + rand_r(&args->seed) % 16;
		char *p;
		int ret;

		if (r % 16 == 0) {
			first -= first % args->pmd_pages;
			n = args->pmd_pages;
		}
		if (first + n > args->npages)
			n = args->npages - first;
		p = args->ptr + first * args->page_size;

		if (r % 16 == 0 || r % 8) {
			ret = mprotect(p, n * args->page_size, PROT_READ);
			if (!ret)
				ret = mprotect(p, n * args->page_size,
					       PROT_READ | PROT_WRITE);
		} else {
			memset(args->zapped + first, 1, n);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			ret = madvise(p, n * args->page_size, MADV_DONTNEED);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (!ret)
				memset(args->zapped + first, 2, n);
		}
		if (ret) {
			args->err = errno;
			break;
		}
		args->nops++;
		usleep(rand_r(&args->seed) % 200);
	}
	return NULL;
}

/*
 * Check that every page holds its initial values, or zeroes if it may have
 * been dropped with MADV_DONTNEED (@zapped), and zeroes if it had been
 * dropped before the data was read (@dropped). Returns the index of the
 * first bad int or -1.
 */
static long hmm_race_check(const int *data, const unsigned char *zapped,
			   const unsigned char *dropped, unsigned long npages,
			   unsigned long page_size)
{
	unsigned long nints = page_size / sizeof(int);
	unsigned long i, j;

	for (i = 0; i < npages; i++) {
		bool zero = dropped[i] == 2 ||
			    (zapped[i] && data[i * nints + 1] == 0);

		for (j = 0; j < nints; j++) {
			int v = zero ? 0 : i * nints + j;

			if (data[i * nints + j] != v)
				return i * nints + j;
		}
	}
	return -1;
}

static unsigned long hmm_elapsed_ms(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	       (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/*
 * Migrate a THP-aligned 16 MiB range to the device and read it back through
 * the device again and again, while another thread keeps invalidating
 * random pieces of it with mprotect() and MADV_DONTNEED. Nothing may fail
 * but with the errors expected from the race, and the data must stay intact
 * except where it was dropped. Each round starts from fresh THPs and ends
 * checking that the device and the CPU see the same data.
 */
TEST_F(hmm, migrate_thp_race_invalidate)
{
	struct hmm_race_args args = { 0 };
	struct hmm_buffer *buffer;
	struct timespec t0, t1;
	unsigned long npages;
	unsigned long size;
	unsigned long thp;
	unsigned long i;
	unsigned long rounds = 0, iters = 0, nops = 0;
	unsigned char *dropped;
	pthread_t thread;
	void *old_ptr;
	long bad = -1;
	int err = 0;
	int *ptr;
	int ret;

	thp = read_pmd_pagesize();
	if (!thp || !thp_is_enabled())
		SKIP(return, "Transparent huge pages not available");

	size = 16 * ONEMEG;
	npages = size >> self->page_shift;

	buffer = hmm_buffer_alloc(size + thp, size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	old_ptr = buffer->ptr;
	buffer->ptr = (void *)ALIGN((uintptr_t)old_ptr, thp);
	ret = madvise(buffer->ptr, size, MADV_HUGEPAGE);
	ASSERT_EQ(ret, 0);

	args.ptr = buffer->ptr;
	args.npages = npages;
	args.page_size = self->page_size;
	args.pmd_pages = thp >> self->page_shift;
	args.seed = getpid();
	args.zapped = calloc(npages, 1);
	ASSERT_NE(args.zapped, NULL);
	dropped = calloc(npages, 1);
	ASSERT_NE(dropped, NULL);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		/* Start from fresh THPs. */
		ret = madvise(buffer->ptr, size, MADV_DONTNEED);
		ASSERT_EQ(ret, 0);
		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			ptr[i] = i;
		memset(args.zapped, 0, npages);
		args.stop = 0;
		ret = pthread_create(&thread, NULL, hmm_race_invalidate, &args);
		ASSERT_EQ(ret, 0);

		clock_gettime(CLOCK_MONOTONIC, &t1);
		do {
			ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
			/* Pages invalidated since they migrated are unmirrored. */
			if (ret && ret != -ENOENT) {
				err = ret;
				break;
			}

			/* What was dropped before the read must read zero. */
			memcpy(dropped, args.zapped, npages);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_READ,
					      buffer, npages);
			if (ret && ret != -EBUSY) {
				err = ret;
				break;
			}
			if (!ret) {
				__atomic_thread_fence(__ATOMIC_SEQ_CST);
				bad = hmm_race_check(buffer->mirror,
						     args.zapped, dropped,
						     npages, self->page_size);
				if (bad >= 0)
					break;
			}

			/* Bring it back to system memory every other time. */
			if (iters++ & 1) {
				ret = hmm_migrate_dev_to_sys(self->fd, buffer,
							     npages);
				if (ret) {
					err = ret;
					break;
				}
			}
		} while (hmm_elapsed_ms(&t1) < 250);

		__atomic_store_n(&args.stop, 1, __ATOMIC_RELEASE);
		pthread_join(thread, NULL);
		nops += args.nops;
		args.nops = 0;
		rounds++;
		if (args.err || err || bad >= 0)
			break;

		/* The device must now see what the CPU sees. */
		ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_READ, buffer,
				      npages);
		ASSERT_EQ(ret, 0);
		ASSERT_EQ(buffer->cpages, npages);
		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			if (((int *)buffer->mirror)[i] != ptr[i])
				break;
		ASSERT_EQ(i, size / sizeof(*ptr));
		bad = hmm_race_check(buffer->ptr, args.zapped, args.zapped,
				     npages, self->page_size);
		ASSERT_EQ(bad, -1);
	} while (hmm_elapsed_ms(&t0) < 2500);

	ksft_print_msg("%lu rounds, %lu iterations, %lu invalidations\n",
		       rounds, iters, nops);
	ASSERT_EQ(args.err, 0);
	ASSERT_EQ(err, 0);
	ASSERT_EQ(bad, -1);

	free(dropped);
	free(args.zapped);
	buffer->ptr = old_ptr;
	hmm_buffer_free(buffer);
}

/*
 * Migrate ever more THP-aligned anonymous memory to the device until its
 * memory runs out: the migration of what does not fit must fail cleanly,
 * leaving those pages in system memory with their data. Device private
 * memory of the test driver is only bounded by system memory, so that
 * variant skips if the device has not run out by the bound below.
 */
#define HMM_EXHAUST_CHUNK	(32UL * ONEMEG)
#define HMM_EXHAUST_MAX		(320UL * ONEMEG)

TEST_F(hmm, migrate_exhaust_device_memory)
{
	struct hmm_buffer *buffers[HMM_EXHAUST_MAX / HMM_EXHAUST_CHUNK];
	void *old_ptrs[HMM_EXHAUST_MAX / HMM_EXHAUST_CHUNK];
	unsigned long npages = HMM_EXHAUST_CHUNK >> self->page_shift;
	unsigned long size = HMM_EXHAUST_CHUNK;
	unsigned long thp = read_pmd_pagesize();
	unsigned long nints = size / sizeof(int);
	unsigned long ondev, notdev;
	struct hmm_buffer *buffer;
	unsigned long i, j, n;
	unsigned char *m;
	bool full = false;
	int *ptr;
	int ret;

	if (!thp)
		thp = TWOMEG;

	for (n = 0; n < HMM_EXHAUST_MAX / HMM_EXHAUST_CHUNK && !full; n++) {
		buffer = hmm_buffer_alloc(size + thp, size,
					  PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1);
		ASSERT_NE(buffer, NULL);
		buffers[n] = buffer;
		old_ptrs[n] = buffer->ptr;
		buffer->ptr = (void *)ALIGN((uintptr_t)buffer->ptr, thp);
		ret = madvise(buffer->ptr, size, MADV_HUGEPAGE);
		ASSERT_EQ(ret, 0);

		for (i = 0, ptr = buffer->ptr; i < nints; ++i)
			ptr[i] = n * nints + i;

		ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
		if (ret == 0) {
			ASSERT_EQ(buffer->cpages, npages);
			continue;
		}
		/* What did not migrate is not mirrored: the read fails. */
		ASSERT_EQ(ret, -ENOENT);
		full = true;
	}

	if (full) {
		unsigned char local = HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL;
		unsigned long first;
		int *data;

		if (hmm_is_coherent_type(variant->device_number))
			local = HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL;

		/* Find where the pages of the last buffer are. */
		buffer = buffers[n - 1];
		m = malloc(npages);
		ASSERT_NE(m, NULL);
		data = buffer->mirror;
		buffer->mirror = m;
		ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, buffer,
				      npages);
		buffer->mirror = data;
		ASSERT_EQ(ret, 0);
		ASSERT_EQ(buffer->cpages, npages);

		ondev = 0;
		notdev = 0;
		for (i = 0; i < npages; i++) {
			if ((m[i] & 0xF0) == local) {
				ondev++;
				continue;
			}

			/* Not migrated: in system memory, with its data. */
			notdev++;
			ASSERT_EQ(m[i] & 0xF0, 0);
			ptr = buffer->ptr + (i << self->page_shift);
			first = (n - 1) * nints + i * (self->page_size / sizeof(int));
			for (j = 0; j < self->page_size / sizeof(int); j++) {
				ASSERT_EQ(ptr[j], first + j);
				if (ptr[j] != first + j)
					break;
			}
		}
		ksft_print_msg("full after %lu MiB, last buffer: %lu pages migrated, %lu not\n",
			       n * size / ONEMEG, ondev, notdev);
		ASSERT_NE(notdev, 0);
		free(m);
	}

	/* Everything reads back right through the CPU, then free it all. */
	for (j = 0; j < n; j++) {
		buffer = buffers[j];
		for (i = 0, ptr = buffer->ptr; i < nints; ++i) {
			ASSERT_EQ(ptr[i], j * nints + i);
			if (ptr[i] != j * nints + i)
				break;
		}
		buffer->ptr = old_ptrs[j];
		hmm_buffer_free(buffer);
	}

	if (!full)
		SKIP(return, "device memory not exhausted by %lu MiB",
		     HMM_EXHAUST_MAX / ONEMEG);

	/* The device memory is usable again. */
	buffer = hmm_buffer_alloc(size + thp, size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	old_ptrs[0] = buffer->ptr;
	buffer->ptr = (void *)ALIGN((uintptr_t)buffer->ptr, thp);
	for (i = 0, ptr = buffer->ptr; i < nints; ++i)
		ptr[i] = i;
	ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	for (i = 0, ptr = buffer->mirror; i < nints; ++i) {
		ASSERT_EQ(ptr[i], i);
		if (ptr[i] != i)
			break;
	}
	buffer->ptr = old_ptrs[0];
	hmm_buffer_free(buffer);
}

/*
 * migrate_vma_setup(MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_FAULT) over pages
 * already on the device: it selects system memory only, so it must not fault
 * the device pages back to system memory to collect them there.
 */
TEST_F(hmm, migrate_on_fault_setup_device_pages)
{
	struct hmm_buffer *buffer;
	unsigned long npages, size, i;
	unsigned char *m;
	int *ptr;
	int ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	size = npages << self->page_shift;
	buffer = hmm_buffer_alloc(size, size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	ASSERT_EQ(madvise(buffer->ptr, size, MADV_NOHUGEPAGE), 0);
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;
	ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	ASSERT_EQ(hmm_set_flags(self->fd, HMM_DMIRROR_FLAG_SETUP_ONLY), 0);
	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_MIGRATE_SETUP_FAULT, buffer,
			      npages);
	ASSERT_EQ(hmm_set_flags(self->fd, 0), 0);
	ASSERT_EQ(ret, 0);

	ret = hmm_dmirror_cmd(self->fd, HMM_DMIRROR_SNAPSHOT, buffer, npages);
	ASSERT_EQ(ret, 0);
	for (i = 0, m = buffer->mirror; i < npages; ++i)
		ASSERT_EQ(m[i], HMM_DMIRROR_PROT_WRITE |
			  (hmm_is_coherent_type(variant->device_number) ?
			   HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL :
			   HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL));
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);
	hmm_buffer_free(buffer);
}

struct hmm_race_thread {
	pthread_t thread;
	int fd;
	unsigned long request;
	struct hmm_buffer buffer;	/* its own mirror, the shared range */
	unsigned long npages;
	int *stop;
	unsigned long runs, bad_data, bad_ret;
	int ret;			/* the first unexpected return */
};

static void *hmm_race_thread_fn(void *arg)
{
	struct hmm_race_thread *t = arg;
	unsigned long i;
	int ret, *ptr;

	while (!__atomic_load_n(t->stop, __ATOMIC_RELAXED)) {
		memset(t->buffer.mirror, 0xA5, t->buffer.size);
		ret = hmm_dmirror_cmd(t->fd, t->request, &t->buffer, t->npages);
		t->runs++;
		/* Racing migrations may find the mirror or the pages gone */
		if (ret == -ENOENT || ret == -EBUSY)
			continue;
		if (ret) {
			if (!t->bad_ret++)
				t->ret = ret;
			continue;
		}
		/* What the device read or migrated is what the CPU wrote */
		if (t->request == HMM_DMIRROR_MIGRATE_TO_SYS)
			continue;
		for (i = 0, ptr = t->buffer.mirror;
		     i < t->buffer.size / sizeof(*ptr); ++i)
			if (ptr[i] != (int)i) {
				t->bad_data++;
				break;
			}
	}
	return NULL;
}

/*
 * Migration to the device, migration back and device reads racing on one
 * range, for two seconds: every migration invalidates the mirror, the
 * migrating device's own included, so it never keeps an entry for a page
 * that migrated away, and every byte the device reads, and the CPU reads
 * afterwards, is the one written.
 */
TEST_F_TIMEOUT(hmm, migrate_race_dev_sys_read, 60)
{
	static const unsigned long requests[] = {
		HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS,
		HMM_DMIRROR_READ, HMM_DMIRROR_MIGRATE_ON_FAULT,
	};
	struct hmm_race_thread t[ARRAY_SIZE(requests)];
	struct hmm_buffer *buffer;
	unsigned long npages, size, i;
	struct timespec t0, t1;
	int stop = 0;
	int *ptr;
	int ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	size = npages << self->page_shift;
	buffer = hmm_buffer_alloc(size, size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	ASSERT_EQ(madvise(buffer->ptr, size, MADV_NOHUGEPAGE), 0);
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	for (i = 0; i < ARRAY_SIZE(t); i++) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].fd = self->fd;
		t[i].request = requests[i];
		t[i].buffer = *buffer;
		t[i].buffer.mirror = malloc(size);
		ASSERT_NE(t[i].buffer.mirror, NULL);
		t[i].npages = npages;
		t[i].stop = &stop;
		ASSERT_EQ(pthread_create(&t[i].thread, NULL,
					 hmm_race_thread_fn, &t[i]), 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		usleep(100000);
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while (t1.tv_sec - t0.tv_sec < 2);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (i = 0; i < ARRAY_SIZE(t); i++) {
		pthread_join(t[i].thread, NULL);
		TH_LOG("request %#lx: %lu runs, %lu bad data, %lu errors (%d)",
		       t[i].request, t[i].runs, t[i].bad_data, t[i].bad_ret,
		       t[i].ret);
		free(t[i].buffer.mirror);
	}
	for (i = 0; i < ARRAY_SIZE(t); i++) {
		ASSERT_GT(t[i].runs, 0);
		ASSERT_EQ(t[i].bad_data, 0);
		ASSERT_EQ(t[i].bad_ret, 0);
	}

	/* Everything comes back, then all of it migrates again */
	ret = hmm_migrate_dev_to_sys(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);
	ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);
	for (i = 0, ptr = buffer->mirror; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);
	hmm_buffer_free(buffer);
}

struct hmm_flags_race {
	int fd;
	int stop;
};

static void *hmm_fail_alloc_thread(void *arg)
{
	struct hmm_flags_race *race = arg;
	uint64_t flags = 0;

	while (!__atomic_load_n(&race->stop, __ATOMIC_RELAXED)) {
		flags ^= HMM_DMIRROR_FLAG_FAIL_ALLOC;
		hmm_set_flags(race->fd, flags);
		usleep(100);
	}
	hmm_set_flags(race->fd, 0);
	return NULL;
}

/*
 * Device allocation failures injected at random while memory migrates to
 * the device and back, for two seconds: migrations may fail, but every CPU
 * access completes (a migration back that fails to allocate is retried),
 * and reads the data written.
 */
TEST_F_TIMEOUT(hmm, migrate_fail_alloc_race, 60)
{
	struct hmm_flags_race race = { .fd = self->fd };
	struct hmm_buffer *buffer;
	unsigned long npages, size, i, rounds = 0;
	struct timespec t0, t1;
	pthread_t thread;
	int *ptr;
	int ret;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	size = npages << self->page_shift;
	buffer = hmm_buffer_alloc(size, size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;

	ASSERT_EQ(pthread_create(&thread, NULL, hmm_fail_alloc_thread, &race),
		  0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
		ASSERT_TRUE(ret == 0 || ret == -ENOMEM || ret == -ENOENT);
		ret = hmm_migrate_dev_to_sys(self->fd, buffer, npages);
		ASSERT_TRUE(ret == 0 || ret == -ENOMEM);
		/* The CPU reads what is left on the device back */
		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			ASSERT_EQ(ptr[i], i);
		rounds++;
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while (t1.tv_sec - t0.tv_sec < 2);
	__atomic_store_n(&race.stop, 1, __ATOMIC_RELAXED);
	pthread_join(thread, NULL);
	TH_LOG("%lu rounds", rounds);
	hmm_buffer_free(buffer);
}

/*
 * A THP of @size (the PMD size) filled with its index, at buffer->ptr of a
 * buffer twice that size; *old_ptr keeps what hmm_buffer_free() needs back
 * in buffer->ptr.
 */
static struct hmm_buffer *hmm_thp_buffer(struct __test_metadata *_metadata,
					 unsigned long size, void **old_ptr)
{
	struct hmm_buffer *buffer;
	unsigned long i;
	int *ptr;

	buffer = hmm_buffer_alloc(2 * size, size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	*old_ptr = buffer->ptr;
	buffer->ptr = (void *)ALIGN((uintptr_t)buffer->ptr, size);
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;
	ASSERT_EQ(madvise(buffer->ptr, size, MADV_COLLAPSE), 0);
	return buffer;
}

/*
 * In a fork()ed child: wait up to 5 seconds for the entry of @addr in the
 * child's own pagemap (@fd) to change from @first, then exit.  Exits with 0
 * when it became a non-present entry (the migration entry of a migration or
 * eviction the parent started), so that the exit races with it, and with 2
 * when it did not change in time or became present again.  The wait ends at
 * the change, so its bound only counts when nothing changes: on a KASAN
 * kernel in an emulated VM an eviction can take more than half a second to
 * reach the child's pages.
 */
static void __noreturn
hmm_exit_on_pagemap_change(int fd, void *addr, uint64_t first)
{
	struct timespec t0;
	uint64_t cur;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		cur = pagemap_get_entry(fd, addr);
	} while (cur == first && hmm_elapsed_ms(&t0) < 5000);
	_exit(cur != first && !PAGEMAP_PRESENT(cur) ? 0 : 2);
}

/*
 * Migrate a THP to the device, fork(), and migrate it back while the child
 * exits.  The migration replaces the child's device private PMD by a PMD
 * migration entry (try_to_migrate()), which holds neither a mapcount nor a
 * reference; if zapping it at exit dropped those as for a device private
 * entry, the device folio would be freed under the migration, and the
 * parent left with a migration entry that never goes away.  The child
 * watches its own pagemap entry and exits as soon as it changes; each round
 * checks that every page of the parent is mapped and holds its data again.
 * For 2 seconds or 100 rounds; on the private device, skips when the child
 * never exited in time.
 */
TEST_F_TIMEOUT(hmm, migrate_thp_fork_exit_race, 60)
{
	unsigned long rounds = 0, hits = 0;
	struct hmm_buffer *buffer;
	struct timespec t0;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	uint64_t entry;
	int pipefd[2];
	void *old_ptr;
	int pagemap_fd;
	int status;
	pid_t pid;
	int *ptr;
	int ret;
	char c;

	size = read_pmd_pagesize();
	buffer = hmm_thp_buffer(_metadata, size, &old_ptr);
	npages = size >> self->page_shift;

	pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	ASSERT_GE(pagemap_fd, 0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
		ASSERT_EQ(ret, 0);
		ASSERT_EQ(buffer->cpages, npages);

		ASSERT_EQ(pipe(pipefd), 0);
		pid = fork();
		ASSERT_GE(pid, 0);
		if (pid == 0) {
			uint64_t first;
			int fd;

			/* The parent's fd would read the parent's page tables */
			fd = open("/proc/self/pagemap", O_RDONLY);
			if (fd < 0)
				_exit(1);
			first = pagemap_get_entry(fd, buffer->ptr);
			/* Now the parent may start migrating */
			close(pipefd[1]);
			hmm_exit_on_pagemap_change(fd, buffer->ptr, first);
		}
		close(pipefd[1]);
		while (read(pipefd[0], &c, 1) < 0 && errno == EINTR)
			;
		close(pipefd[0]);

		ret = hmm_migrate_dev_to_sys(self->fd, buffer, npages);
		ASSERT_EQ(waitpid(pid, &status, 0), pid);
		ASSERT_EQ(ret, 0);
		ASSERT_TRUE(WIFEXITED(status));
		ASSERT_NE(WEXITSTATUS(status), 1);
		hits += WEXITSTATUS(status) == 0;

		for (i = 0; i < npages; ++i) {
			entry = pagemap_get_entry(pagemap_fd, (char *)buffer->ptr +
						  i * self->page_size);
			if (!PAGEMAP_PRESENT(entry))
				TH_LOG("round %lu: page %lu unmapped after migration (%llx)",
				       rounds, i, (unsigned long long)entry);
			ASSERT_TRUE(PAGEMAP_PRESENT(entry));
		}
		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			ASSERT_EQ(ptr[i], i);
		rounds++;
	} while (rounds < 100 && hmm_elapsed_ms(&t0) < 2000);

	close(pagemap_fd);
	buffer->ptr = old_ptr;
	hmm_buffer_free(buffer);
	TH_LOG("%lu rounds, the child exited during %lu migrations", rounds,
	       hits);
	/*
	 * A coherent device's THPs are mapped by present PMDs, which the race
	 * rarely catches as migration entries: there the test only checks
	 * that an exit at any point of the migration is harmless.
	 */
	if (!hits && !hmm_is_coherent_type(variant->device_number))
		SKIP(return, "the child never exited while its entry was a migration entry");
}

/*
 * A THP migrated to the device and shared with a fork()ed child, migrated
 * back to system memory when no THP can be allocated for it (test_hmm's
 * HMM_DMIRROR_FLAG_FAIL_ALLOC makes its large allocation fail, so the
 * migration splits the device folio): the child's PMD migration entry, put
 * there by try_to_migrate(), must be split with the folio.  Parent and
 * child then check their data.
 */
TEST_F_TIMEOUT(hmm, migrate_thp_fork_split_back, 60)
{
	struct hmm_buffer *buffer;
	unsigned long npages;
	unsigned long size;
	unsigned long i;
	int pipefd[2];
	void *old_ptr;
	int status;
	pid_t pid;
	int *ptr;
	int ret;
	char c;

	size = read_pmd_pagesize();
	buffer = hmm_thp_buffer(_metadata, size, &old_ptr);
	npages = size >> self->page_shift;
	ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(buffer->cpages, npages);

	ASSERT_EQ(pipe(pipefd), 0);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		close(pipefd[1]);
		while (read(pipefd[0], &c, 1) < 0 && errno == EINTR)
			;
		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			if (ptr[i] != i)
				_exit(1);
		_exit(0);
	}
	close(pipefd[0]);
	ASSERT_EQ(hmm_set_flags(self->fd, HMM_DMIRROR_FLAG_FAIL_ALLOC), 0);
	ret = hmm_migrate_dev_to_sys(self->fd, buffer, npages);
	hmm_set_flags(self->fd, 0);
	/* test_hmm fails this with -ENOMEM on the coherent device: again */
	if (hmm_is_coherent_type(variant->device_number) && ret == -ENOMEM)
		ret = hmm_migrate_dev_to_sys(self->fd, buffer, npages);
	close(pipefd[1]);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_EQ(ret, 0);
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
	buffer->ptr = old_ptr;
	hmm_buffer_free(buffer);
}

/*
 * Evict the device's memory (test_hmm does so when any file of the device is
 * closed) while a process whose memory is on the device exits.  The eviction
 * replaces the exiting process's device private entries by migration
 * entries and, without its mmap lock, is all that can keep the process's
 * anon_vma alive until it puts the mappings back.  The child watches its own
 * pagemap entry and exits as soon as the eviction changed it.  A freed
 * anon_vma walked by the eviction is a use-after-free that a KASAN kernel
 * reports (make debug); every round also checks that the eviction brought
 * the parent's own pages back to system memory with their data.  For 2
 * seconds or 50 rounds; skips when the child never exited while the
 * eviction was under way.
 */
TEST_F_TIMEOUT(hmm, migrate_evict_exit_race, 60)
{
	unsigned long rounds = 0, hits = 0;
	struct hmm_buffer *buffer;
	struct timespec t0;
	unsigned long npages = 256;
	unsigned long size;
	unsigned long i;
	int pipefd[2];
	int status;
	pid_t pid;
	int *ptr;
	int ret;
	int fd;
	char c;

	size = npages << self->page_shift;
	buffer = hmm_buffer_alloc(size, size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			ptr[i] = i + rounds;
		ret = hmm_migrate_sys_to_dev(self->fd, buffer, npages);
		ASSERT_EQ(ret, 0);
		ASSERT_EQ(buffer->cpages, npages);

		ASSERT_EQ(pipe(pipefd), 0);
		pid = fork();
		ASSERT_GE(pid, 0);
		if (pid == 0) {
			struct hmm_buffer *cbuf;
			uint64_t first;
			int cfd, pfd;

			close(pipefd[0]);
			cfd = hmm_open(variant->device_number);
			pfd = open("/proc/self/pagemap", O_RDONLY);
			cbuf = hmm_buffer_alloc(size, size, PROT_READ | PROT_WRITE,
						MAP_PRIVATE | MAP_ANONYMOUS, -1);
			if (cfd < 0 || pfd < 0 || !cbuf)
				_exit(1);
			memset(cbuf->ptr, 1, size);
			if (hmm_migrate_sys_to_dev(cfd, cbuf, npages) ||
			    cbuf->cpages != npages)
				_exit(1);
			first = pagemap_get_entry(pfd, cbuf->ptr);
			/* Now the parent may evict */
			close(pipefd[1]);
			hmm_exit_on_pagemap_change(pfd, cbuf->ptr, first);
		}
		close(pipefd[1]);
		while (read(pipefd[0], &c, 1) < 0 && errno == EINTR)
			;
		close(pipefd[0]);

		fd = hmm_open(variant->device_number);
		ASSERT_GE(fd, 0);
		close(fd);
		ASSERT_EQ(waitpid(pid, &status, 0), pid);
		ASSERT_TRUE(WIFEXITED(status));
		ASSERT_NE(WEXITSTATUS(status), 1);
		hits += WEXITSTATUS(status) == 0;

		/* The eviction brought the parent's pages back too. */
		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			ASSERT_EQ(ptr[i], i + rounds);
		rounds++;
	} while (rounds < 50 && hmm_elapsed_ms(&t0) < 2000);

	hmm_buffer_free(buffer);
	TH_LOG("%lu rounds, the child exited during %lu evictions", rounds,
	       hits);
	if (!hits)
		SKIP(return, "the child never exited while the eviction was under way");
}

/*
 * Migrate @buffer to the device with the one walk and check what the device
 * read: 0 when it did, 1 when the data is wrong, or the ioctl's error.
 */
static int hmm_fault_migrate_check(int fd, unsigned long cmd,
				   struct hmm_buffer *buffer,
				   unsigned long npages)
{
	unsigned long i;
	int *ptr, ret;

	ret = hmm_dmirror_cmd(fd, cmd, buffer, npages);
	if (ret)
		return ret;
	for (i = 0, ptr = buffer->mirror; i < buffer->size / sizeof(*ptr); ++i)
		if (ptr[i] != (int)i)
			return 1;
	return 0;
}

static int hmm_one_walk_check(int fd, struct hmm_buffer *buffer,
			      unsigned long npages)
{
	return hmm_fault_migrate_check(fd, HMM_DMIRROR_MIGRATE_ON_FAULT, buffer,
				       npages);
}

/*
 * Two processes sharing swap cache folios after fork(): the memory was
 * swapped out before the fork, the parent swaps its first half back in and
 * the child its second half.  Then both migrate the whole range with the
 * one walk at once, without asking for write access: each collects the
 * half it has present (locking those folios) and needs to swap in the
 * other half, whose folios the other process has collected.  Neither may
 * hold its folios across that fault; both calls return, for two seconds of
 * rounds, and the memory keeps its data.
 */
TEST_F_TIMEOUT(hmm, migrate_on_fault_swap_cache_race, 60)
{
	struct hmm_buffer *buffer;
	unsigned long npages, size, i, half, bad, rounds = 0;
	struct timespec t0, t1;
	int ready[2], go[2];
	int status, ret, fd;
	int *ptr;
	pid_t pid;
	char c;

	npages = ALIGN(HMM_BUFFER_SIZE, self->page_size) >> self->page_shift;
	size = npages << self->page_shift;
	half = size / 2;
	buffer = hmm_buffer_alloc(size, size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	ASSERT_EQ(madvise(buffer->ptr, size, MADV_NOHUGEPAGE), 0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			ptr[i] = i;
		ASSERT_EQ(madvise(buffer->ptr, size, MADV_PAGEOUT), 0);
		if (hmm_page_swapped(buffer->ptr, self->page_shift) != 1 ||
		    hmm_page_swapped(buffer->ptr + half,
				     self->page_shift) != 1) {
			hmm_buffer_free(buffer);
			SKIP(return, "pages not swapped out (no swap device?)");
		}
		ASSERT_EQ(pipe(ready), 0);
		ASSERT_EQ(pipe(go), 0);
		pid = fork();
		ASSERT_GE(pid, 0);
		/* The child mirrors its own address space */
		fd = pid ? self->fd : hmm_open(variant->device_number);
		if (fd < 0 || hmm_set_flags(fd, HMM_DMIRROR_FLAG_READ_FAULT))
			_exit(2);
		/* Swap in (read) this process's half: swap cache folios */
		for (i = pid ? 0 : half, bad = 0; i < (pid ? half : size);
		     i += self->page_size)
			bad += *(int *)(buffer->ptr + i) != (int)(i / sizeof(int));
		if (!pid && bad)
			_exit(5);
		ASSERT_EQ(bad, 0);
		if (pid) {
			ASSERT_EQ(read(ready[0], &c, 1), 1);
			ASSERT_EQ(write(go[1], "g", 1), 1);
		} else {
			if (write(ready[1], "r", 1) != 1 ||
			    read(go[0], &c, 1) != 1)
				_exit(3);
		}
		/* Pages may stay behind, pinned by the swap cache: -ENOENT */
		ret = hmm_one_walk_check(fd, buffer, npages);
		if (!pid)
			_exit(ret == 0 || ret == -ENOENT || ret == -EBUSY ?
			      0 : 4);
		ASSERT_TRUE(ret == 0 || ret == -ENOENT || ret == -EBUSY);
		ASSERT_EQ(waitpid(pid, &status, 0), pid);
		ASSERT_TRUE(WIFEXITED(status));
		ASSERT_EQ(WEXITSTATUS(status), 0);
		ASSERT_EQ(hmm_set_flags(self->fd, 0), 0);
		ASSERT_EQ(hmm_migrate_dev_to_sys(self->fd, buffer, npages), 0);
		for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
			ASSERT_EQ(ptr[i], i);
		close(ready[0]);
		close(ready[1]);
		close(go[0]);
		close(go[1]);
		rounds++;
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while (t1.tv_sec - t0.tv_sec < 2);
	TH_LOG("%lu rounds", rounds);
	hmm_buffer_free(buffer);
}

struct hmm_mm_race {
	void *ptr;
	unsigned long size;
	int stop;
};

static void *hmm_mm_race_thread(void *arg)
{
	struct hmm_mm_race *race = arg;
	unsigned long n = 0;
	pid_t pid;

	while (!__atomic_load_n(&race->stop, __ATOMIC_RELAXED)) {
		switch (n++ % 3) {
		case 0:
			pid = fork();
			if (!pid)
				_exit(0);
			if (pid > 0)
				waitpid(pid, NULL, 0);
			break;
		case 1:
			madvise(race->ptr, race->size, MADV_PAGEOUT);
			break;
		default:
			mprotect(race->ptr, race->size, PROT_READ);
			usleep(100);
			mprotect(race->ptr, race->size, PROT_READ | PROT_WRITE);
			break;
		}
	}
	return NULL;
}

/*
 * fork(), MADV_PAGEOUT and mprotect() racing for two seconds with @cmd, an
 * ioctl that faults and migrates in one walk: a call may fail (-EPERM while
 * the range is read-only), but none hangs, every one that succeeds migrated
 * the data written, and the memory keeps its data.
 */
static void hmm_mm_race(struct __test_metadata *_metadata, int fd,
			unsigned long page_size, unsigned long page_shift,
			unsigned long cmd)
{
	struct hmm_mm_race race = { .stop = 0 };
	unsigned long npages, size, i, rounds = 0, done = 0;
	struct hmm_buffer *buffer;
	struct timespec t0, t1;
	pthread_t thread;
	int *ptr, ret;

	npages = ALIGN(HMM_BUFFER_SIZE, page_size) >> page_shift;
	size = npages << page_shift;
	buffer = hmm_buffer_alloc(size, size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;
	race.ptr = buffer->ptr;
	race.size = size;
	ASSERT_EQ(pthread_create(&thread, NULL, hmm_mm_race_thread, &race), 0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		ret = hmm_fault_migrate_check(fd, cmd, buffer, npages);
		ASSERT_TRUE(ret == 0 || ret == -EPERM || ret == -EBUSY ||
			    ret == -ENOENT);
		done += !ret;
		rounds++;
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while (t1.tv_sec - t0.tv_sec < 2);
	__atomic_store_n(&race.stop, 1, __ATOMIC_RELAXED);
	pthread_join(thread, NULL);
	TH_LOG("%lu rounds, %lu migrated", rounds, done);
	ASSERT_EQ(hmm_migrate_dev_to_sys(fd, buffer, npages), 0);
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);
	ASSERT_EQ(hmm_fault_migrate_check(fd, cmd, buffer, npages), 0);
	hmm_buffer_free(buffer);
}

/* With the one walk, hmm_range_fault() and HMM_PFN_REQ_MIGRATE */
TEST_F_TIMEOUT(hmm, migrate_on_fault_mm_race, 60)
{
	hmm_mm_race(_metadata, self->fd, self->page_size, self->page_shift,
		    HMM_DMIRROR_MIGRATE_ON_FAULT);
}

/*
 * With migrate_vma_setup(MIGRATE_VMA_FAULT), the call a driver that only
 * migrates makes (xe's GPU fault path, with the xe RFC)
 */
TEST_F_TIMEOUT(hmm, migrate_setup_fault_mm_race, 60)
{
	hmm_mm_race(_metadata, self->fd, self->page_size, self->page_shift,
		    HMM_DMIRROR_MIGRATE_SETUP_FAULT);
}

/*
 * THPs split and collapsed under the one walk: a thread keeps making part of
 * a PMD read-only and writable again (which splits the PMD mapping, so the
 * PMD changes between the walk's lockless read and its collection under
 * the lock), collapsing the range into THPs again and paging a quarter of
 * it out, while the test migrates the range to the device with the one walk
 * and back.  test_hmm checks each time that what hmm_range_fault() reports
 * is what src holds (-EIO otherwise); calls may fail otherwise (-EPERM
 * while read-only), none may hang, and the data stays.
 */
struct hmm_thp_race {
	char *ptr;
	unsigned long size;
	int stop;
};

static void *hmm_thp_race_thread(void *arg)
{
	struct hmm_thp_race *race = arg;
	unsigned long pmd = race->size / 2, n = 0;

	while (!__atomic_load_n(&race->stop, __ATOMIC_RELAXED)) {
		switch (n++ % 3) {
		case 0:
			mprotect(race->ptr + pmd / 4, pmd / 2, PROT_READ);
			usleep(50);
			mprotect(race->ptr + pmd / 4, pmd / 2,
				 PROT_READ | PROT_WRITE);
			break;
		case 1:
			/* may be unsupported or fail: best effort */
			madvise(race->ptr, race->size, MADV_COLLAPSE);
			break;
		default:
			madvise(race->ptr + pmd, pmd / 2, MADV_PAGEOUT);
			break;
		}
	}
	return NULL;
}

TEST_F_TIMEOUT(hmm, migrate_on_fault_thp_race, 60)
{
	struct hmm_thp_race race = { .stop = 0 };
	unsigned long npages, size, pmd, i, rounds = 0, done = 0;
	struct hmm_buffer *buffer;
	struct timespec t0, t1;
	pthread_t thread;
	void *old_ptr;
	int *ptr, ret;

	pmd = read_pmd_pagesize();
	if (!pmd)
		SKIP(return, "THP not available");
	size = 2 * pmd;
	npages = size >> self->page_shift;
	buffer = hmm_buffer_alloc(size + pmd, size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1);
	ASSERT_NE(buffer, NULL);
	/* The aligned part, which hmm_fault_migrate_check() reads back */
	old_ptr = buffer->ptr;
	buffer->ptr = (void *)ALIGN((uintptr_t)buffer->ptr, pmd);
	buffer->size = size;
	ASSERT_EQ(madvise(buffer->ptr, size, MADV_HUGEPAGE), 0);
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ptr[i] = i;
	race.ptr = buffer->ptr;
	race.size = size;
	ASSERT_EQ(pthread_create(&thread, NULL, hmm_thp_race_thread, &race),
		  0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		ret = hmm_one_walk_check(self->fd, buffer, npages);
		ASSERT_TRUE(ret == 0 || ret == -EPERM || ret == -EBUSY ||
			    ret == -ENOENT);
		done += !ret;
		ret = hmm_migrate_dev_to_sys(self->fd, buffer, npages);
		ASSERT_EQ(ret, 0);
		rounds++;
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while (t1.tv_sec - t0.tv_sec < 2);
	__atomic_store_n(&race.stop, 1, __ATOMIC_RELAXED);
	pthread_join(thread, NULL);
	TH_LOG("%lu rounds, %lu migrated", rounds, done);
	for (i = 0, ptr = buffer->ptr; i < size / sizeof(*ptr); ++i)
		ASSERT_EQ(ptr[i], i);
	ASSERT_EQ(hmm_one_walk_check(self->fd, buffer, npages), 0);
	buffer->ptr = old_ptr;
	buffer->size = size + pmd;
	hmm_buffer_free(buffer);
}

/*
 * xe's sequence converted to the one walk (the xe RFC), under the same
 * races: migrate_vma_setup(MIGRATE_VMA_FAULT), all or nothing, then the
 * mapping walk of drm_gpusvm_get_pages().
 */
TEST_F_TIMEOUT(hmm, migrate_like_xe_mm_race, 60)
{
	ASSERT_EQ(hmm_set_flags(self->fd, HMM_DMIRROR_FLAG_SETUP_FAULT), 0);
	hmm_mm_race(_metadata, self->fd, self->page_size, self->page_shift,
		    HMM_DMIRROR_MIGRATE_LIKE_XE);
	ASSERT_EQ(hmm_set_flags(self->fd, 0), 0);
}

/* amdkfd's sequence under the same races */
TEST_F_TIMEOUT(hmm, migrate_like_amdkfd_mm_race, 60)
{
	hmm_mm_race(_metadata, self->fd, self->page_size, self->page_shift,
		    HMM_DMIRROR_MIGRATE_LIKE_AMDKFD);
}

TEST_HARNESS_MAIN
