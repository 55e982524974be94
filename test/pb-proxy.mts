// scratch: proxy alone in a process (argv: backend port) for profiling
import { startProxy } from '../pernosco.mts'
import { tcpBridge } from './helpers.mts'
const p = await startProxy({ bridge: tcpBridge(+process.argv[2]), port: 0, token: 'a'.repeat(64), name: 'x.localhost', names: [] })
console.log(JSON.stringify({ ui: p.ui, cookie: `pernosco-${new URL(p.shell).port}=${'a'.repeat(64)}` }))
setTimeout(() => { p.close(); process.exit(0) }, +process.argv[3]).unref?.()
await new Promise(r => setTimeout(r, +process.argv[3]))
