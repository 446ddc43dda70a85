// SPDX-License-Identifier: GPL-2.0
/*
 * What sessions may hold.  Private pages are not swappable and, once
 * unmapped, in nobody's RSS: the OOM killer cannot see who holds them.  So
 * every page the module allocates for a session is charged to the uid that
 * bound it (max_user_pages), besides the memory cgroup of the faulting task
 * (__GFP_ACCOUNT); private pages also count against max_session_pages and
 * max_total_pages (session.c).  A hog hits its uid's cap (SIGBUS) long
 * before bystanders run short.
 *
 * The unit is a private page, which holds two pages of memory: the copy and
 * its base snapshot.  An event ring is charged as the private pages its
 * memory would hold.
 */
#include <linux/hashtable.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "internal.h"

static DEFINE_HASHTABLE(cowmap_users, 6);
static DEFINE_SPINLOCK(cowmap_users_lock);	/* protects cowmap_users */

static struct cowmap_user *find(kuid_t uid)
{
	struct cowmap_user *u;

	lockdep_assert_held(&cowmap_users_lock);
	hash_for_each_possible(cowmap_users, u, node, __kuid_val(uid))
		if (uid_eq(u->uid, uid))
			return u;
	return NULL;
}

struct cowmap_user *cowmap_user_get(kuid_t uid)
{
	struct cowmap_user *u, *fresh;

	fresh = kzalloc(sizeof(*fresh), GFP_KERNEL);
	if (!fresh)
		return NULL;
	spin_lock(&cowmap_users_lock);
	u = find(uid);
	if (u) {
		refcount_inc(&u->ref);
	} else {
		u = fresh;
		fresh = NULL;
		u->uid = uid;
		refcount_set(&u->ref, 1);
		atomic_long_set(&u->pages, 0);
		hash_add(cowmap_users, &u->node, __kuid_val(uid));
	}
	spin_unlock(&cowmap_users_lock);
	kfree(fresh);
	return u;
}

void cowmap_user_put(struct cowmap_user *u)
{
	bool last;

	spin_lock(&cowmap_users_lock);
	last = refcount_dec_and_test(&u->ref);
	if (last)
		hash_del(&u->node);
	spin_unlock(&cowmap_users_lock);
	if (!last)
		return;
	WARN_ON_ONCE(atomic_long_read(&u->pages));
	kfree(u);
}

/* Charge @pages to @u; false (nothing charged) at its cap. */
bool cowmap_charge(struct cowmap_user *u, long pages)
{
	unsigned long max = READ_ONCE(cowmap_max_user_pages);

	if (atomic_long_add_return(pages, &u->pages) <= max)
		return true;
	atomic_long_sub(pages, &u->pages);
	return false;
}

void cowmap_uncharge(struct cowmap_user *u, long pages)
{
	atomic_long_sub(pages, &u->pages);
}
