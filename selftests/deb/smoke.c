// SPDX-License-Identifier: GPL-2.0
/*
 * cowmap-deb-smoke: the program selftests/deb-test.sh builds against the
 * installed libcowmap-dev (pkg-config cowmap, so cowmap.h, cowmap.pc and
 * the libcowmap.so link) and runs in the test VM from the installed files.
 *
 *   cowmap-deb-smoke version             the loaded module's version
 *                                        (cowmap_session_version(), libcowmap.so.1)
 *   cowmap-deb-smoke write FILE OFF TEXT write TEXT at OFF through a
 *                                        MAP_SHARED mapping of FILE (what
 *                                        'cowmap run' redirects)
 */
#include <cowmap.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

static int version(void)
{
	struct cowmap_version v;
	int err = cowmap_session_version(NULL, &v);

	if (err) {
		fprintf(stderr, "cowmap_session_version: %s\n", cowmap_strerror(err));
		return 1;
	}
	printf("%u.%u.%u\n", v.major, v.minor, v.patch);
	return 0;
}

static int write_mapped(const char *path, const char *off_s, const char *text)
{
	size_t len = strlen(text);
	struct stat st;
	char *end, *p;
	long off;
	int fd;

	off = strtol(off_s, &end, 10);
	if (*end || off < 0) {
		fprintf(stderr, "bad offset '%s'\n", off_s);
		return 2;
	}
	fd = open(path, O_RDWR);
	if (fd < 0 || fstat(fd, &st)) {
		perror(path);
		return 1;
	}
	if ((size_t)off + len > (size_t)st.st_size) {
		fprintf(stderr, "%s: %zu bytes at %ld pass its end\n", path, len, off);
		return 1;
	}
	p = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memcpy(p + off, text, len);
	if (munmap(p, st.st_size) || close(fd)) {
		perror("munmap/close");
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "version"))
		return version();
	if (argc == 5 && !strcmp(argv[1], "write"))
		return write_mapped(argv[2], argv[3], argv[4]);
	fprintf(stderr, "usage: %s version | write FILE OFFSET TEXT\n", argv[0]);
	return 2;
}
