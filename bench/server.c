/* A keep-alive HTTP/1.1 stand-in for the app server, for benchmarks only (busybox httpd forks per
 * connection). GET /big?n=BYTES streams n bytes; a request with `Upgrade: websocket` gets a 101 and then
 * each (masked) frame echoed back, unmasked (its Sec-WebSocket-Accept is not computed: the bench client does
 * not check it); anything else is a 13-byte body. One thread per connection; static; listens on 0.0.0.0:3000. */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char zeros[1 << 16];

/* Reads until buf holds `want` bytes (buf is 8192 long). */
static int fill(int fd, char *buf, size_t *have, size_t want) {
  while (*have < want) {
    ssize_t n = read(fd, buf + *have, 8192 - *have);
    if (n <= 0) return -1;
    *have += n;
  }
  return 0;
}

/* WebSocket echo: each client frame (masked, payload up to 4096 bytes) back as one unmasked text frame. */
static void ws(int fd, char *buf, size_t have) {
  unsigned char out[4200];
  unsigned char *b = (unsigned char *)buf;
  for (;;) {
    if (fill(fd, buf, &have, 2)) return;
    size_t len = b[1] & 127, hdr = 2;
    if (len == 126) {
      if (fill(fd, buf, &have, 4)) return;
      len = (size_t)b[2] << 8 | b[3];
      hdr = 4;
    }
    if (len > 4096 || (b[0] & 15) == 8) return; /* too big, or a close frame */
    if (fill(fd, buf, &have, hdr + 4 + len)) return;
    size_t o = 0;
    out[o++] = 0x81;
    if (len < 126) out[o++] = len;
    else { out[o++] = 126; out[o++] = len >> 8; out[o++] = len & 255; }
    for (size_t i = 0; i < len; i++) out[o++] = b[hdr + 4 + i] ^ b[hdr + (i & 3)];
    if (write(fd, out, o) != (ssize_t)o) return;
    size_t used = hdr + 4 + len;
    memmove(buf, buf + used, have - used);
    have -= used;
  }
}

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
      char *up = strcasestr(buf, "\r\nupgrade: websocket");
      if (up && up < end) {
        const char *h = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: bench\r\n\r\n";
        if (write(fd, h, strlen(h)) != (ssize_t)strlen(h)) goto done;
        size_t used = end + 4 - buf;
        memmove(buf, end + 4, have - used);
        ws(fd, buf, have - used);
        goto done;
      }
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
