import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseEnv } from '../src/env.js';

/** docker-compose.yml (README "Scaling out") describes a deployment StreamGate accepts. */
describe('docker-compose.yml', () => {
  const compose = parse(readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8'), { merge: true }) as {
    services: Record<string, { environment?: Record<string, string>; image?: string; build?: string }>;
  };
  const instances = Object.entries(compose.services).filter(([, s]) => s.build === '.');

  it('runs two StreamGate instances on one PostgreSQL and one Redis, each a valid configuration', () => {
    expect(instances.map(([name]) => name)).toEqual(['streamgate-a', 'streamgate-b']);
    for (const [, service] of instances) {
      const env = { ...service.environment, ADMIN_TOKEN: 'sg_0000000000000000000000000000000000000000000' };
      const parsed = parseEnv(env);
      expect(parsed.REDIS_URL).toBe('redis://redis:6379');
      expect(parsed.DATABASE_URL).toContain('@postgres:5432/');
    }
    const ids = instances.map(([, s]) => s.environment?.INSTANCE_ID);
    expect(new Set(ids).size).toBe(2);
    expect(compose.services.postgres?.image).toMatch(/^postgres:15/);
    expect(compose.services.redis?.image).toMatch(/^redis:/);
  });

  it('puts the load balancer in front of both, WebSockets included', () => {
    const nginx = readFileSync(new URL('../deploy/nginx.conf', import.meta.url), 'utf8');
    for (const [name] of instances) expect(nginx).toContain(`server ${name}:4000`);
    expect(nginx).toMatch(/proxy_set_header Upgrade \$http_upgrade/);
  });
});
