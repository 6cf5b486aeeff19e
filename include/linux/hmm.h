/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Copyright 2013 Red Hat Inc.
 *
 * Authors: Jérôme Glisse <jglisse@redhat.com>
 *
 * See Documentation/mm/hmm.rst for reasons and overview of what HMM is.
 */
#ifndef LINUX_HMM_H
#define LINUX_HMM_H

#include <linux/mm.h>

struct mmu_interval_notifier;
struct migrate_vma;

/*
 * On output:
 * 0             - The page is faultable and a future call with 
 *                 HMM_PFN_REQ_FAULT could succeed.
 * HMM_PFN_VALID - the pfn field points to a valid PFN. This PFN is at
 *                 least readable. If dev_private_owner is !NULL then this could
 *                 point at a DEVICE_PRIVATE page.
 * HMM_PFN_WRITE - if the page memory can be written to (requires HMM_PFN_VALID)
 * HMM_PFN_ERROR - accessing the pfn is impossible and the device should
 *                 fail. ie poisoned memory, special pages, no vma, etc
 * HMM_PFN_P2PDMA - P2P page
 * HMM_PFN_P2PDMA_BUS - Bus mapped P2P transfer
 * HMM_PFN_DMA_MAPPED - Flag preserved on input-to-output transformation
 *                      to mark that page is already DMA mapped
 * HMM_PFN_MIGRATE - only with HMM_PFN_REQ_MIGRATE (64-bit only): the entry
 *                   was collected for migration, as migrate_vma_setup()
 *                   collects it, and range->migrate->src has
 *                   MIGRATE_PFN_MIGRATE for it.
 *                   With HMM_PFN_VALID, the pfn is the page collected, the
 *                   one src holds: it is locked, its CPU mappings replaced by
 *                   migration entries, and it stays so until
 *                   migrate_vma_finalize(), whatever range->notifier_seq
 *                   says; HMM_PFN_WRITE is MIGRATE_PFN_WRITE (it was mapped
 *                   writable), the order is that of the collection (PMD
 *                   order for a THP collected whole).
 *                   Without HMM_PFN_VALID there is no pfn: the address is an
 *                   empty slot (or maps the zero page) of an anonymous VMA
 *                   that the migration may populate.
 *                   An entry without HMM_PFN_MIGRATE was not collected and is
 *                   reported as without HMM_PFN_REQ_MIGRATE, but for what the
 *                   walk does not fault (see HMM_PFN_REQ_MIGRATE); once
 *                   anything was collected, range->notifier_seq no longer
 *                   vouches for such entries.
 *
 * On input:
 * 0                 - Return the current state of the page, do not fault it.
 * HMM_PFN_REQ_FAULT - The output must have HMM_PFN_VALID or hmm_range_fault()
 *                     will fail
 * HMM_PFN_REQ_WRITE - The output must have HMM_PFN_WRITE or hmm_range_fault()
 *                     will fail. Must be combined with HMM_PFN_REQ_FAULT.
 *                     Device private pages of dev_private_owner are never
 *                     faulted, so that no driver is called back from its
 *                     own fault handler: a read-only one (COW-shared
 *                     after fork()) is reported without HMM_PFN_WRITE, and
 *                     its driver migrates it back to system memory to
 *                     write it.
 * HMM_PFN_REQ_MIGRATE - Collect the pages of the range for migration as
 *                       described by range->migrate, in the same walk that
 *                       faults them.  Only valid in range->default_flags and
 *                       only with hmm_range_fault().  Only what the migration
 *                       would then collect is faulted: nothing unless
 *                       MIGRATE_VMA_SELECT_SYSTEM is set and the VMA is
 *                       readable; never empty slots (nor the zero page) of an
 *                       anonymous VMA, which are collected as holes, nor
 *                       those of another VMA, nor device private pages of
 *                       range->migrate->pgmap_owner, which are reported (the
 *                       owner of device private pages is then pgmap_owner,
 *                       whatever range->dev_private_owner says).  See
 *                       Documentation/mm/hmm.rst.
 */
enum hmm_pfn_flags {
	/* Output fields and flags */
	HMM_PFN_VALID = 1UL << (BITS_PER_LONG - 1),
	HMM_PFN_WRITE = 1UL << (BITS_PER_LONG - 2),
	HMM_PFN_ERROR = 1UL << (BITS_PER_LONG - 3),
	/*
	 * Sticky flags, carried from input to output,
	 * don't forget to update HMM_PFN_INOUT_FLAGS
	 */
	HMM_PFN_DMA_MAPPED = 1UL << (BITS_PER_LONG - 4),
	HMM_PFN_P2PDMA     = 1UL << (BITS_PER_LONG - 5),
	HMM_PFN_P2PDMA_BUS = 1UL << (BITS_PER_LONG - 6),

	/*
	 * Output flag of HMM_PFN_REQ_MIGRATE, 64-bit only: migration needs
	 * CONFIG_DEVICE_MIGRATION, hence MEMORY_HOTPLUG and 64BIT, and on
	 * 32-bit the pfn field keeps all of its bits (PAE and LPAE pfns need
	 * them).  It is 0 there, and so is HMM_PFN_REQ_MIGRATE.
	 */
	HMM_PFN_MIGRATE = IS_ENABLED(CONFIG_64BIT) ?
			  1UL << (BITS_PER_LONG - 7) : 0,

	/*
	 * The CPU mapping order, a field of HMM_PFN_ORDER_BITS bits just
	 * below the flags.
	 */
	HMM_PFN_ORDER_BITS = 5,
	HMM_PFN_ORDER_SHIFT = (BITS_PER_LONG -
			       (IS_ENABLED(CONFIG_64BIT) ? 12 : 11)),
	HMM_PFN_ORDER_MASK = ((1UL << HMM_PFN_ORDER_BITS) - 1) <<
			     HMM_PFN_ORDER_SHIFT,

	/* Input flags */
	HMM_PFN_REQ_FAULT = HMM_PFN_VALID,
	HMM_PFN_REQ_WRITE = HMM_PFN_WRITE,
	HMM_PFN_REQ_MIGRATE = HMM_PFN_MIGRATE,

	HMM_PFN_FLAGS = ~((1UL << HMM_PFN_ORDER_SHIFT) - 1),
};

/*
 * The layout of an hmm pfn: the single-bit flags at the top, then the order
 * field, then the pfn.  Check that no two of them overlap.
 */
#define HMM_PFN_FLAG_BITS	(HMM_PFN_VALID | HMM_PFN_WRITE | HMM_PFN_ERROR | \
				 HMM_PFN_DMA_MAPPED | HMM_PFN_P2PDMA |       \
				 HMM_PFN_P2PDMA_BUS | HMM_PFN_MIGRATE)
static_assert(HWEIGHT64((u64)HMM_PFN_FLAG_BITS) ==
	      (IS_ENABLED(CONFIG_64BIT) ? 7 : 6));
static_assert(!(HMM_PFN_FLAG_BITS & HMM_PFN_ORDER_MASK));
static_assert((HMM_PFN_FLAG_BITS | HMM_PFN_ORDER_MASK) == HMM_PFN_FLAGS);

/*
 * hmm_pfn_to_page() - return struct page pointed to by a device entry
 *
 * This must be called under the caller 'user_lock' after a successful
 * mmu_interval_read_begin(). The caller must have tested for HMM_PFN_VALID
 * already.
 */
static inline struct page *hmm_pfn_to_page(unsigned long hmm_pfn)
{
	return pfn_to_page(hmm_pfn & ~HMM_PFN_FLAGS);
}

/*
 * hmm_pfn_to_phys() - return physical address pointed to by a device entry
 */
static inline phys_addr_t hmm_pfn_to_phys(unsigned long hmm_pfn)
{
	return __pfn_to_phys(hmm_pfn & ~HMM_PFN_FLAGS);
}

/*
 * hmm_pfn_to_map_order() - return the CPU mapping size order
 *
 * This is optionally useful to optimize processing of the pfn result
 * array. It indicates that the page starts at the order aligned VA and is
 * 1<<order bytes long.  Every pfn within an high order page will have the
 * same pfn flags, both access protections and the map_order.  The caller must
 * be careful with edge cases as the start and end VA of the given page may
 * extend past the range used with hmm_range_fault().
 *
 * This must be called under the caller 'user_lock' after a successful
 * mmu_interval_read_begin(). The caller must have tested for HMM_PFN_VALID
 * already.
 */
static inline unsigned int hmm_pfn_to_map_order(unsigned long hmm_pfn)
{
	return (hmm_pfn & HMM_PFN_ORDER_MASK) >> HMM_PFN_ORDER_SHIFT;
}

/*
 * struct hmm_range - track invalidation lock on virtual address range
 *
 * @notifier: a mmu_interval_notifier that includes the start/end
 * @notifier_seq: result of mmu_interval_read_begin()
 * @start: range virtual start address (inclusive)
 * @end: range virtual end address (exclusive)
 * @hmm_pfns: array of pfns (big enough for the range)
 * @default_flags: default flags for the range (write, read, ... see hmm doc)
 * @pfn_flags_mask: allows to mask pfn flags so that only default_flags matter
 * @dev_private_owner: owner of device private pages
 * @migrate: with HMM_PFN_REQ_MIGRATE, the migration to collect the pages for;
 *	it must cover exactly @start to @end, and its src and dst arrays are
 *	cleared first, as migrate_vma_setup() does.  NULL otherwise.
 */
struct hmm_range {
	struct mmu_interval_notifier *notifier;
	unsigned long		notifier_seq;
	unsigned long		start;
	unsigned long		end;
	unsigned long		*hmm_pfns;
	unsigned long		default_flags;
	unsigned long		pfn_flags_mask;
	void			*dev_private_owner;
	struct migrate_vma	*migrate;
};

/*
 * Please see Documentation/mm/hmm.rst for how to use the range API.
 */
int hmm_range_fault(struct hmm_range *range);
int hmm_range_fault_unlocked_timeout(struct hmm_range *range,
				     unsigned long timeout);

/*
 * HMM_RANGE_DEFAULT_TIMEOUT - default timeout (ms) when waiting for a range
 *
 * When waiting for mmu notifiers we need some kind of time out otherwise we
 * could potentially wait for ever, 1000ms ie 1s sounds like a long time to
 * wait already.
 */
#define HMM_RANGE_DEFAULT_TIMEOUT 1000

#endif /* LINUX_HMM_H */
