-- CreateEnum
CREATE TYPE "SessionStatus" AS ENUM ('WAITING', 'ACTIVE', 'FINISHED');

-- CreateTable
CREATE TABLE "Session" (
    "id" UUID NOT NULL,
    "clientId" UUID NOT NULL,
    "status" "SessionStatus" NOT NULL DEFAULT 'WAITING',
    "streamKeyHash" CHAR(64) NOT NULL,
    "framesRelayed" BIGINT NOT NULL DEFAULT 0,
    "bytesRelayed" BIGINT NOT NULL DEFAULT 0,
    "operatorConnects" INTEGER NOT NULL DEFAULT 0,
    "operatorDisconnects" INTEGER NOT NULL DEFAULT 0,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "startedAt" TIMESTAMPTZ(3),
    "finishedAt" TIMESTAMPTZ(3),

CONSTRAINT "Session_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "SessionOperator" (
    "sessionId" UUID NOT NULL,
    "userId" TEXT NOT NULL,
    "joinedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

CONSTRAINT "SessionOperator_pkey" PRIMARY KEY ("sessionId","userId")
);

-- CreateIndex
CREATE INDEX "Session_status_id_idx" ON "Session"("status", "id");

-- AddForeignKey
ALTER TABLE "SessionOperator" ADD CONSTRAINT "SessionOperator_sessionId_fkey" FOREIGN KEY ("sessionId") REFERENCES "Session"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- FINISHED is final: whatever the application (or a hand-written UPDATE) does, no write can
-- move a session out of it. WAITING <-> ACTIVE and either -> FINISHED are the valid transitions.
CREATE FUNCTION "Session_status_transition"() RETURNS trigger AS $$
BEGIN
  IF NEW."status" IS DISTINCT FROM OLD."status" AND OLD."status" = 'FINISHED' THEN
    RAISE EXCEPTION 'session % is finished', OLD."id" USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER "Session_status_transition" BEFORE UPDATE OF "status" ON "Session"
  FOR EACH ROW EXECUTE FUNCTION "Session_status_transition"();

-- A finished session has its finishing time.
ALTER TABLE "Session" ADD CONSTRAINT "Session_finished_has_time_check" CHECK ("status" <> 'FINISHED' OR "finishedAt" IS NOT NULL);
