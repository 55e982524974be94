// The serve proxy in-process, against a local backend standing in for the app server
// (through a TCP "bridge"): header allowlist, forced headers on every status, token → cookie,
// 401/403 paths, Host/Origin checks, streaming with bounded memory, WebSocket pass-through.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { fork } from 'node:child_process'
import crypto from 'node:crypto'
import { startProxy, forcedHeaders, CSP, KEEP_HEADERS, PERMISSIONS, GUARD } from '../pernosco.mts'
import { forwarder, ROOT } from './helpers.mts'

const TOKEN = 'a'.repeat(64)
let backend: http.Server, proxy: Awaited<ReturnType<typeof startProxy>>
let seen: http.IncomingHttpHeaders[] = []
before(async () => {
  backend = http.createServer((req, res) => {
    seen.push(req.headers)
    const u = new URL(req.url!, 'http://x')
    if (u.pathname === '/big') {
      let left = +u.searchParams.get('n')!
      const chunk = Buffer.alloc(1 << 20, 120)
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': left })
      const pump = () => { while (left > 0) { left -= chunk.length; if (!res.write(chunk)) return res.once('drain', pump) } res.end() }
      return pump()
    }
    if (u.pathname === '/body') { let n = 0; req.on('data', d => { n += d.length }).on('end', () => res.end(`got ${n}`)); return }
    res.writeHead(+(u.searchParams.get('status') ?? 200), JSON.parse(u.searchParams.get('h') ?? '{}')).end(req.method === 'HEAD' ? undefined : 'backend body')
  })
  backend.on('upgrade', (req, sock) => {
    upgraded.push(sock)
    sock.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n')
    sock.on('data', d => sock.write(`echo:${d}`))
  })
  await new Promise<void>(ok => backend.listen(0, '127.0.0.1', ok))
  proxy = await startProxy({ socketPath: forwarder((backend.address() as net.AddressInfo).port), port: 0, token: TOKEN, name: 'pernosco-test.localhost' })
})
const upgraded: import("node:stream").Duplex[] = []
after(() => { proxy.close(); backend.close(); backend.closeAllConnections(); for (const s of upgraded) s.destroy() })

interface Res { status: number; headers: http.IncomingHttpHeaders; body: string }
function request(url: string, o: { method?: string; headers?: Record<string, string>; cookie?: boolean; body?: string } = {}): Promise<Res> {
  const u = new URL(url)
  const headers = { host: u.host, ...o.cookie === false ? {} : { cookie: `other=1; pernosco-${new URL(proxy.shell).port}=${TOKEN}` }, ...o.headers }
  return new Promise((ok, no) => {
    // *.localhost is loopback in browsers (RFC 6761); node's resolver does not know that, so connect by address.
    const req = http.request({ host: '127.0.0.1', port: u.port, path: u.pathname + u.search, method: o.method ?? 'GET', headers, agent: false }, res => {
      let body = ''
      res.setEncoding('latin1').on('data', d => { body += d }).on('end', () => ok({ status: res.statusCode!, headers: res.headers, body }))
    }).on('error', no)
    req.end(o.body)
  })
}
const ui = (p: string, o?: Parameters<typeof request>[1]) => request(proxy.ui + p, o)
const q = (status: number, h: object) => `/x?status=${status}&h=${encodeURIComponent(JSON.stringify(h))}`

/** The UI's forced headers; `named` false: a refusal's, whose policy names no origin (issue 28). */
function assertForced(r: Res, what: string, named = true) {
  const F = forcedHeaders([...CSP, `frame-ancestors ${named ? proxy.shell : "'none'"}`].join('; '))
  for (const [k, v] of Object.entries(F)) assert.equal(r.headers[k], v, `${what}: ${k}`)
}

test('token in the URL → HttpOnly SameSite=Strict cookie and a redirect to the bare URL; the shell frames the UI sandboxed', async () => {
  const r = await request(proxy.url, { cookie: false })
  assert.equal(r.status, 302)
  assert.equal(r.headers.location, '/')
  assert.deepEqual(r.headers['set-cookie'], [`pernosco-${new URL(proxy.shell).port}=${TOKEN}; HttpOnly; SameSite=Strict; Path=/`])
  const chromium = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/152.0.0.0 Safari/537.36'
  const s = await request(proxy.shell + '/', { headers: { 'user-agent': chromium } })
  assert.equal(s.status, 200)
  const frame = `<iframe src="${proxy.ui}/" sandbox="allow-scripts allow-same-origin allow-forms allow-downloads"></iframe>`
  assert.ok(s.body.endsWith(`</style>${frame}`), 'Chromium >= 152 (it enforces webrtc=block): the frame itself')
  const hash = crypto.createHash('sha256').update(GUARD).digest('base64')
  assert.equal(s.headers['content-security-policy'], `default-src 'none'; frame-src ${proxy.ui}; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; script-src 'sha256-${hash}'`)
  // issue 21: any other browser gets the frame in a template, the explanation, and the guard that frames it only where
  // RTCPeerConnection does not exist (WebRTC switched off); the guard runs by its hash, nothing else can.
  for (const ua of [chromium.replace('152', '151'), 'Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0', undefined]) {
    const o = await request(proxy.shell + '/', { headers: ua ? { 'user-agent': ua } : {} })
    assert.ok(o.body.endsWith(`</style><template>${frame}</template><p>Not shown: this browser lets any page use WebRTC, a way out no header closes here. `
      + 'Firefox: set media.peerconnection.enabled to false (about:config, or its Preferences policy); reload. '
      + `Or use Chromium 152 or later, or restart serve with --allow-webrtc-leak (README).</p><script>${GUARD}</script>`), `${ua}: ${o.body}`)
  }
  assert.equal(s.headers['connection-allowlist'], `(response-origin "${proxy.ui}/*");webrtc=block`)
  assert.match(proxy.url, /^http:\/\/pernosco-test\.localhost:\d+\/\?token=a{64}$/)
})

test('401 without a valid token or cookie, and the backend never sees the request', async () => {
  seen = []
  const wrong = `pernosco-${new URL(proxy.shell).port}=${'b'.repeat(64)}`
  for (const [name, r] of [
    ['shell, no cookie', await request(proxy.shell + '/', { cookie: false })],
    ['shell, wrong token', await request(proxy.shell + '/?token=' + 'b'.repeat(64), { cookie: false })],
    ['shell, short token', await request(proxy.shell + '/?token=a', { cookie: false })],
    ['ui, no cookie', await ui('/', { cookie: false })],
    ['ui, wrong cookie', await ui('/', { headers: { cookie: wrong } })],
    ['ui, token in URL is not a cookie', await ui('/?token=' + TOKEN, { cookie: false })],
    ['ui, cookie of another name', await ui('/', { headers: { cookie: `pernosco-1=${TOKEN}` } })],
  ] as const) { assert.equal(r.status, 401, name); assert.equal(r.headers['cache-control'], 'no-store') }
  assert.deepEqual(seen, [])
})

test('Host must be serve\'s own name and port (DNS rebinding); Origin must match on non-GET', async () => {
  seen = []
  assert.equal((await ui('/', { headers: { host: 'evil.example:' + new URL(proxy.ui).port } })).status, 403)
  assert.equal((await ui('/', { headers: { host: 'pernosco-test.localhost' } })).status, 403, 'port is part of Host')
  assert.equal((await ui('/', { headers: { host: '127.0.0.1:' + new URL(proxy.ui).port } })).status, 403, 'not even the address: only our name')
  assert.equal((await ui('/', { headers: { host: new URL(proxy.shell).host } })).status, 403, 'shell host on the UI port')
  assert.equal((await request(proxy.shell + '/', { headers: { host: 'evil.example' } })).status, 403)
  assert.equal((await ui('/', { method: 'POST', body: 'x' })).status, 403, 'POST without Origin')
  assert.equal((await ui('/', { method: 'POST', body: 'x', headers: { origin: 'http://evil.example' } })).status, 403)
  assert.equal((await ui('/', { method: 'DELETE', headers: { origin: proxy.shell } })).status, 403, 'the shell origin is not the UI origin')
  assert.equal((await ui('/sw.js', { headers: { 'service-worker': 'script' } })).status, 403, 'service workers refused')
  assert.deepEqual(seen, [])
  assert.equal((await ui('/', { headers: { host: 'pernosco.test:' + new URL(proxy.ui).port } })).status, 403, 'no other name (serve.hosts is gone)')
  assert.equal((await ui('/')).status, 200, 'serve\'s own name')
  const post = await ui('/body', { method: 'POST', body: 'hello', headers: { origin: proxy.ui } })
  assert.deepEqual([post.status, post.body], [200, 'got 5'])
  assert.equal(seen.length, 2)
  assert.equal((seen as http.IncomingHttpHeaders[])[1].cookie, undefined, 'our cookie never reaches the container')
})

test('a top-level navigation to the UI goes back into the sandboxed frame', async () => {
  const r = await ui('/', { headers: { 'sec-fetch-dest': 'document' } })
  assert.deepEqual([r.status, r.headers.location], [302, proxy.shell + '/'])
  assert.equal((await ui('/', { headers: { 'sec-fetch-dest': 'iframe' } })).status, 200)
})

test('response headers: an allowlist passes, everything else is dropped, ours are forced', async () => {
  const hostile: Record<string, string> = {
    'content-security-policy': "default-src *", 'content-security-policy-report-only': "default-src 'none'; report-uri http://evil/",
    'report-to': '{"url":"http://evil/"}', 'reporting-endpoints': 'a="http://evil/"', nel: '{}', link: '<http://evil/>; rel=preconnect',
    refresh: '0;url=http://evil/', 'service-worker-allowed': '/', 'access-control-allow-origin': '*', 'set-cookie': 'a=b; Domain=evil',
    'x-dns-prefetch-control': 'on', 'referrer-policy': 'unsafe-url', 'cross-origin-embedder-policy': 'require-corp', 'speculation-rules': '"/x.json"',
    'permissions-policy': 'camera=*', 'connection-allowlist': '(*)', 'x-frame-options': 'ALLOWALL', 'timing-allow-origin': '*',
  }
  const kept: Record<string, string> = { 'content-type': 'text/html', 'content-encoding': 'identity', 'content-range': 'bytes 0-11/12', 'accept-ranges': 'bytes', vary: 'accept' }
  // Nothing the server sends may outlive the session in the browser: caching and its validators are dropped, no-store forced.
  Object.assign(hostile, { etag: '"1"', 'last-modified': 'Tue, 01 Jan 2030 00:00:00 GMT', 'cache-control': 'max-age=31536000, immutable', expires: 'Tue, 01 Jan 2030 00:00:00 GMT' })
  const r = await ui(q(200, { ...hostile, ...kept }))
  assert.equal(r.body, 'backend body')
  assertForced(r, '200')
  for (const [k, v] of Object.entries(kept)) assert.equal(r.headers[k], v, k)
  for (const k of Object.keys(hostile)) if (!(k in forcedHeaders(''))) assert.equal(r.headers[k], undefined, k)
  assert.equal(r.headers['cache-control'], 'no-store')
  assert.ok(KEEP_HEADERS.every(k => k in kept || ['content-length', 'date'].includes(k)))
  assert.match(PERMISSIONS, /camera=\(\)/)
  assert.ok(!CSP.join(';').match(/report-uri|report-to|\*/), 'no reporting, no wildcard')
})

test('forced headers on every status, redirects keep only a same-origin Location', async () => {
  for (const [status, h, loc] of [[200, {}, undefined], [204, {}, undefined], [206, {}, undefined], [301, { location: '/a?b#c' }, 'PROXY/a?b#c'],
    [302, { location: 'http://evil.example/x' }, undefined], [303, { location: '//evil.example/x' }, undefined], [307, { location: 'PROXY/same' }, 'PROXY/same'],
    [304, { etag: '"1"' }, undefined], [400, {}, undefined], [404, {}, undefined], [500, {}, undefined], [503, {}, undefined]] as const) {
    const r = await ui(q(status, 'location' in h ? { location: h.location.replace('PROXY', proxy.ui) } : h))
    assert.equal(r.status, status)
    assertForced(r, String(status))
    assert.equal(r.headers.location, loc?.replace('PROXY', proxy.ui), `${status} location`)
  }
  for (const r of [await ui('/', { cookie: false }), await ui('/', { headers: { host: 'x' } })]) assertForced(r, 'refusal', false)
})

test('502 with forced headers when the server does not answer', async () => {
  const dead = await startProxy({ socketPath: forwarder(1), port: 0, token: TOKEN, name: 'pernosco-test.localhost' })
  const r = await request(dead.ui + '/', { headers: { cookie: `pernosco-${new URL(dead.shell).port}=${TOKEN}` } })
  assert.equal(r.status, 502)
  assert.equal(r.headers['x-content-type-options'], 'nosniff')
  dead.close()
})

test('a 1 GiB body streams through a proxy process whose memory stays bounded', { timeout: 120_000 }, async () => {
  // The proxy runs in its own process (test/fixtures/proxy-child.mts), which samples its RSS every 10 ms.
  const child = fork(path.join(ROOT, 'test/fixtures/proxy-child.mts'), [String((backend.address() as net.AddressInfo).port), TOKEN], { execArgv: ['--import', 'tsx'] })
  const msg = <T,>() => new Promise<T>(ok => child.once('message', m => ok(m as T)))
  const p = await msg<{ ui: string; shell: string }>()
  const stream = async (n: number) => {
    child.send('reset')
    await msg<number>()
    let got = 0
    await new Promise<void>((ok, no) => http.get({ host: '127.0.0.1', port: new URL(p.ui).port, path: `/big?n=${n}`, agent: false,
      headers: { host: new URL(p.ui).host, cookie: `pernosco-${new URL(p.shell).port}=${TOKEN}` } }, res => {
      res.on('data', d => { got += d.length }).on('end', ok).on('error', no)
    }).on('error', no))
    assert.equal(got, n)
    child.send('peak')
    return await msg<number>() / 2 ** 20
  }
  // A fresh process first grows its heap to a working size (V8's young generation, glibc's arenas): 40-55 MiB
  // over its first body on Node 20, 70-96 MiB on Node 24. A warm-up body takes that out, so what is measured is
  // what buffering would show: growth with the size of the body (after it: 0-24 MiB on Node 20, 28-58 on 24).
  const warm = await stream(1 << 26)
  const small = await stream(1 << 28), big = await stream(1 << 30)
  child.kill()
  console.log(`# proxy RSS growth: ${warm.toFixed(1)} MiB for a 64 MiB warm-up, then ${small.toFixed(1)} MiB for 256 MiB, ${big.toFixed(1)} MiB for 1 GiB`)
  // node's HTTP client allocates a buffer per read; young-generation GC runs every ~32 MiB (README, Performance).
  assert.ok(small < 64 && big < 64, `proxy RSS grew ${small} MiB for 256 MiB, ${big} MiB for 1 GiB: the bound is 64`)
})

test('WebSocket upgrades pass after the same checks', async () => {
  const port = +new URL(proxy.ui).port, port2 = new URL(proxy.shell).port
  const handshake = (headers: string) => new Promise<string>(ok => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`GET /ws HTTP/1.1\r\nhost: ${new URL(proxy.ui).host}\r\nupgrade: websocket\r\nconnection: Upgrade\r\n${headers}\r\n`))
    let got = ''
    s.on('data', d => { got += d; if (got.includes('\r\n\r\n') && !got.includes('echo') && got.startsWith('HTTP/1.1 101')) s.write('ping'); if (got.includes('echo:ping') || !got.startsWith('HTTP/1.1 101')) s.destroy() })
    s.on('close', () => ok(got))
  })
  const ok = await handshake(`origin: ${proxy.ui}\r\ncookie: pernosco-${port2}=${TOKEN}\r\n`)
  assert.match(ok, /^HTTP\/1\.1 101 /)
  assert.match(ok, /echo:ping$/)
  assert.match(await handshake(`origin: http://evil.example\r\ncookie: pernosco-${port2}=${TOKEN}\r\n`), /^HTTP\/1\.1 403 /)
  assert.match(await handshake(`origin: ${proxy.ui}\r\n`), /^HTTP\/1\.1 401 /)
  assert.equal(seen.at(-1)?.cookie, undefined)
})

test('a busy port is a clear error', async () => {
  await assert.rejects(startProxy({ socketPath: forwarder(1), port: +new URL(proxy.shell).port, token: TOKEN, name: 'x.localhost' }), /cannot listen on 127\.0\.0\.1:\d+: listen EADDRINUSE/)
})

