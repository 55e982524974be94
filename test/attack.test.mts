// Issue 10's findings, each reproduced against `serve`'s proxy: hostile raw-socket clients and a
// hostile raw-TCP app server. Each test failed on the hand-written relay; the proxy must survive all.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import { startProxy, realSys } from '../pernosco.mts'
import { forwarder, rawServer } from './helpers.mts'

const TOKEN = 'd'.repeat(64)
const NAME = 'pernosco-attack.localhost'
/** Each path names the bytes the hostile server answers with. */
const SCRIPT: Record<string, string> = {
  '/205': 'HTTP/1.1 205 Reset Content\r\nContent-Length: 75\r\n\r\nHTTP/1.1 200 OK\r\nSet-Cookie: planted=1\r\nContent-Length: 5\r\n\r\nevil!',
  '/close': 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok',
  '/http10': 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/cache': 'HTTP/1.1 200 OK\r\nCache-Control: max-age=31536000, immutable\r\nExpires: Tue, 01 Jan 2030 00:00:00 GMT\r\n'
    + 'ETag: "1"\r\nLast-Modified: Tue, 01 Jan 2030 00:00:00 GMT\r\nContent-Length: 2\r\n\r\nok',
  '/ws-cookie': 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: abc\r\n'
    + 'Set-Cookie: session=stolen; Path=/\r\nContent-Security-Policy: default-src *\r\n\r\n',
  '/ws-refused': 'HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nContent-Length: 2\r\n\r\nno',
  '/101': 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
  '/huge-head': 'HTTP/1.1 200 OK\r\n' + 'X-Pad: '.padEnd(130_000, 'p') + '\r\nContent-Length: 0\r\n\r\n',
}
let backend: net.Server
const live = new Set<net.Socket>()
let proxy: Awaited<ReturnType<typeof startProxy>>
before(async () => {
  backend = rawServer(live, (p, s) => {
    if (p.startsWith('/loc')) {
      const to = decodeURIComponent(p.slice(5))
      return s.write(`HTTP/1.1 302 Found\r\nLocation: ${to}\r\nContent-Length: 0\r\n\r\n`)
    }
    if (p === '/hang') return
    s.write(SCRIPT[p] ?? 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
    if (p === '/close' || p === '/http10') setTimeout(() => s.end(), 5) // closes a moment later
  })
  await new Promise<void>(ok => backend.listen(0, '127.0.0.1', ok))
  const port = (backend.address() as net.AddressInfo).port
  proxy = await startProxy({ socketPath: forwarder(port), port: 0, token: TOKEN, name: NAME })
})
after(() => {
  proxy.close()
  backend.close()
  for (const s of live) s.destroy()
})
const ports = () => ({ shell: +new URL(proxy.shell).port, ui: +new URL(proxy.ui).port })
const cookie = () => `pernosco-${ports().shell}=${TOKEN}`
/** Raw bytes to a port; resolves with all it got back until the close (or 2 s). */
function raw(port: number, bytes: string, o: { reset?: boolean } = {}): Promise<string> {
  return new Promise(ok => {
    let got = ''
    const s = net.connect(port, '127.0.0.1', () => {
      s.write(bytes)
      if (o.reset) s.resetAndDestroy()
    })
    s.on('data', d => { got += d }).on('error', () => {}).on('close', () => ok(got))
    setTimeout(() => s.destroy(), 2000).unref()
  })
}
const uiGet = (p: string, headers: Record<string, string> = {}) => new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((ok, no) => {
  http.get({ host: '127.0.0.1', port: ports().ui, path: p, agent: false, headers: { host: `${NAME}:${ports().ui}`, cookie: cookie(), ...headers } }, r => {
    let body = ''
    r.on('data', d => { body += d }).on('end', () => ok({ status: r.statusCode!, headers: r.headers, body }))
  }).on('error', no)
})
const alive = async () => assert.equal((await uiGet('/')).status, 200, 'serve still answers')

test('finding 1: a request target node parses but URL cannot (`//`, `http://`, `//x:abc`, `//[`) never crashes the shell port', async () => {
  for (const target of ['//', 'http://', '//x:abc', '//[', '/?token=%', '/?%%%']) {
    const r = await raw(ports().shell, `GET ${target} HTTP/1.1\r\nhost: ${NAME}:${ports().shell}\r\nconnection: close\r\n\r\n`)
    assert.match(r, /^HTTP\/1\.1 (401|404) /, target)
    await raw(ports().shell, `GET ${target} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`) // bad Host first
  }
  await alive()
})

test('finding 2: a client that resets a WebSocket upgrade, refused or accepted, never crashes serve', async () => {
  const upgrade = (auth: boolean, p = '/hang') => `GET ${p} HTTP/1.1\r\nhost: ${NAME}:${ports().ui}\r\nupgrade: websocket\r\n`
    + `connection: Upgrade\r\norigin: ${proxy.ui}\r\n${auth ? `cookie: ${cookie()}\r\n` : ''}\r\n`
  for (let i = 0; i < 20; i++) {
    await raw(ports().ui, upgrade(false), { reset: true })
    await raw(ports().ui, upgrade(true), { reset: true })
    await raw(ports().ui, upgrade(true, '/ws-cookie'), { reset: true })
  }
  await alive()
})

test('finding 3: the server\'s 101 reaches the browser as our own, with only the WebSocket headers; anything else is a 502', async () => {
  const head = (p: string) => raw(ports().ui, `GET ${p} HTTP/1.1\r\nhost: ${NAME}:${ports().ui}\r\nupgrade: websocket\r\n`
    + `connection: Upgrade\r\norigin: ${proxy.ui}\r\ncookie: ${cookie()}\r\nsec-websocket-key: x\r\nsec-websocket-version: 13\r\n\r\n`)
  const ok = await head('/ws-cookie')
  assert.equal(ok, 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: abc\r\n\r\n')
  const refused = await head('/ws-refused')
  assert.match(refused, /^HTTP\/1\.1 502 Bad Gateway\r\n/)
  assert.match(refused, /\r\ncontent-security-policy: default-src 'self'/)
  assert.doesNotMatch(refused, /set-cookie/i)
  assert.match(await raw(ports().ui, `GET / HTTP/1.1\r\nhost: ${NAME}:${ports().ui}\r\nupgrade: h2c\r\nconnection: Upgrade\r\n`
    + `origin: ${proxy.ui}\r\ncookie: ${cookie()}\r\n\r\n`), /^HTTP\/1\.1 400 /, 'only WebSocket upgrades')
})

test('finding 4: no-store on every response; Cache-Control, Expires, ETag and Last-Modified never pass', async () => {
  const r = await uiGet('/cache')
  assert.equal(r.headers['cache-control'], 'no-store')
  for (const k of ['expires', 'etag', 'last-modified']) assert.equal(r.headers[k], undefined, k)
  assert.equal((await uiGet('/', { cookie: '' })).headers['cache-control'], 'no-store', 'refusals too')
})

test('finding 6: a Location the browser would resolve off-origin never leaves; a same-origin one goes out absolute', async () => {
  for (const to of ['/.//evil/x', '/x/..//evil/x', '/./\\evil/x', '//evil/x', '/\\evil/x', 'http://evil/x', `${proxy.ui.replace('http:', 'https:')}/x`]) {
    const r = await uiGet('/loc/' + encodeURIComponent(to))
    const got = r.headers.location
    assert.ok(got === undefined || new URL(got).origin === proxy.ui, `${to} -> ${got}`)
    assert.ok(got === undefined || got.startsWith(proxy.ui + '/'), `${to} -> ${got} is absolute`)
  }
  assert.equal((await uiGet('/loc/' + encodeURIComponent('/a/../b?c#d'))).headers.location, `${proxy.ui}/b?c#d`)
})

test('finding 7: a 205 is sent without a body, and what the server smuggled after it never reaches the browser', async () => {
  const r = await raw(ports().ui, `GET /205 HTTP/1.1\r\nhost: ${NAME}:${ports().ui}\r\ncookie: ${cookie()}\r\n\r\n`
    + `GET / HTTP/1.1\r\nhost: ${NAME}:${ports().ui}\r\ncookie: ${cookie()}\r\nconnection: close\r\n\r\n`)
  assert.match(r, /^HTTP\/1\.1 205 Reset Content\r\n/)
  assert.doesNotMatch(r, /planted|evil!/)
  assert.match(r, /\r\n\r\nok$/, 'the next request on the connection is answered normally')
})

test('finding 8: a server that answers `Connection: close` or HTTP/1.0 and closes later: 50 of 50 requests answered', async () => {
  for (const p of ['/close', '/http10']) {
    const codes: number[] = []
    for (let i = 0; i < 50; i++) codes.push((await uiGet(p)).status)
    assert.deepEqual(codes, Array(50).fill(200), p)
  }
})

test('finding 9: requests abandoned before the bridge answers free their upstream sockets', async () => {
  const port = (backend.address() as net.AddressInfo).port
  const slow = forwarder(port, { delay: 100 })
  const p = await startProxy({ socketPath: slow, port: 0, token: TOKEN, name: NAME })
  const before = live.size
  const ui = +new URL(p.ui).port
  for (let i = 0; i < 50; i++) {
    const req = http.get({ host: '127.0.0.1', port: ui, path: '/hang', agent: false,
      headers: { host: `${NAME}:${ui}`, cookie: `pernosco-${new URL(p.shell).port}=${TOKEN}` } }).on('error', () => {})
    setTimeout(() => req.destroy(), 10)
  }
  await new Promise(ok => setTimeout(ok, 600))
  assert.ok(live.size - before <= 16, `${live.size - before} upstream sockets held for 50 abandoned requests (at most 16 pooled)`)
  p.close()
})

test('finding 10: a server that never answers gets a 504 after the upstream timeout; a head over node\'s limit is a 502', async () => {
  const port = (backend.address() as net.AddressInfo).port
  const p = await startProxy({ socketPath: forwarder(port), port: 0, token: TOKEN, name: NAME,
    timeouts: { upstream: 200, pooled: 1000, browser: 5000 } })
  const ui = +new URL(p.ui).port
  const r = await raw(ui, `GET /hang HTTP/1.1\r\nhost: ${NAME}:${ui}\r\ncookie: pernosco-${new URL(p.shell).port}=${TOKEN}\r\nconnection: close\r\n\r\n`)
  assert.match(r, /^HTTP\/1\.1 504 Gateway Timeout\r\n/)
  assert.match(r, /\r\nx-content-type-options: nosniff\r\n/)
  p.close()
  const huge = await uiGet('/huge-head')
  assert.equal(huge.status, 502)
  assert.equal(huge.headers['cache-control'], 'no-store')
})

test('finding 10: the bridge child exits: nothing throws, `died` settles; one that never says ready rejects `ready`', async () => {
  const b = realSys().bridge([process.execPath, '-e', 'process.send("ready"); setTimeout(() => process.exit(0), 50)'])
  await b.ready
  await b.died
  b.close()
  const c = realSys().bridge([process.execPath, '-e', 'process.exit(1)'])
  await assert.rejects(c.ready, /the bridge could not enter the server's network namespace/)
  await c.died
})

test('review: a server that closes at once (the bridge drops the connection): a 502, never a crash', async () => {
  const empty = forwarder(1, { drop: true })
  const p = await startProxy({ socketPath: empty, port: 0, token: TOKEN, name: NAME })
  const ui = +new URL(p.ui).port
  for (let i = 0; i < 20; i++) {
    const r = await raw(ui, `GET / HTTP/1.1\r\nhost: ${NAME}:${ui}\r\ncookie: pernosco-${new URL(p.shell).port}=${TOKEN}\r\nconnection: close\r\n\r\n`)
    assert.match(r, /^HTTP\/1\.1 502 /)
  }
  p.close()
})

test('review: a 101 to a plain request is a 502 at once, not a hang until the timeout', async () => {
  const t0 = Date.now()
  assert.equal((await uiGet('/101')).status, 502)
  assert.ok(Date.now() - t0 < 2000)
  await alive()
})
