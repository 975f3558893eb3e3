package dhcpd_test

import (
	"os"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
