/**
 * The local control protocol (SPEC.md §7): newline-delimited JSON over a unix socket that
 * only the owner can open (0600 in a 0700 directory). One request per line,
 * `{id, method, params}`; one response per request, `{id, ok, result}` or
 * `{id, ok: false, error: {name, message}}`; responses may come out of order.
 */
import { StringDecoder } from 'node:string_decoder'
import * as z from 'zod/mini'

export const MAX_CONTROL_LINE = 4 * 1024 * 1024

export const RequestSchema = z.object({
  id: z.int(),
  method: z.string().check(z.maxLength(64)),
  params: z.optional(z.unknown())
})
export type ControlRequest = z.infer<typeof RequestSchema>

export const ResponseSchema = z.union([
  z.object({ id: z.int(), ok: z.literal(true), result: z.unknown() }),
  z.object({ id: z.int(), ok: z.literal(false), error: z.object({ name: z.string(), message: z.string() }) })
])
export type ControlResponse = z.infer<typeof ResponseSchema>

/** Split a byte stream into lines, refusing any line longer than `max`. */
export function lineSplitter(onLine: (line: string) => void, onOverflow: () => void, max = MAX_CONTROL_LINE): (chunk: Buffer) => void {
  let buf = ''
  const decoder = new StringDecoder('utf8') // never splits a multi-byte character across chunks
  return chunk => {
    buf += decoder.write(chunk)
    let i: number
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      if (line.trim() !== '') onLine(line)
    }
    if (buf.length > max) {
      buf = ''
      onOverflow()
    }
  }
}
