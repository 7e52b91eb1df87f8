/**
 * The two loops every stream writer here needs, written once: a pump that runs one writer at
 * a time and runs again when kicked meanwhile, and a flusher that batches what a turn of the
 * event loop queued (acks, receipts, refusals) into one write.
 */

/**
 * Runs `step` serially. A kick while it runs makes it run once more after, never twice at
 * once; `step` returning true asks for another round (more is queued than one write takes).
 * `step` handles its own errors: a throw ends the loop and is passed to `onError`.
 */
export class Pump {
  private running = false
  private again = false

  constructor(
    private readonly step: () => Promise<boolean>,
    private readonly onError: (err: Error) => void = () => {}
  ) {}

  /** whether a step is running now */
  get busy(): boolean {
    return this.running
  }

  kick(): void {
    if (this.running) {
      this.again = true
      return
    }
    void this.run()
  }

  private async run(): Promise<void> {
    this.running = true
    try {
      do {
        this.again = false
        if (await this.step()) this.again = true
      } while (this.again)
    } catch (err) {
      this.onError(err as Error)
    } finally {
      this.running = false
    }
  }
}

/**
 * Waits one turn of the event loop, so that what finished together (the commits of one group
 * write) goes out together, then writes what `drain` hands over until it hands over nothing.
 * What is queued while a write is in flight goes in the next round, not never.
 */
export class TurnFlusher {
  private flushing = false

  constructor(
    private readonly drain: () => Uint8Array[],
    private readonly write: (frames: Uint8Array[]) => Promise<void>,
    private readonly onError: (err: Error) => void
  ) {}

  flush(): void {
    if (this.flushing) return
    this.flushing = true
    setImmediate(() => {
      void this.run()
    })
  }

  private async run(): Promise<void> {
    try {
      while (true) {
        const frames = this.drain()
        if (frames.length === 0) break
        await this.write(frames)
      }
    } catch (err) {
      this.onError(err as Error)
    } finally {
      this.flushing = false
    }
  }
}
