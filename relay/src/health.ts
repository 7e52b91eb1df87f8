/**
 * The health check: `GET /health` answers 200 with the relay's state as JSON while it runs
 * and 503 once it is stopping, for systemd watchdogs, container HEALTHCHECKs and monitors.
 */
import { createServer, type Server } from 'node:http'

export async function serveHealth(
  hostPort: string,
  report: () => { ok: boolean } & Record<string, unknown>
): Promise<{ server: Server; url: string }> {
  const m = /^(?:(.*):)?(\d+)$/.exec(hostPort)
  if (m == null) throw new Error(`--health wants HOST:PORT or PORT, not "${hostPort}"`)
  const host = m[1] != null && m[1] !== '' ? m[1].replace(/^\[|\]$/g, '') : '127.0.0.1'
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/health' && req.url !== '/')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found: GET /health"}\n')
      return
    }
    const body = report()
    res.writeHead(body.ok ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(Number(m[2]), host, () => {
      resolve()
    })
  })
  const addr = server.address()
  const port = typeof addr === 'object' && addr != null ? addr.port : Number(m[2])
  return { server, url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/health` }
}
