/**
 * @packageDocumentation
 *
 * The claudemesh MCP server: exposes a running mesh node to Claude Code as tools, writes the
 * session's instructions, and pushes peer messages through channels, hooks and tool results.
 *
 * @example
 *
 * ```ts
 * import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
 * const server = await ClaudemeshServer.create(node, { mode: 'push' })
 * await server.connect(new StdioServerTransport())
 * ```
 */
export { Delivery, eligible, fenceMessage, MODES, type MessageMode, notice, type Opportunity } from './delivery.js'
export { fence, sanitize } from './fence.js'
export { COORDINATION_GUIDE, instructions, MAX_INSTRUCTIONS } from './instructions.js'
export { ClaudemeshServer, type ClaudemeshServerInit, VERSION } from './server.js'
