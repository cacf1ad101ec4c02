/**
 * Route registry benchmark at 100,000 routes: building it (`resolveRoutes` + `RouteRegistry.replace`),
 * applying a 1% change (the diff path), lookups per second, lookups while 10,000 routes come and go,
 * iteration, memory per route, and loading a 10,000-route routes file.
 *
 * Everything runs in this one process (no sockets: it is CPU and heap only):
 *   - specs      BENCH_ROUTES specs over the three providers: STREAM routes on distinct listen ports
 *                from 20000 (BENCH_STREAM_ROUTES of them), the rest HTTP `r<i>` → `http://10.a.b.c:8080`,
 *                every 10th with an explicit `host` (`site<i>.example.org`);
 *   - build      `resolveRoutes` then `replace` into a fresh registry; then a second set with 1% of
 *                the HTTP upstreams changed (port 8081) resolved and replaced into the same registry
 *                (the other 99% are the same spec objects, as providers hand them over: the diff
 *                path), then the same set again (no-op);
 *   - lookups    keys precomputed in a shuffled array (1 Mi entries), each case a tight loop over it
 *                for BENCH_SECONDS, BENCH_ROUNDS rounds with the order reversed every other round;
 *                every result is consumed (hits counted and checked), so the JIT cannot drop the
 *                work. Baseline in the same run: a plain `Map.get` over the same 100k aliases, hit and
 *                miss. Reported: median lookups/s, and the median of the per-round ours ÷ Map;
 *   - churn      10,000 extra routes added and removed in steps of 1,000 (each step a resolve +
 *                replace of the whole set), a batch of lookups of untouched routes between steps:
 *                lookups/s, and every one of them must hit (a miss fails the bench);
 *   - memory     `global.gc()` then heapUsed before/after the specs, after the first replace and after
 *                the diff replace, ÷ the route count;
 *   - file       a routes file of 10,000 HTTP routes written to a temporary directory, loaded by the
 *                file provider and resolved into a registry (the "under 1 s").
 *
 * Run: `node --expose-gc --import tsx bench/routes.ts` (~1 minute). Knobs: BENCH_ROUTES (100000),
 * BENCH_STREAM_ROUTES (3000), BENCH_SECONDS (2), BENCH_ROUNDS (3).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../src/lib/logger.js';
import { FileRouteProvider } from '../src/modules/routes/providers/file.js';
import { resolveRoutes } from '../src/modules/routes/reconcile.js';
import { RouteRegistry } from '../src/modules/routes/registry.js';
import { PROVIDERS, type ProviderName, type Route, type RouteSpec } from '../src/modules/routes/types.js';

const ROUTES = Number(process.env.BENCH_ROUTES ?? 100_000);
const STREAM_ROUTES = Number(process.env.BENCH_STREAM_ROUTES ?? 3_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** The target. */
const TARGET_LOOKUPS_PER_SECOND = 5_000_000;
const CHURN_ROUTES = 10_000;
const CHURN_STEP = 1_000;
const FILE_ROUTES = 10_000;
const FIRST_STREAM_PORT = 20_000;
const KEYS = 1 << 20;
const WATCHDOG_MS = 5 * 60_000;

const gc = (globalThis as { gc?: () => void }).gc;

function heapUsed(): number {
  // Twice: the first pass can leave garbage that only a second one finds (weak maps, finalizers).
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

/** `10.a.b.c` for route i: distinct addresses, as a large site's would be. */
function addressOf(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

const isStream = (i: number) => i < STREAM_ROUTES;
const hasHost = (i: number) => !isStream(i) && i % 10 === 0;
const isChanged = (i: number) => !isStream(i) && i % 100 === 1;
/** The route indices for which `test` holds. */
const indices = (test: (i: number) => boolean) => Array.from({ length: ROUTES }, (_, i) => i).filter(test);

/** The spec set: `changedPort` for every 100th HTTP route's upstream (1% changed when set). */
function buildSpecs(changedPort?: number): Map<ProviderName, RouteSpec[]> {
  const specs = new Map<ProviderName, RouteSpec[]>(PROVIDERS.map((p) => [p, []]));
  for (let i = 0; i < ROUTES; i++) {
    const provider = PROVIDERS[i % PROVIDERS.length]!;
    const origin = `line ${i + 1}`;
    let spec: RouteSpec;
    if (isStream(i)) {
      spec = {
        kind: 'STREAM',
        alias: `r${i}`,
        provider,
        origin,
        listenPort: FIRST_STREAM_PORT + i,
        upstream: `${addressOf(i)}:5432`,
      };
    } else {
      const port = changedPort !== undefined && isChanged(i) ? changedPort : 8080;
      spec = { kind: 'HTTP', alias: `r${i}`, provider, origin, upstream: `http://${addressOf(i)}:${port}` };
      if (hasHost(i)) spec.host = `site${i}.example.org`;
    }
    specs.get(provider)!.push(spec);
  }
  return specs;
}

const RESOLVE_OPTIONS = { reservedPorts: new Map([[8080, 'PORT (the API)']]) };

/** A shuffled array of KEYS keys, from `make(i)` over i < count (fresh strings, as a parsed Host is). */
function keyArray(count: number, make: (i: number) => string): string[] {
  const keys = new Array<string>(KEYS);
  let seed = 0x9e3779b9;
  for (let k = 0; k < KEYS; k++) {
    // xorshift32: a fixed, cheap shuffle, the same in every run.
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    keys[k] = make((seed >>> 0) % count);
  }
  return keys;
}

/** One case: `run(from, count)` does `count` lookups from index `from` and returns how many hit. */
interface Case {
  name: string;
  baseline?: string;
  /** Every lookup must hit (true) or miss (false): a wrong answer fails the bench. */
  hits: boolean;
  run: (from: number, count: number) => number;
}

const BATCH = 1 << 16;

/** Lookups per second of one case over `seconds`, batches of BATCH between clock reads. */
function measure(c: Case, seconds: number): number {
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  let done = 0;
  let hits = 0;
  let from = 0;
  while (performance.now() < deadline) {
    hits += c.run(from, BATCH);
    done += BATCH;
    from = (from + BATCH) & (KEYS - 1);
  }
  const elapsed = (performance.now() - started) / 1000;
  if (hits !== (c.hits ? done : 0)) throw new Error(`${c.name}: ${hits} hits of ${done} lookups`);
  return done / elapsed;
}

function fmtMs(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms.toFixed(1);
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

async function main() {
  const watchdog = setTimeout(() => {
    console.error(`bench: still running after ${WATCHDOG_MS / 1000} s, giving up`);
    process.exit(1);
  }, WATCHDOG_MS);
  watchdog.unref();
  if (!gc) console.warn('bench: no global.gc (run with node --expose-gc): memory figures are rough');

  const httpRoutes = ROUTES - STREAM_ROUTES;
  const hostIndices = indices(hasHost);
  const hostRoutes = hostIndices.length;
  console.log(
    `routes bench: ${ROUTES} routes (${httpRoutes} HTTP, ${hostRoutes} of them with a host; ${STREAM_ROUTES} STREAM), ` +
      `${SECONDS} s per lookup case × ${ROUNDS} rounds; node ${process.version}, load average ${loadavg()[0]!.toFixed(2)}\n`,
  );

  // --- Build, and memory -------------------------------------------------------------------------
  const heap0 = heapUsed();
  let t = performance.now();
  const specs = buildSpecs();
  const specsMs = performance.now() - t;
  const heapSpecs = heapUsed();

  t = performance.now();
  let routes: Route[] | null = resolveRoutes(specs, RESOLVE_OPTIONS);
  const resolveMs = performance.now() - t;
  const registry = new RouteRegistry();
  t = performance.now();
  const first = registry.replace(routes);
  const replaceMs = performance.now() - t;
  if (first.added.length !== ROUTES || registry.numActive !== ROUTES) {
    throw new Error(`first replace: ${first.added.length} added, ${registry.numActive} active of ${ROUTES}`);
  }
  routes = null; // the registry holds them now
  const heapRegistry = heapUsed();
  console.log(`  built: specs ${fmtMs(specsMs)} ms, resolve ${fmtMs(resolveMs)} ms, replace ${fmtMs(replaceMs)} ms`);

  const { diffResolveMs, diffReplaceMs, replaced, noopReplaceMs } = applyOnePercentChange(registry, specs);
  const heapAfterDiff = heapUsed();

  t = performance.now();
  const active = registry.iterActive(); // rebuilt: the diff replace dropped the snapshot
  const iterColdMs = performance.now() - t;
  let iterations = 0;
  let httpSeen = 0;
  t = performance.now();
  for (; performance.now() - t < 1000; iterations++) {
    for (const route of registry.iterActive()) if (route.kind === 'HTTP') httpSeen++;
  }
  const iterWarmMs = (performance.now() - t) / iterations;
  if (active.length !== ROUTES || httpSeen !== httpRoutes * iterations) throw new Error('iterActive lost routes');

  // The same objects in a plain Map: the least a registry could cost (baseline).
  t = performance.now();
  const plain = new Map<string, Route>();
  for (const route of registry.iterActive()) plain.set(route.alias, route);
  const mapBuildMs = performance.now() - t;

  // --- Lookups -----------------------------------------------------------------------------------
  const hitKeys = keyArray(ROUTES, (i) => `r${i}`);
  const missKeys = keyArray(ROUTES, (i) => `m${i}`);
  // Hosts as the data plane would split them: the first label is the alias.
  const httpIndex = (i: number) => STREAM_ROUTES + i;
  const aliasHosts = keyArray(httpRoutes, (i) => `r${httpIndex(i)}.localhost`);
  const aliasLabels = aliasHosts.map((h) => h.slice(0, h.indexOf('.')));
  const exactHosts = keyArray(hostRoutes, (i) => `site${hostIndices[i]}.example.org`);
  const exactLabels = exactHosts.map((h) => h.slice(0, h.indexOf('.')));
  const missHosts = keyArray(ROUTES, (i) => `m${i}.example.net`);
  const missLabels = missHosts.map((h) => h.slice(0, h.indexOf('.')));

  const cases: Case[] = [
    {
      name: 'Map.get, hit',
      hits: true,
      run(from, count) {
        let hits = 0;
        for (let k = from; k < from + count; k++) if (plain.get(hitKeys[k]!) !== undefined) hits++;
        return hits;
      },
    },
    {
      name: 'Map.get, miss',
      hits: false,
      run(from, count) {
        let hits = 0;
        for (let k = from; k < from + count; k++) if (plain.get(missKeys[k]!) !== undefined) hits++;
        return hits;
      },
    },
    {
      name: 'get(alias), hit',
      baseline: 'Map.get, hit',
      hits: true,
      run(from, count) {
        let hits = 0;
        for (let k = from; k < from + count; k++) if (registry.get(hitKeys[k]!) !== undefined) hits++;
        return hits;
      },
    },
    {
      name: 'get(alias), miss',
      baseline: 'Map.get, miss',
      hits: false,
      run(from, count) {
        let hits = 0;
        for (let k = from; k < from + count; k++) if (registry.get(missKeys[k]!) !== undefined) hits++;
        return hits;
      },
    },
    {
      name: 'getHttpRouteOrExact, by alias',
      baseline: 'Map.get, hit',
      hits: true,
      run(from, count) {
        let hits = 0;
        for (let k = from; k < from + count; k++) {
          if (registry.getHttpRouteOrExact(aliasLabels[k]!, aliasHosts[k]!) !== undefined) hits++;
        }
        return hits;
      },
    },
    {
      name: 'getHttpRouteOrExact, by exact host',
      baseline: 'Map.get, hit',
      hits: true,
      run(from, count) {
        let hits = 0;
        for (let k = from; k < from + count; k++) {
          if (registry.getHttpRouteOrExact(exactLabels[k]!, exactHosts[k]!) !== undefined) hits++;
        }
        return hits;
      },
    },
    {
      name: 'getHttpRouteOrExact, miss',
      baseline: 'Map.get, miss',
      hits: false,
      run(from, count) {
        let hits = 0;
        for (let k = from; k < from + count; k++) {
          if (registry.getHttpRouteOrExact(missLabels[k]!, missHosts[k]!) !== undefined) hits++;
        }
        return hits;
      },
    },
  ];

  // Warm-up: every case JIT-compiled before anything is measured.
  for (const c of cases) measure(c, 0.2);
  const rates = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? cases : [...cases].reverse();
    for (const c of order) {
      const rate = measure(c, SECONDS);
      rates.get(c.name)!.push(rate);
      console.log(`  round ${round + 1} ${c.name.padEnd(36)} ${(rate / 1e6).toFixed(2).padStart(6)} M lookups/s`);
    }
  }

  const churn = lookupsDuringChurn(registry, specs, hitKeys);
  const fileLoad = await loadRoutesFile();

  // --- Results -----------------------------------------------------------------------------------
  console.log(`\n| ${ROUTES.toLocaleString('en')} routes | ms |`);
  console.log('|---|---:|');
  console.log(`| resolveRoutes (all) | ${fmtMs(resolveMs)} |`);
  console.log(`| replace into an empty registry | ${fmtMs(replaceMs)} |`);
  console.log(`| **resolve + replace** | **${fmtMs(resolveMs + replaceMs)}** |`);
  console.log(`| baseline: the same routes into a plain Map | ${fmtMs(mapBuildMs)} |`);
  console.log(`| 1% changed: resolveRoutes (all) | ${fmtMs(diffResolveMs)} |`);
  console.log(`| 1% changed: replace (diff, ${replaced} replaced) | ${fmtMs(diffReplaceMs)} |`);
  console.log(`| **1% changed: resolve + replace** | **${fmtMs(diffResolveMs + diffReplaceMs)}** |`);
  console.log(`| nothing changed: replace | ${fmtMs(noopReplaceMs)} |`);
  console.log(`| iterActive() after a change (snapshot rebuilt) | ${fmtMs(iterColdMs)} |`);
  console.log(`| iterActive() full pass over the snapshot | ${iterWarmMs.toFixed(2)} |`);

  console.log('\n| lookup | M lookups/s (median) | rounds | ours ÷ Map (median of rounds) | ≥ 5M/s |');
  console.log('|---|---:|---|---:|---|');
  for (const c of cases) {
    const own = rates.get(c.name)!;
    const base = c.baseline ? rates.get(c.baseline)! : null;
    const ratio = base ? median(own.map((r, i) => r / base[i]!)).toFixed(2) : '(baseline)';
    const rounds = own.map((r) => (r / 1e6).toFixed(1)).join(', ');
    const met = median(own) >= TARGET_LOOKUPS_PER_SECOND ? 'yes' : 'NO';
    console.log(`| ${c.name} | ${(median(own) / 1e6).toFixed(2)} | ${rounds} | ${ratio} | ${base ? met : ''} |`);
  }

  console.log(
    `\n| while ${CHURN_ROUTES.toLocaleString('en')} routes are added and removed (${churn.steps} steps) | value |`,
  );
  console.log('|---|---:|');
  console.log(`| get(alias) of untouched routes, M lookups/s | ${(churn.rate / 1e6).toFixed(2)} |`);
  console.log(
    `| ÷ get(alias), hit with no churn (median) | ${(churn.rate / median(rates.get('get(alias), hit')!)).toFixed(2)} |`,
  );
  console.log(`| lookups of untouched routes that missed | ${churn.misses} of ${churn.lookups.toLocaleString('en')} |`);
  console.log(`| one step (resolve + replace, ${CHURN_STEP} routes in or out), ms median | ${fmtMs(churn.stepMs)} |`);

  console.log(`\n| routes file of ${FILE_ROUTES.toLocaleString('en')} routes | ms |`);
  console.log('|---|---:|');
  console.log(`| read + parse (file provider) | ${fmtMs(fileLoad.loadMs)} |`);
  console.log(`| resolve + replace into an empty registry | ${fmtMs(fileLoad.resolveMs)} |`);
  console.log(`| **total (target < 1000)** | **${fmtMs(fileLoad.loadMs + fileLoad.resolveMs)}** |`);

  const perRoute = (bytes: number) => `${(bytes / ROUTES).toFixed(0)} B`;
  console.log('\n| heap (after gc) | total | per route |');
  console.log('|---|---:|---:|');
  console.log(`| the specs themselves | ${mb(heapSpecs - heap0)} | ${perRoute(heapSpecs - heap0)} |`);
  console.log(
    `| registry after the first replace | ${mb(heapRegistry - heapSpecs)} | ${perRoute(heapRegistry - heapSpecs)} |`,
  );
  console.log(
    `| registry after the 1% diff replace | ${mb(heapAfterDiff - heapSpecs)} | ${perRoute(heapAfterDiff - heapSpecs)} |`,
  );
  console.log(
    '\n(registry rows: the heap it adds with the specs alive, whose strings the routes share; ' +
      'the plain Map baseline and the lookup keys are allocated after these figures)',
  );
  clearTimeout(watchdog);
  // The specs stay alive until here, so the registry rows cannot have counted their collection.
  if (specs.size === 0) console.log('');
}

/**
 * The second spec set (1% of HTTP upstreams changed) resolved and replaced into `registry`, then
 * the same set again (nothing changes). In a function of its own so that only the 1% of new routes
 * outlive it (and the memory figure after it is the registry's).
 */
function applyOnePercentChange(registry: RouteRegistry, current: Map<ProviderName, RouteSpec[]>) {
  // What providers hand over: the same objects for unchanged routes, new ones for the changed.
  const fresh = buildSpecs(8081);
  const changedSpecs = new Map<ProviderName, RouteSpec[]>();
  for (const [provider, list] of current) {
    const next = fresh.get(provider)!;
    changedSpecs.set(
      provider,
      list.map((spec, k) => (JSON.stringify(spec) === JSON.stringify(next[k]) ? spec : next[k]!)),
    );
  }
  let t = performance.now();
  const changed = resolveRoutes(changedSpecs, RESOLVE_OPTIONS);
  const diffResolveMs = performance.now() - t;
  t = performance.now();
  const diff = registry.replace(changed);
  const diffReplaceMs = performance.now() - t;
  const expectedChanged = indices(isChanged).length;
  if (diff.added.length !== expectedChanged || diff.removed.length !== expectedChanged) {
    throw new Error(
      `diff replace: ${diff.added.length} added, ${diff.removed.length} removed, ${expectedChanged} expected`,
    );
  }
  console.log(
    `  1% changed: resolve ${fmtMs(diffResolveMs)} ms, replace ${fmtMs(diffReplaceMs)} ms ` +
      `(${diff.added.length} added, ${diff.removed.length} removed)`,
  );

  const again = resolveRoutes(changedSpecs, RESOLVE_OPTIONS);
  t = performance.now();
  const noop = registry.replace(again);
  const noopReplaceMs = performance.now() - t;
  if (noop.added.length || noop.removed.length) throw new Error('unchanged replace changed something');
  return { diffResolveMs, diffReplaceMs, replaced: diff.added.length, noopReplaceMs };
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * Lookups of routes nobody touches while CHURN_ROUTES others are added and removed, a step of
 * CHURN_STEP at a time. JavaScript runs one thing at a time, so "while" is interleaved: a batch of
 * lookups between every two steps, which is what a request arriving during a reload sees.
 */
function lookupsDuringChurn(registry: RouteRegistry, specs: Map<ProviderName, RouteSpec[]>, hitKeys: string[]) {
  const churnSpecs: RouteSpec[] = Array.from({ length: CHURN_ROUTES }, (_, i) => ({
    kind: 'HTTP',
    alias: `churn${i}`,
    provider: 'file',
    origin: `line ${i}`,
    upstream: `http://${addressOf(i)}:9090`,
  }));
  const base = specs.get('file')!;
  let lookups = 0;
  let misses = 0;
  let lookupMs = 0;
  const stepTimes: number[] = [];
  const steps = (2 * CHURN_ROUTES) / CHURN_STEP;
  for (let step = 0; step < steps; step++) {
    // Up to CHURN_ROUTES in, then back out to none.
    const present = step < steps / 2 ? (step + 1) * CHURN_STEP : (steps - step - 1) * CHURN_STEP;
    const withChurn = new Map(specs);
    withChurn.set('file', [...base, ...churnSpecs.slice(0, present)]);
    let t = performance.now();
    registry.replace(resolveRoutes(withChurn, RESOLVE_OPTIONS));
    stepTimes.push(performance.now() - t);
    if (registry.numActive !== ROUTES + present) throw new Error(`churn: ${registry.numActive} active`);
    t = performance.now();
    for (let k = 0; k < BATCH * 4; k++) {
      if (registry.get(hitKeys[(step * BATCH * 4 + k) & (KEYS - 1)]!) === undefined) misses++;
    }
    lookupMs += performance.now() - t;
    lookups += BATCH * 4;
  }
  if (misses > 0) throw new Error(`churn: ${misses} lookups of untouched routes missed`);
  return { rate: lookups / (lookupMs / 1000), lookups, misses, steps, stepMs: median(stepTimes) };
}

/** A routes file of FILE_ROUTES HTTP routes, loaded by the provider and resolved into a registry. */
async function loadRoutesFile(): Promise<{ loadMs: number; resolveMs: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'streamgate-bench-routes-'));
  try {
    const path = join(dir, 'routes.yaml');
    const lines = ['routes:'];
    for (let i = 0; i < FILE_ROUTES; i++) {
      lines.push(`  - alias: app${i}`, `    upstream: http://${addressOf(i)}:8080`);
      if (i % 10 === 0) lines.push(`    host: app${i}.example.org`);
    }
    await writeFile(path, `${lines.join('\n')}\n`);
    const provider = new FileRouteProvider({ path, log: createLogger('silent') });
    let loaded: readonly RouteSpec[] = [];
    let t = performance.now();
    await provider.start({
      update: (specs) => {
        loaded = specs;
      },
      failed: (error) => {
        throw error;
      },
      gone: (reason) => {
        throw new Error(reason);
      },
    });
    const loadMs = performance.now() - t;
    await provider.close();
    t = performance.now();
    const registry = new RouteRegistry();
    registry.replace(resolveRoutes(new Map([['file', loaded]]), RESOLVE_OPTIONS));
    const resolveMs = performance.now() - t;
    if (registry.http.size !== FILE_ROUTES) throw new Error(`routes file: ${registry.http.size} routes loaded`);
    return { loadMs, resolveMs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
