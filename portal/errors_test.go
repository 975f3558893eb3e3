package portal

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestClassifyUnavailable(t *testing.T) {
	want := &httpError{status: 503, code: "unavailable", message: "the database is unreachable at the moment; try again in a few seconds", retryAfter: 5}
	for name, err := range map[string]error{
		"server shutting down": fmt.Errorf("list vms: %w", &pgconn.PgError{Code: "57P01"}),
		"sentinel":             fmt.Errorf("load session: %w", store.ErrUnavailable),
	} {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(want, classify(err), cmp.AllowUnexported(httpError{})); diff != "" {
				t.Errorf("classify (-want +got):\n%s", diff)
			}
		})
	}
	if he := classify(fmt.Errorf("list vms: %w", &pgconn.PgError{Code: "23505"})); he.status != 500 {
		t.Errorf("a unique violation that reached the edge: %d, want 500", he.status)
	}
}
