// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright 2013 Red Hat Inc.
 *
 * Authors: Jérôme Glisse <jglisse@redhat.com>
 */
/*
 * Refer to include/linux/hmm.h for information about heterogeneous memory
 * management or HMM for short.
 */
#include <linux/pagewalk.h>
#include <linux/hmm.h>
#include <linux/hmm-dma.h>
#include <linux/init.h>
#include <linux/rmap.h>
#include <linux/swap.h>
#include <linux/slab.h>
#include <linux/sched.h>
#include <linux/mmzone.h>
#include <linux/oom.h>
#include <linux/pagemap.h>
#include <linux/leafops.h>
#include <linux/hugetlb.h>
#include <linux/memremap.h>
#include <linux/sched/mm.h>
#include <linux/jump_label.h>
#include <linux/dma-mapping.h>
#include <linux/pci-p2pdma.h>
#include <linux/mmu_notifier.h>
#include <linux/memory_hotplug.h>
#include <linux/migrate.h>
#include <asm/tlbflush.h>

#include "internal.h"

struct hmm_vma_walk {
	struct hmm_range	*range;
	bool			*locked;
	unsigned long		last;
	unsigned long		end;
	unsigned int		required_fault;
	/* With HMM_PFN_REQ_MIGRATE: range->migrate, NULL otherwise */
	struct migrate_vma	*migrate;
	/* Present PTEs cleared in the locked PTE table, to flush */
	unsigned long		unmapped;
	/* A large folio to split before collecting its pages */
	struct folio		*split;
	/* Collect nothing below this address (a split failed) */
	unsigned long		nocollect_end;
	/*
	 * With HMM_PFN_REQ_MIGRATE: the MMU_NOTIFY_MIGRATE range is open and
	 * pages may be collected (locked and unmapped); it was opened at least
	 * once (range->notifier_seq is then invalidated by the collection
	 * itself); the walk faults what the range needs and collects nothing
	 * until it reaches the end of the range; it faults nothing.
	 */
	bool			collecting;
	bool			collected;
	bool			fault_first;
	bool			nofault;
	/* hmm_range_collect(): what was collected is not reported */
	bool			noreport;
};

/*
 * Internal sentinel returned by walk callbacks when they need a page fault.
 * The callback stores end/required_fault in hmm_vma_walk; the outer loop
 * consumes the sentinel and never propagates it to the caller.
 */
#define HMM_FAULT_PENDING	-EAGAIN

/*
 * Internal sentinel returned by hmm_do_fault() when handle_mm_fault()
 * completes a page fault with the mmap lock dropped. hmm_do_fault() sets
 * *locked = false; the outer loop consumes the sentinel and never propagates
 * it to the caller.
 */
#define HMM_FAULT_UNLOCKED	-ENOLCK

/*
 * Internal sentinel returned by hmm_vma_handle_pte() when it found a
 * migration entry it has to wait for: hmm_vma_walk_pmd() waits once the PTE
 * table is unmapped and returns -EBUSY, so the walk restarts at ->last.
 */
#define HMM_WAIT_MIGRATION	-EINPROGRESS

/*
 * Internal sentinel returned by hmm_vma_handle_pte() when the page it wants to
 * collect for migration belongs to a large folio: hmm_vma_walk_pmd() splits
 * hmm_vma_walk->split once the PTE table is unlocked and walks on.
 */
#define HMM_SPLIT_FOLIO		-EXDEV

/*
 * Internal sentinel returned by the walk callbacks when they reached the first
 * entry that collecting for migration unmaps: hmm_range_fault_locked() opens
 * the MMU_NOTIFY_MIGRATE range there, outside the page table locks, and walks
 * on from ->last.
 */
#define HMM_COLLECT_START	-ECHRNG

enum {
	HMM_NEED_FAULT = 1 << 0,
	HMM_NEED_WRITE_FAULT = 1 << 1,
	HMM_NEED_ALL_BITS = HMM_NEED_FAULT | HMM_NEED_WRITE_FAULT,
};

enum {
	/* These flags are carried from input-to-output */
	HMM_PFN_INOUT_FLAGS = HMM_PFN_DMA_MAPPED | HMM_PFN_P2PDMA |
			      HMM_PFN_P2PDMA_BUS,
};

static int hmm_pfns_fill(unsigned long addr, unsigned long end,
			 struct hmm_range *range, unsigned long cpu_flags)
{
	unsigned long i = (addr - range->start) >> PAGE_SHIFT;

	for (; addr < end; addr += PAGE_SIZE, i++) {
		range->hmm_pfns[i] &= HMM_PFN_INOUT_FLAGS;
		range->hmm_pfns[i] |= cpu_flags;
	}
	return 0;
}

/*
 * hmm_record_fault() - record a range that needs to be faulted in
 *
 * Called by the walk callbacks when they discover that part of the range
 * needs a page fault.  The callback records what to fault and returns
 * HMM_FAULT_PENDING; the outer loop in hmm_range_fault_locked() drops
 * back out of walk_page_range() and invokes handle_mm_fault() from a context
 * where no page-table or hugetlb_vma_lock is held.
 */
static int hmm_record_fault(unsigned long addr, unsigned long end,
			    unsigned int required_fault,
			    struct mm_walk *walk)
{
	struct hmm_vma_walk *hmm_vma_walk = walk->private;

	WARN_ON_ONCE(!required_fault);
	hmm_vma_walk->last = addr;
	hmm_vma_walk->end = end;
	hmm_vma_walk->required_fault = required_fault;
	return HMM_FAULT_PENDING;
}

static unsigned int hmm_pte_need_fault(const struct hmm_vma_walk *hmm_vma_walk,
				       unsigned long pfn_req_flags,
				       unsigned long cpu_flags)
{
	struct hmm_range *range = hmm_vma_walk->range;

	/*
	 * So we not only consider the individual per page request we also
	 * consider the default flags requested for the range. The API can
	 * be used 2 ways. The first one where the HMM user coalesces
	 * multiple page faults into one request and sets flags per pfn for
	 * those faults. The second one where the HMM user wants to pre-
	 * fault a range with specific flags. For the latter one it is a
	 * waste to have the user pre-fill the pfn arrays with a default
	 * flags value.
	 */
	pfn_req_flags &= range->pfn_flags_mask;
	pfn_req_flags |= range->default_flags;

	/* We aren't ask to do anything ... */
	if (!(pfn_req_flags & HMM_PFN_REQ_FAULT) || hmm_vma_walk->nofault)
		return 0;

	/* Need to write fault ? */
	if ((pfn_req_flags & HMM_PFN_REQ_WRITE) &&
	    !(cpu_flags & HMM_PFN_WRITE))
		return HMM_NEED_FAULT | HMM_NEED_WRITE_FAULT;

	/* If CPU page table is not valid then we need to fault */
	if (!(cpu_flags & HMM_PFN_VALID))
		return HMM_NEED_FAULT;
	return 0;
}

/* Can any entry of the range need a fault? */
static bool hmm_may_fault(const struct hmm_vma_walk *hmm_vma_walk)
{
	const struct hmm_range *range = hmm_vma_walk->range;

	return ((range->default_flags | range->pfn_flags_mask) &
		HMM_PFN_REQ_FAULT) && !hmm_vma_walk->nofault;
}

static unsigned int
hmm_range_need_fault(const struct hmm_vma_walk *hmm_vma_walk,
		     const unsigned long hmm_pfns[], unsigned long npages,
		     unsigned long cpu_flags)
{
	unsigned int required_fault = 0;
	unsigned long i;

	/*
	 * If the default flags do not request to fault pages, and the mask does
	 * not allow for individual pages to be faulted, then
	 * hmm_pte_need_fault() will always return 0.
	 */
	if (!hmm_may_fault(hmm_vma_walk))
		return 0;

	for (i = 0; i < npages; ++i) {
		required_fault |= hmm_pte_need_fault(hmm_vma_walk, hmm_pfns[i],
						     cpu_flags);
		if (required_fault == HMM_NEED_ALL_BITS)
			return required_fault;
	}
	return required_fault;
}

/*
 * Collecting for migration: entries below nocollect_end (a split failed) are
 * walked as without HMM_PFN_REQ_MIGRATE.
 */
static inline bool hmm_migrating(struct hmm_vma_walk *hmm_vma_walk,
				 unsigned long addr)
{
	return IS_ENABLED(CONFIG_DEVICE_MIGRATION) && hmm_vma_walk->migrate &&
	       addr >= hmm_vma_walk->nocollect_end;
}

static unsigned long *migrate_vma_src(struct migrate_vma *migrate,
				      unsigned long addr)
{
	return &migrate->src[(addr - migrate->start) >> PAGE_SHIFT];
}

static void migrate_vma_collect_skip(struct migrate_vma *migrate,
				     unsigned long start, unsigned long end)
{
	unsigned long addr;

	for (addr = start; addr < end; addr += PAGE_SIZE)
		*migrate_vma_src(migrate, addr) = 0;
}

/*
 * migrate_vma_compound_range() - may [@start, @end) be collected whole PMDs
 *
 * With MIGRATE_VMA_SELECT_COMPOUND, a range made of whole PMDs is collected as
 * one compound entry per PMD (a THP, or a hole the destination fills with
 * one), when the kernel can migrate THPs at all (thp_migration_supported(),
 * which the callers check).  Anything else is collected page by page.
 */
static bool migrate_vma_compound_range(const struct migrate_vma *migrate,
				       unsigned long start, unsigned long end)
{
	return (migrate->flags & MIGRATE_VMA_SELECT_COMPOUND) &&
	       IS_ALIGNED(start, PMD_SIZE) && IS_ALIGNED(end, PMD_SIZE);
}

/*
 * migrate_vma_fill_hole() - the src entries of a hole migration populates
 *
 * MIGRATE_PFN_MIGRATE without a pfn for each page, or with @compound one
 * MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND entry at the start of each PMD
 * (without a PMD table a hole can span several) and 0 for the rest of it.
 * Each entry counts in @migrate->cpages.
 */
static void migrate_vma_fill_hole(struct migrate_vma *migrate,
				  unsigned long start, unsigned long end,
				  bool compound)
{
	unsigned long addr;

	if (compound) {
		for (addr = start; addr < end; addr += PMD_SIZE) {
			*migrate_vma_src(migrate, addr) = MIGRATE_PFN_MIGRATE |
							  MIGRATE_PFN_COMPOUND;
			migrate->cpages++;
			migrate_vma_collect_skip(migrate, addr + PAGE_SIZE,
						 addr + PMD_SIZE);
		}
		return;
	}

	for (addr = start; addr < end; addr += PAGE_SIZE) {
		*migrate_vma_src(migrate, addr) = MIGRATE_PFN_MIGRATE;
		migrate->cpages++;
	}
}

/*
 * migrate_vma_collect_hole() - collect empty page table entries
 *
 * Holes in anonymous VMAs (and the zero page, see the callers) can be
 * populated by migration: see migrate_vma_fill_hole().  Nothing can be
 * migrated to a hole of any other VMA.
 */
static void migrate_vma_collect_hole(struct migrate_vma *migrate,
				     struct vm_area_struct *vma,
				     unsigned long start, unsigned long end)
{
	if (!vma_is_anonymous(vma)) {
		migrate_vma_collect_skip(migrate, start, end);
		return;
	}
	migrate_vma_fill_hole(migrate, start, end, thp_migration_supported() &&
			      migrate_vma_compound_range(migrate, start, end));
}

/**
 * migrate_vma_split_folio() - Helper function to split a THP folio
 * @folio: the folio to split
 * @fault_page: struct page associated with the fault if any
 *
 * If @folio is not the folio containing @fault_page, the caller must hold a
 * reference on @folio. The helper consumes that reference.  If it is, the
 * caller holds it locked and referenced, and after the split holds the folio
 * that @fault_page is in locked and referenced instead.
 *
 * It never sleeps on a folio lock: the walk calls it with other folios
 * collected, that is locked.
 *
 * Return: 0 on success, -EAGAIN if @folio is locked by someone else, the error
 * of the split otherwise.
 */
static int migrate_vma_split_folio(struct folio *folio,
				   struct page *fault_page)
{
	struct folio *fault_folio = fault_page ? page_folio(fault_page) : NULL;
	int ret;

	/*
	 * The folio of the fault: the split leaves the caller's lock and
	 * reference on the part that @fault_page is in, and unlocks the others.
	 */
	if (folio == fault_folio)
		return split_huge_page(fault_page);

	if (!folio_trylock(folio)) {
		folio_put(folio);
		return -EAGAIN;
	}
	ret = split_folio(folio);
	folio_unlock(folio);
	folio_put(folio);
	return ret;
}

/*
 * migrate_vma_collect_huge_pmd() - collect a PMD-mapped THP or a device
 * private PMD entry
 * @migrate: the migration
 * @vma: the VMA @pmdp belongs to
 * @pmdp: pointer to the pmd entry
 * @start: start address of the part of the range covered by @pmdp
 * @end: end address of the part of the range covered by @pmdp
 *
 * With MIGRATE_VMA_SELECT_COMPOUND and a range covering the whole PMD, the
 * folio is collected whole: a PMD migration entry replaces the mapping and
 * the src entry of the first page gets MIGRATE_PFN_COMPOUND.  Otherwise the
 * folio is split and the caller collects the PTEs.
 *
 * Return: 0 when the entries of [@start, @end) were collected (or skipped),
 * -EAGAIN when the pmd changed under us and must be read again, -ENOENT when
 * the caller must collect the PTE table @pmdp now points to.
 */
static int migrate_vma_collect_huge_pmd(struct migrate_vma *migrate,
					struct vm_area_struct *vma, pmd_t *pmdp,
					unsigned long start, unsigned long end)
{
	struct folio *fault_folio = migrate->fault_page ?
		page_folio(migrate->fault_page) : NULL;
	struct mm_struct *mm = vma->vm_mm;
	unsigned long write = 0;
	struct folio *folio;
	spinlock_t *ptl;
	int ret;

	ptl = pmd_lock(mm, pmdp);
	if (pmd_none(*pmdp)) {
		spin_unlock(ptl);
		migrate_vma_collect_hole(migrate, vma, start, end);
		return 0;
	}

	if (pmd_trans_huge(*pmdp)) {
		folio = pmd_folio(*pmdp);
		/* Select like a PTE-mapped page: see migrate_vma_collect_pte() */
		if (folio_is_device_coherent(folio) ?
		    !(migrate->flags & MIGRATE_VMA_SELECT_DEVICE_COHERENT) ||
		    folio->pgmap->owner != migrate->pgmap_owner :
		    !(migrate->flags & MIGRATE_VMA_SELECT_SYSTEM)) {
			spin_unlock(ptl);
			migrate_vma_collect_skip(migrate, start, end);
			return 0;
		}

		if (is_huge_zero_folio(folio)) {
			spin_unlock(ptl);
			migrate_vma_collect_hole(migrate, vma, start, end);
			return 0;
		}
		if (pmd_write(*pmdp))
			write = MIGRATE_PFN_WRITE;
	} else if (!pmd_present(*pmdp)) {
		const softleaf_t entry = softleaf_from_pmd(*pmdp);

		if (!softleaf_is_device_private(entry) ||
		    !(migrate->flags & MIGRATE_VMA_SELECT_DEVICE_PRIVATE)) {
			spin_unlock(ptl);
			migrate_vma_collect_skip(migrate, start, end);
			return 0;
		}

		folio = softleaf_to_folio(entry);
		if (folio->pgmap->owner != migrate->pgmap_owner) {
			spin_unlock(ptl);
			migrate_vma_collect_skip(migrate, start, end);
			return 0;
		}

		if (softleaf_is_device_private_write(entry))
			write = MIGRATE_PFN_WRITE;
	} else {
		spin_unlock(ptl);
		return -EAGAIN;
	}

	folio_get(folio);
	if (folio != fault_folio && unlikely(!folio_trylock(folio))) {
		spin_unlock(ptl);
		folio_put(folio);
		migrate_vma_collect_skip(migrate, start, end);
		return 0;
	}

	if (thp_migration_supported() &&
	    migrate_vma_compound_range(migrate, start, end)) {
		struct page_vma_mapped_walk pvmw = {
			.ptl = ptl,
			.address = start,
			.pmd = pmdp,
			.vma = vma,
		};
		unsigned long pfn = page_to_pfn(folio_page(folio, 0));

		ret = set_pmd_migration_entry(&pvmw, folio_page(folio, 0));
		if (ret)
			goto fallback;
		*migrate_vma_src(migrate, start) = migrate_pfn(pfn) | write |
						   MIGRATE_PFN_MIGRATE |
						   MIGRATE_PFN_COMPOUND;
		migrate->cpages++;
		migrate_vma_collect_skip(migrate, start + PAGE_SIZE, end);
		spin_unlock(ptl);
		return 0;
	}

fallback:
	spin_unlock(ptl);
	ret = folio_test_large(folio) ? split_folio(folio) : 0;
	if (fault_folio != folio)
		folio_unlock(folio);
	folio_put(folio);
	if (ret) {
		migrate_vma_collect_skip(migrate, start, end);
		return 0;
	}
	return -ENOENT;
}

/*
 * migrate_vma_pte_is_hole() - does migration populate @pte without reading it
 *
 * An empty PTE of an anonymous VMA, or one mapping the zero page when system
 * memory is selected, is collected as a hole: the destination is a new page,
 * nothing is copied.  hmm_range_fault() does not fault such entries in.
 */
static inline bool migrate_vma_pte_is_hole(struct migrate_vma *migrate,
					   struct vm_area_struct *vma,
					   pte_t pte)
{
	if (pte_none(pte))
		return vma_is_anonymous(vma);
	return pte_present(pte) && is_zero_pfn(pte_pfn(pte)) &&
	       (migrate->flags & MIGRATE_VMA_SELECT_SYSTEM);
}

/*
 * migrate_vma_pmd_is_hole() - does migration populate @pmd without reading it
 *
 * The huge zero page, when system memory is selected, is collected as a hole.
 */
static bool migrate_vma_pmd_is_hole(struct migrate_vma *migrate, pmd_t pmd)
{
	return pmd_present(pmd) && is_huge_zero_pmd(pmd) &&
	       (migrate->flags & MIGRATE_VMA_SELECT_SYSTEM);
}

/*
 * The body of migrate_vma_collect_ptes(), for one PTE: inlined into its loop
 * alone, which is the collection's hot path.  Returns the src entry of @addr.
 */
static __always_inline unsigned long
migrate_vma_collect_pte(struct migrate_vma *migrate, struct vm_area_struct *vma,
			struct folio *fault_folio, unsigned long addr,
			pte_t *ptep, bool need_write, unsigned long *unmapped,
			struct folio **split)
{
	struct mm_struct *mm = vma->vm_mm;
	struct dev_pagemap *pgmap;
	struct page *page;
	unsigned long mpfn, pfn;
	bool anon_exclusive;
	struct folio *folio;
	softleaf_t entry;
	pte_t swp_pte;
	pte_t pte;

	pte = ptep_get(ptep);

	if (migrate_vma_pte_is_hole(migrate, vma, pte)) {
		migrate->cpages++;
		return MIGRATE_PFN_MIGRATE;
	}
	if (pte_none(pte))
		return 0;

	if (!pte_present(pte)) {
		/*
		 * Only care about unaddressable device page special
		 * page table entry. Other special swap entries are not
		 * migratable, and we ignore regular swapped page.
		 */
		entry = softleaf_from_pte(pte);
		if (!softleaf_is_device_private(entry))
			return 0;

		page = softleaf_to_page(entry);
		pgmap = page_pgmap(page);
		if (!(migrate->flags & MIGRATE_VMA_SELECT_DEVICE_PRIVATE) ||
		    pgmap->owner != migrate->pgmap_owner)
			return 0;

		mpfn = migrate_pfn(page_to_pfn(page)) | MIGRATE_PFN_MIGRATE;
		if (softleaf_is_device_private_write(entry))
			mpfn |= MIGRATE_PFN_WRITE;
	} else {
		page = vm_normal_page(vma, addr, pte);
		pfn = pte_pfn(pte);
		if (page && !is_zone_device_page(page) &&
		    !(migrate->flags & MIGRATE_VMA_SELECT_SYSTEM)) {
			return 0;
		} else if (page && is_device_coherent_page(page)) {
			pgmap = page_pgmap(page);

			if (!(migrate->flags &
			      MIGRATE_VMA_SELECT_DEVICE_COHERENT) ||
			    pgmap->owner != migrate->pgmap_owner)
				return 0;
		}
		if (!pte_write(pte) && need_write)
			return 0;
		mpfn = migrate_pfn(pfn) | MIGRATE_PFN_MIGRATE;
		mpfn |= pte_write(pte) ? MIGRATE_PFN_WRITE : 0;
	}

	folio = page ? page_folio(page) : NULL;
	if (folio && folio_test_large(folio)) {
		/* migrate_vma_split_folio() consumes this reference */
		if (folio != fault_folio)
			folio_get(folio);
		*split = folio;
		return 0;
	}

	if (!page || !page->mapping)
		return 0;

	/*
	 * By getting a reference on the folio we pin it and that blocks
	 * any kind of migration. Side effect is that it "freezes" the
	 * pte.
	 *
	 * We drop this reference after isolating the folio from the lru
	 * for non device folio (device folio are not on the lru and thus
	 * can't be dropped from it).
	 */
	folio_get(folio);

	/*
	 * We rely on folio_trylock() to avoid deadlock between
	 * concurrent migrations where each is waiting on the others
	 * folio lock. If we can't immediately lock the folio we fail this
	 * migration as it is only best effort anyway.
	 *
	 * If we can lock the folio it's safe to set up a migration entry
	 * now. In the common case where the folio is mapped once in a
	 * single process setting up the migration entry now is an
	 * optimisation to avoid walking the rmap later with
	 * try_to_migrate().
	 */
	if (fault_folio != folio && !folio_trylock(folio)) {
		folio_put(folio);
		return 0;
	}

	if (pte_present(pte))
		flush_cache_page(vma, addr, pte_pfn(pte));
	anon_exclusive = folio_test_anon(folio) && PageAnonExclusive(page);
	if (anon_exclusive) {
		pte = ptep_clear_flush(vma, addr, ptep);

		if (folio_try_share_anon_rmap_pte(folio, page)) {
			set_pte_at(mm, addr, ptep, pte);
			if (fault_folio != folio)
				folio_unlock(folio);
			folio_put(folio);
			return 0;
		}
	} else {
		pte = ptep_get_and_clear(mm, addr, ptep);
	}

	migrate->cpages++;

	/* Set the dirty flag on the folio now the pte is gone. */
	if (pte_present(pte) && pte_dirty(pte))
		folio_mark_dirty(folio);

	/* Setup special migration page table entry */
	if (mpfn & MIGRATE_PFN_WRITE)
		entry = make_writable_migration_entry(page_to_pfn(page));
	else if (anon_exclusive)
		entry = make_readable_exclusive_migration_entry(page_to_pfn(page));
	else
		entry = make_readable_migration_entry(page_to_pfn(page));
	if (pte_present(pte)) {
		if (pte_young(pte))
			entry = make_migration_entry_young(entry);
		if (pte_dirty(pte))
			entry = make_migration_entry_dirty(entry);
	}
	swp_pte = swp_entry_to_pte(entry);
	if (pte_present(pte)) {
		if (pte_soft_dirty(pte))
			swp_pte = pte_swp_mksoft_dirty(swp_pte);
		if (pte_uffd(pte))
			swp_pte = pte_swp_mkuffd(swp_pte);
	} else {
		if (pte_swp_soft_dirty(pte))
			swp_pte = pte_swp_mksoft_dirty(swp_pte);
		if (pte_swp_uffd(pte))
			swp_pte = pte_swp_mkuffd(swp_pte);
	}
	set_pte_at(mm, addr, ptep, swp_pte);

	/*
	 * This is like regular unmap: we remove the rmap and
	 * drop the folio refcount. The folio won't be freed, as
	 * we took a reference just above.
	 */
	folio_remove_rmap_pte(folio, page, vma);
	folio_put(folio);

	if (pte_present(pte))
		(*unmapped)++;
	return mpfn;
}

/*
 * migrate_vma_collect_ptes() - collect the pages mapped by a run of PTEs
 * @migrate: the migration
 * @vma: the VMA @ptep belongs to
 * @addr: the address @ptep maps
 * @end: the end of the run, within the PTE table
 * @ptep: the PTE of @addr, mapped and locked by the caller, in lazy MMU mode
 * @need_write: leave a read-only present page alone, for the caller to
 *	write-fault (hmm_range_fault() with HMM_PFN_REQ_WRITE collecting first)
 * @unmapped: incremented for each present PTE cleared; the caller flushes
 *	the TLB for the range before it drops the PTE lock
 * @split: set to a large folio that must be split before its pages can be
 *	collected; the caller drops the PTE lock and passes it (and the
 *	reference taken on it) to migrate_vma_split_folio(), then goes on
 *	from the address returned
 *
 * A page that can be migrated is locked (unless it is @migrate->fault_page,
 * which the caller locked) and its PTE is replaced with a migration entry.
 * The src entry of each address is stored: 0 if nothing is collected,
 * MIGRATE_PFN_MIGRATE for a hole (see migrate_vma_pte_is_hole()), or
 * migrate_pfn() | MIGRATE_PFN_MIGRATE [| MIGRATE_PFN_WRITE] for a page.
 *
 * Return: the address the collection stopped at: @end, or that of the page
 * of *@split, whose src entry is 0.
 */
static unsigned long migrate_vma_collect_ptes(struct migrate_vma *migrate,
					      struct vm_area_struct *vma,
					      unsigned long addr,
					      unsigned long end, pte_t *ptep,
					      bool need_write,
					      unsigned long *unmapped,
					      struct folio **split)
{
	struct folio *fault_folio = migrate->fault_page ?
		page_folio(migrate->fault_page) : NULL;
	unsigned long *src = migrate_vma_src(migrate, addr);
	unsigned long nr_unmapped = 0;
	struct folio *large = NULL;

	for (; addr < end; addr += PAGE_SIZE, ptep++, src++) {
		*src = migrate_vma_collect_pte(migrate, vma, fault_folio, addr,
					       ptep, need_write, &nr_unmapped,
					       &large);
		if (large)
			break;
	}
	*unmapped += nr_unmapped;
	*split = large;
	return addr;
}

/* Collect now: not while faulting the range first (see hmm_migrate_abort()) */
static bool hmm_want_migrate(struct hmm_vma_walk *hmm_vma_walk,
			     unsigned long addr)
{
	return hmm_migrating(hmm_vma_walk, addr) && !hmm_vma_walk->fault_first;
}

/*
 * An empty range is never faulted when collecting for migration: in an
 * anonymous VMA it is collected, and the migration populates it; in any
 * other VMA nothing can be migrated there.
 */
static bool hmm_vma_collect_hole(struct mm_walk *walk, unsigned long addr,
				 unsigned long end)
{
	struct hmm_vma_walk *hmm_vma_walk = walk->private;

	if (!hmm_migrating(hmm_vma_walk, addr))
		return false;

	if (!hmm_want_migrate(hmm_vma_walk, addr) ||
	    !vma_is_anonymous(walk->vma)) {
		hmm_pfns_fill(addr, end, hmm_vma_walk->range, 0);
		return true;
	}
	migrate_vma_collect_hole(hmm_vma_walk->migrate, walk->vma, addr, end);
	hmm_pfns_fill(addr, end, hmm_vma_walk->range, HMM_PFN_MIGRATE);
	return true;
}

static bool hmm_pte_is_hole(struct mm_walk *walk, unsigned long addr,
			    pte_t pte)
{
	struct hmm_vma_walk *hmm_vma_walk = walk->private;

	return hmm_migrating(hmm_vma_walk, addr) &&
	       migrate_vma_pte_is_hole(hmm_vma_walk->migrate, walk->vma, pte);
}

/*
 * hmm_pfn_from_mpfn() - what hmm_range_fault() reports for a collected entry
 *
 * The output follows the collection, not what the walk read before: a page
 * is reported with its pfn, HMM_PFN_VALID and HMM_PFN_WRITE as src has them,
 * a hole (or the zero page) with HMM_PFN_MIGRATE alone.
 */
static unsigned long hmm_pfn_from_mpfn(unsigned long hmm_pfn,
				       unsigned long mpfn)
{
	hmm_pfn = (hmm_pfn & HMM_PFN_INOUT_FLAGS) | HMM_PFN_MIGRATE;
	if (!(mpfn & MIGRATE_PFN_VALID))
		return hmm_pfn;
	hmm_pfn |= (mpfn >> MIGRATE_PFN_SHIFT) | HMM_PFN_VALID;
	if (mpfn & MIGRATE_PFN_WRITE)
		hmm_pfn |= HMM_PFN_WRITE;
	return hmm_pfn;
}

/*
 * Does collecting @pte unmap something?  Only then must the MMU_NOTIFY_MIGRATE
 * range be open, so that nothing is invalidated for a range that is only
 * faulted, or holds nothing to collect.
 */
static bool hmm_pte_unmaps(struct mm_walk *walk, pte_t pte)
{
	struct hmm_vma_walk *hmm_vma_walk = walk->private;

	if (pte_none(pte) ||
	    migrate_vma_pte_is_hole(hmm_vma_walk->migrate, walk->vma, pte))
		return false;
	return pte_present(pte) ||
	       softleaf_is_device_private(softleaf_from_pte(pte));
}

/*
 * Collect the page mapped by a PTE of the locked PTE table; *hmm_pfn already
 * holds what hmm_range_fault() reports for it.
 */
static int hmm_vma_collect_pte(struct mm_walk *walk, unsigned long addr,
			       pte_t *ptep, unsigned long *hmm_pfn)
{
	struct hmm_vma_walk *hmm_vma_walk = walk->private;
	unsigned long mpfn;

	if (!hmm_want_migrate(hmm_vma_walk, addr))
		return 0;

	if (!hmm_vma_walk->collecting && hmm_pte_unmaps(walk, ptep_get(ptep))) {
		hmm_vma_walk->last = addr;
		return HMM_COLLECT_START;
	}

	migrate_vma_collect_ptes(hmm_vma_walk->migrate, walk->vma, addr,
				 addr + PAGE_SIZE, ptep, false,
				 &hmm_vma_walk->unmapped, &hmm_vma_walk->split);
	mpfn = *migrate_vma_src(hmm_vma_walk->migrate, addr);
	if (hmm_vma_walk->split) {
		hmm_vma_walk->last = addr;
		return HMM_SPLIT_FOLIO;
	}
	if ((mpfn & MIGRATE_PFN_MIGRATE) && !hmm_vma_walk->noreport)
		*hmm_pfn = hmm_pfn_from_mpfn(*hmm_pfn, mpfn);
	return 0;
}

/*
 * hmm_pmd_report_collected() - report what was collected for a PMD
 * @range: the hmm range
 * @addr: start of the part of the range the PMD covers
 * @end: end of that part
 * @hmm_pfns: the output entries of [@addr, @end), which hold what the
 *	lockless read of the PMD saw
 * @mpfn: the src entry the collection stored for @addr
 *
 * The output follows the collection, not that read: a folio collected whole
 * is reported as PMD order pages from its head, a hole (or the huge zero
 * page) as HMM_PFN_MIGRATE alone for every page; what was not collected is
 * left as it was read.
 */
static void hmm_pmd_report_collected(struct hmm_range *range,
				     unsigned long addr, unsigned long end,
				     unsigned long *hmm_pfns,
				     unsigned long mpfn)
{
	unsigned long i, npages = (end - addr) >> PAGE_SHIFT;
	const unsigned long order =
		(unsigned long)(PMD_SHIFT - PAGE_SHIFT) << HMM_PFN_ORDER_SHIFT;
	unsigned long head;

	if (!(mpfn & MIGRATE_PFN_MIGRATE))
		return;
	if (!(mpfn & MIGRATE_PFN_VALID)) {
		hmm_pfns_fill(addr, end, range, HMM_PFN_MIGRATE);
		return;
	}
	/*
	 * Every page has the head's flags, and the head's pfn is PMD aligned:
	 * adding the index gives each page's pfn.
	 */
	head = hmm_pfn_from_mpfn(0, mpfn) | order;
	for (i = 0; i < npages; i++)
		hmm_pfns[i] = (hmm_pfns[i] & HMM_PFN_INOUT_FLAGS) | (head + i);
}

static bool hmm_pmd_is_hole(struct mm_walk *walk, unsigned long addr,
			    pmd_t pmd)
{
	struct hmm_vma_walk *hmm_vma_walk = walk->private;

	return hmm_want_migrate(hmm_vma_walk, addr) &&
	       migrate_vma_pmd_is_hole(hmm_vma_walk->migrate, pmd);
}

/*
 * Collect a PMD-mapped THP or a device-private PMD entry, whose pfns are
 * already in @hmm_pfns.  With MIGRATE_VMA_SELECT_COMPOUND and a range covering
 * the whole PMD the folio is collected whole, otherwise it is split and
 * -ENOENT tells the caller to walk the PTE table that replaced it.
 */
static int hmm_vma_collect_pmd(struct mm_walk *walk, pmd_t *pmdp,
			       unsigned long addr, unsigned long end,
			       unsigned long *hmm_pfns)
{
	struct hmm_vma_walk *hmm_vma_walk = walk->private;
	struct migrate_vma *migrate = hmm_vma_walk->migrate;
	pmd_t pmd;
	int ret;

	if (!hmm_want_migrate(hmm_vma_walk, addr))
		return 0;

	pmd = pmdp_get_lockless(pmdp);
	if (!hmm_vma_walk->collecting && !pmd_none(pmd) &&
	    !migrate_vma_pmd_is_hole(migrate, pmd)) {
		hmm_vma_walk->last = addr;
		return HMM_COLLECT_START;
	}

	ret = migrate_vma_collect_huge_pmd(migrate, walk->vma, pmdp, addr,
					   end);
	if (ret || hmm_vma_walk->noreport)
		return ret;
	hmm_pmd_report_collected(hmm_vma_walk->range, addr, end, hmm_pfns,
				 *migrate_vma_src(migrate, addr));
	return 0;
}

/*
 * Split the large folio hmm_vma_collect_pte() found, with the PTE table
 * unlocked.  If that fails, collect nothing more up to @end: its pages are
 * still reported, but they are not migrated.
 */
static void hmm_vma_split_folio(struct hmm_vma_walk *hmm_vma_walk,
				unsigned long end)
{
	struct folio *folio = hmm_vma_walk->split;

	hmm_vma_walk->split = NULL;
	if (migrate_vma_split_folio(folio, hmm_vma_walk->migrate->fault_page))
		hmm_vma_walk->nocollect_end = end;
}

static int hmm_migrate_start(struct hmm_vma_walk *hmm_vma_walk,
			     struct mm_struct **mm)
{
	struct hmm_range *range = hmm_vma_walk->range;
	struct migrate_vma *migrate = range->migrate;
	int ret;

	if (!IS_ENABLED(CONFIG_DEVICE_MIGRATION))
		return -EOPNOTSUPP;
	if (!migrate || !migrate->vma)
		return -EINVAL;
	*mm = migrate->vma->vm_mm;
	if (range->notifier && range->notifier->mm != *mm)
		return -EINVAL;
	ret = migrate_vma_collect_start(migrate, range->start, range->end,
					!hmm_vma_walk->noreport);
	if (ret)
		return ret;
	hmm_vma_walk->migrate = migrate;
	/*
	 * A fault only ever gives system memory, so it is useless unless system
	 * memory is selected.  Nor can it make an inaccessible VMA accessible:
	 * handle_mm_fault() returns without changing a PROT_NONE entry, which
	 * the walk would fault again forever.
	 */
	hmm_vma_walk->nofault = !(migrate->flags & MIGRATE_VMA_SELECT_SYSTEM) ||
				!(migrate->vma->vm_flags & VM_READ);
	return 0;
}

/*
 * hmm_migrate_sync_pfns() - drop HMM_PFN_MIGRATE where src has no page
 * @hmm_pfns: hmm_range_fault()'s output
 * @src: the migration's src array
 * @npages: the number of entries of both
 *
 * migrate_vma_collect_finish() puts back what it cannot migrate (a pinned
 * page, or everything after an error) and clears its src entries: the output
 * must not report those as collected.  The entries a compound src entry
 * stands for keep HMM_PFN_MIGRATE with it.
 */
static void hmm_migrate_sync_pfns(unsigned long *hmm_pfns,
				  const unsigned long *src,
				  unsigned long npages)
{
	unsigned long i, nr;

	for (i = 0; i < npages; i += nr) {
		nr = 1;
		if (!(src[i] & MIGRATE_PFN_MIGRATE))
			hmm_pfns[i] &= ~HMM_PFN_MIGRATE;
		else if (src[i] & MIGRATE_PFN_COMPOUND)
			nr = min(npages - i, 1UL << (PMD_SHIFT - PAGE_SHIFT));
	}
}

/*
 * Open the MMU_NOTIFY_MIGRATE range from hmm_vma_walk->last to the end: once
 * the walk reached the first entry whose collection unmaps a page, or before
 * the walk when that is all the same (see hmm_migrate_open_first()).
 */
static int hmm_migrate_open(struct hmm_vma_walk *hmm_vma_walk,
			    struct mmu_notifier_range *nrange)
{
	struct hmm_range *range = hmm_vma_walk->range;
	struct migrate_vma *migrate = hmm_vma_walk->migrate;

	/*
	 * Up to here the walk reported entries the caller's notifier_seq
	 * vouches for.  From here on the collection's own invalidation bumps
	 * the sequence, and the collected entries are kept stable by their
	 * migration entries and folio locks instead.
	 */
	if (range->notifier && !hmm_vma_walk->collected &&
	    mmu_interval_check_retry(range->notifier, range->notifier_seq))
		return -EBUSY;

	mmu_notifier_range_init_owner(nrange, MMU_NOTIFY_MIGRATE, 0,
				      migrate->vma->vm_mm, hmm_vma_walk->last,
				      range->end, migrate->pgmap_owner);
	mmu_notifier_invalidate_range_start(nrange);
	hmm_vma_walk->collecting = true;
	hmm_vma_walk->collected = true;
	return 0;
}

/*
 * Should the MMU_NOTIFY_MIGRATE range open before the walk, over the whole
 * range?  Opening it at the first page the collection unmaps keeps the
 * caller's notifier_seq valid for what the walk reports before that, and
 * fires no invalidation for a range that is only faulted.  Without a
 * notifier and without faults (migrate_vma_setup() without
 * MIGRATE_VMA_FAULT) neither matters, and opening first, as that function
 * always did, lets the walk run once instead of stopping at that page.
 */
static bool hmm_migrate_open_first(const struct hmm_vma_walk *hmm_vma_walk)
{
	return hmm_vma_walk->migrate && !hmm_vma_walk->range->notifier &&
	       !hmm_may_fault(hmm_vma_walk);
}

/*
 * The walk needs a fault after it collected pages: put every page back and
 * close the notifier range first, so that no folio lock or open
 * invalidation is held across the fault, which may sleep on I/O or on a folio
 * another task holds.  The walk then faults what the rest of the range needs
 * without collecting, and collects the whole range once it reaches the end.
 */
static void hmm_migrate_abort(struct hmm_vma_walk *hmm_vma_walk,
			      struct mmu_notifier_range *nrange)
{
	struct migrate_vma *migrate = hmm_vma_walk->migrate;

	migrate_vma_collect_finish(migrate, nrange, -EAGAIN);
	if (!hmm_vma_walk->noreport)
		hmm_migrate_sync_pfns(hmm_vma_walk->range->hmm_pfns,
				      migrate->src,
				      (migrate->end - migrate->start) >>
				      PAGE_SHIFT);
	hmm_vma_walk->collecting = false;
	hmm_vma_walk->fault_first = true;
}

/*
 * Every fault is done: collect from the start, faulting nothing.  A large
 * folio that could not be split before is tried again.
 */
static void hmm_migrate_restart(struct hmm_vma_walk *hmm_vma_walk)
{
	hmm_vma_walk->fault_first = false;
	hmm_vma_walk->nofault = true;
	hmm_vma_walk->nocollect_end = 0;
	hmm_vma_walk->last = hmm_vma_walk->range->start;
}

static void hmm_migrate_finish(struct hmm_vma_walk *hmm_vma_walk,
			       struct mmu_notifier_range *nrange, int err)
{
	struct migrate_vma *migrate = hmm_vma_walk->migrate;

	migrate_vma_collect_finish(migrate, hmm_vma_walk->collecting ? nrange :
				   NULL, err);
	if (!hmm_vma_walk->noreport)
		hmm_migrate_sync_pfns(hmm_vma_walk->range->hmm_pfns,
				      migrate->src,
				      (migrate->end - migrate->start) >>
				      PAGE_SHIFT);
}

static int hmm_vma_walk_hole(unsigned long addr, unsigned long end,
			     __always_unused int depth, struct mm_walk *walk)
{
	struct hmm_vma_walk *hmm_vma_walk = walk->private;
	struct hmm_range *range = hmm_vma_walk->range;
	unsigned int required_fault;
	unsigned long i, npages;
	unsigned long *hmm_pfns;

	i = (addr - range->start) >> PAGE_SHIFT;
	npages = (end - addr) >> PAGE_SHIFT;
	hmm_pfns = &range->hmm_pfns[i];
	if (walk->vma && hmm_vma_collect_hole(walk, addr, end))
		return 0;
	required_fault =
		hmm_range_need_fault(hmm_vma_walk, hmm_pfns, npages, 0);
	if (!walk->vma) {
		if (required_fault)
			return -EFAULT;
		return hmm_pfns_fill(addr, end, range, HMM_PFN_ERROR);
	}
	if (required_fault)
		return hmm_record_fault(addr, end, required_fault, walk);
	return hmm_pfns_fill(addr, end, range, 0);
}

static inline unsigned long hmm_pfn_flags_order(unsigned long order)
{
	return order << HMM_PFN_ORDER_SHIFT;
}

#ifdef CONFIG_TRANSPARENT_HUGEPAGE
static inline unsigned long pmd_to_hmm_pfn_flags(struct hmm_range *range,
						 pmd_t pmd)
{
	if (pmd_protnone(pmd))
		return 0;
	return (pmd_write(pmd) ? (HMM_PFN_VALID | HMM_PFN_WRITE) :
				 HMM_PFN_VALID) |
	       hmm_pfn_flags_order(PMD_SHIFT - PAGE_SHIFT);
}

static int hmm_vma_handle_pmd(struct mm_walk *walk, unsigned long addr,
			      unsigned long end, unsigned long hmm_pfns[],
			      pmd_t pmd)
{
	struct hmm_vma_walk *hmm_vma_walk = walk->private;
	struct hmm_range *range = hmm_vma_walk->range;
	unsigned long pfn, npages, i;
	unsigned int required_fault;
	unsigned long cpu_flags;

	npages = (end - addr) >> PAGE_SHIFT;
	cpu_flags = pmd_to_hmm_pfn_flags(range, pmd);
	required_fault =
		hmm_range_need_fault(hmm_vma_walk, hmm_pfns, npages, cpu_flags);
	if (required_fault)
		return hmm_record_fault(addr, end, required_fault, walk);

	pfn = pmd_pfn(pmd) + ((addr & ~PMD_MASK) >> PAGE_SHIFT);
	for (i = 0; addr < end; addr += PAGE_SIZE, i++, pfn++) {
		hmm_pfns[i] &= HMM_PFN_INOUT_FLAGS;
		hmm_pfns[i] |= pfn | cpu_flags;
	}
	return 0;
}
#else /* CONFIG_TRANSPARENT_HUGEPAGE */
/* stub to allow the code below to compile */
int hmm_vma_handle_pmd(struct mm_walk *walk, unsigned long addr,
		unsigned long end, unsigned long hmm_pfns[], pmd_t pmd);
#endif /* CONFIG_TRANSPARENT_HUGEPAGE */

static inline unsigned long pte_to_hmm_pfn_flags(struct hmm_range *range,
						 pte_t pte)
{
	if (pte_none(pte) || !pte_present(pte) || pte_protnone(pte))
		return 0;
	return pte_write(pte) ? (HMM_PFN_VALID | HMM_PFN_WRITE) : HMM_PFN_VALID;
}

/*
 * The device private pages reported rather than faulted: those of
 * range->dev_private_owner, or when collecting for migration those of the
 * migration's pgmap_owner (faulting them would migrate them to system memory
 * only for them to be collected there).
 */
static void *hmm_dev_private_owner(const struct hmm_vma_walk *hmm_vma_walk)
{
	if (hmm_vma_walk->migrate)
		return hmm_vma_walk->migrate->pgmap_owner;
	return hmm_vma_walk->range->dev_private_owner;
}

/*
 * The cpu flags of a device private entry of the caller's own device, which
 * hmm_range_fault() reports rather than faults; 0 for any other entry.
 */
static unsigned long
hmm_own_device_private_flags(const struct hmm_vma_walk *hmm_vma_walk,
			     softleaf_t entry)
{
	if (!softleaf_is_device_private(entry) ||
	    page_pgmap(softleaf_to_page(entry))->owner !=
	    hmm_dev_private_owner(hmm_vma_walk))
		return 0;
	if (softleaf_is_device_private_write(entry))
		return HMM_PFN_VALID | HMM_PFN_WRITE;
	return HMM_PFN_VALID;
}

/*
 * hmm_vma_read_pte() - what hmm_range_fault() reports for @pte, or the fault
 * it needs
 *
 * Sets *@hmm_pfn to the report and returns 0; or returns what the walk must
 * do first: a fault (HMM_FAULT_PENDING), a wait (HMM_WAIT_MIGRATION), or
 * -EFAULT.  It returns 0 for every entry when the walk can fault nothing.
 * @migrating is false, at compile time, on the path of a walk without
 * HMM_PFN_REQ_MIGRATE, which then runs nothing of the collection's.
 */
static __always_inline int hmm_vma_read_pte(struct mm_walk *walk,
					    unsigned long addr,
					    unsigned long end, pte_t pte,
					    unsigned long *hmm_pfn,
					    const bool migrating)
{
	struct hmm_vma_walk *hmm_vma_walk = walk->private;
	struct hmm_range *range = hmm_vma_walk->range;
	unsigned int required_fault;
	unsigned long cpu_flags;
	struct page *page = NULL;
	uint64_t pfn_req_flags = *hmm_pfn;
	uint64_t new_pfn_flags = 0;

	/* Never fault what a migration populates without reading it. */
	if (migrating && hmm_pte_is_hole(walk, addr, pte))
		goto out;

	/*
	 * Any other marker than a UFFD WP marker will result in a fault error
	 * that will be correctly handled, so we need only check for UFFD WP
	 * here.
	 */
	if (pte_none(pte) || pte_is_uffd_wp_marker(pte)) {
		/* Not collected unless a hole: not faulted either */
		if (migrating && hmm_migrating(hmm_vma_walk, addr))
			goto out;
		required_fault =
			hmm_pte_need_fault(hmm_vma_walk, pfn_req_flags, 0);
		if (required_fault)
			goto fault;
		goto out;
	}

	if (!pte_present(pte)) {
		const softleaf_t entry = softleaf_from_pte(pte);

		/*
		 * Don't fault in device private pages owned by the caller,
		 * just report the PFN.
		 */
		cpu_flags = hmm_own_device_private_flags(hmm_vma_walk, entry);
		if (cpu_flags) {
			new_pfn_flags = softleaf_to_pfn(entry) | cpu_flags;
			goto out;
		}

		required_fault =
			hmm_pte_need_fault(hmm_vma_walk, pfn_req_flags, 0);
		if (!required_fault)
			goto out;

		if (softleaf_is_swap(entry))
			goto fault;

		if (softleaf_is_device_private(entry))
			goto fault;

		if (softleaf_is_device_exclusive(entry))
			goto fault;

		if (softleaf_is_migration(entry)) {
			/* Wait in handle_mm_fault(), with nothing collected */
			if (hmm_vma_walk->collecting)
				goto fault;
			hmm_vma_walk->last = addr;
			return HMM_WAIT_MIGRATION;
		}

		/* Report error for everything else */
		return -EFAULT;
	}

	cpu_flags = pte_to_hmm_pfn_flags(range, pte);
	required_fault =
		hmm_pte_need_fault(hmm_vma_walk, pfn_req_flags, cpu_flags);
	if (required_fault)
		goto fault;

	/*
	 * Since each architecture defines a struct page for the zero page, just
	 * fall through and treat it like a normal page.
	 */
	page = vm_normal_page(walk->vma, addr, pte);
	if (!page && !is_zero_pfn(pte_pfn(pte))) {
		if (hmm_pte_need_fault(hmm_vma_walk, pfn_req_flags, 0))
			return -EFAULT;
		new_pfn_flags = HMM_PFN_ERROR;
		goto out;
	}

	new_pfn_flags = pte_pfn(pte) | cpu_flags;
out:
	*hmm_pfn = (*hmm_pfn & HMM_PFN_INOUT_FLAGS) | new_pfn_flags;
	return 0;

fault:
	/*
	 * Fault any virtual address we were asked to fault.  When collecting
	 * for migration only this one here: the following entries may be
	 * holes that must not be populated.  hmm_vma_extend_fault() adds
	 * those that need the same fault.
	 */
	if (hmm_vma_walk->migrate)
		end = addr + PAGE_SIZE;
	return hmm_record_fault(addr, end, required_fault, walk);
}

static int hmm_vma_handle_pte(struct mm_walk *walk, unsigned long addr,
			      unsigned long end, pmd_t *pmdp, pte_t *ptep,
			      unsigned long *hmm_pfn)
{
	int r;

	r = hmm_vma_read_pte(walk, addr, end, ptep_get(ptep), hmm_pfn, true);
	if (r)
		return r;
	return hmm_vma_collect_pte(walk, addr, ptep, hmm_pfn);
}

/*
 * The fault hmm_vma_handle_pte() would record for @pte, without its side
 * effects: 0 for a hole that a migration populates, and for entries that it
 * waits for or fails on.
 */
static unsigned int hmm_pte_fault_kind(struct mm_walk *walk,
				       unsigned long addr, pte_t pte,
				       unsigned long pfn_req_flags)
{
	struct hmm_vma_walk *hmm_vma_walk = walk->private;
	struct hmm_range *range = hmm_vma_walk->range;
	softleaf_t entry;

	if (hmm_pte_is_hole(walk, addr, pte))
		return 0;
	if (pte_none(pte) || pte_is_uffd_wp_marker(pte))
		return 0;
	if (pte_present(pte))
		return hmm_pte_need_fault(hmm_vma_walk, pfn_req_flags,
					  pte_to_hmm_pfn_flags(range, pte));

	/* The caller's own device private pages are reported, not faulted */
	entry = softleaf_from_pte(pte);
	if (hmm_own_device_private_flags(hmm_vma_walk, entry) ||
	    (!softleaf_is_swap(entry) && !softleaf_is_device_private(entry) &&
	     !softleaf_is_device_exclusive(entry)))
		return 0;
	return hmm_pte_need_fault(hmm_vma_walk, pfn_req_flags, 0);
}

/*
 * When collecting for migration, the walk stopped at @ptep to fault it:
 * fault the entries right after it that need the same fault as well, up to
 * the first that does not (a hole, for one).  One call then faults a whole
 * run of COW-shared or swapped-out pages rather than one page per walk,
 * which matters because each fault may invalidate the range and make the
 * caller start over.
 */
static void hmm_vma_extend_fault(struct mm_walk *walk, unsigned long addr,
				 unsigned long end, pte_t *ptep,
				 const unsigned long *hmm_pfns)
{
	struct hmm_vma_walk *hmm_vma_walk = walk->private;

	for (addr += PAGE_SIZE, ptep++, hmm_pfns++; addr < end;
	     addr += PAGE_SIZE, ptep++, hmm_pfns++) {
		if (hmm_pte_fault_kind(walk, addr, ptep_get(ptep), *hmm_pfns) !=
		    hmm_vma_walk->required_fault)
			break;
		hmm_vma_walk->end = addr + PAGE_SIZE;
	}
}

/*
 * Collecting, and the range open for collection: then each entry is
 * collected first, and read for the report (and the fault it needs) only when
 * it was not collected; the report of a collected entry follows its src
 * entry, see hmm_pfn_from_mpfn().  The collection takes only what needs no
 * fault: with HMM_PFN_REQ_WRITE it leaves read-only present pages to the read,
 * and it never takes what else can be faulted (swapped out, another device's
 * memory).  A fault found after pages were collected puts them back first, as
 * when the walk reads each entry first.  So each collected page costs the
 * collection alone, on migrate_vma_setup()'s walk and on the one walk; only
 * per-page requests (range->pfn_flags_mask) make the walk read first.
 */
static bool hmm_collect_first(struct hmm_vma_walk *hmm_vma_walk,
			      unsigned long addr)
{
	return hmm_vma_walk->collecting && hmm_want_migrate(hmm_vma_walk, addr) &&
	       !(hmm_may_fault(hmm_vma_walk) &&
		 hmm_vma_walk->range->pfn_flags_mask);
}

/* Collecting first, must present pages be writable to be collected? */
static bool hmm_collect_need_write(const struct hmm_vma_walk *hmm_vma_walk)
{
	return hmm_may_fault(hmm_vma_walk) &&
	       (hmm_vma_walk->range->default_flags & HMM_PFN_REQ_WRITE);
}

/*
 * Collect [@addr, @end) of the locked PTE table first, then report it: a
 * collected entry from its src entry, one that was not as it is mapped.
 * Without a report (hmm_range_collect()) that second loop is skipped.
 */
static int hmm_vma_collect_first_ptes(struct mm_walk *walk, unsigned long addr,
				      unsigned long end, pte_t *ptep,
				      unsigned long *hmm_pfns)
{
	struct hmm_vma_walk *hmm_vma_walk = walk->private;
	struct migrate_vma *migrate = hmm_vma_walk->migrate;
	const unsigned long *src = migrate_vma_src(migrate, addr);
	bool may_fault = hmm_may_fault(hmm_vma_walk);
	unsigned long next;
	int r;

	next = migrate_vma_collect_ptes(migrate, walk->vma, addr, end, ptep,
					hmm_collect_need_write(hmm_vma_walk),
					&hmm_vma_walk->unmapped,
					&hmm_vma_walk->split);
	/* Without a report, only what may need a fault is read */
	if (hmm_vma_walk->noreport && !may_fault)
		addr = next;
	for (; addr < next; addr += PAGE_SIZE, ptep++, hmm_pfns++, src++) {
		if (*src & MIGRATE_PFN_MIGRATE) {
			if (!hmm_vma_walk->noreport)
				*hmm_pfns = hmm_pfn_from_mpfn(*hmm_pfns, *src);
			continue;
		}
		r = hmm_vma_read_pte(walk, addr, addr + PAGE_SIZE,
				     ptep_get(ptep), hmm_pfns, true);
		if (r == HMM_FAULT_PENDING)
			hmm_vma_extend_fault(walk, addr, end, ptep, hmm_pfns);
		if (r)
			return r;
	}
	if (!hmm_vma_walk->split)
		return 0;
	hmm_vma_walk->last = next;
	return HMM_SPLIT_FOLIO;
}

#ifdef CONFIG_ARCH_HAS_PMD_SOFTLEAVES
static int hmm_vma_handle_absent_pmd(struct mm_walk *walk, unsigned long start,
				     unsigned long end, unsigned long *hmm_pfns,
				     pmd_t pmd)
{
	struct hmm_vma_walk *hmm_vma_walk = walk->private;
	struct hmm_range *range = hmm_vma_walk->range;
	unsigned long npages = (end - start) >> PAGE_SHIFT;
	const softleaf_t entry = softleaf_from_pmd(pmd);
	unsigned long addr = start;
	unsigned int required_fault;

	if (softleaf_is_device_private(entry) &&
	    softleaf_to_folio(entry)->pgmap->owner ==
	    hmm_dev_private_owner(hmm_vma_walk)) {
		unsigned long cpu_flags = HMM_PFN_VALID |
			hmm_pfn_flags_order(PMD_SHIFT - PAGE_SHIFT);
		/* The range may start anywhere in the PMD, as for a THP. */
		unsigned long pfn = softleaf_to_pfn(entry) +
				    ((start & ~PMD_MASK) >> PAGE_SHIFT);
		unsigned long i;

		if (softleaf_is_device_private_write(entry))
			cpu_flags |= HMM_PFN_WRITE;

		/*
		 * Fully populate the PFN list though subsequent PFNs could be
		 * inferred, because drivers which are not yet aware of large
		 * folios probably do not support sparsely populated PFN lists.
		 */
		for (i = 0; addr < end; addr += PAGE_SIZE, i++, pfn++) {
			hmm_pfns[i] &= HMM_PFN_INOUT_FLAGS;
			hmm_pfns[i] |= pfn | cpu_flags;
		}

		return 0;
	}

	required_fault = hmm_range_need_fault(hmm_vma_walk, hmm_pfns,
					      npages, 0);
	if (required_fault) {
		if (softleaf_is_device_private(entry))
			return hmm_record_fault(addr, end, required_fault, walk);
		else
			return -EFAULT;
	}

	return hmm_pfns_fill(start, end, range, HMM_PFN_ERROR);
}
#else
static int hmm_vma_handle_absent_pmd(struct mm_walk *walk, unsigned long start,
				     unsigned long end, unsigned long *hmm_pfns,
				     pmd_t pmd)
{
	struct hmm_vma_walk *hmm_vma_walk = walk->private;
	struct hmm_range *range = hmm_vma_walk->range;
	unsigned long npages = (end - start) >> PAGE_SHIFT;

	if (hmm_range_need_fault(hmm_vma_walk, hmm_pfns, npages, 0))
		return -EFAULT;
	return hmm_pfns_fill(start, end, range, HMM_PFN_ERROR);
}
#endif  /* CONFIG_ARCH_HAS_PMD_SOFTLEAVES */

static int hmm_vma_walk_pmd(pmd_t *pmdp,
			    unsigned long start,
			    unsigned long end,
			    struct mm_walk *walk)
{
	struct hmm_vma_walk *hmm_vma_walk = walk->private;
	struct hmm_range *range = hmm_vma_walk->range;
	unsigned long *hmm_pfns =
		&range->hmm_pfns[(start - range->start) >> PAGE_SHIFT];
	unsigned long addr = start;
	pte_t *start_pte, *ptep;
	spinlock_t *ptl = NULL;
	unsigned long npages;
	pmd_t pmd;
	int r = 0;

	/*
	 * When collecting for migration the walk can come back here after
	 * part of the PTE table was handled: everything below is relative to
	 * addr, not start.
	 */
again:
	npages = (end - addr) >> PAGE_SHIFT;
	pmd = pmdp_get_lockless(pmdp);
	if (pmd_none(pmd))
		return hmm_vma_walk_hole(addr, end, -1, walk);

	if (thp_migration_supported() && pmd_is_migration_entry(pmd)) {
		r = hmm_range_need_fault(hmm_vma_walk, hmm_pfns, npages, 0);
		if (r && hmm_vma_walk->collecting)
			return hmm_record_fault(addr, addr + PAGE_SIZE, r, walk);
		if (r) {
			hmm_vma_walk->last = addr;
			pmd_migration_entry_wait(walk->mm, pmdp);
			return -EBUSY;
		}
		return hmm_pfns_fill(addr, end, range, 0);
	}

	if (!pmd_present(pmd)) {
		r = hmm_vma_handle_absent_pmd(walk, addr, end, hmm_pfns, pmd);
		if (r)
			return r;
		goto collect_pmd;
	}

	if (pmd_trans_huge(pmd)) {
		/*
		 * No need to take pmd_lock here, even if some other thread
		 * is splitting the huge pmd we will get that event through
		 * mmu_notifier callback.
		 *
		 * So just read pmd value and check again it's a transparent
		 * huge or device mapping one and compute corresponding pfn
		 * values.
		 */
		pmd = pmdp_get_lockless(pmdp);
		if (!pmd_trans_huge(pmd))
			goto again;

		/* Never fault a huge zero page a migration replaces. */
		if (hmm_pmd_is_hole(walk, addr, pmd))
			goto collect_pmd;
		/* As for PTEs: see hmm_collect_first() */
		if (hmm_collect_first(hmm_vma_walk, addr) &&
		    (pmd_write(pmd) || !hmm_collect_need_write(hmm_vma_walk))) {
			r = hmm_vma_collect_pmd(walk, pmdp, addr, end, hmm_pfns);
			if (r == -EAGAIN || r == -ENOENT)
				goto again;
			if (r || (*migrate_vma_src(hmm_vma_walk->migrate, addr) &
				  MIGRATE_PFN_MIGRATE))
				return r;
			return hmm_vma_handle_pmd(walk, addr, end, hmm_pfns, pmd);
		}
		/*
		 * Not collecting yet: the collection opens the invalidation
		 * first (see hmm_vma_collect_pmd()), then reads the PMD; only
		 * a fault must come before it.
		 */
		if (hmm_want_migrate(hmm_vma_walk, addr) &&
		    !hmm_vma_walk->collecting &&
		    !hmm_range_need_fault(hmm_vma_walk, hmm_pfns, npages,
					  pmd_write(pmd) ? HMM_PFN_VALID |
					  HMM_PFN_WRITE : HMM_PFN_VALID))
			goto collect_pmd;
		r = hmm_vma_handle_pmd(walk, addr, end, hmm_pfns, pmd);
		if (r)
			return r;
		goto collect_pmd;
	}

	/*
	 * We have handled all the valid cases above ie either none, migration,
	 * huge or transparent huge. At this point either it is a valid pmd
	 * entry pointing to pte directory or it is a bad pmd that will not
	 * recover.
	 */
	if (pmd_bad(pmd)) {
		if (hmm_range_need_fault(hmm_vma_walk, hmm_pfns, npages, 0))
			return -EFAULT;
		return hmm_pfns_fill(addr, end, range, HMM_PFN_ERROR);
	}

	/*
	 * Collecting for migration replaces PTEs by migration entries: that
	 * needs the PTE lock, and a TLB flush before it is dropped.
	 */
	if (hmm_vma_walk->migrate) {
		start_pte = pte_offset_map_lock(walk->mm, pmdp, addr, &ptl);
		if (!start_pte)
			goto again;
		lazy_mmu_mode_enable();
		hmm_vma_walk->unmapped = 0;
	} else {
		start_pte = pte_offset_map(pmdp, addr);
		if (!start_pte)
			goto again;
	}
	ptep = start_pte;
	if (!hmm_vma_walk->migrate) {
		/* Without HMM_PFN_REQ_MIGRATE: nothing else per entry */
		for (; addr < end; addr += PAGE_SIZE, ptep++, hmm_pfns++) {
			r = hmm_vma_read_pte(walk, addr, end, ptep_get(ptep),
					     hmm_pfns, false);
			if (r)
				break;
		}
	} else if (hmm_collect_first(hmm_vma_walk, addr)) {
		r = hmm_vma_collect_first_ptes(walk, addr, end, ptep, hmm_pfns);
	} else {
		for (; addr < end; addr += PAGE_SIZE, ptep++, hmm_pfns++) {
			r = hmm_vma_handle_pte(walk, addr, end, pmdp, ptep,
					       hmm_pfns);
			if (r)
				break;
		}
		if (r == HMM_FAULT_PENDING)
			hmm_vma_extend_fault(walk, addr, end, ptep, hmm_pfns);
	}
	if (ptl) {
		if (hmm_vma_walk->unmapped)
			flush_tlb_range(walk->vma, start, end);
		lazy_mmu_mode_disable();
		pte_unmap_unlock(start_pte, ptl);
		ptl = NULL;
	} else {
		pte_unmap(start_pte);
	}

	if (r == HMM_WAIT_MIGRATION) {
		migration_entry_wait(walk->mm, pmdp, addr);
		return -EBUSY;
	}
	if (r == HMM_SPLIT_FOLIO) {
		/* Go on from the folio's page */
		hmm_pfns += (hmm_vma_walk->last - addr) >> PAGE_SHIFT;
		addr = hmm_vma_walk->last;
		hmm_vma_split_folio(hmm_vma_walk, end);
		r = 0;
		goto again;
	}
	return r;

collect_pmd:
	/* -EAGAIN: the pmd changed; -ENOENT: the THP was split */
	r = hmm_vma_collect_pmd(walk, pmdp, addr, end, hmm_pfns);
	if (r == -EAGAIN || r == -ENOENT) {
		r = 0;
		goto again;
	}
	return r;
}

#if defined(CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD)
static inline unsigned long pud_to_hmm_pfn_flags(struct hmm_range *range,
						 pud_t pud)
{
	if (!pud_present(pud))
		return 0;
	return (pud_write(pud) ? (HMM_PFN_VALID | HMM_PFN_WRITE) :
				 HMM_PFN_VALID) |
	       hmm_pfn_flags_order(PUD_SHIFT - PAGE_SHIFT);
}

static int hmm_vma_walk_pud(pud_t *pudp, unsigned long start, unsigned long end,
		struct mm_walk *walk)
{
	struct hmm_vma_walk *hmm_vma_walk = walk->private;
	struct hmm_range *range = hmm_vma_walk->range;
	unsigned long addr = start;
	pud_t pud;
	spinlock_t *ptl = pud_trans_huge_lock(pudp, walk->vma);

	if (!ptl)
		return 0;

	/* Normally we don't want to split the huge page */
	walk->action = ACTION_CONTINUE;

	pud = pudp_get(pudp);
	if (!pud_present(pud)) {
		spin_unlock(ptl);
		return hmm_vma_walk_hole(start, end, -1, walk);
	}

	if (pud_leaf(pud)) {
		unsigned long i, npages, pfn;
		unsigned int required_fault;
		unsigned long *hmm_pfns;
		unsigned long cpu_flags;

		i = (addr - range->start) >> PAGE_SHIFT;
		npages = (end - addr) >> PAGE_SHIFT;
		hmm_pfns = &range->hmm_pfns[i];

		cpu_flags = pud_to_hmm_pfn_flags(range, pud);
		required_fault = hmm_range_need_fault(hmm_vma_walk, hmm_pfns,
						      npages, cpu_flags);
		if (required_fault) {
			spin_unlock(ptl);
			return hmm_record_fault(addr, end, required_fault, walk);
		}

		pfn = pud_pfn(pud) + ((addr & ~PUD_MASK) >> PAGE_SHIFT);
		for (i = 0; i < npages; ++i, ++pfn) {
			hmm_pfns[i] &= HMM_PFN_INOUT_FLAGS;
			hmm_pfns[i] |= pfn | cpu_flags;
		}
		goto out_unlock;
	}

	/* Ask for the PUD to be split */
	walk->action = ACTION_SUBTREE;

out_unlock:
	spin_unlock(ptl);
	return 0;
}
#else
#define hmm_vma_walk_pud	NULL
#endif

#ifdef CONFIG_HUGETLB_PAGE
static int hmm_vma_walk_hugetlb_entry(pte_t *pte, unsigned long hmask,
				      unsigned long start, unsigned long end,
				      struct mm_walk *walk)
{
	unsigned long addr = start, i, pfn;
	struct hmm_vma_walk *hmm_vma_walk = walk->private;
	struct hmm_range *range = hmm_vma_walk->range;
	struct vm_area_struct *vma = walk->vma;
	unsigned int required_fault;
	unsigned long pfn_req_flags;
	unsigned long cpu_flags;
	spinlock_t *ptl;
	pte_t entry;

	ptl = huge_pte_lock(hstate_vma(vma), walk->mm, pte);
	entry = huge_ptep_get(walk->mm, addr, pte);

	i = (start - range->start) >> PAGE_SHIFT;
	pfn_req_flags = range->hmm_pfns[i];
	cpu_flags = pte_to_hmm_pfn_flags(range, entry) |
		    hmm_pfn_flags_order(huge_page_order(hstate_vma(vma)));
	required_fault =
		hmm_pte_need_fault(hmm_vma_walk, pfn_req_flags, cpu_flags);
	if (required_fault) {
		spin_unlock(ptl);
		return hmm_record_fault(addr, end, required_fault, walk);
	}

	pfn = pte_pfn(entry) + ((start & ~hmask) >> PAGE_SHIFT);
	for (; addr < end; addr += PAGE_SIZE, i++, pfn++) {
		range->hmm_pfns[i] &= HMM_PFN_INOUT_FLAGS;
		range->hmm_pfns[i] |= pfn | cpu_flags;
	}

	spin_unlock(ptl);
	return 0;
}
#else
#define hmm_vma_walk_hugetlb_entry NULL
#endif /* CONFIG_HUGETLB_PAGE */

static int hmm_vma_walk_test(unsigned long start, unsigned long end,
			     struct mm_walk *walk)
{
	struct hmm_vma_walk *hmm_vma_walk = walk->private;
	struct hmm_range *range = hmm_vma_walk->range;
	struct vm_area_struct *vma = walk->vma;

	if (!(vma->vm_flags & (VM_IO | VM_PFNMAP)) &&
	    vma->vm_flags & VM_READ)
		return 0;

	/*
	 * Collecting for migration does not need read access (the VMA was
	 * checked by migrate_vma_collect_start()): a PROT_NONE VMA is collected
	 * as migrate_vma_setup() always did, and nothing is faulted in it.
	 */
	if (hmm_vma_walk->migrate)
		return 0;

	/*
	 * vma ranges that don't have struct page backing them or map I/O
	 * devices directly cannot be handled by hmm_range_fault().
	 *
	 * If the vma does not allow read access, then assume that it does not
	 * allow write access either. HMM does not support architectures that
	 * allow write without read.
	 *
	 * If a fault is requested for an unsupported range then it is a hard
	 * failure.
	 */
	if (hmm_range_need_fault(hmm_vma_walk,
				 range->hmm_pfns +
					 ((start - range->start) >> PAGE_SHIFT),
				 (end - start) >> PAGE_SHIFT, 0))
		return -EFAULT;

	hmm_pfns_fill(start, end, range, HMM_PFN_ERROR);

	/* Skip this vma and continue processing the next vma. */
	return 1;
}

static const struct mm_walk_ops hmm_walk_ops = {
	.pud_entry	= hmm_vma_walk_pud,
	.pmd_entry	= hmm_vma_walk_pmd,
	.pte_hole	= hmm_vma_walk_hole,
	.hugetlb_entry	= hmm_vma_walk_hugetlb_entry,
	.test_walk	= hmm_vma_walk_test,
	.walk_lock	= PGWALK_RDLOCK,
};

/*
 * hmm_do_fault - fault in a range recorded by a walk callback
 *
 * Called from the outer loop in hmm_range_fault_locked() after a callback
 * returned HMM_FAULT_PENDING.  At this point we hold only mmap_lock;
 * the page-table spinlock and any hugetlb_vma_lock acquired by the walk
 * framework have already been released by the unwind.
 *
 * Returns -EBUSY on success (all pages faulted, caller should re-walk).
 * Returns a negative errno on failure.
 */
static int hmm_do_fault(struct mm_struct *mm,
			struct hmm_vma_walk *hmm_vma_walk)
{
	unsigned long addr = hmm_vma_walk->last;
	unsigned long end = hmm_vma_walk->end;
	unsigned int required_fault = hmm_vma_walk->required_fault;
	unsigned int fault_flags = FAULT_FLAG_REMOTE;
	struct vm_area_struct *vma;

	if (hmm_vma_walk->locked)
		fault_flags |= FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_KILLABLE;

	vma = vma_lookup(mm, addr);
	if (!vma)
		return -EFAULT;

	if (required_fault & HMM_NEED_WRITE_FAULT) {
		if (!(vma->vm_flags & VM_WRITE))
			return -EPERM;
		fault_flags |= FAULT_FLAG_WRITE;
	}

	for (; addr < end; addr += PAGE_SIZE) {
		vm_fault_t ret;

		ret = handle_mm_fault(vma, addr, fault_flags, NULL);

		if (ret & (VM_FAULT_COMPLETED | VM_FAULT_RETRY)) {
			if (hmm_vma_walk->locked)    /* needed by sparse */
				*hmm_vma_walk->locked = false;
			else
				WARN_ON_ONCE(1);    /* broken fault handler */
			return HMM_FAULT_UNLOCKED;
		}

		if (ret & VM_FAULT_ERROR) {
			int err = vm_fault_to_errno(ret, 0);

			if (WARN_ON(!err))
				err = -EINVAL;

			return err;
		}
	}

	return -EBUSY;
}

static int hmm_range_fault_locked(struct hmm_range *range, bool *locked,
				  bool noreport)
{
	struct hmm_vma_walk hmm_vma_walk = {
		.range = range,
		.locked = locked,
		.last = range->start,
		.noreport = noreport,
	};
	struct mmu_notifier_range nrange;
	struct mm_struct *mm;
	int ret;

	if (range->pfn_flags_mask & HMM_PFN_REQ_MIGRATE)
		return -EINVAL;
	if (range->default_flags & HMM_PFN_REQ_MIGRATE) {
		/*
		 * A driver that lets the mmap lock go cannot keep the VMA, and
		 * with it the collected pages, stable until it migrates them.
		 */
		if (locked)
			return -EINVAL;
		ret = hmm_migrate_start(&hmm_vma_walk, &mm);
		if (ret)
			return ret;
	} else {
		mm = range->notifier->mm;
	}

	mmap_assert_locked(mm);

	/* Without a notifier there is no sequence to check: it cannot fail */
	if (hmm_migrate_open_first(&hmm_vma_walk))
		hmm_migrate_open(&hmm_vma_walk, &nrange);

	do {
		/*
		 * If range is no longer valid force retry.  Once it collected
		 * pages for migration, the walk invalidated the range itself:
		 * see hmm_migrate_open().
		 */
		if (range->notifier && !hmm_vma_walk.collected &&
		    mmu_interval_check_retry(range->notifier,
					     range->notifier_seq)) {
			ret = -EBUSY;
			break;
		}
		/* A migration is within its VMA: no need to look it up */
		if (hmm_vma_walk.migrate)
			ret = walk_page_range_vma(hmm_vma_walk.migrate->vma,
						  hmm_vma_walk.last, range->end,
						  &hmm_walk_ops, &hmm_vma_walk);
		else
			ret = walk_page_range(mm, hmm_vma_walk.last, range->end,
					      &hmm_walk_ops, &hmm_vma_walk);
		if (ret == HMM_COLLECT_START) {
			ret = hmm_migrate_open(&hmm_vma_walk, &nrange);
			if (ret)
				break;
			ret = -EBUSY;
			continue;
		}
		/*
		 * When HMM_FAULT_PENDING is returned a walk callback
		 * recorded a range that needs handle_mm_fault();
		 * hmm_do_fault() runs the fault outside walk_page_range()
		 * (so no page-table or hugetlb_vma_lock is held) and
		 * returns -EBUSY so the loop re-walks and picks up the
		 * now-present entries.  Nothing collected for migration is
		 * held across it.
		 */
		if (ret == HMM_FAULT_PENDING) {
			if (hmm_vma_walk.collecting)
				hmm_migrate_abort(&hmm_vma_walk, &nrange);
			ret = hmm_do_fault(mm, &hmm_vma_walk);
			if (ret == HMM_FAULT_UNLOCKED) {
				ret = fatal_signal_pending(current) ? -EINTR :
								      -EBUSY;
				break;
			}
		}
		if (!ret && hmm_vma_walk.fault_first) {
			hmm_migrate_restart(&hmm_vma_walk);
			ret = -EBUSY;
		}
		/*
		 * When -EBUSY is returned the loop restarts with
		 * hmm_vma_walk.last set to an address that has not been stored
		 * in pfns. All entries < last in the pfn array are set to their
		 * output, and all >= are still at their input values.  So a
		 * page collected for migration is never walked again, but
		 * after hmm_migrate_restart(), which walks the range again
		 * from the start, and faults nothing.
		 */
	} while (ret == -EBUSY);

	if (hmm_vma_walk.migrate)
		hmm_migrate_finish(&hmm_vma_walk, &nrange, ret);
	return ret;
}

/**
 * hmm_range_fault - try to fault some address in a virtual address range
 * @range:	argument structure
 *
 * This is similar to get_user_pages(), except that it can read the page tables
 * without mutating them (ie causing faults).
 *
 * The mmap lock must be held by the caller and will remain held on return.
 * New users should prefer hmm_range_fault_unlocked_timeout() unless they
 * specifically need to keep the mmap lock held across the call. This helper
 * cannot support VMAs whose fault handlers need to drop the mmap lock.
 *
 * With HMM_PFN_REQ_MIGRATE in @range->default_flags, the walk that faults the
 * range also collects its pages for the migration @range->migrate describes,
 * as migrate_vma_setup() would, and reports them with HMM_PFN_MIGRATE.
 * @range->notifier may then be NULL.  Nothing collected is held across a
 * fault: the walk collects until an entry needs a fault, and if it collected
 * anything by then, it puts it all back, faults what the rest of the range
 * needs, then collects the whole range again without faulting.  The
 * collection fires one MMU_NOTIFY_MIGRATE invalidation, with
 * @range->migrate->pgmap_owner as owner, when it reaches the first page it
 * unmaps (before the walk, over the whole range, when there is no notifier
 * and nothing to fault), and @range->notifier_seq is only checked until
 * then: the driver's notifier sets its sequence for that invalidation as for
 * any other, and the entries collected are kept stable by their migration
 * entries and folio locks instead.  On success the caller goes on with
 * migrate_vma_pages() and migrate_vma_finalize() before it drops the mmap
 * lock; on error nothing stays collected: every page is mapped back,
 * unlocked and released.  See Documentation/mm/hmm.rst.
 *
 * Return: 0 on success or one of the following error codes:
 *
 * -EINVAL:	Invalid arguments or mm or virtual address is in an invalid vma
 *		(e.g., device file vma), or HMM_PFN_REQ_MIGRATE with an
 *		invalid @range->migrate or in @range->pfn_flags_mask.
 * -ENOMEM:	Out of memory.
 * -EPERM:	Invalid permission (e.g., asking for write and range is read
 *		only).
 * -EBUSY:	The range has been invalidated and the caller needs to wait for
 *		the invalidation to finish.
 * -EFAULT:     A page was requested to be valid and could not be made valid
 *              ie it has no backing VMA or it is illegal to access
 * -EOPNOTSUPP:	HMM_PFN_REQ_MIGRATE without CONFIG_DEVICE_MIGRATION.
 */
int hmm_range_fault(struct hmm_range *range)
{
	return hmm_range_fault_locked(range, NULL, false);
}
EXPORT_SYMBOL(hmm_range_fault);

/*
 * hmm_range_collect() - hmm_range_fault() for migrate_vma_setup()
 * @range: a range with HMM_PFN_REQ_MIGRATE, whose output array is the
 *	migration's dst array
 *
 * The same walk, but it does not report what it collects: the caller uses
 * src alone, and clears dst after the call.
 *
 * Return: as hmm_range_fault().
 */
int hmm_range_collect(struct hmm_range *range)
{
	return hmm_range_fault_locked(range, NULL, true);
}

/**
 * hmm_range_fault_unlocked_timeout - fault in a range with a retry timeout
 * @range:	argument structure
 * @timeout:	timeout in jiffies for internal -EBUSY retries, or 0 to retry
 *		indefinitely
 *
 * The caller must not hold the mmap lock. The function takes the mmap read
 * lock internally and allows handle_mm_fault() to drop it during faults. If
 * the mmap lock is dropped or the range is invalidated, the function refreshes
 * range->notifier_seq and restarts the walk internally.
 *
 * Passing 0 for @timeout retries indefinitely. A non-zero @timeout is a caller
 * policy limit for repeated mmu-notifier invalidation retries. HMM does not
 * interrupt page fault handling when the timeout expires, but returns -EBUSY
 * if the retry budget is exhausted before a stable range is obtained.
 *
 * HMM_PFN_REQ_MIGRATE is not supported here: collected pages must stay in
 * place, under the mmap lock, until the caller migrates them.
 *
 * Return: 0 on success or one of the error codes documented for
 * hmm_range_fault(). -EINTR is returned if mmap_lock acquisition is
 * interrupted or a fatal signal is pending during retry handling.  -EINVAL is
 * returned for HMM_PFN_REQ_MIGRATE.
 */
int hmm_range_fault_unlocked_timeout(struct hmm_range *range,
				     unsigned long timeout)
{
	struct mm_struct *mm = range->notifier->mm;
	unsigned long deadline = 0;
	bool locked = false;
	int ret;

	if ((range->default_flags | range->pfn_flags_mask) &
	    HMM_PFN_REQ_MIGRATE)
		return -EINVAL;

	do {
		/*
		 * If the previous fault dropped mmap_lock, then the fault
		 * handler made progress. Restart the retry timeout in that
		 * case, but keep the existing deadline for ordinary -EBUSY
		 * retries.
		 */
		if (timeout && !locked)
			deadline = jiffies + timeout;

		range->notifier_seq =
			mmu_interval_read_begin(range->notifier);

		ret = mmap_read_lock_killable(mm);
		if (ret)
			return ret;

		if (check_stable_address_space(mm)) {
			mmap_read_unlock(mm);
			return -EFAULT;
		}

		if (timeout && time_after(jiffies, deadline)) {
			mmap_read_unlock(mm);
			return -EBUSY;
		}

		locked = true;
		ret = hmm_range_fault_locked(range, &locked, false);
		if (locked)
			mmap_read_unlock(mm);
	} while (ret == -EBUSY);

	return ret;
}
EXPORT_SYMBOL(hmm_range_fault_unlocked_timeout);

/**
 * hmm_dma_map_alloc - Allocate HMM map structure
 * @dev: device to allocate structure for
 * @map: HMM map to allocate
 * @nr_entries: number of entries in the map
 * @dma_entry_size: size of the DMA entry in the map
 *
 * Allocate the HMM map structure and all the lists it contains.
 * Return 0 on success, -ENOMEM on failure.
 */
int hmm_dma_map_alloc(struct device *dev, struct hmm_dma_map *map,
		      size_t nr_entries, size_t dma_entry_size)
{
	bool dma_need_sync = false;
	bool use_iova;

	WARN_ON_ONCE(!(nr_entries * PAGE_SIZE / dma_entry_size));

	/*
	 * The HMM API violates our normal DMA buffer ownership rules and can't
	 * transfer buffer ownership.  The dma_addressing_limited() check is a
	 * best approximation to ensure no swiotlb buffering happens.
	 */
#ifdef CONFIG_DMA_NEED_SYNC
	dma_need_sync = !dev_dma_skip_sync(dev);
#endif /* CONFIG_DMA_NEED_SYNC */
	if (dma_need_sync || dma_addressing_limited(dev))
		return -EOPNOTSUPP;

	map->dma_entry_size = dma_entry_size;
	map->pfn_list = kvcalloc(nr_entries, sizeof(*map->pfn_list),
				 GFP_KERNEL | __GFP_NOWARN);
	if (!map->pfn_list)
		return -ENOMEM;

	use_iova = dma_iova_try_alloc(dev, &map->state, 0,
			nr_entries * PAGE_SIZE);
	if (!use_iova && dma_need_unmap(dev)) {
		map->dma_list = kvzalloc_objs(*map->dma_list, nr_entries,
					      GFP_KERNEL | __GFP_NOWARN);
		if (!map->dma_list)
			goto err_dma;
	}
	return 0;

err_dma:
	kvfree(map->pfn_list);
	return -ENOMEM;
}
EXPORT_SYMBOL_GPL(hmm_dma_map_alloc);

/**
 * hmm_dma_map_free - iFree HMM map structure
 * @dev: device to free structure from
 * @map: HMM map containing the various lists and state
 *
 * Free the HMM map structure and all the lists it contains.
 */
void hmm_dma_map_free(struct device *dev, struct hmm_dma_map *map)
{
	if (dma_use_iova(&map->state))
		dma_iova_free(dev, &map->state);
	kvfree(map->pfn_list);
	kvfree(map->dma_list);
}
EXPORT_SYMBOL_GPL(hmm_dma_map_free);

/**
 * hmm_dma_map_pfn - Map a physical HMM page to DMA address
 * @dev: Device to map the page for
 * @map: HMM map
 * @idx: Index into the PFN and dma address arrays
 * @p2pdma_state: PCI P2P state.
 *
 * dma_alloc_iova() allocates IOVA based on the size specified by their use in
 * iova->size. Call this function after IOVA allocation to link whole @page
 * to get the DMA address. Note that very first call to this function
 * will have @offset set to 0 in the IOVA space allocated from
 * dma_alloc_iova(). For subsequent calls to this function on same @iova,
 * @offset needs to be advanced by the caller with the size of previous
 * page that was linked + DMA address returned for the previous page that was
 * linked by this function.
 */
dma_addr_t hmm_dma_map_pfn(struct device *dev, struct hmm_dma_map *map,
			   size_t idx,
			   struct pci_p2pdma_map_state *p2pdma_state)
{
	struct dma_iova_state *state = &map->state;
	dma_addr_t *dma_addrs = map->dma_list;
	unsigned long *pfns = map->pfn_list;
	struct page *page = hmm_pfn_to_page(pfns[idx]);
	phys_addr_t paddr = hmm_pfn_to_phys(pfns[idx]);
	size_t offset = idx * map->dma_entry_size;
	unsigned long attrs = DMA_ATTR_REQUIRE_COHERENT;
	dma_addr_t dma_addr;
	int ret;

	if ((pfns[idx] & HMM_PFN_DMA_MAPPED) &&
	    !(pfns[idx] & HMM_PFN_P2PDMA_BUS)) {
		/*
		 * We are in this flow when there is a need to resync flags,
		 * for example when page was already linked in prefetch call
		 * with READ flag and now we need to add WRITE flag
		 *
		 * This page was already programmed to HW and we don't want/need
		 * to unlink and link it again just to resync flags.
		 */
		if (dma_use_iova(state))
			return state->addr + offset;

		/*
		 * Without dma_need_unmap, the dma_addrs array is NULL, thus we
		 * need to regenerate the address below even if there already
		 * was a mapping. But !dma_need_unmap implies that the
		 * mapping stateless, so this is fine.
		 */
		if (dma_need_unmap(dev))
			return dma_addrs[idx];

		/* Continue to remapping */
	}

	switch (pci_p2pdma_state(p2pdma_state, dev, page)) {
	case PCI_P2PDMA_MAP_NONE:
		break;
	case PCI_P2PDMA_MAP_THRU_HOST_BRIDGE:
		attrs |= DMA_ATTR_MMIO;
		pfns[idx] |= HMM_PFN_P2PDMA;
		break;
	case PCI_P2PDMA_MAP_BUS_ADDR:
		pfns[idx] |= HMM_PFN_P2PDMA_BUS | HMM_PFN_DMA_MAPPED;
		return pci_p2pdma_bus_addr_map(p2pdma_state->mem, paddr);
	default:
		return DMA_MAPPING_ERROR;
	}

	if (dma_use_iova(state)) {
		ret = dma_iova_link(dev, state, paddr, offset,
				    map->dma_entry_size, DMA_BIDIRECTIONAL,
				    attrs);
		if (ret)
			goto error;

		ret = dma_iova_sync(dev, state, offset, map->dma_entry_size);
		if (ret) {
			dma_iova_unlink(dev, state, offset, map->dma_entry_size,
					DMA_BIDIRECTIONAL, attrs);
			goto error;
		}

		dma_addr = state->addr + offset;
	} else {
		if (WARN_ON_ONCE(dma_need_unmap(dev) && !dma_addrs))
			goto error;

		dma_addr = dma_map_phys(dev, paddr, map->dma_entry_size,
					DMA_BIDIRECTIONAL, attrs);
		if (dma_mapping_error(dev, dma_addr))
			goto error;

		if (dma_need_unmap(dev))
			dma_addrs[idx] = dma_addr;
	}
	pfns[idx] |= HMM_PFN_DMA_MAPPED;
	return dma_addr;
error:
	pfns[idx] &= ~HMM_PFN_P2PDMA;
	return DMA_MAPPING_ERROR;

}
EXPORT_SYMBOL_GPL(hmm_dma_map_pfn);

/**
 * hmm_dma_unmap_pfn - Unmap a physical HMM page from DMA address
 * @dev: Device to unmap the page from
 * @map: HMM map
 * @idx: Index of the PFN to unmap
 *
 * Returns true if the PFN was mapped and has been unmapped, false otherwise.
 */
bool hmm_dma_unmap_pfn(struct device *dev, struct hmm_dma_map *map, size_t idx)
{
	const unsigned long valid_dma = HMM_PFN_VALID | HMM_PFN_DMA_MAPPED;
	struct dma_iova_state *state = &map->state;
	dma_addr_t *dma_addrs = map->dma_list;
	unsigned long *pfns = map->pfn_list;
	unsigned long attrs = DMA_ATTR_REQUIRE_COHERENT;

	if ((pfns[idx] & valid_dma) != valid_dma)
		return false;

	if (pfns[idx] & HMM_PFN_P2PDMA)
		attrs |= DMA_ATTR_MMIO;

	if (pfns[idx] & HMM_PFN_P2PDMA_BUS)
		; /* no need to unmap bus address P2P mappings */
	else if (dma_use_iova(state))
		dma_iova_unlink(dev, state, idx * map->dma_entry_size,
				map->dma_entry_size, DMA_BIDIRECTIONAL, attrs);
	else if (dma_need_unmap(dev))
		dma_unmap_phys(dev, dma_addrs[idx], map->dma_entry_size,
			       DMA_BIDIRECTIONAL, attrs);

	pfns[idx] &=
		~(HMM_PFN_DMA_MAPPED | HMM_PFN_P2PDMA | HMM_PFN_P2PDMA_BUS);
	return true;
}
EXPORT_SYMBOL_GPL(hmm_dma_unmap_pfn);

#include "tests/hmm-kunit.h"
