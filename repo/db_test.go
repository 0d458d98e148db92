package repo_test

import (
	"strings"
	"testing"

	"github.com/recon-dev/recon/repo"
)

func TestNormalizeMySQLDSN(t *testing.T) {
	got, err := repo.NormalizeDSN(repo.MySQL, "recon:pw@tcp(db:3306)/payments")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"parseTime=true", "readTimeout=1m0s", "writeTimeout=1m0s", "timeout=10s", "time_zone=%27%2B00%3A00%27"} {
		if !strings.Contains(got, want) {
			t.Errorf("DSN %q lacks %s", got, want)
		}
	}
	// The DSN's own timeouts win.
	got, err = repo.NormalizeDSN(repo.MySQL, "recon:pw@tcp(db:3306)/payments?readTimeout=5s")
	if err != nil || !strings.Contains(got, "readTimeout=5s") || strings.Contains(got, "readTimeout=1m") {
		t.Errorf("DSN with readTimeout: %q, %v", got, err)
	}
	if _, err := repo.NormalizeDSN(repo.MySQL, "recon:pw@tcp(db:3306)/"); err == nil || !strings.Contains(err.Error(), "names no database") {
		t.Errorf("DSN without a database: %v", err)
	}
}
