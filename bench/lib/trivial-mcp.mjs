// Baseline for bench/mcp.mjs: the smallest useful MCP stdio server, built with the same SDK
// (resolved from packages/cli, as `claudemesh mcp` gets it) and one tool. Nothing on stdout but MCP.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { importFrom } from './resolve.mjs'

const cli = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'packages', 'cli')
const [{ McpServer }, { StdioServerTransport }] = await Promise.all([
  importFrom(cli, '@modelcontextprotocol/sdk/server/mcp.js'),
  importFrom(cli, '@modelcontextprotocol/sdk/server/stdio.js')
])
const server = new McpServer({ name: 'trivial', version: '0.0.0' })
server.registerTool('ping', { description: 'answers pong' }, async () => ({ content: [{ type: 'text', text: 'pong' }] }))
const transport = new StdioServerTransport()
transport.onclose = () => {
  process.exit(0)
}
process.stdin.once('end', () => {
  process.exit(0)
})
await server.connect(transport)
