/* A keep-alive HTTP/1.1 stand-in for the app server, for benchmarks only (busybox httpd forks per
 * connection). GET /big?n=BYTES streams n bytes; anything else is a 13-byte body. One thread per
 * connection; static; listens on 0.0.0.0:3000. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char zeros[1 << 16];

static void *serve(void *arg) {
  int fd = (int)(long)arg;
  char buf[8192];
  size_t have = 0;
  for (;;) {
    ssize_t n = read(fd, buf + have, sizeof buf - have - 1);
    if (n <= 0) break;
    have += n; buf[have] = 0;
    char *end;
    while ((end = strstr(buf, "\r\n\r\n"))) {
      long long size = 13;
      char *big = strstr(buf, "GET /big?n=");
      if (big && big < end) size = atoll(big + 11);
      char head[256];
      int h = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %lld\r\n\r\n", size);
      if (write(fd, head, h) != h) goto done;
      if (size == 13) { if (write(fd, "hello, world\n", 13) != 13) goto done; }
      else for (long long left = size; left > 0;) {
        ssize_t w = write(fd, zeros, left < (long long)sizeof zeros ? left : (long long)sizeof zeros);
        if (w <= 0) goto done;
        left -= w;
      }
      size_t used = end + 4 - buf;
      memmove(buf, end + 4, have - used); have -= used; buf[have] = 0;
    }
  }
done:
  close(fd);
  return 0;
}

int main(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(3000)};
  if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 128)) { perror("listen"); return 1; }
  printf("listening\n"); /* the bench's bare baseline: the moment a bare server could answer */
  fflush(stdout);
  for (;;) {
    int c = accept(s, 0, 0);
    if (c < 0) continue;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* header and body are separate writes */
    pthread_t t;
    pthread_create(&t, 0, serve, (void *)(long)c);
    pthread_detach(t);
  }
}
