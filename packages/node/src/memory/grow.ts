/** Typed arrays that grow by half again (not double: at 100k notes the slack is tens of MB). */
export type Growable = Int32Array | Uint32Array | Uint8Array | Uint16Array | Float64Array

export function grow<T extends Growable>(a: T, need: number): T {
  if (need <= a.length) return a
  const b = new (a.constructor as new (n: number) => T)(Math.max(need, a.length + (a.length >> 1), 16))
  b.set(a)
  return b
}
