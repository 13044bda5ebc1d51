/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A raw generic netlink client for the selftests. It depends on nothing
 * but the uapi header, so the tests check the kernel's side of the
 * protocol byte for byte, independently of libvss.
 */
#ifndef VSS_SELFTEST_NL_H
#define VSS_SELFTEST_NL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/netlink.h>
#include <linux/genetlink.h>
#include "../uapi/linux/vss.h"

#define VSS_NL_BUF 65536

/* The payload of an attribute. */
#define NLA_DATA(a) ((void *)((char *)(a) + NLA_HDRLEN))

struct vss_nl {
	int fd;
	uint16_t family;
	uint32_t mcgrp_events;
	uint32_t seq;
	char errmsg[256];	/* extack message of the last error */
	uint32_t err_offset;	/* extack attribute offset, 0 if none */
};

/* A request being built. */
struct vss_msg {
	union {
		struct nlmsghdr nlh;
		char buf[VSS_NL_BUF];
	};
	struct nlattr *nest[8];
	int depth;
};

/* One parsed attribute table (by type), pointing into a reply buffer. */
struct vss_attrs {
	const struct nlattr *a[VSS_A_MAX + 1];
};

int vss_nl_open(struct vss_nl *nl);
void vss_nl_close(struct vss_nl *nl);

void vss_msg_init(struct vss_nl *nl, struct vss_msg *m, uint8_t cmd,
		  uint16_t flags);
void vss_msg_put(struct vss_msg *m, uint16_t type, const void *data,
		 size_t len);
void vss_msg_put_u32(struct vss_msg *m, uint16_t type, uint32_t v);
void vss_msg_put_u64(struct vss_msg *m, uint16_t type, uint64_t v);
void vss_msg_put_str(struct vss_msg *m, uint16_t type, const char *s);
void vss_msg_nest_start(struct vss_msg *m, uint16_t type);
void vss_msg_nest_end(struct vss_msg *m);
void vss_msg_put_dev(struct vss_msg *m, uint16_t type, dev_t dev);

/*
 * Sends @m and collects the reply into @reply (VSS_NL_BUF bytes).
 * Return: 0 or the negative errno the kernel answered.
 */
int vss_nl_call(struct vss_nl *nl, struct vss_msg *m, char *reply,
		size_t *reply_len);
/* Sends raw bytes as a request; for malformed-message tests. */
int vss_nl_call_raw(struct vss_nl *nl, void *msg, size_t len);

/* The genl payload attributes of the first message in @reply. */
void vss_parse(const char *reply, size_t len, struct vss_attrs *out);
void vss_parse_nested(const struct nlattr *nest, struct vss_attrs *out);
uint32_t vss_get_u32(const struct nlattr *a);
uint64_t vss_get_u64(const struct nlattr *a);

/* High-level calls used by many tests. */
struct vss_created {
	uint8_t set_id[VSS_ID_LEN];
	unsigned int nr;
	uint8_t snap_id[VSS_MAX_SET_DEVICES][VSS_ID_LEN];
	char image[VSS_MAX_SET_DEVICES][64];	/* "/dev/vssN" */
	uint64_t hold_us;
};

int vss_create(struct vss_nl *nl, const char *const *devs, unsigned int nr,
	       const char *storage, uint64_t limit, uint32_t chunk,
	       uint32_t flags, struct vss_created *out);
int vss_delete_snap(struct vss_nl *nl, const uint8_t *id, bool force);
int vss_delete_set(struct vss_nl *nl, const uint8_t *id, bool force);
/* State of a snapshot: VSS_STATE_*, or negative errno. */
int vss_snap_state(struct vss_nl *nl, const uint8_t *id, int *err);
int vss_subscribe_events(struct vss_nl *nl);
/* Waits for an event; returns its type or negative errno (-ETIMEDOUT). */
int vss_next_event(struct vss_nl *nl, int timeout_ms, struct vss_attrs *attrs,
		   char *buf);

/*
 * Helpers added for the storage, filesystem and stacking tests.
 */

/* What VSS_CMD_GET_SNAPSHOT (or an event's VSS_A_SNAPSHOT nest) says. */
struct vss_snap_info {
	uint8_t snap_id[VSS_ID_LEN];
	uint8_t set_id[VSS_ID_LEN];
	uint32_t origin_major, origin_minor;
	char origin_name[32];
	char image[64];			/* "/dev/vssN", or "" */
	uint32_t index;
	uint32_t state;			/* VSS_STATE_*, 0 if absent */
	uint32_t err;			/* VSS_A_ERRNO, 0 if absent */
	char reason[128];		/* VSS_A_REASON, "" if absent */
	uint32_t chunk_size;
	uint32_t storage_kind;
	char storage_path[256];
	uint64_t created_ns;
	uint64_t storage_used;
	uint64_t storage_size;
	uint64_t storage_limit;
	uint64_t hold_us;
	uint32_t open_count;
	bool has_reason, has_err;
};

/* Fills @out from a VSS_A_SNAPSHOT nest. */
void vss_snap_info_parse(const struct nlattr *snapshot, struct vss_snap_info *out);
/* GET_SNAPSHOT of one snapshot. Return: 0 or negative errno. */
int vss_snap_info(struct vss_nl *nl, const uint8_t *id,
		  struct vss_snap_info *out);
/* Number of snapshots in a full dump, or negative errno. */
int vss_count_snapshots(struct vss_nl *nl);
/* Force-deletes every snapshot; returns how many, or negative errno. */
int vss_delete_all(struct vss_nl *nl);
/* Stops tracking every tracked device; returns how many, or negative errno. */
int vss_untrack_all(struct vss_nl *nl);

/* A CREATE_SET request with every optional attribute under control. */
struct vss_create_args {
	const dev_t *devs;		/* device numbers, sent as they are */
	unsigned int nr;
	const char *storage;
	bool has_limit;			/* send VSS_A_STORAGE_LIMIT (even 0) */
	uint64_t limit;
	uint32_t chunk;			/* 0: not sent */
	uint32_t flags;			/* 0: not sent */
	const char *label;		/* NULL: not sent */
	uint32_t hold_limit_ms;		/* 0: not sent */
};

int vss_create_ex(struct vss_nl *nl, const struct vss_create_args *args,
		  struct vss_created *out);

/*
 * Attribute @type of an event: at the top level, or else inside its
 * VSS_A_SNAPSHOT nest. *@top tells where it was found.
 */
const struct nlattr *vss_event_attr(const struct vss_attrs *ev, int type,
				    bool *top);

#endif /* VSS_SELFTEST_NL_H */
