-- +goose Up
-- Images are for VMs (qcow2, booted by libvirt) or for machines (raw disk
-- images with a boot loader, written by the deploy agent).
ALTER TABLE images ADD COLUMN kind TEXT NOT NULL DEFAULT 'vm';
-- A machine deployed as a KVM host is registered as a host when its deploy
-- reports; host_id links it once registered.
ALTER TABLE machines ADD COLUMN deploy_kvm_host BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE machines DROP COLUMN deploy_kvm_host;
ALTER TABLE images DROP COLUMN kind;
