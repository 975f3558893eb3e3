-- +goose Up
-- The PTR name a customer chose for a VM's address, relative to the
-- tenant's subzone ("@" for the subzone itself); empty: the VM's own name.
-- It lives on the address row, so there is one per address, and releasing
-- the address (the VM's deletion does) takes it away with the row.
ALTER TABLE ip_addresses ADD COLUMN ptr_name TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE ip_addresses DROP COLUMN ptr_name;
