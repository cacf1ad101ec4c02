import ipaddr from 'ipaddr.js';

export type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

/**
 * Denied unless OUTBOUND_ALLOW names them: link-local (where cloud metadata services live) and
 * AWS's IPv6 metadata address. Loopback and private ranges are allowed: nodes live there.
 */
export const DEFAULT_DENY = ['169.254.0.0/16', 'fe80::/10', 'fd00:ec2::254/128'] as const;

/** A CIDR list as OUTBOUND_DENY / OUTBOUND_ALLOW write it (`10.0.0.0/8, ::1`); a bare address is a /32 or /128. */
export function parseCidrList(raw: string): Range[] {
  return raw
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)
    .map((item) => {
      if (item.includes('/')) return ipaddr.parseCIDR(item);
      const address = ipaddr.parse(item);
      return [address, address.kind() === 'ipv4' ? 32 : 128] as Range;
    });
}
