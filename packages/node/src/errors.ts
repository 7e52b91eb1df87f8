/**
 * One class per condition, matched by `.name` (the js-libp2p convention), never by a code.
 * Messages are one clear line meant for a human: the CLI prints them as they are.
 */
function named(name: string): new (message: string) => Error {
  return class extends Error {
    constructor(message: string) {
      super(message)
      this.name = name
    }
  }
}

export class InvalidNameError extends named('InvalidNameError') {}
export class MeshNotFoundError extends named('MeshNotFoundError') {}
export class MeshExistsError extends named('MeshExistsError') {}
export class InvalidInviteError extends named('InvalidInviteError') {}
export class ExpiredInviteError extends named('ExpiredInviteError') {}
export class InvalidKeyFileError extends named('InvalidKeyFileError') {}
export class FrameTooLargeError extends named('FrameTooLargeError') {}
export class MalformedFrameError extends named('MalformedFrameError') {}
export class InvalidSignatureError extends named('InvalidSignatureError') {}
export class ControlError extends named('ControlError') {}
export class UnknownRecipientError extends named('UnknownRecipientError') {}
export class AmbiguousRecipientError extends named('AmbiguousRecipientError') {}
export class MessageTooLargeError extends named('MessageTooLargeError') {}
export class InvalidMessageError extends named('InvalidMessageError') {}
export class RateLimitedError extends named('RateLimitedError') {}
/** A path under the home that another local user owns or can write: refused before use (SPEC.md §3.1). */
export class UnsafePathError extends named('UnsafePathError') {}
/** A newer incarnation of this session runs (or waits for the store): a courier is not needed. */
export class SupersededError extends named('SupersededError') {}
/** No task has that id (or the prefix names none, or several). */
export class UnknownTaskError extends named('UnknownTaskError') {}
/** The task is not in a state that allows this (held by another, blocked, done, cancelled, assigned elsewhere). */
export class TaskStateError extends named('TaskStateError') {}
/** No message with that id was sent from this session. */
export class UnknownMessageError extends named('UnknownMessageError') {}
/** No memory note with that id (or it was already forgotten). */
export class UnknownNoteError extends named('UnknownNoteError') {}
/** The node joined with a relay invite: it holds no content key, so it cannot message or share state. */
export class NoContentKeyError extends named('NoContentKeyError') {}
/** The store on disk was written by a newer claudemesh, or has a layout no migration reaches. */
export class StoreVersionError extends named('StoreVersionError') {}
/** The operation does not apply to this node as it was started (started twice, no control socket). */
export class NodeStateError extends named('NodeStateError') {}
/** Another live session holds an overlapping reservation that this one may not share (SPEC.md §15.3). */
export class ReservationConflictError extends named('ReservationConflictError') {}
/** A file above the size cap (SPEC.md §16.5). */
export class FileTooLargeError extends named('FileTooLargeError') {}
/** No reachable member holds that file id, or it is not a file id (SPEC.md §16). */
export class UnknownFileError extends named('UnknownFileError') {}
/** The file's key is not wrapped for this session or any group it is in (SPEC.md §16.1). */
export class FileAccessError extends named('FileAccessError') {}
/** A flood limit (`--limit`, a node's `limits`) that is unknown or out of its bounds (SPEC.md §8.8). */
export class InvalidLimitError extends named('InvalidLimitError') {}
