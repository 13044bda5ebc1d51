// SPDX-License-Identifier: GPL-2.0
#include "my_backup.h"

#include <errno.h>
#include <mysql.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const stage_sql[] = {
	[MYW_START] = "BACKUP STAGE START",
	[MYW_FLUSH] = "BACKUP STAGE FLUSH",
	[MYW_BLOCK_DDL] = "BACKUP STAGE BLOCK_DDL",
	[MYW_BLOCK_COMMIT] = "BACKUP STAGE BLOCK_COMMIT",
};

static int fail(struct myw *myw, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct myw *myw, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(myw->error, sizeof(myw->error), fmt, ap);
	va_end(ap);
	return err;
}

static int fail_my(struct myw *myw, const char *what)
{
	return fail(myw, -EIO, "%s: %s (%u)", what,
		    myw->conn ? mysql_error(myw->conn) : "no connection",
		    myw->conn ? mysql_errno(myw->conn) : 0);
}

int myw_connect(struct myw *myw, const char *socket_path, const char *user,
		unsigned int lock_wait_timeout_s)
{
	char sql[96];

	memset(myw, 0, sizeof(*myw));
	myw->conn = mysql_init(NULL);
	if (!myw->conn)
		return fail(myw, -ENOMEM, "out of memory");
	if (!mysql_real_connect(myw->conn, NULL, user, NULL, NULL, 0,
				socket_path, 0)) {
		int ret = fail_my(myw, "cannot connect to the server");

		mysql_close(myw->conn);
		myw->conn = NULL;
		return ret;
	}
	myw->server_version = mysql_get_server_version(myw->conn);
	if (myw->server_version < 100400) {
		myw_close(myw);
		return fail(myw, -EPROTONOSUPPORT,
			    "server version %lu: BACKUP STAGE needs MariaDB 10.4 or newer",
			    myw->server_version);
	}
	/* Every stage waits for locks: bound the waits within the step's limit. */
	snprintf(sql, sizeof(sql), "SET SESSION lock_wait_timeout = %u",
		 lock_wait_timeout_s ? lock_wait_timeout_s : 1);
	if (mysql_query(myw->conn, sql)) {
		int ret = fail_my(myw, "cannot set lock_wait_timeout");

		myw_close(myw);
		return ret;
	}
	return 0;
}

void myw_close(struct myw *myw)
{
	if (myw->conn)
		mysql_close(myw->conn);
	myw->conn = NULL;
	myw->stage = MYW_NONE;
}

static void add_dir(struct myw *myw, const char *dir)
{
	char real[PATH_MAX];
	unsigned int i;

	if (!dir || !*dir || !realpath(dir, real))
		return;
	for (i = 0; i < myw->nr_dirs; i++)
		if (!strcmp(myw->dir[i], real))
			return;
	if (myw->nr_dirs < MYW_MAX_DIRS)
		strcpy(myw->dir[myw->nr_dirs++], real);
}

int myw_identify(struct myw *myw)
{
	static const char sql[] =
		"SELECT @@datadir, @@innodb_log_group_home_dir, "
		"@@innodb_data_home_dir, @@innodb_undo_directory, "
		"@@log_bin_basename, @@aria_log_dir_path";
	MYSQL_RES *res;
	MYSQL_ROW row;
	unsigned int i, n;

	if (!myw->conn)
		return fail(myw, -ENOTCONN, "not connected to the server");
	if (mysql_query(myw->conn, sql))
		return fail_my(myw, "cannot read the server's directories");
	res = mysql_store_result(myw->conn);
	if (!res)
		return fail_my(myw, "cannot read the server's directories");
	row = mysql_fetch_row(res);
	n = mysql_num_fields(res);
	myw->nr_dirs = 0;
	for (i = 0; row && i < n; i++) {
		const char *v = row[i];
		char buf[PATH_MAX];
		char *slash;

		if (!v || !*v)
			continue;
		/* Relative settings are relative to the data directory. */
		if (v[0] != '/' && myw->nr_dirs)
			snprintf(buf, sizeof(buf), "%s/%s", myw->dir[0], v);
		else
			snprintf(buf, sizeof(buf), "%s", v);
		/* The binary log setting names files, not a directory. */
		if (i == 4) {
			slash = strrchr(buf, '/');
			if (!slash)
				continue;
			*slash = 0;
		}
		add_dir(myw, buf);
	}
	mysql_free_result(res);
	if (!myw->nr_dirs)
		return fail(myw, -EPROTO, "the server named no data directory");
	return 0;
}

int myw_stage(struct myw *myw, enum myw_stage stage)
{
	if (!myw->conn)
		return fail(myw, -ENOTCONN, "not connected to the server");
	while (myw->stage < stage) {
		enum myw_stage next = myw->stage + 1;

		if (mysql_query(myw->conn, stage_sql[next]))
			return fail_my(myw, stage_sql[next]);
		myw->stage = next;
	}
	return 0;
}

int myw_end(struct myw *myw)
{
	int ret = 0;

	if (myw->stage == MYW_NONE)
		return 0;
	if (!myw->conn || mysql_query(myw->conn, "BACKUP STAGE END")) {
		ret = fail_my(myw, "BACKUP STAGE END");
		/* Closing the connection releases the stages for certain. */
		myw_close(myw);
	}
	myw->stage = MYW_NONE;
	return ret;
}
