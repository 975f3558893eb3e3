package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/inventory"
)

type agent struct {
	cfg     config
	log     *slog.Logger
	http    *http.Client // API calls, with a timeout
	stream  *http.Client // the image download, bounded by ctx only
	parts   partitions   // the deployed disk's filesystems
	console io.Writer
	tail    *logTail // what the agent logged; nil in tests that do not care
}

// run does the job of cfg.mode and returns the power action to take
// afterwards (nil for none). Errors have been reported to the region when it
// was reachable.
func (a *agent) run(ctx context.Context) (func() error, error) {
	mac := a.cfg.mac
	if mac == "" {
		mac = a.firstLinkedMAC()
	}
	if m, err := inventory.NormalizeMAC(mac); err == nil {
		mac = m
	}
	r := inventory.Report{Token: a.cfg.token, MAC: mac, Mode: a.cfg.mode, Status: inventory.StatusOK}
	switch a.cfg.mode {
	case inventory.ModeCommission:
		inv, err := inventory.Collect(a.cfg.root)
		if err != nil {
			return nil, a.fail(ctx, r, fmt.Errorf("collect inventory: %w", err))
		}
		r.Inventory = &inv
		a.log.Info("inventory collected", "cpu", inv.CPU.Model, "cores", inv.CPU.Cores, "threads", inv.CPU.Threads,
			"memory_mib", inv.MemoryMiB, "disks", len(inv.Disks), "nics", len(inv.NICs), "bmc", inv.BMC.Present)
		if err := a.report(ctx, r); err != nil {
			return nil, err
		}
		fmt.Fprintln(a.console, marker+"commissioning reported")
		return powerOff, nil
	case inventory.ModeDeploy:
		plan, err := a.plan(ctx)
		if err != nil {
			return nil, a.fail(ctx, r, err)
		}
		res, err := a.deploy(ctx, plan)
		if err != nil {
			return nil, a.fail(ctx, r, err)
		}
		r.Deploy = &res
		if err := a.report(ctx, r); err != nil {
			return nil, err
		}
		fmt.Fprintln(a.console, marker+"deploy reported")
		return reboot, nil
	case inventory.ModeRelease:
		if a.cfg.wipe {
			wiped, err := a.wipeAll()
			r.Wiped = wiped
			if err != nil {
				return nil, a.fail(ctx, r, err)
			}
		}
		if err := a.report(ctx, r); err != nil {
			return nil, err
		}
		fmt.Fprintln(a.console, marker+"release reported")
		return powerOff, nil
	}
	return nil, fmt.Errorf("unknown mode %q", a.cfg.mode)
}

// fail reports a failed job to the region (best effort) and returns cause.
func (a *agent) fail(ctx context.Context, r inventory.Report, cause error) error {
	r.Status, r.Message = inventory.StatusFailed, cause.Error()
	if err := a.report(ctx, r); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

func (a *agent) firstLinkedMAC() string {
	inv, err := inventory.Collect(a.cfg.root)
	if err != nil {
		return ""
	}
	for _, n := range inv.NICs {
		if n.Link {
			return n.MAC
		}
	}
	return ""
}

// report posts r to the region, retrying with backoff on network errors and
// 5xx/408/429 answers for up to cfg.retryFor; other 4xx answers (a spent
// token) are final. It logs what it sends, without the token.
func (a *agent) report(ctx context.Context, r inventory.Report) error {
	if a.tail != nil {
		r.Log = a.tail.Lines()
	}
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	shown := r
	shown.Token, shown.Log = "REDACTED", nil
	logged, _ := json.Marshal(shown)
	a.log.Info("sending report", "url", a.cfg.url+inventory.ReportPath, "report", string(logged))
	return a.retry(ctx, "report", func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.cfg.url+inventory.ReportPath, bytes.NewReader(body))
		if err != nil {
			return permanent(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := a.http.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return statusError(resp)
	})
}

// plan fetches the deploy plan.
func (a *agent) plan(ctx context.Context) (inventory.DeployPlan, error) {
	var plan inventory.DeployPlan
	u := a.cfg.url + inventory.DeployPath + "?token=" + url.QueryEscape(a.cfg.token)
	err := a.retry(ctx, "deploy plan", func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return permanent(redact(err))
		}
		resp, err := a.http.Do(req)
		if err != nil {
			return redact(err)
		}
		defer resp.Body.Close()
		if err := statusError(resp); err != nil {
			return err
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&plan); err != nil {
			return fmt.Errorf("decode deploy plan: %w", err)
		}
		return nil
	})
	if err != nil {
		return plan, err
	}
	if err := inventory.ValidatePlan(plan); err != nil {
		return plan, err
	}
	a.log.Info("deploy plan", "image_url", plan.ImageURL, "sha256", plan.SHA256, "disk", plan.Disk,
		"hostname", plan.Hostname, "ssh_keys", len(plan.SSHKeys))
	return plan, nil
}

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return permanentError{err} }

func statusError(resp *http.Response) error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	err := fmt.Errorf("region answered %s: %s", resp.Status, bytes.TrimSpace(msg))
	switch {
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests:
		return err
	default:
		return permanent(err)
	}
}

// redact drops the query (which carries the token) from URLs in net/http errors.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery = ""
			ue.URL = u.String()
		}
	}
	return err
}

// retry calls fn until it succeeds, fails permanently or cfg.retryFor has
// passed, waiting 1 s, 2 s, 4 s … up to 15 s between attempts.
func (a *agent) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	deadline := time.Now().Add(a.cfg.retryFor)
	wait := time.Second
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		var p permanentError
		if errors.As(err, &p) {
			return fmt.Errorf("%s: %w", what, err)
		}
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("%s: giving up after %d attempts: %w", what, attempt, err)
		}
		a.log.Warn("retrying", "what", what, "attempt", attempt, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(wait*2, 15*time.Second)
	}
}

func (a *agent) devPath(disk string) string {
	return filepath.Join(a.cfg.devDir, filepath.Base(disk))
}
