/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KUnit tests for the helpers hmm_range_fault() collects pages for migration
 * with (HMM_PFN_REQ_MIGRATE): which ranges are collected as compound entries,
 * the src entries of holes, what counts as a hole, and what the walk reports
 * for what it collected.  Included by mm/hmm.c, so they run the static
 * helpers the walk calls.  They need neither THP nor ZONE_DEVICE and run in
 * UML too; the walk itself is tested by the hmm_migrate suite
 * (lib/tests/hmm_migrate_kunit.c), which needs CONFIG_DEVICE_MIGRATION.
 */

#ifdef CONFIG_HMM_MIGRATE_KUNIT_TEST

#ifndef _MM_TESTS_HMM_KUNIT_H
#define _MM_TESTS_HMM_KUNIT_H

#include <kunit/test.h>
#include <linux/mman.h>
#include <linux/shmem_fs.h>

#define HMM_COLLECT_PMD_NR	(PMD_SIZE >> PAGE_SHIFT)
/* Any PMD-aligned address: the helpers only compute with it */
#define HMM_COLLECT_BASE	(64 * PMD_SIZE)

struct hmm_collect_range_param {
	const char *desc;
	unsigned long flags, start, end;
	bool compound;
};

static const struct hmm_collect_range_param hmm_collect_range_params[] = {
	{ "one PMD", MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND,
	  0, PMD_SIZE, true },
	{ "two PMDs", MIGRATE_VMA_SELECT_DEVICE_PRIVATE |
	  MIGRATE_VMA_SELECT_COMPOUND, 0, 2 * PMD_SIZE, true },
	{ "no SELECT_COMPOUND", MIGRATE_VMA_SELECT_SYSTEM, 0, PMD_SIZE,
	  false },
	{ "unaligned start", MIGRATE_VMA_SELECT_SYSTEM |
	  MIGRATE_VMA_SELECT_COMPOUND, PAGE_SIZE, PMD_SIZE + PAGE_SIZE, false },
	{ "unaligned end", MIGRATE_VMA_SELECT_SYSTEM |
	  MIGRATE_VMA_SELECT_COMPOUND, 0, PMD_SIZE + PAGE_SIZE, false },
	{ "half PMD", MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND,
	  PMD_SIZE / 2, PMD_SIZE, false },
	{ "one page", MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND,
	  PAGE_SIZE, 2 * PAGE_SIZE, false },
};

KUNIT_ARRAY_PARAM_DESC(hmm_collect_range, hmm_collect_range_params, desc);

/* Only whole PMDs, and only with SELECT_COMPOUND, are collected compound. */
static void hmm_collect_test_compound_range(struct kunit *test)
{
	const struct hmm_collect_range_param *p = test->param_value;
	struct migrate_vma migrate = { .flags = p->flags };

	unsigned long start = HMM_COLLECT_BASE + p->start;
	unsigned long end = HMM_COLLECT_BASE + p->end;

	KUNIT_EXPECT_EQ(test, migrate_vma_compound_range(&migrate, start, end),
			p->compound);
}

/* A migration of @npages pages from HMM_COLLECT_BASE, src set to @fill. */
static void hmm_collect_init(struct kunit *test, struct migrate_vma *migrate,
			     unsigned long npages, unsigned long fill)
{
	unsigned long i;

	memset(migrate, 0, sizeof(*migrate));
	migrate->src = kunit_kcalloc(test, npages, sizeof(long), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, migrate->src);
	for (i = 0; i < npages; i++)
		migrate->src[i] = fill;
	migrate->start = HMM_COLLECT_BASE;
	migrate->end = HMM_COLLECT_BASE + npages * PAGE_SIZE;
}

/*
 * Holes: an entry per page, or a compound entry per PMD followed by the 511
 * empty entries it stands for; one per PMD when the hole spans several, and
 * nothing outside the hole is touched.
 */
static void hmm_collect_test_fill_hole(struct kunit *test)
{
	const unsigned long nr = 3 * HMM_COLLECT_PMD_NR, junk = 0x5a5a5a5a;
	const unsigned long first = HMM_COLLECT_PMD_NR, last = nr - 1;
	struct migrate_vma migrate;
	unsigned long i, bad = 0;

	/* PMDs 1 and 2 of three, compound */
	hmm_collect_init(test, &migrate, nr, junk);
	migrate.cpages = 3;
	migrate_vma_fill_hole(&migrate, HMM_COLLECT_BASE + PMD_SIZE,
			      migrate.end, true);
	KUNIT_EXPECT_EQ(test, migrate.cpages, 5);
	for (i = 0; i < first; i++)
		bad += migrate.src[i] != junk;
	KUNIT_EXPECT_EQ_MSG(test, bad, 0, "entries before the hole changed");
	for (i = first, bad = 0; i < nr; i++)
		bad += migrate.src[i] != (i % HMM_COLLECT_PMD_NR ? 0 :
					  MIGRATE_PFN_MIGRATE |
					  MIGRATE_PFN_COMPOUND);
	KUNIT_EXPECT_EQ_MSG(test, bad, 0, "not one compound entry per PMD");

	/* The same hole page by page, and a one-page hole at the very end */
	hmm_collect_init(test, &migrate, nr, junk);
	migrate_vma_fill_hole(&migrate, HMM_COLLECT_BASE + PMD_SIZE,
			      migrate.end - PAGE_SIZE, false);
	KUNIT_EXPECT_EQ(test, migrate.cpages, last - first);
	for (i = first, bad = 0; i < last; i++)
		bad += migrate.src[i] != MIGRATE_PFN_MIGRATE;
	KUNIT_EXPECT_EQ_MSG(test, bad, 0, "not one entry per page");
	KUNIT_EXPECT_EQ(test, migrate.src[first - 1], junk);
	KUNIT_EXPECT_EQ(test, migrate.src[last], junk);
	migrate_vma_fill_hole(&migrate, migrate.end - PAGE_SIZE, migrate.end,
			      false);
	KUNIT_EXPECT_EQ(test, migrate.src[last], MIGRATE_PFN_MIGRATE);
	KUNIT_EXPECT_EQ(test, migrate.cpages, last - first + 1);
}

/*
 * A shmem file of @len bytes, mapped privately; the mapping goes with the
 * test.
 */
static unsigned long hmm_collect_map_file(struct kunit *test,
					  unsigned long len)
{
	struct file *file;
	unsigned long addr;

	file = shmem_file_setup("hmm_collect_kunit", len, EMPTY_VMA_FLAGS);
	KUNIT_ASSERT_FALSE(test, IS_ERR(file));
	addr = kunit_vm_mmap(test, file, 0, len, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE, 0);
	fput(file);
	KUNIT_ASSERT_FALSE(test, !addr || IS_ERR_VALUE(addr));
	return addr;
}

static unsigned long hmm_collect_map_anon(struct kunit *test,
					  unsigned long len)
{
	unsigned long addr;

	addr = kunit_vm_mmap(test, NULL, 0, len, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, 0);
	KUNIT_ASSERT_FALSE(test, !addr || IS_ERR_VALUE(addr));
	return addr;
}

/*
 * A hole of an anonymous VMA is collected, compound where
 * migrate_vma_compound_range() allows it and the kernel migrates THPs; a
 * hole of a file VMA is not collected, with or without SELECT_COMPOUND.
 */
static void hmm_collect_test_hole_vma(struct kunit *test)
{
	const unsigned long nr = 2 * HMM_COLLECT_PMD_NR;
	const unsigned long flags[] = {
		MIGRATE_VMA_SELECT_SYSTEM,
		MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND,
	};
	unsigned long anon, file, i, f, bad;
	struct vm_area_struct *vma;
	struct migrate_vma migrate;
	bool compound;

	anon = hmm_collect_map_anon(test, nr * PAGE_SIZE);
	file = hmm_collect_map_file(test, nr * PAGE_SIZE);
	for (f = 0; f < ARRAY_SIZE(flags); f++) {
		compound = thp_migration_supported() &&
			   (flags[f] & MIGRATE_VMA_SELECT_COMPOUND);

		hmm_collect_init(test, &migrate, nr, ~0UL);
		migrate.flags = flags[f];
		mmap_read_lock(current->mm);
		vma = vma_lookup(current->mm, anon);
		KUNIT_ASSERT_NOT_NULL(test, vma);
		KUNIT_ASSERT_TRUE(test, vma_is_anonymous(vma));
		migrate_vma_collect_hole(&migrate, vma, migrate.start,
					 migrate.end);
		mmap_read_unlock(current->mm);
		KUNIT_EXPECT_EQ(test, migrate.cpages, compound ? 2 : nr);
		for (i = 0, bad = 0; i < nr; i++)
			bad += migrate.src[i] != (!compound ?
				MIGRATE_PFN_MIGRATE : i % HMM_COLLECT_PMD_NR ?
				0 : MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND);
		KUNIT_EXPECT_EQ_MSG(test, bad, 0, "anonymous hole, flags %#lx",
				    flags[f]);

		hmm_collect_init(test, &migrate, nr, ~0UL);
		migrate.flags = flags[f];
		mmap_read_lock(current->mm);
		vma = vma_lookup(current->mm, file);
		KUNIT_ASSERT_NOT_NULL(test, vma);
		KUNIT_ASSERT_FALSE(test, vma_is_anonymous(vma));
		migrate_vma_collect_hole(&migrate, vma, migrate.start,
					 migrate.end);
		mmap_read_unlock(current->mm);
		KUNIT_EXPECT_EQ(test, migrate.cpages, 0);
		KUNIT_EXPECT_NULL_MSG(test, memchr_inv(migrate.src, 0,
						       nr * sizeof(long)),
				      "file hole, flags %#lx", flags[f]);
	}
}

/* The PTE mapping @addr in the current mm, which the caller locked. */
static pte_t hmm_collect_pte(struct kunit *test, unsigned long addr)
{
	struct mm_struct *mm = current->mm;
	spinlock_t *ptl;	/* of the PTE table */
	pte_t *ptep, pte;
	pmd_t *pmdp;

	pmdp = mm_find_pmd(mm, addr);
	KUNIT_ASSERT_NOT_NULL(test, pmdp);
	ptep = pte_offset_map_lock(mm, pmdp, addr, &ptl);
	KUNIT_ASSERT_NOT_NULL(test, ptep);
	pte = ptep_get(ptep);
	pte_unmap_unlock(ptep, ptl);
	return pte;
}

/*
 * What migration populates without reading it, from real PTEs: the empty
 * PTEs of an anonymous VMA, and the zero page when system memory is
 * selected; never a page with data, nor an empty PTE of a file VMA.
 */
static void hmm_collect_test_pte_is_hole(struct kunit *test)
{
	struct migrate_vma sys = { .flags = MIGRATE_VMA_SELECT_SYSTEM };
	struct migrate_vma dev = {
		.flags = MIGRATE_VMA_SELECT_DEVICE_PRIVATE |
			 MIGRATE_VMA_SELECT_COMPOUND,
	};
	struct vm_area_struct *avma, *fvma;
	unsigned long anon, file, val;
	pte_t none, zero, data, fnone, fdata;

	anon = hmm_collect_map_anon(test, 4 * PAGE_SIZE);
	file = hmm_collect_map_file(test, 4 * PAGE_SIZE);
	/* Page 1 reads the zero page in, page 2 is written, page 0 untouched */
	KUNIT_ASSERT_EQ(test, get_user(val, (unsigned long __user *)
				       (anon + PAGE_SIZE)), 0);
	KUNIT_EXPECT_EQ(test, val, 0);
	KUNIT_ASSERT_EQ(test, put_user(1UL, (unsigned long __user *)
				       (anon + 2 * PAGE_SIZE)), 0);
	KUNIT_ASSERT_EQ(test, get_user(val, (unsigned long __user *)
				       (file + PAGE_SIZE)), 0);
	KUNIT_EXPECT_EQ(test, val, 0);

	mmap_read_lock(current->mm);
	avma = vma_lookup(current->mm, anon);
	fvma = vma_lookup(current->mm, file);
	KUNIT_ASSERT_TRUE(test, avma && fvma);
	none = hmm_collect_pte(test, anon);
	zero = hmm_collect_pte(test, anon + PAGE_SIZE);
	data = hmm_collect_pte(test, anon + 2 * PAGE_SIZE);
	fnone = hmm_collect_pte(test, file);
	fdata = hmm_collect_pte(test, file + PAGE_SIZE);
	KUNIT_ASSERT_TRUE(test, pte_none(none) && pte_none(fnone));
	KUNIT_ASSERT_TRUE(test, pte_present(zero) &&
			  is_zero_pfn(pte_pfn(zero)));
	KUNIT_ASSERT_TRUE(test, pte_present(data) &&
			  !is_zero_pfn(pte_pfn(data)));
	KUNIT_ASSERT_TRUE(test, pte_present(fdata) &&
			  !is_zero_pfn(pte_pfn(fdata)));

	KUNIT_EXPECT_TRUE(test, migrate_vma_pte_is_hole(&sys, avma, none));
	KUNIT_EXPECT_TRUE(test, migrate_vma_pte_is_hole(&dev, avma, none));
	KUNIT_EXPECT_TRUE(test, migrate_vma_pte_is_hole(&sys, avma, zero));
	/* The zero page is system memory: not selected, not collected */
	KUNIT_EXPECT_FALSE(test, migrate_vma_pte_is_hole(&dev, avma, zero));
	KUNIT_EXPECT_FALSE(test, migrate_vma_pte_is_hole(&sys, avma, data));
	KUNIT_EXPECT_FALSE(test, migrate_vma_pte_is_hole(&sys, fvma, fnone));
	KUNIT_EXPECT_FALSE(test, migrate_vma_pte_is_hole(&dev, fvma, fnone));
	KUNIT_EXPECT_FALSE(test, migrate_vma_pte_is_hole(&sys, fvma, fdata));
	mmap_read_unlock(current->mm);
}

/*
 * A collected entry is reported as src has it, whatever the walk read: the
 * pfn, VALID and WRITE of a page, MIGRATE alone for a hole; the flags the
 * caller owns (HMM_PFN_INOUT_FLAGS) are kept, the rest of the input is not.
 */
static void hmm_collect_test_pfn_from_mpfn(struct kunit *test)
{
	const unsigned long pfn = 0x12345, other = 0x54321;
	const unsigned long read = other | HMM_PFN_VALID | HMM_PFN_WRITE |
				   HMM_PFN_ERROR;
	unsigned long hmm_pfn;

	KUNIT_EXPECT_EQ(test, hmm_pfn_from_mpfn(read, migrate_pfn(pfn) |
						MIGRATE_PFN_MIGRATE |
						MIGRATE_PFN_WRITE),
			pfn | HMM_PFN_VALID | HMM_PFN_WRITE | HMM_PFN_MIGRATE);
	KUNIT_EXPECT_EQ(test, hmm_pfn_from_mpfn(read, migrate_pfn(pfn) |
						MIGRATE_PFN_MIGRATE),
			pfn | HMM_PFN_VALID | HMM_PFN_MIGRATE);
	KUNIT_EXPECT_EQ(test, hmm_pfn_from_mpfn(read, MIGRATE_PFN_MIGRATE),
			HMM_PFN_MIGRATE);
	KUNIT_EXPECT_EQ(test, hmm_pfn_from_mpfn(read | HMM_PFN_DMA_MAPPED |
						HMM_PFN_P2PDMA,
						MIGRATE_PFN_MIGRATE),
			HMM_PFN_MIGRATE | HMM_PFN_DMA_MAPPED | HMM_PFN_P2PDMA);
	hmm_pfn = hmm_pfn_from_mpfn(read, migrate_pfn(pfn) |
				    MIGRATE_PFN_MIGRATE);
	KUNIT_EXPECT_EQ(test, hmm_pfn_to_map_order(hmm_pfn), 0);
}

/*
 * What is reported for a PMD: a folio collected whole as PMD order pages
 * from its head (the order field next to HMM_PFN_MIGRATE), a compound hole
 * as MIGRATE for all its pages, and what was not collected as it was read.
 * Only the PMD's part of the output is written.
 */
static void hmm_collect_test_pmd_report(struct kunit *test)
{
	const unsigned long nr = 2 * HMM_COLLECT_PMD_NR, head = 0x40000;
	const unsigned long read_pfn = 0x80000, dma = 7;
	const unsigned long pmd_addr = HMM_COLLECT_BASE + PMD_SIZE;
	unsigned long *pfns, *pmd_pfns, i, bad, want;
	struct hmm_range range = {
		.start = HMM_COLLECT_BASE,
		.end = HMM_COLLECT_BASE + nr * PAGE_SIZE,
	};

	pfns = kunit_kcalloc(test, nr, sizeof(long), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, pfns);
	range.hmm_pfns = pfns;
	pmd_pfns = pfns + HMM_COLLECT_PMD_NR;
	/* As the walk read the PMD: present, read-only, another pfn */
	for (i = 0; i < nr; i++)
		pfns[i] = (read_pfn + i) | HMM_PFN_VALID;
	pmd_pfns[dma] |= HMM_PFN_DMA_MAPPED;

	hmm_pmd_report_collected(&range, pmd_addr, range.end, pmd_pfns,
				 migrate_pfn(head) | MIGRATE_PFN_MIGRATE |
				 MIGRATE_PFN_COMPOUND | MIGRATE_PFN_WRITE);
	for (i = 0, bad = 0; i < HMM_COLLECT_PMD_NR; i++) {
		want = (head + i) | HMM_PFN_VALID | HMM_PFN_WRITE |
		       HMM_PFN_MIGRATE | (i == dma ? HMM_PFN_DMA_MAPPED : 0);
		bad += (pmd_pfns[i] & ~HMM_PFN_ORDER_MASK) != want ||
		       hmm_pfn_to_map_order(pmd_pfns[i]) !=
		       PMD_SHIFT - PAGE_SHIFT ||
		       hmm_pfn_to_phys(pmd_pfns[i]) != PFN_PHYS(head + i);
	}
	KUNIT_EXPECT_EQ_MSG(test, bad, 0, "entries of the collected THP");
	for (i = 0, bad = 0; i < HMM_COLLECT_PMD_NR; i++)
		bad += pfns[i] != ((read_pfn + i) | HMM_PFN_VALID);
	KUNIT_EXPECT_EQ_MSG(test, bad, 0, "entries outside the PMD changed");

	/* Not collected: left as read */
	hmm_pmd_report_collected(&range, HMM_COLLECT_BASE, pmd_addr, pfns, 0);
	for (i = 0, bad = 0; i < HMM_COLLECT_PMD_NR; i++)
		bad += pfns[i] != ((read_pfn + i) | HMM_PFN_VALID);
	KUNIT_EXPECT_EQ(test, bad, 0);

	/* A compound hole */
	hmm_pmd_report_collected(&range, pmd_addr, range.end, pmd_pfns,
				 MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND);
	for (i = 0, bad = 0; i < HMM_COLLECT_PMD_NR; i++)
		bad += pmd_pfns[i] != (HMM_PFN_MIGRATE |
				       (i == dma ? HMM_PFN_DMA_MAPPED : 0));
	KUNIT_EXPECT_EQ_MSG(test, bad, 0, "entries of the compound hole");
}

/*
 * After the collection put back what it could not migrate (cleared
 * MIGRATE_PFN_MIGRATE in src), the output loses HMM_PFN_MIGRATE there and
 * only there, and keeps everything else, the order included; the pages a
 * compound entry stands for go with it.
 */
static void hmm_collect_test_sync_pfns(struct kunit *test)
{
	const unsigned long nr = 3 * HMM_COLLECT_PMD_NR;
	const unsigned long order = hmm_pfn_flags_order(PMD_SHIFT - PAGE_SHIFT);
	const unsigned long thp = HMM_COLLECT_PMD_NR, lost = 2 * thp;
	unsigned long *pfns, *src, i, bad;
	bool keep;

	pfns = kunit_kcalloc(test, nr, sizeof(long), GFP_KERNEL);
	src = kunit_kcalloc(test, nr, sizeof(long), GFP_KERNEL);
	KUNIT_ASSERT_TRUE(test, pfns && src);
	for (i = 0; i < nr; i++) {
		pfns[i] = i | HMM_PFN_VALID | HMM_PFN_MIGRATE |
			  (i >= thp ? order : 0);
		src[i] = i < thp ? MIGRATE_PFN_MIGRATE : 0;
	}
	/* PMD 0 page by page: a page kept, a pinned one put back, a hole */
	src[0] = migrate_pfn(0) | MIGRATE_PFN_MIGRATE;
	src[1] = migrate_pfn(1);
	src[3] = 0;
	/* PMD 1 a THP kept whole, PMD 2 one that was put back */
	src[thp] = migrate_pfn(thp) | MIGRATE_PFN_MIGRATE |
		   MIGRATE_PFN_COMPOUND;
	src[lost] = migrate_pfn(lost) | MIGRATE_PFN_COMPOUND;

	hmm_migrate_sync_pfns(pfns, src, nr);
	for (i = 0, bad = 0; i < nr; i++) {
		keep = i < thp ? i != 1 && i != 3 : i < lost;
		bad += pfns[i] != (i | HMM_PFN_VALID | (i >= thp ? order : 0) |
				   (keep ? HMM_PFN_MIGRATE : 0));
	}
	KUNIT_EXPECT_EQ(test, bad, 0);

	/* After an error src is cleared: nothing stays reported collected */
	memset(src, 0, nr * sizeof(long));
	hmm_migrate_sync_pfns(pfns, src, nr);
	for (i = 0, bad = 0; i < nr; i++)
		bad += !!(pfns[i] & HMM_PFN_MIGRATE) ||
		       hmm_pfn_to_map_order(pfns[i]) !=
		       (i >= thp ? PMD_SHIFT - PAGE_SHIFT : 0);
	KUNIT_EXPECT_EQ(test, bad, 0);
}

static int hmm_collect_test_init(struct kunit *test)
{
	/* Each case runs in a thread of its own: give it an mm of its own */
	return kunit_attach_mm();
}

static struct kunit_case hmm_collect_test_cases[] = {
	KUNIT_CASE_PARAM(hmm_collect_test_compound_range,
			 hmm_collect_range_gen_params),
	KUNIT_CASE(hmm_collect_test_fill_hole),
	KUNIT_CASE(hmm_collect_test_hole_vma),
	KUNIT_CASE(hmm_collect_test_pte_is_hole),
	KUNIT_CASE(hmm_collect_test_pfn_from_mpfn),
	KUNIT_CASE(hmm_collect_test_pmd_report),
	KUNIT_CASE(hmm_collect_test_sync_pfns),
	{}
};

static struct kunit_suite hmm_collect_test_suite = {
	.name = "hmm_collect",
	.init = hmm_collect_test_init,
	.test_cases = hmm_collect_test_cases,
};

kunit_test_suite(hmm_collect_test_suite);

#endif /* _MM_TESTS_HMM_KUNIT_H */

#endif /* CONFIG_HMM_MIGRATE_KUNIT_TEST */
