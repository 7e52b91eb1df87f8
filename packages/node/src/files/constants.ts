/** File sharing: protocol id and limits (SPEC.md §16). */

export const fileProtocol = (meshId: string): string => `/claudemesh/${meshId}/file/1.0.0`

/** Chunk size a sharer writes (SPEC.md §16.1): measured against 256 KiB in bench/files.mjs. */
export const CHUNK_BYTES = 1024 * 1024
/** Smallest and largest chunk size a reader accepts in a manifest. */
export const MIN_CHUNK_BYTES = 16 * 1024
export const MAX_CHUNK_BYTES = 4 * 1024 * 1024
/** Most chunks in one file, and so most hashes in a manifest. */
export const MAX_CHUNKS = 16_384
/** Key wraps in one manifest: peers and groups. */
export const MAX_PEER_WRAPS = 256
export const MAX_GROUP_WRAPS = 64
/** An encoded manifest: ~34 bytes a chunk hash, ~100 a key wrap. */
export const MAX_MANIFEST_BYTES = 1024 * 1024
/** The sealed name and plaintext hash inside a manifest. */
export const MAX_META_BYTES = 2048
export const MAX_NAME_LENGTH = 255
/** Seal overhead of a chunk: nonce and tag (§8.2's construction). */
export const SEAL_OVERHEAD = 28
/** One frame on a file stream: a sealed chunk of the largest size, or a manifest and its bitmap. */
export const MAX_FILE_FRAME_BYTES = MAX_CHUNK_BYTES + SEAL_OVERHEAD + 1024
/** A request frame (query or chunk list). */
export const MAX_REQUEST_BYTES = 4096
/** Most chunk indices in one request. */
export const MAX_REQUEST_CHUNKS = 64
/** Bytes of chunks a fetcher has asked for and not yet read: its credit window (backpressure). */
export const WINDOW_BYTES = 8 * 1024 * 1024
/** Inbound file streams a holder accepts per connection. */
export const MAX_INBOUND_STREAMS = 8
/** Each read on a file stream must complete within this (a slow relay still moves 1 MiB in it). */
export const READ_TIMEOUT_MS = 30_000
/** How many holders a get asks, sharer first, then connected and online members. */
export const MAX_CANDIDATES = 16

/** Default largest file, changeable per node (`maxFileBytes`, CLAUDEMESH_MAX_FILE_MB). */
export const DEFAULT_MAX_FILE_BYTES = 100 * 1000 * 1000
/** No configured cap goes above this: MAX_CHUNKS chunks of CHUNK_BYTES. */
export const HARD_MAX_FILE_BYTES = MAX_CHUNKS * CHUNK_BYTES

export const FILE_CONTEXT = 'claudemesh/file/v1\0'
