/**
 * How a tool is registered under the contract (mission.md): zod input and output schemas,
 * `structuredContent` plus a one-line text, `isError` with a clear message for a throw, and
 * the unread summary on every result (except in off mode). The tool modules take a `ToolFn`.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import { z } from 'zod'
import type { Delivery } from './delivery.js'
import { line } from './fence.js'

const Unread = z.object({ count: z.number(), from: z.array(z.string()) }).optional()

type Handler<I> = (input: I) => Promise<{ data: Record<string, unknown>; text: string }>
export type ToolFn = <I extends z.ZodRawShape, O extends z.ZodRawShape>(
  name: string,
  description: string,
  input: I,
  output: O,
  handler: Handler<z.infer<z.ZodObject<I>>>,
  readOnly?: boolean
) => void

/** Register tools the contract's way: every result carries the unread summary; a throw is an isError line. */
export function toolRegistrar(server: McpServer, delivery: Delivery): ToolFn {
  return <I extends z.ZodRawShape, O extends z.ZodRawShape>(
    name: string,
    description: string,
    input: I,
    output: O,
    handler: Handler<z.infer<z.ZodObject<I>>>,
    readOnly = false
  ): void => {
    server.registerTool(
      name,
      {
        description,
        inputSchema: input,
        outputSchema: { ...output, unread: Unread },
        annotations: { readOnlyHint: readOnly }
      },
      (async (args: z.infer<z.ZodObject<I>>): Promise<CallToolResult> => {
        try {
          const { data, text } = await handler(args)
          const unread = delivery.mode === 'off' ? undefined : await delivery.unreadSummary()
          const structuredContent = unread != null && unread.count > 0 ? { ...data, unread } : data
          return { structuredContent, content: [{ type: 'text', text }] }
        } catch (err) {
          return { isError: true, content: [{ type: 'text', text: `${name}: ${line((err as Error).message, 1000)}` }] }
        }
      }) as never
    )
  }
}
