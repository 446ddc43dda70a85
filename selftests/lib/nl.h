/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Raw generic netlink for the robustness selftests (stress, fuzz, memcg,
 * hostile, nlstall; selftests/lib/nl.c): resolve the "cowmap" family and
 * its "events" group, send one request and collect its replies, subscribe
 * to notifications.  No libmnl: the fuzzer builds its messages byte by byte
 * anyway.
 */
#ifndef COWMAP_SELFTEST_NL_H
#define COWMAP_SELFTEST_NL_H

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include <linux/cowmap.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

struct nlu_family {
	uint16_t id;
	uint32_t events_grp;	/* 0 if not found */
};

int nlu_socket(void);

/* Put attribute @type with @len bytes at @p; returns the aligned size. */
size_t nlu_put(uint8_t *p, uint16_t type, const void *data, uint16_t len);

size_t nlu_put_u64(uint8_t *p, uint16_t type, uint64_t v);

size_t nlu_put_u32(uint8_t *p, uint16_t type, uint32_t v);

/* Send a raw message of @len bytes (its header included). */
int nlu_send(int sk, const void *msg, size_t len);

/*
 * Send a request (type @type, genl @cmd, @attrs of @alen bytes) and read
 * replies until the ACK/error or NLMSG_DONE.  @cb (may be NULL) sees every
 * data message.  Returns the error of the NLMSG_ERROR (0 for an ACK), or
 * -errno; -EPROTO for a malformed reply, -ETIMEDOUT after @timeout_ms.
 */
int nlu_request(int sk, uint16_t type, uint8_t cmd, uint16_t flags,
		const void *attrs, size_t alen,
		int (*cb)(const struct nlmsghdr *nh, void *arg),
		void *arg, int timeout_ms);

/* First attribute of type @type in [@p, @p + @len), or NULL. */
const struct nlattr *nlu_find(const uint8_t *p, size_t len, int type);

uint64_t nlu_get_u64(const struct nlattr *a);

/* Resolve the "cowmap" family on @sk. */
int nlu_resolve(int sk, struct nlu_family *f);

int nlu_subscribe(int sk, uint32_t grp);

/* The u64 attribute @inner of nest @outer of a reply (0 if absent). */
uint64_t nlu_nested_u64(const struct nlmsghdr *nh, int outer, int inner);

/* GET_STATS / GET_CONFIG: one u64 of the reply's nest. */
int nlu_get_u64_attr(int sk, const struct nlu_family *f, uint8_t cmd,
		     int outer, int inner, uint64_t *val);

/* Session @id exists (GET_SESSION do): 1, 0 (ENOENT) or -errno. */
int nlu_session_exists(int sk, const struct nlu_family *f, uint64_t id);

#endif /* COWMAP_SELFTEST_NL_H */
