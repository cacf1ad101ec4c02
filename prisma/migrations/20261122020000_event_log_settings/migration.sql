-- CreateEnum
CREATE TYPE "Severity" AS ENUM ('DEBUG', 'INFO', 'WARN', 'ERROR');

-- CreateTable
CREATE TABLE "EventLog" (
    "seq" BIGSERIAL NOT NULL,
    "severity" "Severity" NOT NULL,
    "source" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "message" TEXT NOT NULL,
    "details" JSONB,
    "actorId" TEXT,
    "actorName" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

CONSTRAINT "EventLog_pkey" PRIMARY KEY ("seq")
);

-- CreateTable
CREATE TABLE "Settings" (
    "id" INTEGER NOT NULL DEFAULT 1,
    "staleThresholdDays" INTEGER NOT NULL DEFAULT 7,
    "healthCheckIntervalSeconds" INTEGER NOT NULL DEFAULT 30,
    "healthFailureThreshold" INTEGER NOT NULL DEFAULT 3,
    "healthSuccessThreshold" INTEGER NOT NULL DEFAULT 2,
    "sslCertificateId" INTEGER,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

CONSTRAINT "Settings_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "EventLog_source_seq_idx" ON "EventLog"("source", "seq");

-- CreateIndex
CREATE INDEX "EventLog_severity_seq_idx" ON "EventLog"("severity", "seq");

-- CreateIndex
CREATE INDEX "EventLog_createdAt_idx" ON "EventLog"("createdAt");

-- Settings is a single row; the defaults live in it from the start.
ALTER TABLE "Settings" ADD CONSTRAINT "Settings_single_row_check" CHECK ("id" = 1);
INSERT INTO "Settings" ("id") VALUES (1);
