-- +goose Up
-- Leases by address as a number, so the lowest free address of a dynamic
-- range is found in the index (the first lease whose successor is missing)
-- instead of by loading every lease of the subnet.
ALTER TABLE dhcp_leases ADD COLUMN ip_int BIGINT NOT NULL DEFAULT 0;

-- Backfill from the dotted quad, one octet per pass, with functions both
-- dialects share (ltrim with a character set, substr, length).
ALTER TABLE dhcp_leases ADD COLUMN ip_tail TEXT NOT NULL DEFAULT '';
UPDATE dhcp_leases SET ip_tail = ip || '.';
UPDATE dhcp_leases SET ip_int = ip_int * 256 + CAST(substr(ip_tail, 1, length(ip_tail) - length(ltrim(ip_tail, '0123456789'))) AS BIGINT),
    ip_tail = substr(ip_tail, length(ip_tail) - length(ltrim(ip_tail, '0123456789')) + 2);
UPDATE dhcp_leases SET ip_int = ip_int * 256 + CAST(substr(ip_tail, 1, length(ip_tail) - length(ltrim(ip_tail, '0123456789'))) AS BIGINT),
    ip_tail = substr(ip_tail, length(ip_tail) - length(ltrim(ip_tail, '0123456789')) + 2);
UPDATE dhcp_leases SET ip_int = ip_int * 256 + CAST(substr(ip_tail, 1, length(ip_tail) - length(ltrim(ip_tail, '0123456789'))) AS BIGINT),
    ip_tail = substr(ip_tail, length(ip_tail) - length(ltrim(ip_tail, '0123456789')) + 2);
UPDATE dhcp_leases SET ip_int = ip_int * 256 + CAST(substr(ip_tail, 1, length(ip_tail) - length(ltrim(ip_tail, '0123456789'))) AS BIGINT),
    ip_tail = substr(ip_tail, length(ip_tail) - length(ltrim(ip_tail, '0123456789')) + 2);
ALTER TABLE dhcp_leases DROP COLUMN ip_tail;

-- Unique as well: a second guard, beside the text key, that one address
-- never goes to two MACs.
CREATE UNIQUE INDEX dhcp_leases_ip_int ON dhcp_leases (subnet_id, ip_int);

-- +goose Down
DROP INDEX dhcp_leases_ip_int;
ALTER TABLE dhcp_leases DROP COLUMN ip_int;
