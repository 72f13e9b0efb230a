// What the pre-training and linear-evaluation runs share: stopping after the current iteration,
// on request or when an AbortSignal fires.
import { EventEmitter } from 'events';

export class StoppableRun extends EventEmitter {
  protected stopReason: string | undefined;
  private readonly abortListener = () => {
    const reason = this.signal?.reason;
    this.stop(typeof reason === 'string' ? reason : 'aborted');
  };

  constructor(private readonly signal: AbortSignal | undefined) {
    super();
    if (signal) {
      if (signal.aborted) this.abortListener();
      else signal.addEventListener('abort', this.abortListener, { once: true });
    }
  }

  /** Ask the run to stop after the current iteration (a checkpoint is written). */
  stop(reason = 'stop requested'): void {
    if (!this.stopReason) this.stopReason = reason;
  }

  get stopping(): boolean {
    return this.stopReason !== undefined;
  }

  /** Stops listening to the signal (at the end of a run). */
  protected detachSignal(): void {
    this.signal?.removeEventListener('abort', this.abortListener);
  }
}
