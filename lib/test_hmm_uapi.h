/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * This is a module to test the HMM (Heterogeneous Memory Management) API
 * of the kernel. It allows a userspace program to expose its entire address
 * space through the HMM test module device file.
 */
#ifndef _LIB_TEST_HMM_UAPI_H
#define _LIB_TEST_HMM_UAPI_H

#include <linux/types.h>
#include <linux/ioctl.h>

/*
 * Structure to pass to the HMM test driver to mimic a device accessing
 * system memory and ZONE_DEVICE private memory through device page tables.
 *
 * @addr: (in) user address the device will read/write
 * @ptr: (in) user address where device data is copied to/from
 * @npages: (in) number of pages to read/write
 * @cpages: (out) number of pages copied
 * @faults: (out) number of device page faults seen
 */
struct hmm_dmirror_cmd {
	__u64		addr;
	__u64		ptr;
	__u64		npages;
	__u64		cpages;
	__u64		faults;
};

/* Expose the address space of the calling process through hmm device file */
#define HMM_DMIRROR_READ		_IOWR('H', 0x00, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_WRITE		_IOWR('H', 0x01, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_MIGRATE_TO_DEV	_IOWR('H', 0x02, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_MIGRATE_TO_SYS	_IOWR('H', 0x03, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_SNAPSHOT		_IOWR('H', 0x04, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_EXCLUSIVE		_IOWR('H', 0x05, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_CHECK_EXCLUSIVE	_IOWR('H', 0x06, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_RELEASE		_IOWR('H', 0x07, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_FLAGS		_IOWR('H', 0x08, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_READ_UNLOCKED	_IOWR('H', 0x09, struct hmm_dmirror_cmd)
/*
 * Fault in and migrate to device memory: in one page table walk with
 * hmm_range_fault(HMM_PFN_REQ_FAULT | HMM_PFN_REQ_MIGRATE); in two, with
 * hmm_range_fault(HMM_PFN_REQ_FAULT) then migrate_vma_setup(); and with
 * migrate_vma_setup(MIGRATE_VMA_FAULT).  Like HMM_DMIRROR_MIGRATE_TO_DEV,
 * the data is read back through the device into @ptr and @cpages counts the
 * pages in device memory.  @faults counts the times the collection had to
 * start over after an invalidation (hmm_range_fault() returning -EBUSY).
 */
#define HMM_DMIRROR_MIGRATE_ON_FAULT	_IOWR('H', 0x0a, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_MIGRATE_FAULT_TWO_WALKS _IOWR('H', 0x0b, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_MIGRATE_SETUP_FAULT	_IOWR('H', 0x0c, struct hmm_dmirror_cmd)
/*
 * The same, with the calls of in-tree drivers in their order, to compare
 * them with the one walk: HMM_DMIRROR_MIGRATE_LIKE_XE migrates all or nothing
 * with migrate_vma_setup(), and when something could not be collected faults
 * the range in with hmm_range_fault() and tries once more;
 * HMM_DMIRROR_MIGRATE_LIKE_AMDKFD migrates what migrate_vma_setup() collects.
 * Both then map the range with hmm_range_fault(HMM_PFN_REQ_FAULT), which
 * faults in what stayed in system memory.
 */
#define HMM_DMIRROR_MIGRATE_LIKE_XE	_IOWR('H', 0x0d, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_MIGRATE_LIKE_AMDKFD	_IOWR('H', 0x0e, struct hmm_dmirror_cmd)

#define HMM_DMIRROR_FLAG_FAIL_ALLOC	(1ULL << 0)
/* For the five ioctls above: */
/* migrate THPs as 4 KiB pages (no MIGRATE_VMA_SELECT_COMPOUND) */
#define HMM_DMIRROR_FLAG_NO_COMPOUND	(1ULL << 1)
/* fault for read, not for write */
#define HMM_DMIRROR_FLAG_READ_FAULT	(1ULL << 2)
/* stop after collecting: put everything back, migrate nothing */
#define HMM_DMIRROR_FLAG_SETUP_ONLY	(1ULL << 3)
/*
 * HMM_DMIRROR_MIGRATE_LIKE_XE: pass MIGRATE_VMA_FAULT to migrate_vma_setup(),
 * as xe does once it faults and migrates in one walk
 * (drm_pagemap_migrate_details.fault)
 */
#define HMM_DMIRROR_FLAG_SETUP_FAULT	(1ULL << 4)

/*
 * Values returned in hmm_dmirror_cmd.ptr for HMM_DMIRROR_SNAPSHOT.
 * HMM_DMIRROR_PROT_ERROR: no valid mirror PTE for this page
 * HMM_DMIRROR_PROT_NONE: unpopulated PTE or PTE with no access
 * HMM_DMIRROR_PROT_READ: read-only PTE
 * HMM_DMIRROR_PROT_WRITE: read/write PTE
 * HMM_DMIRROR_PROT_PMD: PMD sized page is fully mapped by same permissions
 * HMM_DMIRROR_PROT_PUD: PUD sized page is fully mapped by same permissions
 * HMM_DMIRROR_PROT_ZERO: special read-only zero page
 * HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL: Migrated device private page on the
 *					device the ioctl() is made
 * HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE: Migrated device private page on some
 *					other device
 * HMM_DMIRROR_PROT_DEV_COHERENT: Migrate device coherent page on the device
 *				  the ioctl() is made
 */
enum {
	HMM_DMIRROR_PROT_ERROR			= 0xFF,
	HMM_DMIRROR_PROT_NONE			= 0x00,
	HMM_DMIRROR_PROT_READ			= 0x01,
	HMM_DMIRROR_PROT_WRITE			= 0x02,
	HMM_DMIRROR_PROT_PMD			= 0x04,
	HMM_DMIRROR_PROT_PUD			= 0x08,
	HMM_DMIRROR_PROT_ZERO			= 0x10,
	HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL	= 0x20,
	HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE	= 0x30,
	HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL	= 0x40,
	HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE	= 0x50,
};

enum {
	/* 0 is reserved to catch uninitialized type fields */
	HMM_DMIRROR_MEMORY_DEVICE_PRIVATE = 1,
	HMM_DMIRROR_MEMORY_DEVICE_COHERENT,
};

#endif /* _LIB_TEST_HMM_UAPI_H */
