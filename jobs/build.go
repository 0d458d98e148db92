package jobs

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Build names the binary a pass ran in: its version, the commit and commit
// time it was built from, and the Go version. Empty fields are unknown.
type Build struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Time      string `json:"build_time"`
	GoVersion string `json:"go_version"`
}

// SetBuild exposes b as recon_build_info{version,commit,go_version} = 1, so
// dashboards can tell which build ran a pass. A later call replaces it.
func (m *Metrics) SetBuild(b Build) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "recon_build_info",
		Help: "Always 1; its labels name the version, commit and Go version of the running binary."},
		[]string{"version", "commit", "go_version"})
	if err := m.reg.Register(g); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			panic(err) // a programming error: the name clashes with another series
		}
		g = are.ExistingCollector.(*prometheus.GaugeVec)
		g.Reset()
	}
	g.WithLabelValues(b.Version, b.Commit, b.GoVersion).Set(1)
}
