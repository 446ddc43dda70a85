// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Client of the "cowmap" generic netlink family (<linux/cowmap.h>), over
 * libmnl.  Each nest is parsed by a table of the attribute types it keeps
 * (struct attr_policy), or by a callback of its own where the values go
 * straight into a struct; both skip attribute types they do not know (a
 * newer module may send more) and validate the ones they know.  Refusals
 * carry the kernel's extack message into cowmap_errmsg().
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include "internal.h"

/* Big enough for any dump skb (the kernel sizes them up to 32 KiB after
 * it saw a recvmsg(2) with a buffer this large). */
#define NL_BUF_SIZE	(64U * 1024U)
#define DUMP_RETRIES	32

struct cowmap_nl {
	struct mnl_socket *sock;
	uint32_t portid;
	uint32_t seq;
	uint16_t family;
	uint32_t version;
	uint32_t events_group;		/* 0: the module has none */
	uint8_t *buf;			/* NL_BUF_SIZE */
	/* Notifications received but not returned yet (in @buf). */
	size_t ev_len, ev_pos;
};

/* What a reply handler needs; extack of a refusal is copied in @ext. */
struct reply {
	int (*cb)(const struct nlmsghdr *nlh, void *data);
	void *data;
	int cb_err;		/* first error a callback returned */
	bool intr;		/* a dump message had NLM_F_DUMP_INTR */
	char ext[512];		/* the kernel's extack message */
};

/* ------------------------------------------------------------------------
 * Attribute callbacks: skip unknown types, validate known ones.
 * ------------------------------------------------------------------------
 */

static int bad_attr(const char *nest, unsigned int type)
{
	err_set(EPROTO, "malformed netlink reply: %s attribute %u has a bad type "
		"or length", nest, type);
	return MNL_CB_ERROR;
}

static int check_attr(const struct nlattr *attr, const char *nest,
		      enum mnl_attr_data_type type)
{
	if (mnl_attr_validate(attr, type) < 0)
		return bad_attr(nest, mnl_attr_get_type(attr));
	return MNL_CB_OK;
}

/*
 * The attributes of one nest that a caller keeps, by type: @types[type] is
 * the type it must validate as, MNL_TYPE_UNSPEC (0) for one not kept.
 * Valid attributes go to @tb[type] (@max + 1 entries).
 */
struct attr_policy {
	const char *nest;
	unsigned int max;
	const enum mnl_attr_data_type *types;
	const struct nlattr **tb;
};

static int policy_attr_cb(const struct nlattr *attr, void *data)
{
	const struct attr_policy *pol = data;
	unsigned int type = mnl_attr_get_type(attr);

	/* Padding, a type this library does not use, or a newer one. */
	if (mnl_attr_type_valid(attr, pol->max) < 0 || pol->types[type] == MNL_TYPE_UNSPEC)
		return MNL_CB_OK;
	if (check_attr(attr, pol->nest, pol->types[type]) != MNL_CB_OK)
		return MNL_CB_ERROR;
	pol->tb[type] = attr;
	return MNL_CB_OK;
}

static const enum mnl_attr_data_type top_types[COWMAP_A_MAX + 1] = {
	[COWMAP_A_CONFIG] = MNL_TYPE_NESTED,
	[COWMAP_A_STATS] = MNL_TYPE_NESTED,
	[COWMAP_A_SESSION] = MNL_TYPE_NESTED,
	[COWMAP_A_SESSION_ID] = MNL_TYPE_U64,
	[COWMAP_A_OFFSET] = MNL_TYPE_U64,
	[COWMAP_A_LOG_FD] = MNL_TYPE_U32,
};

static int config_attr_cb(const struct nlattr *attr, void *data)
{
	struct cowmap_nl_config *cfg = data;
	unsigned int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, COWMAP_CONFIG_A_MAX) < 0)
		return MNL_CB_OK;
	switch (type) {
	case COWMAP_CONFIG_A_MAX_SESSION_PAGES:
		if (check_attr(attr, "config", MNL_TYPE_U64) != MNL_CB_OK)
			return MNL_CB_ERROR;
		cfg->max_session_pages = mnl_attr_get_u64(attr);
		break;
	case COWMAP_CONFIG_A_MAX_TOTAL_PAGES:
		if (check_attr(attr, "config", MNL_TYPE_U64) != MNL_CB_OK)
			return MNL_CB_ERROR;
		cfg->max_total_pages = mnl_attr_get_u64(attr);
		break;
	default:
		return MNL_CB_OK;
	}
	cfg->present |= 1U << type;
	return MNL_CB_OK;
}

static int stats_attr_cb(const struct nlattr *attr, void *data)
{
	struct cowmap_nl_stats *st = data;
	unsigned int type = mnl_attr_get_type(attr);
	uint64_t *field;

	if (mnl_attr_type_valid(attr, COWMAP_STATS_A_MAX) < 0)
		return MNL_CB_OK;
	switch (type) {
	case COWMAP_STATS_A_SESSIONS: field = &st->sessions; break;
	case COWMAP_STATS_A_PRIVATE_PAGES: field = &st->private_pages; break;
	case COWMAP_STATS_A_COW_FAULTS: field = &st->cow_faults; break;
	case COWMAP_STATS_A_READ_FAULTS: field = &st->read_faults; break;
	case COWMAP_STATS_A_EVENTS_LOST: field = &st->events_lost; break;
	case COWMAP_STATS_A_CAP_HITS: field = &st->cap_hits; break;
	case COWMAP_STATS_A_DRAINED_BYTES: field = &st->drained_bytes; break;
	default:
		return MNL_CB_OK;
	}
	if (check_attr(attr, "stats", MNL_TYPE_U64) != MNL_CB_OK)
		return MNL_CB_ERROR;
	*field = mnl_attr_get_u64(attr);
	st->present |= 1ULL << type;
	return MNL_CB_OK;
}

static void copy_str(char *dst, size_t size, const struct nlattr *attr)
{
	snprintf(dst, size, "%s", mnl_attr_get_str(attr));
}

static int session_attr_cb(const struct nlattr *attr, void *data)
{
	struct cowmap_nl_session *s = data;
	unsigned int type = mnl_attr_get_type(attr);
	uint64_t *u64 = NULL;
	uint32_t *u32 = NULL;

	if (mnl_attr_type_valid(attr, COWMAP_SESSION_A_MAX) < 0)
		return MNL_CB_OK;
	switch (type) {
	case COWMAP_SESSION_A_ID: u64 = &s->id; break;
	case COWMAP_SESSION_A_DEV: u64 = &s->dev; break;
	case COWMAP_SESSION_A_INO: u64 = &s->ino; break;
	case COWMAP_SESSION_A_MAPPED_BYTES: u64 = &s->mapped_bytes; break;
	case COWMAP_SESSION_A_PRIVATE_PAGES: u64 = &s->private_pages; break;
	case COWMAP_SESSION_A_EVENTS: u64 = &s->events; break;
	case COWMAP_SESSION_A_EVENTS_LOST: u64 = &s->events_lost; break;
	case COWMAP_SESSION_A_BIND_TIME: u64 = &s->bind_time_ns; break;
	case COWMAP_SESSION_A_PID: u32 = &s->pid; break;
	case COWMAP_SESSION_A_UID: u32 = &s->uid; break;
	case COWMAP_SESSION_A_COMM:
	case COWMAP_SESSION_A_PATH:
		if (check_attr(attr, "session", MNL_TYPE_NUL_STRING) != MNL_CB_OK)
			return MNL_CB_ERROR;
		if (type == COWMAP_SESSION_A_COMM)
			copy_str(s->comm, sizeof(s->comm), attr);
		else
			copy_str(s->path, sizeof(s->path), attr);
		break;
	default:
		return MNL_CB_OK;
	}
	if (u64) {
		if (check_attr(attr, "session", MNL_TYPE_U64) != MNL_CB_OK)
			return MNL_CB_ERROR;
		*u64 = mnl_attr_get_u64(attr);
	} else if (u32) {
		if (check_attr(attr, "session", MNL_TYPE_U32) != MNL_CB_OK)
			return MNL_CB_ERROR;
		*u32 = mnl_attr_get_u32(attr);
	}
	s->present |= 1ULL << type;
	return MNL_CB_OK;
}

/* Parse the top-level attributes of a cowmap message into @tb. */
static int parse_top(const struct nlmsghdr *nlh, const struct nlattr **tb)
{
	struct attr_policy pol = { "top-level", COWMAP_A_MAX, top_types, tb };

	memset(tb, 0, sizeof(*tb) * (COWMAP_A_MAX + 1));
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct genlmsghdr))
		return err_set(EPROTO, "malformed netlink reply: message too short");
	if (mnl_attr_parse(nlh, sizeof(struct genlmsghdr), policy_attr_cb, &pol) != MNL_CB_OK)
		return errno == EPROTO ? -EPROTO :
		       err_set(EPROTO, "malformed netlink reply: bad attribute list");
	return 0;
}

static int parse_session(const struct nlattr *nest, struct cowmap_nl_session *s)
{
	memset(s, 0, sizeof(*s));
	if (mnl_attr_parse_nested(nest, session_attr_cb, s) != MNL_CB_OK)
		return -EPROTO;
	if (!COWMAP_NL_HAS(s, COWMAP_SESSION_A_ID))
		return err_set(EPROTO, "malformed netlink reply: session without an id");
	return 0;
}

/* ------------------------------------------------------------------------
 * Requests and replies
 * ------------------------------------------------------------------------
 */

static int ext_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(attr, NLMSGERR_ATTR_MAX) < 0)
		return MNL_CB_OK;
	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
	    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0)
		return MNL_CB_OK;	/* ignore a malformed message text */
	tb[mnl_attr_get_type(attr)] = attr;
	return MNL_CB_OK;
}

/* Copy the extack message of an NLMSG_ERROR or NLMSG_DONE at @off. */
static void get_extack(const struct nlmsghdr *nlh, unsigned int off, char *ext,
		       size_t size)
{
	const struct nlattr *tb[NLMSGERR_ATTR_MAX + 1] = {};

	ext[0] = '\0';
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS) || off >= mnl_nlmsg_get_payload_len(nlh))
		return;
	if (mnl_attr_parse(nlh, off, ext_attr_cb, tb) != MNL_CB_OK)
		return;
	if (tb[NLMSGERR_ATTR_MSG])
		snprintf(ext, size, "%s", mnl_attr_get_str(tb[NLMSGERR_ATTR_MSG]));
}

/* Returns 1 when the request is complete, 0 to go on, <0 on error. */
static int handle_error(const struct nlmsghdr *nlh, struct reply *r)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	unsigned int off = sizeof(*e);

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*e))
		return err_set(EPROTO, "malformed netlink error message");
	if (!e->error)
		return 1;	/* the ack */
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - sizeof(e->msg);
	get_extack(nlh, MNL_ALIGN(off), r->ext, sizeof(r->ext));
	return e->error < 0 ? e->error : -e->error;
}

static int handle_done(const struct nlmsghdr *nlh, struct reply *r)
{
	int err;

	if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
		r->intr = true;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(int))
		return 1;
	memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof(err));
	if (err >= 0)
		return 1;
	get_extack(nlh, MNL_ALIGN(sizeof(int)), r->ext, sizeof(r->ext));
	return err;
}

/*
 * Send @nlh (a request built in nl->buf) and process replies until the
 * ack, NLMSG_DONE or an error.  Notifications that arrive meanwhile are
 * dropped.  On a kernel refusal the message is "@what: strerror: extack".
 */
static int transact(struct cowmap_nl *nl, struct nlmsghdr *nlh, struct reply *r,
		    uint16_t type, const char *what, const char *perm_hint)
{
	uint32_t seq = ++nl->seq;
	bool done = false;
	int ret = 0;

	if (!nl->seq)
		seq = ++nl->seq;
	nlh->nlmsg_seq = seq;
	nl->ev_len = nl->ev_pos = 0;	/* the buffer is reused below */
	if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
		return err_set(errno, "%s: netlink send: %s", what, strerror(errno));

	while (!done) {
		ssize_t n = mnl_socket_recvfrom(nl->sock, nl->buf, NL_BUF_SIZE);
		const struct nlmsghdr *m;
		int len;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* ENOBUFS: the socket overflowed, the reply may be lost. */
			return err_set(errno, "%s: netlink receive: %s", what, strerror(errno));
		}
		len = (int)n;
		for (m = (const struct nlmsghdr *)nl->buf; mnl_nlmsg_ok(m, len);
		     m = mnl_nlmsg_next(m, &len)) {
			if (m->nlmsg_seq != seq || m->nlmsg_pid != nl->portid)
				continue;	/* a notification, or stale */
			if (m->nlmsg_type == NLMSG_ERROR) {
				ret = handle_error(m, r);
				done = true;
				break;
			}
			if (m->nlmsg_type == NLMSG_DONE) {
				ret = handle_done(m, r);
				done = true;
				break;
			}
			if (m->nlmsg_type < NLMSG_MIN_TYPE)
				continue;	/* NOOP */
			if (m->nlmsg_type != type) {
				ret = err_set(EPROTO, "%s: unexpected netlink message type %u",
					      what, m->nlmsg_type);
				done = true;
				break;
			}
			if (m->nlmsg_flags & NLM_F_DUMP_INTR)
				r->intr = true;
			if (r->cb && !r->cb_err) {
				int e = r->cb(m, r->data);

				if (e < 0)
					r->cb_err = e;
			}
		}
	}
	if (ret < 0) {
		int e = -ret;

		if (r->ext[0])
			return err_set(e, "%s: %s: %s", what, strerror(e), r->ext);
		if (e == EPERM && perm_hint)
			return err_set(e, "%s: %s (%s)", what, strerror(e), perm_hint);
		return err_set(e, "%s: %s", what, strerror(e));
	}
	if (r->cb_err)
		return err_prefix(-r->cb_err, "%s", what);
	return 0;
}

static struct nlmsghdr *start_msg(struct cowmap_nl *nl, uint16_t type, uint8_t cmd,
				  uint8_t version, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->buf);
	struct genlmsghdr *g;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = cmd;
	g->version = version;
	return nlh;
}

static struct nlmsghdr *cowmap_msg(struct cowmap_nl *nl, uint8_t cmd, uint16_t flags)
{
	return start_msg(nl, nl->family, cmd, COWMAP_GENL_VERSION, flags);
}

/* ------------------------------------------------------------------------
 * Family resolution
 * ------------------------------------------------------------------------
 */

static const enum mnl_attr_data_type ctrl_types[CTRL_ATTR_MAX + 1] = {
	[CTRL_ATTR_FAMILY_ID] = MNL_TYPE_U16,
	[CTRL_ATTR_VERSION] = MNL_TYPE_U32,
	[CTRL_ATTR_MCAST_GROUPS] = MNL_TYPE_NESTED,
};

static const enum mnl_attr_data_type mcgrp_types[CTRL_ATTR_MCAST_GRP_MAX + 1] = {
	[CTRL_ATTR_MCAST_GRP_NAME] = MNL_TYPE_NUL_STRING,
	[CTRL_ATTR_MCAST_GRP_ID] = MNL_TYPE_U32,
};

static int family_cb(const struct nlmsghdr *nlh, void *data)
{
	struct cowmap_nl *nl = data;
	const struct nlattr *tb[CTRL_ATTR_MAX + 1] = {};
	struct attr_policy pol = { "nlctrl", CTRL_ATTR_MAX, ctrl_types, tb };
	const struct nlattr *pos;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct genlmsghdr))
		return err_set(EPROTO, "malformed nlctrl reply");
	if (mnl_attr_parse(nlh, sizeof(struct genlmsghdr), policy_attr_cb, &pol) != MNL_CB_OK)
		return -EPROTO;
	if (!tb[CTRL_ATTR_FAMILY_ID])
		return err_set(EPROTO, "nlctrl reply without a family id");
	nl->family = mnl_attr_get_u16(tb[CTRL_ATTR_FAMILY_ID]);
	if (tb[CTRL_ATTR_VERSION])
		nl->version = mnl_attr_get_u32(tb[CTRL_ATTR_VERSION]);
	if (!tb[CTRL_ATTR_MCAST_GROUPS])
		return 0;
	mnl_attr_for_each_nested(pos, tb[CTRL_ATTR_MCAST_GROUPS]) {
		const struct nlattr *g[CTRL_ATTR_MCAST_GRP_MAX + 1] = {};
		struct attr_policy gpol = {
			"nlctrl group", CTRL_ATTR_MCAST_GRP_MAX, mcgrp_types, g
		};

		if (mnl_attr_validate(pos, MNL_TYPE_NESTED) < 0 ||
		    mnl_attr_parse_nested(pos, policy_attr_cb, &gpol) != MNL_CB_OK)
			return err_set(EPROTO, "malformed nlctrl multicast group");
		if (g[CTRL_ATTR_MCAST_GRP_NAME] && g[CTRL_ATTR_MCAST_GRP_ID] &&
		    !strcmp(mnl_attr_get_str(g[CTRL_ATTR_MCAST_GRP_NAME]), COWMAP_MCGRP_EVENTS))
			nl->events_group = mnl_attr_get_u32(g[CTRL_ATTR_MCAST_GRP_ID]);
	}
	return 0;
}

static int resolve_family(struct cowmap_nl *nl)
{
	struct reply r = { .cb = family_cb, .data = nl };
	struct nlmsghdr *nlh;
	int ret;

	nlh = start_msg(nl, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, NLM_F_ACK);
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, COWMAP_GENL_NAME);
	ret = transact(nl, nlh, &r, GENL_ID_CTRL, "netlink family " COWMAP_GENL_NAME, NULL);
	if (ret == -ENOENT)
		return err_set(ENOENT, "generic netlink family \"%s\" not found (is the "
			       "cowmap module loaded?)", COWMAP_GENL_NAME);
	if (!ret && !nl->family)
		return err_set(EPROTO, "nlctrl sent no family id for \"%s\"",
			       COWMAP_GENL_NAME);
	return ret;
}

COWMAP_EXPORT int cowmap_nl_open(unsigned int flags, struct cowmap_nl **nlp)
{
	struct cowmap_nl *nl;
	int one = 1, ret;

	if (!nlp)
		return err_set(EINVAL, "cowmap_nl_open: NULL argument");
	if (flags)
		return err_set(EINVAL, "cowmap_nl_open: unknown flags 0x%x", flags);
	nl = calloc(1, sizeof(*nl));
	if (!nl)
		return err_set(ENOMEM, "out of memory");
	nl->buf = malloc(NL_BUF_SIZE);
	if (!nl->buf) {
		ret = err_set(ENOMEM, "out of memory");
		goto err_free;
	}
	nl->sock = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC);
	if (!nl->sock) {
		ret = err_set(errno, "netlink socket: %s", strerror(errno));
		goto err_free;
	}
	/* Best effort: kernels without them still answer, just tersely. */
	mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one));
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = err_set(errno, "netlink bind: %s", strerror(errno));
		goto err_close;
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (uint32_t)time(NULL);
	ret = resolve_family(nl);
	if (ret)
		goto err_close;
	*nlp = nl;
	return 0;

err_close:
	mnl_socket_close(nl->sock);
err_free:
	free(nl->buf);
	free(nl);
	return err_ret(ret);
}

COWMAP_EXPORT void cowmap_nl_close(struct cowmap_nl *nl)
{
	if (!nl)
		return;
	mnl_socket_close(nl->sock);
	free(nl->buf);
	free(nl);
}

COWMAP_EXPORT int cowmap_nl_fd(const struct cowmap_nl *nl)
{
	if (!nl)
		return err_set(EINVAL, "cowmap_nl_fd: NULL handle");
	return mnl_socket_get_fd(nl->sock);
}

COWMAP_EXPORT uint32_t cowmap_nl_family_version(const struct cowmap_nl *nl)
{
	return nl ? nl->version : 0;
}

/* ------------------------------------------------------------------------
 * Commands
 * ------------------------------------------------------------------------
 */

static int config_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[COWMAP_A_MAX + 1];
	struct cowmap_nl_config *cfg = data;
	int ret = parse_top(nlh, tb);

	if (ret)
		return ret;
	if (!tb[COWMAP_A_CONFIG])
		return err_set(EPROTO, "malformed netlink reply: no COWMAP_A_CONFIG");
	memset(cfg, 0, sizeof(*cfg));
	if (mnl_attr_parse_nested(tb[COWMAP_A_CONFIG], config_attr_cb, cfg) != MNL_CB_OK)
		return -EPROTO;
	return 0;
}

COWMAP_EXPORT int cowmap_nl_get_config(struct cowmap_nl *nl, struct cowmap_nl_config *cfg)
{
	struct reply r = { .cb = config_cb, .data = cfg };

	if (!nl || !cfg)
		return err_set(EINVAL, "cowmap_nl_get_config: NULL argument");
	memset(cfg, 0, sizeof(*cfg));
	return transact(nl, cowmap_msg(nl, COWMAP_CMD_GET_CONFIG, NLM_F_ACK), &r,
			nl->family, "get configuration", NULL);
}

COWMAP_EXPORT int cowmap_nl_set_config(struct cowmap_nl *nl,
				       const struct cowmap_nl_config *cfg)
{
	const uint32_t known = (1U << COWMAP_CONFIG_A_MAX_SESSION_PAGES) |
			       (1U << COWMAP_CONFIG_A_MAX_TOTAL_PAGES);
	struct reply r = {};
	struct nlmsghdr *nlh;
	struct nlattr *nest;

	if (!nl || !cfg)
		return err_set(EINVAL, "cowmap_nl_set_config: NULL argument");
	if (!cfg->present)
		return err_set(EINVAL, "set configuration: nothing to set");
	if (cfg->present & ~known)
		return err_set(EINVAL, "set configuration: unknown attributes 0x%x",
			       cfg->present & ~known);
	if (cfg->reserved0 || !mem_is_zero(cfg->reserved, sizeof(cfg->reserved)))
		return err_set(EINVAL, "set configuration: reserved fields not zero");
	nlh = cowmap_msg(nl, COWMAP_CMD_SET_CONFIG, NLM_F_ACK);
	nest = mnl_attr_nest_start(nlh, COWMAP_A_CONFIG);
	if (cfg->present & (1U << COWMAP_CONFIG_A_MAX_SESSION_PAGES))
		mnl_attr_put_u64(nlh, COWMAP_CONFIG_A_MAX_SESSION_PAGES, cfg->max_session_pages);
	if (cfg->present & (1U << COWMAP_CONFIG_A_MAX_TOTAL_PAGES))
		mnl_attr_put_u64(nlh, COWMAP_CONFIG_A_MAX_TOTAL_PAGES, cfg->max_total_pages);
	mnl_attr_nest_end(nlh, nest);
	return transact(nl, nlh, &r, nl->family, "set configuration",
			"changing the configuration needs CAP_SYS_ADMIN");
}

static int stats_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[COWMAP_A_MAX + 1];
	struct cowmap_nl_stats *st = data;
	int ret = parse_top(nlh, tb);

	if (ret)
		return ret;
	if (!tb[COWMAP_A_STATS])
		return err_set(EPROTO, "malformed netlink reply: no COWMAP_A_STATS");
	memset(st, 0, sizeof(*st));
	if (mnl_attr_parse_nested(tb[COWMAP_A_STATS], stats_attr_cb, st) != MNL_CB_OK)
		return -EPROTO;
	return 0;
}

COWMAP_EXPORT int cowmap_nl_get_stats(struct cowmap_nl *nl, struct cowmap_nl_stats *st)
{
	struct reply r = { .cb = stats_cb, .data = st };

	if (!nl || !st)
		return err_set(EINVAL, "cowmap_nl_get_stats: NULL argument");
	memset(st, 0, sizeof(*st));
	return transact(nl, cowmap_msg(nl, COWMAP_CMD_GET_STATS, NLM_F_ACK), &r,
			nl->family, "get statistics", NULL);
}

struct session_list {
	struct cowmap_nl_session *v;
	size_t n, cap;
};

static int session_list_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[COWMAP_A_MAX + 1];
	struct session_list *l = data;
	int ret = parse_top(nlh, tb);

	if (ret)
		return ret;
	if (!tb[COWMAP_A_SESSION])
		return 0;	/* nothing we know in this message */
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct cowmap_nl_session *v = xrealloc_array(l->v, cap, sizeof(*v));

		if (!v)
			return err_set(ENOMEM, "out of memory");
		l->v = v;
		l->cap = cap;
	}
	ret = parse_session(tb[COWMAP_A_SESSION], &l->v[l->n]);
	if (ret)
		return ret;
	l->n++;
	return 0;
}

COWMAP_EXPORT int cowmap_nl_list_sessions(struct cowmap_nl *nl,
					  struct cowmap_nl_session **listp, size_t *np)
{
	struct session_list l = {};
	int attempt, ret = 0;

	if (!nl || !listp || !np)
		return err_set(EINVAL, "cowmap_nl_list_sessions: NULL argument");
	*listp = NULL;
	*np = 0;
	for (attempt = 0; attempt < DUMP_RETRIES; attempt++) {
		struct reply r = { .cb = session_list_cb, .data = &l };

		l.n = 0;
		ret = transact(nl, cowmap_msg(nl, COWMAP_CMD_GET_SESSION, NLM_F_DUMP), &r,
			       nl->family, "list sessions", NULL);
		if (ret || !r.intr)
			break;
		ret = -EAGAIN;	/* the set changed mid-dump: start again */
	}
	if (ret == -EAGAIN)
		ret = err_set(EAGAIN, "list sessions: the set of sessions kept changing "
			      "during %d dumps", DUMP_RETRIES);
	if (ret) {
		free(l.v);
		return ret;
	}
	if (!l.n) {
		free(l.v);
		l.v = NULL;
	}
	*listp = l.v;
	*np = l.n;
	return 0;
}

static int one_session_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[COWMAP_A_MAX + 1];
	int ret = parse_top(nlh, tb);

	if (ret)
		return ret;
	if (!tb[COWMAP_A_SESSION])
		return err_set(EPROTO, "malformed netlink reply: no COWMAP_A_SESSION");
	return parse_session(tb[COWMAP_A_SESSION], data);
}

COWMAP_EXPORT int cowmap_nl_get_session(struct cowmap_nl *nl, uint64_t id,
					struct cowmap_nl_session *s)
{
	struct reply r = { .cb = one_session_cb, .data = s };
	struct nlmsghdr *nlh;
	char what[64];

	if (!nl || !s)
		return err_set(EINVAL, "cowmap_nl_get_session: NULL argument");
	memset(s, 0, sizeof(*s));
	snprintf(what, sizeof(what), "session %llu", (unsigned long long)id);
	nlh = cowmap_msg(nl, COWMAP_CMD_GET_SESSION, NLM_F_ACK);
	mnl_attr_put_u64(nlh, COWMAP_A_SESSION_ID, id);
	return transact(nl, nlh, &r, nl->family, what, NULL);
}

COWMAP_EXPORT int cowmap_nl_discard(struct cowmap_nl *nl, uint64_t id)
{
	struct reply r = {};
	struct nlmsghdr *nlh;
	char what[64];

	if (!nl)
		return err_set(EINVAL, "cowmap_nl_discard: NULL handle");
	snprintf(what, sizeof(what), "discard session %llu", (unsigned long long)id);
	nlh = cowmap_msg(nl, COWMAP_CMD_DISCARD, NLM_F_ACK);
	mnl_attr_put_u64(nlh, COWMAP_A_SESSION_ID, id);
	return transact(nl, nlh, &r, nl->family, what, NULL);
}

COWMAP_EXPORT int cowmap_nl_drain(struct cowmap_nl *nl, uint64_t id, int log_fd)
{
	struct reply r = {};
	struct nlmsghdr *nlh;
	char what[64];

	if (!nl)
		return err_set(EINVAL, "cowmap_nl_drain: NULL handle");
	if (log_fd < -1)
		return err_set(EBADF, "cowmap_nl_drain: bad log fd %d", log_fd);
	snprintf(what, sizeof(what), "drain session %llu", (unsigned long long)id);
	nlh = cowmap_msg(nl, COWMAP_CMD_DRAIN, NLM_F_ACK);
	mnl_attr_put_u64(nlh, COWMAP_A_SESSION_ID, id);
	if (log_fd >= 0)
		mnl_attr_put_u32(nlh, COWMAP_A_LOG_FD, (uint32_t)log_fd);
	return transact(nl, nlh, &r, nl->family, what, NULL);
}

/* ------------------------------------------------------------------------
 * Notifications
 * ------------------------------------------------------------------------
 */

COWMAP_EXPORT int cowmap_nl_subscribe(struct cowmap_nl *nl)
{
	int grp;

	if (!nl)
		return err_set(EINVAL, "cowmap_nl_subscribe: NULL handle");
	if (!nl->events_group)
		return err_set(ENOENT, "the cowmap module has no \"%s\" multicast group",
			       COWMAP_MCGRP_EVENTS);
	grp = (int)nl->events_group;
	if (mnl_socket_setsockopt(nl->sock, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp)) < 0)
		return err_set(errno, "join the \"%s\" multicast group: %s%s",
			       COWMAP_MCGRP_EVENTS, strerror(errno),
			       errno == EPERM ? " (needs CAP_SYS_ADMIN)" : "");
	return 0;
}

/* Fill @ev from a notification; 1 if it is one, 0 to skip it. */
static int parse_event(struct cowmap_nl *nl, const struct nlmsghdr *nlh,
		       struct cowmap_nl_event *ev)
{
	const struct nlattr *tb[COWMAP_A_MAX + 1];
	const struct genlmsghdr *g;
	int ret;

	if (nlh->nlmsg_type != nl->family || nlh->nlmsg_pid != 0)
		return 0;
	ret = parse_top(nlh, tb);
	if (ret)
		return ret;
	g = mnl_nlmsg_get_payload(nlh);
	memset(ev, 0, sizeof(*ev));
	ev->cmd = g->cmd;
	if (tb[COWMAP_A_SESSION]) {
		ret = parse_session(tb[COWMAP_A_SESSION], &ev->session);
		if (ret)
			return ret;
		ev->session_id = ev->session.id;
	}
	if (tb[COWMAP_A_SESSION_ID])
		ev->session_id = mnl_attr_get_u64(tb[COWMAP_A_SESSION_ID]);
	if (tb[COWMAP_A_OFFSET])
		ev->offset = mnl_attr_get_u64(tb[COWMAP_A_OFFSET]);
	return 1;
}

COWMAP_EXPORT int cowmap_nl_next_event(struct cowmap_nl *nl, struct cowmap_nl_event *ev,
				       int timeout_ms)
{
	if (!nl || !ev)
		return err_set(EINVAL, "cowmap_nl_next_event: NULL argument");
	for (;;) {
		struct pollfd p = { .fd = mnl_socket_get_fd(nl->sock), .events = POLLIN };
		ssize_t n;
		int r;

		while (nl->ev_pos < nl->ev_len) {
			const struct nlmsghdr *m = (const void *)(nl->buf + nl->ev_pos);
			int left = (int)(nl->ev_len - nl->ev_pos);

			if (!mnl_nlmsg_ok(m, left)) {
				nl->ev_len = nl->ev_pos = 0;
				return err_set(EPROTO, "malformed netlink notification");
			}
			nl->ev_pos += MNL_ALIGN(m->nlmsg_len);
			r = parse_event(nl, m, ev);
			if (r)
				return r;
		}
		nl->ev_len = nl->ev_pos = 0;
		r = poll(&p, 1, timeout_ms);
		if (r < 0)
			return err_set(errno, "poll: %s", strerror(errno));
		if (r == 0)
			return 0;
		n = recv(p.fd, nl->buf, NL_BUF_SIZE, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0) {
			if (errno == EAGAIN)
				continue;
			if (errno == ENOBUFS)
				return err_set(ENOBUFS, "notifications were lost: the netlink "
					       "socket's receive buffer overflowed");
			return err_set(errno, "netlink receive: %s", strerror(errno));
		}
		if ((size_t)n > NL_BUF_SIZE)
			return err_set(EPROTO, "netlink notification of %zd bytes truncated", n);
		nl->ev_len = (size_t)n;
	}
}

COWMAP_EXPORT const char *cowmap_nl_cmd_name(uint32_t cmd)
{
	static const char *const names[] = {
		[COWMAP_CMD_GET_CONFIG] = "get-config",
		[COWMAP_CMD_SET_CONFIG] = "set-config",
		[COWMAP_CMD_GET_STATS] = "get-stats",
		[COWMAP_CMD_GET_SESSION] = "get-session",
		[COWMAP_CMD_DISCARD] = "discard",
		[COWMAP_CMD_DRAIN] = "drain",
		[COWMAP_CMD_SESSION_NEW] = "session-new",
		[COWMAP_CMD_SESSION_DEL] = "session-del",
		[COWMAP_CMD_CAP_REACHED] = "cap-reached",
		[COWMAP_CMD_RING_OVERFLOW] = "ring-overflow",
	};

	if (cmd < ARRAY_SIZE(names) && names[cmd])
		return names[cmd];
	return "unknown";
}
