// What the pre-training and linear-evaluation runs share: run() around the loop, and stopping
// after the current iteration on request or when an AbortSignal fires.
import { EventEmitter } from 'events';
import { RunLock, lockRunFolder, removeStaleTempFiles } from './run-lock';

export abstract class StoppableRun<R> extends EventEmitter {
  protected stopReason: string | undefined;
  private lock: RunLock | undefined;
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

  /** Runs to the end (or until stopped); the signal and the folder lock are released either way. */
  async run(): Promise<R> {
    try {
      return await this.runInner();
    } finally {
      this.signal?.removeEventListener('abort', this.abortListener);
      this.lock?.release();
      this.lock = undefined;
    }
  }

  /** Takes the output folder (which must exist) for this run, refusing when another run holds it,
   *  and removes checkpoint temp files that killed runs left there. Idempotent. */
  protected lockFolder(dir: string, what: string): void {
    if (this.lock) return;
    this.lock = lockRunFolder(dir, what);
    removeStaleTempFiles(dir);
  }

  protected abstract runInner(): Promise<R>;
}
