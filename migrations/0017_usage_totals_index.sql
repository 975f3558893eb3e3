-- +goose Up
-- A tenant's month of usage totals, in the order the dashboard, the billing
-- page and the invoice list them. Without it SQLite reads the month of every
-- tenant through the primary key, whose order half matches, for each page.
CREATE INDEX usage_totals_tenant_lines ON usage_totals (tenant_id, month, resource_kind DESC, resource_name, resource_id, price_id);
DROP INDEX usage_totals_tenant;

-- +goose Down
CREATE INDEX usage_totals_tenant ON usage_totals (tenant_id, month);
DROP INDEX usage_totals_tenant_lines;
