# StreamGate: one image, embedded database by default (DATA_DIR=/data, a volume), PostgreSQL when
# DATABASE_URL is set. Build: docker build -t streamgate .
# Run:   docker run -p 4000:4000 -v streamgate-data:/data streamgate
#        (without ADMIN_TOKEN the first start prints a generated admin token once: docker logs)

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: all dependencies, Prisma client generation, tsc ----------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# What `npm ci` needs, including our postinstall (`npm run generate` reads the Prisma schema).
COPY package.json package-lock.json prisma.config.ts ./
COPY scripts ./scripts
COPY prisma ./prisma
# --ignore-scripts: no dependency install scripts (Prisma's would download a native engine that
# nothing here uses); then our own generation step, explicitly, which needs no download.
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm run generate
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies, the build and the migrations ------------------------
FROM ${NODE_IMAGE} AS runtime
# SHUTDOWN_TIMEOUT_MS: under `docker stop`'s default 10 s grace, so draining ends before SIGKILL.
ENV NODE_ENV=production \
    PORT=4000 \
    HOST=0.0.0.0 \
    DATA_DIR=/data \
    SHUTDOWN_TIMEOUT_MS=8000
WORKDIR /app
COPY package.json package-lock.json ./
# The generated Prisma client is compiled into dist/ (src/generated is TypeScript), so the
# runtime needs no `prisma generate`: skip our postinstall and every dependency script.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force
COPY --from=build /app/dist ./dist
# Migrations are applied by the app itself at start (and by `migrate`); the schema and config
# are for `npx prisma migrate status` where Prisma's engine can be downloaded.
COPY prisma ./prisma
COPY prisma.config.ts ./
# Application files stay root-owned (read-only to the app); only the data volume is writable.
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 4000
# No curl in slim images: Node's own fetch. /health needs no token.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/src/main.js"]
CMD ["serve"]
