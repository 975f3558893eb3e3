package views

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
)

// FormatMiB renders a size in MiB: "512 MiB", "2 GiB", "1.5 GiB".
func FormatMiB(mib int64) string {
	if mib < 1024 && mib > -1024 {
		return strconv.FormatInt(mib, 10) + " MiB"
	}
	return trimFloat(float64(mib)/1024) + " GiB"
}

// FormatGiB renders a size in GiB: "80 GiB", "1 TiB", "1.5 TiB".
func FormatGiB(gib int64) string {
	if gib < 1024 && gib > -1024 {
		return strconv.FormatInt(gib, 10) + " GiB"
	}
	return trimFloat(float64(gib)/1024) + " TiB"
}

// trimFloat prints at most one decimal and drops a trailing ".0".
func trimFloat(f float64) string {
	s := strconv.FormatFloat(f, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0")
}

// FormatTime renders t in UTC as "2006-01-02 15:04 UTC", or "—" when zero.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// FormatTimePtr is FormatTime for optional times.
func FormatTimePtr(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return FormatTime(*t)
}

// CSRFHeaders returns the value of the hx-headers attribute that makes htmx
// send the CSRF token: {"X-CSRF-Token":"<token>"}.
func CSRFHeaders(token string) string {
	b, err := json.Marshal(map[string]string{"X-CSRF-Token": token})
	if err != nil {
		return "{}"
	}
	return string(b)
}

// FormatQuota renders a used/limit pair with a unit: "3 / 10", "2 GiB / 8 GiB".
func FormatQuota(used, limit int64, unit string) string {
	return FormatAmount(used, unit) + " / " + FormatAmount(limit, unit)
}

// FormatAmount renders an amount of a quota unit. Units "MiB" and "GiB" are
// humanised; other units are appended after a space when non-empty.
func FormatAmount(n int64, unit string) string {
	switch unit {
	case "MiB":
		return FormatMiB(n)
	case "GiB":
		return FormatGiB(n)
	case "":
		return strconv.FormatInt(n, 10)
	default:
		return strconv.FormatInt(n, 10) + " " + unit
	}
}

// QuotaPercent is used/limit as 0..100 (100 when limit is 0 and used > 0).
func QuotaPercent(used, limit int64) int {
	if limit <= 0 {
		if used > 0 {
			return 100
		}
		return 0
	}
	p := int(used * 100 / limit)
	if p > 100 {
		p = 100
	}
	if p < 0 {
		p = 0
	}
	return p
}

// quotaLevel classifies usage for colouring: ok, warn (>= 80 %), full (>= 100 %).
func quotaLevel(used, limit int64) string {
	switch p := QuotaPercent(used, limit); {
	case p >= 100:
		return "full"
	case p >= 80:
		return "warn"
	default:
		return "ok"
	}
}

// stateLabel is the human label for a VM state.
func stateLabel(state string) string {
	if state == "" {
		return "unknown"
	}
	return state
}

// stateTone groups VM states for colouring.
func stateTone(state string) string {
	switch state {
	case "running":
		return "ok"
	case "stopped", "deleted":
		return "off"
	case "error":
		return "bad"
	case "pending", "provisioning", "starting", "stopping", "rebooting", "rebuilding", "deleting":
		return "busy"
	default:
		return "off"
	}
}

// itoa is strconv.Itoa for templates.
func itoa(n int) string { return strconv.Itoa(n) }

// i64 is strconv.FormatInt for templates.
func i64(n int64) string { return strconv.FormatInt(n, 10) }

// contains reports whether s is in list.
func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// orDash returns s, or "—" when s is empty.
func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// pageNumbers lists the page links to show: first, last and a window around
// the current page; 0 marks a gap.
func pageNumbers(cur, total int) []int {
	var out []int
	last := 0
	for n := 1; n <= total; n++ {
		if n == 1 || n == total || (n >= cur-2 && n <= cur+2) {
			if last != 0 && n != last+1 {
				out = append(out, 0)
			}
			out = append(out, n)
			last = n
		}
	}
	return out
}

// InvalidAttrs marks an input invalid when errs has a message for field:
// <input name="email" { InvalidAttrs(errs, "email")... }/>
func InvalidAttrs(errs FormErrors, field string) templ.Attributes {
	if errs[field] == "" {
		return templ.Attributes{}
	}
	return templ.Attributes{"aria-invalid": "true", "aria-describedby": field + "-error"}
}
