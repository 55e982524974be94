// The proxy's own response parser (relay) against a scripted raw backend: every framing the app
// server may use (length, chunks, close, none), what it must refuse (502, never a response outside
// our headers), keep-alive reuse of upstream sockets and when a socket must not be reused.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import crypto from 'node:crypto'
import { startProxy, forcedHeaders, CSP } from '../pernosco.mts'
import { tcpBridge } from './helpers.mts'

const TOKEN = 'c'.repeat(64)
/** Each request path names the bytes the backend answers with (one write, or one write per byte with `slow`). */
const SCRIPT: Record<string, string | string[]> = {
  '/length': 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello',
  '/chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6 \r\n world\r\n0\r\nX-Trailer: dropped\r\n\r\n',
  '/both': 'HTTP/1.1 200 OK\r\nContent-Length: 999\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  '/close': 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close',
  '/continue': 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/204': 'HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n',
  '/304': 'HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nETag: "1"\r\n\r\n',
  '/head': 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n',
  '/dup': 'HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nVary: a\r\nvary: b\r\nContent-Length: 1\r\n\r\nx',
  '/extra': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA',
  '/tail': ['HTTP/1.1 200 OK\r\nContent-Length: 60000\r\n\r\n', 'x'.repeat(60_000)], // a last read above the write buffer's mark
  '/slow': [...'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nslow\r\n1\r\n!\r\n0\r\n\r\n'],
  // refused: each must become a 502 with our headers
  '/bad-status': 'HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n',
  '/bad-fold': 'HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n',
  '/bad-te': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n',
  '/bad-length': 'HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello',
  '/bad-char': 'HTTP/1.1 200 OK\r\nContent-Type: text/\x01html\r\nContent-Length: 0\r\n\r\n',
  '/bad-huge': 'HTTP/1.1 200 OK\r\n' + 'X-Pad: '.padEnd(70_000, 'p'),
  '/bad-eof': 'HTTP/1.1 200 OK\r\nContent-Le',
  // cut short after the head: the browser sees a broken response, never a complete one
  '/bad-chunk': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
  '/short': 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf',
}
/** 4 MiB that is not one repeated byte, so a reused read buffer that is overwritten too early shows. */
const PATTERN = Buffer.from(Array.from({ length: 4 << 20 }, (_, i) => (i * 7 + (i >> 12)) % 251))
const chunked = (b: Buffer) => { const parts: Buffer[] = []; for (let i = 0, n = 1; i < b.length; i += n, n = 1 + (n * 31 + 7) % 40_000) parts.push(Buffer.from(`${Math.min(n, b.length - i).toString(16)}\r\n`), b.subarray(i, i + n), Buffer.from('\r\n')); return Buffer.concat(parts) }
const BINARY: Record<string, Buffer> = {
  '/pattern': Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${PATTERN.length}\r\n\r\n`), PATTERN]),
  '/pattern-chunked': Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'), chunked(PATTERN), Buffer.from('0\r\n\r\n')]),
}
const CLOSES = ['/close', '/bad-eof', '/short', '/bad-huge']

let backend: net.Server, proxy: Awaited<ReturnType<typeof startProxy>>, conns = 0
const open = new Set<net.Socket>(), bodies: string[] = []
before(async () => {
  backend = net.createServer(s => {
    conns++; open.add(s); s.on('close', () => open.delete(s)).on('error', () => {})
    let got = ''
    s.on('data', async d => {
      got += d
      const e = got.indexOf('\r\n\r\n'), len = +(/content-length: (\d+)/i.exec(got)?.[1] ?? 0)
      if (e < 0 || got.length < e + 4 + len) return
      const p = got.split(' ')[1]!
      bodies.push(got.slice(e + 4)); got = ''
      if (p === '/post') return s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${len}\r\n\r\n${bodies.at(-1)}`)
      if (p === '/hang') return // never answers
      if (BINARY[p]) return s.write(BINARY[p])
      const r = SCRIPT[p]
      if (Array.isArray(r)) for (const b of r) { s.write(b); await new Promise(ok => setTimeout(ok, 1)) }
      else s.write(r)
      if (CLOSES.includes(p)) s.end()
    })
  })
  await new Promise<void>(ok => backend.listen(0, '127.0.0.1', ok))
  proxy = await startProxy({ bridge: tcpBridge((backend.address() as net.AddressInfo).port), host: '127.0.0.1', port: 0, token: TOKEN, names: [] })
})
after(() => { proxy.close(); backend.close(); for (const s of open) s.destroy() })

interface Res { status: number; headers: http.IncomingHttpHeaders; body: string; error?: string }
const get = (p: string, o: { method?: string; body?: string; headers?: Record<string, string> } = {}) => new Promise<Res>(ok => {
  const u = new URL(proxy.ui)
  let r: Res = { status: 0, headers: {}, body: '' }
  const req = http.request({ host: u.hostname, port: u.port, path: p, method: o.method ?? 'GET', agent: false,
    headers: { host: u.host, cookie: `pernosco-${new URL(proxy.shell).port}=${TOKEN}`, origin: proxy.ui, ...o.headers } }, res => {
    r = { status: res.statusCode!, headers: res.headers, body: '' }
    res.setEncoding('latin1').on('data', d => { r.body += d }).on('end', () => ok(r)).on('error', e => ok({ ...r, error: e.message }))
  }).on('error', e => ok({ ...r, error: e.message }))
  req.end(o.body)
})
const forced = forcedHeaders([...CSP, `frame-ancestors ${'x'}`].join('; '))
const assertOurs = (r: Res, what: string) => { for (const k of Object.keys(forced)) assert.ok(r.headers[k], `${what}: ${k}`) }
/** Upstream connections opened by one call. */
const opened = async (f: () => Promise<unknown>) => { const n = conns; await f(); return conns - n }

test('every framing the server may use reaches the browser whole, under our headers', { timeout: 20_000 }, async () => {
  for (const [p, status, body] of [['/length', 200, 'hello'], ['/chunked', 200, 'hello world'], ['/both', 200, 'abc'], ['/close', 200, 'until the close'],
    ['/continue', 200, 'ok'], ['/204', 204, ''], ['/304', 304, ''], ['/slow', 200, 'slow!'], ['/dup', 200, 'x']] as const) {
    const r = await get(p)
    assert.deepEqual([r.status, r.body, r.error], [status, body, undefined], p)
    assertOurs(r, p)
  }
  const chunked = await get('/chunked'), both = await get('/both'), dup = await get('/dup')
  assert.equal(chunked.headers['x-trailer'], undefined)
  assert.equal(both.headers['content-length'], undefined, 'Transfer-Encoding wins over Content-Length')
  assert.deepEqual([dup.headers['set-cookie'], dup.headers.vary], [undefined, 'a, b'])
  assert.equal((await get('/length')).headers['content-type'], 'text/plain')
  const head = await get('/head', { method: 'HEAD' })
  assert.deepEqual([head.status, head.headers['content-length'], head.body], [200, '100', ''])
})

test('a response it cannot parse is a 502 with our headers, or a broken response once the head was sent', { timeout: 20_000 }, async () => {
  for (const p of ['/bad-status', '/bad-fold', '/bad-te', '/bad-length', '/bad-char', '/bad-huge', '/bad-eof']) {
    const r = await get(p)
    assert.deepEqual([r.status, r.body], [502, 'bad response from the Pernosco server\n'], p)
    assertOurs(r, p)
  }
  for (const p of ['/bad-chunk', '/short']) {
    const r = await get(p)
    assert.ok(r.error && !r.body.includes('hello'), `${p}: the browser must not see a complete response (${JSON.stringify(r)})`)
  }
})

test('upstream sockets are kept alive and reused only when the exchange was clean', { timeout: 20_000 }, async () => {
  await get('/length')
  assert.equal(await opened(async () => { for (let i = 0; i < 5; i++) await get('/length') }), 0, 'clean: reused')
  assert.equal(await opened(async () => { await get('/chunked'); await get('/length') }), 0, 'chunked: reused')
  assert.equal(await opened(async () => { await get('/close'); await get('/length') }), 1, 'closed by the server: a new one')
  assert.equal(await opened(async () => { await get('/extra'); await get('/length') }), 1, 'bytes after the response: dropped')
  assert.equal(await opened(async () => { await get('/bad-chunk'); await get('/length') }), 1, 'a broken response: dropped')
  assert.equal(await opened(async () => { for (let i = 0; i < 3; i++) assert.equal((await get('/tail')).body.length, 60_000) }), 0,
    'a socket paused for backpressure at the end of a response is resumed when reused')
  for (const s of open) s.end() // the server closes its idle keep-alive sockets
  await new Promise(ok => setTimeout(ok, 50))
  assert.deepEqual([(await get('/length')).status, open.size], [200, 1], 'a socket the server closed is not reused')
  for (const s of open) s.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n') // out of turn
  await new Promise(ok => setTimeout(ok, 50))
  assert.equal(open.size, 0, 'a socket that speaks out of turn is closed')
})

/** GET p, reading nothing for `wait` ms; resolves with the body's sha256. */
const slowGet = (p: string, wait: number) => new Promise<string>((ok, no) => {
  const u = new URL(proxy.ui), h = crypto.createHash('sha256')
  http.get({ host: u.hostname, port: u.port, path: p, agent: false, headers: { host: u.host, cookie: `pernosco-${new URL(proxy.shell).port}=${TOKEN}` } }, res => {
    res.pause(); setTimeout(() => res.on('data', d => h.update(d)).on('end', () => ok(h.digest('hex'))).on('error', no).resume(), wait)
  }).on('error', no)
})
test('bodies arrive intact through slow and fast readers at once, by length and in chunks of every size', { timeout: 30_000 }, async () => {
  const want = crypto.createHash('sha256').update(PATTERN).digest('hex')
  for (let i = 0; i < 2; i++) assert.deepEqual(await Promise.all([slowGet('/pattern', 200), slowGet('/pattern-chunked', 100), slowGet('/pattern', 0), slowGet('/pattern-chunked', 0)]), [want, want, want, want])
})

test('a browser that stops reading holds only its own upstream socket', { timeout: 20_000 }, async () => {
  const u = new URL(proxy.ui)
  const stalled = http.get({ host: u.hostname, port: u.port, path: '/pattern', agent: false, headers: { host: u.host, cookie: `pernosco-${new URL(proxy.shell).port}=${TOKEN}` } }, res => res.pause())
  stalled.on('error', () => {})
  await new Promise(ok => setTimeout(ok, 100))
  for (let i = 0; i < 3; i++) assert.equal((await get('/length')).body, 'hello')
  stalled.destroy()
})

test('request bodies pass with a length; chunked uploads get 411; a browser that leaves closes the upstream socket', { timeout: 20_000 }, async () => {
  const r = await get('/post', { method: 'POST', body: 'payload' })
  assert.deepEqual([r.status, r.body], [200, 'payload'])
  const u = await get('/post', { method: 'POST', headers: { 'transfer-encoding': 'chunked' }, body: 'x' })
  assert.equal(u.status, 411)
  const u2 = new URL(proxy.ui), sent = bodies.length
  const req = http.request({ host: u2.hostname, port: u2.port, path: '/hang', agent: false, headers: { host: u2.host, cookie: `pernosco-${new URL(proxy.shell).port}=${TOKEN}` } })
  req.on('error', () => {}).end()
  await new Promise(ok => setTimeout(ok, 50))
  const before = open.size
  assert.equal(bodies.length, sent + 1, 'the backend got the request')
  req.destroy()
  await new Promise(ok => setTimeout(ok, 50))
  assert.equal(open.size, before - 1, 'the hung upstream socket was closed with the browser\'s')
})
