package power

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/hypervisor"
	"github.com/fibrixcloud/fibrix/provisioner/libvirttest"
	"github.com/google/uuid"
)

// TestVirsh drives a domain of libvirt's test driver (inside the real
// libvirtd) through the virsh power driver.
func TestVirsh(t *testing.T) {
	libvirttest.Ensure(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The test driver's state lives while a connection to it is open:
	// keep this one for the whole test.
	c, err := hypervisor.Dial(ctx, hypervisor.Config{URI: "test:///default"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	name := "fibrix-power-" + uuid.NewString()[:8]
	if err := c.Define(ctx, hypervisor.DomainSpec{Name: name, UUID: uuid.NewString(), VCPUs: 1, MemoryMiB: 64, Type: hypervisor.TypeQEMU}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = c.Destroy(context.Background(), name)
		_ = c.Undefine(context.Background(), name)
	}()

	d, err := New(Config{Type: "virsh", Params: map[string]string{"uri": "test:///default", "domain": name}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.(*Virsh).Close()
	want := func(s State, dom hypervisor.DomainState) {
		t.Helper()
		got, err := d.PowerState(ctx)
		if err != nil || got != s {
			t.Fatalf("PowerState = %s, %v; want %s", got, err, s)
		}
		if ds, err := c.State(ctx, name); err != nil || ds != dom {
			t.Fatalf("libvirt says %s, %v; want %s", ds, err, dom)
		}
	}
	v := d.(*Virsh)
	want(Off, hypervisor.ShutOff)
	for _, step := range []struct {
		name string
		f    func(context.Context) error
		s    State
		dom  hypervisor.DomainState
	}{
		{"PowerOn", v.PowerOn, On, hypervisor.Running},
		{"PowerOn again", v.PowerOn, On, hypervisor.Running},
		{"PowerCycle", v.PowerCycle, On, hypervisor.Running},
		{"PowerOff", v.PowerOff, Off, hypervisor.ShutOff},
		{"PowerOff again", v.PowerOff, Off, hypervisor.ShutOff},
		{"PowerOn", v.PowerOn, On, hypervisor.Running},
		// The test driver's guests obey ACPI at once.
		{"SoftOff", v.SoftOff, Off, hypervisor.ShutOff},
	} {
		if err := step.f(ctx); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		want(step.s, step.dom)
	}

	missing, err := New(Config{Type: "virsh", Params: map[string]string{"uri": "test:///default", "domain": "fibrix-no-such-domain"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer missing.(*Virsh).Close()
	if _, err := missing.PowerState(ctx); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("PowerState of a missing domain = %v; want ErrNotFound", err)
	}
}
