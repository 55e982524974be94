// Issue 16's findings on serve's proxy, each reproduced from outside with raw sockets: node's own answers
// (431, 400, 417, a missing Host) carry the forced headers or none is sent; both loopback families are ours;
// refused WebSocket upgrades are closed; the upstream timeout counts from the request's arrival; a 205 says
// it has no body. Each failed before its fix (watched).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import crypto from 'node:crypto'
import { startProxy, forcedHeaders, CSP, GUARD } from '../pernosco.mts'
import { forwarder, rawServer } from './helpers.mts'

const TOKEN = 'e'.repeat(64)
const NAME = 'pernosco-attack2.localhost'
let backend: net.Server
const live = new Set<net.Socket>()
let proxy: Awaited<ReturnType<typeof startProxy>>
/** A raw app server: /205 answers a 205 with a length; /hang never answers; anything else a 200. */
before(async () => {
  backend = rawServer(live, (p, s) => {
    if (p === '/hang') return
    if (p === '/205') return s.write('HTTP/1.1 205 Reset Content\r\nContent-Length: 40\r\n\r\n' + 'x'.repeat(40))
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
  })
  await new Promise<void>(ok => backend.listen(0, '127.0.0.1', ok))
  proxy = await open(forwarder(backendPort()))
})
after(() => {
  proxy.close()
  backend.close()
  for (const s of live) s.destroy()
})
const backendPort = () => (backend.address() as net.AddressInfo).port
const open = (socketPath: string, o: { port?: number; upstream?: number } = {}) =>
  startProxy({ socketPath, port: o.port ?? 0, token: TOKEN, name: NAME,
    timeouts: { upstream: o.upstream ?? 300_000, pooled: 30_000, browser: 300_000 } })
type Proxy = Awaited<ReturnType<typeof open>>
const portsOf = (p: Proxy) => ({ shell: +new URL(p.shell).port, ui: +new URL(p.ui).port })
const cookieOf = (p: Proxy) => `pernosco-${portsOf(p).shell}=${TOKEN}`

/** Raw bytes to host:port; resolves with all it got back and whether the server closed within `ms`. */
function raw(port: number, bytes: string, o: { host?: string; ms?: number; then?: string } = {}) {
  return new Promise<{ got: string; closed: boolean; ms: number }>(ok => {
    let got = ''
    const t0 = Date.now()
    // Half-open allowed: like a hostile client, this one never closes its side because the server did.
    const s = net.connect({ port, host: o.host ?? '127.0.0.1', allowHalfOpen: true }, () => s.write(bytes))
    if (o.then) s.once('data', () => setTimeout(() => s.write(o.then!), 100))
    // After the server's FIN, a byte every 200 ms: once serve has closed its side too, the kernel answers it
    // with a reset and this socket closes; a socket serve still holds open takes the bytes silently.
    s.on('end', () => {
      const poke = setInterval(() => s.write('x'), 200)
      s.once('close', () => clearInterval(poke))
    })
    const timer = setTimeout(() => {
      s.destroy()
      ok({ got, closed: false, ms: Date.now() - t0 })
    }, o.ms ?? 3000)
    s.on('data', d => { got += d }).on('error', () => {}).on('close', () => {
      clearTimeout(timer)
      ok({ got, closed: true, ms: Date.now() - t0 })
    })
  })
}
/** The head of each response in a raw answer: status line and lower-cased headers. */
function heads(got: string) {
  return got.split(/(?=HTTP\/1\.1 \d{3} )/).filter(Boolean).map(r => {
    const [status, ...lines] = r.split('\r\n\r\n')[0].split('\r\n')
    return { status, h: Object.fromEntries(lines.map(l => [l.split(': ')[0].toLowerCase(), l.slice(l.indexOf(': ') + 2)])) }
  })
}
const UF = () => forcedHeaders([...CSP, `frame-ancestors ${proxy.shell}`].join('; '))
const SF = () => forcedHeaders(`default-src 'none'; frame-src ${proxy.ui}; style-src 'unsafe-inline'; base-uri 'none'; `
  + `form-action 'none'; frame-ancestors 'none'; script-src 'sha256-${crypto.createHash('sha256').update(GUARD).digest('base64')}'`, ` "${proxy.ui}/*"`)
// What a client that has not shown the right Host and token gets (issue 28): the same policies, naming no origin.
const UF0 = () => forcedHeaders([...CSP, "frame-ancestors 'none'"].join('; '))
const SF0 = () => forcedHeaders("default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
function assertForced(h: Record<string, string>, forced: object, what: string) {
  for (const [k, v] of Object.entries(forced)) assert.equal(h[k], v, `${what}: ${k}`)
}

test('finding 1: node\'s own answers (431 head too large, 400 parse error, 400 no Host, 417 Expect) carry the forced headers, on both ports', async () => {
  const long = 'a'.repeat(17_000)
  for (const [which, port, forced] of [['ui', portsOf(proxy).ui, UF0()], ['shell', portsOf(proxy).shell, SF0()]] as const) {
    const host = `host: ${NAME}:${port}\r\ncookie: ${cookieOf(proxy)}\r\n`
    const cases: [string, string, RegExp][] = [
      ['a request head over 16 KiB (the frame with a long URL)', `GET /x?${long} HTTP/1.1\r\n${host}\r\n`, /^HTTP\/1\.1 431 /],
      ['a request node cannot parse', 'GET / HTTP/1.1\r\nbad header line\r\n\r\n', /^HTTP\/1\.1 400 /],
      ['HTTP/1.1 without Host', 'GET / HTTP/1.1\r\nconnection: close\r\n\r\n', /^HTTP\/1\.1 403 /],
      ['an Expect node does not know', `GET / HTTP/1.1\r\n${host}expect: something\r\nconnection: close\r\n\r\n`, /^HTTP\/1\.1 417 /],
    ]
    for (const [what, bytes, status] of cases) {
      const r = await raw(port, bytes)
      assert.match(r.got, status, `${which}: ${what}`)
      assertForced(heads(r.got)[0].h, forced, `${which}: ${what}`)
      assert.ok(r.closed, `${which}: ${what}: the connection ends`)
    }
  }
})

test('finding 1: a client error on a connection that already answered, or with an answer pending: every head there is ours, then it closes', async () => {
  const { ui } = portsOf(proxy)
  const ok = `GET / HTTP/1.1\r\nhost: ${NAME}:${ui}\r\ncookie: ${cookieOf(proxy)}\r\n\r\n`
  const bad = `GET /x?${'a'.repeat(17_000)} HTTP/1.1\r\nhost: ${NAME}:${ui}\r\n\r\n`
  const after = await raw(ui, ok, { then: bad })
  assert.deepEqual(heads(after.got).map(h => h.status), ['HTTP/1.1 200 OK'], 'no head after a response: closed instead')
  assert.ok(after.closed)
  const pipelined = await raw(ui, ok + bad)
  assert.ok(heads(pipelined.got).length >= 1)
  for (const h of heads(pipelined.got)) assertForced(h.h, / 200 /.test(h.status) ? UF() : UF0(), `pipelined: ${h.status}`)
  assert.ok(pipelined.closed)
})

test('finding 2: both loopback families on the same ports, each answering with the forced headers', async () => {
  for (const port of Object.values(portsOf(proxy))) {
    for (const host of ['127.0.0.1', '::1']) {
      const r = await raw(port, `GET /nothing HTTP/1.1\r\nhost: ${NAME}:${port}\r\nconnection: close\r\n\r\n`, { host })
      assert.match(r.got, /^HTTP\/1\.1 (401|404) /, `${host} port ${port}`)
      assert.equal(heads(r.got)[0].h['cache-control'], 'no-store')
    }
  }
})

test('finding 2: a squatter on [::1]:PORT: serve refuses with one clear line instead of leaving ::1 to it', async () => {
  const squatter = net.createServer()
  await new Promise<void>(ok => squatter.listen(0, '::1', ok))
  const port = (squatter.address() as net.AddressInfo).port
  const free = await new Promise<boolean>(ok => { const s = net.createServer().once('error', () => ok(false)).listen(port, '127.0.0.1', () => s.close(() => ok(true))) })
  try {
    if (!free) return // 127.0.0.1 on that port is taken by someone else: nothing to learn here
    await assert.rejects(open(forwarder(backendPort()), { port }), new RegExp(`cannot listen on \\[::1\\]:${port}: .*another program holds it`))
    // The shell's 127.0.0.1 listener was closed again: the port is free on IPv4.
    const again = await new Promise<boolean>(ok => { const s = net.createServer().once('error', () => ok(false)).listen(port, '127.0.0.1', () => s.close(() => ok(true))) })
    assert.ok(again, '127.0.0.1 released')
    // The same squatter on the UI's port (the shell's + 1): the shell's listeners are closed again too.
    const shellFree = await new Promise<boolean>(ok => { const s = net.createServer().once('error', () => ok(false)).listen(port - 1, '127.0.0.1', () => s.close(() => ok(true))) })
    if (shellFree) {
      await assert.rejects(open(forwarder(backendPort()), { port: port - 1 }), new RegExp(`cannot listen on \\[::1\\]:${port}: `))
      const released = await new Promise<boolean>(ok => { const s = net.createServer().once('error', () => ok(false)).listen(port - 1, '127.0.0.1', () => s.close(() => ok(true))) })
      assert.ok(released, 'the shell port released after the UI port failed')
    }
  } finally {
    squatter.close()
  }
})

test('finding 7: refused WebSocket upgrades are answered and closed, even by a client that never closes', async () => {
  const { ui } = portsOf(proxy)
  const tries = await Promise.all(Array.from({ length: 20 }, () => raw(ui, `GET / HTTP/1.1\r\nhost: ${NAME}:${ui}\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n`, { ms: 4000 })))
  for (const r of tries) {
    assert.match(r.got, /^HTTP\/1\.1 401 /)
    assertForced(heads(r.got)[0].h, UF0(), 'refused upgrade')
    assert.ok(r.closed && r.ms < 3000, `closed by serve after ${r.ms} ms`)
  }
})

test('finding 7: an upgrade the server never answers gets a 504 after the upstream timeout, and is closed', async () => {
  const p = await open(forwarder(backendPort()), { upstream: 300 })
  const { ui } = portsOf(p)
  const r = await raw(ui, `GET /hang HTTP/1.1\r\nhost: ${NAME}:${ui}\r\nupgrade: websocket\r\nconnection: Upgrade\r\n`
    + `origin: ${p.ui}\r\ncookie: ${cookieOf(p)}\r\n\r\n`, { ms: 4000 })
  p.close()
  assert.match(r.got, /^HTTP\/1\.1 504 /)
  assert.ok(r.closed && r.ms < 2000, `closed after ${r.ms} ms`)
})

test('finding 8: the upstream timeout counts from the request\'s arrival, also while no upstream socket comes', async () => {
  const never = forwarder(backendPort(), { delay: 60_000 }) // a bridge that never reaches the server
  const p = await open(never, { upstream: 300 })
  const { ui } = portsOf(p)
  const r = await raw(ui, `GET / HTTP/1.1\r\nhost: ${NAME}:${ui}\r\ncookie: ${cookieOf(p)}\r\nconnection: close\r\n\r\n`, { ms: 4000 })
  p.close()
  assert.match(r.got, /^HTTP\/1\.1 504 /)
  assert.ok(r.ms < 2000, `answered after ${r.ms} ms`)
})

test('finding 8: at most 16 upstream sockets, also while they are still opening (200 requests at once)', async () => {
  const seen = { n: 0 }
  const p = await open(forwarder(backendPort(), { delay: 200, seen }))
  const { ui } = portsOf(p)
  const codes = await Promise.all(Array.from({ length: 200 }, () => new Promise<number>(ok => {
    http.get({ host: '127.0.0.1', port: ui, path: '/', agent: false, headers: { host: `${NAME}:${ui}`, cookie: cookieOf(p) } },
      r => r.resume().on('end', () => ok(r.statusCode!))).on('error', () => ok(0))
  })))
  p.close()
  assert.ok(seen.n <= 16, `${seen.n} upstream connections for 200 requests`)
  assert.deepEqual(codes, Array(200).fill(200), 'and every request is answered')
})

test('finding 9: a 205 goes out with content-length 0 and no body', async () => {
  const { ui } = portsOf(proxy)
  const r = await raw(ui, `GET /205 HTTP/1.1\r\nhost: ${NAME}:${ui}\r\ncookie: ${cookieOf(proxy)}\r\nconnection: close\r\n\r\n`)
  assert.match(r.got, /^HTTP\/1\.1 205 /)
  assert.equal(heads(r.got)[0].h['content-length'], '0')
  assert.ok(r.got.endsWith('\r\n\r\n'), 'no body')
  const browser = await new Promise<number>((ok, no) => http.get({ host: '127.0.0.1', port: ui, path: '/205', agent: false,
    headers: { host: `${NAME}:${ui}`, cookie: cookieOf(proxy) } }, res => res.resume().on('end', () => ok(res.statusCode!))).on('error', no))
  assert.equal(browser, 205, 'a client that trusts the length is not left waiting')
})
