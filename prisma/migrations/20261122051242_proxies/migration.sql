-- CreateTable
CREATE TABLE "Proxy" (
    "id" UUID NOT NULL,
    "domain" TEXT NOT NULL,
    "destination" TEXT NOT NULL,
    "sslCertificateId" INTEGER,
    "npmHostId" INTEGER,
    "status" "HealthStatus" NOT NULL DEFAULT 'UNKNOWN',
    "lastCheckedAt" TIMESTAMPTZ(3),
    "healthLatencyMs" DOUBLE PRECISION,
    "healthDetail" TEXT,
    "healthySince" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Proxy_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Proxy_domain_key" ON "Proxy"("domain");

-- CreateIndex
CREATE UNIQUE INDEX "Proxy_npmHostId_key" ON "Proxy"("npmHostId");

-- Domains are stored normalised (lower case, no trailing dot), so the unique index is the
-- case-insensitive uniqueness the API promises, whoever writes the row.
ALTER TABLE "Proxy" ADD CONSTRAINT "Proxy_domain_normalised" CHECK ("domain" = lower("domain") AND "domain" NOT LIKE '%.');
