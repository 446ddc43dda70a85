// SPDX-License-Identifier: GPL-2.0
/*
 * Raw generic netlink for the selftests: see nl.h.
 */
#include "nl.h"

int nlu_socket(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int one = 1, sk;

	sk = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (sk < 0)
		return -errno;
	if (bind(sk, (struct sockaddr *)&sa, sizeof(sa))) {
		close(sk);
		return -errno;
	}
	setsockopt(sk, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	return sk;
}

size_t nlu_put(uint8_t *p, uint16_t type, const void *data,
	       uint16_t len)
{
	struct nlattr *a = (struct nlattr *)p;

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	if (len)
		memcpy(p + NLA_HDRLEN, data, len);
	memset(p + NLA_HDRLEN + len, 0, NLA_ALIGN(a->nla_len) - a->nla_len);
	return NLA_ALIGN(a->nla_len);
}

size_t nlu_put_u64(uint8_t *p, uint16_t type, uint64_t v)
{
	return nlu_put(p, type, &v, 8);
}

size_t nlu_put_u32(uint8_t *p, uint16_t type, uint32_t v)
{
	return nlu_put(p, type, &v, 4);
}

int nlu_send(int sk, const void *msg, size_t len)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };

	if (sendto(sk, msg, len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	return 0;
}

int nlu_request(int sk, uint16_t type, uint8_t cmd, uint16_t flags,
		const void *attrs, size_t alen,
		int (*cb)(const struct nlmsghdr *nh, void *arg),
		void *arg, int timeout_ms)
{
	static uint32_t seq = 1000;
	uint8_t req[4096] __attribute__((aligned(8)));
	uint8_t buf[65536] __attribute__((aligned(8)));
	struct nlmsghdr *nh = (struct nlmsghdr *)req;
	struct genlmsghdr *gh = NLMSG_DATA(nh);
	uint32_t myseq = ++seq;
	int err;

	if (alen > sizeof(req) - NLMSG_LENGTH(GENL_HDRLEN))
		return -E2BIG;
	memset(req, 0, NLMSG_LENGTH(GENL_HDRLEN));
	nh->nlmsg_type = type;
	nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nh->nlmsg_seq = myseq;
	gh->cmd = cmd;
	gh->version = 1;
	memcpy(req + NLMSG_LENGTH(GENL_HDRLEN), attrs, alen);
	nh->nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN) + alen;
	err = nlu_send(sk, req, nh->nlmsg_len);
	if (err)
		return err;
	for (;;) {
		struct pollfd pfd = { .fd = sk, .events = POLLIN };
		ssize_t n;
		size_t left;

		if (poll(&pfd, 1, timeout_ms) <= 0)
			return -ETIMEDOUT;
		n = recv(sk, buf, sizeof(buf), 0);
		if (n < 0)
			return -errno;
		left = n;
		for (nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, left);
		     nh = NLMSG_NEXT(nh, left)) {
			if (nh->nlmsg_seq != myseq)
				continue;	/* a notification or a stale reply */
			if (nh->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(nh);

				if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
					return -EPROTO;
				return e->error;
			}
			if (nh->nlmsg_type == NLMSG_DONE)
				return 0;
			if (cb && (err = cb(nh, arg)))
				return err;
		}
		if (left)
			return -EPROTO;
	}
}

const struct nlattr *nlu_find(const uint8_t *p, size_t len, int type)
{
	while (len >= NLA_HDRLEN) {
		const struct nlattr *a = (const struct nlattr *)p;

		if (a->nla_len < NLA_HDRLEN || a->nla_len > len)
			return NULL;
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return a;
		if (NLA_ALIGN(a->nla_len) >= len)
			return NULL;
		len -= NLA_ALIGN(a->nla_len);
		p += NLA_ALIGN(a->nla_len);
	}
	return NULL;
}

uint64_t nlu_get_u64(const struct nlattr *a)
{
	uint64_t v = 0;

	if (a && a->nla_len >= NLA_HDRLEN + 8)
		memcpy(&v, (const uint8_t *)a + NLA_HDRLEN, 8);
	return v;
}

static int nlu_resolve_cb(const struct nlmsghdr *nh, void *arg)
{
	struct nlu_family *f = arg;
	const uint8_t *p = (const uint8_t *)NLMSG_DATA(nh) + GENL_HDRLEN;
	size_t len = nh->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
	const struct nlattr *a, *grps, *g;

	a = nlu_find(p, len, CTRL_ATTR_FAMILY_ID);
	if (a)
		memcpy(&f->id, (const uint8_t *)a + NLA_HDRLEN, 2);
	grps = nlu_find(p, len, CTRL_ATTR_MCAST_GROUPS);
	if (!grps)
		return 0;
	p = (const uint8_t *)grps + NLA_HDRLEN;
	len = grps->nla_len - NLA_HDRLEN;
	while (len >= NLA_HDRLEN) {
		const struct nlattr *name, *id;

		g = (const struct nlattr *)p;
		if (g->nla_len < NLA_HDRLEN || g->nla_len > len)
			break;
		name = nlu_find((const uint8_t *)g + NLA_HDRLEN, g->nla_len - NLA_HDRLEN,
				CTRL_ATTR_MCAST_GRP_NAME);
		id = nlu_find((const uint8_t *)g + NLA_HDRLEN, g->nla_len - NLA_HDRLEN,
			      CTRL_ATTR_MCAST_GRP_ID);
		if (name && id && !strcmp((const char *)name + NLA_HDRLEN,
					   COWMAP_MCGRP_EVENTS))
			memcpy(&f->events_grp, (const uint8_t *)id + NLA_HDRLEN, 4);
		if (NLA_ALIGN(g->nla_len) >= len)
			break;
		len -= NLA_ALIGN(g->nla_len);
		p += NLA_ALIGN(g->nla_len);
	}
	return 0;
}

int nlu_resolve(int sk, struct nlu_family *f)
{
	uint8_t attrs[64];
	size_t alen;
	int err;

	memset(f, 0, sizeof(*f));
	alen = nlu_put(attrs, CTRL_ATTR_FAMILY_NAME, COWMAP_GENL_NAME,
		       strlen(COWMAP_GENL_NAME) + 1);
	err = nlu_request(sk, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 0, attrs, alen,
			  nlu_resolve_cb, f, 5000);
	if (err)
		return err;
	return f->id ? 0 : -ENOENT;
}

int nlu_subscribe(int sk, uint32_t grp)
{
	if (setsockopt(sk, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp)))
		return -errno;
	return 0;
}

uint64_t nlu_nested_u64(const struct nlmsghdr *nh, int outer, int inner)
{
	const uint8_t *p = (const uint8_t *)NLMSG_DATA(nh) + GENL_HDRLEN;
	size_t len = nh->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
	const struct nlattr *n = nlu_find(p, len, outer);

	if (!n)
		return 0;
	return nlu_get_u64(nlu_find((const uint8_t *)n + NLA_HDRLEN,
				    n->nla_len - NLA_HDRLEN, inner));
}

struct nlu_u64_ctx {
	int outer, inner;
	uint64_t val;
	int found;
};

static int nlu_u64_cb(const struct nlmsghdr *nh, void *arg)
{
	struct nlu_u64_ctx *c = arg;
	const uint8_t *p = (const uint8_t *)NLMSG_DATA(nh) + GENL_HDRLEN;
	size_t len = nh->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);

	if (nlu_find(p, len, c->outer)) {
		c->val = nlu_nested_u64(nh, c->outer, c->inner);
		c->found = 1;
	}
	return 0;
}

int nlu_get_u64_attr(int sk, const struct nlu_family *f, uint8_t cmd,
		     int outer, int inner, uint64_t *val)
{
	struct nlu_u64_ctx c = { .outer = outer, .inner = inner };
	int err = nlu_request(sk, f->id, cmd, 0, NULL, 0, nlu_u64_cb, &c, 5000);

	if (err)
		return err;
	if (!c.found)
		return -ENOENT;
	*val = c.val;
	return 0;
}

int nlu_session_exists(int sk, const struct nlu_family *f, uint64_t id)
{
	uint8_t attrs[16];
	int err;

	err = nlu_request(sk, f->id, COWMAP_CMD_GET_SESSION, 0, attrs,
			  nlu_put_u64(attrs, COWMAP_A_SESSION_ID, id), NULL, NULL, 5000);
	if (err == -ENOENT)
		return 0;
	return err ? err : 1;
}
