/**
 * Where a remote update's items would land, found before it touches the document (SPEC.md
 * §11.1, step 6). A Yjs map entry written for the first time names its root and key; an
 * overwrite names only its origin (the entry it replaces), which may be in the same update,
 * in the document, or not held yet. So the check is read-only against the real document:
 * follow each item to the root map and key it joins, then check its value against that root's
 * schema. An update whose origins or earlier clocks are not held yet is not guessed at: it
 * waits (the replica retries it once they arrive), so Yjs never holds it as pending and a
 * refusal is the same on every replica, whatever the arrival order.
 */
import * as Y from 'yjs'
import { entryProblem } from './schema.js'

export type Placement =
  | { kind: 'ok' }
  /** try again once the document holds `clock` of `client` */
  | { kind: 'wait'; client: number; clock: number }
  | { kind: 'refuse'; reason: string }

interface Spot {
  root: string
  key: string
}
type Found = Spot | Exclude<Placement, { kind: 'ok' }>

/**
 * `structs` are the decoded update's items, all under `client` with one value each (checked by
 * `verifyUpdate`); `earlierHeld` is true when every earlier update of the author's stream is
 * held, so a clock it skips can never arrive.
 */
export function placeUpdate(doc: Y.Doc, structs: Y.Item[], client: number, earlierHeld: boolean): Placement {
  if (structs.length === 0) return { kind: 'ok' }
  const first = structs[0]?.id.clock ?? 0
  const next = Y.getState(doc.store, client)
  if (structs.some((s, i) => s.id.clock !== first + i)) return { kind: 'refuse', reason: 'an update whose clocks are not consecutive' }
  if (first < next) return { kind: 'refuse', reason: 'an update that rewrites clocks its author already used' }
  if (first > next)
    return earlierHeld
      ? { kind: 'refuse', reason: 'an update that skips clocks of its author' }
      : { kind: 'wait', client, clock: first - 1 }
  for (const s of structs) {
    const spot = findSpot(doc, structs, s, first)
    if ('kind' in spot) return spot
    const problem = entryProblem(spot.root, spot.key, (s.content as Y.ContentAny).arr[0])
    if (problem != null) return { kind: 'refuse', reason: problem }
  }
  return { kind: 'ok' }
}

/** Follow origins (inside the update, then in the document) to the root map and key. */
function findSpot(doc: Y.Doc, structs: Y.Item[], item: Y.Item, first: number): Found {
  let at = item
  for (let hops = 0; hops <= structs.length; hops++) {
    if (typeof at.parent === 'string')
      return typeof at.parentSub === 'string' ? { root: at.parent, key: at.parentSub } : { kind: 'refuse', reason: 'an item without a key' }
    for (const ref of [at.origin, at.rightOrigin]) {
      if (ref != null && !inUpdate(ref, item.id.client, first) && ref.clock >= Y.getState(doc.store, ref.client))
        return { kind: 'wait', client: ref.client, clock: ref.clock }
    }
    // Yjs takes the parent from the left neighbour when it is an item, else from the right
    const ref = at.origin ?? at.rightOrigin
    if (ref == null) return { kind: 'refuse', reason: 'an item placed nowhere' }
    if (!inUpdate(ref, item.id.client, first)) return spotInDoc(doc, ref)
    const inside = structs[ref.clock - first]
    if (inside == null) return { kind: 'refuse', reason: 'an item placed after a clock its update does not hold' }
    at = inside
  }
  return { kind: 'refuse', reason: 'an update whose items are placed in a loop' }
}

const inUpdate = (ref: Y.ID, client: number, first: number): boolean => ref.client === client && ref.clock >= first

function spotInDoc(doc: Y.Doc, ref: Y.ID): Found {
  const held = Y.getItem(doc.store, ref) as Y.Item | Y.GC
  if (!(held instanceof Y.Item)) return { kind: 'refuse', reason: 'an item placed next to garbage' }
  const parent = held.parent as Y.AbstractType<unknown> | null
  if (parent == null || parent._item != null || typeof held.parentSub !== 'string')
    return { kind: 'refuse', reason: 'an item placed next to something that is not a map entry' }
  for (const [name, type] of doc.share) if (type === parent) return { root: name, key: held.parentSub }
  return { kind: 'refuse', reason: 'an item placed next to something that is not a map entry' }
}
