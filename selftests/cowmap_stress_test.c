// SPDX-License-Identifier: GPL-2.0
/*
 * Stress test of cowmap with a reference model (see lib/stress.c): a few
 * sessions of one backing file, worker threads and forked processes
 * mapping, unmapping, reading, writing (plain stores, /proc/self/mem and
 * O_DIRECT into the mapping), forking, passing the session fd over
 * SCM_RIGHTS, discarding, draining (ioctl, DRAIN_FD, netlink), mremap and
 * madvise, while an outsider writes, truncates, punches and extends the
 * file.  On ext4, XFS and btrfs.
 *
 * Bounded by default (STRESS_OPS operations per filesystem, 20 s at most,
 * times $COWMAP_TIMEOUT_SCALE); a run must reach STRESS_MIN_OPS operations
 * (or all of STRESS_OPS) and every kind of operation and access mode its
 * length makes likely (st_coverage());
 * STRESS_SECONDS=N runs each filesystem for N seconds instead.
 * COWMAP_SEED=<seed> replays a run (the seed is printed either way);
 * COWMAP_STRESS_FS=ext4|xfs|btrfs limits the run to one filesystem.
 */
#include <stddef.h>

#include "cowmap_harness.h"
#include "cowmap_fs_variants.h"
#include "lib/util.h"
#include "lib/stress.h"

/* Operations a run must reach (or all of STRESS_OPS if fewer). */
#define STRESS_MIN_OPS	500

FIXTURE(stress) {
	char *dir;
	int odirect;
};

FIXTURE_VARIANT(stress) {
	COWMAP_FS_VARIANT_FIELDS;
};

COWMAP_FS_VARIANTS(stress);

FIXTURE_SETUP(stress)
{
	const char *scratch, *why, *only = getenv("COWMAP_STRESS_FS");
	char *p;
	int fd;

	self->dir = NULL;
	CM_SKIP_IF_NO_DEVICE();
	if (only && *only && strcmp(only, variant->name))
		CM_SETUP_SKIP("COWMAP_STRESS_FS=%s", only);
	scratch = cm_scratch_dir(variant->env, &why);
	if (!scratch)
		CM_SETUP_SKIP("$%s %s", variant->env, why);
	self->dir = cm_mkdtemp(scratch, "stress");
	ASSERT_NE(NULL, self->dir);
	p = cm_path(self->dir, "odirect-probe");
	fd = open(p, O_RDWR | O_CREAT | O_DIRECT, 0600);
	self->odirect = fd >= 0;
	if (fd >= 0)
		close(fd);
	unlink(p);
	free(p);
}

FIXTURE_TEARDOWN(stress)
{
	if (self->dir && !getenv("COWMAP_KEEP"))
		cm_rm_rf(self->dir);
	free(self->dir);
}

TEST_F_TIMEOUT(stress, model, 3600)
{
	struct st_result *res = calloc(1, sizeof(*res));
	struct st_cfg cfg = { 0 };
	char why[512];

	ASSERT_NE(NULL, res);
	cfg.dir = self->dir;
	cfg.seed = st_seed();
	cfg.seconds = st_env_long("STRESS_SECONDS", 0);
	cfg.ops = cfg.seconds ? 0 : st_env_long("STRESS_OPS", 2000);
	if (!cfg.seconds) {
		/* The cap grows with the debug kernel's slowness, as timeouts do. */
		long scale = st_env_long("COWMAP_TIMEOUT_SCALE", 1);

		cfg.seconds = st_env_long("STRESS_MAX_SECONDS",
					  20 * (scale > 1 && scale <= 100 ? scale : 1));
	}
	cfg.nsess = 3;
	cfg.batch_max = 3;
	cfg.max_procs = 6;
	cfg.fs_odirect = self->odirect;
	printf("# stress on %s: seed %llu (COWMAP_SEED=%llu replays it)\n",
	       variant->name, (unsigned long long)cfg.seed,
	       (unsigned long long)cfg.seed);
	fflush(stdout);
	st_run(&cfg, res);
	st_print_stats(&cfg, res, variant->name);
	EXPECT_EQ(0, res->failed) TH_LOG("%s", res->why);
	/*
	 * A run cut short by the time cap (not by a mismatch) must still have
	 * done something: STRESS_MIN_OPS operations, and the kinds of
	 * operation and access modes its length makes likely.
	 */
	if (!res->failed) {
		EXPECT_EQ(0, st_coverage(&cfg, res, STRESS_MIN_OPS, why, sizeof(why)))
			TH_LOG("too little coverage:%s", why);
	}
	free(res);
}

TEST_HARNESS_MAIN
