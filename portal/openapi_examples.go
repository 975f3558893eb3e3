package portal

// oaExamples are request bodies shown in the OpenAPI document. Each is sent
// as written to its route by TestOpenAPIExamplesRun, so they stay runnable.
func oaExamples() map[string]oaObj {
	return map[string]oaObj{
		"AdminImageCreate": {"name": "debian-12", "os": "Debian", "version": "12",
			"source_url": "https://images.isp.example/debian-12.qcow2",
			"checksum":   "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "enabled": true},
		"AdminPlanCreate": {"name": "standard-1", "vcpus": 1, "memory_mib": 1024, "disk_gib": 10, "enabled": true},
		"SubnetCreate":    {"name": "vm-lan", "cidr": "10.20.0.0/24", "gateway": "10.20.0.1", "dns_servers": []string{"10.20.0.1"}, "range_start": "10.20.0.10", "range_end": "10.20.0.250"},
		"BootSubnetCreate": {"name": "rack-1", "cidr": "10.30.0.0/24", "gateway": "10.30.0.1", "dns_servers": []string{"10.30.0.1"},
			"range_start": "10.30.0.100", "range_end": "10.30.0.199", "lease_seconds": 3600},
		"HostCreate":      {"name": "rack1-kvm7", "uri": "test:///default", "storage_pool": "default-pool"},
		"DNSRecordCreate": {"name": "www", "type": "A", "value": "192.0.2.10", "ttl": 3600},
		"SSHKeyCreate": {"name": "laptop",
			"public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl laptop"},
	}
}
