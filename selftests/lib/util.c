// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers shared by the cowmap selftests: see util.h.
 */
#include "util.h"
#include "nl.h"

const char *cm_scratch_dir(const char *env, const char **why)
{
	const char *d = getenv(env);
	struct stat st;

	if (!d || !*d) {
		*why = "is not set";
		return NULL;
	}
	if (stat(d, &st) || !S_ISDIR(st.st_mode)) {
		*why = "is not a directory";
		return NULL;
	}
	return d;
}

char *cm_mkdtemp(const char *base, const char *tag)
{
	char *p;

	if (asprintf(&p, "%s/%s.XXXXXX", base, tag) < 0)
		return NULL;
	if (!mkdtemp(p)) {
		free(p);
		return NULL;
	}
	return p;
}

static int cm_rm_one(const char *path, const struct stat *st, int flag,
		     struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void cm_rm_rf(const char *dir)
{
	if (dir)
		nftw(dir, cm_rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

char *cm_path(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

void cm_fill(uint64_t seed, void *buf, size_t len)
{
	uint8_t *p = buf;
	uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
	size_t i;

	for (i = 0; i < len; i++) {
		if (!(i & 7))
			s = cm_rand(&s);
		p[i] = (uint8_t)(s >> ((i & 7) * 8));
	}
}

/* pread() or pwrite() all @len bytes at @off: a short transfer goes on. */
static int rw_all(int fd, void *buf, size_t len, off_t off, bool write)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = write ? pwrite(fd, p, len, off) : pread(fd, p, len, off);

		if (n <= 0)
			return -1;
		p += n;
		len -= n;
		off += n;
	}
	return 0;
}

int cm_write_all(int fd, const void *buf, size_t len, off_t off)
{
	return rw_all(fd, (void *)buf, len, off, true);
}

int cm_read_all(int fd, void *buf, size_t len, off_t off)
{
	return rw_all(fd, buf, len, off, false);
}

int cm_create(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return -1;
	if (len && cm_write_all(fd, data, len, 0)) {
		close(fd);
		return -1;
	}
	if (fsync(fd)) {
		close(fd);
		return -1;
	}
	return fd;
}

uint8_t *cm_slurp(const char *path, size_t *lenp)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st)) {
		close(fd);
		return NULL;
	}
	buf = malloc(st.st_size + 1);
	if (buf && st.st_size && cm_read_all(fd, buf, st.st_size, 0)) {
		free(buf);
		buf = NULL;
	}
	close(fd);
	*lenp = st.st_size;
	return buf;
}

off_t cm_fsize(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? -1 : st.st_size;
}

int cm_open_dev(void)
{
	return open(COWMAP_DEVICE_PATH, O_RDWR | O_CLOEXEC);
}

int cm_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

int cm_bind(int dev, int fd, int log_fd, uint32_t flags,
	    uint32_t ring, struct cowmap_bind *out)
{
	struct cowmap_bind b = {
		.fd = fd, .log_fd = log_fd, .flags = flags, .ring_size = ring,
	};
	int err = cm_ioctl(dev, COWMAP_IOC_BIND, &b);

	if (!err && out)
		*out = b;
	return err;
}

int cm_session(int fd, int log_fd, uint32_t ring)
{
	int dev = cm_open_dev(), err;

	if (dev < 0)
		return -errno;
	err = cm_bind(dev, fd, log_fd, log_fd >= 0 ? COWMAP_BIND_LOG : 0,
		      ring, NULL);
	if (err) {
		close(dev);
		return err;
	}
	return dev;
}

int cm_info(int dev, struct cowmap_info *in)
{
	memset(in, 0, sizeof(*in));
	return cm_ioctl(dev, COWMAP_IOC_INFO, in);
}

void *cm_map(int dev, uint64_t off, size_t len, int prot)
{
	return mmap(NULL, len, prot, MAP_SHARED, dev, off);
}

int cm_discard(int dev, uint64_t off, uint64_t len, uint32_t flags,
	       uint64_t *pages)
{
	struct cowmap_range r = { .offset = off, .length = len, .flags = flags };
	int err = cm_ioctl(dev, COWMAP_IOC_DISCARD, &r);

	if (!err && pages)
		*pages = r.pages;
	return err;
}

int cm_drain(int dev, int log_fd, struct cowmap_drain *out)
{
	struct cowmap_drain d = {
		.log_fd = log_fd,
		.flags = log_fd >= 0 ? COWMAP_DRAIN_FD : 0,
	};
	int err = cm_ioctl(dev, COWMAP_IOC_DRAIN, &d);

	if (!err && out)
		*out = d;
	return err;
}

int cm_diff_all(int dev, uint64_t off, uint64_t end,
		size_t buf_len, uint8_t **bufp, size_t *usedp,
		uint32_t *recordsp)
{
	uint8_t *all = NULL, *chunk = malloc(buf_len);
	size_t used = 0;
	uint32_t records = 0;
	int calls = 0;

	if (!chunk)
		return -ENOMEM;
	do {
		struct cowmap_diff d = {
			.offset = off, .end = end,
			.buf = (uintptr_t)chunk, .buf_len = buf_len,
		};
		uint8_t *n;
		int err = cm_ioctl(dev, COWMAP_IOC_DIFF, &d);

		if (err || (d.offset != COWMAP_DIFF_END && d.offset <= off &&
			    calls) || ++calls > 100000) {
			free(chunk);
			free(all);
			return err ? err : -ELOOP;
		}
		n = realloc(all, used + d.used + 1);
		if (!n) {
			free(chunk);
			free(all);
			return -ENOMEM;
		}
		all = n;
		memcpy(all + used, chunk, d.used);
		used += d.used;
		records += d.records;
		off = d.offset;
	} while (off != COWMAP_DIFF_END);
	free(chunk);
	*bufp = all;
	*usedp = used;
	*recordsp = records;
	return calls;
}

int cm_events(int dev, struct cowmap_event *ev, size_t max)
{
	ssize_t n = read(dev, ev, max * sizeof(*ev));

	if (n < 0)
		return -errno;
	if (n % sizeof(*ev))
		return -EPROTO;
	return n / sizeof(*ev);
}

int cm_events_all(int dev, struct cowmap_event *ev, size_t max)
{
	int fl = fcntl(dev, F_GETFL);
	size_t n = 0;
	int ret;

	if (fl < 0 || fcntl(dev, F_SETFL, fl | O_NONBLOCK))
		return -errno;
	for (;;) {
		ssize_t r;

		if (n == max)
			break;
		r = read(dev, ev + n, (max - n) * sizeof(*ev));
		if (r < 0) {
			if (errno == EAGAIN)
				break;
			ret = -errno;
			fcntl(dev, F_SETFL, fl);
			return ret;
		}
		if (r == 0 || r % sizeof(*ev)) {
			fcntl(dev, F_SETFL, fl);
			return -EPROTO;
		}
		n += r / sizeof(*ev);
	}
	fcntl(dev, F_SETFL, fl);
	return n;
}

int cm_set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl) ? -errno : 0;
}

uint64_t cm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

uint32_t cm_crc32c_raw(uint32_t crc, const void *buf, size_t len)
{
	static uint32_t tab[256];
	const uint8_t *p = buf;
	size_t i;

	if (!tab[1]) {
		for (uint32_t n = 0; n < 256; n++) {
			uint32_t c = n;

			for (int k = 0; k < 8; k++)
				c = c & 1 ? (c >> 1) ^ 0x82F63B78U : c >> 1;
			tab[n] = c;
		}
	}
	for (i = 0; i < len; i++)
		crc = tab[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return crc;
}

uint32_t cm_crc32c_skip(const void *buf, size_t len, size_t crc_off)
{
	static const uint8_t zero[4];
	const uint8_t *p = buf;
	uint32_t c = ~0U;

	c = cm_crc32c_raw(c, p, crc_off);
	c = cm_crc32c_raw(c, zero, 4);
	c = cm_crc32c_raw(c, p + crc_off + 4, len - crc_off - 4);
	return ~c;
}

int cm_rec_next(const uint8_t *buf, size_t used, size_t *pos,
		struct cm_rec *r, char *why)
{
	const struct cowmap_log_record *h;
	uint64_t size;
	size_t i;

	if (*pos == used)
		return 0;
	if (used - *pos < sizeof(*h)) {
		snprintf(why, 64, "short record header at %zu", *pos);
		return -1;
	}
	h = (const void *)(buf + *pos);
	if (le32toh(h->magic) != COWMAP_LOG_REC_MAGIC) {
		snprintf(why, 64, "bad magic %#x at %zu", le32toh(h->magic), *pos);
		return -1;
	}
	r->length = le32toh(h->length);
	size = COWMAP_LOG_REC_SIZE(r->length);
	if (!r->length || size > used - *pos) {
		snprintf(why, 64, "bad length %u at %zu", r->length, *pos);
		return -1;
	}
	if (cm_crc32c_skip(h, size, offsetof(struct cowmap_log_record, crc)) !=
	    le32toh(h->crc)) {
		snprintf(why, 64, "bad CRC at %zu", *pos);
		return -1;
	}
	for (i = sizeof(*h) + 2 * (size_t)r->length; i < size; i++) {
		if (buf[*pos + i]) {
			snprintf(why, 64, "nonzero padding at %zu", *pos + i);
			return -1;
		}
	}
	r->seq = le64toh(h->seq);
	r->offset = le64toh(h->offset);
	r->flags = le32toh(h->flags);
	r->old = buf + *pos + sizeof(*h);
	r->new = r->old + r->length;
	*pos += size;
	return 1;
}

int cm_rec_torn(const uint8_t *buf, size_t used, size_t pos)
{
	const struct cowmap_log_record *h = (const void *)(buf + pos);

	return used - pos < sizeof(*h) ||
	       (le32toh(h->magic) == COWMAP_LOG_REC_MAGIC &&
		COWMAP_LOG_REC_SIZE(le32toh(h->length)) > used - pos);
}

int read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return n;
}

int cm_read_text(const char *path, char *buf, size_t len)
{
	int n = read_text(path, buf, len);

	if (n < 0)
		return n;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return 0;
}

int cm_write_text(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	if (n < 0)
		return -errno;
	return n == (ssize_t)strlen(val) ? 0 : -EIO;
}

int cm_param_read(const char *name, char *buf, size_t len)
{
	char path[256];

	snprintf(path, sizeof(path), MODPARAM_DIR "%s", name);
	return cm_read_text(path, buf, len);
}

int cm_param_write(const char *name, const char *val)
{
	char path[256];

	snprintf(path, sizeof(path), MODPARAM_DIR "%s", name);
	return cm_write_text(path, val);
}

int cm_param_write_u64(const char *name, uint64_t v)
{
	char s[32];

	snprintf(s, sizeof(s), "%llu", (unsigned long long)v);
	return cm_param_write(name, s);
}

struct cm_nlmsg {
	struct nlmsghdr nh;
	struct genlmsghdr gh;
	uint8_t attrs[256];
};

static int cm_nl_xfer(int sk, struct cm_nlmsg *req, uint8_t *resp,
		      size_t resp_len)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	ssize_t n;

	if (sendto(sk, req, req->nh.nlmsg_len, 0, (struct sockaddr *)&sa,
		   sizeof(sa)) < 0)
		return -errno;
	n = recv(sk, resp, resp_len, 0);
	if (n < 0)
		return -errno;
	if ((size_t)n < sizeof(struct nlmsghdr))
		return -EPROTO;
	if (((struct nlmsghdr *)resp)->nlmsg_type == NLMSG_ERROR) {
		struct nlmsgerr *e = NLMSG_DATA(resp);

		return e->error ? e->error : -EPROTO;
	}
	return n;
}

int cm_nl_stat(int stat, uint64_t *val)
{
	uint8_t resp[8192];
	struct cm_nlmsg req;
	const struct nlattr *f;
	struct nlattr *a;
	uint16_t family;
	int sk, n, err = -EPROTO;
	size_t name_len = strlen(COWMAP_GENL_NAME) + 1;

	sk = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (sk < 0)
		return -errno;

	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_type = GENL_ID_CTRL;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.nh.nlmsg_seq = 1;
	req.gh.cmd = CTRL_CMD_GETFAMILY;
	req.gh.version = 1;
	a = (struct nlattr *)req.attrs;
	a->nla_type = CTRL_ATTR_FAMILY_NAME;
	a->nla_len = NLA_HDRLEN + name_len;
	memcpy((uint8_t *)a + NLA_HDRLEN, COWMAP_GENL_NAME, name_len);
	req.nh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN) + NLA_ALIGN(a->nla_len);
	n = cm_nl_xfer(sk, &req, resp, sizeof(resp));
	if (n < 0) {
		err = n;
		goto out;
	}
	f = nlu_find(resp + NLMSG_LENGTH(GENL_HDRLEN), n - NLMSG_LENGTH(GENL_HDRLEN),
		     CTRL_ATTR_FAMILY_ID);
	if (!f)
		goto out;
	memcpy(&family, (const uint8_t *)f + NLA_HDRLEN, sizeof(family));

	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_type = family;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.nh.nlmsg_seq = 2;
	req.gh.cmd = COWMAP_CMD_GET_STATS;
	req.gh.version = COWMAP_GENL_VERSION;
	req.nh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	n = cm_nl_xfer(sk, &req, resp, sizeof(resp));
	if (n < 0) {
		err = n;
		goto out;
	}
	f = nlu_find(resp + NLMSG_LENGTH(GENL_HDRLEN), n - NLMSG_LENGTH(GENL_HDRLEN),
		     COWMAP_A_STATS);
	if (!f)
		goto out;
	f = nlu_find((const uint8_t *)f + NLA_HDRLEN, f->nla_len - NLA_HDRLEN, stat);
	if (!f || f->nla_len != NLA_HDRLEN + 8)
		goto out;
	memcpy(val, (const uint8_t *)f + NLA_HDRLEN, 8);
	err = 0;
out:
	close(sk);
	return err;
}

int cm_wait(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return st;
}

int cm_selected(const char *env, const char *name)
{
	const char *l = getenv(env);
	size_t n = strlen(name);

	if (!l || !*l)
		return 1;
	for (const char *p = l; (p = strstr(p, name)); p += n) {
		if ((p == l || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return 1;
	}
	return 0;
}

void *cm_shared(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}
