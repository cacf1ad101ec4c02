-- AlterTable
ALTER TABLE "Session" ADD COLUMN     "activeOn" TEXT;
