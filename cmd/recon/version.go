package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"

	"github.com/spf13/cobra"

	"github.com/recon-dev/recon/jobs"
)

// Set at build time, e.g. go build -ldflags "-X main.version=v1.4.0
// -X main.commit=$(git rev-parse HEAD) -X main.buildTime=...". Left empty,
// they come from the build info Go records (the module version, and the
// vcs.revision and vcs.time of a build from a git checkout).
var version, commit, buildTime string

// build returns what this binary knows about its build.
func build() jobs.Build {
	info, _ := debug.ReadBuildInfo()
	return buildFrom(info, version, commit, buildTime)
}

// buildFrom is build over info (nil when the binary has none) and the
// values set at link time, which win.
func buildFrom(info *debug.BuildInfo, version, commit, at string) jobs.Build {
	b := jobs.Build{Version: version, Commit: commit, Time: at, GoVersion: runtime.Version()}
	if info != nil {
		var rev, vcsTime string
		modified := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				vcsTime = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if rev != "" && modified {
			rev += "-modified"
		}
		b.Version = cmp.Or(b.Version, info.Main.Version)
		b.Commit = cmp.Or(b.Commit, rev)
		b.Time = cmp.Or(b.Time, vcsTime)
		b.GoVersion = cmp.Or(info.GoVersion, b.GoVersion)
	}
	b.Version = cmp.Or(b.Version, "(devel)")
	return b
}

func (b buildText) String() string {
	return fmt.Sprintf("recon %s\n  commit      %s\n  build time  %s\n  go          %s\n",
		b.Version, cmp.Or(b.Commit, "unknown"), cmp.Or(b.Time, "unknown"), b.GoVersion)
}

type buildText jobs.Build

func (a *app) versionCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build time and Go version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := build()
			switch output {
			case "json":
				return json.NewEncoder(a.stdout).Encode(b)
			case "text":
				_, err := fmt.Fprint(a.stdout, buildText(b))
				return err
			}
			return usageErr("--output must be text or json, not %q", output)
		},
	}
	cmd.Flags().StringVar(&output, "output", "text", "text or json")
	return cmd
}

// thisBuild is build, read once.
var thisBuild = sync.OnceValue(build)

// newMetrics returns the metrics of a pass or of recon schedule, with
// recon_build_info set.
func newMetrics() *jobs.Metrics {
	m := jobs.NewMetrics()
	m.SetBuild(thisBuild())
	return m
}
