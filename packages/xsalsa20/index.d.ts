export interface XSalsa20Stream {
  update: (input: Uint8Array, output?: Uint8Array) => Uint8Array
  finalize: () => void
  final: () => void
}
declare function XSalsa20(nonce: Uint8Array, key: Uint8Array): XSalsa20Stream
declare namespace XSalsa20 {
  const NONCEBYTES: number
  const KEYBYTES: number
}
export default XSalsa20
