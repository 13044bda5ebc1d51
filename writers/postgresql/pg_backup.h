/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The PostgreSQL side of the in-box writer: one libpq session held open
 * from pg_backup_start() to pg_backup_stop(), and what a restored image
 * needs to recover by itself (backup_label, tablespace_map and the WAL
 * written while the backup ran).
 */
#ifndef VSS_PG_BACKUP_H
#define VSS_PG_BACKUP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define PGW_MAX_TABLESPACES	64
#define PGW_ERR_MAX		512

struct pg_conn;

/* The checkpoint that starts a backup, as pg_basebackup --checkpoint. */
enum pgw_checkpoint {
	PGW_CHECKPOINT_SPREAD,	/* paced by checkpoint_completion_target */
	PGW_CHECKPOINT_FAST,	/* immediate: every dirty buffer at once */
};

struct pgw {
	struct pg_conn *conn;
	char error[PGW_ERR_MAX];	/* the server's or our message */
	/* How we connected, for a second session (a spread checkpoint hurried). */
	const char *conninfo;
	uid_t as_uid;

	/* Found from the server at identify. */
	char data_dir[PATH_MAX];
	char wal_dir[PATH_MAX];		/* pg_wal, its symlink resolved */
	unsigned int nr_tablespaces;
	char tablespace[PGW_MAX_TABLESPACES][PATH_MAX];
	int server_version;		/* 150018 */

	/* Between start and stop. */
	bool in_backup;
	char slot[64];			/* temporary slot keeping the WAL */
	char start_lsn[32], start_wal[32];

	/* What pg_backup_stop() returned. */
	char stop_lsn[32], stop_wal[32];
	char *label;			/* backup_label, byte for byte */
	char *tablespace_map;		/* "" without tablespaces */
};

/*
 * Connects with @conninfo (kept: it must outlive @pgw); with @as_uid >= 0,
 * as that uid (peer auth).
 */
int pgw_connect(struct pgw *pgw, const char *conninfo, uid_t as_uid);
void pgw_close(struct pgw *pgw);

/* Whether the session still answers (one round trip). */
int pgw_ping(struct pgw *pgw);

/* Data directory, WAL directory and tablespaces, from the server. */
int pgw_identify(struct pgw *pgw);

/*
 * Reserves the WAL from now on (a temporary physical slot) and starts a
 * non-exclusive backup, which begins with a checkpoint: an immediate one
 * with PGW_CHECKPOINT_FAST; with PGW_CHECKPOINT_SPREAD, one paced as the
 * server paces its own, waited for up to @hurry_ms (0: as long as it
 * takes). Past that, a CHECKPOINT in a second session makes the one in
 * progress finish at full speed, so that the backup starts in time.
 */
int pgw_backup_start(struct pgw *pgw, const char *label,
		     enum pgw_checkpoint checkpoint, unsigned int hurry_ms);

/* Ends the backup; the label and map are kept in @pgw. */
int pgw_backup_stop(struct pgw *pgw);

/*
 * Ends a backup that will not be used (abort): the session's backup is
 * stopped and its results dropped. Never fails: a lost session aborts
 * the backup on the server by itself.
 */
void pgw_backup_abort(struct pgw *pgw);

/*
 * Writes backup_label (and tablespace_map) into @image_data_dir, the data
 * directory inside the mounted image, and copies the WAL segments from the
 * backup's start to its stop from the live WAL directory into
 * @image_wal_dir. Everything is fsync'ed.
 */
int pgw_fix_image(struct pgw *pgw, const char *image_data_dir,
		  const char *image_wal_dir);

#endif /* VSS_PG_BACKUP_H */
