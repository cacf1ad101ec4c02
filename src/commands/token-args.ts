/** `streamgate token …`: its usage and arguments (no heavy imports: `--help` answers at once). */

export const TOKEN_USAGE = [
  'streamgate token create <name> --role viewer|operator|admin [--expires-at <ISO 8601>]',
  '                                  prints the new token (only) on stdout; it is never shown again',
  'streamgate token list             every stored token: id, name, role, created, expires, last used',
  'streamgate token revoke <id>      deletes the token (running servers refuse it within 10 s)',
].join('\n');

export type TokenCommand =
  | { action: 'create'; name: string; role: string; expiresAt: Date | null }
  | { action: 'list' }
  | { action: 'revoke'; id: string };

/** The arguments after `token`, checked before anything is opened; a string is the usage error. */
export function parseTokenArgs(args: string[]): TokenCommand | string {
  const [action, ...rest] = args;
  const flag = (name: string): string | undefined => {
    const at = rest.indexOf(name);
    return at >= 0 ? rest[at + 1] : undefined;
  };
  const positional = rest.filter((arg, i) => !arg.startsWith('--') && !rest[i - 1]?.startsWith('--'));
  switch (action) {
    case 'create': {
      const [name] = positional;
      const role = flag('--role');
      const expires = flag('--expires-at');
      if (!name || !role) return 'token create needs a name and --role';
      const expiresAt = expires === undefined ? null : new Date(expires);
      if (expiresAt && Number.isNaN(expiresAt.getTime())) return `--expires-at "${expires}" is not a date`;
      return { action, name, role, expiresAt };
    }
    case 'list':
      return { action };
    case 'revoke':
      return positional[0] ? { action, id: positional[0] } : 'token revoke needs the token id (see token list)';
    default:
      return `unknown token command "${action ?? ''}"`;
  }
}
