/* SPDX-License-Identifier: GPL-2.0 */
/*
 * SHA-256 (FIPS 180-4) for vss-backup-agent: the checksum it records for
 * every file it writes into a repository and checks before it restores.
 * A full backup's checksum is that of the device image itself, so it can
 * be compared with sha256sum(1) of the snapshot.
 */
#ifndef VSS_EXAMPLE_SHA256_H
#define VSS_EXAMPLE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN	32
/* Lower-case hex of a digest, with its NUL. */
#define SHA256_HEX_LEN		(2 * SHA256_DIGEST_LEN + 1)

struct sha256 {
	uint32_t state[8];
	uint64_t bytes;			/* hashed so far */
	uint8_t block[64];		/* a partial block */
	size_t fill;			/* bytes in @block */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, uint8_t digest[SHA256_DIGEST_LEN]);
/* sha256_final() and the hex text of the digest. */
void sha256_final_hex(struct sha256 *s, char hex[SHA256_HEX_LEN]);

#endif /* VSS_EXAMPLE_SHA256_H */
