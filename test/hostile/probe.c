/* Network probes for the hostile stand-in images (built static by the test, run inside the
 * container): each spec "name:kind:host[:port]" sends "TOKEN-name" once and prints what happened.
 * Whether anything arrived is decided by the test's canaries, never by this program.
 * Two kinds judge themselves (issue 27), printing "name LEAK", "name blocked" (EPERM: our seccomp rule) or
 * "name absent errno N" (the kernel's own answer): "family" creates a socket of family HOST (a number; upper
 * bits may be set, as the raw syscall takes them), "acl" sets an ACL entry on file HOST granting uid 4242. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

static int connect2(int fd, struct sockaddr *sa, socklen_t len) {
  fcntl(fd, F_SETFL, O_NONBLOCK);
  if (connect(fd, sa, len) == 0) return 0;
  if (errno != EINPROGRESS) return -1;
  struct pollfd p = {fd, POLLOUT, 0};
  if (poll(&p, 1, 2000) != 1) { errno = ETIMEDOUT; return -1; }
  int e = 0; socklen_t l = sizeof e;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l);
  if (e) { errno = e; return -1; }
  return 0;
}

static unsigned short csum(void *p, int n) {
  unsigned s = 0; unsigned short *b = p;
  for (; n > 1; n -= 2) s += *b++;
  s = (s >> 16) + (s & 0xffff); s += s >> 16;
  return ~s;
}

int main(int argc, char **argv) {
  for (int i = 2; i < argc; i++) {
    char spec[256], msg[300];
    snprintf(spec, sizeof spec, "%s", argv[i]);
    char *name = strtok(spec, ":"), *kind = strtok(NULL, ":"), *host = strtok(NULL, ":"), *port = strtok(NULL, ":");
    snprintf(msg, sizeof msg, "%s-%s\n", argv[1], name);
    int ok = -1, fd = -1;
    errno = 0;
    if (!strcmp(kind, "family") || !strcmp(kind, "acl")) {
      long r;
      if (kind[0] == 'f') {
        unsigned long af = strtoul(host, NULL, 0);
        r = syscall(SYS_socket, af, (af & 0xffffffff) == 38 ? SOCK_SEQPACKET : SOCK_STREAM, 0);
      } else { /* POSIX ACL xattr v2: user::rw-, user:4242:r--, group::r--, mask::r--, other::--- */
        struct { unsigned tag_perm, id; } acl[5] = {{0x00060001, -1}, {0x00040002, 4242}, {0x00040004, -1}, {0x00040010, -1}, {0x00000020, -1}};
        unsigned char blob[4 + sizeof acl];
        unsigned version = 2;
        memcpy(blob, &version, 4);
        memcpy(blob + 4, acl, sizeof acl);
        r = setxattr(host, "system.posix_acl_access", blob, sizeof blob, 0);
      }
      if (r >= 0) printf("%s LEAK\n", name);
      else if (errno == EPERM || (kind[0] == 'a' && errno == EOPNOTSUPP)) printf("%s blocked\n", name);
      else printf("%s absent errno %d\n", name, errno);
      fflush(stdout);
      if (r > 0 && kind[0] == 'f') close(r);
      continue;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port ? atoi(port) : 0)};
    inet_pton(AF_INET, host, &a.sin_addr);
    if (!strcmp(kind, "tcp") || !strcmp(kind, "udp")) {
      fd = socket(AF_INET, kind[0] == 't' ? SOCK_STREAM : SOCK_DGRAM, 0);
      if (fd >= 0 && connect2(fd, (struct sockaddr *)&a, sizeof a) == 0) ok = send(fd, msg, strlen(msg), 0) > 0 ? 0 : -1;
      if (ok == 0 && kind[0] == 't') usleep(100000);
    } else if (!strcmp(kind, "unix")) {
      struct sockaddr_un u = {.sun_family = AF_UNIX};
      snprintf(u.sun_path + 1, sizeof u.sun_path - 1, "%s", host);
      /* libuv before 1.48 (Node 20) binds abstract names padded with NULs to sizeof sun_path, later ones
       * (Node 24) with the name's own length: try both */
      socklen_t lens[] = {sizeof u, offsetof(struct sockaddr_un, sun_path) + 1 + strlen(host)};
      for (int l = 0; l < 2 && ok != 0; l++) {
        if (fd >= 0) close(fd);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&u, lens[l]) == 0)
          ok = send(fd, msg, strlen(msg), 0) > 0 ? 0 : -1;
      }
      if (ok == 0) usleep(100000); /* like TCP: stay connected while the canary reads */
    } else if (!strcmp(kind, "icmp")) {
      struct { struct icmphdr h; char data[64]; } pkt = {.h = {.type = ICMP_ECHO, .un.echo.id = htons(4242)}};
      snprintf(pkt.data, sizeof pkt.data, "%.63s", msg);
      pkt.h.checksum = csum(&pkt, sizeof pkt);
      fd = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
      if (fd < 0) fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
      if (fd >= 0) ok = sendto(fd, &pkt, sizeof pkt, 0, (struct sockaddr *)&a, sizeof a) > 0 ? 0 : -1;
    }
    printf("%s %s %s\n", name, ok == 0 ? "sent" : "failed:", ok == 0 ? "" : strerror(errno));
    fflush(stdout);
    if (fd >= 0) close(fd);
  }
  return 0;
}
