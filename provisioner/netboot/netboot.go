// Package netboot is the HTTP half of network boot: it hands each machine
// that iPXE brings up the script its lifecycle state calls for, and serves
// the commissioning kernel, its initrd and the OS images the agent writes.
// A deployed or ready machine is told to boot from its own disk, so there
// is no PXE loop after a deploy.
package netboot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/template"
	"unicode"
)

// Boot is what the boot service needs to know about the machine owning a MAC.
type Boot struct {
	// Known is false for a MAC no machine has been enlisted with.
	Known     bool
	MachineID string
	Name      string
	// State is the machine's lifecycle state: new, commissioning, ready,
	// deploying, deployed, releasing, rescue, broken, failed_…
	State string
	// AgentToken is the one-time token the boot environment reports with;
	// set only while the machine is in a state whose agent reports.
	AgentToken string
	// Erase: a releasing machine's agent quick-wipes its disks.
	Erase bool
}

// Machines looks machines up by boot MAC.
type Machines interface {
	BootState(ctx context.Context, mac string) (Boot, error)
}

// Config is how the boot service behaves.
type Config struct {
	// BaseURL is how booting machines reach this handler, the /boot prefix
	// included: http://10.213.0.1:8080/boot.
	BaseURL string
	// KernelPath and InitrdPath are the commissioning environment on disk,
	// served as /boot/files/vmlinuz and /boot/files/initrd.img.
	KernelPath, InitrdPath string
	// ImageDir holds the OS images served under /boot/images/.
	ImageDir string
}

// Validate checks the configuration; cmd/ calls it once before New.
func (c *Config) Validate() error {
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	u, err := url.Parse(c.BaseURL)
	if err != nil {
		return fmt.Errorf("netboot: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("netboot: base URL %q must be http(s)://host[:port]/path", c.BaseURL)
	}
	// The URL is pasted into iPXE scripts and the kernel command line.
	if strings.ContainsFunc(c.BaseURL, func(r rune) bool { return !safeScriptRune(r) }) {
		return fmt.Errorf("netboot: base URL %q has characters iPXE would interpret", c.BaseURL)
	}
	for what, p := range map[string]string{"kernel": c.KernelPath, "initrd": c.InitrdPath} {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("netboot: %s: %w (make agent-initramfs builds the commissioning kernel and initrd into out/agent; or set --boot-kernel and --boot-initrd)", what, err)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("netboot: %s %s is not a regular file", what, p)
		}
	}
	if c.ImageDir != "" {
		fi, err := os.Stat(c.ImageDir)
		if err != nil {
			return fmt.Errorf("netboot: image dir: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("netboot: image dir %s is not a directory", c.ImageDir)
		}
	}
	return nil
}

// Handler serves /boot/ipxe/{mac}, /boot/files/{name} and /boot/images/{file}.
type Handler struct {
	cfg     Config
	m       Machines
	log     *slog.Logger
	scripts *template.Template
	mux     *http.ServeMux
}

// New returns the handler. Call cfg.Validate first; New only trims the base URL.
func New(cfg Config, m Machines, log *slog.Logger) *Handler {
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		cfg:     cfg,
		m:       m,
		log:     log.With("component", "netboot"),
		scripts: template.Must(template.New("").Parse(scriptTemplates)),
		mux:     http.NewServeMux(),
	}
	h.mux.HandleFunc("GET /boot/ipxe/{mac}", h.script)
	h.mux.HandleFunc("GET /boot/files/{name}", h.file)
	h.mux.HandleFunc("GET /boot/images/{file}", h.image)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// The files of the commissioning environment, by the names scripts use.
const (
	kernelName = "vmlinuz"
	initrdName = "initrd.img"
)

// agentMode says which states boot our environment, in which mode, and
// whether its agent reports back (and so gets the token). Every other state
// of a known machine boots from its local disk.
func agentMode(state string) (mode string, token, ok bool) {
	switch state {
	case "commissioning":
		return "commission", true, true
	case "deploying":
		return "deploy", true, true
	case "releasing":
		// The agent records the disk erase.
		return "release", true, true
	case "rescue":
		// Rescue is interactive; nothing reports.
		return "rescue", false, true
	}
	return "", false, false
}

type scriptData struct {
	BaseURL, MAC, Name, State string
	Mode, Token               string
	Kernel, Initrd            string
	Wipe                      bool
}

func (h *Handler) script(w http.ResponseWriter, r *http.Request) {
	hw, err := net.ParseMAC(r.PathValue("mac"))
	if err != nil || len(hw) != 6 {
		http.Error(w, "malformed MAC address", http.StatusBadRequest)
		return
	}
	mac := hw.String()
	log := h.log.With("mac", mac, "client", r.RemoteAddr)
	b, err := h.m.BootState(r.Context(), mac)
	if err != nil {
		log.Error("boot script: looking up machine", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	d := scriptData{BaseURL: h.cfg.BaseURL, MAC: mac, Kernel: kernelName, Initrd: initrdName}
	name := "unknown"
	if b.Known {
		log = log.With("machine", b.MachineID)
		d.Name, d.State = printable(b.Name), printable(b.State)
		name = "local"
		if mode, token, ok := agentMode(b.State); ok {
			name, d.Mode = "agent", mode
			d.Wipe = mode == "release" && b.Erase
			if token && b.AgentToken != "" {
				if !safeToken(b.AgentToken) {
					log.Error("boot script: agent token has characters unsafe for a kernel command line")
					http.Error(w, "internal error", http.StatusInternalServerError)
					return
				}
				d.Token = b.AgentToken
			}
		}
	}
	var buf bytes.Buffer
	if err := h.scripts.ExecuteTemplate(&buf, name, d); err != nil {
		log.Error("boot script: rendering", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	// The script may carry a one-time token.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(buf.Bytes())
	log.Info("boot script", "state", b.State, "script", name, "mode", d.Mode)
}

// file serves the configured kernel and initrd, nothing else.
func (h *Handler) file(w http.ResponseWriter, r *http.Request) {
	var path string
	switch r.PathValue("name") {
	case kernelName:
		path = h.cfg.KernelPath
	case initrdName:
		path = h.cfg.InitrdPath
	}
	if path == "" {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		h.log.Error("boot file", "file", r.PathValue("name"), "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	h.serveFile(w, r, f)
}

// image serves a regular file directly inside ImageDir.
func (h *Handler) image(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	log := h.log.With("file", name, "client", r.RemoteAddr)
	if h.cfg.ImageDir == "" {
		http.NotFound(w, r)
		return
	}
	if !plainName(name) {
		log.Warn("boot image refused: not a plain file name")
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	root, err := os.OpenRoot(h.cfg.ImageDir)
	if err != nil {
		log.Error("boot image: opening image dir", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	defer root.Close()
	f, err := root.Open(name)
	switch {
	case errors.Is(err, os.ErrNotExist):
		http.NotFound(w, r)
		return
	case err != nil:
		// os.Root refuses symlinks that leave the directory.
		log.Warn("boot image refused", "err", err)
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	defer f.Close()
	h.serveFile(w, r, f)
}

// serveFile answers with Range support, for regular files only.
func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, f *os.File) {
	fi, err := f.Stat()
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if !fi.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
}

// plainName reports whether name is one file name, with nothing a path
// could be built from.
func plainName(name string) bool {
	if name == "" || name == "." || len(name) > 255 || strings.Contains(name, "..") ||
		strings.ContainsAny(name, "/\\\x00") {
		return false
	}
	return !strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) })
}

// safeToken reports whether a token can sit on a kernel command line and
// in an iPXE script unchanged.
func safeToken(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-_.~", r)))
	})
}

// safeScriptRune is a character that iPXE passes through unchanged: no
// whitespace, no ${…} expansion, no quoting or operators.
func safeScriptRune(r rune) bool {
	return r < unicode.MaxASCII && unicode.IsPrint(r) && !strings.ContainsRune(" $\"'\\|&#{}", r)
}

// printable makes a staff-chosen name safe for an echo line and a comment.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if safeScriptRune(r) {
			return r
		}
		return '_'
	}, s)
}

// The scripts. A commissioning or deploying machine that fails to fetch
// its environment retries the script, so that a state change made in the
// meantime (staff abort) takes effect. Local boot: BIOS boots the first
// disk through the INT 13h drive 0x80; EFI firmware moves on to its next
// boot entry when iPXE exits, as does BIOS if sanboot fails.
const scriptTemplates = `
{{- define "agent" -}}
#!ipxe
# Fibrix Cloud: {{.Mode}} machine {{.Name}} ({{.MAC}}), state {{.State}}
echo Fibrix Cloud: {{.Mode}} {{.Name}}
kernel {{.BaseURL}}/files/{{.Kernel}} initrd={{.Initrd}} console=tty0 console=ttyS0,115200 panic=-1 fibrix.mode={{.Mode}} fibrix.url={{.BaseURL}}{{if .Token}} fibrix.token={{.Token}}{{end}}{{if .Wipe}} fibrix.wipe=quick{{end}} fibrix.mac=${mac} || goto failed
initrd --name {{.Initrd}} {{.BaseURL}}/files/{{.Initrd}} || goto failed
boot || goto failed
:failed
echo Fibrix Cloud: boot failed, trying again in 10 seconds
sleep 10
chain --replace --autofree {{.BaseURL}}/ipxe/{{.MAC}}
{{end}}
{{- define "local" -}}
#!ipxe
# Fibrix Cloud: machine {{.Name}} ({{.MAC}}), state {{.State}}: boot from local disk
echo Fibrix Cloud: {{.Name}} is {{.State}}, booting from local disk
iseq ${platform} efi && goto exit ||
sanboot --no-describe --drive 0x80 ||
:exit
exit
{{end}}
{{- define "unknown" -}}
#!ipxe
# Fibrix Cloud: {{.MAC}} is not enlisted
echo Fibrix Cloud: this machine ({{.MAC}}) is not enlisted - staff can enlist it from the Discovered list
sleep 5
exit
{{end}}`
