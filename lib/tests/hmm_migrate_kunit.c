// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for hmm_range_fault() with HMM_PFN_REQ_MIGRATE, which faults a
 * range and collects its pages for migration in one page table walk, and for
 * migrate_vma_setup(), which is built on it.
 *
 * Each case maps memory in a user address space of its own, collects it,
 * checks what was reported and what the page tables hold, then migrates it
 * to no destination page, which puts everything back, and checks that
 * nothing leaked: mappings, data, folio locks and references.
 */

#include <kunit/test.h>
#include <linux/hmm.h>
#include <linux/highmem.h>
#include <linux/huge_mm.h>
#include <linux/leafops.h>
#include <linux/memremap.h>
#include <linux/migrate.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/mmu_notifier.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/shmem_fs.h>
#include <linux/swap.h>
#include <linux/uaccess.h>

#define HMM_KUNIT_NONE		ULONG_MAX	/* no page mapped */
#define HMM_KUNIT_PMD_NR	(PMD_SIZE >> PAGE_SHIFT)
/* What runs every case, for the skip messages */
#define HMM_KUNIT_ALL	"run every case with: kunit.py run --arch=x86_64 " \
			"--kunitconfig=lib/tests/hmm_migrate_x86_64.kunitconfig"

static unsigned long hmm_kunit_val(unsigned long addr)
{
	return addr ^ 0x484d4d6b756e6974UL;
}

static void hmm_kunit_check_addr(struct kunit *test, unsigned long addr)
{
	KUNIT_ASSERT_NE_MSG(test, addr, 0, "kunit_vm_mmap() failed");
	KUNIT_ASSERT_FALSE_MSG(test, IS_ERR_VALUE(addr), "vm_mmap(): %ld",
			       (long)addr);
}

/* Map @len bytes of private anonymous memory at an @align aligned address. */
static unsigned long hmm_kunit_map(struct kunit *test, unsigned long len,
				   unsigned long align)
{
	unsigned long addr;

	addr = kunit_vm_mmap(test, NULL, 0, len + align - PAGE_SIZE,
			     PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, 0);
	hmm_kunit_check_addr(test, addr);
	return ALIGN(addr, align);
}

/* Write hmm_kunit_val() into each page, which faults it in. */
static void hmm_kunit_fill(struct kunit *test, unsigned long addr,
			   unsigned long npages)
{
	for (; npages--; addr += PAGE_SIZE)
		KUNIT_ASSERT_EQ(test, put_user(hmm_kunit_val(addr),
					       (unsigned long __user *)addr), 0);
}

static bool hmm_kunit_data_ok(unsigned long addr)
{
	unsigned long val;

	return !get_user(val, (unsigned long __user *)addr) &&
	       val == hmm_kunit_val(addr);
}

/* Page table lookups, with the mmap lock held (or on an idle mm). */
static pmd_t *hmm_kunit_pmdp(struct mm_struct *mm, unsigned long addr)
{
	pgd_t *pgd = pgd_offset(mm, addr);
	p4d_t *p4d;
	pud_t *pud;

	if (pgd_none(pgdp_get(pgd)))
		return NULL;
	p4d = p4d_offset(pgd, addr);
	if (p4d_none(p4dp_get(p4d)))
		return NULL;
	pud = pud_offset(p4d, addr);
	if (pud_none(pudp_get(pud)) || pud_leaf(pudp_get(pud)))
		return NULL;
	return pmd_offset(pud, addr);
}

static pmd_t hmm_kunit_pmd(struct mm_struct *mm, unsigned long addr)
{
	pmd_t *pmdp = hmm_kunit_pmdp(mm, addr);

	return pmdp ? pmdp_get(pmdp) : __pmd(0);
}

/* The PTE for @addr, none if there is no PTE table. */
static pte_t hmm_kunit_pte(struct mm_struct *mm, unsigned long addr)
{
	pmd_t *pmdp = hmm_kunit_pmdp(mm, addr);
	pte_t *ptep, pte = __pte(0);
	spinlock_t *ptl;	/* of the PTE table */

	if (!pmdp)
		return pte;
	ptep = pte_offset_map_lock(mm, pmdp, addr, &ptl);
	if (!ptep)
		return pte;
	pte = ptep_get(ptep);
	pte_unmap_unlock(ptep, ptl);
	return pte;
}

/* The pfn @addr maps, by a PMD or a PTE, or HMM_KUNIT_NONE. */
static unsigned long hmm_kunit_pfn(struct mm_struct *mm, unsigned long addr)
{
	pmd_t pmd = hmm_kunit_pmd(mm, addr);
	pte_t pte;

	if (pmd_present(pmd) && pmd_leaf(pmd))
		return pmd_pfn(pmd) + ((addr & ~PMD_MASK) >> PAGE_SHIFT);
	pte = hmm_kunit_pte(mm, addr);
	return pte_present(pte) ? pte_pfn(pte) : HMM_KUNIT_NONE;
}

/*
 * A driver's notifier: it sets the sequence for every invalidation, as
 * mmu_interval_set_seq() requires, its own migrations' included, and counts
 * those.
 */
struct hmm_kunit_notifier {
	struct mmu_interval_notifier mni;
	int own_migrate;
	/* Where the last of those started */
	unsigned long migrate_start;
};

static bool hmm_kunit_invalidate(struct mmu_interval_notifier *mni,
				 const struct mmu_notifier_range *range,
				 unsigned long cur_seq)
{
	struct hmm_kunit_notifier *n =
		container_of(mni, struct hmm_kunit_notifier, mni);

	if (range->event == MMU_NOTIFY_MIGRATE && range->owner == n) {
		n->own_migrate++;
		n->migrate_start = range->start;
	}
	mmu_interval_set_seq(mni, cur_seq);
	return true;
}

static const struct mmu_interval_notifier_ops hmm_kunit_notifier_ops = {
	.invalidate = hmm_kunit_invalidate,
};

static void hmm_kunit_notifier_remove(void *data)
{
	mmu_interval_notifier_remove(data);
}

static struct hmm_kunit_notifier *
hmm_kunit_notifier(struct kunit *test, unsigned long start, unsigned long len)
{
	struct hmm_kunit_notifier *n;
	int ret;

	n = kunit_kzalloc(test, sizeof(*n), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, n);
	ret = mmu_interval_notifier_insert(&n->mni, current->mm, start, len,
					   &hmm_kunit_notifier_ops);
	KUNIT_ASSERT_EQ(test, ret, 0);
	ret = kunit_add_action_or_reset(test, hmm_kunit_notifier_remove,
					&n->mni);
	KUNIT_ASSERT_EQ(test, ret, 0);
	return n;
}

/* hmm_range_fault() as drivers call it, retrying while invalidated. */
static int hmm_kunit_fault(struct hmm_range *range)
{
	int ret;

	do {
		range->notifier_seq = mmu_interval_read_begin(range->notifier);
		mmap_read_lock(current->mm);
		ret = hmm_range_fault(range);
		mmap_read_unlock(current->mm);
	} while (ret == -EBUSY);
	return ret;
}

static void hmm_migrate_test_pfn_layout(struct kunit *test)
{
	const unsigned long pfn = 0x12345;
	unsigned long order, hmm_pfn;

	const unsigned int nflags = IS_ENABLED(CONFIG_64BIT) ? 7 : 6;

	/* 64-bit only: 32-bit keeps the layout, and the pfn bits, of 7.3 */
	KUNIT_EXPECT_EQ(test, HMM_PFN_MIGRATE, IS_ENABLED(CONFIG_64BIT) ?
			BIT(BITS_PER_LONG - 7) : 0);
	KUNIT_EXPECT_EQ(test, HMM_PFN_REQ_MIGRATE, HMM_PFN_MIGRATE);
	KUNIT_EXPECT_EQ(test, HMM_PFN_ORDER_SHIFT, BITS_PER_LONG - 5 - nflags);
	/* The flags, then the order field, then the pfn */
	KUNIT_EXPECT_EQ(test, ~HMM_PFN_FLAGS, BIT(HMM_PFN_ORDER_SHIFT) - 1);
	KUNIT_EXPECT_EQ(test, hweight_long(HMM_PFN_FLAGS & ~HMM_PFN_ORDER_MASK),
			nflags);
	KUNIT_EXPECT_EQ(test, HMM_PFN_ORDER_MASK >> HMM_PFN_ORDER_SHIFT,
			BIT(HMM_PFN_ORDER_BITS) - 1);

	/* Every order decodes with every flag set, and leaves the pfn alone */
	for (order = 0; order < BIT(HMM_PFN_ORDER_BITS); order++) {
		hmm_pfn = pfn | (HMM_PFN_FLAGS & ~HMM_PFN_ORDER_MASK) |
			  order << HMM_PFN_ORDER_SHIFT;
		KUNIT_EXPECT_EQ(test, hmm_pfn_to_map_order(hmm_pfn), order);
		KUNIT_EXPECT_EQ(test, hmm_pfn_to_phys(hmm_pfn), PFN_PHYS(pfn));
	}
	KUNIT_EXPECT_EQ(test, hmm_pfn_to_map_order(pfn | HMM_PFN_MIGRATE), 0);

#ifdef CONFIG_MIGRATION
	/* The src encoding the walk fills in, and the new migrate_vma flag */
	KUNIT_EXPECT_EQ(test, MIGRATE_PFN_MIGRATE | MIGRATE_PFN_WRITE |
			MIGRATE_PFN_COMPOUND, BIT(1) | BIT(3) | BIT(4));
	KUNIT_EXPECT_EQ(test, migrate_pfn(pfn), pfn << 6 | MIGRATE_PFN_VALID);
	KUNIT_EXPECT_EQ(test, MIGRATE_VMA_FAULT &
			(MIGRATE_VMA_SELECT_SYSTEM |
			 MIGRATE_VMA_SELECT_DEVICE_PRIVATE |
			 MIGRATE_VMA_SELECT_DEVICE_COHERENT |
			 MIGRATE_VMA_SELECT_COMPOUND), 0);
#endif
}

static void hmm_migrate_test_invalid(struct kunit *test)
{
	unsigned long addr, pfns[2] = {}, pfn;
	struct hmm_range range = {};
	int ret;

	addr = hmm_kunit_map(test, 2 * PAGE_SIZE, PAGE_SIZE);
	hmm_kunit_fill(test, addr, 2);
	range.notifier = &hmm_kunit_notifier(test, addr, 2 * PAGE_SIZE)->mni;
	range.start = addr;
	range.end = addr + 2 * PAGE_SIZE;
	range.hmm_pfns = pfns;

	/* Not per page */
	range.default_flags = HMM_PFN_REQ_FAULT;
	range.pfn_flags_mask = HMM_PFN_REQ_MIGRATE;
	pfns[0] = HMM_PFN_REQ_MIGRATE;
	KUNIT_EXPECT_EQ(test, hmm_kunit_fault(&range), -EINVAL);
	KUNIT_EXPECT_EQ(test, hmm_range_fault_unlocked_timeout(&range, 0),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, pfns[0], HMM_PFN_REQ_MIGRATE);

	/* Not where the mmap lock may be dropped */
	range.pfn_flags_mask = 0;
	range.default_flags = HMM_PFN_REQ_FAULT | HMM_PFN_REQ_MIGRATE;
	KUNIT_EXPECT_EQ(test, hmm_range_fault_unlocked_timeout(&range, 0),
			-EINVAL);

	/* Not without a migrate_vma, nor without CONFIG_DEVICE_MIGRATION */
	mmap_read_lock(current->mm);
	ret = hmm_range_fault(&range);
	pfn = hmm_kunit_pfn(current->mm, addr);
	mmap_read_unlock(current->mm);
	KUNIT_EXPECT_EQ(test, ret, IS_ENABLED(CONFIG_DEVICE_MIGRATION) ?
			-EINVAL : -EOPNOTSUPP);
	KUNIT_EXPECT_EQ(test, pfns[0], HMM_PFN_REQ_MIGRATE);

#ifdef CONFIG_DEVICE_MIGRATION
	{
		unsigned long src[3] = { 1, 1, 1 }, dst[3];
		struct migrate_vma mig = {
			.start = addr, .end = addr + PAGE_SIZE,
			.src = src, .dst = dst,
			.flags = MIGRATE_VMA_SELECT_SYSTEM,
		};

		/* Nor with one for another range, or past its VMA */
		range.migrate = &mig;
		mmap_read_lock(current->mm);
		mig.vma = vma_lookup(current->mm, addr);
		KUNIT_EXPECT_EQ(test, hmm_range_fault(&range), -EINVAL);
		mig.end = addr + 3 * PAGE_SIZE;
		range.end = mig.end;
		KUNIT_EXPECT_EQ(test, hmm_range_fault(&range), -EINVAL);
		mmap_read_unlock(current->mm);
		KUNIT_EXPECT_EQ(test, src[0] & src[1] & src[2], 1);
		range.end = addr + 2 * PAGE_SIZE;
		range.migrate = NULL;
	}
#endif

	/* The range was left alone */
	range.default_flags = HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE;
	KUNIT_EXPECT_EQ(test, hmm_kunit_fault(&range), 0);
	KUNIT_EXPECT_EQ(test, pfns[0], pfn | HMM_PFN_VALID | HMM_PFN_WRITE);
	KUNIT_EXPECT_TRUE(test, hmm_kunit_data_ok(addr));
}

#ifdef CONFIG_DEVICE_MIGRATION

/* Fault @addr in for read (mapping the zero page if it was empty). */
static unsigned long hmm_kunit_read(struct kunit *test, unsigned long addr)
{
	unsigned long val = 0;

	KUNIT_ASSERT_EQ(test, get_user(val, (unsigned long __user *)addr), 0);
	return val;
}

/* Does @pfn hold data of the test (rather than nothing or a zero page)? */
static bool hmm_kunit_own_pfn(unsigned long pfn)
{
	return pfn != HMM_KUNIT_NONE && !is_zero_pfn(pfn) &&
	       !is_huge_zero_folio(pfn_folio(pfn));
}

struct hmm_kunit_migrate {
	struct migrate_vma mig;
	struct hmm_range range;
	unsigned long *pfns;
	/*
	 * What was mapped before, the folio references, or -1, and whether
	 * the folio was large
	 */
	unsigned long *orig;
	int *refs;
	bool *large;
};

/* Record what @npages pages at @start map, and prepare to collect them. */
static void hmm_kunit_migrate_init(struct kunit *test,
				   struct hmm_kunit_migrate *m,
				   unsigned long start, unsigned long npages,
				   unsigned long default_flags,
				   unsigned long select)
{
	unsigned long i;

	memset(m, 0, sizeof(*m));
	m->mig.src = kunit_kcalloc(test, npages, sizeof(long), GFP_KERNEL);
	m->mig.dst = kunit_kcalloc(test, npages, sizeof(long), GFP_KERNEL);
	m->pfns = kunit_kcalloc(test, npages, sizeof(long), GFP_KERNEL);
	m->orig = kunit_kcalloc(test, npages, sizeof(long), GFP_KERNEL);
	m->refs = kunit_kcalloc(test, npages, sizeof(int), GFP_KERNEL);
	m->large = kunit_kcalloc(test, npages, sizeof(bool), GFP_KERNEL);
	KUNIT_ASSERT_TRUE(test, m->mig.src && m->mig.dst && m->pfns &&
			  m->orig && m->refs && m->large);
	m->mig.start = start;
	m->mig.end = start + npages * PAGE_SIZE;
	m->mig.flags = select;
	m->range.start = m->mig.start;
	m->range.end = m->mig.end;
	m->range.hmm_pfns = m->pfns;
	m->range.default_flags = HMM_PFN_REQ_MIGRATE | default_flags;
	m->range.migrate = &m->mig;

	/* Faulted folios sit in per-CPU LRU batches, which hold a reference */
	lru_add_drain_all();
	mmap_read_lock(current->mm);
	for (i = 0; i < npages; i++) {
		m->orig[i] = hmm_kunit_pfn(current->mm, start + i * PAGE_SIZE);
		if (!hmm_kunit_own_pfn(m->orig[i])) {
			m->refs[i] = -1;
			continue;
		}
		m->refs[i] = folio_ref_count(pfn_folio(m->orig[i]));
		m->large[i] = folio_test_large(pfn_folio(m->orig[i]));
	}
	mmap_read_unlock(current->mm);
}

/*
 * Take the mmap lock and collect, with @setup migrate_vma_setup(), otherwise
 * hmm_range_fault(); hmm_kunit_restore() drops the lock.
 */
static void hmm_kunit_collect(struct kunit *test, struct hmm_kunit_migrate *m,
			      bool setup, int ret, unsigned long cpages)
{
	mmap_read_lock(current->mm);
	m->mig.vma = vma_lookup(current->mm, m->mig.start);
	if (setup)
		KUNIT_EXPECT_EQ(test, migrate_vma_setup(&m->mig), ret);
	else
		KUNIT_EXPECT_EQ(test, hmm_range_fault(&m->range), ret);
	KUNIT_EXPECT_EQ(test, m->mig.cpages, cpages);
}

/* Migrate to no page, which restores all, and drop the mmap lock. */
static void hmm_kunit_migrate_none(struct hmm_kunit_migrate *m)
{
	migrate_vma_pages(&m->mig);
	migrate_vma_finalize(&m->mig);
	mmap_read_unlock(current->mm);
}

/*
 * The first @npages pages map what they mapped, with their data, and their
 * folios are unlocked and have the references they had.
 */
static void hmm_kunit_expect_restored(struct kunit *test,
				      struct hmm_kunit_migrate *m,
				      unsigned long npages)
{
	unsigned long i, moved = 0, locked = 0, refs = 0, data = 0;
	struct folio *folio;

	lru_add_drain_all();
	mmap_read_lock(current->mm);
	for (i = 0; i < npages; i++) {
		if (hmm_kunit_pfn(current->mm, m->mig.start + i * PAGE_SIZE) !=
		    m->orig[i])
			moved++;
		if (!hmm_kunit_own_pfn(m->orig[i]))
			continue;
		folio = pfn_folio(m->orig[i]);
		locked += folio_test_locked(folio);
		if (m->refs[i] < 0)
			continue;
		/* A split folio's pages are held by their mappings alone */
		if (m->large[i] && !folio_test_large(folio))
			refs += folio_ref_count(folio) != folio_mapcount(folio);
		else
			refs += folio_ref_count(folio) != m->refs[i];
	}
	mmap_read_unlock(current->mm);
	for (i = 0; i < npages; i++)
		if (hmm_kunit_own_pfn(m->orig[i]))
			data += !hmm_kunit_data_ok(m->mig.start + i * PAGE_SIZE);
	KUNIT_EXPECT_EQ_MSG(test, moved, 0, "pages not mapped back");
	KUNIT_EXPECT_EQ_MSG(test, locked, 0, "folios left locked");
	KUNIT_EXPECT_EQ_MSG(test, refs, 0, "folio references changed");
	KUNIT_EXPECT_EQ_MSG(test, data, 0, "pages with other data");
}

static void hmm_kunit_restore(struct kunit *test, struct hmm_kunit_migrate *m,
			      unsigned long npages)
{
	hmm_kunit_migrate_none(m);
	hmm_kunit_expect_restored(test, m, npages);
}

static bool hmm_kunit_is_migration(pte_t pte, unsigned long pfn)
{
	softleaf_t entry = softleaf_from_pte(pte);

	return softleaf_is_migration(entry) && softleaf_to_pfn(entry) == pfn;
}

/* Page @i, mapping @pfn, was collected: reported, locked, unmapped. */
static void hmm_kunit_expect_collected(struct kunit *test,
				       struct hmm_kunit_migrate *m,
				       unsigned long i, unsigned long pfn,
				       bool write)
{
	pte_t pte = hmm_kunit_pte(current->mm, m->mig.start + i * PAGE_SIZE);

	KUNIT_EXPECT_EQ(test, m->pfns[i], pfn | HMM_PFN_VALID |
			HMM_PFN_MIGRATE | (write ? HMM_PFN_WRITE : 0));
	KUNIT_EXPECT_EQ(test, m->mig.src[i], migrate_pfn(pfn) |
			MIGRATE_PFN_MIGRATE | (write ? MIGRATE_PFN_WRITE : 0));
	KUNIT_EXPECT_TRUE(test, hmm_kunit_is_migration(pte, pfn));
	KUNIT_EXPECT_TRUE(test, folio_test_locked(pfn_folio(pfn)));
}

/*
 * Of three pages, the first and last were collected and the middle one was
 * not: it is reported, and stays mapped, as it was.
 */
static void hmm_kunit_expect_middle_left(struct kunit *test,
					 struct hmm_kunit_migrate *m)
{
	hmm_kunit_expect_collected(test, m, 0, m->orig[0], true);
	hmm_kunit_expect_collected(test, m, 2, m->orig[2], true);
	KUNIT_EXPECT_EQ(test, m->pfns[1], m->orig[1] | HMM_PFN_VALID |
			HMM_PFN_WRITE);
	KUNIT_EXPECT_EQ(test, m->mig.src[1], 0);
	KUNIT_EXPECT_EQ(test, hmm_kunit_pfn(current->mm,
					    m->mig.start + PAGE_SIZE),
			m->orig[1]);
}

/* Page @i was collected as a hole, to be populated, and left alone. */
static void hmm_kunit_expect_hole(struct kunit *test,
				  struct hmm_kunit_migrate *m, unsigned long i,
				  unsigned long src)
{
	unsigned long addr = m->mig.start + i * PAGE_SIZE;

	KUNIT_EXPECT_EQ(test, m->pfns[i], HMM_PFN_MIGRATE);
	KUNIT_EXPECT_EQ(test, m->mig.src[i], src);
	KUNIT_EXPECT_EQ(test, hmm_kunit_pfn(current->mm, addr), m->orig[i]);
}

/* Never-touched, zero-page and present pages in one walk. */
static void hmm_migrate_test_collect(struct kunit *test)
{
	struct hmm_kunit_notifier *n;
	struct hmm_kunit_migrate m;
	unsigned long addr, seq;

	addr = hmm_kunit_map(test, 4 * PAGE_SIZE, PAGE_SIZE);
	hmm_kunit_read(test, addr + PAGE_SIZE);
	hmm_kunit_fill(test, addr + 2 * PAGE_SIZE, 2);
	hmm_kunit_migrate_init(test, &m, addr, 4, HMM_PFN_REQ_FAULT |
			       HMM_PFN_REQ_WRITE, MIGRATE_VMA_SELECT_SYSTEM);
	KUNIT_ASSERT_EQ(test, m.orig[0], HMM_KUNIT_NONE);
	KUNIT_ASSERT_TRUE(test, is_zero_pfn(m.orig[1]));

	/* range->notifier is optional */
	n = hmm_kunit_notifier(test, addr, 4 * PAGE_SIZE);
	m.mig.pgmap_owner = n;
	m.range.notifier = &n->mni;
	seq = mmu_interval_read_begin(&n->mni);
	m.range.notifier_seq = seq;
	/* A driver reuses dst: stale entries would be taken for its pages */
	memset(m.mig.dst, 0xff, 4 * sizeof(long));

	hmm_kunit_collect(test, &m, false, 0, 4);
	KUNIT_EXPECT_NULL(test, memchr_inv(m.mig.dst, 0, 4 * sizeof(long)));
	/* Neither faulted for write, nor at all */
	hmm_kunit_expect_hole(test, &m, 0, MIGRATE_PFN_MIGRATE);
	hmm_kunit_expect_hole(test, &m, 1, MIGRATE_PFN_MIGRATE);
	hmm_kunit_expect_collected(test, &m, 2, m.orig[2], true);
	hmm_kunit_expect_collected(test, &m, 3, m.orig[3], true);
	/* One invalidation, which the driver sees as any other */
	KUNIT_EXPECT_EQ(test, n->own_migrate, 1);
	KUNIT_EXPECT_TRUE(test, mmu_interval_read_retry(&n->mni, seq));
	hmm_kunit_restore(test, &m, 4);
}

/*
 * Where the collection's invalidation starts: for migrate_vma_setup() without
 * MIGRATE_VMA_FAULT (no sequence to check, nothing to fault) before the walk,
 * at the start of the range, so that the walk runs once; when it may fault,
 * at the first page it unmaps, not at the holes before it.
 */
static void hmm_migrate_test_open_first(struct kunit *test)
{
	struct hmm_kunit_notifier *n;
	struct hmm_kunit_migrate m;
	unsigned long addr;

	addr = hmm_kunit_map(test, 4 * PAGE_SIZE, PAGE_SIZE);
	hmm_kunit_fill(test, addr + 2 * PAGE_SIZE, 2);
	n = hmm_kunit_notifier(test, addr, 4 * PAGE_SIZE);

	hmm_kunit_migrate_init(test, &m, addr, 4, 0, MIGRATE_VMA_SELECT_SYSTEM);
	m.mig.pgmap_owner = n;
	hmm_kunit_collect(test, &m, true, 0, 4);
	KUNIT_EXPECT_EQ(test, n->own_migrate, 1);
	KUNIT_EXPECT_EQ(test, n->migrate_start, addr);
	hmm_kunit_restore(test, &m, 4);

	n->own_migrate = 0;
	hmm_kunit_migrate_init(test, &m, addr, 4, 0, MIGRATE_VMA_SELECT_SYSTEM |
			       MIGRATE_VMA_FAULT);
	m.mig.pgmap_owner = n;
	hmm_kunit_collect(test, &m, true, 0, 4);
	KUNIT_EXPECT_EQ(test, n->own_migrate, 1);
	KUNIT_EXPECT_EQ(test, n->migrate_start, addr + 2 * PAGE_SIZE);
	hmm_kunit_restore(test, &m, 4);
}

/*
 * A folio someone else holds locked is not collected, and is reported as it
 * is mapped: by walks that collect first, one that may fault and one that
 * cannot, and by one with per-page requests, which reads each entry before
 * it collects it.
 */
static void hmm_migrate_test_locked_folio(struct kunit *test)
{
	static const unsigned long flags[] = {
		HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE, 0, HMM_PFN_REQ_FAULT,
	};
	struct hmm_kunit_migrate m;
	struct folio *locked;
	unsigned long addr;
	unsigned int f;

	for (f = 0; f < ARRAY_SIZE(flags); f++) {
		addr = hmm_kunit_map(test, 3 * PAGE_SIZE, PAGE_SIZE);
		hmm_kunit_fill(test, addr, 3);
		hmm_kunit_migrate_init(test, &m, addr, 3, flags[f],
				       MIGRATE_VMA_SELECT_SYSTEM);
		/* The last: per-page write requests, none of them set */
		if (f == 2)
			m.range.pfn_flags_mask = HMM_PFN_REQ_WRITE;
		locked = pfn_folio(m.orig[1]);
		KUNIT_ASSERT_TRUE(test, folio_trylock(locked));

		hmm_kunit_collect(test, &m, false, 0, 2);
		hmm_kunit_expect_middle_left(test, &m);
		KUNIT_EXPECT_EQ(test, folio_ref_count(locked), m.refs[1]);
		hmm_kunit_migrate_none(&m);
		/* Its lock is left to its owner */
		KUNIT_EXPECT_TRUE(test, folio_test_locked(locked));
		folio_unlock(locked);
		hmm_kunit_expect_restored(test, &m, 3);
	}
}

/*
 * A shmem file of @npages mapped privately with @prot at the returned address
 * and shared at *@shared; its first @ndata pages hold the hmm_kunit_val() of
 * the private address.
 */
static unsigned long hmm_kunit_map_file(struct kunit *test,
					unsigned long npages,
					unsigned long ndata, unsigned long prot,
					unsigned long *shared)
{
	unsigned long len = npages * PAGE_SIZE, addr, i;
	unsigned long __user *uptr;
	struct file *file;

	file = shmem_file_setup("hmm_migrate_kunit", len, EMPTY_VMA_FLAGS);
	KUNIT_ASSERT_FALSE(test, IS_ERR(file));
	*shared = kunit_vm_mmap(test, file, 0, len, PROT_READ | PROT_WRITE,
				MAP_SHARED, 0);
	addr = kunit_vm_mmap(test, file, 0, len, prot, MAP_PRIVATE, 0);
	fput(file);
	hmm_kunit_check_addr(test, *shared);
	hmm_kunit_check_addr(test, addr);
	for (i = 0; i < ndata * PAGE_SIZE; i += PAGE_SIZE) {
		uptr = (unsigned long __user *)(*shared + i);
		KUNIT_ASSERT_EQ(test, put_user(hmm_kunit_val(addr + i), uptr),
				0);
	}
	return addr;
}

/* An error after pages were collected leaves none collected. */
static void hmm_migrate_test_errors(struct kunit *test)
{
	struct hmm_kunit_notifier *n;
	struct hmm_kunit_migrate m;
	unsigned long addr, shared, i;

	/* Page cache pages in a read-only private mapping, and a hole */
	addr = hmm_kunit_map_file(test, 4, 3, PROT_READ, &shared);
	for (i = 0; i < 3; i++)
		hmm_kunit_read(test, addr + i * PAGE_SIZE);
	hmm_kunit_migrate_init(test, &m, addr, 4, HMM_PFN_REQ_FAULT,
			       MIGRATE_VMA_SELECT_SYSTEM);
	n = hmm_kunit_notifier(test, addr, 4 * PAGE_SIZE);
	m.mig.pgmap_owner = n;

	/* The hole of the file is not faulted: nothing collects it */
	hmm_kunit_collect(test, &m, false, 0, 3);
	for (i = 0; i < 3; i++)
		hmm_kunit_expect_collected(test, &m, i, m.orig[i], false);
	KUNIT_EXPECT_EQ(test, m.pfns[3], 0);
	KUNIT_EXPECT_EQ(test, m.mig.src[3], 0);
	KUNIT_EXPECT_EQ(test, hmm_kunit_pfn(current->mm, addr + 3 * PAGE_SIZE),
			HMM_KUNIT_NONE);
	hmm_kunit_restore(test, &m, 4);

	/*
	 * Pages 0-1 are collected, page 2 needs a write fault, which fails
	 * with -EPERM: nothing stays collected or reported as collected.
	 */
	m.range.pfn_flags_mask = HMM_PFN_REQ_WRITE;
	m.pfns[2] = HMM_PFN_REQ_WRITE;
	n->own_migrate = 0;
	hmm_kunit_collect(test, &m, false, -EPERM, 0);
	KUNIT_EXPECT_NULL(test, memchr_inv(m.mig.src, 0, 4 * sizeof(long)));
	for (i = 0; i < 4; i++)
		KUNIT_EXPECT_FALSE(test, m.pfns[i] & HMM_PFN_MIGRATE);
	KUNIT_EXPECT_EQ(test, n->own_migrate, 1);
	hmm_kunit_restore(test, &m, 4);
}

/*
 * Read-only pages of a writable VMA (page cache pages of a private mapping):
 * migrate_vma_setup() collects them as they are, and with MIGRATE_VMA_FAULT
 * breaks COW first.
 */
static void hmm_migrate_test_write_fault(struct kunit *test)
{
	unsigned long addr, shared, new, val, i;
	struct hmm_kunit_migrate m;
	pte_t pte;

	addr = hmm_kunit_map_file(test, 2, 2, PROT_READ | PROT_WRITE, &shared);
	hmm_kunit_read(test, addr);
	hmm_kunit_read(test, addr + PAGE_SIZE);
	hmm_kunit_migrate_init(test, &m, addr, 2, 0,
			       MIGRATE_VMA_SELECT_SYSTEM);

	memset(m.mig.dst, 0xff, 2 * sizeof(long));
	hmm_kunit_collect(test, &m, true, 0, 2);
	/* dst was lent to hmm_range_fault() and is cleared */
	KUNIT_EXPECT_NULL(test, memchr_inv(m.mig.dst, 0, 2 * sizeof(long)));
	for (i = 0; i < 2; i++) {
		pte = hmm_kunit_pte(current->mm, addr + i * PAGE_SIZE);
		KUNIT_EXPECT_EQ(test, m.mig.src[i], migrate_pfn(m.orig[i]) |
				MIGRATE_PFN_MIGRATE);
		KUNIT_EXPECT_TRUE(test, hmm_kunit_is_migration(pte, m.orig[i]));
	}
	hmm_kunit_restore(test, &m, 2);

	m.mig.flags |= MIGRATE_VMA_FAULT;
	hmm_kunit_collect(test, &m, true, 0, 2);
	for (i = 0; i < 2; i++) {
		new = m.mig.src[i] >> MIGRATE_PFN_SHIFT;
		KUNIT_EXPECT_NE(test, new, m.orig[i]);
		KUNIT_EXPECT_EQ(test, m.mig.src[i], migrate_pfn(new) |
				MIGRATE_PFN_MIGRATE | MIGRATE_PFN_WRITE);
		KUNIT_EXPECT_TRUE(test, folio_test_anon(pfn_folio(new)));
		m.orig[i] = new;
		m.refs[i] = 1;
	}
	hmm_kunit_restore(test, &m, 2);
	/* Written to the copies, not the file */
	for (i = 0; i < 2; i++) {
		KUNIT_EXPECT_EQ(test, put_user(0UL, (unsigned long __user *)
					       (addr + i * PAGE_SIZE)), 0);
		KUNIT_EXPECT_EQ(test, get_user(val, (unsigned long __user *)
					       (shared + i * PAGE_SIZE)), 0);
		KUNIT_EXPECT_EQ(test, val, hmm_kunit_val(addr + i * PAGE_SIZE));
	}
}

/*
 * A fork()ed copy of the test's mm, in a task that sleeps until the test
 * ends.  It is not a kernel thread: a kernel thread has no mm of its own.
 */
struct hmm_kunit_child {
	struct completion ready, release, done;
	struct mm_struct *mm;
};

static int hmm_kunit_child_fn(void *data)
{
	struct hmm_kunit_child *child = data;

	child->mm = current->mm;
	mmget(child->mm);
	complete(&child->ready);
	wait_for_completion(&child->release);
	complete(&child->done);
	do_exit(0);
}

static void hmm_kunit_child_release(void *data)
{
	struct hmm_kunit_child *child = data;

	complete(&child->release);
	wait_for_completion(&child->done);
	mmput(child->mm);
}

/*
 * Read the child's page tables with its mmap lock, which the sleeping child
 * never takes: the trylock cannot fail, and it nests in the test's own mmap
 * lock without a lock order between the two.
 */
static unsigned long hmm_kunit_child_pfn(struct kunit *test,
					 struct hmm_kunit_child *child,
					 unsigned long addr, pte_t *pte)
{
	unsigned long pfn;

	KUNIT_ASSERT_TRUE(test, mmap_read_trylock(child->mm));
	pfn = hmm_kunit_pfn(child->mm, addr);
	if (pte)
		*pte = hmm_kunit_pte(child->mm, addr);
	mmap_read_unlock(child->mm);
	return pfn;
}

static struct hmm_kunit_child *hmm_kunit_fork(struct kunit *test)
{
	struct kernel_clone_args args = {
		.flags = CLONE_UNTRACED,
		.exit_signal = SIGCHLD,
		.fn = hmm_kunit_child_fn,
	};
	struct hmm_kunit_child *child;
	int ret;

	child = kunit_kzalloc(test, sizeof(*child), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, child);
	init_completion(&child->ready);
	init_completion(&child->release);
	init_completion(&child->done);
	args.fn_arg = child;
	KUNIT_ASSERT_GT(test, kernel_clone(&args), 0);
	wait_for_completion(&child->ready);
	ret = kunit_add_action_or_reset(test, hmm_kunit_child_release, child);
	KUNIT_ASSERT_EQ(test, ret, 0);
	return child;
}

/*
 * Pages COW-shared with a child are collected shared (the child's mapping
 * too) for read, and copied first for write.
 */
static void hmm_migrate_test_cow(struct kunit *test)
{
	struct hmm_kunit_child *child;
	struct hmm_kunit_migrate m;
	unsigned long addr, a, new, i;
	void *kaddr;
	pte_t pte;

	addr = hmm_kunit_map(test, 2 * PAGE_SIZE, PAGE_SIZE);
	hmm_kunit_fill(test, addr, 2);
	child = hmm_kunit_fork(test);
	hmm_kunit_migrate_init(test, &m, addr, 2, HMM_PFN_REQ_FAULT,
			       MIGRATE_VMA_SELECT_SYSTEM);

	hmm_kunit_collect(test, &m, false, 0, 2);
	for (i = 0, a = addr; i < 2; i++, a += PAGE_SIZE) {
		hmm_kunit_expect_collected(test, &m, i, m.orig[i], false);
		hmm_kunit_child_pfn(test, child, a, &pte);
		KUNIT_EXPECT_TRUE(test, hmm_kunit_is_migration(pte, m.orig[i]));
	}
	hmm_kunit_restore(test, &m, 2);
	for (i = 0, a = addr; i < 2; i++, a += PAGE_SIZE)
		KUNIT_EXPECT_EQ(test, hmm_kunit_child_pfn(test, child, a, NULL),
				m.orig[i]);

	m.range.default_flags |= HMM_PFN_REQ_WRITE;
	hmm_kunit_collect(test, &m, false, 0, 2);
	for (i = 0, a = addr; i < 2; i++, a += PAGE_SIZE) {
		new = m.pfns[i] & ~HMM_PFN_FLAGS;
		KUNIT_EXPECT_NE(test, new, m.orig[i]);
		hmm_kunit_expect_collected(test, &m, i, new, true);
		KUNIT_EXPECT_EQ(test, hmm_kunit_child_pfn(test, child, a, NULL),
				m.orig[i]);
		KUNIT_EXPECT_EQ(test, folio_mapcount(pfn_folio(m.orig[i])), 1);
		/* The child's copy keeps the data */
		kaddr = kmap_local_pfn(m.orig[i]);
		KUNIT_EXPECT_EQ(test, *(unsigned long *)kaddr, hmm_kunit_val(a));
		kunmap_local(kaddr);
		m.orig[i] = new;
		m.refs[i] = 1;
	}
	hmm_kunit_restore(test, &m, 2);
}

/*
 * Entries that need the same fault are faulted as one run: collecting
 * COW-shared pages for write takes one call that faults them all and one
 * that collects them, not a call per page.  Counted as a driver sees it,
 * calling again while its notifier reports invalidations.
 */
static void hmm_migrate_test_fault_run(struct kunit *test)
{
	const unsigned long npages = 8;
	struct hmm_kunit_notifier *n;
	struct hmm_kunit_migrate m;
	unsigned long addr, new, calls = 0, i;
	int ret;

	addr = hmm_kunit_map(test, npages * PAGE_SIZE, PAGE_SIZE);
	hmm_kunit_fill(test, addr, npages);
	hmm_kunit_fork(test);
	hmm_kunit_migrate_init(test, &m, addr, npages, HMM_PFN_REQ_FAULT |
			       HMM_PFN_REQ_WRITE, MIGRATE_VMA_SELECT_SYSTEM);
	n = hmm_kunit_notifier(test, addr, npages * PAGE_SIZE);
	m.mig.pgmap_owner = n;
	m.range.notifier = &n->mni;

	do {
		m.range.notifier_seq = mmu_interval_read_begin(&n->mni);
		mmap_read_lock(current->mm);
		m.mig.vma = vma_lookup(current->mm, addr);
		ret = hmm_range_fault(&m.range);
		calls++;
		if (ret == -EBUSY)
			mmap_read_unlock(current->mm);
	} while (ret == -EBUSY && calls <= npages);
	KUNIT_EXPECT_EQ_MSG(test, calls, 2,
			    "calls to hmm_range_fault() for %lu COW pages",
			    npages);
	if (ret == -EBUSY)
		return;
	KUNIT_EXPECT_EQ(test, ret, 0);
	/* The first call only faulted: it invalidated nothing for migration */
	KUNIT_EXPECT_EQ(test, n->own_migrate, 1);
	KUNIT_EXPECT_EQ(test, m.mig.cpages, npages);
	for (i = 0; i < npages; i++) {
		new = m.pfns[i] & ~HMM_PFN_FLAGS;
		KUNIT_EXPECT_NE(test, new, m.orig[i]);
		hmm_kunit_expect_collected(test, &m, i, new, true);
		m.orig[i] = new;
		m.refs[i] = 1;
	}
	hmm_kunit_restore(test, &m, npages);
}

/*
 * A fault needed after pages were collected: they are put back first, then
 * the rest of the range is faulted and the whole range collected again, in
 * one call, although the driver's notifier sets its sequence for the
 * migration's own invalidations.
 */
static void hmm_migrate_test_fault_after_collect(struct kunit *test)
{
	struct hmm_kunit_notifier *n;
	struct hmm_kunit_migrate m;
	unsigned long addr, new, i;

	addr = hmm_kunit_map(test, 4 * PAGE_SIZE, PAGE_SIZE);
	hmm_kunit_fill(test, addr, 4);
	hmm_kunit_fork(test);
	/* Pages 0-1 are the parent's own again, 2-3 stay COW-shared */
	hmm_kunit_fill(test, addr, 2);
	hmm_kunit_migrate_init(test, &m, addr, 4, HMM_PFN_REQ_FAULT |
			       HMM_PFN_REQ_WRITE, MIGRATE_VMA_SELECT_SYSTEM);
	n = hmm_kunit_notifier(test, addr, 4 * PAGE_SIZE);
	m.mig.pgmap_owner = n;
	m.range.notifier = &n->mni;
	m.range.notifier_seq = mmu_interval_read_begin(&n->mni);

	hmm_kunit_collect(test, &m, false, 0, 4);
	/* Collected up to page 2, put back, then collected whole */
	KUNIT_EXPECT_EQ(test, n->own_migrate, 2);
	for (i = 0; i < 2; i++)
		hmm_kunit_expect_collected(test, &m, i, m.orig[i], true);
	for (i = 2; i < 4; i++) {
		new = m.pfns[i] & ~HMM_PFN_FLAGS;
		KUNIT_EXPECT_NE(test, new, m.orig[i]);
		hmm_kunit_expect_collected(test, &m, i, new, true);
		m.orig[i] = new;
		m.refs[i] = 1;
	}
	hmm_kunit_restore(test, &m, 4);
}

/*
 * Nothing is faulted that the migration would not collect: COW-shared pages
 * stay shared when only device memory is selected.
 */
static void hmm_migrate_test_no_useless_fault(struct kunit *test)
{
	struct hmm_kunit_migrate m;
	unsigned long addr, i;

	addr = hmm_kunit_map(test, 2 * PAGE_SIZE, PAGE_SIZE);
	hmm_kunit_fill(test, addr, 2);
	hmm_kunit_fork(test);
	hmm_kunit_migrate_init(test, &m, addr, 2, HMM_PFN_REQ_FAULT |
			       HMM_PFN_REQ_WRITE,
			       MIGRATE_VMA_SELECT_DEVICE_PRIVATE);

	hmm_kunit_collect(test, &m, false, 0, 0);
	for (i = 0; i < 2; i++) {
		/* Reported read-only as they are, and left so */
		KUNIT_EXPECT_EQ(test, m.pfns[i], m.orig[i] | HMM_PFN_VALID);
		KUNIT_EXPECT_EQ(test, m.mig.src[i], 0);
		KUNIT_EXPECT_EQ(test, hmm_kunit_pfn(current->mm,
						    addr + i * PAGE_SIZE),
				m.orig[i]);
	}
	hmm_kunit_restore(test, &m, 2);
}

/*
 * A PROT_NONE VMA: its pages are collected as they are, reported with their
 * pfn as src has them although hmm reads no access rights in their protnone
 * PTEs, and nothing is faulted, which could not make them accessible.
 */
static void hmm_migrate_test_prot_none(struct kunit *test)
{
	const unsigned long flags[] = {
		0, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE,
	};
	unsigned long addr, val = 0x1234, i;
	struct hmm_kunit_migrate m;
	pte_t pte;

	if (!IS_ENABLED(CONFIG_NUMA_BALANCING))
		kunit_skip(test, "needs CONFIG_NUMA_BALANCING for protnone PTEs; "
			   HMM_KUNIT_ALL);
	addr = kunit_vm_mmap(test, NULL, 0, 2 * PAGE_SIZE, PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS, 0);
	hmm_kunit_check_addr(test, addr);
	/* As ptrace does: FOLL_FORCE writes through PROT_NONE */
	KUNIT_ASSERT_EQ(test, access_remote_vm(current->mm, addr, &val,
					       sizeof(val),
					       FOLL_FORCE | FOLL_WRITE),
			(int)sizeof(val));
	mmap_read_lock(current->mm);
	pte = hmm_kunit_pte(current->mm, addr);
	mmap_read_unlock(current->mm);
	KUNIT_ASSERT_TRUE(test, pte_present(pte) && pte_protnone(pte));

	for (i = 0; i < ARRAY_SIZE(flags); i++) {
		hmm_kunit_migrate_init(test, &m, addr, 2, flags[i],
				       MIGRATE_VMA_SELECT_SYSTEM);
		hmm_kunit_collect(test, &m, false, 0, 2);
		KUNIT_EXPECT_EQ(test, m.pfns[0], m.orig[0] | HMM_PFN_VALID |
				HMM_PFN_MIGRATE);
		KUNIT_EXPECT_EQ(test, m.mig.src[0], migrate_pfn(m.orig[0]) |
				MIGRATE_PFN_MIGRATE);
		hmm_kunit_expect_hole(test, &m, 1, MIGRATE_PFN_MIGRATE);
		hmm_kunit_migrate_none(&m);
		mmap_read_lock(current->mm);
		KUNIT_EXPECT_EQ(test, hmm_kunit_pfn(current->mm, addr),
				m.orig[0]);
		mmap_read_unlock(current->mm);
	}
	val = 0;
	KUNIT_EXPECT_EQ(test, access_remote_vm(current->mm, addr, &val,
					       sizeof(val), FOLL_FORCE),
			(int)sizeof(val));
	KUNIT_EXPECT_EQ(test, val, 0x1234);
}

/* An unaligned start: migrate_vma_setup() clears all of dst it lent out. */
static void hmm_migrate_test_unaligned(struct kunit *test)
{
	struct hmm_kunit_migrate m;
	unsigned long addr, i;

	addr = hmm_kunit_map(test, 2 * PAGE_SIZE, PAGE_SIZE);
	hmm_kunit_fill(test, addr, 2);
	hmm_kunit_migrate_init(test, &m, addr, 2, 0,
			       MIGRATE_VMA_SELECT_SYSTEM);
	m.mig.start = addr + PAGE_SIZE / 2;
	memset(m.mig.dst, 0xff, 2 * sizeof(long));

	hmm_kunit_collect(test, &m, true, 0, 2);
	KUNIT_EXPECT_EQ(test, m.mig.start, addr);
	KUNIT_EXPECT_NULL(test, memchr_inv(m.mig.dst, 0, 2 * sizeof(long)));
	for (i = 0; i < 2; i++)
		KUNIT_EXPECT_EQ(test, m.mig.src[i], migrate_pfn(m.orig[i]) |
				MIGRATE_PFN_MIGRATE | MIGRATE_PFN_WRITE);
	hmm_kunit_restore(test, &m, 2);
}

/* Ask for THPs whatever the system default (transparent_hugepage/enabled) */
static void hmm_kunit_madv_hugepage(struct kunit *test, unsigned long addr,
				    unsigned long len)
{
	KUNIT_ASSERT_EQ(test, do_madvise(current->mm, addr, len, MADV_HUGEPAGE),
			0);
}

static void hmm_kunit_need_thp(struct kunit *test)
{
	if (!IS_ENABLED(CONFIG_TRANSPARENT_HUGEPAGE) ||
	    !thp_migration_supported())
		kunit_skip(test, "needs THP and THP migration; " HMM_KUNIT_ALL);
}

/* The huge zero page and an empty PMD are holes too. */
static void hmm_migrate_test_pmd_holes(struct kunit *test)
{
	const unsigned long nr = 2 * HMM_KUNIT_PMD_NR;
	struct mm_struct *mm = current->mm;
	struct hmm_kunit_migrate m;
	unsigned long addr, i;
	bool zero;

	hmm_kunit_need_thp(test);
	addr = hmm_kunit_map(test, 2 * PMD_SIZE, PMD_SIZE);
	hmm_kunit_madv_hugepage(test, addr, 2 * PMD_SIZE);
	hmm_kunit_read(test, addr);
	mmap_read_lock(mm);
	zero = is_huge_zero_pmd(hmm_kunit_pmd(mm, addr));
	mmap_read_unlock(mm);
	if (!zero)
		kunit_skip(test, "no huge zero page (transparent_hugepage/use_zero_page?)");

	/* With SELECT_COMPOUND: a compound entry per PMD */
	hmm_kunit_migrate_init(test, &m, addr, nr, HMM_PFN_REQ_FAULT,
			       MIGRATE_VMA_SELECT_SYSTEM |
			       MIGRATE_VMA_SELECT_COMPOUND);
	hmm_kunit_collect(test, &m, false, 0, 2);
	for (i = 0; i < nr; i++)
		hmm_kunit_expect_hole(test, &m, i, i % HMM_KUNIT_PMD_NR ? 0 :
				      MIGRATE_PFN_MIGRATE |
				      MIGRATE_PFN_COMPOUND);
	KUNIT_EXPECT_TRUE(test, is_huge_zero_pmd(hmm_kunit_pmd(mm, addr)));
	hmm_kunit_restore(test, &m, nr);

	/* Without: an entry per page */
	m.mig.flags = MIGRATE_VMA_SELECT_SYSTEM;
	hmm_kunit_collect(test, &m, false, 0, nr);
	for (i = 0; i < nr; i++)
		hmm_kunit_expect_hole(test, &m, i, MIGRATE_PFN_MIGRATE);
	KUNIT_EXPECT_TRUE(test, is_huge_zero_pmd(hmm_kunit_pmd(mm, addr)));
	hmm_kunit_restore(test, &m, nr);
}

/*
 * A never-touched range with no page table below its PUD entry: the walk
 * reports one hole for both PMDs, and each PMD gets its compound entry (and
 * counts), as when the PMD table exists.
 */
static void hmm_migrate_test_pmd_hole_span(struct kunit *test)
{
	const unsigned long nr = 2 * HMM_KUNIT_PMD_NR;
	struct mm_struct *mm = current->mm;
	struct hmm_kunit_migrate m;
	unsigned long addr, i;

	hmm_kunit_need_thp(test);
	/*
	 * Reserve a PUD-aligned range inaccessible (committing no memory), and
	 * map two PMDs at its start: nothing populates the rest of the range.
	 */
	addr = kunit_vm_mmap(test, NULL, 0, 2 * PUD_SIZE - PAGE_SIZE, PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, 0);
	hmm_kunit_check_addr(test, addr);
	addr = ALIGN(addr, PUD_SIZE);
	hmm_kunit_check_addr(test, kunit_vm_mmap(test, NULL, addr, 2 * PMD_SIZE,
						 PROT_READ | PROT_WRITE,
						 MAP_PRIVATE | MAP_ANONYMOUS |
						 MAP_FIXED, 0));
	mmap_read_lock(mm);
	KUNIT_ASSERT_NULL(test, hmm_kunit_pmdp(mm, addr));
	mmap_read_unlock(mm);

	hmm_kunit_migrate_init(test, &m, addr, nr, 0,
			       MIGRATE_VMA_SELECT_SYSTEM |
			       MIGRATE_VMA_SELECT_COMPOUND);
	hmm_kunit_collect(test, &m, false, 0, 2);
	for (i = 0; i < nr; i++)
		hmm_kunit_expect_hole(test, &m, i, i % HMM_KUNIT_PMD_NR ? 0 :
				      MIGRATE_PFN_MIGRATE |
				      MIGRATE_PFN_COMPOUND);
	hmm_kunit_restore(test, &m, nr);
}

/* Map a PMD-aligned THP holding data; return its address. */
static unsigned long hmm_kunit_thp(struct kunit *test, unsigned long *head)
{
	unsigned long addr;
	pmd_t pmd;

	hmm_kunit_need_thp(test);
	addr = hmm_kunit_map(test, PMD_SIZE, PMD_SIZE);
	hmm_kunit_madv_hugepage(test, addr, PMD_SIZE);
	hmm_kunit_fill(test, addr, HMM_KUNIT_PMD_NR);
	mmap_read_lock(current->mm);
	pmd = hmm_kunit_pmd(current->mm, addr);
	mmap_read_unlock(current->mm);
	if (!pmd_present(pmd) || !pmd_trans_huge(pmd))
		kunit_skip(test, "no PMD-mapped THP (THP disabled, or none free)");
	*head = pmd_pfn(pmd);
	return addr;
}

/*
 * A THP in a PMD range with SELECT_COMPOUND is collected whole, by a walk that
 * may fault and by one that cannot (both collect first); one that is locked
 * is reported as it is mapped.
 */
static void hmm_migrate_test_thp_whole(struct kunit *test)
{
	const unsigned long order_flags = (unsigned long)
		(PMD_SHIFT - PAGE_SHIFT) << HMM_PFN_ORDER_SHIFT;
	static const unsigned long flags[] = {
		HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE, 0,
	};
	struct hmm_kunit_migrate m;
	unsigned long addr, head, i;
	struct folio *folio;
	unsigned int f;
	int refs;
	pmd_t pmd;

	for (f = 0; f < ARRAY_SIZE(flags); f++) {
		addr = hmm_kunit_thp(test, &head);
		folio = pfn_folio(head);
		hmm_kunit_migrate_init(test, &m, addr, HMM_KUNIT_PMD_NR,
				       flags[f], MIGRATE_VMA_SELECT_SYSTEM |
				       MIGRATE_VMA_SELECT_COMPOUND);
		refs = folio_ref_count(folio);

		hmm_kunit_collect(test, &m, false, 0, 1);
		KUNIT_EXPECT_EQ(test, m.mig.src[0], migrate_pfn(head) |
				MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND |
				MIGRATE_PFN_WRITE);
		i = (HMM_KUNIT_PMD_NR - 1) * sizeof(long);
		KUNIT_EXPECT_NULL(test, memchr_inv(m.mig.src + 1, 0, i));
		for (i = 0; i < HMM_KUNIT_PMD_NR; i++)
			KUNIT_EXPECT_EQ(test, m.pfns[i], (head + i) |
					HMM_PFN_VALID | HMM_PFN_WRITE |
					HMM_PFN_MIGRATE | order_flags);
		pmd = hmm_kunit_pmd(current->mm, addr);
		KUNIT_EXPECT_TRUE(test, pmd_is_migration_entry(pmd));
		KUNIT_EXPECT_EQ(test, softleaf_to_pfn(softleaf_from_pmd(pmd)),
				head);
		KUNIT_EXPECT_EQ(test, folio_order(folio), PMD_SHIFT - PAGE_SHIFT);
		KUNIT_EXPECT_TRUE(test, folio_test_locked(folio));
		hmm_kunit_restore(test, &m, HMM_KUNIT_PMD_NR);

		mmap_read_lock(current->mm);
		pmd = hmm_kunit_pmd(current->mm, addr);
		mmap_read_unlock(current->mm);
		KUNIT_EXPECT_TRUE(test, pmd_trans_huge(pmd));
		KUNIT_EXPECT_EQ(test, folio_ref_count(folio), refs);
	}

	/* One someone else holds locked is not collected, and reported */
	addr = hmm_kunit_thp(test, &head);
	folio = pfn_folio(head);
	hmm_kunit_migrate_init(test, &m, addr, HMM_KUNIT_PMD_NR, 0,
			       MIGRATE_VMA_SELECT_SYSTEM |
			       MIGRATE_VMA_SELECT_COMPOUND);
	KUNIT_ASSERT_TRUE(test, folio_trylock(folio));
	hmm_kunit_collect(test, &m, false, 0, 0);
	i = HMM_KUNIT_PMD_NR * sizeof(long);
	KUNIT_EXPECT_NULL(test, memchr_inv(m.mig.src, 0, i));
	for (i = 0; i < HMM_KUNIT_PMD_NR; i++)
		KUNIT_EXPECT_EQ(test, m.pfns[i], (head + i) | HMM_PFN_VALID |
				HMM_PFN_WRITE | order_flags);
	hmm_kunit_migrate_none(&m);
	folio_unlock(folio);
	mmap_read_lock(current->mm);
	pmd = hmm_kunit_pmd(current->mm, addr);
	mmap_read_unlock(current->mm);
	KUNIT_EXPECT_TRUE(test, pmd_trans_huge(pmd));
}

struct hmm_kunit_split_param {
	const char *desc;
	unsigned long select, first, npages;
};

static const struct hmm_kunit_split_param hmm_kunit_split_params[] = {
	{ "PMD range, no SELECT_COMPOUND", MIGRATE_VMA_SELECT_SYSTEM,
	  0, HMM_KUNIT_PMD_NR },
	{ "half PMD range", MIGRATE_VMA_SELECT_SYSTEM |
	  MIGRATE_VMA_SELECT_COMPOUND, HMM_KUNIT_PMD_NR / 2,
	  HMM_KUNIT_PMD_NR / 2 },
	{ "one page", MIGRATE_VMA_SELECT_SYSTEM |
	  MIGRATE_VMA_SELECT_COMPOUND, 1, 1 },
};

KUNIT_ARRAY_PARAM_DESC(hmm_kunit_split, hmm_kunit_split_params, desc);

/*
 * Otherwise the THP is split and its pages are collected one by one.  The
 * split invalidates the range for the driver's notifier too, once the
 * collection has begun: the one call succeeds, with one MIGRATE
 * invalidation.
 */
static void hmm_migrate_test_thp_split(struct kunit *test)
{
	const struct hmm_kunit_split_param *p = test->param_value;
	unsigned long addr, head, pfn, i;
	struct hmm_kunit_notifier *n;
	struct hmm_kunit_migrate m;

	addr = hmm_kunit_thp(test, &head);
	hmm_kunit_migrate_init(test, &m, addr + p->first * PAGE_SIZE,
			       p->npages, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE,
			       p->select);
	n = hmm_kunit_notifier(test, addr, PMD_SIZE);
	m.mig.pgmap_owner = n;
	m.range.notifier = &n->mni;
	m.range.notifier_seq = mmu_interval_read_begin(&n->mni);

	hmm_kunit_collect(test, &m, false, 0, p->npages);
	KUNIT_EXPECT_EQ(test, n->own_migrate, 1);
	KUNIT_EXPECT_FALSE(test, folio_test_large(pfn_folio(head)));
	/* Reported as mapped by PTEs now: order 0 */
	for (i = 0; i < p->npages; i++)
		hmm_kunit_expect_collected(test, &m, i, head + p->first + i,
					   true);
	/* The rest of the THP stays mapped */
	for (i = 0; i < HMM_KUNIT_PMD_NR; i++) {
		if (i >= p->first && i < p->first + p->npages)
			continue;
		pfn = hmm_kunit_pfn(current->mm, addr + i * PAGE_SIZE);
		KUNIT_EXPECT_EQ(test, pfn, head + i);
	}
	hmm_kunit_restore(test, &m, p->npages);
}

/* A PTE-mapped THP is split, even with SELECT_COMPOUND. */
static void hmm_migrate_test_thp_pte_mapped(struct kunit *test)
{
	const unsigned long hole = 5;
	struct hmm_kunit_migrate m;
	unsigned long addr, head, i;

	addr = hmm_kunit_thp(test, &head);
	/* Zapping one page maps the rest of the THP with PTEs */
	KUNIT_ASSERT_EQ(test, do_madvise(current->mm, addr + hole * PAGE_SIZE,
					 PAGE_SIZE, MADV_DONTNEED), 0);
	hmm_kunit_migrate_init(test, &m, addr, HMM_KUNIT_PMD_NR,
			       HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE,
			       MIGRATE_VMA_SELECT_SYSTEM |
			       MIGRATE_VMA_SELECT_COMPOUND);
	if (m.orig[0] != head || !folio_test_large(pfn_folio(head)) ||
	    m.orig[hole] != HMM_KUNIT_NONE)
		kunit_skip(test, "MADV_DONTNEED left no PTE-mapped THP");

	hmm_kunit_collect(test, &m, false, 0, HMM_KUNIT_PMD_NR);
	KUNIT_EXPECT_FALSE(test, folio_test_large(pfn_folio(head)));
	for (i = 0; i < HMM_KUNIT_PMD_NR; i++) {
		if (i == hole)
			hmm_kunit_expect_hole(test, &m, i, MIGRATE_PFN_MIGRATE);
		else
			hmm_kunit_expect_collected(test, &m, i, head + i,
						   true);
	}
	hmm_kunit_restore(test, &m, HMM_KUNIT_PMD_NR);
}

/*
 * A page with a reference nobody else knows of is collected, then refused
 * when the collection unmaps it, as migrate_vma_setup() refuses a pinned
 * page: it is mapped back and unlocked, its src entry is cleared and its
 * hmm pfn loses HMM_PFN_MIGRATE; nothing else keeps a reference on it.
 */
static void hmm_migrate_test_refused(struct kunit *test)
{
	struct hmm_kunit_migrate m;
	struct folio *held;
	unsigned long addr;

	addr = hmm_kunit_map(test, 3 * PAGE_SIZE, PAGE_SIZE);
	hmm_kunit_fill(test, addr, 3);
	hmm_kunit_migrate_init(test, &m, addr, 3, HMM_PFN_REQ_FAULT |
			       HMM_PFN_REQ_WRITE, MIGRATE_VMA_SELECT_SYSTEM);
	held = pfn_folio(m.orig[1]);
	folio_get(held);

	hmm_kunit_collect(test, &m, false, 0, 2);
	hmm_kunit_expect_middle_left(test, &m);
	KUNIT_EXPECT_FALSE(test, folio_test_locked(held));
	hmm_kunit_migrate_none(&m);
	folio_put(held);
	hmm_kunit_expect_restored(test, &m, 3);
}

/*
 * A THP that cannot be split (someone holds a reference) where it cannot be
 * collected whole: none of it is collected, it stays mapped by its PMD, and
 * it is reported as it is mapped.
 */
static void hmm_migrate_test_split_fail(struct kunit *test)
{
	const unsigned long order_flags = (unsigned long)
		(PMD_SHIFT - PAGE_SHIFT) << HMM_PFN_ORDER_SHIFT;
	unsigned long addr, head, i, bad = 0;
	struct hmm_kunit_migrate m;
	struct folio *folio;
	pmd_t pmd;

	addr = hmm_kunit_thp(test, &head);
	folio = pfn_folio(head);
	hmm_kunit_migrate_init(test, &m, addr, HMM_KUNIT_PMD_NR,
			       HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE,
			       MIGRATE_VMA_SELECT_SYSTEM);
	folio_get(folio);

	hmm_kunit_collect(test, &m, false, 0, 0);
	KUNIT_EXPECT_NULL(test, memchr_inv(m.mig.src, 0,
					   HMM_KUNIT_PMD_NR * sizeof(long)));
	for (i = 0; i < HMM_KUNIT_PMD_NR; i++)
		bad += m.pfns[i] != ((head + i) | HMM_PFN_VALID |
				     HMM_PFN_WRITE | order_flags);
	KUNIT_EXPECT_EQ(test, bad, 0);
	pmd = hmm_kunit_pmd(current->mm, addr);
	KUNIT_EXPECT_TRUE(test, pmd_trans_huge(pmd) && pmd_pfn(pmd) == head);
	KUNIT_EXPECT_FALSE(test, folio_test_locked(folio));
	hmm_kunit_migrate_none(&m);
	folio_put(folio);
	hmm_kunit_expect_restored(test, &m, HMM_KUNIT_PMD_NR);
}

#ifdef CONFIG_TRANSPARENT_HUGEPAGE
static void hmm_kunit_orders_restore(void *orders)
{
	WRITE_ONCE(huge_anon_orders_always, (unsigned long)orders);
}
#endif

/*
 * PTE-mapped large folios of a smaller order (64 KiB mTHP), the first and
 * the last straddling the ends of the range: each is split, the pages in
 * the range are collected one by one, the rest stay mapped.
 */
static void hmm_migrate_test_mthp(struct kunit *test)
{
	const unsigned int order = 4;
	const unsigned long nr = 1UL << order, len = 4 * (PAGE_SIZE << order);
	const unsigned long first = nr + nr / 2, npages = 2 * nr;
	unsigned long addr, i, pfn;
	struct hmm_kunit_migrate m;
	struct folio *folio;
	int ret;

	hmm_kunit_need_thp(test);
#ifdef CONFIG_TRANSPARENT_HUGEPAGE
	{
		/* As "always" in hugepages-64kB/enabled, until the case ends */
		unsigned long orders = READ_ONCE(huge_anon_orders_always);

		ret = kunit_add_action_or_reset(test, hmm_kunit_orders_restore,
						(void *)orders);
		KUNIT_ASSERT_EQ(test, ret, 0);
		WRITE_ONCE(huge_anon_orders_always, orders | BIT(order));
	}
#endif
	addr = hmm_kunit_map(test, len, PAGE_SIZE << order);
	hmm_kunit_fill(test, addr, len >> PAGE_SHIFT);
	mmap_read_lock(current->mm);
	pfn = hmm_kunit_pfn(current->mm, addr + first * PAGE_SIZE);
	folio = pfn == HMM_KUNIT_NONE ? NULL : pfn_folio(pfn);
	ret = folio && folio_order(folio) == order &&
	      !pmd_trans_huge(hmm_kunit_pmd(current->mm, addr));
	mmap_read_unlock(current->mm);
	if (!ret)
		kunit_skip(test, "no order-%u folio was allocated", order);

	hmm_kunit_migrate_init(test, &m, addr + first * PAGE_SIZE, npages,
			       HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE,
			       MIGRATE_VMA_SELECT_SYSTEM |
			       MIGRATE_VMA_SELECT_COMPOUND);
	KUNIT_ASSERT_TRUE(test, m.large[0] && m.large[npages - 1]);
	hmm_kunit_collect(test, &m, false, 0, npages);
	for (i = 0; i < npages; i++) {
		KUNIT_EXPECT_FALSE(test, folio_test_large(pfn_folio(m.orig[i])));
		hmm_kunit_expect_collected(test, &m, i, m.orig[i], true);
	}
	/* The pages of the straddling folios outside the range */
	for (i = nr; i < first; i++)
		KUNIT_EXPECT_EQ(test, hmm_kunit_pfn(current->mm,
						    addr + i * PAGE_SIZE),
				m.orig[0] - (first - i));
	for (i = first + npages; i < len >> PAGE_SHIFT; i++)
		KUNIT_EXPECT_EQ(test, hmm_kunit_pfn(current->mm,
						    addr + i * PAGE_SIZE),
				m.orig[npages - 1] + (i - first - npages + 1));
	hmm_kunit_restore(test, &m, npages);
}

/* Device private memory of the test's own: a pgmap of one memory section */
struct hmm_kunit_devmem {
	struct dev_pagemap pgmap;
	struct resource *res;
	unsigned long next;	/* the next free pfn */
	atomic_t freed;
};

static void hmm_kunit_devmem_folio_free(struct folio *folio)
{
	struct hmm_kunit_devmem *dm =
		container_of(page_pgmap(&folio->page), struct hmm_kunit_devmem,
			     pgmap);

	atomic_inc(&dm->freed);
}

/* The test never touches its device pages from the CPU */
static vm_fault_t hmm_kunit_devmem_fault(struct vm_fault *vmf)
{
	return VM_FAULT_SIGBUS;
}

static const struct dev_pagemap_ops hmm_kunit_devmem_ops = {
	.folio_free = hmm_kunit_devmem_folio_free,
	.migrate_to_ram = hmm_kunit_devmem_fault,
};

static void hmm_kunit_devmem_release(void *data)
{
	struct hmm_kunit_devmem *dm = data;

	memunmap_pages(&dm->pgmap);
	release_mem_region(dm->pgmap.range.start, range_len(&dm->pgmap.range));
}

static struct hmm_kunit_devmem *hmm_kunit_devmem(struct kunit *test)
{
	struct hmm_kunit_devmem *dm;
	void *ptr;
	int ret;

	if (!IS_ENABLED(CONFIG_DEVICE_PRIVATE))
		kunit_skip(test, "needs CONFIG_DEVICE_PRIVATE; " HMM_KUNIT_ALL);
	dm = kunit_kzalloc(test, sizeof(*dm), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, dm);
	dm->res = request_free_mem_region(&iomem_resource,
					  1UL << PA_SECTION_SHIFT,
					  "hmm_migrate_kunit");
	KUNIT_ASSERT_FALSE(test, IS_ERR_OR_NULL(dm->res));
	dm->pgmap.type = MEMORY_DEVICE_PRIVATE;
	dm->pgmap.range.start = dm->res->start;
	dm->pgmap.range.end = dm->res->end;
	dm->pgmap.nr_range = 1;
	dm->pgmap.ops = &hmm_kunit_devmem_ops;
	dm->pgmap.owner = dm;
	ptr = memremap_pages(&dm->pgmap, NUMA_NO_NODE);
	if (IS_ERR_OR_NULL(ptr)) {
		release_mem_region(dm->res->start, resource_size(dm->res));
		KUNIT_FAIL_AND_ABORT(test, "memremap_pages(): %d",
				     PTR_ERR_OR_ZERO(ptr));
	}
	ret = kunit_add_action_or_reset(test, hmm_kunit_devmem_release, dm);
	KUNIT_ASSERT_EQ(test, ret, 0);
	dm->next = PHYS_PFN(dm->res->start);
	return dm;
}

/*
 * A new device page, locked (by zone_device_page_init()), as a driver hands
 * it to migrate_vma_pages()
 */
static unsigned long hmm_kunit_devmem_page(struct hmm_kunit_devmem *dm)
{
	struct page *page = pfn_to_page(dm->next++);

	zone_device_page_init(page, &dm->pgmap, 0);
	return page_to_pfn(page);
}

/* Migrate the one page at @addr to @dst_pfn. */
static void hmm_kunit_migrate_page(struct kunit *test, unsigned long addr,
				   unsigned long select, void *owner,
				   unsigned long dst_pfn)
{
	unsigned long src = 0, dst = 0;
	struct migrate_vma mig = {
		.start = addr, .end = addr + PAGE_SIZE,
		.src = &src, .dst = &dst,
		.flags = select, .pgmap_owner = owner,
	};

	mmap_read_lock(current->mm);
	mig.vma = vma_lookup(current->mm, addr);
	KUNIT_EXPECT_EQ(test, migrate_vma_setup(&mig), 0);
	KUNIT_EXPECT_EQ(test, mig.cpages, 1);
	dst = migrate_pfn(dst_pfn);
	migrate_vma_pages(&mig);
	KUNIT_EXPECT_TRUE(test, src & MIGRATE_PFN_MIGRATE);
	migrate_vma_finalize(&mig);
	mmap_read_unlock(current->mm);
}

static bool hmm_kunit_is_dev_private(pte_t pte, unsigned long pfn)
{
	softleaf_t entry = softleaf_from_pte(pte);

	return softleaf_is_device_private(entry) &&
	       softleaf_to_pfn(entry) == pfn;
}

/*
 * A device private page is collected by the one walk, as migrate_vma_setup()
 * collects it, by its owner only, and migrated to another device page of
 * the same owner; migrated back, the data is there and both device pages
 * were freed.
 */
static void hmm_migrate_test_dev_private(struct kunit *test)
{
	struct hmm_kunit_devmem *dm = hmm_kunit_devmem(test);
	unsigned long addr, a, b, data;
	struct hmm_kunit_migrate m;
	struct page *sys;
	void *kaddr;
	pte_t pte;

	addr = hmm_kunit_map(test, PAGE_SIZE, PAGE_SIZE);
	hmm_kunit_fill(test, addr, 1);
	KUNIT_ASSERT_EQ(test, get_user(data, (unsigned long __user *)addr), 0);
	a = hmm_kunit_devmem_page(dm);
	hmm_kunit_migrate_page(test, addr, MIGRATE_VMA_SELECT_SYSTEM, dm, a);
	mmap_read_lock(current->mm);
	pte = hmm_kunit_pte(current->mm, addr);
	mmap_read_unlock(current->mm);
	KUNIT_ASSERT_TRUE(test, hmm_kunit_is_dev_private(pte, a));

	/* Another owner's migration neither collects it nor faults it */
	hmm_kunit_migrate_init(test, &m, addr, 1, HMM_PFN_REQ_FAULT |
			       HMM_PFN_REQ_WRITE,
			       MIGRATE_VMA_SELECT_DEVICE_PRIVATE);
	m.mig.pgmap_owner = test;
	hmm_kunit_collect(test, &m, false, 0, 0);
	KUNIT_EXPECT_EQ(test, m.mig.src[0], 0);
	KUNIT_EXPECT_FALSE(test, m.pfns[0] & HMM_PFN_MIGRATE);
	pte = hmm_kunit_pte(current->mm, addr);
	KUNIT_EXPECT_TRUE(test, hmm_kunit_is_dev_private(pte, a));
	hmm_kunit_migrate_none(&m);

	/* Its owner's collects it, and moves it to another device page */
	m.mig.pgmap_owner = dm;
	hmm_kunit_collect(test, &m, false, 0, 1);
	KUNIT_EXPECT_EQ(test, m.mig.src[0], migrate_pfn(a) |
			MIGRATE_PFN_MIGRATE | MIGRATE_PFN_WRITE);
	KUNIT_EXPECT_EQ(test, m.pfns[0], a | HMM_PFN_VALID | HMM_PFN_WRITE |
			HMM_PFN_MIGRATE);
	pte = hmm_kunit_pte(current->mm, addr);
	KUNIT_EXPECT_TRUE(test, hmm_kunit_is_migration(pte, a));
	b = hmm_kunit_devmem_page(dm);
	m.mig.dst[0] = migrate_pfn(b);
	migrate_vma_pages(&m.mig);
	KUNIT_EXPECT_TRUE(test, m.mig.src[0] & MIGRATE_PFN_MIGRATE);
	migrate_vma_finalize(&m.mig);
	pte = hmm_kunit_pte(current->mm, addr);
	mmap_read_unlock(current->mm);
	KUNIT_EXPECT_TRUE(test, hmm_kunit_is_dev_private(pte, b));
	KUNIT_EXPECT_EQ(test, atomic_read(&dm->freed), 1);

	/* Back to system memory, with the data the "device" kept */
	sys = alloc_page(GFP_HIGHUSER_MOVABLE);
	KUNIT_ASSERT_NOT_NULL(test, sys);
	kaddr = kmap_local_page(sys);
	*(unsigned long *)kaddr = data;
	kunmap_local(kaddr);
	lock_page(sys);
	hmm_kunit_migrate_page(test, addr, MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
			       dm, page_to_pfn(sys));
	KUNIT_EXPECT_TRUE(test, hmm_kunit_data_ok(addr));
	KUNIT_EXPECT_EQ(test, atomic_read(&dm->freed), 2);
}

#else /* CONFIG_DEVICE_MIGRATION */

#define HMM_KUNIT_NEEDS_MIGRATION(name)					\
static void name(struct kunit *test)					\
{									\
	kunit_skip(test, "needs CONFIG_DEVICE_MIGRATION (ZONE_DEVICE); " \
		   HMM_KUNIT_ALL);					\
}

HMM_KUNIT_NEEDS_MIGRATION(hmm_migrate_test_collect)
HMM_KUNIT_NEEDS_MIGRATION(hmm_migrate_test_open_first)
HMM_KUNIT_NEEDS_MIGRATION(hmm_migrate_test_locked_folio)
HMM_KUNIT_NEEDS_MIGRATION(hmm_migrate_test_errors)
HMM_KUNIT_NEEDS_MIGRATION(hmm_migrate_test_write_fault)
HMM_KUNIT_NEEDS_MIGRATION(hmm_migrate_test_cow)
HMM_KUNIT_NEEDS_MIGRATION(hmm_migrate_test_fault_run)
HMM_KUNIT_NEEDS_MIGRATION(hmm_migrate_test_fault_after_collect)
HMM_KUNIT_NEEDS_MIGRATION(hmm_migrate_test_no_useless_fault)
HMM_KUNIT_NEEDS_MIGRATION(hmm_migrate_test_prot_none)
HMM_KUNIT_NEEDS_MIGRATION(hmm_migrate_test_unaligned)
HMM_KUNIT_NEEDS_MIGRATION(hmm_migrate_test_pmd_holes)
HMM_KUNIT_NEEDS_MIGRATION(hmm_migrate_test_pmd_hole_span)
HMM_KUNIT_NEEDS_MIGRATION(hmm_migrate_test_thp_whole)
HMM_KUNIT_NEEDS_MIGRATION(hmm_migrate_test_thp_split)
HMM_KUNIT_NEEDS_MIGRATION(hmm_migrate_test_thp_pte_mapped)
HMM_KUNIT_NEEDS_MIGRATION(hmm_migrate_test_refused)
HMM_KUNIT_NEEDS_MIGRATION(hmm_migrate_test_split_fail)
HMM_KUNIT_NEEDS_MIGRATION(hmm_migrate_test_mthp)
HMM_KUNIT_NEEDS_MIGRATION(hmm_migrate_test_dev_private)
#define hmm_kunit_split_gen_params NULL

#endif /* CONFIG_DEVICE_MIGRATION */

static int hmm_migrate_test_init(struct kunit *test)
{
	/* Each case runs in a thread of its own: give it an mm of its own */
	return kunit_attach_mm();
}

static struct kunit_case hmm_migrate_test_cases[] = {
	KUNIT_CASE(hmm_migrate_test_pfn_layout),
	KUNIT_CASE(hmm_migrate_test_invalid),
	KUNIT_CASE(hmm_migrate_test_collect),
	KUNIT_CASE(hmm_migrate_test_open_first),
	KUNIT_CASE(hmm_migrate_test_locked_folio),
	KUNIT_CASE(hmm_migrate_test_errors),
	KUNIT_CASE(hmm_migrate_test_write_fault),
	KUNIT_CASE(hmm_migrate_test_cow),
	KUNIT_CASE(hmm_migrate_test_fault_run),
	KUNIT_CASE(hmm_migrate_test_fault_after_collect),
	KUNIT_CASE(hmm_migrate_test_no_useless_fault),
	KUNIT_CASE(hmm_migrate_test_prot_none),
	KUNIT_CASE(hmm_migrate_test_unaligned),
	KUNIT_CASE(hmm_migrate_test_pmd_holes),
	KUNIT_CASE(hmm_migrate_test_pmd_hole_span),
	KUNIT_CASE(hmm_migrate_test_thp_whole),
	KUNIT_CASE_PARAM(hmm_migrate_test_thp_split,
			 hmm_kunit_split_gen_params),
	KUNIT_CASE(hmm_migrate_test_thp_pte_mapped),
	KUNIT_CASE(hmm_migrate_test_refused),
	KUNIT_CASE(hmm_migrate_test_split_fail),
	KUNIT_CASE(hmm_migrate_test_mthp),
	KUNIT_CASE(hmm_migrate_test_dev_private),
	{}
};

static struct kunit_suite hmm_migrate_test_suite = {
	.name = "hmm_migrate",
	.init = hmm_migrate_test_init,
	.test_cases = hmm_migrate_test_cases,
};

kunit_test_suite(hmm_migrate_test_suite);

MODULE_DESCRIPTION("KUnit tests for hmm_range_fault() with HMM_PFN_REQ_MIGRATE");
MODULE_LICENSE("GPL");
