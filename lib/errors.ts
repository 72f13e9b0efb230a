// Errors a user can act on. The CLIs print their message alone (no stack) and exit non-zero;
// anything else is a bug and is printed with its stack.

/** A problem with the user's input: a flag, an experiment file, a dataset, a checkpoint. */
export class UserError extends Error {
  constructor(message: string, readonly hint?: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** An experiment that does not validate: names the file and every offending key. */
export class ExperimentError extends UserError {
  constructor(
    message: string,
    readonly file: string | undefined,
    readonly issues: { key: string; message: string }[] = [],
  ) {
    super(message);
    this.name = 'ExperimentError';
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof Error && (e.name === 'UserError' || e.name === 'ExperimentError');
}

/** The message of anything thrown (Error or not). */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
