-- +goose Up
-- What the provisioner samples from libvirt for each running VM: CPU as a
-- percentage of the VM's vCPUs, memory as the balloon reports it, and disk
-- and network rates in bytes per second. resolution is the number of
-- seconds a row stands for: 0 for a raw sample (kept about a day), 600 for
-- a ten-minute rollup of raw samples (kept eight days, for the week view).
-- Deleting a VM row takes its samples; the sampler prunes the samples of
-- VMs marked deleted.
CREATE TABLE vm_metrics (
    vm_id               TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    resolution          INTEGER NOT NULL,
    at                  TIMESTAMP NOT NULL,
    cpu_percent         DOUBLE PRECISION NOT NULL,
    mem_used_bytes      BIGINT NOT NULL,
    mem_available_bytes BIGINT NOT NULL,
    disk_read_bps       DOUBLE PRECISION NOT NULL,
    disk_write_bps      DOUBLE PRECISION NOT NULL,
    net_rx_bps          DOUBLE PRECISION NOT NULL,
    net_tx_bps          DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (vm_id, resolution, at)
);
-- Retention deletes the oldest rows of each resolution.
CREATE INDEX vm_metrics_age ON vm_metrics (resolution, at);

-- +goose Down
DROP TABLE vm_metrics;
