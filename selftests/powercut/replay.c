// SPDX-License-Identifier: GPL-2.0
/*
 * Replays a dm-log-writes log (drivers/md/dm-log-writes.c, format in
 * Documentation/admin-guide/device-mapper/log-writes.rst) onto a copy of
 * the logged device, to make the states a power cut can leave behind.
 *
 * Log layout: sector 0 holds the super (magic, version, nr_entries,
 * sectorsize); then nr_entries entries, each one sector of header
 * (sector, nr_sectors, flags, data_len; a mark's name follows the header
 * in that sector) and, unless it is a discard, nr_sectors sectors of data.
 * Sectors are the log's sectorsize.  Writes are logged in the order they
 * became durable as far as the device promised: a flush entry comes after
 * every write that completed before the flush was issued, a FUA write when
 * it completed.  So every prefix of the log is a state a power cut can
 * leave, and so is every prefix up to a flush plus any subset of the later
 * non-FUA writes (a volatile cache writes back in any order; it keeps the
 * newest copy of a block, so what reordering can leave is a subset).
 *
 *   replay list LOG                        one line per entry
 *   replay plan LOG FROM TO END SEED NCRASH [all]
 *        points to test, sorted by base: "prefix K W", "drop BASE CUT SEED W",
 *        "tear BASE CUT SEED W" (W: 1 when the merge, between marks FROM
 *        and TO, was in progress); every flush after FROM up to mark END,
 *        NCRASH subset points (half of them torn at 4 KiB), and with "all"
 *        every prefix from FROM to END
 *   replay apply LOG DEV FROM TO           entries [FROM, TO) in log order
 *   replay crash LOG DEV BASE CUT SEED drop|tear
 *        of the entries [BASE, CUT) (BASE: just after a flush), every FUA
 *        write and a random subset of the others (drop: whole writes; tear:
 *        each 4 KiB of a write on its own), written in a random order, the
 *        newest copy of each sector winning
 *
 * Exit status 0, 1 on any error (a message on stderr says which).
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "rnd.h"

#define LW_FLUSH	(1u << 0)
#define LW_FUA		(1u << 1)
#define LW_DISCARD	(1u << 2)
#define LW_MARK		(1u << 3)
#define LW_MAGIC	0x6a736677736872ULL
#define LW_VERSION	1ULL
#define TEAR_BLOCK	4096

struct lw_entry {
	uint64_t sector;	/* in log sectors */
	uint64_t nr;
	uint64_t flags;
	uint64_t data_len;
	uint64_t data_off;	/* byte offset of the data in the log */
	char mark[64];
};

static int logfd = -1;
static uint32_t secsize;
static uint64_t nentries;
static struct lw_entry *ent;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("replay: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* All @n bytes at @off: pread() (@write 0) or pwrite(), EINTR retried. */
static int rw_full(int fd, void *buf, size_t n, uint64_t off, int write)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = write ? pwrite(fd, (char *)buf + done, n - done, off + done) :
				    pread(fd, (char *)buf + done, n - done, off + done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += r;
	}
	return 0;
}

static int read_full(int fd, void *buf, size_t n, uint64_t off)
{
	return rw_full(fd, buf, n, off, 0);
}

static int write_full(int fd, const void *buf, size_t n, uint64_t off)
{
	return rw_full(fd, (void *)buf, n, off, 1);
}

static uint64_t size_of(int fd)
{
	struct stat st;
	uint64_t sz = 0;

	if (fstat(fd, &st))
		return 0;
	if (S_ISREG(st.st_mode))
		return st.st_size;
	sz = lseek(fd, 0, SEEK_END);
	return sz == (uint64_t)-1 ? 0 : sz;
}

/* Reads the super and every entry header; refuses anything malformed. */
static int load(const char *path)
{
	unsigned char *sec;
	uint64_t pos, logsize, i, v[4];
	uint32_t ss;

	logfd = open(path, O_RDONLY);
	if (logfd < 0)
		return fail("%s: %s", path, strerror(errno));
	logsize = size_of(logfd);
	sec = malloc(4096);
	if (!sec)
		return fail("out of memory");
	if (read_full(logfd, sec, 512, 0))
		return fail("%s: cannot read the super", path);
	memcpy(v, sec, 24);
	memcpy(&ss, sec + 24, 4);
	if (le64toh(v[0]) != LW_MAGIC)
		return fail("%s: bad magic %#" PRIx64 " (not a dm-log-writes log)", path,
			    (uint64_t)le64toh(v[0]));
	if (le64toh(v[1]) != LW_VERSION)
		return fail("%s: version %" PRIu64 ", only %llu is known", path,
			    (uint64_t)le64toh(v[1]), LW_VERSION);
	nentries = le64toh(v[2]);
	secsize = le32toh(ss);
	if (secsize < 512 || secsize > 4096 || (secsize & (secsize - 1)))
		return fail("%s: sector size %u is not 512..4096", path, secsize);
	if (nentries > logsize / secsize)
		return fail("%s: %" PRIu64 " entries cannot fit in %" PRIu64 " bytes", path,
			    nentries, logsize);
	ent = calloc(nentries ? nentries : 1, sizeof(*ent));
	if (!ent)
		return fail("out of memory");
	pos = secsize;
	for (i = 0; i < nentries; i++) {
		struct lw_entry *e = &ent[i];
		uint64_t h[4];

		if (pos + secsize > logsize || read_full(logfd, sec, secsize, pos))
			return fail("%s: entry %" PRIu64 " at byte %" PRIu64 " is beyond the log",
				    path, i, pos);
		memcpy(h, sec, sizeof(h));
		e->sector = le64toh(h[0]);
		e->nr = le64toh(h[1]);
		e->flags = le64toh(h[2]);
		e->data_len = le64toh(h[3]);
		if (e->flags & ~0x1fULL)
			return fail("%s: entry %" PRIu64 ": unknown flags %#" PRIx64, path, i,
				    e->flags);
		if (e->flags & LW_MARK) {
			size_t n = e->data_len;

			if (n > secsize - 32)
				return fail("%s: entry %" PRIu64 ": mark of %zu bytes", path, i, n);
			if (n >= sizeof(e->mark))
				n = sizeof(e->mark) - 1;
			memcpy(e->mark, sec + 32, n);
			e->mark[n] = 0;
		}
		pos += secsize;
		e->data_off = pos;
		if (!(e->flags & LW_DISCARD)) {
			if (e->nr > (logsize - pos) / secsize)
				return fail("%s: entry %" PRIu64 ": %" PRIu64
					    " sectors beyond the log", path, i, e->nr);
			pos += e->nr * secsize;
		}
	}
	free(sec);
	return 0;
}

/* Writes @len bytes of entry @e's data, from byte @from of it, to @dev. */
static int put(int dev, const struct lw_entry *e, uint64_t from, uint64_t len)
{
	static unsigned char *buf;
	static size_t cap;

	if (len > cap) {
		free(buf);
		buf = malloc(len);
		cap = buf ? len : 0;
		if (!buf)
			return fail("out of memory");
	}
	if (e->flags & LW_DISCARD)
		memset(buf, 0, len);	/* a discarded range reads as zeroes here */
	else if (read_full(logfd, buf, len, e->data_off + from))
		return fail("cannot read the data of the entry at sector %" PRIu64, e->sector);
	if (write_full(dev, buf, len, e->sector * secsize + from))
		return fail("cannot write %" PRIu64 " bytes at byte %" PRIu64 ": %s", len,
			    e->sector * secsize + from, strerror(errno));
	return 0;
}

static int writes_data(const struct lw_entry *e)
{
	return e->nr && !(e->flags & LW_MARK);
}

static int open_dev(const char *path, int *fd)
{
	*fd = open(path, O_RDWR);
	if (*fd < 0)
		return fail("%s: %s", path, strerror(errno));
	return 0;
}

static int parse_range(const char *a, const char *b, uint64_t *from, uint64_t *to)
{
	char *end;

	*from = strtoull(a, &end, 10);
	if (*end || !*a)
		return fail("'%s' is not an entry index", a);
	*to = strtoull(b, &end, 10);
	if (*end || !*b)
		return fail("'%s' is not an entry index", b);
	if (*from > *to || *to > nentries)
		return fail("range [%" PRIu64 ", %" PRIu64 ") is not within the %" PRIu64
			    " entries", *from, *to, nentries);
	return 0;
}

static int apply(const char *dev, uint64_t from, uint64_t to)
{
	uint64_t i;
	int fd;

	if (open_dev(dev, &fd))
		return 1;
	for (i = from; i < to; i++)
		if (writes_data(&ent[i]) && put(fd, &ent[i], 0, ent[i].nr * secsize))
			return 1;
	if (fsync(fd) || close(fd))
		return fail("%s: %s", dev, strerror(errno));
	return 0;
}

struct piece {
	uint64_t entry, from, len, dev_off, key;
};

static int by_key(const void *a, const void *b)
{
	const struct piece *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

/*
 * Newest copy wins: a piece is written only on the sectors no newer chosen
 * piece covers, found through a map of the newest chosen entry of each
 * sector touched.
 */
static int crash(const char *dev, uint64_t base, uint64_t cut, uint64_t seed, int tear)
{
	struct piece *p = NULL;
	size_t np = 0, cap = 0, k;
	uint64_t i, s = seed * 0x9e3779b97f4a7c15ULL + 7, kept = 0, dropped = 0;
	uint64_t *newest = NULL, maxsec = 0;
	int fd;

	for (i = base; i < cut; i++)
		if (ent[i].flags & LW_FLUSH)
			return fail("entry %" PRIu64 " is a flush: [%" PRIu64 ", %" PRIu64
				    ") must lie between two flushes", i, base, cut);
	if (open_dev(dev, &fd))
		return 1;
	for (i = base; i < cut; i++) {
		const struct lw_entry *e = &ent[i];
		uint64_t bytes = e->nr * secsize, off, step;

		if (!writes_data(e))
			continue;
		step = tear && !(e->flags & LW_FUA) ? TEAR_BLOCK : bytes;
		for (off = 0; off < bytes; off += step) {
			uint64_t len = bytes - off < step ? bytes - off : step;

			/* FUA writes had completed: they are on the medium. */
			if (!(e->flags & LW_FUA) && (rnd(&s) & 1)) {
				dropped++;
				continue;
			}
			if (np == cap) {
				cap = cap ? 2 * cap : 256;
				p = realloc(p, cap * sizeof(*p));
				if (!p)
					return fail("out of memory");
			}
			p[np] = (struct piece){ i, off, len, e->sector * secsize + off, rnd(&s) };
			if ((p[np].dev_off + len) / secsize > maxsec)
				maxsec = (p[np].dev_off + len) / secsize;
			np++;
			kept++;
		}
	}
	newest = calloc(maxsec ? maxsec : 1, sizeof(*newest));
	if (!newest)
		return fail("out of memory");
	for (k = 0; k < np; k++) {
		uint64_t q;

		for (q = p[k].dev_off / secsize; q < (p[k].dev_off + p[k].len) / secsize; q++)
			if (newest[q] < p[k].entry + 1)
				newest[q] = p[k].entry + 1;
	}
	qsort(p, np, sizeof(*p), by_key);
	for (k = 0; k < np; k++) {
		uint64_t q = p[k].dev_off / secsize, end = (p[k].dev_off + p[k].len) / secsize, r;

		/* Runs of the sectors where this piece is the newest. */
		while (q < end) {
			if (newest[q] != p[k].entry + 1) {
				q++;
				continue;
			}
			for (r = q; r < end && newest[r] == p[k].entry + 1; r++)
				;
			if (put(fd, &ent[p[k].entry], p[k].from + q * secsize - p[k].dev_off,
				(r - q) * secsize))
				return 1;
			q = r;
		}
	}
	if (fsync(fd) || close(fd))
		return fail("%s: %s", dev, strerror(errno));
	printf("crash %s: entries [%" PRIu64 ", %" PRIu64 "): %" PRIu64 " pieces written, %"
	       PRIu64 " dropped\n", tear ? "tear" : "drop", base, cut, kept, dropped);
	free(p);
	free(newest);
	return 0;
}

static int64_t find_mark(const char *name)
{
	uint64_t i;

	for (i = 0; i < nentries; i++)
		if ((ent[i].flags & LW_MARK) && !strcmp(ent[i].mark, name))
			return i;
	return -1;
}

struct point {
	uint64_t base, cut, seed;
	int kind;	/* 0 prefix, 1 drop, 2 tear */
};

static int by_base(const void *a, const void *b)
{
	const struct point *x = a, *y = b;

	if (x->base != y->base)
		return x->base < y->base ? -1 : 1;
	return x->cut < y->cut ? -1 : x->cut > y->cut;
}

static int plan(const char *from_m, const char *to_m, const char *end_m, uint64_t seed,
		uint64_t ncrash, int all)
{
	int64_t ms = find_mark(from_m), me = find_mark(to_m), mend = find_mark(end_m);
	uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 3, i, k, *flushes, nf = 0, *ivl, ni = 0;
	struct point *pt;
	size_t n = 0, cap;
	static const char *const kinds[] = { "prefix", "drop", "tear" };

	if (ms < 0 || me < 0 || mend < 0)
		return fail("mark '%s' not in the log", ms < 0 ? from_m : me < 0 ? to_m : end_m);
	if (!(ms < me && me <= mend))
		return fail("marks out of order: %s at %" PRId64 ", %s at %" PRId64 ", %s at %"
			    PRId64, from_m, ms, to_m, me, end_m, mend);
	cap = 2 * (mend - ms + 2) + ncrash + 1;
	pt = calloc(cap, sizeof(*pt));
	flushes = calloc(mend - ms + 2, sizeof(*flushes));
	ivl = calloc(mend - ms + 2, sizeof(*ivl));
	if (!pt || !flushes || !ivl)
		return fail("out of memory");
	/* Prefixes: just after the FROM mark, after each flush, and with "all" every one. */
	for (i = ms + 1; i <= (uint64_t)mend; i++) {
		if (all || i == (uint64_t)ms + 1 || (ent[i - 1].flags & LW_FLUSH))
			pt[n++] = (struct point){ i, i, 0, 0 };
		if (ent[i - 1].flags & LW_FLUSH)
			flushes[nf++] = i;
	}
	/*
	 * Intervals between flushes in which the merge ran: base just after a
	 * flush (or the FROM mark, written after a sync), end at the next flush.
	 */
	for (i = ms + 1; i < (uint64_t)me; i++) {
		uint64_t j = i;

		while (j < (uint64_t)mend && !(ent[j].flags & LW_FLUSH))
			j++;
		if (j > i) {
			ivl[ni++] = i;
			ivl[ni++] = j;
		}
		i = j;	/* j is a flush (or the end); the next base is j + 1 */
	}
	for (k = 0; k < ncrash && ni; k++) {
		uint64_t v = rnd(&s) % (ni / 2), b = ivl[2 * v], e = ivl[2 * v + 1];

		pt[n++] = (struct point){ b, b + 1 + rnd(&s) % (e - b), rnd(&s) % 1000000,
					  1 + (int)(k & 1) };
	}
	qsort(pt, n, sizeof(*pt), by_base);
	for (k = 0; k < n; k++) {
		int w = pt[k].cut > (uint64_t)ms && pt[k].base <= (uint64_t)me;

		if (pt[k].kind)
			printf("%s %" PRIu64 " %" PRIu64 " %" PRIu64 " %d\n", kinds[pt[k].kind],
			       pt[k].base, pt[k].cut, pt[k].seed, w);
		else
			printf("prefix %" PRIu64 " %d\n", pt[k].base, w);
	}
	fprintf(stderr, "plan: %" PRIu64 " entries, marks %s %" PRId64 ", %s %" PRId64
		", %s %" PRId64 ", %" PRIu64 " flushes after %s, %zu points\n", nentries,
		from_m, ms, to_m, me, end_m, mend, nf, from_m, n);
	free(pt);
	free(flushes);
	free(ivl);
	return 0;
}

static int list(void)
{
	uint64_t i;

	printf("# %" PRIu64 " entries, sector size %u\n", nentries, secsize);
	for (i = 0; i < nentries; i++)
		printf("%" PRIu64 " sector %" PRIu64 " nr %" PRIu64 "%s%s%s%s%s%s\n", i,
		       ent[i].sector, ent[i].nr, ent[i].flags & LW_FLUSH ? " FLUSH" : "",
		       ent[i].flags & LW_FUA ? " FUA" : "",
		       ent[i].flags & LW_DISCARD ? " DISCARD" : "",
		       ent[i].flags & LW_MARK ? " MARK " : "", ent[i].mark,
		       ent[i].flags & 16 ? " META" : "");
	return 0;
}

static int num(const char *a, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(a, &end, 10);
	if (errno || *end || !*a)
		return fail("'%s' is not a number", a);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t a, b, c, d;

	if (argc == 3 && !strcmp(argv[1], "list"))
		return load(argv[2]) || list();
	if ((argc == 8 || argc == 9) && !strcmp(argv[1], "plan")) {
		if (argc == 9 && strcmp(argv[8], "all"))
			return fail("plan: last argument must be 'all', not '%s'", argv[8]);
		if (num(argv[6], &c) || num(argv[7], &d) || load(argv[2]))
			return 1;
		return plan(argv[3], argv[4], argv[5], c, d, argc == 9);
	}
	if (argc == 6 && !strcmp(argv[1], "apply"))
		return load(argv[2]) || parse_range(argv[4], argv[5], &a, &b) ||
		       apply(argv[3], a, b);
	if (argc == 8 && !strcmp(argv[1], "crash")) {
		if (strcmp(argv[7], "drop") && strcmp(argv[7], "tear"))
			return fail("crash: mode must be drop or tear, not '%s'", argv[7]);
		if (load(argv[2]) || parse_range(argv[4], argv[5], &a, &b) || num(argv[6], &c))
			return 1;
		return crash(argv[3], a, b, c, !strcmp(argv[7], "tear"));
	}
	fprintf(stderr, "usage: replay list LOG | plan LOG FROM TO END SEED NCRASH [all] |\n"
		"       apply LOG DEV FROM TO | crash LOG DEV BASE CUT SEED drop|tear\n");
	return 2;
}
