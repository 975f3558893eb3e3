package metadata

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"strings"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// yamlString quotes s as a YAML double-quoted scalar. JSON strings are
// valid YAML, so json.Marshal does the escaping.
func yamlString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

func metaData(m store.Metadata) []byte {
	return fmt.Appendf(nil, "instance-id: %s\nlocal-hostname: %s\n", yamlString(instanceID(m)), yamlString(m.Name))
}

// instanceID changes with each console password reset: cloud-init runs its
// per-instance modules, chpasswd among them, again when it sees a new one.
func instanceID(m store.Metadata) string {
	if m.RescueGeneration > 0 {
		return fmt.Sprintf("%s-rescue-%d", m.VMID, m.RescueGeneration)
	}
	return m.VMID
}

// ourCloudConfig is the part of the user-data the provider owns: identity
// and the ways in (the tenant's keys over SSH, no passwords there, no root;
// after a console password reset, that password on the console). The keys
// go both to an explicit entry for the default user, so another name than
// the image's own works, and to the top level, so they survive a customer
// cloud-config that replaces the users list.
func (s *Server) ourCloudConfig(m store.Metadata) []byte {
	var b bytes.Buffer
	keys := func(indent string) {
		if len(m.SSHKeys) == 0 {
			b.WriteString(" []\n")
			return
		}
		b.WriteString("\n")
		for _, k := range m.SSHKeys {
			fmt.Fprintf(&b, "%s- %s\n", indent, yamlString(k))
		}
	}
	fqdn := m.Name + "." + m.TenantSlug + "." + s.cfg.Zone
	b.WriteString("#cloud-config\n")
	fmt.Fprintf(&b, "hostname: %s\n", yamlString(m.Name))
	fmt.Fprintf(&b, "fqdn: %s\n", yamlString(fqdn))
	b.WriteString("manage_etc_hosts: true\n")
	b.WriteString("users:\n")
	fmt.Fprintf(&b, "  - name: %s\n", yamlString(s.cfg.DefaultUser))
	b.WriteString("    shell: /bin/bash\n")
	rescue := m.RescueGeneration > 0 && m.RescuePasswordHash != ""
	fmt.Fprintf(&b, "    lock_passwd: %t\n", !rescue)
	b.WriteString("    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n")
	b.WriteString("    ssh_authorized_keys:")
	keys("      ")
	b.WriteString("ssh_authorized_keys:")
	keys("  ")
	b.WriteString("ssh_pwauth: false\n")
	b.WriteString("disable_root: true\n")
	if rescue {
		// A new instance-id would otherwise make new host keys, and the
		// customer's known_hosts would cry wolf; missing keys are still made.
		b.WriteString("ssh_deletekeys: false\n")
		b.WriteString("chpasswd:\n")
		b.WriteString("  expire: false\n")
		b.WriteString("  users:\n")
		fmt.Fprintf(&b, "    - name: %s\n", yamlString(s.cfg.DefaultUser))
		fmt.Fprintf(&b, "      password: %s\n", yamlString(m.RescuePasswordHash))
		b.WriteString("      type: hash\n")
	}
	return b.Bytes()
}

// userData returns our cloud-config alone, or, when the customer supplied
// user-data, a MIME multipart message with ours first and theirs second;
// cloud-init processes the parts in order and merges cloud-configs.
func (s *Server) userData(m store.Metadata) (body []byte, contentType string, err error) {
	ours := s.ourCloudConfig(m)
	if strings.TrimSpace(m.UserData) == "" {
		return ours, "text/cloud-config; charset=utf-8", nil
	}
	var parts bytes.Buffer
	mw := multipart.NewWriter(&parts)
	if err := writePart(mw, "text/cloud-config", "fibrix.cfg", ours); err != nil {
		return nil, "", err
	}
	if hdr, inner, ok := customerMIME(m.UserData); ok {
		// Their own MIME message: nest it whole; cloud-init walks nested parts.
		h := textproto.MIMEHeader{}
		for k, v := range hdr {
			h[k] = v
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			return nil, "", fmt.Errorf("user-data part: %w", err)
		}
		if _, err := w.Write(inner); err != nil {
			return nil, "", fmt.Errorf("user-data part: %w", err)
		}
	} else if err := writePart(mw, customerContentType(m.UserData), "user-data", []byte(m.UserData)); err != nil {
		return nil, "", err
	}
	if err := mw.Close(); err != nil {
		return nil, "", fmt.Errorf("user-data: %w", err)
	}
	contentType = mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": mw.Boundary()})
	// cloud-init reads the body as a MIME message only when it carries its
	// own headers; the HTTP Content-Type is not consulted.
	var b bytes.Buffer
	fmt.Fprintf(&b, "Content-Type: %s\r\nMIME-Version: 1.0\r\n\r\n", contentType)
	b.Write(parts.Bytes())
	return b.Bytes(), contentType, nil
}

func writePart(mw *multipart.Writer, ctype, filename string, body []byte) error {
	h := textproto.MIMEHeader{}
	h.Set("Content-Type", mime.FormatMediaType(ctype, map[string]string{"charset": "utf-8"}))
	h.Set("MIME-Version", "1.0")
	h.Set("Content-Transfer-Encoding", "8bit")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
	w, err := mw.CreatePart(h)
	if err != nil {
		return fmt.Errorf("user-data part: %w", err)
	}
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("user-data part: %w", err)
	}
	return nil
}

// customerContentType names the type cloud-init would give the customer's
// user-data on its own; anything unknown is text/plain, which cloud-init
// inspects again itself.
func customerContentType(ud string) string {
	// cloud-init's prefixes, longest first as it matches them
	// (cloudinit/handlers INCLUSION_TYPES_MAP).
	startsWith := [...]struct{ prefix, ctype string }{
		{"#cloud-config-archive", "text/cloud-config-archive"},
		{"## template: jinja", "text/jinja2"},
		{"#cloud-config-jsonp", "text/cloud-config-jsonp"},
		{"#cloud-boothook", "text/cloud-boothook"},
		{"#include-once", "text/x-include-once-url"},
		{"#part-handler", "text/part-handler"},
		{"#cloud-config", "text/cloud-config"},
		{"#include", "text/x-include-url"},
		{"#!", "text/x-shellscript"},
	}
	lc := strings.ToLower(ud)
	for _, p := range startsWith {
		if strings.HasPrefix(lc, p.prefix) {
			return p.ctype
		}
	}
	return "text/plain"
}

// customerMIME recognises user-data that is already a multipart MIME message
// (as cloud-init does: a MIME-Version header near the start) and returns its
// Content-Type header and body.
func customerMIME(ud string) (textproto.MIMEHeader, []byte, bool) {
	head := ud[:min(len(ud), 4096)]
	if !strings.Contains(strings.ToLower(head), "mime-version:") {
		return nil, nil, false
	}
	msg, err := mail.ReadMessage(bufio.NewReader(strings.NewReader(ud)))
	if err != nil {
		return nil, nil, false
	}
	ct := msg.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" {
		return nil, nil, false
	}
	var body bytes.Buffer
	if _, err := body.ReadFrom(msg.Body); err != nil {
		return nil, nil, false
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Type", ct)
	return h, body.Bytes(), true
}

// NetworkConfig renders the VM's static address for cloud-init, served to
// guests and passed on the kernel command line of directly booted ones. It is the
// one place that knows the format: version 1 "physical" is what Debian 12's
// cloud-init (22.4) renders to ifupdown; switching to version 2 means
// rewriting only this function.
func NetworkConfig(m store.Metadata) []byte {
	a := m.Address
	var b bytes.Buffer
	b.WriteString("version: 1\nconfig:\n")
	b.WriteString("  - type: physical\n")
	b.WriteString("    name: eth0\n")
	fmt.Fprintf(&b, "    mac_address: %s\n", yamlString(strings.ToLower(m.MAC)))
	b.WriteString("    subnets:\n")
	b.WriteString("      - type: static\n")
	fmt.Fprintf(&b, "        address: %s\n", yamlString(a.Prefix.String()))
	if a.Gateway.IsValid() {
		fmt.Fprintf(&b, "        gateway: %s\n", yamlString(a.Gateway.String()))
	}
	if len(a.DNS) > 0 {
		b.WriteString("        dns_nameservers:\n")
		for _, d := range a.DNS {
			fmt.Fprintf(&b, "          - %s\n", yamlString(d.String()))
		}
	}
	return b.Bytes()
}
