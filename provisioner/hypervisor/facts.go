package hypervisor

import (
	"context"
	"encoding/xml"
	"fmt"

	"github.com/digitalocean/go-libvirt"
)

// Facts is what a host offers to VMs.
type Facts struct {
	CPUModel  string // e.g. "Skylake-Client-IBRS", else the architecture
	Arch      string // e.g. "x86_64"
	Cores     int    // physical cores over all sockets
	Threads   int    // logical CPUs
	MemoryMiB int64
	Pools     []PoolFacts // active storage pools
}

// PoolFacts describes one active storage pool; sizes are rounded down.
type PoolFacts struct {
	Name          string
	Path          string // target directory, for directory pools
	CapacityGiB   int64
	AllocationGiB int64
	AvailableGiB  int64
}

const gib = 1 << 30

// Facts reads the host's CPU, memory and storage pools.
func (c *Conn) Facts(ctx context.Context) (Facts, error) {
	type nodeInfo struct {
		model                                     [32]int8
		memKiB                                    uint64
		cpus, mhz, nodes, sockets, cores, threads int32
	}
	ni, err := do(ctx, func() (nodeInfo, error) {
		var n nodeInfo
		var err error
		n.model, n.memKiB, n.cpus, n.mhz, n.nodes, n.sockets, n.cores, n.threads, err = c.lv.NodeGetInfo()
		return n, err
	})
	if err != nil {
		return Facts{}, fmt.Errorf("node info: %w", err)
	}
	f := Facts{
		Arch:      cstring(ni.model[:]),
		Cores:     int(max(ni.nodes, 1) * max(ni.sockets, 1) * max(ni.cores, 1)),
		Threads:   int(ni.cpus),
		MemoryMiB: int64(ni.memKiB / 1024),
	}
	capsXML, err := do(ctx, c.lv.ConnectGetCapabilities)
	if err != nil {
		return Facts{}, fmt.Errorf("capabilities: %w", err)
	}
	var caps struct {
		Arch  string `xml:"host>cpu>arch"`
		Model string `xml:"host>cpu>model"`
	}
	if err := xml.Unmarshal([]byte(capsXML), &caps); err != nil {
		return Facts{}, fmt.Errorf("parse capabilities: %w", err)
	}
	if caps.Arch != "" {
		f.Arch = caps.Arch
	}
	f.CPUModel = caps.Model
	if f.CPUModel == "" {
		f.CPUModel = f.Arch
	}

	pools, err := do(ctx, func() ([]libvirt.StoragePool, error) {
		p, _, err := c.lv.ConnectListAllStoragePools(1, libvirt.ConnectListStoragePoolsActive)
		return p, err
	})
	if err != nil {
		return Facts{}, fmt.Errorf("list storage pools: %w", err)
	}
	for _, p := range pools {
		pf, err := c.poolFacts(ctx, p)
		if err != nil {
			return Facts{}, err
		}
		f.Pools = append(f.Pools, pf)
	}
	return f, nil
}

func (c *Conn) poolFacts(ctx context.Context, p libvirt.StoragePool) (PoolFacts, error) {
	type info struct{ capacity, allocation, available uint64 }
	in, err := do(ctx, func() (info, error) {
		var in info
		var err error
		_, in.capacity, in.allocation, in.available, err = c.lv.StoragePoolGetInfo(p)
		return in, err
	})
	if err != nil {
		return PoolFacts{}, fmt.Errorf("storage pool %s: %w", p.Name, err)
	}
	path, err := c.poolPath(ctx, p)
	if err != nil {
		return PoolFacts{}, err
	}
	return PoolFacts{
		Name:          p.Name,
		Path:          path,
		CapacityGiB:   int64(in.capacity / gib),
		AllocationGiB: int64(in.allocation / gib),
		AvailableGiB:  int64(in.available / gib),
	}, nil
}

func (c *Conn) poolPath(ctx context.Context, p libvirt.StoragePool) (string, error) {
	x, err := do(ctx, func() (string, error) { return c.lv.StoragePoolGetXMLDesc(p, 0) })
	if err != nil {
		return "", fmt.Errorf("storage pool %s xml: %w", p.Name, err)
	}
	var px struct {
		Path string `xml:"target>path"`
	}
	if err := xml.Unmarshal([]byte(x), &px); err != nil {
		return "", fmt.Errorf("parse storage pool %s xml: %w", p.Name, err)
	}
	return px.Path, nil
}
