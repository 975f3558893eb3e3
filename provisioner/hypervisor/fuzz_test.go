package hypervisor

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// xmlShape lists every element of a document with its attribute names, in
// order, and fails on anything but elements and text: a value that breaks
// out of its quoting shows up as an extra element, attribute or directive.
func xmlShape(t *testing.T, doc []byte) []string {
	t.Helper()
	var shape []string
	d := xml.NewDecoder(bytes.NewReader(doc))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return shape
		}
		if err != nil {
			t.Fatalf("output is not well-formed XML: %v\n%s", err, doc)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			s := "<" + tok.Name.Space + ":" + tok.Name.Local
			for _, a := range tok.Attr {
				s += " " + a.Name.Space + ":" + a.Name.Local
			}
			shape = append(shape, s)
		case xml.EndElement:
			shape = append(shape, "</"+tok.Name.Local)
		case xml.CharData:
		default:
			t.Fatalf("output holds %T %q:\n%s", tok, tok, doc)
		}
	}
}

// placeholder keeps whether a field is set, which decides the elements.
func placeholder(s, p string) string {
	if s == "" {
		return ""
	}
	return p
}

func FuzzDomainXML(f *testing.F) {
	const uuid = "0190d5e2-7b1c-7c3e-9a4b-3f2d1e0c9b8a"
	type seed struct {
		name, uuid                       string
		vcpus                            int
		mem                              int64
		kvm                              bool
		disk, bridge, mac, serial        string
		kernel, initrd, cmdline, console string
	}
	for _, s := range []seed{
		{"vm-7f3a", uuid, 1, 512, false, "/var/lib/fibrix/pool/vm-7f3a.qcow2", "br0", "52:54:00:AB:CD:EF", "ds=nocloud-net;s=http://10.0.0.1:8081/tok3n/", "", "", "", ""},
		{"web-1", "0190D5E27B1C7C3E9A4B3F2D1E0C9B8B", 4, 8192, true, "/srv/pool/web-1.qcow2", "br-vms", "52:54:00:00:00:01", `a&b<c>"d'/`, "", "", "", "/var/log/x.log"},
		{"probe", uuid, 1, 256, false, "", "", "", "", "/srv/boot/vmlinuz", "/srv/boot/initrd.img", "console=ttyS0 root=/dev/vda", ""},
		{"x</name><devices><disk/></devices><name>y", uuid, 1, 512, false, "", "", "", "", "", "", "", ""},
		{"vm", uuid, 1, 512, false, `/a"/><source file="/etc/shadow`, "br0\"/><x", "52:54:00:00:00:02", "]]><!--\n<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>&e;", "", "", "", ""},
		{"vm", uuid, 1, 512, false, "/p\x00q", "", "", "\x01\x7f\ufffe", "/k", "", "a\r\nb\tc", "/l\xff"},
		{"vm", "urn:uuid:" + uuid, 1, 16, true, "", "", "", "", "", "", "", ""},
		{"", "", 0, 0, false, "", "", "", "", "", "", "", ""},
		{"vm", uuid, 1, 512, false, "", "br0", "01:00:5e:00:00:01", "", "", "/i", "", ""},
		{"vm", uuid, -1, 1 << 62, false, "", "", "", "", "", "", "", ""},
	} {
		f.Add(s.name, s.uuid, s.vcpus, s.mem, s.kvm, s.disk, s.bridge, s.mac, s.serial, s.kernel, s.initrd, s.cmdline, s.console)
	}
	f.Fuzz(func(t *testing.T, name, id string, vcpus int, mem int64, kvm bool,
		disk, bridge, mac, serial, kernel, initrd, cmdline, console string) {
		spec := DomainSpec{
			Name: name, UUID: id, VCPUs: vcpus, MemoryMiB: mem, Type: TypeQEMU,
			DiskPath: disk, Bridge: bridge, MAC: mac, SMBIOSSerial: serial,
			Kernel: kernel, Initrd: initrd, Cmdline: cmdline, ConsoleLog: console,
		}
		if kvm {
			spec.Type = TypeKVM
		}
		out, err := DomainXML(spec)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %q does not wrap ErrInvalid", err)
			}
			if out != nil {
				t.Fatalf("output with an error")
			}
			return
		}

		// Every value comes back exactly: nothing was dropped or altered
		// on the way into the XML, which libvirt would then act on.
		var got xDomain
		if err := xml.Unmarshal(out, &got); err != nil {
			t.Fatalf("output does not parse: %v\n%s", err, out)
		}
		if got.Name != spec.Name || got.Type != spec.Type || got.VCPU != spec.VCPUs || got.Memory.Value != spec.MemoryMiB {
			t.Fatalf("identity changed: %+v\n%s", got, out)
		}
		if got.OS.Kernel != kernel || got.OS.Initrd != initrd || got.OS.Cmdline != cmdline {
			t.Fatalf("boot changed: %q %q %q\n%s", got.OS.Kernel, got.OS.Initrd, got.OS.Cmdline, out)
		}
		if (disk != "") != (len(got.Devices.Disks) == 1) || disk != "" && got.Devices.Disks[0].Source.File != disk {
			t.Fatalf("disk changed: %+v\n%s", got.Devices.Disks, out)
		}
		if (bridge != "") != (len(got.Devices.Interfaces) == 1) || bridge != "" && got.Devices.Interfaces[0].Source.Bridge != bridge {
			t.Fatalf("interface changed: %+v\n%s", got.Devices.Interfaces, out)
		}
		if serial != "" && (got.Sysinfo == nil || len(got.Sysinfo.Entries) != 1 || got.Sysinfo.Entries[0].Value != serial) {
			t.Fatalf("serial changed: %+v\n%s", got.Sysinfo, out)
		}
		if console != "" && (len(got.Devices.Serials) != 1 || got.Devices.Serials[0].Log == nil || got.Devices.Serials[0].Log.File != console) {
			t.Fatalf("console log changed: %+v\n%s", got.Devices.Serials, out)
		}
		again, err := xml.MarshalIndent(got, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(out), string(append(again, '\n'))); diff != "" {
			t.Fatalf("round trip changed the XML (-first +second):\n%s", diff)
		}

		// The same spec with tame values has the same elements and
		// attributes: no value added any.
		tame := spec
		tame.Name = "vm"
		tame.DiskPath = placeholder(disk, "/disk")
		tame.Bridge = placeholder(bridge, "br0")
		tame.SMBIOSSerial = placeholder(serial, "serial")
		tame.Kernel = placeholder(kernel, "/kernel")
		tame.Initrd = placeholder(initrd, "/initrd")
		tame.Cmdline = placeholder(cmdline, "console=ttyS0")
		tame.ConsoleLog = placeholder(console, "/console.log")
		base, err := DomainXML(tame)
		if err != nil {
			t.Fatalf("tame spec refused: %v", err)
		}
		if diff := cmp.Diff(xmlShape(t, base), xmlShape(t, out)); diff != "" {
			t.Fatalf("elements differ from the tame spec's (-tame +fuzzed):\n%s\n%s", diff, out)
		}
		if n := strings.Count(string(out), "<name>"); n != 1 {
			t.Fatalf("%d <name> elements", n)
		}
	})
}
