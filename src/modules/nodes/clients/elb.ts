import { NodeApiClient } from './base.js';

/** A load balancer (SLB/ELB) node's API: ping and raw passthrough, from the shared base. */
export class ElbClient extends NodeApiClient {}
