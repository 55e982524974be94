// Load generator for bench/run.mts: node bench/client.mts MODE URL [COOKIE]; prints one JSON line.
// MODE: wait (until it answers), latency (sequential small GETs on one keep-alive connection), rps (16 keep-alive connections
// for 3 s), bulk (one GET of 256 MiB, or N bytes given as the 4th argument). Bounded in count and time.
import http from 'node:http'

const [mode, url, cookie = '', bytes = String(256 << 20)] = process.argv.slice(2)
const u = new URL(url), headers = { host: u.host, ...cookie ? { cookie } : {} }
const get = (agent: http.Agent, path: string) => new Promise<number>((ok, no) => {
  const t = process.hrtime.bigint()
  http.get({ host: u.hostname, port: u.port, path, agent, headers }, res => {
    let n = 0
    res.on('data', d => { n += d.length }).on('end', () => res.statusCode === 200 ? ok(Number(process.hrtime.bigint() - t) / 1e6 + 0 * n) : no(new Error(`HTTP ${res.statusCode}`)))
  }).on('error', no)
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
} else {
  const agent = new http.Agent({ keepAlive: false }), ms = await get(agent, `/big?n=${bytes}`)
  console.log(JSON.stringify({ mbps: +bytes / 2 ** 20 / (ms / 1000) }))
}
