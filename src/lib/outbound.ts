import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { networkInterfaces } from 'node:os';
import ipaddr from 'ipaddr.js';
import { buildConnector } from 'undici';
import { DEFAULT_DENY, parseCidrList, type Range } from './cidr.js';

/** A connection the outbound address policy refused: nothing was sent. */
export class OutboundDeniedError extends Error {
  override name = 'OutboundDeniedError';
  readonly code = 'EOUTBOUNDDENIED';
  constructor(
    readonly address: string,
    readonly port: number | undefined,
    readonly reason: string,
  ) {
    super(`${address}${port === undefined ? '' : ` port ${port}`}: ${reason}`);
  }
}

export interface OutboundPolicyOptions {
  /** OUTBOUND_DENY: always refused (wins over everything). */
  deny?: Range[];
  /** OUTBOUND_ALLOW: when set, only these (and they may re-allow a default-denied range). */
  allow?: Range[];
  /** Ports StreamGate itself listens on: refused on this host's own addresses (no loops). */
  ownPorts?: number[];
}

/**
 * One policy for every outbound connection StreamGate makes. Checked on the address actually
 * connected to, after DNS (a name that resolves to a denied address is refused, so DNS rebinding
 * cannot get round it), before any packet is sent. In order:
 * 1. OUTBOUND_DENY → refused; 2. OUTBOUND_ALLOW → allowed; 3. the default deny (link-local,
 * metadata) → refused; 4. OUTBOUND_ALLOW set → refused (nothing else is allowed); 5. allowed.
 * Besides, StreamGate's own ports on this host's own addresses are refused.
 */
export class OutboundPolicy {
  private readonly deny: Range[];
  private readonly allow: Range[];
  private readonly defaults = parseCidrList(DEFAULT_DENY.join(','));
  private readonly ownPorts: Set<number>;
  private readonly localAddresses: Set<string>;
  private readonly connectors = new Map<string, buildConnector.connector>();

  constructor(options: OutboundPolicyOptions = {}) {
    this.deny = options.deny ?? [];
    this.allow = options.allow ?? [];
    this.ownPorts = new Set(options.ownPorts ?? []);
    this.localAddresses = new Set(
      Object.values(networkInterfaces())
        .flat()
        .map((i) => i?.address && normalise(i.address))
        .filter((a): a is string => Boolean(a)),
    );
  }

  /** The policy the environment describes (OUTBOUND_DENY, OUTBOUND_ALLOW, PORT, PROXY_PORT). */
  static fromEnv(env: { OUTBOUND_DENY?: string; OUTBOUND_ALLOW?: string; PORT: number; PROXY_PORT?: number }) {
    return new OutboundPolicy({
      deny: env.OUTBOUND_DENY ? parseCidrList(env.OUTBOUND_DENY) : [],
      allow: env.OUTBOUND_ALLOW ? parseCidrList(env.OUTBOUND_ALLOW) : [],
      ownPorts: [env.PORT, ...(env.PROXY_PORT ? [env.PROXY_PORT] : [])],
    });
  }

  /** A port this process listens on (the real one when PORT was 0). */
  addOwnPort(port: number): void {
    this.ownPorts.add(port);
  }

  /** Why connecting to `address` (an IP) on `port` is refused; null when it is allowed. */
  check(address: string, port?: number): string | null {
    let ip: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      ip = ipaddr.process(address);
    } catch {
      return `"${address}" is not an IP address`;
    }
    const within = (ranges: Range[]) => ranges.find(([net, bits]) => ip.kind() === net.kind() && ip.match(net, bits));
    const shown = (range: Range) => `${range[0].toString()}/${range[1]}`;
    const denied = within(this.deny);
    if (denied) return `${address} is in OUTBOUND_DENY (${shown(denied)})`;
    if (port !== undefined && this.ownPorts.has(port) && this.isLocal(ip)) {
      return `${address} port ${port} is StreamGate itself`;
    }
    if (within(this.allow)) return null;
    const byDefault = within(this.defaults);
    if (byDefault)
      return `${address} is link-local or a cloud metadata address (${shown(byDefault)}), denied by default`;
    if (this.allow.length > 0) return `${address} is not in OUTBOUND_ALLOW`;
    return null;
  }

  /**
   * Why a host as written (a configured node, destination or upstream) is refused: only an IP
   * literal can be judged before it is used; a name is judged when it resolves (null here).
   */
  checkLiteral(host: string, port?: number): string | null {
    return isIP(host) ? this.check(host, port) : null;
  }

  /**
   * A `lookup` for net/tls connect: resolves as usual, keeps only the allowed addresses, and fails
   * with OutboundDeniedError when none is left. (IP literals skip `lookup`: see connector().)
   */
  lookup(port?: number): LookupFunction {
    return (hostname, options, callback) => {
      dnsLookup(hostname, { ...options, all: true }, (error, found: LookupAddress[]) => {
        if (error) return callback(error, '', 0);
        const allowed = found.filter((entry) => this.check(entry.address, port) === null);
        if (allowed.length === 0) {
          const first = found[0]?.address ?? hostname;
          const reason = this.check(first, port) ?? 'no address';
          return callback(new OutboundDeniedError(first, port, `${hostname} → ${reason}`), '', 0);
        }
        if (options.all) return callback(null, allowed);
        const [only] = allowed;
        callback(null, only?.address ?? '', only?.family ?? 4);
      });
    };
  }

  /** An undici connector that applies the policy: IP literals checked at once, names through lookup(). */
  connector(options: buildConnector.BuildOptions = {}): buildConnector.connector {
    return (connect, callback) => {
      const port = Number(connect.port) || (connect.protocol === 'https:' ? 443 : 80);
      const host = connect.hostname.replace(/^\[|\]$/g, '');
      // IP literals skip `lookup`, so they are judged here.
      const reason = this.checkLiteral(host, port);
      if (reason) return callback(new OutboundDeniedError(host, port, reason), null);
      const key = `${port}`;
      let base = this.connectors.get(key);
      if (!base) {
        base = buildConnector({ ...options, lookup: this.lookup(port) } as buildConnector.BuildOptions);
        this.connectors.set(key, base);
      }
      base(connect, callback);
    };
  }

  private isLocal(ip: ipaddr.IPv4 | ipaddr.IPv6): boolean {
    const range = ip.range();
    return range === 'loopback' || range === 'unspecified' || this.localAddresses.has(ip.toString());
  }
}

function normalise(address: string): string {
  try {
    return ipaddr.process(address).toString();
  } catch {
    return address;
  }
}
