// Canary listeners for the hostile tests. Prints one line "HIT <where> <data>" per attempt that
// reached it. Argument: "outside" (in the outside host's namespace: TCP 80, UDP 53 as DNS, UDP 5353)
// or "host" (loopback and bridge-side services of the test's own namespace, an abstract socket).
import net from 'node:net'
import dgram from 'node:dgram'

const hit = (where: string, data: Buffer | string) => console.log(`HIT ${where} ${JSON.stringify(String(data).slice(0, 200))}`)
const tcp = (port: number, host: string) => net.createServer(s => { s.on('data', d => hit(`tcp:${host}:${port}`, d)).on('error', () => {}); setTimeout(() => s.destroy(), 3000) }).listen(port, host)
/** A DNS query's name, read from the question section. */
const qname = (m: Buffer) => { const l: string[] = []; for (let i = 12; i < m.length && m[i]; i += m[i] + 1) l.push(m.subarray(i + 1, i + 1 + m[i]).toString()); return l.join('.') }
const udp = (port: number, host: string, dns = false) => dgram.createSocket('udp4').on('message', m => hit(`udp:${host}:${port}`, dns ? qname(m) : m)).bind(port, host)
if (process.argv[2] === 'outside') { tcp(80, '10.200.0.2'); udp(53, '10.200.0.2', true); udp(5353, '10.200.0.2') }
else {
  tcp(18950, '127.0.0.1'); tcp(18951, '0.0.0.0'); udp(18953, '127.0.0.1')
  net.createServer(s => s.on('data', d => hit('abstract:pmts-canary', d)).on('error', () => {})).listen('\0pmts-canary')
    .on('error', e => console.error(`# canary: abstract socket: ${e.message}`)).on('close', () => console.error('# canary: abstract socket closed'))
}
setTimeout(() => console.log('READY'), 200)
