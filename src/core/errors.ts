/**
 * Errors a user can act on. The command line prints their message alone (no stack trace) and exits with
 * status 2; every other error is a bug and shows its stack.
 */
export class UserError extends Error {
  override name = 'UserError';
}

/** A command-line option, approach parameter or configuration value that is unknown or out of range. */
export class OptionError extends UserError {
  override name = 'OptionError';
}
