// SPDX-License-Identifier: GPL-2.0-or-later OR MIT
/*
 * cowmap run [-f FILE]... [-d LOGDIR] -- PROGRAM [ARGS]...: exec PROGRAM
 * with libcowmap-preload.so preloaded, so that its MAP_SHARED mappings of
 * each FILE go through /dev/cowmap, one session (and one log in LOGDIR)
 * per process and file.  cowmap becomes PROGRAM: the exit status is the
 * program's own.  Everything that can be checked is checked first.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "cli.h"

#define EXT4_MAGIC	0xEF53
#define XFS_MAGIC	0x58465342
#define BTRFS_MAGIC	0x9123683E
#define TMPFS_MAGIC	0x01021994

/* COWMAP_PRELOAD_REL: LIBDIR/cowmap relative to BINDIR (the Makefile's
 * build/cli/paths.h), e.g. "../lib/cowmap": no absolute path is built in. */
#include "paths.h"
#define PRELOAD_NAME "libcowmap-preload.so"

/* Name of a filesystem magic cowmap does not support, for messages. */
static const char *fs_name(long type)
{
	switch ((unsigned long)type) {
	case TMPFS_MAGIC: return "tmpfs";
	case 0x6969: return "NFS";
	case 0x65735546: return "FUSE";
	case 0x958458f6: return "hugetlbfs";
	case 0x9fa0: return "procfs";
	case 0x794c7630: return "overlayfs";
	default: return NULL;
	}
}

/* 0 if @path is on ext4, XFS or btrfs; else -1, and a message. */
static int check_supported_fs(const char *cmd, const char *path)
{
	struct statfs sf;
	const char *name;

	if (statfs(path, &sf) < 0) {
		failf(cmd, "%s: %s", path, strerror(errno));
		return -1;
	}
	switch ((unsigned long)sf.f_type) {
	case EXT4_MAGIC:
	case XFS_MAGIC:
	case BTRFS_MAGIC:
		return 0;
	}
	name = fs_name(sf.f_type);
	if (name)
		failf(cmd, "%s is on %s, which cowmap does not support (use ext4, XFS "
		      "or btrfs)", path, name);
	else
		failf(cmd, "%s is on a filesystem cowmap does not support (type 0x%lx; "
		      "use ext4, XFS or btrfs)", path, (unsigned long)sf.f_type);
	return -1;
}

static bool usable_preload(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * The absolute path of libcowmap-preload.so ($COWMAP_PRELOAD, beside the
 * cowmap binary, ../lib of it, COWMAP_LIBDIR); 0 or -1.
 */
static int run_locate_preload(char *buf, size_t size)
{
	const char *env = getenv("COWMAP_PRELOAD");
	char exe[PATH_MAX], cand[PATH_MAX + 64], *slash;
	ssize_t n;

	if (env && *env) {
		if (!usable_preload(env) || !realpath(env, buf) || strlen(buf) >= size)
			return -1;
		return 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			/* the build tree: build/cowmap beside build/libcowmap-preload.so */
			snprintf(cand, sizeof(cand), "%s/%s", exe, PRELOAD_NAME);
			if (usable_preload(cand) && realpath(cand, buf))
				return 0;
			/* BINDIR/cowmap and LIBDIR/cowmap/libcowmap-preload.so */
			snprintf(cand, sizeof(cand), "%s/%s/%s", exe, COWMAP_PRELOAD_REL,
				 PRELOAD_NAME);
			if (usable_preload(cand) && realpath(cand, buf))
				return 0;
		}
	}
	return -1;
}

/* Find @prog as execvp(3) would; 0 and @out filled, or -errno. */
static int find_program(const char *prog, char *out, size_t size)
{
	const char *path = getenv("PATH");
	int err = ENOENT;

	if (strchr(prog, '/')) {
		if (access(prog, X_OK) < 0)
			return -errno;
		snprintf(out, size, "%s", prog);
		return 0;
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *end = strchrnul(path, ':');
		struct stat st;

		if ((size_t)(end - path) + strlen(prog) + 2 <= size) {
			if (end == path)
				snprintf(out, size, "./%s", prog);
			else
				snprintf(out, size, "%.*s/%s", (int)(end - path), path, prog);
			if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
				if (access(out, X_OK) == 0)
					return 0;
				err = EACCES;
			}
		}
		path = *end ? end + 1 : end;
	}
	return -err;
}

/*
 * Whether the ELF file @fd of class @class has a PT_INTERP program header.
 * An unknown class or an unreadable header counts as having one (dynamic:
 * exec will say what is wrong).  p_type is the first word of a program
 * header in both classes.
 */
static bool has_interp(int fd, unsigned char class)
{
	union {
		Elf64_Ehdr e64;
		Elf32_Ehdr e32;
	} eh;
	bool is64 = class == ELFCLASS64;
	size_t size = is64 ? sizeof(eh.e64) : sizeof(eh.e32);
	uint64_t phoff;
	unsigned int phnum, phentsize;
	uint32_t type;

	if ((!is64 && class != ELFCLASS32) || pread(fd, &eh, size, 0) != (ssize_t)size)
		return true;
	phoff = is64 ? eh.e64.e_phoff : eh.e32.e_phoff;
	phnum = is64 ? eh.e64.e_phnum : eh.e32.e_phnum;
	phentsize = is64 ? eh.e64.e_phentsize : eh.e32.e_phentsize;
	for (unsigned int i = 0; i < phnum; i++) {
		if (pread(fd, &type, sizeof(type),
			  (off_t)(phoff + (uint64_t)i * phentsize)) != (ssize_t)sizeof(type))
			return false;
		if (type == PT_INTERP)
			return true;
	}
	return false;
}

/*
 * 1 if @path is an ELF without PT_INTERP (statically linked), 0 if it is
 * dynamic or not an ELF (a script is checked through its interpreter).
 */
static int is_static(const char *path, int depth)
{
	unsigned char id[EI_NIDENT];
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;	/* exec will say */
	if (pread(fd, id, sizeof(id), 0) != (ssize_t)sizeof(id))
		goto out;
	if (id[0] == '#' && id[1] == '!' && depth < 4) {
		char line[256], *p, *e;
		ssize_t n = pread(fd, line, sizeof(line) - 1, 2);

		if (n <= 0)
			goto out;
		line[n] = '\0';
		p = line + strspn(line, " \t");
		e = p + strcspn(p, " \t\n");
		*e = '\0';
		if (*p)
			ret = is_static(p, depth + 1);
		goto out;
	}
	if (memcmp(id, ELFMAG, SELFMAG))
		goto out;
	ret = !has_interp(fd, id[EI_CLASS]);
out:
	close(fd);
	return ret;
}

/* Append "DEV:INO:HEXNAME" for @file to @files. */
static int add_file(const char *file, char **files, size_t *len)
{
	const char *base;
	struct stat st;
	char *p;
	size_t need;

	if (stat(file, &st) < 0)
		return failf("run", "%s: %s", file, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return failf("run", "%s: not a regular file", file);
	if (check_supported_fs("run", file))
		return EXIT_FAIL;
	base = strrchr(file, '/');
	base = base ? base + 1 : file;
	if (!*base || strlen(base) > NAME_MAX)
		return failf("run", "%s: no usable file name for its logs", file);
	need = *len + 64 + 2 * strlen(base);
	p = realloc(*files, need);
	if (!p)
		return failf("run", "out of memory");
	*files = p;
	*len += (size_t)sprintf(p + *len, "%s%llu:%llu:", *len ? "," : "",
				(unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	for (const unsigned char *c = (const unsigned char *)base; *c; c++)
		*len += (size_t)sprintf(p + *len, "%02x", *c);
	return EXIT_OK;
}

static int run_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "log-dir", required_argument, NULL, 'd' },
		COMMON_LONGOPTS, {}
	};
	char preload[PATH_MAX], logdir[PATH_MAX], prog[PATH_MAX], *files = NULL, *ld;
	const char *dir = ".", *old;
	size_t files_len = 0;
	const char **file_args;
	int c, r, nfiles = 0;
	struct stat st;

	file_args = calloc((size_t)argc + 1, sizeof(*file_args));
	if (!file_args)
		return failf("run", "out of memory");
	/* '+': stop at PROGRAM, whose options are its own. */
	while ((c = getopt_long(argc, argv, "+:f:d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			file_args[nfiles++] = optarg;
			continue;
		case 'd':
			dir = optarg;
			continue;
		}
		if ((r = common_option("run", c, argv)) >= 0)
			goto out;
	}
	if (optind == argc) {
		r = usage_error("run", "a program to run is needed");
		goto out;
	}
	if (!nfiles) {
		r = usage_error("run", "give at least one -f FILE to redirect");
		goto out;
	}

	for (int i = 0; i < nfiles; i++)
		if ((r = add_file(file_args[i], &files, &files_len)))
			goto out;
	r = EXIT_FAIL;
	if (stat(dir, &st) < 0) {
		failf("run", "%s: %s", dir, strerror(errno));
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		failf("run", "%s: not a directory", dir);
		goto out;
	}
	if (access(dir, W_OK | X_OK) < 0) {
		failf("run", "%s: cannot create logs there: %s", dir, strerror(errno));
		goto out;
	}
	if (!realpath(dir, logdir)) {
		failf("run", "%s: %s", dir, strerror(errno));
		goto out;
	}
	if (run_locate_preload(preload, sizeof(preload))) {
		failf("run", "cannot find %s (set COWMAP_PRELOAD to its path)", PRELOAD_NAME);
		goto out;
	}
	if (access(COWMAP_DEVICE_PATH, R_OK | W_OK) < 0) {
		failf("run", "%s: %s%s", COWMAP_DEVICE_PATH, strerror(errno),
		      errno == ENOENT ? " (is the cowmap module loaded?)" : "");
		goto out;
	}
	if (strpbrk(preload, " :")) {
		failf("run", "%s: LD_PRELOAD cannot take a path with ' ' or ':'", preload);
		goto out;
	}
	r = find_program(argv[optind], prog, sizeof(prog));
	if (r) {
		failf("run", "%s: %s", argv[optind], r == -ENOENT ? "command not found" :
		      strerror(-r));
		r = r == -ENOENT ? 127 : 126;
		goto out;
	}
	if (is_static(prog, 0)) {
		r = failf("run", "%s is statically linked; cowmap run cannot reach its "
			  "mmap calls", argv[optind]);
		goto out;
	}

	old = getenv("LD_PRELOAD");
	if (asprintf(&ld, "%s%s%s", preload, old && *old ? " " : "", old ? old : "") < 0) {
		r = failf("run", "out of memory");
		goto out;
	}
	if (setenv("LD_PRELOAD", ld, 1) || setenv("COWMAP_RUN_FILES", files, 1) ||
	    setenv("COWMAP_RUN_LOGDIR", logdir, 1)) {
		r = failf("run", "setenv: %s", strerror(errno));
		free(ld);
		goto out;
	}
	free(ld);
	fflush(NULL);
	execv(prog, argv + optind);
	r = errno == ENOENT ? 127 : 126;
	failf("run", "%s: %s", argv[optind], strerror(errno));
out:
	free(files);
	free(file_args);
	return r;
}

const struct subcommand cmd_run = {
	.name = "run",
	.fn = run_main,
	.synopsis = "[-f FILE]... [-d LOGDIR] -- PROGRAM [ARGS]...",
	.help = "run a program whose MAP_SHARED mappings of each FILE go through cowmap",
	.options = "  -f, --file FILE      a file to redirect (at least one)\n"
		   "  -d, --log-dir LOGDIR where each session's log goes (default: .)\n",
};
