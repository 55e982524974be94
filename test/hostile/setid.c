/* Setuid and setgid files on the host: every way a process without capabilities can make one in a directory
 * it owns (argv[1]: the trace or the storage). Prints, when the file then has S_ISUID or
 * S_ISGID (the host sees the same inode): "setid-NAME LEAK", else "setid-NAME blocked". Run under our seccomp profile, none
 * may be made; under the runtime's default (the control) chmod must succeed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *dir;
static char p[4096];

static void report(const char *name) {
  struct stat st;
  int made = stat(p, &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID));
  printf("setid-%s %s\n", name, made ? "LEAK" : "blocked");
  unlink(p);
}
static void fresh(const char *name) {
  snprintf(p, sizeof p, "%s/setid-%s", dir, name);
  unlink(p);
  close(open(p, O_CREAT | O_WRONLY, 0755));
}

int main(int argc, char **argv) {
  dir = argc > 1 ? argv[1] : "/trace";
  fresh("chmod-suid"); chmod(p, 04755); report("chmod-suid");
  fresh("chmod-sgid"); chmod(p, 02755); report("chmod-sgid");
  fresh("fchmod"); int fd = open(p, O_RDONLY); fchmod(fd, 04755); close(fd); report("fchmod");
  fresh("fchmodat"); fchmodat(AT_FDCWD, p, 04755, 0); report("fchmodat");
  fresh("fchmodat2"); syscall(452, AT_FDCWD, p, 04755, 0); report("fchmodat2");
  snprintf(p, sizeof p, "%s/setid-open", dir); unlink(p);
  close(open(p, O_CREAT | O_WRONLY, 04755)); report("open");
  snprintf(p, sizeof p, "%s/setid-creat", dir); unlink(p);
  close(creat(p, 02755)); report("creat");
  snprintf(p, sizeof p, "%s/setid-mknod", dir); unlink(p);
  mknod(p, S_IFREG | 04755, 0); report("mknod");
  /* An unnamed file with the mode, then a name for it. */
  snprintf(p, sizeof p, "%s/setid-tmpfile", dir); unlink(p);
  fd = open(dir, O_TMPFILE | O_WRONLY, 04755);
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  if (fd >= 0) linkat(AT_FDCWD, proc, AT_FDCWD, p, AT_SYMLINK_FOLLOW);
  close(fd); report("tmpfile");
  /* openat2 (437): its mode is in memory, where seccomp cannot look; it must fail as a whole. */
  struct { unsigned long long flags, mode, resolve; } how = { O_CREAT | O_WRONLY, 04755, 0 };
  snprintf(p, sizeof p, "%s/setid-openat2", dir); unlink(p);
  close(syscall(437, AT_FDCWD, p, &how, sizeof how)); report("openat2");
  return 0;
}
