-- AlterTable
ALTER TABLE "Settings" ADD COLUMN     "installationId" UUID NOT NULL DEFAULT gen_random_uuid();
