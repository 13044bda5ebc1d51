/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The MariaDB side of the in-box writer: BACKUP STAGE on one connection
 * held for the whole sequence. START and FLUSH before the freeze,
 * BLOCK_DDL and BLOCK_COMMIT at the freeze (the instant of the backup),
 * END at the thaw. A lost connection releases every stage by itself.
 */
#ifndef VSS_MY_BACKUP_H
#define VSS_MY_BACKUP_H

#include <limits.h>
#include <stdbool.h>

#define MYW_MAX_DIRS	8
#define MYW_ERR_MAX	512

struct st_mysql;

enum myw_stage {
	MYW_NONE,		/* no stage held */
	MYW_START,
	MYW_FLUSH,
	MYW_BLOCK_DDL,
	MYW_BLOCK_COMMIT,
};

struct myw {
	struct st_mysql *conn;
	char error[MYW_ERR_MAX];
	unsigned long server_version;	/* 101119 */
	enum myw_stage stage;
	/* Directories holding the server's data and logs, deduplicated. */
	unsigned int nr_dirs;
	char dir[MYW_MAX_DIRS][PATH_MAX];
};

/* Connects through @socket_path (NULL: the client default) as @user. */
int myw_connect(struct myw *myw, const char *socket_path, const char *user,
		unsigned int lock_wait_timeout_s);
void myw_close(struct myw *myw);

/* The data, InnoDB log and undo, binary log and Aria log directories. */
int myw_identify(struct myw *myw);

/* Takes the stages up to @stage, in order. */
int myw_stage(struct myw *myw, enum myw_stage stage);

/* BACKUP STAGE END; also the abort. Never leaves a stage held. */
int myw_end(struct myw *myw);

#endif /* VSS_MY_BACKUP_H */
