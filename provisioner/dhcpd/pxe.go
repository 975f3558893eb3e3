package dhcpd

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// Vendor classes (option 60) of network-booting firmware.
const (
	classPXE  = "PXEClient"
	classHTTP = "HTTPClient"
)

// pxeClass is "PXEClient" or "HTTPClient" for a network-booting client, ""
// for everyone else.
func pxeClass(req *dhcpv4.DHCPv4) string {
	vc := req.ClassIdentifier()
	switch {
	case strings.HasPrefix(vc, classHTTP):
		return classHTTP
	case strings.HasPrefix(vc, classPXE):
		return classPXE
	}
	return ""
}

// isIPXE tells iPXE (already running) from the firmware that loads it. iPXE
// sends "iPXE" as raw bytes, not RFC 3004 framing; UserClass() returns it
// either way.
func isIPXE(req *dhcpv4.DHCPv4) bool {
	return slices.Contains(req.UserClass(), "iPXE")
}

// bootOptions points a network-booting client at its next stage: iPXE at
// its machine's script over HTTP, firmware at an iPXE binary (TFTP) or, for
// UEFI HTTP boot, at ipxe.efi over HTTP. Clients that do not netboot get
// none, and neither do architectures we have no binary for.
func (h *Handler) bootOptions(ctx context.Context, log *slog.Logger, resp, req *dhcpv4.DHCPv4, l store.Lease) {
	class := pxeClass(req)
	if class == "" {
		return
	}
	arch := iana.Arch(0xffff)
	if a := req.ClientArch(); len(a) > 0 {
		arch = a[0]
	} else if class == classPXE {
		arch = iana.INTEL_X86PC // PXE 2.1 ROMs that predate option 93 are BIOS
	}
	// The PXE spec asks the server to echo the client's machine GUID.
	if guid := req.Options.Get(dhcpv4.OptionClientMachineIdentifier); guid != nil {
		resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, guid))
	}
	switch {
	case isIPXE(req):
		if h.httpURL == "" {
			log.WarnContext(ctx, "iPXE client, but no HTTP boot URL is configured")
			return
		}
		h.setBootFile(resp, h.httpURL+"/ipxe/"+l.MAC, false)
	case class == classHTTP || arch == iana.EFI_X86_64_HTTP:
		if h.httpURL == "" {
			log.WarnContext(ctx, "UEFI HTTP boot client, but no HTTP boot URL is configured")
			return
		}
		// UEFI HTTP boot ignores an offer without HTTPClient in option 60.
		resp.UpdateOption(dhcpv4.OptClassIdentifier(classHTTP))
		h.setBootFile(resp, h.httpURL+"/"+UEFIBootFile, false)
	case arch == iana.INTEL_X86PC:
		h.setBootFile(resp, BIOSBootFile, true)
	case arch == iana.EFI_BC || arch == iana.EFI_X86_64:
		h.setBootFile(resp, UEFIBootFile, true)
	default:
		log.InfoContext(ctx, "no boot file for this client architecture", "arch", arch.String())
		return
	}
	log.InfoContext(ctx, "network boot", "class", class, "arch", arch.String(), "ipxe", isIPXE(req), "file", resp.BootFileName)
}

func (h *Handler) setBootFile(resp *dhcpv4.DHCPv4, file string, tftp bool) {
	resp.BootFileName = file // the legacy header field older ROMs read
	resp.UpdateOption(dhcpv4.OptBootFileName(file))
	if !tftp {
		return
	}
	resp.ServerIPAddr = h.cfg.TFTPServer.AsSlice()
	resp.UpdateOption(dhcpv4.OptTFTPServerName(h.cfg.TFTPServer.String()))
	// Sub-option 6 (discovery control) = 8: boot from the file given, do not
	// wait for PXE boot servers; some BIOS ROMs stall without it.
	resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionVendorSpecificInformation, []byte{6, 1, 8}))
}
