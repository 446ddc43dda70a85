// SPDX-License-Identifier: GPL-2.0
/*
 * The "cowmap" generic netlink family: configuration, statistics, a dump of
 * sessions, acting on a session by id, and notifications.  Every command has
 * a strict policy of its own; every refusal says why in extack.
 */
#include <linux/slab.h>
#include <linux/file.h>
#include <net/genetlink.h>
#include <net/netlink.h>
#include <linux/pid_namespace.h>
#include <linux/user_namespace.h>
#include <linux/sched/signal.h>

#include "internal.h"

static struct genl_family cowmap_family;

enum { MCGRP_EVENTS };

/* Events name every session's id, owner and write offsets: admins only. */
static const struct genl_multicast_group cowmap_mcgrps[] = {
	[MCGRP_EVENTS] = {
		.name = COWMAP_MCGRP_EVENTS,
		.flags = GENL_MCAST_CAP_SYS_ADMIN,
	},
};

static const struct nla_policy config_policy[COWMAP_CONFIG_A_MAX + 1] = {
	[COWMAP_CONFIG_A_MAX_SESSION_PAGES] = { .type = NLA_U64 },
	[COWMAP_CONFIG_A_MAX_TOTAL_PAGES] = { .type = NLA_U64 },
};

static const struct nla_policy noattr_policy[COWMAP_A_MAX + 1] = {
};

static const struct nla_policy set_config_policy[COWMAP_A_MAX + 1] = {
	[COWMAP_A_CONFIG] = NLA_POLICY_NESTED(config_policy),
};

static const struct nla_policy session_id_policy[COWMAP_A_MAX + 1] = {
	[COWMAP_A_SESSION_ID] = NLA_POLICY_MIN(NLA_U64, 1),
};

static const struct nla_policy drain_policy[COWMAP_A_MAX + 1] = {
	[COWMAP_A_SESSION_ID] = NLA_POLICY_MIN(NLA_U64, 1),
	[COWMAP_A_LOG_FD] = { .type = NLA_U32 },
};

static void *put_header(struct sk_buff *skb, struct genl_info *info, u8 cmd)
{
	return genlmsg_put(skb, info->snd_portid, info->snd_seq, &cowmap_family,
			   0, cmd);
}

static int reply_with(struct genl_info *info, u8 cmd,
		      int (*fill)(struct sk_buff *skb))
{
	struct sk_buff *skb;
	void *hdr;
	int err;

	skb = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!skb)
		return -ENOMEM;
	hdr = put_header(skb, info, cmd);
	if (!hdr)
		goto err_free;
	err = fill(skb);
	if (err)
		goto err_free;
	genlmsg_end(skb, hdr);
	return genlmsg_reply(skb, info);

err_free:
	nlmsg_free(skb);
	return -EMSGSIZE;
}

static int fill_config(struct sk_buff *skb)
{
	struct nlattr *nest = nla_nest_start(skb, COWMAP_A_CONFIG);

	if (!nest ||
	    nla_put_u64_64bit(skb, COWMAP_CONFIG_A_MAX_SESSION_PAGES,
			      READ_ONCE(cowmap_max_session_pages), COWMAP_CONFIG_A_PAD) ||
	    nla_put_u64_64bit(skb, COWMAP_CONFIG_A_MAX_TOTAL_PAGES,
			      READ_ONCE(cowmap_max_total_pages), COWMAP_CONFIG_A_PAD))
		return -EMSGSIZE;
	nla_nest_end(skb, nest);
	return 0;
}

static int fill_stats(struct sk_buff *skb)
{
	struct nlattr *nest = nla_nest_start(skb, COWMAP_A_STATS);
	u64 sessions = 0;
	struct cowmap_session *s;

	mutex_lock(&cowmap_sessions_lock);
	list_for_each_entry(s, &cowmap_sessions, node)
		sessions++;
	mutex_unlock(&cowmap_sessions_lock);

#define PUT(attr, val) nla_put_u64_64bit(skb, attr, val, COWMAP_STATS_A_PAD)
	if (!nest ||
	    PUT(COWMAP_STATS_A_SESSIONS, sessions) ||
	    PUT(COWMAP_STATS_A_PRIVATE_PAGES,
		atomic_long_read(&cowmap_private_pages)) ||
	    PUT(COWMAP_STATS_A_COW_FAULTS, cowmap_stat_sum(COWMAP_STAT_COW_FAULTS)) ||
	    PUT(COWMAP_STATS_A_READ_FAULTS, cowmap_stat_sum(COWMAP_STAT_READ_FAULTS)) ||
	    PUT(COWMAP_STATS_A_EVENTS_LOST, cowmap_stat_sum(COWMAP_STAT_EVENTS_LOST)) ||
	    PUT(COWMAP_STATS_A_CAP_HITS, cowmap_stat_sum(COWMAP_STAT_CAP_HITS)) ||
	    PUT(COWMAP_STATS_A_DRAINED_BYTES,
		cowmap_stat_sum(COWMAP_STAT_DRAINED_BYTES)))
		return -EMSGSIZE;
#undef PUT
	nla_nest_end(skb, nest);
	return 0;
}

static int get_config_doit(struct sk_buff *skb, struct genl_info *info)
{
	return reply_with(info, COWMAP_CMD_GET_CONFIG, fill_config);
}

static int get_stats_doit(struct sk_buff *skb, struct genl_info *info)
{
	return reply_with(info, COWMAP_CMD_GET_STATS, fill_stats);
}

static int set_config_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *tb[COWMAP_CONFIG_A_MAX + 1];
	int err;

	/*
	 * Checked here rather than with GENL_ADMIN_PERM, to say why.  The
	 * caps bound the memory every user may pin, like the module
	 * parameters, which only root may write.
	 */
	if (!netlink_capable(skb, CAP_SYS_ADMIN)) {
		NL_SET_ERR_MSG(info->extack, "changing the configuration needs CAP_SYS_ADMIN");
		return -EPERM;
	}
	if (!info->attrs[COWMAP_A_CONFIG]) {
		NL_SET_ERR_MSG(info->extack, "COWMAP_A_CONFIG is required");
		return -EINVAL;
	}
	err = nla_parse_nested(tb, COWMAP_CONFIG_A_MAX, info->attrs[COWMAP_A_CONFIG],
			       config_policy, info->extack);
	if (err)
		return err;
	if (!tb[COWMAP_CONFIG_A_MAX_SESSION_PAGES] && !tb[COWMAP_CONFIG_A_MAX_TOTAL_PAGES]) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[COWMAP_A_CONFIG],
				    "no configuration attribute given");
		return -EINVAL;
	}
	if (tb[COWMAP_CONFIG_A_MAX_TOTAL_PAGES] &&
	    !nla_get_u64(tb[COWMAP_CONFIG_A_MAX_TOTAL_PAGES])) {
		NL_SET_ERR_MSG_ATTR(info->extack, tb[COWMAP_CONFIG_A_MAX_TOTAL_PAGES],
				    "the total cap cannot be 0");
		return -EINVAL;
	}
	if (tb[COWMAP_CONFIG_A_MAX_SESSION_PAGES])
		WRITE_ONCE(cowmap_max_session_pages,
			   nla_get_u64(tb[COWMAP_CONFIG_A_MAX_SESSION_PAGES]));
	if (tb[COWMAP_CONFIG_A_MAX_TOTAL_PAGES])
		WRITE_ONCE(cowmap_max_total_pages,
			   nla_get_u64(tb[COWMAP_CONFIG_A_MAX_TOTAL_PAGES]));
	return 0;
}

/* The owner's uid (unless the binder is not dumpable), or CAP_SYS_ADMIN. */
static bool may_see(struct sk_buff *skb, struct cowmap_session *s)
{
	return netlink_capable(skb, CAP_SYS_ADMIN) ||
	       (uid_eq(s->owner, current_euid()) && cowmap_session_uid_may_act(s));
}

/*
 * Pids and uids as @pid_ns and @user_ns see them: the requester's, also in
 * a dump's continuations, which run in whoever reads the socket.
 */
static int fill_session(struct sk_buff *skb, struct cowmap_session *s,
			struct pid_namespace *pid_ns,
			struct user_namespace *user_ns)
{
	struct nlattr *nest = nla_nest_start(skb, COWMAP_A_SESSION);
	u64 events, lost;

	if (!nest)
		return -EMSGSIZE;
	spin_lock(&s->ring.lock);
	events = s->ring.head;
	lost = s->ring.total_lost;
	spin_unlock(&s->ring.lock);

#define PUT64(attr, val) nla_put_u64_64bit(skb, attr, val, COWMAP_SESSION_A_PAD)
	if (PUT64(COWMAP_SESSION_A_ID, s->id) ||
	    nla_put_u32(skb, COWMAP_SESSION_A_PID,
			pid_nr_ns(s->tgid, pid_ns)) ||
	    nla_put_u32(skb, COWMAP_SESSION_A_UID,
			from_kuid_munged(user_ns, s->owner)) ||
	    nla_put_string(skb, COWMAP_SESSION_A_COMM, s->comm) ||
	    PUT64(COWMAP_SESSION_A_DEV, s->dev_nr) ||
	    PUT64(COWMAP_SESSION_A_INO, s->ino) ||
	    nla_put_string(skb, COWMAP_SESSION_A_PATH, s->path) ||
	    PUT64(COWMAP_SESSION_A_MAPPED_BYTES, cowmap_session_mapped_bytes(s)) ||
	    PUT64(COWMAP_SESSION_A_PRIVATE_PAGES, atomic_long_read(&s->npriv)) ||
	    PUT64(COWMAP_SESSION_A_EVENTS, events) ||
	    PUT64(COWMAP_SESSION_A_EVENTS_LOST, lost) ||
	    PUT64(COWMAP_SESSION_A_BIND_TIME, s->bind_time_ns)) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
#undef PUT64
	nla_nest_end(skb, nest);
	return 0;
}

/*
 * Notifications go to every listener of the group, whoever owns the
 * session: they name it (id and owner uid) and nothing more.  Details come
 * from COWMAP_CMD_GET_SESSION, which applies the permission rules.
 */
static int fill_session_brief(struct sk_buff *skb, struct cowmap_session *s)
{
	struct nlattr *nest = nla_nest_start(skb, COWMAP_A_SESSION);

	if (!nest ||
	    nla_put_u64_64bit(skb, COWMAP_SESSION_A_ID, s->id, COWMAP_SESSION_A_PAD) ||
	    nla_put_u32(skb, COWMAP_SESSION_A_UID,
			from_kuid_munged(&init_user_ns, s->owner)))
		return -EMSGSIZE;
	nla_nest_end(skb, nest);
	return 0;
}

/* Finds session @id for the sender; sets extack and returns NULL if not. */
static struct cowmap_session *lookup(struct sk_buff *skb, struct genl_info *info,
				     bool act)
{
	struct cowmap_session *s;
	u64 id;

	if (!info->attrs[COWMAP_A_SESSION_ID]) {
		NL_SET_ERR_MSG(info->extack, "COWMAP_A_SESSION_ID is required");
		return ERR_PTR(-EINVAL);
	}
	id = nla_get_u64(info->attrs[COWMAP_A_SESSION_ID]);
	s = cowmap_session_find(id);
	if (!s) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[COWMAP_A_SESSION_ID],
				    "no such session");
		return ERR_PTR(-ENOENT);
	}
	if (!may_see(skb, s)) {
		cowmap_session_put(s);
		if (act)
			NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[COWMAP_A_SESSION_ID],
					    "not the session's owner (needs CAP_SYS_ADMIN)");
		else
			NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[COWMAP_A_SESSION_ID],
					    "session belongs to another user (needs CAP_SYS_ADMIN)");
		return ERR_PTR(-EPERM);
	}
	return s;
}

static int get_session_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct cowmap_session *s = lookup(skb, info, false);
	struct sk_buff *msg;
	void *hdr;
	int err;

	if (IS_ERR(s))
		return PTR_ERR(s);
	err = -ENOMEM;
	msg = genlmsg_new(NLMSG_DEFAULT_SIZE + PATH_MAX, GFP_KERNEL);
	if (!msg)
		goto out_put;
	err = -EMSGSIZE;
	hdr = put_header(msg, info, COWMAP_CMD_GET_SESSION);
	if (!hdr || fill_session(msg, s, task_active_pid_ns(current),
				 current_user_ns())) {
		nlmsg_free(msg);
		goto out_put;
	}
	genlmsg_end(msg, hdr);
	err = genlmsg_reply(msg, info);
out_put:
	cowmap_session_put(s);
	return err;
}

/*
 * A dump's state, set up by dump_start() in the requester's sendmsg():
 * continuations run in whoever calls recvmsg() on the socket (maybe a
 * setuid program the socket was handed to), so who may see which session,
 * and in which namespaces pids and uids are shown, is decided once, here.
 */
struct dump_ctx {
	u64 last_id;			/* sessions are listed by id */
	kuid_t euid;
	bool admin;
	struct pid_namespace *pid_ns;
	struct user_namespace *user_ns;
};

static struct dump_ctx *dump_ctx(struct netlink_callback *cb)
{
	BUILD_BUG_ON(sizeof(struct dump_ctx) > sizeof(cb->ctx));
	return (struct dump_ctx *)cb->ctx;
}

static int get_session_dump_start(struct netlink_callback *cb)
{
	struct dump_ctx *c = dump_ctx(cb);

	c->last_id = 0;
	c->euid = current_euid();
	c->admin = netlink_capable(cb->skb, CAP_SYS_ADMIN);
	c->pid_ns = get_pid_ns(task_active_pid_ns(current));
	c->user_ns = get_user_ns(current_user_ns());
	/* One message always fits: a session with a PATH_MAX path. */
	cb->min_dump_alloc = NLMSG_DEFAULT_SIZE + PATH_MAX;
	return 0;
}

static int get_session_dump_done(struct netlink_callback *cb)
{
	struct dump_ctx *c = dump_ctx(cb);

	if (c->pid_ns)
		put_pid_ns(c->pid_ns);
	if (c->user_ns)
		put_user_ns(c->user_ns);
	c->pid_ns = NULL;
	c->user_ns = NULL;
	return 0;
}

/*
 * The session list is kept in id order (see cowmap_session_list_add()),
 * so a dump resumes after the last id it sent.  A session that joins or
 * leaves in between changes cowmap_sessions_gen: the next message (or
 * NLMSG_DONE) carries NLM_F_DUMP_INTR.
 */
static int get_session_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct dump_ctx *c = dump_ctx(cb);
	struct cowmap_session *s;
	int err = 0;
	void *hdr;

	if (mutex_lock_killable(&cowmap_sessions_lock))
		return -EINTR;
	cb->seq = cowmap_sessions_gen + 1;	/* 0 would mean "not set" */
	list_for_each_entry(s, &cowmap_sessions, node) {
		if (s->id <= c->last_id ||
		    !(c->admin || (uid_eq(s->owner, c->euid) &&
				   cowmap_session_uid_may_act(s))))
			continue;
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
				  &cowmap_family, NLM_F_MULTI, COWMAP_CMD_GET_SESSION);
		if (!hdr) {
			err = -EMSGSIZE;
			break;
		}
		genl_dump_check_consistent(cb, hdr);
		err = fill_session(skb, s, c->pid_ns, c->user_ns);
		if (err) {
			genlmsg_cancel(skb, hdr);
			break;
		}
		genlmsg_end(skb, hdr);
		c->last_id = s->id;
	}
	mutex_unlock(&cowmap_sessions_lock);
	if (err == -EMSGSIZE && skb->len)
		return skb->len;
	return err ? err : skb->len;
}

static int discard_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct cowmap_session *s = lookup(skb, info, true);

	long n;

	if (IS_ERR(s))
		return PTR_ERR(s);
	n = cowmap_do_discard(s, 0, ULONG_MAX);
	cowmap_session_put(s);
	return n < 0 ? n : 0;
}

static int drain_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct cowmap_session *s = lookup(skb, info, true);
	struct nlattr *fd_attr = info->attrs[COWMAP_A_LOG_FD];
	struct cowmap_drain d = {};
	int err;

	if (IS_ERR(s))
		return PTR_ERR(s);
	if (fd_attr && nla_get_u32(fd_attr) > INT_MAX) {
		cowmap_session_put(s);
		NL_SET_ERR_MSG_ATTR(info->extack, fd_attr, "not a file descriptor");
		return -EBADF;
	}
	err = cowmap_do_drain(s, fd_attr ? nla_get_u32(fd_attr) : -1, &d);
	switch (err) {
	case 0:
		break;
	case -ENODEV:
		/* Closed since the lookup: gone, as if not found. */
		err = -ENOENT;
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[COWMAP_A_SESSION_ID],
				    "no such session");
		break;
	case -EBADFD:
		NL_SET_ERR_MSG(info->extack,
			       "session has no bound log; give COWMAP_A_LOG_FD");
		break;
	case -EBADF:
		NL_SET_ERR_MSG_ATTR(info->extack, fd_attr, "not an open file descriptor");
		break;
	case -ENOTEMPTY:
		NL_SET_ERR_MSG_ATTR(info->extack, fd_attr, "log file is not empty");
		break;
	case -EINTR:
		NL_SET_ERR_MSG(info->extack, "interrupted by a fatal signal");
		break;
	case -EINVAL:
		NL_SET_ERR_MSG_ATTR(info->extack, fd_attr,
				    "log must be a regular file open for writing, not the backing file");
		break;
	default:
		NL_SET_ERR_MSG(info->extack, "writing the log failed");
	}
	cowmap_session_put(s);
	return err;
}

static const struct genl_ops cowmap_ops[] = {
	{
		.cmd = COWMAP_CMD_GET_CONFIG,
		.doit = get_config_doit,
		.policy = noattr_policy,
		.maxattr = COWMAP_A_MAX,
	},
	{
		.cmd = COWMAP_CMD_SET_CONFIG,
		.doit = set_config_doit,
		.policy = set_config_policy,
		.maxattr = COWMAP_A_MAX,
	},
	{
		.cmd = COWMAP_CMD_GET_STATS,
		.doit = get_stats_doit,
		.policy = noattr_policy,
		.maxattr = COWMAP_A_MAX,
	},
	{
		.cmd = COWMAP_CMD_GET_SESSION,
		.doit = get_session_doit,
		.start = get_session_dump_start,
		.dumpit = get_session_dumpit,
		.done = get_session_dump_done,
		.policy = session_id_policy,
		.maxattr = COWMAP_A_MAX,
	},
	{
		.cmd = COWMAP_CMD_DISCARD,
		.doit = discard_doit,
		.policy = session_id_policy,
		.maxattr = COWMAP_A_MAX,
	},
	{
		.cmd = COWMAP_CMD_DRAIN,
		.doit = drain_doit,
		.policy = drain_policy,
		.maxattr = COWMAP_A_MAX,
	},
};

static struct genl_family cowmap_family __ro_after_init = {
	.name = COWMAP_GENL_NAME,
	.version = COWMAP_GENL_VERSION,
	.maxattr = COWMAP_A_MAX,
	.module = THIS_MODULE,
	.ops = cowmap_ops,
	.n_ops = ARRAY_SIZE(cowmap_ops),
	.mcgrps = cowmap_mcgrps,
	.n_mcgrps = ARRAY_SIZE(cowmap_mcgrps),
	/* Every command is strict: header, flags and attributes. */
	.resv_start_op = COWMAP_CMD_GET_CONFIG,
	/*
	 * Not under the global genl_mutex: a handler may sleep on a session's
	 * lock (killable) or on a log file's write.  Nothing here relies on
	 * genl_mutex: sessions are refcounted, cowmap_sessions_lock guards
	 * the list, s->lock serializes each session, the caps are single
	 * words (WRITE_ONCE), a dump's state is its socket's (cb_mutex).
	 */
	.parallel_ops = true,
};

static void notify(struct sk_buff *msg, void *hdr)
{
	genlmsg_end(msg, hdr);
	genlmsg_multicast(&cowmap_family, msg, 0, MCGRP_EVENTS, GFP_NOWAIT);
}

void cowmap_netlink_notify_session(struct cowmap_session *s, u8 cmd)
{
	struct sk_buff *msg;
	void *hdr;

	if (!genl_has_listeners(&cowmap_family, &init_net, MCGRP_EVENTS))
		return;
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return;
	hdr = genlmsg_put(msg, 0, 0, &cowmap_family, 0, cmd);
	if (!hdr || fill_session_brief(msg, s)) {
		nlmsg_free(msg);
		return;
	}
	notify(msg, hdr);
}

/* Called from the fault path: no sleeping. */
void cowmap_netlink_notify_offset(struct cowmap_session *s, u8 cmd, u64 offset)
{
	struct sk_buff *msg;
	void *hdr;

	if (!genl_has_listeners(&cowmap_family, &init_net, MCGRP_EVENTS))
		return;
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_NOWAIT);
	if (!msg)
		return;
	hdr = genlmsg_put(msg, 0, 0, &cowmap_family, 0, cmd);
	if (!hdr ||
	    nla_put_u64_64bit(msg, COWMAP_A_SESSION_ID, s->id, COWMAP_A_PAD) ||
	    nla_put_u64_64bit(msg, COWMAP_A_OFFSET, offset, COWMAP_A_PAD) ||
	    fill_session_brief(msg, s)) {
		nlmsg_free(msg);
		return;
	}
	notify(msg, hdr);
}

int __init cowmap_netlink_init(void)
{
	return genl_register_family(&cowmap_family);
}

void cowmap_netlink_exit(void)
{
	genl_unregister_family(&cowmap_family);
}
