/**
 * Flood control (SPEC.md §8.8): per-sender rate and byte budgets for DMs and group messages,
 * keyed by the sender's authenticated session key, and a block for a sender that keeps
 * sending after it was told to back off. The inbox caps (per sender and in total) are checked
 * here too, from counts the inbox keeps in memory. Nothing here touches the disk: a verdict
 * costs a few map lookups, so a flood is refused for less than it costs to store it.
 */
import { TypedEventEmitter } from 'main-event'
import { REFUSED_WINDOW, WINDOW } from './constants.js'

export interface Budget {
  /** messages per second, sustained */
  rate: number
  /** messages allowed at once */
  burst: number
  /** bytes per second, sustained */
  byteRate: number
  /** bytes allowed at once */
  byteBurst: number
}

export interface FloodLimits {
  /** what one sender's DMs may cost this node */
  dm: Budget
  /** what one author's group messages may cost this node (a sender limits itself to half) */
  group: Budget
  /** unread messages one sender may have in the inbox */
  senderUnread: number
  senderUnreadBytes: number
  /** unread messages in the inbox in total (senders below `floorUnread` are still admitted) */
  totalUnread: number
  totalUnreadBytes: number
  /** a sender with fewer unread messages than this is admitted even when the inbox is full */
  floorUnread: number
  /** after a refusal, messages already on the wire may still arrive for this long */
  graceMs: number
  /** messages refused after the grace period before the sender is blocked */
  blockAfter: number
  /** the first block lasts this long; each later one doubles, up to 16× */
  blockMs: number
}

export const DEFAULT_LIMITS: FloodLimits = {
  dm: { rate: 50, burst: 200, byteRate: 1 << 20, byteBurst: 8 << 20 },
  group: { rate: 20, burst: 200, byteRate: 512 << 10, byteBurst: 4 << 20 },
  senderUnread: 1000,
  senderUnreadBytes: 16 << 20,
  totalUnread: 10_000,
  totalUnreadBytes: 128 << 20,
  floorUnread: 50,
  graceMs: 1_000,
  blockAfter: 100,
  blockMs: 60_000
}

/** Why a message was refused (the `why` of an `x` frame, SPEC.md §8.3). */
export type RefuseWhy = 'rate' | 'inbox-full' | 'blocked'
export type Verdict = { ok: true } | { ok: false; why: RefuseWhy; retryMs: number }

/** Unread counts the inbox keeps (SPEC.md §8.4), read for the caps. */
export interface UnreadCounts {
  of: (sender: string) => { count: number; bytes: number }
  total: () => { count: number; bytes: number }
}

class Bucket {
  private tokens: number
  private bytes: number
  private at: number
  constructor(
    private readonly b: Budget,
    now: number
  ) {
    this.tokens = b.burst
    this.bytes = b.byteBurst
    this.at = now
  }

  private refill(now: number): void {
    const dt = Math.max(0, now - this.at) / 1000
    this.at = now
    this.tokens = Math.min(this.b.burst, this.tokens + dt * this.b.rate)
    this.bytes = Math.min(this.b.byteBurst, this.bytes + dt * this.b.byteRate)
  }

  could(size: number, now: number): boolean {
    this.refill(now)
    return this.tokens >= 1 && this.bytes >= size
  }

  take(size: number, now: number): boolean {
    this.refill(now)
    if (this.tokens < 1 || this.bytes < size) return false
    this.tokens -= 1
    this.bytes -= size
    return true
  }

  /** ms until a quarter of the burst is back: long enough that a retry is not refused at once */
  refillMs(): number {
    const want = Math.max(0, this.b.burst / 4 - this.tokens) / this.b.rate
    const wantBytes = Math.max(0, this.b.byteBurst / 4 - this.bytes) / this.b.byteRate
    return Math.ceil(Math.max(want, wantBytes) * 1000)
  }
}

interface SenderState {
  dm?: Bucket
  group?: Bucket
  /** refusing everything from this sender until then (keeps its messages in order) */
  refuseUntil: number
  refuseWhy: RefuseWhy
  /** when the current DM refusal episode started */
  since: number
  /** refusals in this episode, and whether an earlier episode ended less than `blockMs` ago */
  episodeRefused: number
  repeat: boolean
  /** messages refused past the grace period of their episode, counted since `strikesSince` */
  strikes: number
  strikesSince: number
  blockedUntil: number
  blocks: number
  refused: number
  dropped: number
  seen: number
}

export interface FloodReport {
  peer: string
  refused: number
  dropped: number
  blockedUntil?: number
}

export interface FloodEvents {
  'flood:block': CustomEvent<{ peer: string; until: number; refused: number }>
}

export class FloodGuard extends TypedEventEmitter<FloodEvents> {
  readonly limits: FloodLimits
  private readonly senders = new Map<string, SenderState>()
  private readonly selfBucket: Bucket
  /** the inbox's counts, once the messaging layer exists */
  unread?: UnreadCounts

  constructor(limits: Partial<FloodLimits> = {}) {
    super()
    this.limits = { ...DEFAULT_LIMITS, ...limits }
    const g = this.limits.group
    this.selfBucket = new Bucket(
      { rate: g.rate / 2, burst: Math.max(1, Math.floor(g.burst / 2)), byteRate: g.byteRate / 2, byteBurst: g.byteBurst / 2 },
      Date.now()
    )
  }

  private state(peer: string, now: number): SenderState {
    let s = this.senders.get(peer)
    if (s == null) {
      s = {
        refuseUntil: 0,
        refuseWhy: 'rate',
        since: 0,
        episodeRefused: 0,
        repeat: false,
        strikes: 0,
        strikesSince: 0,
        blockedUntil: 0,
        blocks: 0,
        refused: 0,
        dropped: 0,
        seen: now
      }
      this.senders.set(peer, s)
    }
    s.seen = now
    return s
  }

  blocked(peer: string, now = Date.now()): boolean {
    return (this.senders.get(peer)?.blockedUntil ?? 0) > now
  }

  /** gossipsub's app-specific score: a blocked peer is graylisted (SPEC.md §9.3) */
  score(peer: string): number {
    return this.blocked(peer) ? -1000 : 0
  }

  /**
   * Before any decryption: a sender that is blocked, or inside a refusal period, is refused
   * at once (so a flood costs a map lookup per message, not an AEAD open).
   */
  earlyDm(peer: string, now = Date.now()): Verdict {
    const s = this.senders.get(peer)
    if (s == null || (s.blockedUntil <= now && s.refuseUntil <= now)) return { ok: true }
    return this.refuse(peer, s, s.blockedUntil > now ? 'blocked' : s.refuseWhy, Math.max(s.blockedUntil, s.refuseUntil) - now, now)
  }

  /**
   * Before the signature check: whether a group message by `author` could be accepted at all.
   * An author out of budget is refused unverified (a forger gains nothing: nothing is charged),
   * and counted toward a block when it came from that author's own connection.
   */
  earlyGroup(author: string, size: number, direct: boolean, now = Date.now()): 'accept' | 'ignore' | 'reject' {
    const s = this.senders.get(author)
    if (s == null) return 'accept'
    if (s.blockedUntil > now) return direct ? 'reject' : 'ignore'
    if (s.group == null || s.group.could(size, now)) return 'accept'
    return this.dropGroup(author, s, direct, now)
  }

  /** A DM from `peer` of `size` bytes (authenticated, not a duplicate): store it or refuse it? */
  admitDm(peer: string, size: number, now = Date.now()): Verdict {
    const s = this.state(peer, now)
    if (s.blockedUntil > now) return this.refuse(peer, s, 'blocked', s.blockedUntil - now, now)
    if (s.refuseUntil > now) return this.refuse(peer, s, s.refuseWhy, s.refuseUntil - now, now)
    s.dm ??= new Bucket(this.limits.dm, now)
    // an episode outlasts its grace period twice, so a sender that ignores it collects strikes
    if (!s.dm.take(size, now)) return this.refuse(peer, s, 'rate', Math.max(2 * this.limits.graceMs, s.dm.refillMs()), now)
    if (!this.room(peer, size)) return this.refuse(peer, s, 'inbox-full', 30_000, now)
    return { ok: true }
  }

  /**
   * A group message by `author` (signature verified, not a duplicate); `direct` when it came
   * from the author itself. Over budget it is not stored or forwarded; a direct sender that
   * keeps going is blocked.
   */
  admitGroup(author: string, size: number, direct: boolean, now = Date.now()): 'accept' | 'ignore' | 'reject' {
    const s = this.state(author, now)
    if (s.blockedUntil > now) return direct ? 'reject' : 'ignore'
    s.group ??= new Bucket(this.limits.group, now)
    if (s.group.take(size, now)) return 'accept'
    return this.dropGroup(author, s, direct, now)
  }

  /**
   * A group message past its author's budget. An honest sender limits itself to half that
   * budget (selfGroup), so one that came from the author's own connection is a strike at once.
   */
  private dropGroup(author: string, s: SenderState, direct: boolean, now: number): 'ignore' | 'reject' {
    s.dropped++
    if (!direct) return 'ignore'
    this.count(author, s, now, false)
    return 'reject'
  }

  /** Whether the inbox caps let one more message from `peer` in (group messages: dropped if not). */
  room(peer: string, size: number): boolean {
    if (this.unread == null) return true
    const l = this.limits
    const mine = this.unread.of(peer)
    if (mine.count >= l.senderUnread || mine.bytes + size > l.senderUnreadBytes) return false
    if (mine.count < l.floorUnread) return true
    const all = this.unread.total()
    return all.count < l.totalUnread && all.bytes + size <= l.totalUnreadBytes
  }

  /** A group message dropped for the inbox caps: counted for the model's note. */
  drop(peer: string): void {
    this.state(peer, Date.now()).dropped++
  }

  /** This session's own group sends: half the budget receivers allow, so none is dropped. */
  selfGroup(size: number, now = Date.now()): number | undefined {
    return this.selfBucket.take(size, now) ? undefined : Math.max(1_000, this.selfBucket.refillMs())
  }

  private refuse(peer: string, s: SenderState, why: RefuseWhy, retryMs: number, now: number): Verdict {
    s.refused++
    if (s.refuseUntil <= now && why !== 'blocked') {
      // a new episode: everything from this sender is refused until it may retry
      s.repeat = s.refuseUntil > 0 && now - s.refuseUntil < this.limits.blockMs
      s.since = now
      s.episodeRefused = 0
      s.refuseUntil = now + retryMs
      s.refuseWhy = why
    }
    this.count(peer, s, now)
    return { ok: false, why: s.blockedUntil > now ? 'blocked' : why, retryMs: Math.ceil(retryMs) }
  }

  /**
   * One more message past the budget. Within the grace period of its episode it may have been
   * on the wire before the sender heard of the refusal; after it, the sender ignores us: a
   * strike. Strikes add up across episodes (for `blockMs`), so a sender cannot dodge the block
   * by pausing just long enough to start a new episode.
   */
  private count(peer: string, s: SenderState, now: number, grace = true): void {
    if (s.blockedUntil > now) return
    if (grace && !this.pastGrace(s, now)) return
    if (now - s.strikesSince > this.limits.blockMs) {
      s.strikesSince = now
      s.strikes = 0
    }
    if (++s.strikes < this.limits.blockAfter) return
    const until = now + this.limits.blockMs * 2 ** Math.min(s.blocks, 4)
    s.blocks++
    s.blockedUntil = until
    s.refuseUntil = until
    s.refuseWhy = 'blocked'
    s.strikes = 0
    this.safeDispatchEvent('flood:block', { detail: { peer, until, refused: s.refused } })
  }

  /**
   * Whether a refused DM is more than an honest sender could have had on the wire when it
   * heard of the refusal: later than `graceMs` into the episode (by our clock), or, counted
   * so a recipient too busy to read promptly still notices, more than the channel window
   * (SPEC.md §8.3) in a first episode and more than `REFUSED_WINDOW` in a repeated one.
   */
  private pastGrace(s: SenderState, now: number): boolean {
    s.episodeRefused++
    if (now - s.since >= this.limits.graceMs) return true
    return s.episodeRefused > (s.repeat ? REFUSED_WINDOW : WINDOW)
  }

  /** Senders that were refused or dropped, for the model and `info` (most first). */
  report(now = Date.now()): FloodReport[] {
    const out: FloodReport[] = []
    for (const [peer, s] of this.senders) {
      if (s.refused + s.dropped === 0) continue
      out.push({ peer, refused: s.refused, dropped: s.dropped, ...(s.blockedUntil > now ? { blockedUntil: s.blockedUntil } : {}) })
    }
    return out.sort((a, b) => b.refused + b.dropped - a.refused - a.dropped)
  }

  /** Forget senders idle for an hour (called periodically); blocked ones are kept. */
  prune(now = Date.now()): void {
    for (const [peer, s] of this.senders) if (now - s.seen > 3_600_000 && s.blockedUntil <= now) this.senders.delete(peer)
  }
}
