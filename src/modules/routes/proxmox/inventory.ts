import ipaddr from 'ipaddr.js';
import pLimit from 'p-limit';
import { z } from 'zod';
import type { ProxmoxClient } from './client.js';

/** What a route is linked to: a Proxmox node (vmid 0), or one of its LXC containers or VMs. */
export interface ProxmoxLink {
  node: string;
  vmid: number;
  /** The guest's name; null for a node. */
  vmName: string | null;
  type: ProxmoxLinkType;
}

export type ProxmoxLinkType = 'NODE' | 'LXC' | 'VM';
export const PROXMOX_LINK_TYPES = ['NODE', 'LXC', 'VM'] as const satisfies readonly ProxmoxLinkType[];

/** What a route offers to be matched by: its upstream host (name or IP) and its alias. */
export interface LinkKeys {
  host: string | null;
  alias: string;
}

// The API's shapes, as far as we read them (`looseObject`: Proxmox adds fields between versions).
const resources = z.array(
  z.looseObject({
    type: z.string(),
    node: z.string().optional(),
    vmid: z.number().int().optional(),
    name: z.string().optional(),
    status: z.string().optional(),
  }),
);
const clusterStatus = z.array(
  z.looseObject({ type: z.string(), name: z.string().optional(), ip: z.string().optional() }),
);
const lxcInterfaces = z.array(z.looseObject({ inet: z.string().optional(), inet6: z.string().optional() }));
const agentInterfaces = z.looseObject({
  result: z.array(z.looseObject({ 'ip-addresses': z.array(z.looseObject({ 'ip-address': z.string() })).optional() })),
});

/** Guest addresses are read this many at a time (one API call per running guest). */
const ADDRESS_READS_AT_ONCE = 8;

/**
 * One reading of the cluster: nodes and guests by lower-cased name and by IP, so matching a route
 * is a few map reads. Node entries win over guest entries (`link`).
 */
export class ProxmoxInventory {
  private readonly nodes = new Map<string, ProxmoxLink>();
  private readonly guests = new Map<string, ProxmoxLink>();
  /** Nodes and guests read. */
  readonly size: number;

  static readonly EMPTY = new ProxmoxInventory([], []);

  constructor(
    nodes: readonly { link: ProxmoxLink; ips: readonly string[] }[],
    guests: readonly { link: ProxmoxLink; ips: readonly string[] }[],
  ) {
    // Lowest vmid first, so two guests with one name link the same way every time.
    this.size = nodes.length + guests.length;
    const ordered = [...guests].sort((a, b) => a.link.vmid - b.link.vmid);
    for (const { link, ips } of nodes) index(this.nodes, link, link.node, ips);
    for (const { link, ips } of ordered) index(this.guests, link, link.vmName, ips);
  }

  /**
   * The node or guest a route points at: its upstream host (a name, its first label, or an IP) or
   * its alias, against node names and IPs first, then guests' (as GoDoxy links routes).
   */
  link({ host, alias }: LinkKeys): ProxmoxLink | null {
    const keys = keysOf(host, alias);
    for (const pool of [this.nodes, this.guests]) {
      for (const key of keys) {
        const found = pool.get(key);
        if (found) return found;
      }
    }
    return null;
  }
}

/** Reads the inventory: `cluster/resources`, node IPs (`cluster/status`), running guests' IPs. */
export async function readInventory(client: ProxmoxClient): Promise<ProxmoxInventory> {
  const [all, status] = await Promise.all([
    client.get('cluster/resources', resources),
    // Node IPs need Sys.Audit; without it, nodes still match by name.
    client.get('cluster/status', clusterStatus).catch(() => []),
  ]);
  const nodeIps = new Map<string, string[]>();
  for (const entry of status) {
    if (entry.type === 'node' && entry.name && entry.ip) nodeIps.set(entry.name, [entry.ip]);
  }
  const nodes = all
    .filter((r) => r.type === 'node' && r.node)
    .map((r) => {
      const node = r.node as string;
      return { link: { node, vmid: 0, vmName: null, type: 'NODE' as const }, ips: nodeIps.get(node) ?? [] };
    });
  const guests = all.flatMap((r) => {
    if ((r.type !== 'lxc' && r.type !== 'qemu') || !r.node || r.vmid === undefined) return [];
    const link: ProxmoxLink = {
      node: r.node,
      vmid: r.vmid,
      vmName: r.name ?? null,
      type: r.type === 'lxc' ? 'LXC' : 'VM',
    };
    return [{ link, running: r.status === 'running' }];
  });
  const limit = pLimit(ADDRESS_READS_AT_ONCE);
  const withIps = await Promise.all(
    guests.map(({ link, running }) =>
      limit(async () => ({
        link,
        // A stopped guest has no addresses; a VM without its guest agent tells none (it matches by name).
        ips: running ? await guestIps(client, link).catch(() => []) : [],
      })),
    ),
  );
  return new ProxmoxInventory(nodes, withIps);
}

async function guestIps(client: ProxmoxClient, { node, vmid, type }: ProxmoxLink): Promise<string[]> {
  const base = `nodes/${encodeURIComponent(node)}/${type === 'LXC' ? 'lxc' : 'qemu'}/${vmid}`;
  if (type === 'LXC') {
    const interfaces = await client.get(`${base}/interfaces`, lxcInterfaces);
    return interfaces.flatMap((i) => [i.inet, i.inet6]).flatMap((cidr) => (cidr ? [cidr.split('/')[0] as string] : []));
  }
  const { result } = await client.get(`${base}/agent/network-get-interfaces`, agentInterfaces);
  return result.flatMap((i) => (i['ip-addresses'] ?? []).map((a) => a['ip-address']));
}

function index(map: Map<string, ProxmoxLink>, link: ProxmoxLink, name: string | null, ips: readonly string[]): void {
  const add = (key: string) => {
    if (!map.has(key)) map.set(key, link);
  };
  if (name) add(name.toLowerCase());
  for (const ip of ips) {
    const normal = normaliseIp(ip);
    // Loopback and link-local addresses are on every guest: they say nothing about which one.
    if (normal && !isUninformative(normal)) add(normal);
  }
}

/** The keys a route is looked up by, most specific first. */
function keysOf(host: string | null, alias: string): string[] {
  const keys: string[] = [];
  if (host) {
    const ip = normaliseIp(host);
    if (ip) keys.push(ip);
    else {
      const name = host.toLowerCase().replace(/\.$/, '');
      keys.push(name);
      const label = name.split('.', 1)[0];
      if (label && label !== name) keys.push(label);
    }
  }
  keys.push(alias.toLowerCase());
  return keys;
}

function normaliseIp(value: string): string | null {
  const bare = value.replace(/^\[|\]$/g, '');
  return ipaddr.isValid(bare) ? ipaddr.process(bare).toString() : null;
}

function isUninformative(ip: string): boolean {
  const range = ipaddr.process(ip).range();
  return range === 'loopback' || range === 'linkLocal' || range === 'unspecified';
}
