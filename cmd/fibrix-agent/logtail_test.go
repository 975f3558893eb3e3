package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/inventory"
)

func TestLogTail(t *testing.T) {
	l := newLogTail(3)
	fmt.Fprint(l, "one\ntw")
	fmt.Fprint(l, "o\nthree\x1b[31m red\x00\n")
	if got := strings.Join(l.Lines(), "|"); got != "one|two|three[31m red" {
		t.Errorf("lines = %q", got)
	}
	fmt.Fprint(l, "four\nfive\nsix (no newline yet)")
	if got := strings.Join(l.Lines(), "|"); got != "three[31m red|four|five" {
		t.Errorf("kept lines = %q", got)
	}
	fmt.Fprintln(l, strings.Repeat("é", inventory.MaxLogLine))
	last := l.Lines()[2]
	if len(last) > inventory.MaxLogLine || !strings.HasPrefix(last, "six (no newline yet)") || !strings.HasSuffix(last, "…") {
		t.Errorf("long line kept as %d bytes: %.40q…", len(last), last)
	}
	s := newLogTail(5, "tok+en/1", "tok%2Ben%2F1", "")
	fmt.Fprintln(s, `retrying err="Get \"http://r/boot/api/agent/v1/deploy?token=tok%2Ben%2F1\": timeout" token=tok+en/1`)
	if got := s.Lines()[0]; strings.Contains(got, "tok+en") || strings.Contains(got, "tok%2B") || strings.Count(got, "REDACTED") != 2 {
		t.Errorf("secret kept: %q", got)
	}
	r := inventory.Report{Token: "T", MAC: "52:54:00:12:34:56", Mode: "release", Status: "ok", Log: l.Lines()}
	if err := inventory.Validate(r); err != nil {
		t.Errorf("a tail does not validate: %v", err)
	}
}
