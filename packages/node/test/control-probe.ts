/**
 * A session's CLI or hook asking its node, for flood.test.ts: calls `info` on a control socket
 * every 200 ms for `ms` and reports each round trip. In a process of its own, so what it
 * measures is the node's answer, not the test process's own event loop (it hosts 19 nodes).
 */
import '../src/polyfill.js'
import { ControlClient } from '../src/control/client.js'

const { path, ms } = JSON.parse(process.argv[2] as string) as { path: string; ms: number }
const client = await ControlClient.connect(path)
const latencies: number[] = []
const t0 = Date.now()
while (Date.now() - t0 < ms) {
  const s = Date.now()
  await client.call('info')
  latencies.push(Date.now() - s)
  await new Promise(resolve => setTimeout(resolve, 200))
}
client.close()
process.send?.({ latencies })
process.disconnect()
