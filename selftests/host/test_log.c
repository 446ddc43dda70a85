// SPDX-License-Identifier: GPL-2.0
/*
 * CRC32C, the log reader and writer, error strings, exported symbols.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

TEST(crc32c_known_vectors)
{
	static const struct {
		const char *name;
		uint8_t data[48];
		size_t len;
		uint32_t crc;
	} v[] = {
		{ "\"123456789\"", "123456789", 9, 0xE3069283 },
		{ "empty", "", 0, 0x00000000 },
		{ "32 x 0x00", { 0 }, 32, 0x8A9136AA },
		{ "\"a\"", "a", 1, 0xC1D04330 },
		{ "\"abc\"", "abc", 3, 0x364B3FB7 },
	};
	uint8_t ff[32], inc[32], dec[32];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		EXPECT(cowmap_crc32c(0, v[i].data, v[i].len) == v[i].crc, "%s: 0x%08x", v[i].name,
		       cowmap_crc32c(0, v[i].data, v[i].len));
		EXPECT(crc32c_sw(0, v[i].data, v[i].len) == v[i].crc, "sw %s", v[i].name);
		EXPECT(crc32c_hw(0, v[i].data, v[i].len) == v[i].crc, "hw %s", v[i].name);
	}
	/* RFC 3720 B.4 */
	for (int i = 0; i < 32; i++) {
		ff[i] = 0xff;
		inc[i] = (uint8_t)i;
		dec[i] = (uint8_t)(31 - i);
	}
	EXPECT(cowmap_crc32c(0, ff, 32) == 0x62A8AB43, "32 x 0xff: 0x%08x", cowmap_crc32c(0, ff, 32));
	EXPECT(cowmap_crc32c(0, inc, 32) == 0x46DD794E, "0..31");
	EXPECT(cowmap_crc32c(0, dec, 32) == 0x113FDB5C, "31..0");
	/* chaining */
	EXPECT(cowmap_crc32c(cowmap_crc32c(0, "1234", 4), "56789", 5) == 0xE3069283, "chained");
}

TEST(crc32c_sw_equals_hw)
{
	size_t max = 1 << 16;
	uint8_t *buf = malloc(max + 64);
	int bad = 0;

	DIAG("SSE4.2 crc32 instruction: %s", crc32c_hw_available() ? "used" : "not available");
	fill_random(buf, max + 64);
	for (int i = 0; i < 3000; i++) {
		size_t len = i < 100 ? (size_t)i : rnd((uint32_t)max);
		size_t al = rnd(64);
		uint32_t seed = i & 1 ? (uint32_t)rnd64() : 0;
		uint32_t a = crc32c_sw(seed, buf + al, len), b = crc32c_hw(seed, buf + al, len);

		if (a != b || cowmap_crc32c(seed, buf + al, len) != a)
			bad++;
		/* split anywhere gives the same result */
		if (len) {
			size_t cut = rnd((uint32_t)len);

			if (cowmap_crc32c(cowmap_crc32c(seed, buf + al, cut), buf + al + cut, len - cut) != a)
				bad++;
		}
	}
	EXPECT(bad == 0, "%d mismatches", bad);
	free(buf);
	{
		size_t big = 64 << 20;
		uint8_t *b = malloc(big);
		double t0, t1, t2;
		uint32_t x, y;

		fill_random(b, big);
		t0 = now_sec();
		x = crc32c_sw(0, b, big);
		t1 = now_sec();
		y = crc32c_hw(0, b, big);
		t2 = now_sec();
		EXPECT(x == y, "64 MiB: sw 0x%08x hw 0x%08x", x, y);
		DIAG("INFO crc32c table %.0f MB/s, instruction %.0f MB/s", big / 1e6 / (t1 - t0),
		     big / 1e6 / (t2 - t1));
		free(b);
	}
}

TEST(strerror_and_errmsg)
{
	EXPECT(!strcmp(cowmap_strerror(-COWMAP_ECONFLICT), "Merge conflicts, nothing written"), "%s",
	       cowmap_strerror(-COWMAP_ECONFLICT));
	EXPECT(!strcmp(cowmap_strerror(COWMAP_EBADLOG), "Invalid or corrupt cowmap log"), "badlog");
	EXPECT(!strcmp(cowmap_strerror(-ENOENT), strerror(ENOENT)), "fallback");
	EXPECT(cowmap_strerror(COWMAP_EBASE) != NULL, "base");
	EXPECT(cowmap_log_open(tpath("does-not-exist"), 0, &(struct cowmap_log *){ 0 }) == -ENOENT, "enoent");
	EXPECT(errno == ENOENT, "errno set");
	EXPECT(strstr(cowmap_errmsg(), "does-not-exist") != NULL, "message names the path: %s",
	       cowmap_errmsg());
}

#ifndef LIBCOWMAP_SO
#define LIBCOWMAP_SO "libcowmap.so"
#endif

TEST(exported_symbols)
{
	static const char *const api[] = {
		"cowmap_strerror", "cowmap_errmsg", "cowmap_crc32c", "cowmap_log_open",
		"cowmap_log_open_fd", "cowmap_log_info", "cowmap_log_next", "cowmap_log_rewind",
		"cowmap_log_close", "cowmap_log_info_init", "cowmap_log_create",
		"cowmap_log_create_fd", "cowmap_log_append", "cowmap_log_sync",
		"cowmap_log_writer_close", "cowmap_merge_new", "cowmap_merge_set_output",
		"cowmap_merge_add_log", "cowmap_merge_add_log_fd", "cowmap_merge_add_dir",
		"cowmap_merge_run", "cowmap_merge_stats", "cowmap_merge_conflict",
		"cowmap_merge_warning", "cowmap_merge_log_name", "cowmap_merge_free",
		"cowmap_recover", "cowmap_session_open", "cowmap_session_fd",
		"cowmap_session_id", "cowmap_map", "cowmap_unmap", "cowmap_session_info",
		"cowmap_version", "cowmap_read_events", "cowmap_drain", "cowmap_discard",
		"cowmap_diff", "cowmap_diff_next", "cowmap_commit", "cowmap_session_close",
	};
	static const char *const hidden[] = {
		"crc32c_sw", "err_set", "journal_begin", "pread_full", "log_rec_crc",
	};
	void *h = dlopen(LIBCOWMAP_SO, RTLD_NOW | RTLD_LOCAL);

	ASSERT(h, "dlopen %s: %s", LIBCOWMAP_SO, dlerror());
	for (size_t i = 0; i < sizeof(api) / sizeof(api[0]); i++) {
		void *p = dlvsym(h, api[i], "COWMAP_1.0");

		EXPECT(p != NULL, "%s@COWMAP_1.0 not exported", api[i]);
	}
	EXPECT(dlvsym(h, "cowmap_set_lock_wait", "COWMAP_1.1") != NULL,
	       "cowmap_set_lock_wait@COWMAP_1.1 not exported");
	for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++)
		EXPECT(dlsym(h, hidden[i]) == NULL, "%s is exported", hidden[i]);
	dlclose(h);
}

/* ------------------------------------------------------------------------ */

struct trec {
	uint64_t off;
	uint32_t len;
	uint8_t *old, *new;
};

static int write_log(const char *log, const char *file, const struct trec *r, int n)
{
	struct cowmap_log_writer *w;
	int ret = cowmap_log_create(log, file, 0, &w);

	if (ret)
		return ret;
	for (int i = 0; i < n; i++) {
		ret = cowmap_log_append(w, r[i].off, r[i].old, r[i].new, r[i].len);
		if (ret)
			break;
	}
	if (cowmap_log_writer_close(w) && !ret)
		ret = -EIO;
	return ret;
}

static bool log_matches(struct cowmap_log *l, const struct trec *r, int n)
{
	struct cowmap_log_rec rec;
	int i = 0, ret;

	cowmap_log_rewind(l);
	while ((ret = cowmap_log_next(l, &rec)) == 1) {
		if (i >= n || rec.seq != (uint64_t)i || rec.offset != r[i].off ||
		    rec.length != r[i].len || rec.flags ||
		    memcmp(rec.old_data, r[i].old, r[i].len) ||
		    memcmp(rec.new_data, r[i].new, r[i].len))
			return false;
		i++;
	}
	return ret == 0 && i == n;
}

TEST(log_roundtrip_binary)
{
	static const uint32_t lens[] = { 1, 2, 3, 7, 8, 9, 15, 16, 17, 4095, 4096, 4097,
					 65536, 65537, (1 << 20) + 3, 3 << 20, (5 << 20) + 1 };
	const int n = sizeof(lens) / sizeof(lens[0]) + 2;
	struct trec r[sizeof(lens) / sizeof(lens[0]) + 2];
	const char *file = tpath("rt.file"), *log = tpath("rt.log");
	struct cowmap_log_info info;
	struct cowmap_log *l;
	struct stat st;
	uint64_t off = 0;
	int ret;

	ASSERT(!write_file(file, "0123456789", 10), "write");
	for (int i = 0; i < n; i++) {
		uint32_t len = i < n - 2 ? lens[i] : 4;

		r[i].off = off;
		r[i].len = len;
		r[i].old = malloc(len);
		r[i].new = malloc(len);
		fill_random(r[i].old, len);
		fill_random(r[i].new, len);
		off += len + rnd(100);
	}
	memcpy(r[n - 2].old, "\0\n\xff\0", 4);
	memcpy(r[n - 2].new, "\n\0\0\xff", 4);
	memcpy(r[n - 1].old, "\xff\xff\xff\xff", 4);
	memcpy(r[n - 1].new, "\0\0\0\0", 4);
	r[n - 1].off = (1ULL << 40) + 1;	/* far offsets are fine */

	ret = write_log(log, file, r, n);
	ASSERT(!ret, "write_log: %d %s", ret, cowmap_errmsg());
	/* read into a sealed memfd, then into anonymous memory (the fallback) */
	for (int way = 0; way < 2; way++) {
		if (way)
			setenv("COWMAP_TEST_NO_MEMFD", "1", 1);
		ret = cowmap_log_open(log, 0, &l);
		unsetenv("COWMAP_TEST_NO_MEMFD");
		ASSERT(!ret, "open (%d): %s", way, cowmap_errmsg());
		cowmap_log_info(l, &info);
		stat(file, &st);
		EXPECT(info.dev == (uint64_t)st.st_dev && info.ino == (uint64_t)st.st_ino,
		       "identity");
		EXPECT(info.size == 10, "size %llu", (unsigned long long)info.size);
		EXPECT(!strcmp(info.path, file), "path %s", info.path);
		EXPECT(info.pid == (uint32_t)getpid() && info.uid == (uint32_t)getuid(), "pid/uid");
		EXPECT(info.session_id == 0 && info.bind_time_ns > 0, "session id / time");
		EXPECT(info.header_len == 96 + ((strlen(file) + 7) & ~7UL), "header_len %u",
		       info.header_len);
		EXPECT(info.records == (uint64_t)n && !info.torn, "records %llu",
		       (unsigned long long)info.records);
		EXPECT(info.valid_end == info.log_size, "valid_end");
		EXPECT(log_matches(l, r, n), "records differ (%d)", way);
		EXPECT(log_matches(l, r, n), "records differ after rewind (%d)", way);
		cowmap_log_close(l);
	}
	for (int i = 0; i < n; i++) {
		free(r[i].old);
		free(r[i].new);
	}
}

/*
 * A file size limit applies to a memfd as to any file: a process under
 * one smaller than a log must still read the log (the other way), not be
 * killed by SIGXFSZ.
 */
TEST(log_read_under_file_size_limit)
{
	const char *file = tpath("fl.file"), *log = tpath("fl.log");
	struct trec r = { .off = 100, .len = 65536 };
	struct stat st;
	pid_t pid;
	int status;

	r.old = malloc(r.len);
	r.new = malloc(r.len);
	fill_random(r.old, r.len);
	fill_random(r.new, r.len);
	ASSERT(!write_file(file, "0123456789", 10), "write");
	ASSERT(!write_log(log, file, &r, 1), "write_log: %s", cowmap_errmsg());
	ASSERT(!stat(log, &st) && st.st_size > 2 * 65536, "log size");
	pid = fork();
	if (!pid) {
		struct rlimit rl = { 4096, 4096 };
		struct cowmap_log *l;

		signal(SIGXFSZ, SIG_DFL);
		if (setrlimit(RLIMIT_FSIZE, &rl) || cowmap_log_open(log, 0, &l))
			_exit(1);
		_exit(log_matches(l, &r, 1) ? 0 : 2);
	}
	ASSERT(waitpid(pid, &status, 0) == pid, "waitpid");
	EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "reading a log under RLIMIT_FSIZE: %s %d",
	       WIFSIGNALED(status) ? "killed by signal" : "exit status",
	       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	free(r.old);
	free(r.new);
}

TEST(log_writer_refuses_bad_records)
{
	struct cowmap_log_writer *w;
	uint8_t b[4] = { 1, 2, 3, 4 };
	int ret;

	ASSERT(!write_file(tpath("wr.file"), "x", 1), "write");
	ret = cowmap_log_create(tpath("wr.log"), tpath("wr.file"), COWMAP_LOG_CREATE_EXCL, &w);
	ASSERT(!ret, "create: %s", cowmap_errmsg());
	EXPECT(cowmap_log_append(w, 0, b, b, 0) == -EINVAL, "length 0");
	EXPECT(cowmap_log_append(w, INT64_MAX - 1, b, b, 4) == -EINVAL, "offset overflow");
	EXPECT(cowmap_log_append(w, 0, b, b, 4) == 0, "good record");
	EXPECT(cowmap_log_writer_close(w) == 0, "close");
	EXPECT(cowmap_log_create(tpath("wr.log"), tpath("wr.file"), COWMAP_LOG_CREATE_EXCL, &w) == -EEXIST,
	       "EXCL");
}

/* Build a log of @n small records in memory; returns its bytes. */
static uint8_t *small_log(const char *name, int n, uint32_t len, size_t *size,
			  uint64_t *last_off)
{
	struct trec r[16];
	uint8_t *data;

	write_file(tpath("small.file"), "abcdefgh", 8);
	for (int i = 0; i < n; i++) {
		r[i].off = (uint64_t)i * 100;
		r[i].len = len;
		r[i].old = malloc(len);
		r[i].new = malloc(len);
		fill_random(r[i].old, len);
		fill_random(r[i].new, len);
	}
	if (write_log(tpath(name), tpath("small.file"), r, n))
		return NULL;
	for (int i = 0; i < n; i++) {
		free(r[i].old);
		free(r[i].new);
	}
	data = read_file(tpath(name), size);
	*last_off = *size - COWMAP_LOG_REC_SIZE(len);
	return data;
}

/* Open @len bytes as a log (through a memfd: thousands of cases). */
static int open_bytes(const uint8_t *data, size_t len, struct cowmap_log **l)
{
	static int fd = -1;

	if (fd < 0)
		fd = memfd_create("log", MFD_CLOEXEC);
	if (ftruncate(fd, 0) || pwrite(fd, data, len, 0) != (ssize_t)len)
		return -EIO;
	return cowmap_log_open_fd(fd, "bytes.log", 0, l);
}

TEST(log_torn_tail_every_byte)
{
	uint64_t last, torn_ok = 0, cases = 0;
	struct cowmap_log_info info;
	struct cowmap_log *l;
	size_t size;
	uint8_t *d = small_log("torn.log", 3, 13, &size, &last);
	uint8_t *z;
	int ret;

	ASSERT(d, "log");
	/* cut inside the last record at every byte: torn, 2 records kept */
	for (uint64_t cut = last + 1; cut < size; cut++) {
		cases++;
		ret = open_bytes(d, cut, &l);
		if (ret) {
			DIAG("cut at %llu refused: %s", (unsigned long long)cut, cowmap_errmsg());
			continue;
		}
		cowmap_log_info(l, &info);
		if (info.torn && info.torn_kind == COWMAP_LOG_TORN_SHORT &&
		    info.torn_offset == last && info.records == 2 && info.valid_end == last)
			torn_ok++;
		else
			DIAG("cut at %llu: torn %u at %llu, %llu records", (unsigned long long)cut,
			     info.torn, (unsigned long long)info.torn_offset,
			     (unsigned long long)info.records);
		cowmap_log_close(l);
	}
	EXPECT(torn_ok == cases, "%llu of %llu cuts reported as torn tails",
	       (unsigned long long)torn_ok, (unsigned long long)cases);
	/* cut exactly at the boundary: 2 whole records, not torn */
	ret = open_bytes(d, last, &l);
	ASSERT(!ret, "boundary: %s", cowmap_errmsg());
	cowmap_log_info(l, &info);
	EXPECT(!info.torn && info.records == 2, "boundary");
	cowmap_log_close(l);

	/* a whole last record whose bytes are damaged: torn; zero-filled
	 * tail (a crash after the file was extended): torn */
	z = malloc(size + 4096);
	for (uint64_t p = last; p < size; p += 5) {
		memcpy(z, d, size);
		if (p - last < 4)	/* magic: make it zero, as after a crash */
			memset(z + last, 0, size - last);
		else
			z[p] ^= 0x40;
		ret = open_bytes(z, size, &l);
		if (!ret) {
			cowmap_log_info(l, &info);
			EXPECT(info.torn && info.records == 2 && info.torn_offset == last,
			       "damaged last record at %llu: torn %u records %llu",
			       (unsigned long long)p, info.torn, (unsigned long long)info.records);
			cowmap_log_close(l);
		} else {
			/* length field damage can make it look like another record */
			EXPECT(p >= last + 16 && p < last + 20, "damaged byte %llu refused: %s",
			       (unsigned long long)p, cowmap_errmsg());
		}
	}
	memcpy(z, d, size);
	memset(z + size, 0, 4096);
	ret = open_bytes(z, size + 4096, &l);
	ASSERT(!ret, "zero tail: %s", cowmap_errmsg());
	cowmap_log_info(l, &info);
	EXPECT(info.torn && info.torn_kind == COWMAP_LOG_TORN_ZERO && info.records == 3 &&
	       info.torn_offset == size, "zero tail");
	cowmap_log_close(l);
	/* a last record whose bytes turn to zero (not at a block boundary:
	 * test_cli.c has those) with zeros after it: damage */
	memcpy(z, d, size);
	memset(z + last + 20, 0, size + 4096 - last - 20);
	ret = open_bytes(z, size + 4096, &l);
	ASSERT(!ret, "partial + zeros: %s", cowmap_errmsg());
	cowmap_log_info(l, &info);
	EXPECT(info.torn && info.torn_kind == COWMAP_LOG_TORN_CRC && info.records == 2 &&
	       info.torn_offset == last, "partial + zeros: kind %u", info.torn_kind);
	cowmap_log_close(l);
	free(z);
	free(d);
}

TEST(log_every_bit_flip_detected)
{
	uint64_t last, refused = 0, torn = 0, bits = 0, missed = 0;
	struct cowmap_log_info info;
	struct cowmap_log *l;
	size_t size;
	uint8_t *d = small_log("flip.log", 3, 5, &size, &last);

	ASSERT(d, "log");
	for (uint64_t byte = 0; byte < size; byte++) {
		for (int bit = 0; bit < 8; bit++) {
			int ret;

			bits++;
			d[byte] ^= (uint8_t)(1 << bit);
			ret = open_bytes(d, size, &l);
			d[byte] ^= (uint8_t)(1 << bit);
			if (ret) {
				if (ret != -COWMAP_EBADLOG || !strstr(cowmap_errmsg(), "byte ")) {
					if (missed++ < 5)
						DIAG("flip %llu.%d: %d %s", (unsigned long long)byte, bit,
						     ret, cowmap_errmsg());
				}
				refused++;
				continue;
			}
			cowmap_log_info(l, &info);
			/* only a damaged last record may be dropped as torn, and a
			 * flipped bit leaves it whole: a checksum failure, or a
			 * length that runs past the end of the file */
			if (info.torn && byte >= last && info.records == 2 &&
			    (info.torn_kind == COWMAP_LOG_TORN_CRC ||
			     (info.torn_kind == COWMAP_LOG_TORN_SHORT &&
			      byte >= last + 16 && byte < last + 20)))
				torn++;
			else if (missed++ < 5)
				DIAG("flip %llu.%d: accepted, torn %u records %llu", (unsigned long long)byte,
				     bit, info.torn, (unsigned long long)info.records);
			cowmap_log_close(l);
		}
	}
	DIAG("%llu bit flips: %llu refused, %llu torn last record", (unsigned long long)bits,
	     (unsigned long long)refused, (unsigned long long)torn);
	EXPECT(missed == 0, "%llu flips not detected", (unsigned long long)missed);
	free(d);
}

/* Re-seal a record's CRC after editing it in place. */
static void reseal(uint8_t *d, uint64_t at)
{
	uint32_t len = get_le32(d + at + 16);

	put_le32(d + at + 4, log_rec_crc(d + at, COWMAP_LOG_REC_SIZE(len)));
}

static void reseal_header(uint8_t *d)
{
	put_le32(d + 92, log_hdr_crc(d, get_le32(d + 12)));
}

static void expect_refused(const uint8_t *d, size_t size, uint64_t at, const char *what)
{
	struct cowmap_log *l;
	char want[64];
	int ret = open_bytes(d, size, &l);

	snprintf(want, sizeof(want), "byte %llu:", (unsigned long long)at);
	EXPECT(ret == -COWMAP_EBADLOG, "%s: accepted (%d)", what, ret);
	if (ret == -COWMAP_EBADLOG)
		EXPECT(strstr(cowmap_errmsg(), want) != NULL, "%s: message \"%s\" lacks \"%s\"",
		       what, cowmap_errmsg(), want);
	else if (!ret)
		cowmap_log_close(l);
}

TEST(log_refuses_malformed)
{
	uint64_t last, first, second;
	size_t size;
	uint8_t *d = small_log("bad.log", 3, 6, &size, &last);
	uint8_t *c = malloc(size + 64);
	uint32_t hlen;

	ASSERT(d && c, "log");
	hlen = get_le32(d + 12);
	first = hlen;
	second = first + COWMAP_LOG_REC_SIZE(6);

#define FRESH() memcpy(c, d, size)
	FRESH(); c[0] = 'X';
	expect_refused(c, size, 0, "magic");
	FRESH(); put_le32(c + 8, 2); reseal_header(c);
	expect_refused(c, size, 8, "version");
	FRESH(); put_le32(c + 12, hlen + 8); reseal_header(c);
	expect_refused(c, size, 12, "header_len");
	FRESH(); put_le32(c + 84, 1); reseal_header(c);
	expect_refused(c, size, 84, "header flags");
	FRESH(); put_le32(c + 88, 1); reseal_header(c);
	expect_refused(c, size, 88, "header reserved");
	FRESH(); c[40] ^= 1;
	expect_refused(c, size, 92, "header crc");
	FRESH();
	expect_refused(c, 50, 50, "short header");
	expect_refused(c, 0, 0, "empty file");
	FRESH(); put_le32(c + second, 0x12345678);
	expect_refused(c, size, second, "record magic in the middle");
	FRESH(); c[second + 40] ^= 1;
	expect_refused(c, size, second, "record crc in the middle");
	FRESH(); put_le64(c + second + 24, 5); reseal(c, second);
	expect_refused(c, size, second + 24, "seq gap");
	FRESH(); put_le64(c + last + 24, 3); reseal(c, last);
	expect_refused(c, size, last + 24, "seq gap in the last record");
	FRESH(); put_le32(c + first + 20, 1); reseal(c, first);
	expect_refused(c, size, first + 20, "record flags");
	FRESH(); put_le32(c + first + 16, 0);
	expect_refused(c, size, first + 16, "length 0");
	FRESH(); put_le32(c + first + 16, COWMAP_LOG_REC_MAX + 1);
	expect_refused(c, size, first + 16, "length too large");
	FRESH(); put_le64(c + first + 8, INT64_MAX - 2); reseal(c, first);
	expect_refused(c, size, first + 8, "offset overflow");
	FRESH(); c[first + 32 + 12] = 1; reseal(c, first);	/* padding */
	expect_refused(c, size, first + 32 + 12, "record padding");
	FRESH(); memset(c + size, 0xee, 40);
	expect_refused(c, size + 40, size, "garbage after the last record");
#undef FRESH
	free(c);
	free(d);
}

TEST(diff_buffer_iteration)
{
	uint64_t last;
	size_t size, pos = 0;
	uint8_t *d = small_log("diff.log", 3, 9, &size, &last);
	struct cowmap_log_rec r;
	uint32_t hlen;
	int n = 0, ret;

	ASSERT(d, "log");
	hlen = get_le32(d + 12);
	while ((ret = cowmap_diff_next(d + hlen, size - hlen, &pos, &r)) == 1) {
		EXPECT(r.offset == (uint64_t)n * 100 && r.length == 9, "record %d", n);
		n++;
	}
	EXPECT(ret == 0 && n == 3, "ret %d n %d", ret, n);
	pos = 0;
	d[hlen + 40] ^= 1;
	EXPECT(cowmap_diff_next(d + hlen, size - hlen, &pos, &r) == -COWMAP_EBADLOG, "crc");
	pos = 0;
	EXPECT(cowmap_diff_next(d + hlen, 20, &pos, &r) == -COWMAP_EBADLOG, "short");
	free(d);
}

TEST(session_without_module)
{
	struct cowmap_session *s;
	int ret;

	if (access(COWMAP_DEVICE_PATH, F_OK) == 0)
		SKIP("%s exists; sessions are tested in the VM", COWMAP_DEVICE_PATH);
	write_file(tpath("sess.file"), "x", 1);
	ret = cowmap_session_open(tpath("sess.file"), 0, tpath("sess.log"), 0, &s);
	EXPECT(ret == -ENOENT, "ret %d", ret);
	EXPECT(strstr(cowmap_errmsg(), "module") != NULL, "message: %s", cowmap_errmsg());
	EXPECT(access(tpath("sess.log"), F_OK) != 0, "log left behind");
	EXPECT(cowmap_session_open(tpath("sess.file"), 1, NULL, 0, &s) == -EINVAL, "flags");
}
