/**
 * The system or library code of an error (`ECONNREFUSED`, `UND_ERR_SOCKET`, …): its own, else that
 * of the first of its aggregated errors that has one, else its cause's (a few levels deep).
 */
export function errorCode(error: unknown): string | null {
  return codeWithin(error, 0);
}

function codeWithin(error: unknown, depth: number): string | null {
  if (!error || typeof error !== 'object' || depth > 3) return null;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && code !== '') return code;
  // A host name with several addresses (localhost → ::1 and 127.0.0.1) fails as one AggregateError.
  if (error instanceof AggregateError) {
    for (const inner of error.errors) {
      const found = codeWithin(inner, depth + 1);
      if (found) return found;
    }
  }
  return codeWithin((error as { cause?: unknown }).cause, depth + 1);
}
