import { NodeApiClient } from './base.js';

/** A cache (cproxy) node's API: ping and raw passthrough, from the shared base. */
export class CproxyClient extends NodeApiClient {}
