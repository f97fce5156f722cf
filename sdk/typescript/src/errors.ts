import type { ErrorCode } from "./types.js";

/**
 * An error from keyward or about reaching it. code is keyward's stable
 * error code: the problem's code for an error response, "unavailable" when
 * keyward cannot be reached or did not answer in time, "invalid" for bad
 * options.
 */
export class KeywardError extends Error {
  /** keyward's error code, e.g. "unauthorized", "not_found", "unavailable". */
  readonly code: ErrorCode;
  /** The HTTP status keyward answered, when it answered. */
  readonly status: number | undefined;

  constructor(code: ErrorCode, message: string, options?: { status?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "KeywardError";
    this.code = code;
    this.status = options?.status;
  }
}

/** The code of err when it is a KeywardError, else undefined. */
export function errorCode(err: unknown): ErrorCode | undefined {
  return err instanceof KeywardError ? err.code : undefined;
}

/** codeOfStatus derives a code for an error response without one, as the Go client does. */
export function codeOfStatus(status: number): ErrorCode {
  switch (status) {
    case 400:
    case 405:
    case 415:
      return "invalid";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 409:
      return "conflict";
    case 413:
      return "too_large";
    case 429:
      return "rate_limited";
    case 502:
    case 503:
    case 504:
      return "unavailable";
  }
  return "internal";
}
