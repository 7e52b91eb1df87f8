/**
 * Context hand-off (SPEC.md §17) on the replica's `context` map: each session publishes what it
 * has done and learnt (a summary, files, decisions) under its own PeerId, so the map holds every
 * member's latest hand-off and no member can write another's (the schema ties key to signer).
 */
import { TypedEventEmitter } from 'main-event'
import type * as Y from 'yjs'
import { InvalidMessageError } from '../errors.js'
import { CheckedMap } from '../state/checked.js'
import * as c from '../state/constants.js'
import type { Origin, Replica } from '../state/replica.js'
import type { StoredContext as Stored } from '../state/schema.js'

export interface HandOff {
  peer: string
  name: string
  summary: string
  files: string[]
  decisions: string[]
  at: number
}
export interface HandOffInput {
  summary: string
  files?: string[]
  decisions?: string[]
}
export interface ContextChange {
  peer: string
  local: boolean
}
export interface ContextEvents {
  'context:change': CustomEvent<ContextChange>
}

export class SharedContext extends TypedEventEmitter<ContextEvents> {
  private readonly map: Y.Map<Stored>
  private readonly checked: CheckedMap<Stored>

  constructor(
    private readonly replica: Replica,
    private readonly publish: (envelope: Uint8Array) => void
  ) {
    super()
    this.map = replica.doc.getMap('context')
    this.checked = new CheckedMap(this.map as Y.Map<unknown>, 'context')
    this.map.observe((evt, tr) => {
      const local = (tr.origin as Origin | undefined)?.local === true
      for (const peer of evt.keysChanged) this.safeDispatchEvent('context:change', { detail: { peer, local } })
    })
  }

  get size(): number {
    let n = 0
    for (const _ of this.checked.entries()) n++
    return n
  }

  get skipped(): number {
    return this.checked.skipped
  }

  /** Publish this session's hand-off, replacing its previous one. */
  async share(input: HandOffInput, name: string): Promise<HandOff> {
    const stored: Stored = { ...checkHandOff(input), name: name.slice(0, 64), by: this.replica.selfId, at: Date.now() }
    const env = await this.replica.change(() => {
      this.map.set(this.replica.selfId, stored)
    })
    if (env != null) this.publish(env)
    return handOff(this.replica.selfId, stored)
  }

  get(peer: string): HandOff | undefined {
    const s = this.checked.get(peer)
    return s == null ? undefined : handOff(peer, s)
  }

  /** Every member's latest hand-off, newest first. */
  list(): HandOff[] {
    return [...this.checked.entries()].map(([k, s]) => handOff(k, s)).sort((a, b) => b.at - a.at)
  }
}

/** The checks every peer applies (schema.ts), made here first with clear messages; returns the stored fields. */
export function checkHandOff(input: HandOffInput): Pick<Stored, 'summary' | 'files' | 'decisions'> {
  const summary = typeof input.summary === 'string' ? input.summary : ''
  if (summary.trim() === '') throw new InvalidMessageError('a hand-off needs a summary')
  if (Buffer.byteLength(JSON.stringify(summary)) > c.MAX_CONTEXT_SUMMARY_BYTES)
    throw new InvalidMessageError(`the summary is at most ${c.MAX_CONTEXT_SUMMARY_BYTES} bytes (as JSON)`)
  const files = [...new Set((input.files ?? []).map(f => f.trim()).filter(f => f !== ''))]
  const decisions = (input.decisions ?? []).map(d => d.trim()).filter(d => d !== '')
  if (files.length > c.MAX_CONTEXT_FILES || files.some(f => f.length > c.MAX_CONTEXT_FILE_CHARS))
    throw new InvalidMessageError(`at most ${c.MAX_CONTEXT_FILES} files of at most ${c.MAX_CONTEXT_FILE_CHARS} characters`)
  if (decisions.length > c.MAX_CONTEXT_DECISIONS || decisions.some(d => d.length > c.MAX_CONTEXT_DECISION_CHARS))
    throw new InvalidMessageError(`at most ${c.MAX_CONTEXT_DECISIONS} decisions of at most ${c.MAX_CONTEXT_DECISION_CHARS} characters`)
  return { summary, files, decisions }
}

/** A hand-off as one message body (sent as a DM when it goes to one peer, §17.2). */
export function handOffText(name: string, h: Pick<Stored, 'summary' | 'files' | 'decisions'>): string {
  const parts = [`Context hand-off from ${name}:`, h.summary]
  if (h.files.length > 0) parts.push(`Files:\n${h.files.map(f => `- ${f}`).join('\n')}`)
  if (h.decisions.length > 0) parts.push(`Decisions:\n${h.decisions.map(d => `- ${d}`).join('\n')}`)
  return parts.join('\n\n')
}

function handOff(peer: string, s: Stored): HandOff {
  return { peer, name: s.name, summary: s.summary, files: s.files, decisions: s.decisions, at: s.at }
}
