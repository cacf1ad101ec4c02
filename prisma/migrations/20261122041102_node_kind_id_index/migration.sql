-- CreateIndex
CREATE INDEX "Node_kind_id_idx" ON "Node"("kind", "id");
