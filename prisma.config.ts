import { defineConfig } from 'prisma/config';

// Used by the Prisma CLI (generate; and migrate status/deploy on machines that can fetch Prisma's
// schema engine). The app applies prisma/migrations itself: see src/db/migrate.ts.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations', seed: 'tsx src/main.ts seed' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/streamgate' },
});
