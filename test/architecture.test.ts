import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layering rules of README "Layout", read from the imports under src/ (generated code aside):
 * - a module imports another module only through its `index.ts`;
 * - nothing under src/modules imports the transports (src/server), the composition root
 *   (src/wiring.ts, src/main.ts) or the GraphQL context type directly;
 * - the schema kernel (src/graphql) does not import the transports;
 * - src/lib and src/db import nothing above them.
 */
const SRC = join(import.meta.dirname, '..', 'src');

type Imports = Map<string, string[]>;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'generated' ? [] : sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*'([^']+)'|(?:^|\n)\s*import\s*'([^']+)'|import\('([^']+)'\)/g;

/** Each file (relative to src, posix) with the src files it imports (relative specifiers only). */
function readImports(): Imports {
  const imports: Imports = new Map();
  for (const file of sourceFiles(SRC)) {
    const from = relative(SRC, file).split('\\').join('/');
    const targets: string[] = [];
    for (const match of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const specifier = match[1] ?? match[2] ?? match[3] ?? '';
      if (!specifier.startsWith('.')) continue;
      targets.push(posix.normalize(posix.join(posix.dirname(from), specifier)).replace(/\.js$/, '.ts'));
    }
    imports.set(from, targets);
  }
  return imports;
}

const moduleOf = (path: string) => /^modules\/([^/]+)\//.exec(path)?.[1];

/** Every import that breaks a rule, as `from → to: rule`. */
function violations(imports: Imports): string[] {
  const found: string[] = [];
  for (const [from, targets] of imports) {
    for (const to of targets) {
      const broken = ruleBroken(from, to);
      if (broken) found.push(`${from} → ${to}: ${broken}`);
    }
  }
  return found;
}

function ruleBroken(from: string, to: string): string | null {
  const fromModule = moduleOf(from);
  const toModule = moduleOf(to);
  if (from.startsWith('modules/')) {
    if (to.startsWith('server/')) return 'modules do not import the transports';
    if (to === 'wiring.ts' || to === 'main.ts') return 'modules do not import the composition root';
    if (to === 'graphql/context.ts') return 'modules reach the context through the builder only';
    if (toModule && toModule !== fromModule && to !== `modules/${toModule}/index.ts`) {
      return `another module's internals: import modules/${toModule}/index.ts`;
    }
  }
  if (from.startsWith('graphql/') && to.startsWith('server/'))
    return 'the schema kernel does not import the transports';
  if ((from.startsWith('lib/') || from.startsWith('db/')) && /^(modules|server|graphql)\/|^wiring\.ts$/.test(to)) {
    return 'lib and db import nothing above them';
  }
  return null;
}

describe('import rules', () => {
  it('hold for every import under src/', () => {
    const imports = readImports();
    expect(imports.size).toBeGreaterThan(50);
    expect(violations(imports)).toEqual([]);
  });

  it('catch each kind of forbidden edge', () => {
    const made = new Map([
      ['modules/routes/schema.ts', ['modules/nodes/service.ts', 'modules/nodes/index.ts']],
      ['modules/nodes/service.ts', ['server/http/respond.ts', 'graphql/context.ts', 'wiring.ts']],
      ['graphql/common.ts', ['server/app.ts']],
      ['lib/errors.ts', ['modules/events/index.ts']],
    ]);
    expect(violations(made)).toEqual([
      "modules/routes/schema.ts → modules/nodes/service.ts: another module's internals: import modules/nodes/index.ts",
      'modules/nodes/service.ts → server/http/respond.ts: modules do not import the transports',
      'modules/nodes/service.ts → graphql/context.ts: modules reach the context through the builder only',
      'modules/nodes/service.ts → wiring.ts: modules do not import the composition root',
      'graphql/common.ts → server/app.ts: the schema kernel does not import the transports',
      'lib/errors.ts → modules/events/index.ts: lib and db import nothing above them',
    ]);
  });

  it('list every module folder in src/modules/index.ts, with a README', () => {
    const folders = readdirSync(join(SRC, 'modules'), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    const index = readFileSync(join(SRC, 'modules', 'index.ts'), 'utf8');
    for (const folder of folders) {
      expect(index, `src/modules/index.ts imports ./${folder}/index.js`).toContain(`'./${folder}/index.js'`);
      expect(readdirSync(join(SRC, 'modules', folder)), `src/modules/${folder} has a README.md`).toContain('README.md');
    }
  });
});
