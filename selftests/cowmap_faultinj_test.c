// SPDX-License-Identifier: GPL-2.0
/*
 * Fault injection (debug kernel: CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC,
 * CONFIG_FAULT_INJECTION_DEBUG_FS): the stress engine of lib/stress.c
 * runs while slab and page allocations of its actors (task-filter: only
 * tasks with make-it-fail set; the outsider and the controller are spared)
 * fail at random, sleeping allocations and highmem included.  Every
 * failure must become a clean outcome: an errno (ENOMEM, EAGAIN...), a
 * retried fault, a SIGBUS of a failed read of the file, a drain that keeps
 * its pages for the next one; never a warning (the VM panics on one), a
 * leak (kmemleak, checked by the runner) or a session that no longer
 * matches the model: after injection stops, the engine's checks (every
 * page, INFO, events, DIFF, final drains) must pass.
 *
 * Skipped where the kernel has no fault injection (Debian's kernels), and
 * on btrfs unless COWMAP_STRESS_FS=btrfs asks for it (see the setup).
 * FAULTINJ_OPS (default 1200) and FAULTINJ_PROBABILITY (percent, default 3)
 * tune it; COWMAP_SEED replays.
 */
#include <stddef.h>

#include "cowmap_harness.h"
#include "cowmap_fs_variants.h"
#include "lib/util.h"
#include "lib/stress.h"

#define FS_DIR	"/sys/kernel/debug/failslab/"
#define FP_DIR	"/sys/kernel/debug/fail_page_alloc/"

struct knob {
	const char *path;
	const char *value;
	char saved[64];
};

static struct knob knobs[] = {
	{ .path = FS_DIR "probability", .value = "0" },
	{ .path = FS_DIR "interval", .value = "1" },
	{ .path = FS_DIR "times", .value = "1000000" },
	{ .path = FS_DIR "verbose", .value = "0" },
	{ .path = FS_DIR "space", .value = "0" },
	{ .path = FS_DIR "task-filter", .value = "Y" },
	{ .path = FS_DIR "ignore-gfp-wait", .value = "N" },
	{ .path = FP_DIR "probability", .value = "0" },
	{ .path = FP_DIR "interval", .value = "1" },
	{ .path = FP_DIR "times", .value = "1000000" },
	{ .path = FP_DIR "verbose", .value = "0" },
	{ .path = FP_DIR "space", .value = "0" },
	{ .path = FP_DIR "task-filter", .value = "Y" },
	{ .path = FP_DIR "ignore-gfp-wait", .value = "N" },
	{ .path = FP_DIR "ignore-gfp-highmem", .value = "N" },
	{ .path = FP_DIR "min-order", .value = "0" },
};

static long knob_long(const char *path)
{
	char b[64];

	return cm_read_text(path, b, sizeof(b)) ? -1 : strtol(b, NULL, 0);
}

static char prob[16];

static void inject_on(void *arg)
{
	(void)arg;
	cm_write_text(FS_DIR "probability", prob);
	cm_write_text(FP_DIR "probability", prob);
}

static void inject_off(void *arg)
{
	(void)arg;
	cm_write_text(FS_DIR "probability", "0");
	cm_write_text(FP_DIR "probability", "0");
}

static const char btrfs_skip[] =
	"btrfs fails its own injected allocations (transaction abort, WARNING); "
	"COWMAP_STRESS_FS=btrfs runs it";

FIXTURE(faultinj) {
	char *dir;
	int set;
};

FIXTURE_VARIANT(faultinj) {
	COWMAP_FS_VARIANT_FIELDS;
};

COWMAP_FS_VARIANTS(faultinj);

FIXTURE_SETUP(faultinj)
{
	const char *scratch, *why, *only = getenv("COWMAP_STRESS_FS");
	size_t i;

	self->dir = NULL;
	self->set = 0;
	CM_SKIP_IF_NO_DEVICE();
	if (access(FS_DIR "probability", W_OK) || access(FP_DIR "probability", W_OK))
		CM_SETUP_SKIP("no failslab/fail_page_alloc in debugfs: not a fault-injection kernel");
	if (only && *only && strcmp(only, variant->name))
		CM_SETUP_SKIP("COWMAP_STRESS_FS=%s", only);
	/*
	 * btrfs answers failures of its own allocations by aborting the
	 * transaction, or with a WARNING (docs/testing.md, "Fault injection
	 * on btrfs"): that tests btrfs, not cowmap.  By hand only.
	 */
	if (variant->magic == BTRFS_SUPER_MAGIC && !(only && !strcmp(only, "btrfs")))
		CM_SETUP_SKIP("%s", btrfs_skip);
	scratch = cm_scratch_dir(variant->env, &why);
	if (!scratch)
		CM_SETUP_SKIP("$%s %s", variant->env, why);
	self->dir = cm_mkdtemp(scratch, "faultinj");
	ASSERT_NE(NULL, self->dir);
	for (i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++) {
		ASSERT_EQ(0, cm_read_text(knobs[i].path, knobs[i].saved, sizeof(knobs[i].saved)))
			TH_LOG("%s", knobs[i].path);
	}
	self->set = 1;
	/* The VM runner accepts the allocator's failure reports from here on. */
	cm_write_text("/dev/kmsg", "<2>cowmap-selftest: fault injection armed\n");
	for (i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++) {
		ASSERT_EQ(0, cm_write_text(knobs[i].path, knobs[i].value))
			TH_LOG("%s = %s", knobs[i].path, knobs[i].value);
	}
}

FIXTURE_TEARDOWN(faultinj)
{
	size_t i;

	if (self->set) {
		inject_off(NULL);
		for (i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++) {
			/* times/probability first back to harmless values. */
			cm_write_text(knobs[i].path, knobs[i].saved);
		}
		cm_write_text("/dev/kmsg", "<2>cowmap-selftest: fault injection disarmed\n");
	}
	if (self->dir && !getenv("COWMAP_KEEP"))
		cm_rm_rf(self->dir);
	free(self->dir);
}

TEST_F_TIMEOUT(faultinj, stress, 3600)
{
	struct st_result *res = calloc(1, sizeof(*res));
	struct st_cfg cfg = { 0 };
	long slab0, page0, slab, page;

	ASSERT_NE(NULL, res);
	snprintf(prob, sizeof(prob), "%ld", st_env_long("FAULTINJ_PROBABILITY", 3));
	cfg.dir = self->dir;
	cfg.seed = st_seed();
	cfg.seconds = st_env_long("STRESS_SECONDS", 0);
	cfg.ops = cfg.seconds ? 0 : st_env_long("FAULTINJ_OPS", 1200);
	if (!cfg.seconds)
		cfg.seconds = st_env_long("STRESS_MAX_SECONDS", 60);
	cfg.nsess = 3;
	/* One operation at a time: a failed one is then resynced exactly. */
	cfg.batch_max = 1;
	cfg.max_procs = 5;
	cfg.fs_odirect = 1;
	cfg.inject = 1;
	cfg.inject_on = inject_on;
	cfg.inject_off = inject_off;
	slab0 = knob_long(FS_DIR "times");
	page0 = knob_long(FP_DIR "times");
	printf("# fault injection on %s: seed %llu, probability %s%% of the actors' slab and page allocations\n",
	       variant->name, (unsigned long long)cfg.seed, prob);
	fflush(stdout);
	st_run(&cfg, res);
	slab = slab0 - knob_long(FS_DIR "times");
	page = page0 - knob_long(FP_DIR "times");
	st_print_stats(&cfg, res, variant->name);
	printf("# %s: injected failures: %ld slab, %ld page allocations; outcomes: %ld errno/SIGBUS/resynced operations, %ld failed mm operations cleaned up, %ld kernel SIGSEGVs outside an access (rseq update), %ld mismatches after injection stopped\n",
	       variant->name, slab, page, res->st.enomem, res->st.cleanups, res->st.kernel_segv,
	       res->st.mismatches);
	fflush(stdout);
	EXPECT_EQ(0, res->failed) TH_LOG("%s", res->why);
	EXPECT_LT(0, slab + page) TH_LOG("no failure was injected");
	free(res);
}

TEST_HARNESS_MAIN
