// SPDX-License-Identifier: GPL-2.0
/*
 * This is a module to test the HMM (Heterogeneous Memory Management)
 * mirror and zone device private memory migration APIs of the kernel.
 * Userspace programs can register with the driver to mirror their own address
 * space and can use the device to read/write any valid virtual address.
 */
#include <linux/init.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/memremap.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/highmem.h>
#include <linux/delay.h>
#include <linux/pagemap.h>
#include <linux/hmm.h>
#include <linux/vmalloc.h>
#include <linux/swap.h>
#include <linux/swapops.h>
#include <linux/sched/mm.h>
#include <linux/platform_device.h>
#include <linux/rmap.h>
#include <linux/mmu_notifier.h>
#include <linux/migrate.h>

#include "test_hmm_uapi.h"

#define DMIRROR_NDEVICES		4
#define DMIRROR_RANGE_FAULT_TIMEOUT	1000
#define DEVMEM_CHUNK_SIZE		(256 * 1024 * 1024U)
#define DEVMEM_CHUNKS_RESERVE		16

/*
 * For device_private pages, dpage is just a dummy struct page
 * representing a piece of device memory. dmirror_devmem_alloc_page
 * allocates a real system memory page as backing storage to fake a
 * real device. zone_device_data points to that backing page. But
 * for device_coherent memory, the struct page represents real
 * physical CPU-accessible memory that we can use directly.
 */
#define BACKING_PAGE(page) (is_device_private_page((page)) ? \
			   (page)->zone_device_data : (page))

static unsigned long spm_addr_dev0;
module_param(spm_addr_dev0, long, 0644);
MODULE_PARM_DESC(spm_addr_dev0,
		"Specify start address for SPM (special purpose memory) used for device 0. By setting this Coherent device type will be used. Make sure spm_addr_dev1 is set too. Minimum SPM size should be DEVMEM_CHUNK_SIZE.");

static unsigned long spm_addr_dev1;
module_param(spm_addr_dev1, long, 0644);
MODULE_PARM_DESC(spm_addr_dev1,
		"Specify start address for SPM (special purpose memory) used for device 1. By setting this Coherent device type will be used. Make sure spm_addr_dev0 is set too. Minimum SPM size should be DEVMEM_CHUNK_SIZE.");

static const struct dev_pagemap_ops dmirror_devmem_ops;
static const struct mmu_interval_notifier_ops dmirror_min_ops;
static dev_t dmirror_dev;

struct dmirror_device;

struct dmirror_bounce {
	void			*ptr;
	unsigned long		size;
	unsigned long		addr;
	unsigned long		cpages;
};

#define DPT_XA_TAG_ATOMIC 1UL
#define DPT_XA_TAG_WRITE 3UL

/*
 * Data structure to track address ranges and register for mmu interval
 * notifier updates.
 */
struct dmirror_interval {
	struct mmu_interval_notifier	notifier;
	struct dmirror			*dmirror;
};

/*
 * Data attached to the open device file.
 * Note that it might be shared after a fork().
 */
struct dmirror {
	struct dmirror_device		*mdevice;
	struct xarray			pt;
	struct mmu_interval_notifier	notifier;
	struct mutex			mutex;
	__u64			flags;
	/* Invalidations but this device's migrations, under mutex */
	unsigned long			foreign_inval;
};

/*
 * ZONE_DEVICE pages for migration and simulating device memory.
 */
struct dmirror_chunk {
	struct dev_pagemap	pagemap;
	struct dmirror_device	*mdevice;
	bool remove;
};

/*
 * Per device data.
 */
struct dmirror_device {
	struct cdev		cdevice;
	unsigned int            zone_device_type;
	struct device		device;

	unsigned int		devmem_capacity;
	unsigned int		devmem_count;
	struct dmirror_chunk	**devmem_chunks;
	struct mutex		devmem_lock;	/* protects the above */

	unsigned long		calloc;
	unsigned long		cfree;
	struct page		*free_pages;
	struct folio		*free_folios;
	spinlock_t		lock;		/* protects the above */
};

static struct dmirror_device dmirror_devices[DMIRROR_NDEVICES];

static int dmirror_bounce_init(struct dmirror_bounce *bounce,
			       unsigned long addr,
			       unsigned long size)
{
	bounce->addr = addr;
	bounce->size = size;
	bounce->cpages = 0;
	bounce->ptr = vmalloc(size);
	if (!bounce->ptr)
		return -ENOMEM;
	return 0;
}

static bool dmirror_is_private_zone(struct dmirror_device *mdevice)
{
	return (mdevice->zone_device_type ==
		HMM_DMIRROR_MEMORY_DEVICE_PRIVATE);
}

static enum migrate_vma_direction
dmirror_select_device(struct dmirror *dmirror)
{
	return (dmirror->mdevice->zone_device_type ==
		HMM_DMIRROR_MEMORY_DEVICE_PRIVATE) ?
		MIGRATE_VMA_SELECT_DEVICE_PRIVATE :
		MIGRATE_VMA_SELECT_DEVICE_COHERENT;
}

static void dmirror_bounce_fini(struct dmirror_bounce *bounce)
{
	vfree(bounce->ptr);
}

static int dmirror_fops_open(struct inode *inode, struct file *filp)
{
	struct cdev *cdev = inode->i_cdev;
	struct dmirror *dmirror;
	int ret;

	/* Mirror this process address space */
	dmirror = kzalloc_obj(*dmirror);
	if (dmirror == NULL)
		return -ENOMEM;

	dmirror->mdevice = container_of(cdev, struct dmirror_device, cdevice);
	mutex_init(&dmirror->mutex);
	xa_init(&dmirror->pt);

	ret = mmu_interval_notifier_insert(&dmirror->notifier, current->mm,
				0, ULONG_MAX & PAGE_MASK, &dmirror_min_ops);
	if (ret) {
		kfree(dmirror);
		return ret;
	}

	filp->private_data = dmirror;
	return 0;
}

static void dmirror_device_evict_chunk(struct dmirror_chunk *chunk)
{
	unsigned long start_pfn = chunk->pagemap.range.start >> PAGE_SHIFT;
	unsigned long end_pfn = chunk->pagemap.range.end >> PAGE_SHIFT;
	unsigned long npages = end_pfn - start_pfn + 1;
	unsigned long i;
	unsigned long *src_pfns;
	unsigned long *dst_pfns;
	unsigned int order = 0;

	src_pfns = kvcalloc(npages, sizeof(*src_pfns), GFP_KERNEL | __GFP_NOFAIL);
	dst_pfns = kvcalloc(npages, sizeof(*dst_pfns), GFP_KERNEL | __GFP_NOFAIL);

	migrate_device_range(src_pfns, start_pfn, npages);
	for (i = 0; i < npages; i++) {
		struct page *dpage, *spage;

		spage = migrate_pfn_to_page(src_pfns[i]);
		if (!spage || !(src_pfns[i] & MIGRATE_PFN_MIGRATE))
			continue;

		if (WARN_ON(!is_device_private_page(spage) &&
			    !is_device_coherent_page(spage)))
			continue;

		order = folio_order(page_folio(spage));
		spage = BACKING_PAGE(spage);
		if (src_pfns[i] & MIGRATE_PFN_COMPOUND) {
			dpage = folio_page(folio_alloc(GFP_HIGHUSER_MOVABLE,
					      order), 0);
		} else {
			dpage = alloc_page(GFP_HIGHUSER_MOVABLE | __GFP_NOFAIL);
			order = 0;
		}

		/* TODO Support splitting here */
		lock_page(dpage);
		dst_pfns[i] = migrate_pfn(page_to_pfn(dpage));
		if (src_pfns[i] & MIGRATE_PFN_WRITE)
			dst_pfns[i] |= MIGRATE_PFN_WRITE;
		if (order)
			dst_pfns[i] |= MIGRATE_PFN_COMPOUND;
		folio_copy(page_folio(dpage), page_folio(spage));
	}
	migrate_device_pages(src_pfns, dst_pfns, npages);
	migrate_device_finalize(src_pfns, dst_pfns, npages);
	kvfree(src_pfns);
	kvfree(dst_pfns);
}

static int dmirror_fops_release(struct inode *inode, struct file *filp)
{
	struct dmirror *dmirror = filp->private_data;
	struct dmirror_device *mdevice = dmirror->mdevice;
	int i;

	mmu_interval_notifier_remove(&dmirror->notifier);

	if (mdevice->devmem_chunks) {
		for (i = 0; i < mdevice->devmem_count; i++) {
			struct dmirror_chunk *devmem =
				mdevice->devmem_chunks[i];

			dmirror_device_evict_chunk(devmem);
		}
	}

	xa_destroy(&dmirror->pt);
	kfree(dmirror);
	return 0;
}

static struct dmirror_chunk *dmirror_page_to_chunk(struct page *page)
{
	return container_of(page_pgmap(page), struct dmirror_chunk,
			    pagemap);
}

static struct dmirror_device *dmirror_page_to_device(struct page *page)

{
	return dmirror_page_to_chunk(page)->mdevice;
}

/*
 * Return the CPU-addressable page that holds the data of @page: the page
 * itself for system and device coherent memory, the system page backing it
 * for device private memory. Only the first page of a device private folio
 * points to its backing pages, allocated with the same order, so find the
 * backing page of any other page of the folio by its index.
 */
static struct page *dmirror_backing_page(struct page *page)
{
	struct folio *folio = page_folio(page);
	struct page *rpage;

	if (!folio_is_device_private(folio))
		return page;

	rpage = folio_zone_device_data(folio);
	return pfn_to_page(page_to_pfn(rpage) + folio_page_idx(folio, page));
}

static int dmirror_do_fault(struct dmirror *dmirror, struct hmm_range *range)
{
	unsigned long *pfns = range->hmm_pfns;
	unsigned long pfn;

	for (pfn = (range->start >> PAGE_SHIFT);
	     pfn < (range->end >> PAGE_SHIFT);
	     pfn++, pfns++) {
		struct page *page;
		void *entry;

		/*
		 * Since we asked for hmm_range_fault() to populate pages,
		 * it shouldn't return an error entry on success.
		 */
		WARN_ON(*pfns & HMM_PFN_ERROR);
		WARN_ON(!(*pfns & HMM_PFN_VALID));

		page = hmm_pfn_to_page(*pfns);
		WARN_ON(!page);

		/*
		 * hmm_range_fault() reports the pages of this device that it
		 * finds as they are, since dev_private_owner is the device.
		 * Device private pages are not CPU addressable: mirror their
		 * backing pages as dmirror_migrate_finalize_and_map() does.
		 */
		entry = dmirror_backing_page(page);
		if (*pfns & HMM_PFN_WRITE) {
			entry = xa_tag_pointer(entry, DPT_XA_TAG_WRITE);
		} else if (range->default_flags & HMM_PFN_REQ_WRITE) {
			/*
			 * A page of this device that is read-only (COW-shared
			 * after fork()): hmm_range_fault() does not fault it,
			 * so that a driver is not called back from its own
			 * fault handler.  It must go back to system memory,
			 * where a write fault breaks COW.
			 */
			if (is_device_private_page(page))
				return -EAGAIN;
			WARN_ON(1);
			return -EFAULT;
		}
		entry = xa_store(&dmirror->pt, pfn, entry, GFP_ATOMIC);
		if (xa_is_err(entry))
			return xa_err(entry);
	}

	return 0;
}

static void dmirror_do_update(struct dmirror *dmirror, unsigned long start,
			      unsigned long end)
{
	XA_STATE(xas, &dmirror->pt, start >> PAGE_SHIFT);
	unsigned int n = 0;
	void *entry;

	/*
	 * The XArray doesn't hold references to pages since it relies on
	 * the mmu notifier to clear page pointers when they become stale.
	 * Therefore, it is OK to just clear the entries: in one pass under
	 * the lock, letting others in every XA_CHECK_SCHED entries.
	 */
	xas_lock(&xas);
	xas_for_each(&xas, entry, end >> PAGE_SHIFT) {
		xas_store(&xas, NULL);
		if (++n % XA_CHECK_SCHED)
			continue;
		xas_pause(&xas);
		xas_unlock(&xas);
		xas_lock(&xas);
	}
	xas_unlock(&xas);
}

static bool dmirror_interval_invalidate(struct mmu_interval_notifier *mni,
				const struct mmu_notifier_range *range,
				unsigned long cur_seq)
{
	struct dmirror *dmirror = container_of(mni, struct dmirror, notifier);

	if (mmu_notifier_range_blockable(range))
		mutex_lock(&dmirror->mutex);
	else if (!mutex_trylock(&dmirror->mutex))
		return false;

	/*
	 * The migrations of this device invalidate the range like anything
	 * else: the sequence is set and the mirror cleared for every event.
	 * Only the count of other invalidations leaves them out, which lets a
	 * migration to the device map the pages it migrated without another
	 * walk (see dmirror_map_begin()).
	 */
	mmu_interval_set_seq(mni, cur_seq);
	if (range->event != MMU_NOTIFY_MIGRATE ||
	    range->owner != dmirror->mdevice)
		dmirror->foreign_inval++;
	dmirror_do_update(dmirror, range->start, range->end);

	mutex_unlock(&dmirror->mutex);
	return true;
}

static const struct mmu_interval_notifier_ops dmirror_min_ops = {
	.invalidate = dmirror_interval_invalidate,
};

static int dmirror_migrate_to_system(struct dmirror *dmirror,
				     struct hmm_dmirror_cmd *cmd);

static int dmirror_range_fault(struct dmirror *dmirror,
				struct hmm_range *range)
{
	struct mm_struct *mm = dmirror->notifier.mm;
	unsigned long timeout =
		jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
	struct hmm_dmirror_cmd cmd = {};
	int ret;

again:
	while (true) {
		if (time_after(jiffies, timeout)) {
			ret = -EBUSY;
			goto out;
		}

		range->notifier_seq = mmu_interval_read_begin(range->notifier);
		mmap_read_lock(mm);
		ret = hmm_range_fault(range);
		mmap_read_unlock(mm);
		if (ret) {
			if (ret == -EBUSY)
				continue;
			goto out;
		}

		mutex_lock(&dmirror->mutex);
		if (mmu_interval_read_retry(range->notifier,
					    range->notifier_seq)) {
			mutex_unlock(&dmirror->mutex);
			continue;
		}
		break;
	}

	ret = dmirror_do_fault(dmirror, range);

	mutex_unlock(&dmirror->mutex);
	if (ret == -EAGAIN) {
		/* A read-only page of this device to write: migrate it back */
		cmd.addr = range->start;
		cmd.npages = (range->end - range->start) >> PAGE_SHIFT;
		ret = dmirror_migrate_to_system(dmirror, &cmd);
		if (!ret)
			goto again;
	}
out:
	return ret;
}

static int dmirror_range_fault_unlocked(struct dmirror *dmirror,
					struct hmm_range *range,
					unsigned long timeout)
{
	int ret;

	while (true) {
		ret = hmm_range_fault_unlocked_timeout(range, timeout);
		if (ret)
			goto out;

		mutex_lock(&dmirror->mutex);
		if (mmu_interval_read_retry(range->notifier,
					    range->notifier_seq)) {
			mutex_unlock(&dmirror->mutex);
			continue;
		}
		break;
	}

	ret = dmirror_do_fault(dmirror, range);

	mutex_unlock(&dmirror->mutex);
out:
	return ret;
}

static int dmirror_fault_unlocked(struct dmirror *dmirror,
				  unsigned long start,
				  unsigned long end, bool write,
				  unsigned long timeout)
{
	struct mm_struct *mm = dmirror->notifier.mm;
	unsigned long addr;
	unsigned long pfns[32];
	struct hmm_range range = {
		.notifier = &dmirror->notifier,
		.hmm_pfns = pfns,
		.pfn_flags_mask = 0,
		.default_flags =
			HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0),
		.dev_private_owner = dmirror->mdevice,
	};
	int ret = 0;

	if (!mmget_not_zero(mm))
		return -EFAULT;

	for (addr = start; addr < end; addr = range.end) {
		range.start = addr;
		range.end = min(addr + (ARRAY_SIZE(pfns) << PAGE_SHIFT), end);

		ret = dmirror_range_fault_unlocked(dmirror, &range, timeout);
		if (ret)
			break;
	}

	mmput(mm);
	return ret;
}

static int dmirror_fault(struct dmirror *dmirror, unsigned long start,
			 unsigned long end, bool write)
{
	struct mm_struct *mm = dmirror->notifier.mm;
	unsigned long addr;
	unsigned long pfns[32];
	struct hmm_range range = {
		.notifier = &dmirror->notifier,
		.hmm_pfns = pfns,
		.pfn_flags_mask = 0,
		.default_flags =
			HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0),
		.dev_private_owner = dmirror->mdevice,
	};
	int ret = 0;

	/* Since the mm is for the mirrored process, get a reference first. */
	if (!mmget_not_zero(mm))
		return -EFAULT;

	for (addr = start; addr < end; addr = range.end) {
		range.start = addr;
		range.end = min(addr + (ARRAY_SIZE(pfns) << PAGE_SHIFT), end);

		ret = dmirror_range_fault(dmirror, &range);
		if (ret)
			break;
	}

	mmput(mm);
	return ret;
}

static int dmirror_do_read(struct dmirror *dmirror, unsigned long start,
			   unsigned long end, struct dmirror_bounce *bounce)
{
	unsigned long pfn;
	void *ptr;

	ptr = bounce->ptr + ((start - bounce->addr) & PAGE_MASK);

	for (pfn = start >> PAGE_SHIFT; pfn < (end >> PAGE_SHIFT); pfn++) {
		void *entry;
		struct page *page;

		entry = xa_load(&dmirror->pt, pfn);
		page = xa_untag_pointer(entry);
		if (!page)
			return -ENOENT;

		memcpy_from_page(ptr, page, 0, PAGE_SIZE);

		ptr += PAGE_SIZE;
		bounce->cpages++;
	}

	return 0;
}

static int dmirror_read(struct dmirror *dmirror, struct hmm_dmirror_cmd *cmd)
{
	struct dmirror_bounce bounce;
	unsigned long start, end;
	unsigned long size = cmd->npages << PAGE_SHIFT;
	int ret;

	start = cmd->addr;
	end = start + size;
	if (end < start)
		return -EINVAL;

	ret = dmirror_bounce_init(&bounce, start, size);
	if (ret)
		return ret;

	while (1) {
		mutex_lock(&dmirror->mutex);
		ret = dmirror_do_read(dmirror, start, end, &bounce);
		mutex_unlock(&dmirror->mutex);
		if (ret != -ENOENT)
			break;

		start = cmd->addr + (bounce.cpages << PAGE_SHIFT);
		ret = dmirror_fault(dmirror, start, end, false);
		if (ret)
			break;
		cmd->faults++;
	}

	if (ret == 0) {
		if (copy_to_user(u64_to_user_ptr(cmd->ptr), bounce.ptr,
				 bounce.size))
			ret = -EFAULT;
	}
	cmd->cpages = bounce.cpages;
	dmirror_bounce_fini(&bounce);
	return ret;
}

static int dmirror_read_unlocked(struct dmirror *dmirror,
				 struct hmm_dmirror_cmd *cmd,
				 unsigned long timeout)
{
	struct dmirror_bounce bounce;
	unsigned long start, end;
	unsigned long size = cmd->npages << PAGE_SHIFT;
	int ret;

	start = cmd->addr;
	end = start + size;
	if (end < start)
		return -EINVAL;

	ret = dmirror_bounce_init(&bounce, start, size);
	if (ret)
		return ret;

	while (1) {
		mutex_lock(&dmirror->mutex);
		ret = dmirror_do_read(dmirror, start, end, &bounce);
		mutex_unlock(&dmirror->mutex);
		if (ret != -ENOENT)
			break;

		start = cmd->addr + (bounce.cpages << PAGE_SHIFT);
		ret = dmirror_fault_unlocked(dmirror, start, end, false, timeout);
		if (ret)
			break;
		cmd->faults++;
	}

	if (ret == 0) {
		if (copy_to_user(u64_to_user_ptr(cmd->ptr), bounce.ptr,
				 bounce.size))
			ret = -EFAULT;
	}
	cmd->cpages = bounce.cpages;
	dmirror_bounce_fini(&bounce);
	return ret;
}

static int dmirror_do_write(struct dmirror *dmirror, unsigned long start,
			    unsigned long end, struct dmirror_bounce *bounce)
{
	unsigned long pfn;
	void *ptr;

	ptr = bounce->ptr + ((start - bounce->addr) & PAGE_MASK);

	for (pfn = start >> PAGE_SHIFT; pfn < (end >> PAGE_SHIFT); pfn++) {
		void *entry;
		struct page *page;

		entry = xa_load(&dmirror->pt, pfn);
		page = xa_untag_pointer(entry);
		if (!page || xa_pointer_tag(entry) != DPT_XA_TAG_WRITE)
			return -ENOENT;

		memcpy_to_page(page, 0, ptr, PAGE_SIZE);

		ptr += PAGE_SIZE;
		bounce->cpages++;
	}

	return 0;
}

static int dmirror_write(struct dmirror *dmirror, struct hmm_dmirror_cmd *cmd)
{
	struct dmirror_bounce bounce;
	unsigned long start, end;
	unsigned long size = cmd->npages << PAGE_SHIFT;
	int ret;

	start = cmd->addr;
	end = start + size;
	if (end < start)
		return -EINVAL;

	ret = dmirror_bounce_init(&bounce, start, size);
	if (ret)
		return ret;
	if (copy_from_user(bounce.ptr, u64_to_user_ptr(cmd->ptr),
			   bounce.size)) {
		ret = -EFAULT;
		goto fini;
	}

	while (1) {
		mutex_lock(&dmirror->mutex);
		ret = dmirror_do_write(dmirror, start, end, &bounce);
		mutex_unlock(&dmirror->mutex);
		if (ret != -ENOENT)
			break;

		start = cmd->addr + (bounce.cpages << PAGE_SHIFT);
		ret = dmirror_fault(dmirror, start, end, true);
		if (ret)
			break;
		cmd->faults++;
	}

fini:
	cmd->cpages = bounce.cpages;
	dmirror_bounce_fini(&bounce);
	return ret;
}

static int dmirror_allocate_chunk(struct dmirror_device *mdevice,
				  struct page **ppage, bool is_large)
{
	struct dmirror_chunk *devmem;
	struct resource *res = NULL;
	unsigned long pfn;
	unsigned long pfn_first;
	unsigned long pfn_last;
	void *ptr;
	int ret = -ENOMEM;

	devmem = kzalloc_obj(*devmem);
	if (!devmem)
		return ret;

	switch (mdevice->zone_device_type) {
	case HMM_DMIRROR_MEMORY_DEVICE_PRIVATE:
		res = request_free_mem_region(&iomem_resource, DEVMEM_CHUNK_SIZE,
					      "hmm_dmirror");
		if (IS_ERR_OR_NULL(res))
			goto err_devmem;
		devmem->pagemap.range.start = res->start;
		devmem->pagemap.range.end = res->end;
		devmem->pagemap.type = MEMORY_DEVICE_PRIVATE;
		break;
	case HMM_DMIRROR_MEMORY_DEVICE_COHERENT:
		devmem->pagemap.range.start = (MINOR(mdevice->device.devt) - 2) ?
							spm_addr_dev0 :
							spm_addr_dev1;
		devmem->pagemap.range.end = devmem->pagemap.range.start +
					    DEVMEM_CHUNK_SIZE - 1;
		devmem->pagemap.type = MEMORY_DEVICE_COHERENT;
		break;
	default:
		ret = -EINVAL;
		goto err_devmem;
	}

	devmem->pagemap.nr_range = 1;
	devmem->pagemap.ops = &dmirror_devmem_ops;
	devmem->pagemap.owner = mdevice;

	mutex_lock(&mdevice->devmem_lock);

	/*
	 * A coherent device has one chunk of memory at its spm_addr: once
	 * that is in use, the device is out of memory. Do not map the same
	 * range a second time.
	 */
	if (devmem->pagemap.type == MEMORY_DEVICE_COHERENT &&
	    mdevice->devmem_count)
		goto err_release;

	if (mdevice->devmem_count == mdevice->devmem_capacity) {
		struct dmirror_chunk **new_chunks;
		unsigned int new_capacity;

		new_capacity = mdevice->devmem_capacity +
				DEVMEM_CHUNKS_RESERVE;
		new_chunks = krealloc(mdevice->devmem_chunks,
				sizeof(new_chunks[0]) * new_capacity,
				GFP_KERNEL);
		if (!new_chunks)
			goto err_release;
		mdevice->devmem_capacity = new_capacity;
		mdevice->devmem_chunks = new_chunks;
	}
	ptr = memremap_pages(&devmem->pagemap, numa_node_id());
	if (IS_ERR_OR_NULL(ptr)) {
		if (ptr)
			ret = PTR_ERR(ptr);
		else
			ret = -EFAULT;
		goto err_release;
	}

	devmem->mdevice = mdevice;
	pfn_first = devmem->pagemap.range.start >> PAGE_SHIFT;
	pfn_last = pfn_first + (range_len(&devmem->pagemap.range) >> PAGE_SHIFT);
	mdevice->devmem_chunks[mdevice->devmem_count++] = devmem;

	mutex_unlock(&mdevice->devmem_lock);

	pr_info("added new %u MB chunk (total %u chunks, %u MB) PFNs [0x%lx 0x%lx)\n",
		DEVMEM_CHUNK_SIZE / (1024 * 1024),
		mdevice->devmem_count,
		mdevice->devmem_count * (DEVMEM_CHUNK_SIZE / (1024 * 1024)),
		pfn_first, pfn_last);

	spin_lock(&mdevice->lock);
	for (pfn = pfn_first; pfn < pfn_last; ) {
		struct page *page = pfn_to_page(pfn);

		if (is_large && IS_ALIGNED(pfn, HPAGE_PMD_NR)
			&& (pfn + HPAGE_PMD_NR <= pfn_last)) {
			page->zone_device_data = mdevice->free_folios;
			mdevice->free_folios = page_folio(page);
			pfn += HPAGE_PMD_NR;
			continue;
		}

		page->zone_device_data = mdevice->free_pages;
		mdevice->free_pages = page;
		pfn++;
	}

	ret = 0;
	if (ppage) {
		if (is_large) {
			if (!mdevice->free_folios) {
				ret = -ENOMEM;
				goto err_unlock;
			}
			*ppage = folio_page(mdevice->free_folios, 0);
			mdevice->free_folios = (*ppage)->zone_device_data;
			mdevice->calloc += HPAGE_PMD_NR;
		} else if (mdevice->free_pages) {
			*ppage = mdevice->free_pages;
			mdevice->free_pages = (*ppage)->zone_device_data;
			mdevice->calloc++;
		} else {
			ret = -ENOMEM;
			goto err_unlock;
		}
	}
err_unlock:
	spin_unlock(&mdevice->lock);

	return ret;

err_release:
	mutex_unlock(&mdevice->devmem_lock);
	if (res && devmem->pagemap.type == MEMORY_DEVICE_PRIVATE)
		release_mem_region(devmem->pagemap.range.start,
				   range_len(&devmem->pagemap.range));
err_devmem:
	kfree(devmem);

	return ret;
}

/*
 * Out of free small pages: break up a free device folio into small pages.
 * A chunk is carved into folios or pages by the first allocation from it, and
 * a coherent device has only one chunk, so without this it can run out of
 * small pages with most of its memory free.  Called with mdevice->lock held.
 */
static void dmirror_devmem_break_folio(struct dmirror_device *mdevice)
{
	struct folio *folio = mdevice->free_folios;
	unsigned long i;

	if (!folio)
		return;
	mdevice->free_folios = folio_page(folio, 0)->zone_device_data;
	for (i = 0; i < HPAGE_PMD_NR; i++) {
		struct page *page = folio_page(folio, i);

		/* Make it a page of its own: this also clears compound_head. */
		if (i)
			((struct folio *)page)->pgmap = folio->pgmap;
		page->zone_device_data = mdevice->free_pages;
		mdevice->free_pages = page;
	}
}

static struct page *dmirror_devmem_alloc_page(struct dmirror *dmirror,
					      bool is_large)
{
	struct page *dpage = NULL;
	struct page *rpage = NULL;
	unsigned int order = is_large ? HPAGE_PMD_ORDER : 0;
	struct dmirror_device *mdevice = dmirror->mdevice;

	/*
	 * For ZONE_DEVICE private type, this is a fake device so we allocate
	 * real system memory to store our device memory.
	 * For ZONE_DEVICE coherent type we use the actual dpage to store the
	 * data and ignore rpage.
	 */
	if (dmirror_is_private_zone(mdevice)) {
		rpage = folio_page(folio_alloc(GFP_HIGHUSER, order), 0);
		if (!rpage)
			return NULL;
	}
	spin_lock(&mdevice->lock);

	if (!is_large && !mdevice->free_pages &&
	    !dmirror_is_private_zone(mdevice))
		dmirror_devmem_break_folio(mdevice);
	if (is_large && mdevice->free_folios) {
		dpage = folio_page(mdevice->free_folios, 0);
		mdevice->free_folios = dpage->zone_device_data;
		mdevice->calloc += 1 << order;
		spin_unlock(&mdevice->lock);
	} else if (!is_large && mdevice->free_pages) {
		dpage = mdevice->free_pages;
		mdevice->free_pages = dpage->zone_device_data;
		mdevice->calloc++;
		spin_unlock(&mdevice->lock);
	} else {
		spin_unlock(&mdevice->lock);
		if (dmirror_allocate_chunk(mdevice, &dpage, is_large))
			goto error;
	}

	zone_device_folio_init(page_folio(dpage),
			       page_pgmap(folio_page(page_folio(dpage), 0)),
			       order);
	dpage->zone_device_data = rpage;
	return dpage;

error:
	if (rpage)
		__free_pages(rpage, order);
	return NULL;
}

/*
 * No device folio was available for the @nr pages of a THP or PMD-sized hole
 * described by @src: fall back to a device page for each of them. If the
 * device runs out of those too, give back the ones allocated so far and
 * leave @dst empty: none of the pages migrates and they all stay in system
 * memory. A hole must not be left partially populated, migrate_vma_pages()
 * expects a destination page for each page of a hole it splits.
 */
static void dmirror_migrate_alloc_and_copy_small(struct dmirror *dmirror,
						 unsigned long src,
						 unsigned long *dst,
						 unsigned long nr)
{
	struct page *spage = migrate_pfn_to_page(src);
	int write = (src & MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0;
	struct page *dpage, *rpage;
	unsigned long i;

	for (i = 0; i < nr; i++) {
		dpage = dmirror_devmem_alloc_page(dmirror, false);
		if (!dpage)
			goto undo;
		rpage = BACKING_PAGE(dpage);
		rpage->zone_device_data = dmirror;

		dst[i] = migrate_pfn(page_to_pfn(dpage)) | write;
		if (spage)
			copy_highpage(rpage, pfn_to_page(page_to_pfn(spage) + i));
		else
			clear_highpage(rpage);
	}
	return;

undo:
	while (i--) {
		dpage = migrate_pfn_to_page(dst[i]);
		dst[i] = 0;
		unlock_page(dpage);
		put_page(dpage);
	}
}

static void dmirror_migrate_alloc_and_copy(struct migrate_vma *args,
					   struct dmirror *dmirror)
{
	const unsigned long *src = args->src;
	unsigned long *dst = args->dst;
	unsigned long addr;

	for (addr = args->start; addr < args->end; ) {
		struct page *spage;
		struct page *dpage;
		struct page *rpage;
		bool is_large = *src & MIGRATE_PFN_COMPOUND;
		int write = (*src & MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0;
		unsigned long nr = 1;

		if (!(*src & MIGRATE_PFN_MIGRATE))
			goto next;

		/*
		 * Note that spage might be NULL which is OK since it is an
		 * unallocated pte_none() or read-only zero page.
		 */
		spage = migrate_pfn_to_page(*src);
		if (WARN(spage && is_zone_device_page(spage),
		     "page already in device spage pfn: 0x%lx\n",
		     page_to_pfn(spage)))
			goto next;

		if (dmirror->flags & HMM_DMIRROR_FLAG_FAIL_ALLOC) {
			dmirror->flags &= ~HMM_DMIRROR_FLAG_FAIL_ALLOC;
			dpage = NULL;
		} else
			dpage = dmirror_devmem_alloc_page(dmirror, is_large);

		if (!dpage) {
			if (!is_large)
				goto next;

			nr = spage ? folio_nr_pages(page_folio(spage)) :
				     HPAGE_PMD_NR;
			nr = min(nr, (args->end - addr) >> PAGE_SHIFT);
			dmirror_migrate_alloc_and_copy_small(dmirror, *src,
							     dst, nr);
			src += nr;
			dst += nr;
			addr += nr << PAGE_SHIFT;
			continue;
		}

		rpage = BACKING_PAGE(dpage);

		/*
		 * Normally, a device would use the page->zone_device_data to
		 * point to the mirror but here we use it to hold the page for
		 * the simulated device memory and that page holds the pointer
		 * to the mirror.
		 */
		rpage->zone_device_data = dmirror;

		pr_debug("migrating from sys to dev pfn src: 0x%lx pfn dst: 0x%lx\n",
			 page_to_pfn(spage), page_to_pfn(dpage));

		*dst = migrate_pfn(page_to_pfn(dpage)) | write;

		if (is_large) {
			int i;
			struct folio *folio = page_folio(dpage);
			*dst |= MIGRATE_PFN_COMPOUND;

			if (folio_test_large(folio)) {
				for (i = 0; i < folio_nr_pages(folio); i++) {
					struct page *dst_page =
						pfn_to_page(page_to_pfn(rpage) + i);
					struct page *src_page =
						pfn_to_page(page_to_pfn(spage) + i);

					if (spage)
						copy_highpage(dst_page, src_page);
					else
						clear_highpage(dst_page);
					src++;
					dst++;
					addr += PAGE_SIZE;
				}
				continue;
			}
		}

		if (spage)
			copy_highpage(rpage, spage);
		else
			clear_highpage(rpage);

next:
		src++;
		dst++;
		addr += PAGE_SIZE;
	}
}

static int dmirror_check_atomic(struct dmirror *dmirror, unsigned long start,
			     unsigned long end)
{
	unsigned long pfn;

	for (pfn = start >> PAGE_SHIFT; pfn < (end >> PAGE_SHIFT); pfn++) {
		void *entry;

		entry = xa_load(&dmirror->pt, pfn);
		if (xa_pointer_tag(entry) == DPT_XA_TAG_ATOMIC)
			return -EPERM;
	}

	return 0;
}

static int dmirror_atomic_map(unsigned long addr, struct page *page,
		struct dmirror *dmirror)
{
	void *entry;

	/* Map the migrated pages into the device's page tables. */
	mutex_lock(&dmirror->mutex);

	entry = xa_tag_pointer(page, DPT_XA_TAG_ATOMIC);
	entry = xa_store(&dmirror->pt, addr >> PAGE_SHIFT, entry, GFP_ATOMIC);
	if (xa_is_err(entry)) {
		mutex_unlock(&dmirror->mutex);
		return xa_err(entry);
	}

	mutex_unlock(&dmirror->mutex);
	return 0;
}

/*
 * Begin a migration to the device whose pages
 * dmirror_migrate_finalize_and_map() is to map.  The migration's own
 * MMU_NOTIFY_MIGRATE invalidations bump the notifier's sequence, so that
 * cannot tell whether anything else invalidated the range meanwhile: the
 * count of the other invalidations can.  It is read before
 * mmu_interval_read_begin(), which waits for the invalidations in progress,
 * so that whatever they do comes before the collection.  A migration of
 * this device does not change the pages another one has collected, which
 * it holds locked until it has mapped them.
 */
static unsigned long dmirror_map_begin(struct dmirror *dmirror)
{
	unsigned long seq;

	mutex_lock(&dmirror->mutex);
	seq = dmirror->foreign_inval;
	mutex_unlock(&dmirror->mutex);
	mmu_interval_read_begin(&dmirror->notifier);
	return seq;
}

/* Did every page of @args migrate, after migrate_vma_pages()? */
static bool dmirror_migrated_all(const struct migrate_vma *args)
{
	unsigned long i, npages = (args->end - args->start) >> PAGE_SHIFT;

	for (i = 0; i < npages;
	     i += args->src[i] & MIGRATE_PFN_COMPOUND ? HPAGE_PMD_NR : 1)
		if (!(args->src[i] & MIGRATE_PFN_MIGRATE))
			return false;
	return true;
}

static int dmirror_migrate_finalize_and_map(struct migrate_vma *args,
					    struct dmirror *dmirror,
					    unsigned long map_seq)
{
	unsigned long start = args->start;
	unsigned long end = args->end;
	const unsigned long *src = args->src;
	const unsigned long *dst = args->dst;
	unsigned long pfn;
	const unsigned long start_pfn = start >> PAGE_SHIFT;
	const unsigned long end_pfn = end >> PAGE_SHIFT;

	/* Map the migrated pages into the device's page tables. */
	mutex_lock(&dmirror->mutex);

	/*
	 * An invalidation other than the migration's own since
	 * dmirror_map_begin() may have unmapped or write-protected some of
	 * the pages, finding nothing to clear in the mirror yet. Mapping them
	 * now would leave stale entries, so map nothing and let the caller
	 * mirror what is left of them once the migration is finished.
	 */
	if (dmirror->foreign_inval != map_seq) {
		mutex_unlock(&dmirror->mutex);
		return -EAGAIN;
	}

	for (pfn = start_pfn; pfn < end_pfn; pfn++, src++, dst++) {
		struct page *dpage;
		void *entry;
		int nr, i;
		struct page *rpage;

		if (!(*src & MIGRATE_PFN_MIGRATE))
			continue;

		dpage = migrate_pfn_to_page(*dst);
		if (!dpage)
			continue;

		if (*dst & MIGRATE_PFN_COMPOUND)
			nr = folio_nr_pages(page_folio(dpage));
		else
			nr = 1;

		WARN_ON_ONCE(end_pfn < start_pfn + nr);

		rpage = BACKING_PAGE(dpage);
		VM_WARN_ON(folio_nr_pages(page_folio(rpage)) != nr);

		for (i = 0; i < nr; i++) {
			entry = folio_page(page_folio(rpage), i);
			if (*dst & MIGRATE_PFN_WRITE)
				entry = xa_tag_pointer(entry, DPT_XA_TAG_WRITE);
			entry = xa_store(&dmirror->pt, pfn + i, entry, GFP_ATOMIC);
			if (xa_is_err(entry)) {
				mutex_unlock(&dmirror->mutex);
				return xa_err(entry);
			}
		}
	}

	mutex_unlock(&dmirror->mutex);
	return 0;
}

/*
 * Mirror the pages of this device mapped in [start, end) and nothing else,
 * nothing is faulted: used after a migration to the device raced with an
 * invalidation, in place of dmirror_migrate_finalize_and_map(). @pfns has
 * room for the range. The caller holds the mmap lock.
 */
static void dmirror_map_device_range(struct dmirror *dmirror,
				     unsigned long start, unsigned long end,
				     unsigned long *pfns)
{
	struct hmm_range range = {
		.notifier = &dmirror->notifier,
		.start = start,
		.end = end,
		.hmm_pfns = pfns,
		.dev_private_owner = dmirror->mdevice,
	};
	unsigned long timeout =
		jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
	unsigned long i;
	int ret;

	while (true) {
		if (time_after(jiffies, timeout))
			return;

		range.notifier_seq = mmu_interval_read_begin(range.notifier);
		ret = hmm_range_fault(&range);
		if (ret == -EBUSY)
			continue;
		if (ret)
			return;

		mutex_lock(&dmirror->mutex);
		if (!mmu_interval_read_retry(range.notifier,
					     range.notifier_seq))
			break;
		mutex_unlock(&dmirror->mutex);
	}

	for (i = 0; i < (end - start) >> PAGE_SHIFT; i++) {
		struct page *page;
		void *entry;

		if (!(pfns[i] & HMM_PFN_VALID))
			continue;
		page = hmm_pfn_to_page(pfns[i]);
		if ((!is_device_private_page(page) &&
		     !is_device_coherent_page(page)) ||
		    page_pgmap(page)->owner != dmirror->mdevice)
			continue;

		entry = dmirror_backing_page(page);
		if (pfns[i] & HMM_PFN_WRITE)
			entry = xa_tag_pointer(entry, DPT_XA_TAG_WRITE);
		entry = xa_store(&dmirror->pt, (start >> PAGE_SHIFT) + i, entry,
				 GFP_ATOMIC);
		if (xa_is_err(entry))
			break;
	}
	mutex_unlock(&dmirror->mutex);
}

static int dmirror_exclusive(struct dmirror *dmirror,
			     struct hmm_dmirror_cmd *cmd)
{
	unsigned long start, end, addr;
	unsigned long size = cmd->npages << PAGE_SHIFT;
	struct mm_struct *mm = dmirror->notifier.mm;
	struct dmirror_bounce bounce;
	int ret = 0;

	start = cmd->addr;
	end = start + size;
	if (end < start)
		return -EINVAL;

	/* Since the mm is for the mirrored process, get a reference first. */
	if (!mmget_not_zero(mm))
		return -EINVAL;

	mmap_read_lock(mm);
	for (addr = start; !ret && addr < end; addr += PAGE_SIZE) {
		struct folio *folio;
		struct page *page;

		page = make_device_exclusive(mm, addr, NULL, &folio);
		if (IS_ERR(page)) {
			ret = PTR_ERR(page);
			break;
		}

		ret = dmirror_atomic_map(addr, page, dmirror);
		folio_unlock(folio);
		folio_put(folio);
	}
	mmap_read_unlock(mm);
	mmput(mm);

	if (ret)
		return ret;

	/* Return the migrated data for verification. */
	ret = dmirror_bounce_init(&bounce, start, size);
	if (ret)
		return ret;
	mutex_lock(&dmirror->mutex);
	ret = dmirror_do_read(dmirror, start, end, &bounce);
	mutex_unlock(&dmirror->mutex);
	if (ret == 0) {
		if (copy_to_user(u64_to_user_ptr(cmd->ptr), bounce.ptr,
				 bounce.size))
			ret = -EFAULT;
	}

	cmd->cpages = bounce.cpages;
	dmirror_bounce_fini(&bounce);
	return ret;
}

static vm_fault_t dmirror_devmem_fault_alloc_and_copy(struct migrate_vma *args,
						      struct dmirror *dmirror)
{
	const unsigned long *src = args->src;
	unsigned long *dst = args->dst;
	unsigned long start = args->start;
	unsigned long end = args->end;
	unsigned long addr;
	unsigned int order = 0;
	int i;

	for (addr = start; addr < end; ) {
		struct page *dpage, *spage;

		spage = migrate_pfn_to_page(*src);
		if (!spage || !(*src & MIGRATE_PFN_MIGRATE)) {
			addr += PAGE_SIZE;
			goto next;
		}

		if (WARN_ON(!is_device_private_page(spage) &&
			    !is_device_coherent_page(spage))) {
			addr += PAGE_SIZE;
			goto next;
		}

		spage = BACKING_PAGE(spage);
		order = folio_order(page_folio(spage));
		if (order)
			*dst = MIGRATE_PFN_COMPOUND;
		if (*src & MIGRATE_PFN_WRITE)
			*dst |= MIGRATE_PFN_WRITE;

		if (dmirror->flags & HMM_DMIRROR_FLAG_FAIL_ALLOC) {
			dmirror->flags &= ~HMM_DMIRROR_FLAG_FAIL_ALLOC;
			*dst &= ~MIGRATE_PFN_COMPOUND;
			dpage = NULL;
		} else if (order) {
			dpage = folio_page(vma_alloc_folio(GFP_HIGHUSER_MOVABLE,
						order, args->vma, addr), 0);
		} else {
			dpage = alloc_page_vma(GFP_HIGHUSER_MOVABLE, args->vma, addr);
		}

		if (!dpage && !order)
			return VM_FAULT_OOM;

		if (dpage) {
			pr_debug("migrating from dev to sys pfn src: 0x%lx pfn dst: 0x%lx\n",
					page_to_pfn(spage), page_to_pfn(dpage));
			lock_page(dpage);
			*dst |= migrate_pfn(page_to_pfn(dpage));
		}

		for (i = 0; i < (1 << order); i++) {
			struct page *src_page;
			struct page *dst_page;

			/* Try with smaller pages if large allocation fails */
			if (!dpage && order) {
				dpage = alloc_page_vma(GFP_HIGHUSER_MOVABLE, args->vma, addr);
				if (!dpage) {
					/* Unlock and free pages already allocated. */
					while (i > 0) {
						struct page *fpage;

						fpage = migrate_pfn_to_page(dst[--i]);
						unlock_page(fpage);
						__free_page(fpage);
					}
					/* Clear remaining dst entries to avoid
					 * migrate_vma_pages/finalize() using
					 * uninitialized values.
					 */
					while (i < (1 << order)) {
						dst[i] = 0;
						i++;
					}
					return VM_FAULT_OOM;
				}
				lock_page(dpage);
				dst[i] = migrate_pfn(page_to_pfn(dpage));
				dst_page = pfn_to_page(page_to_pfn(dpage));
				dpage = NULL; /* For the next iteration */
			} else {
				dst_page = pfn_to_page(page_to_pfn(dpage) + i);
			}

			src_page = pfn_to_page(page_to_pfn(spage) + i);

			xa_erase(&dmirror->pt, addr >> PAGE_SHIFT);
			addr += PAGE_SIZE;
			copy_highpage(dst_page, src_page);
		}
next:
		src += 1 << order;
		dst += 1 << order;
	}
	return 0;
}

static unsigned long
dmirror_successful_migrated_pages(struct migrate_vma *migrate)
{
	unsigned long cpages = 0;
	unsigned long i;

	for (i = 0; i < migrate->npages; i++) {
		if (!(migrate->src[i] & MIGRATE_PFN_VALID) ||
		    !(migrate->src[i] & MIGRATE_PFN_MIGRATE))
			continue;
		/* A THP that migrated whole has one entry for all its pages. */
		if (migrate->src[i] & MIGRATE_PFN_COMPOUND) {
			struct page *page = migrate_pfn_to_page(migrate->src[i]);

			cpages += folio_nr_pages(page_folio(page));
		} else {
			cpages++;
		}
	}
	return cpages;
}

static int dmirror_migrate_to_system(struct dmirror *dmirror,
				     struct hmm_dmirror_cmd *cmd)
{
	unsigned long start, end, addr;
	unsigned long size = cmd->npages << PAGE_SHIFT;
	struct mm_struct *mm = dmirror->notifier.mm;
	struct vm_area_struct *vma;
	struct migrate_vma args = { 0 };
	unsigned long next;
	int ret;
	unsigned long *src_pfns;
	unsigned long *dst_pfns;

	start = cmd->addr;
	end = start + size;
	if (end < start)
		return -EINVAL;

	/* Since the mm is for the mirrored process, get a reference first. */
	if (!mmget_not_zero(mm))
		return -EINVAL;

	src_pfns = kvcalloc(PTRS_PER_PTE, sizeof(*src_pfns), GFP_KERNEL | __GFP_NOFAIL);
	dst_pfns = kvcalloc(PTRS_PER_PTE, sizeof(*dst_pfns), GFP_KERNEL | __GFP_NOFAIL);

	cmd->cpages = 0;
	mmap_read_lock(mm);
	for (addr = start; addr < end; addr = next) {
		vma = vma_lookup(mm, addr);
		if (!vma || !(vma->vm_flags & VM_READ)) {
			ret = -EINVAL;
			goto out;
		}
		next = min(end, addr + (PTRS_PER_PTE << PAGE_SHIFT));
		if (next > vma->vm_end)
			next = vma->vm_end;

		args.vma = vma;
		args.src = src_pfns;
		args.dst = dst_pfns;
		args.start = addr;
		args.end = next;
		args.pgmap_owner = dmirror->mdevice;
		args.flags = dmirror_select_device(dmirror) | MIGRATE_VMA_SELECT_COMPOUND;

		ret = migrate_vma_setup(&args);
		if (ret)
			goto out;

		pr_debug("Migrating from device mem to sys mem\n");
		if (dmirror_devmem_fault_alloc_and_copy(&args, dmirror)) {
			/* Migrate what was copied: see dmirror_devmem_fault() */
			migrate_vma_pages(&args);
			migrate_vma_finalize(&args);
			ret = -ENOMEM;
			goto out;
		}

		migrate_vma_pages(&args);
		cmd->cpages += dmirror_successful_migrated_pages(&args);
		migrate_vma_finalize(&args);
	}
out:
	mmap_read_unlock(mm);
	mmput(mm);
	kvfree(src_pfns);
	kvfree(dst_pfns);

	return ret;
}

static int dmirror_migrate_to_device(struct dmirror *dmirror,
				struct hmm_dmirror_cmd *cmd)
{
	unsigned long start, end, addr;
	unsigned long size = cmd->npages << PAGE_SHIFT;
	struct mm_struct *mm = dmirror->notifier.mm;
	struct vm_area_struct *vma;
	struct dmirror_bounce bounce;
	struct migrate_vma args = { 0 };
	unsigned long notifier_seq;
	unsigned long next;
	bool all;
	int ret;
	unsigned long *src_pfns = NULL;
	unsigned long *dst_pfns = NULL;

	start = cmd->addr;
	end = start + size;
	if (end < start)
		return -EINVAL;

	/* Since the mm is for the mirrored process, get a reference first. */
	if (!mmget_not_zero(mm))
		return -EINVAL;

	src_pfns = kvcalloc(PTRS_PER_PTE, sizeof(*src_pfns),
			  GFP_KERNEL | __GFP_NOFAIL);
	dst_pfns = kvcalloc(PTRS_PER_PTE, sizeof(*dst_pfns),
			  GFP_KERNEL | __GFP_NOFAIL);

	ret = 0;
	mmap_read_lock(mm);
	for (addr = start; addr < end; addr = next) {
		vma = vma_lookup(mm, addr);
		if (!vma || !(vma->vm_flags & VM_READ)) {
			ret = -EINVAL;
			goto out;
		}
		next = min(end, addr + (PTRS_PER_PTE << PAGE_SHIFT));
		if (next > vma->vm_end)
			next = vma->vm_end;

		args.vma = vma;
		args.src = src_pfns;
		args.dst = dst_pfns;
		args.start = addr;
		args.end = next;
		args.pgmap_owner = dmirror->mdevice;
		args.flags = MIGRATE_VMA_SELECT_SYSTEM |
				MIGRATE_VMA_SELECT_COMPOUND;
		notifier_seq = dmirror_map_begin(dmirror);
		ret = migrate_vma_setup(&args);
		if (ret)
			goto out;

		pr_debug("Migrating from sys mem to device mem\n");
		dmirror_migrate_alloc_and_copy(&args, dmirror);
		migrate_vma_pages(&args);
		ret = dmirror_migrate_finalize_and_map(&args, dmirror,
						       notifier_seq);
		all = dmirror_migrated_all(&args);
		migrate_vma_finalize(&args);
		/*
		 * The migration's invalidation cleared the mirror of the whole
		 * range: mirror what is on the device now if it raced with
		 * another invalidation, or did not migrate every page.
		 */
		if (ret == -EAGAIN || (!ret && !all))
			dmirror_map_device_range(dmirror, addr, next, src_pfns);
	}

	/*
	 * Return the migrated data for verification, read before the mmap
	 * lock is dropped: an invalidation clears the mirror, and khugepaged
	 * invalidates the range when it takes the lock to collapse it (also
	 * when the collapse then fails on the device pages).
	 */
	ret = dmirror_bounce_init(&bounce, start, size);
	if (ret)
		goto out;
	mutex_lock(&dmirror->mutex);
	ret = dmirror_do_read(dmirror, start, end, &bounce);
	mutex_unlock(&dmirror->mutex);
	mmap_read_unlock(mm);
	mmput(mm);
	if (ret == 0) {
		if (copy_to_user(u64_to_user_ptr(cmd->ptr), bounce.ptr,
				 bounce.size))
			ret = -EFAULT;
	}
	cmd->cpages = bounce.cpages;
	dmirror_bounce_fini(&bounce);
	goto free_mem;

out:
	mmap_read_unlock(mm);
	mmput(mm);
free_mem:
	kvfree(src_pfns);
	kvfree(dst_pfns);
	return ret;
}

enum dmirror_fault_walk {
	DMIRROR_ONE_WALK,	/* hmm_range_fault() with HMM_PFN_REQ_MIGRATE */
	DMIRROR_TWO_WALKS,	/* hmm_range_fault(), then migrate_vma_setup() */
	DMIRROR_SETUP_FAULT,	/* migrate_vma_setup() with MIGRATE_VMA_FAULT */
	DMIRROR_LIKE_XE,	/* what xe's GPU fault handler calls */
	DMIRROR_LIKE_AMDKFD,	/* what amdkfd's retry fault handler calls */
};

/*
 * Fault in and mirror [start, end) the way a driver maps a range for its
 * device after migrating it (drm_gpusvm_get_pages(),
 * amdgpu_hmm_range_get_pages()): hmm_range_fault() with HMM_PFN_REQ_FAULT,
 * the pages of this device reported as they are, until no invalidation
 * raced with it.  @pfns has room for the range.  The caller holds the mmap
 * lock.  A read-only page of this device to map for write (COW-shared after
 * fork(), or write-protected by mprotect()) goes back to system memory
 * first, where the write fault breaks COW: for that the mmap lock is
 * dropped, and *@dropped says so (VMAs the caller looked up are stale).
 */
static int dmirror_fault_and_map(struct dmirror *dmirror, unsigned long start,
				 unsigned long end, unsigned long *pfns,
				 bool write, bool *dropped)
{
	struct mm_struct *mm = dmirror->notifier.mm;
	struct hmm_dmirror_cmd cmd = {
		.addr = start,
		.npages = (end - start) >> PAGE_SHIFT,
	};
	struct hmm_range range = {
		.notifier = &dmirror->notifier,
		.start = start,
		.end = end,
		.hmm_pfns = pfns,
		.default_flags = HMM_PFN_REQ_FAULT |
				 (write ? HMM_PFN_REQ_WRITE : 0),
		.dev_private_owner = dmirror->mdevice,
	};
	unsigned long timeout =
		jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
	int ret;

again:
	for (;;) {
		if (time_after(jiffies, timeout))
			return -EBUSY;
		range.notifier_seq = mmu_interval_read_begin(range.notifier);
		ret = hmm_range_fault(&range);
		if (ret == -EBUSY)
			continue;
		if (ret)
			return ret;
		mutex_lock(&dmirror->mutex);
		if (!mmu_interval_read_retry(range.notifier,
					     range.notifier_seq))
			break;
		mutex_unlock(&dmirror->mutex);
	}
	ret = dmirror_do_fault(dmirror, &range);
	mutex_unlock(&dmirror->mutex);
	if (ret != -EAGAIN)
		return ret;
	*dropped = true;
	mmap_read_unlock(mm);
	ret = dmirror_migrate_to_system(dmirror, &cmd);
	mmap_read_lock(mm);
	if (ret)
		return ret;
	goto again;
}

/*
 * What hmm_range_fault() reports for the collection must be what src holds
 * (include/linux/hmm.h): HMM_PFN_MIGRATE exactly where src has
 * MIGRATE_PFN_MIGRATE (the entries a compound one stands for included),
 * with HMM_PFN_VALID, the same page and its write bit where src has a page,
 * without HMM_PFN_VALID for a hole.  A driver that zero-fills what is
 * reported as a hole would lose data otherwise.
 */
static bool dmirror_output_matches_src(const unsigned long *hmm_pfns,
				       const struct migrate_vma *args)
{
	unsigned long npages = (args->end - args->start) >> PAGE_SHIFT;
	unsigned long i, j, nr;

	for (i = 0; i < npages; i += nr) {
		unsigned long src = args->src[i];
		struct page *page = migrate_pfn_to_page(src);

		nr = 1;
		if ((src & MIGRATE_PFN_MIGRATE) && (src & MIGRATE_PFN_COMPOUND))
			nr = min(npages - i, 1UL << (PMD_SHIFT - PAGE_SHIFT));
		for (j = 0; j < nr; j++) {
			unsigned long h = hmm_pfns[i + j];

			if (!(src & MIGRATE_PFN_MIGRATE)) {
				if (h & HMM_PFN_MIGRATE)
					return false;
				continue;
			}
			if (!(h & HMM_PFN_MIGRATE) ||
			    !(h & HMM_PFN_VALID) != !page)
				return false;
			if (page &&
			    (hmm_pfn_to_page(h) != folio_page(page_folio(page), j) ||
			     !(h & HMM_PFN_WRITE) != !(src & MIGRATE_PFN_WRITE)))
				return false;
		}
	}
	return true;
}

/*
 * Fault in [addr, end), at most one PMD, collect it for migration the way
 * @walk says and migrate it to device memory.  @bufs holds the hmm pfns, src
 * and dst arrays, PTRS_PER_PTE entries each.  Called and returns with the
 * mmap lock held, but drops it to wait for invalidations, which it counts in
 * @retries.
 */
static int dmirror_migrate_on_fault_chunk(struct dmirror *dmirror,
					  struct mm_struct *mm,
					  unsigned long addr, unsigned long end,
					  enum dmirror_fault_walk walk,
					  struct migrate_vma *args,
					  unsigned long *bufs, u64 *retries)
{
	unsigned long timeout =
		jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
	struct hmm_range range = {
		.notifier = &dmirror->notifier,
		.start = addr,
		.end = end,
		.hmm_pfns = bufs,
		.default_flags = HMM_PFN_REQ_FAULT,
		.dev_private_owner = dmirror->mdevice,
	};
	u64 flags = READ_ONCE(dmirror->flags);
	bool write = !(flags & HMM_DMIRROR_FLAG_READ_FAULT);
	bool dropped = false;
	struct vm_area_struct *vma;
	unsigned long map_seq;
	int ret, bad = 0;

	if (write)
		range.default_flags |= HMM_PFN_REQ_WRITE;

	for (;;) {
		vma = vma_lookup(mm, addr);
		if (!vma || !(vma->vm_flags & VM_READ) || end > vma->vm_end)
			return -EINVAL;

		memset(args, 0, sizeof(*args));
		args->vma = vma;
		args->src = bufs + PTRS_PER_PTE;
		args->dst = bufs + 2 * PTRS_PER_PTE;
		args->start = addr;
		args->end = end;
		args->pgmap_owner = dmirror->mdevice;
		args->flags = MIGRATE_VMA_SELECT_SYSTEM;
		if (!(flags & HMM_DMIRROR_FLAG_NO_COMPOUND))
			args->flags |= MIGRATE_VMA_SELECT_COMPOUND;

		map_seq = dmirror_map_begin(dmirror);
		range.notifier_seq = mmu_interval_read_begin(range.notifier);
		switch (walk) {
		case DMIRROR_ONE_WALK:
			range.default_flags |= HMM_PFN_REQ_MIGRATE;
			range.migrate = args;
			ret = hmm_range_fault(&range);
			/* migrated as usual, then reported as -EIO */
			if (!ret && !dmirror_output_matches_src(bufs, args))
				bad = -EIO;
			break;
		case DMIRROR_TWO_WALKS:
			ret = hmm_range_fault(&range);
			if (!ret)
				ret = migrate_vma_setup(args);
			break;
		case DMIRROR_LIKE_XE:
			/*
			 * drm_pagemap_migrate_to_devmem() migrates all or
			 * nothing, without faulting; when something could not
			 * be collected, xe faults the range in with
			 * drm_gpusvm_get_pages() and migrates again, once.
			 * Converted to the one walk, it asks migrate_vma_setup()
			 * to fault what it cannot collect.
			 */
			if (flags & HMM_DMIRROR_FLAG_SETUP_FAULT)
				args->flags |= MIGRATE_VMA_FAULT;
			ret = migrate_vma_setup(args);
			if (ret || dmirror_migrated_all(args))
				break;
			migrate_vma_finalize(args);
			dropped = false;
			ret = dmirror_fault_and_map(dmirror, addr, end, bufs,
						    write, &dropped);
			/* args->vma may be gone: start over */
			if (!ret && dropped)
				ret = -EBUSY;
			if (!ret)
				ret = migrate_vma_setup(args);
			if (ret || dmirror_migrated_all(args))
				break;
			/* Given up: the device maps system memory. */
			migrate_vma_finalize(args);
			return 0;
		case DMIRROR_LIKE_AMDKFD:
			/* svm_migrate_vma_to_vram(): what it can, no fault */
			ret = migrate_vma_setup(args);
			break;
		default:
			if (!(flags & HMM_DMIRROR_FLAG_READ_FAULT))
				args->flags |= MIGRATE_VMA_FAULT;
			ret = migrate_vma_setup(args);
			break;
		}
		if (ret != -EBUSY)
			break;
		/* Let the invalidation finish, then start over. */
		(*retries)++;
		mmap_read_unlock(mm);
		if (time_after(jiffies, timeout))
			ret = -ETIMEDOUT;
		else
			cond_resched();
		mmap_read_lock(mm);
		if (ret == -ETIMEDOUT)
			return -EBUSY;
	}
	if (ret)
		return ret;

	if (walk == DMIRROR_LIKE_XE || walk == DMIRROR_LIKE_AMDKFD) {
		/*
		 * These drivers map the range for the device afterwards with
		 * a walk of its own, faulting in what was not migrated
		 * (svm_range_validate_and_map() for amdkfd).
		 */
		if (!(flags & HMM_DMIRROR_FLAG_SETUP_ONLY)) {
			dmirror_migrate_alloc_and_copy(args, dmirror);
			migrate_vma_pages(args);
		}
		migrate_vma_finalize(args);
		if (flags & HMM_DMIRROR_FLAG_SETUP_ONLY)
			return 0;
		return dmirror_fault_and_map(dmirror, addr, end, bufs, write,
					     &dropped);
	}
	if (!(flags & HMM_DMIRROR_FLAG_SETUP_ONLY)) {
		dmirror_migrate_alloc_and_copy(args, dmirror);
		migrate_vma_pages(args);
		ret = dmirror_migrate_finalize_and_map(args, dmirror,
						       map_seq);
		if (!ret && !dmirror_migrated_all(args))
			ret = -EAGAIN;
	}
	migrate_vma_finalize(args);
	/*
	 * Raced with an invalidation, or did not migrate every page (whose
	 * mirror the migration's invalidation cleared): mirror what is on the
	 * device now.
	 */
	if (ret == -EAGAIN) {
		dmirror_map_device_range(dmirror, addr, end, bufs);
		ret = 0;
	}
	return ret ? ret : bad;
}

static int dmirror_migrate_on_fault(struct dmirror *dmirror,
				    struct hmm_dmirror_cmd *cmd,
				    enum dmirror_fault_walk walk)
{
	unsigned long start = cmd->addr;
	unsigned long end = start + (cmd->npages << PAGE_SHIFT);
	struct mm_struct *mm = dmirror->notifier.mm;
	struct dmirror_bounce bounce;
	struct migrate_vma args;
	unsigned long addr, next;
	unsigned long *bufs;
	int ret = 0;

	if (!mmget_not_zero(mm))
		return -EINVAL;
	bufs = kvcalloc(3 * PTRS_PER_PTE, sizeof(*bufs), GFP_KERNEL);
	if (!bufs) {
		mmput(mm);
		return -ENOMEM;
	}

	mmap_read_lock(mm);
	/* PMD-aligned chunks within one VMA, so THPs can migrate whole. */
	for (addr = start; addr < end && !ret; addr = next) {
		struct vm_area_struct *vma = vma_lookup(mm, addr);

		next = min(end, (addr & PMD_MASK) + PMD_SIZE);
		if (vma)
			next = min(next, vma->vm_end);
		ret = dmirror_migrate_on_fault_chunk(dmirror, mm, addr, next,
						     walk, &args, bufs,
						     &cmd->faults);
	}
	kvfree(bufs);
	/* Nothing was migrated with HMM_DMIRROR_FLAG_SETUP_ONLY. */
	if (ret || (READ_ONCE(dmirror->flags) & HMM_DMIRROR_FLAG_SETUP_ONLY))
		goto out;

	/*
	 * Return the data, as the device sees it, for verification: read
	 * under the mmap lock, as dmirror_migrate_to_device() does.
	 */
	ret = dmirror_bounce_init(&bounce, start, end - start);
	if (ret)
		goto out;
	mutex_lock(&dmirror->mutex);
	ret = dmirror_do_read(dmirror, start, end, &bounce);
	mutex_unlock(&dmirror->mutex);
	mmap_read_unlock(mm);
	mmput(mm);
	if (!ret && copy_to_user(u64_to_user_ptr(cmd->ptr), bounce.ptr,
				 bounce.size))
		ret = -EFAULT;
	cmd->cpages = bounce.cpages;
	dmirror_bounce_fini(&bounce);
	return ret;

out:
	mmap_read_unlock(mm);
	mmput(mm);
	return ret;
}

static void dmirror_mkentry(struct dmirror *dmirror, struct hmm_range *range,
			    unsigned char *perm, unsigned long entry)
{
	struct page *page;

	if (entry & HMM_PFN_ERROR) {
		*perm = HMM_DMIRROR_PROT_ERROR;
		return;
	}
	if (!(entry & HMM_PFN_VALID)) {
		*perm = HMM_DMIRROR_PROT_NONE;
		return;
	}

	page = hmm_pfn_to_page(entry);
	if (is_device_private_page(page)) {
		/* Is the page migrated to this device or some other? */
		if (dmirror->mdevice == dmirror_page_to_device(page))
			*perm = HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL;
		else
			*perm = HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE;
	} else if (is_device_coherent_page(page)) {
		/* Is the page migrated to this device or some other? */
		if (dmirror->mdevice == dmirror_page_to_device(page))
			*perm = HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL;
		else
			*perm = HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE;
	} else if (is_zero_pfn(page_to_pfn(page)))
		*perm = HMM_DMIRROR_PROT_ZERO;
	else
		*perm = HMM_DMIRROR_PROT_NONE;
	if (entry & HMM_PFN_WRITE)
		*perm |= HMM_DMIRROR_PROT_WRITE;
	else
		*perm |= HMM_DMIRROR_PROT_READ;
	if (hmm_pfn_to_map_order(entry) + PAGE_SHIFT == PMD_SHIFT)
		*perm |= HMM_DMIRROR_PROT_PMD;
	else if (hmm_pfn_to_map_order(entry) + PAGE_SHIFT == PUD_SHIFT)
		*perm |= HMM_DMIRROR_PROT_PUD;
}

static bool dmirror_snapshot_invalidate(struct mmu_interval_notifier *mni,
				const struct mmu_notifier_range *range,
				unsigned long cur_seq)
{
	struct dmirror_interval *dmi =
		container_of(mni, struct dmirror_interval, notifier);
	struct dmirror *dmirror = dmi->dmirror;

	if (mmu_notifier_range_blockable(range))
		mutex_lock(&dmirror->mutex);
	else if (!mutex_trylock(&dmirror->mutex))
		return false;

	/*
	 * Snapshots only need to set the sequence number since any
	 * invalidation in the interval invalidates the whole snapshot.
	 */
	mmu_interval_set_seq(mni, cur_seq);

	mutex_unlock(&dmirror->mutex);
	return true;
}

static const struct mmu_interval_notifier_ops dmirror_mrn_ops = {
	.invalidate = dmirror_snapshot_invalidate,
};

static int dmirror_range_snapshot(struct dmirror *dmirror,
				  struct hmm_range *range,
				  unsigned char *perm)
{
	struct mm_struct *mm = dmirror->notifier.mm;
	struct dmirror_interval notifier;
	unsigned long timeout =
		jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
	unsigned long i;
	unsigned long n;
	int ret = 0;

	notifier.dmirror = dmirror;
	range->notifier = &notifier.notifier;

	ret = mmu_interval_notifier_insert(range->notifier, mm,
			range->start, range->end - range->start,
			&dmirror_mrn_ops);
	if (ret)
		return ret;

	while (true) {
		if (time_after(jiffies, timeout)) {
			ret = -EBUSY;
			goto out;
		}

		range->notifier_seq = mmu_interval_read_begin(range->notifier);

		mmap_read_lock(mm);
		ret = hmm_range_fault(range);
		mmap_read_unlock(mm);
		if (ret) {
			if (ret == -EBUSY)
				continue;
			goto out;
		}

		mutex_lock(&dmirror->mutex);
		if (mmu_interval_read_retry(range->notifier,
					    range->notifier_seq)) {
			mutex_unlock(&dmirror->mutex);
			continue;
		}
		break;
	}

	n = (range->end - range->start) >> PAGE_SHIFT;
	for (i = 0; i < n; i++)
		dmirror_mkentry(dmirror, range, perm + i, range->hmm_pfns[i]);

	mutex_unlock(&dmirror->mutex);
out:
	mmu_interval_notifier_remove(range->notifier);
	return ret;
}

static int dmirror_snapshot(struct dmirror *dmirror,
			    struct hmm_dmirror_cmd *cmd)
{
	struct mm_struct *mm = dmirror->notifier.mm;
	unsigned long start, end;
	unsigned long size = cmd->npages << PAGE_SHIFT;
	unsigned long addr;
	unsigned long next;
	unsigned long pfns[32];
	unsigned char perm[32];
	char __user *uptr;
	struct hmm_range range = {
		.hmm_pfns = pfns,
		.dev_private_owner = dmirror->mdevice,
	};
	int ret = 0;

	start = cmd->addr;
	end = start + size;
	if (end < start)
		return -EINVAL;

	/* Since the mm is for the mirrored process, get a reference first. */
	if (!mmget_not_zero(mm))
		return -EINVAL;

	/*
	 * Register a temporary notifier to detect invalidations even if it
	 * overlaps with other mmu_interval_notifiers.
	 */
	uptr = u64_to_user_ptr(cmd->ptr);
	for (addr = start; addr < end; addr = next) {
		unsigned long n;

		next = min(addr + (ARRAY_SIZE(pfns) << PAGE_SHIFT), end);
		range.start = addr;
		range.end = next;

		ret = dmirror_range_snapshot(dmirror, &range, perm);
		if (ret)
			break;

		n = (range.end - range.start) >> PAGE_SHIFT;
		if (copy_to_user(uptr, perm, n)) {
			ret = -EFAULT;
			break;
		}

		cmd->cpages += n;
		uptr += n;
	}
	mmput(mm);

	return ret;
}

/* Removes free pages from the free list so they can't be re-allocated */
static void dmirror_remove_free_pages(struct dmirror_chunk *devmem)
{
	struct dmirror_device *mdevice = devmem->mdevice;
	struct page *page;
	struct folio *folio;


	for (folio = mdevice->free_folios; folio; folio = folio_zone_device_data(folio))
		if (dmirror_page_to_chunk(folio_page(folio, 0)) == devmem)
			mdevice->free_folios = folio_zone_device_data(folio);
	for (page = mdevice->free_pages; page; page = page->zone_device_data)
		if (dmirror_page_to_chunk(page) == devmem)
			mdevice->free_pages = page->zone_device_data;
}

static void dmirror_device_remove_chunks(struct dmirror_device *mdevice)
{
	unsigned int i;

	mutex_lock(&mdevice->devmem_lock);
	if (mdevice->devmem_chunks) {
		for (i = 0; i < mdevice->devmem_count; i++) {
			struct dmirror_chunk *devmem =
				mdevice->devmem_chunks[i];

			spin_lock(&mdevice->lock);
			devmem->remove = true;
			dmirror_remove_free_pages(devmem);
			spin_unlock(&mdevice->lock);

			dmirror_device_evict_chunk(devmem);
			memunmap_pages(&devmem->pagemap);
			if (devmem->pagemap.type == MEMORY_DEVICE_PRIVATE)
				release_mem_region(devmem->pagemap.range.start,
						   range_len(&devmem->pagemap.range));
			kfree(devmem);
		}
		mdevice->devmem_count = 0;
		mdevice->devmem_capacity = 0;
		mdevice->free_pages = NULL;
		mdevice->free_folios = NULL;
		kfree(mdevice->devmem_chunks);
		mdevice->devmem_chunks = NULL;
	}
	mutex_unlock(&mdevice->devmem_lock);
}

static long dmirror_fops_unlocked_ioctl(struct file *filp,
					unsigned int command,
					unsigned long arg)
{
	void __user *uarg = (void __user *)arg;
	struct hmm_dmirror_cmd cmd;
	struct dmirror *dmirror;
	int ret;

	dmirror = filp->private_data;
	if (!dmirror)
		return -EINVAL;

	if (copy_from_user(&cmd, uarg, sizeof(cmd)))
		return -EFAULT;

	/* Flags take no range: npages is the flags, and may be 0. */
	if (command == HMM_DMIRROR_FLAGS) {
		dmirror->flags = cmd.npages;
		return 0;
	}

	if (cmd.addr & ~PAGE_MASK)
		return -EINVAL;
	if (cmd.addr >= (cmd.addr + (cmd.npages << PAGE_SHIFT)))
		return -EINVAL;

	cmd.cpages = 0;
	cmd.faults = 0;

	switch (command) {
	case HMM_DMIRROR_READ:
		ret = dmirror_read(dmirror, &cmd);
		break;

	case HMM_DMIRROR_WRITE:
		ret = dmirror_write(dmirror, &cmd);
		break;

	case HMM_DMIRROR_MIGRATE_TO_DEV:
		ret = dmirror_migrate_to_device(dmirror, &cmd);
		break;

	case HMM_DMIRROR_MIGRATE_TO_SYS:
		ret = dmirror_migrate_to_system(dmirror, &cmd);
		break;

	case HMM_DMIRROR_EXCLUSIVE:
		ret = dmirror_exclusive(dmirror, &cmd);
		break;

	case HMM_DMIRROR_CHECK_EXCLUSIVE:
		ret = dmirror_check_atomic(dmirror, cmd.addr,
					cmd.addr + (cmd.npages << PAGE_SHIFT));
		break;

	case HMM_DMIRROR_SNAPSHOT:
		ret = dmirror_snapshot(dmirror, &cmd);
		break;

	case HMM_DMIRROR_RELEASE:
		dmirror_device_remove_chunks(dmirror->mdevice);
		ret = 0;
		break;
	case HMM_DMIRROR_READ_UNLOCKED:
		ret = dmirror_read_unlocked(dmirror, &cmd, 0);
		break;
	case HMM_DMIRROR_MIGRATE_ON_FAULT:
		ret = dmirror_migrate_on_fault(dmirror, &cmd, DMIRROR_ONE_WALK);
		break;
	case HMM_DMIRROR_MIGRATE_FAULT_TWO_WALKS:
		ret = dmirror_migrate_on_fault(dmirror, &cmd,
					       DMIRROR_TWO_WALKS);
		break;
	case HMM_DMIRROR_MIGRATE_SETUP_FAULT:
		ret = dmirror_migrate_on_fault(dmirror, &cmd,
					       DMIRROR_SETUP_FAULT);
		break;
	case HMM_DMIRROR_MIGRATE_LIKE_XE:
		ret = dmirror_migrate_on_fault(dmirror, &cmd, DMIRROR_LIKE_XE);
		break;
	case HMM_DMIRROR_MIGRATE_LIKE_AMDKFD:
		ret = dmirror_migrate_on_fault(dmirror, &cmd,
					       DMIRROR_LIKE_AMDKFD);
		break;
	default:
		return -EINVAL;
	}
	if (ret)
		return ret;

	if (copy_to_user(uarg, &cmd, sizeof(cmd)))
		return -EFAULT;

	return 0;
}

static int dmirror_fops_mmap(struct file *file, struct vm_area_struct *vma)
{
	unsigned long addr;

	for (addr = vma->vm_start; addr < vma->vm_end; addr += PAGE_SIZE) {
		struct page *page;
		int ret;

		page = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!page)
			return -ENOMEM;

		ret = vm_insert_page(vma, addr, page);
		if (ret) {
			__free_page(page);
			return ret;
		}
		put_page(page);
	}

	return 0;
}

static const struct file_operations dmirror_fops = {
	.open		= dmirror_fops_open,
	.release	= dmirror_fops_release,
	.mmap		= dmirror_fops_mmap,
	.unlocked_ioctl = dmirror_fops_unlocked_ioctl,
	.llseek		= default_llseek,
	.owner		= THIS_MODULE,
};

static void dmirror_devmem_free(struct folio *folio)
{
	struct page *page = &folio->page;
	struct page *rpage = BACKING_PAGE(page);
	struct dmirror_device *mdevice;
	struct folio *rfolio = page_folio(rpage);
	unsigned int order = folio_order(rfolio);

	if (rpage != page) {
		if (order)
			__free_pages(rpage, order);
		else
			__free_page(rpage);
		rpage = NULL;
	}

	mdevice = dmirror_page_to_device(page);
	spin_lock(&mdevice->lock);

	/* Return page to our allocator if not freeing the chunk */
	if (!dmirror_page_to_chunk(page)->remove) {
		mdevice->cfree += 1 << order;
		if (order) {
			page->zone_device_data = mdevice->free_folios;
			mdevice->free_folios = page_folio(page);
		} else {
			page->zone_device_data = mdevice->free_pages;
			mdevice->free_pages = page;
		}
	}
	spin_unlock(&mdevice->lock);
}

static vm_fault_t dmirror_devmem_fault(struct vm_fault *vmf)
{
	struct migrate_vma args = { 0 };
	struct page *rpage;
	struct dmirror *dmirror;
	vm_fault_t ret = 0;
	unsigned int order, nr;

	/*
	 * Normally, a device would use the page->zone_device_data to point to
	 * the mirror but here we use it to hold the page for the simulated
	 * device memory and that page holds the pointer to the mirror.
	 */
	rpage = folio_zone_device_data(page_folio(vmf->page));
	dmirror = rpage->zone_device_data;

	/* FIXME demonstrate how we can adjust migrate range */
	order = folio_order(page_folio(vmf->page));
	nr = 1 << order;

	/*
	 * When folios are partially mapped, we can't rely on the folio
	 * order of vmf->page as the folio might not be fully split yet
	 */
	if (vmf->pte) {
		order = 0;
		nr = 1;
	}

	/*
	 * Consider a per-cpu cache of src and dst pfns, but with
	 * large number of cpus that might not scale well.
	 */
	args.start = ALIGN_DOWN(vmf->address, (PAGE_SIZE << order));
	args.vma = vmf->vma;
	args.end = args.start + (PAGE_SIZE << order);

	nr = (args.end - args.start) >> PAGE_SHIFT;
	args.src = kcalloc(nr, sizeof(unsigned long), GFP_KERNEL);
	args.dst = kcalloc(nr, sizeof(unsigned long), GFP_KERNEL);
	args.pgmap_owner = dmirror->mdevice;
	args.flags = dmirror_select_device(dmirror);
	args.fault_page = vmf->page;

	if (!args.src || !args.dst) {
		ret = VM_FAULT_OOM;
		goto err;
	}

	if (order)
		args.flags |= MIGRATE_VMA_SELECT_COMPOUND;

	/*
	 * In practice migrate_vma_setup() should never fail unless the
	 * test is wrong as it just tests some static VMA properties.
	 */
	if (migrate_vma_setup(&args)) {
		ret = VM_FAULT_SIGBUS;
		goto err;
	}

	ret = dmirror_devmem_fault_alloc_and_copy(&args, dmirror);
	if (ret) {
		/*
		 * dst holds the pages allocated and copied before the
		 * allocation failed: migrate them.  migrate_vma_finalize()
		 * alone would take every dst entry next to a src entry still
		 * marked MIGRATE_PFN_MIGRATE for a migrated page, and map it
		 * without the state migrate_vma_pages() moves over.
		 */
		migrate_vma_pages(&args);
		migrate_vma_finalize(&args);
		goto err;
	}
	migrate_vma_pages(&args);
	/*
	 * No device finalize step is needed since
	 * dmirror_devmem_fault_alloc_and_copy() will have already
	 * invalidated the device page table.
	 */
	migrate_vma_finalize(&args);
err:
	kfree(args.src);
	kfree(args.dst);
	return ret;
}

static void dmirror_devmem_folio_split(struct folio *head, struct folio *tail)
{
	struct page *rpage = BACKING_PAGE(folio_page(head, 0));
	struct page *rpage_tail;
	struct folio *rfolio;
	unsigned long offset = 0;

	if (!rpage) {
		tail->page.zone_device_data = NULL;
		return;
	}

	rfolio = page_folio(rpage);

	if (tail == NULL) {
		folio_reset_order(rfolio);
		rfolio->mapping = NULL;
		folio_set_count(rfolio, 1);
		return;
	}

	offset = folio_pfn(tail) - folio_pfn(head);

	rpage_tail = folio_page(rfolio, offset);
	tail->page.zone_device_data = rpage_tail;
	rpage_tail->zone_device_data = rpage->zone_device_data;
	clear_compound_head(rpage_tail);
	rpage_tail->mapping = NULL;

	folio_page(tail, 0)->mapping = folio_page(head, 0)->mapping;
	tail->pgmap = head->pgmap;
	folio_set_count(page_folio(rpage_tail), 1);
}

static const struct dev_pagemap_ops dmirror_devmem_ops = {
	.folio_free	= dmirror_devmem_free,
	.migrate_to_ram	= dmirror_devmem_fault,
	.folio_split	= dmirror_devmem_folio_split,
};

static void dmirror_device_release(struct device *dev)
{
	struct dmirror_device *mdevice = container_of(dev, struct dmirror_device, device);

	dmirror_device_remove_chunks(mdevice);
}

static int dmirror_device_init(struct dmirror_device *mdevice, int id)
{
	dev_t dev;
	int ret;

	dev = MKDEV(MAJOR(dmirror_dev), id);
	mutex_init(&mdevice->devmem_lock);
	spin_lock_init(&mdevice->lock);

	cdev_init(&mdevice->cdevice, &dmirror_fops);
	mdevice->cdevice.owner = THIS_MODULE;
	mdevice->device.release = dmirror_device_release;

	device_initialize(&mdevice->device);
	mdevice->device.devt = dev;

	ret = dev_set_name(&mdevice->device, "hmm_dmirror%u", id);
	if (ret)
		goto put_device;

	/* Build a list of free ZONE_DEVICE struct pages */
	ret = dmirror_allocate_chunk(mdevice, NULL, false);
	if (ret)
		goto put_device;

	ret = cdev_device_add(&mdevice->cdevice, &mdevice->device);
	if (ret)
		goto put_device;

	return 0;

put_device:
	put_device(&mdevice->device);
	return ret;
}

static void dmirror_device_remove(struct dmirror_device *mdevice)
{
	cdev_device_del(&mdevice->cdevice, &mdevice->device);
	put_device(&mdevice->device);
}

static int __init hmm_dmirror_init(void)
{
	int ret;
	int id = 0;
	int ndevices = 0;

	ret = alloc_chrdev_region(&dmirror_dev, 0, DMIRROR_NDEVICES,
				  "HMM_DMIRROR");
	if (ret)
		goto err_unreg;

	memset(dmirror_devices, 0, DMIRROR_NDEVICES * sizeof(dmirror_devices[0]));
	dmirror_devices[ndevices++].zone_device_type =
				HMM_DMIRROR_MEMORY_DEVICE_PRIVATE;
	dmirror_devices[ndevices++].zone_device_type =
				HMM_DMIRROR_MEMORY_DEVICE_PRIVATE;
	if (spm_addr_dev0 && spm_addr_dev1) {
		dmirror_devices[ndevices++].zone_device_type =
					HMM_DMIRROR_MEMORY_DEVICE_COHERENT;
		dmirror_devices[ndevices++].zone_device_type =
					HMM_DMIRROR_MEMORY_DEVICE_COHERENT;
	}
	for (id = 0; id < ndevices; id++) {
		ret = dmirror_device_init(dmirror_devices + id, id);
		if (ret)
			goto err_chrdev;
	}

	pr_info("HMM test module loaded. This is only for testing HMM.\n");
	return 0;

err_chrdev:
	while (--id >= 0)
		dmirror_device_remove(dmirror_devices + id);
	unregister_chrdev_region(dmirror_dev, DMIRROR_NDEVICES);
err_unreg:
	return ret;
}

static void __exit hmm_dmirror_exit(void)
{
	int id;

	for (id = 0; id < DMIRROR_NDEVICES; id++)
		if (dmirror_devices[id].zone_device_type)
			dmirror_device_remove(dmirror_devices + id);
	unregister_chrdev_region(dmirror_dev, DMIRROR_NDEVICES);
}

module_init(hmm_dmirror_init);
module_exit(hmm_dmirror_exit);
MODULE_DESCRIPTION("HMM (Heterogeneous Memory Management) test module");
MODULE_LICENSE("GPL");
