import { describe, expect, it } from 'vitest';
import { isDatabaseUnavailable } from '../../src/db/errors.js';
import { Prisma } from '../../src/generated/prisma/client.js';
import { appError } from '../../src/lib/errors.js';

/** Which errors the API reports as UNAVAILABLE (the database is away) rather than masking them. */
describe('isDatabaseUnavailable', () => {
  const known = (code: string, kind?: string) =>
    new Prisma.PrismaClientKnownRequestError('x', {
      code,
      clientVersion: '7',
      meta: kind ? { driverAdapterError: { name: 'DriverAdapterError', cause: { kind } } } : {},
    });

  it('says yes for a lost or unreachable database, however it is wrapped', () => {
    expect(isDatabaseUnavailable(known('P1017', 'ConnectionClosed'))).toBe(true);
    expect(isDatabaseUnavailable(known('P2010', 'DatabaseNotReachable'))).toBe(true);
    expect(isDatabaseUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(
      isDatabaseUnavailable(new Error('outer', { cause: Object.assign(new Error('shutdown'), { code: '57P01' }) })),
    ).toBe(true);
  });

  it('says no for a wrong query, a bug, or a node that is down', () => {
    expect(isDatabaseUnavailable(known('P2002'))).toBe(false);
    expect(isDatabaseUnavailable(new TypeError('undefined is not a function'))).toBe(false);
    expect(isDatabaseUnavailable(appError('UPSTREAM_UNAVAILABLE', 'node unreachable: Connection terminated'))).toBe(
      false,
    );
    expect(
      isDatabaseUnavailable(Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:80'), { code: 'ECONNREFUSED' })),
    ).toBe(false);
  });
});
