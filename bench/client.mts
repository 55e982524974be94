// Load generator for bench/run.mts: node bench/client.mts MODE URL [COOKIE]; prints one JSON line.
// MODE: wait (until it answers), latency (sequential small GETs on one keep-alive connection), rps (16 keep-alive connections
// for 3 s), bulk (one GET of 256 MiB, or N bytes given as the 4th argument), page (a browser-like page load: 6 keep-alive
// connections, one 4 MiB script and 200 small requests; the wall time of the whole), ws (one WebSocket: 1000 round
// trips of a 32-byte message, after 50 to warm up), wsrate (16 WebSockets, each sending its next message when the
// last came back, for 3 s). Bounded in count and time.
// It always connects to 127.0.0.1 and sends the URL's host as Host (`serve` prints a *.localhost name, which browsers
// resolve to loopback but node's resolver does not).
import http from 'node:http'
import type net from 'node:net'

const [mode, url, cookie = '', bytes = String(256 << 20)] = process.argv.slice(2)
const u = new URL(url), headers = { host: u.host, ...cookie ? { cookie } : {} }
const get = (agent: http.Agent, path: string) => new Promise<number>((ok, no) => {
  const t = process.hrtime.bigint()
  http.get({ host: '127.0.0.1', port: u.port, path, agent, headers }, res => {
    let n = 0
    res.on('data', d => { n += d.length }).on('end', () => res.statusCode === 200 ? ok(Number(process.hrtime.bigint() - t) / 1e6 + 0 * n) : no(new Error(`HTTP ${res.statusCode}`)))
  }).on('error', no)
})
/** A WebSocket through the URL (Origin is the URL's own, as a browser's page there would send). */
const wsOpen = () => new Promise<net.Socket>((ok, no) => {
  const h = { ...headers, origin: u.origin, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'YmVuY2hiZW5jaGJlbmNoIQ==' }
  http.request({ host: '127.0.0.1', port: u.port, path: '/ws', headers: h, agent: false })
    .on('upgrade', (_res, sock, head) => { sock.setNoDelay().on('error', e => { console.error(e); process.exit(1) }); if (head.length) sock.unshift(head); ok(sock) })
    .on('response', r => no(new Error(`HTTP ${r.statusCode}`))).on('error', no).end()
})
const MSG = Buffer.from('x'.repeat(32)), MASK = Buffer.from([1, 2, 3, 4])
const FRAME = Buffer.concat([Buffer.from([0x81, 0x80 | MSG.length]), MASK, Buffer.from(MSG.map((b, i) => b ^ MASK[i & 3]))])
/** One round trip: a masked text frame out, its unmasked echo (2 + 32 bytes) back; ms. */
const roundTrip = (sock: net.Socket) => new Promise<number>(ok => {
  const t = process.hrtime.bigint()
  let got = 0
  const on = (d: Buffer) => { got += d.length; if (got >= 2 + MSG.length) { sock.off('data', on); ok(Number(process.hrtime.bigint() - t) / 1e6) } }
  sock.on('data', on)
  sock.write(FRAME)
})
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]
if (mode === 'wait') { // until the server answers: at most 10 s
  const agent = new http.Agent({ keepAlive: false })
  for (let i = 0; i < 1000; i++) { try { await get(agent, '/'); break } catch { await new Promise(r => setTimeout(r, 10)) } }
  console.log('{}')
} else if (mode === 'latency') {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 }), xs: number[] = []
  for (let i = 0; i < 50; i++) await get(agent, '/') // warm up
  for (let i = 0; i < 1000; i++) xs.push(await get(agent, '/'))
  console.log(JSON.stringify({ p50: pct(xs, 0.5), p99: pct(xs, 0.99) })); agent.destroy()
} else if (mode === 'rps') {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 }), xs: number[] = [], end = Date.now() + 3000
  await Promise.all(Array.from({ length: 16 }, async () => { while (Date.now() < end) xs.push(await get(agent, '/')) }))
  console.log(JSON.stringify({ rps: xs.length / 3, p50: pct(xs, 0.5), p99: pct(xs, 0.99) })); agent.destroy()
} else if (mode === 'ws') {
  const sock = await wsOpen(), xs: number[] = []
  for (let i = 0; i < 50; i++) await roundTrip(sock)
  for (let i = 0; i < 1000; i++) xs.push(await roundTrip(sock))
  console.log(JSON.stringify({ p50: pct(xs, 0.5), p99: pct(xs, 0.99) })); sock.destroy()
} else if (mode === 'wsrate') {
  const socks = await Promise.all(Array.from({ length: 16 }, wsOpen)), xs: number[] = []
  for (const s of socks) await roundTrip(s)
  const end = Date.now() + 3000
  await Promise.all(socks.map(async s => { while (Date.now() < end) xs.push(await roundTrip(s)) }))
  console.log(JSON.stringify({ rate: xs.length / 3, p50: pct(xs, 0.5), p99: pct(xs, 0.99) })); socks.forEach(s => s.destroy())
} else if (mode === 'page') {
  const xs: number[] = []
  for (let round = 0; round < 6; round++) { // the first is a warm-up
    const agent = new http.Agent({ keepAlive: true, maxSockets: 6 }), t = process.hrtime.bigint()
    await Promise.all([get(agent, `/big?n=${4 << 20}`), ...Array.from({ length: 200 }, (_, i) => get(agent, `/small-${i}`))])
    if (round) xs.push(Number(process.hrtime.bigint() - t) / 1e6)
    agent.destroy()
  }
  console.log(JSON.stringify({ ms: pct(xs, 0.5) }))
} else {
  const agent = new http.Agent({ keepAlive: false }), ms = await get(agent, `/big?n=${bytes}`)
  console.log(JSON.stringify({ mbps: +bytes / 2 ** 20 / (ms / 1000) }))
}
